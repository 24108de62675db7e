/* ESP-IDF esp_image_format.h: checking a whole application image in flash. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "esp_err.h"
typedef struct {
	uint32_t offset;
	uint32_t size;
} esp_partition_pos_t;
typedef enum { ESP_IMAGE_VERIFY, ESP_IMAGE_VERIFY_SILENT, ESP_IMAGE_LOAD, ESP_IMAGE_LOAD_NO_VALIDATE } esp_image_load_mode_t;
/* Its fields are the bootloader's; the module only passes it through. */
typedef struct {
	uint32_t start_addr;
	uint32_t image_len;
	uint8_t image_digest[32];
} esp_image_metadata_t;
esp_err_t esp_image_verify(esp_image_load_mode_t mode, const esp_partition_pos_t *part, esp_image_metadata_t *data);
