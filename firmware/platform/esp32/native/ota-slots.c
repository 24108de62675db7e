/*
 * The ESP32's application slots for vendfleet (firmware/board.ts FirmwareSlots,
 * docs/updates.md "The slot"): what Moddable's `ota` module (an update written
 * from the start of the next OTA partition) does not give JavaScript.
 *
 * Not compiled in CI (there is no ESP-IDF there); built by mcconfig with the
 * Moddable SDK for ESP32 against ESP-IDF 6.0, written against its headers
 * (esp_ota_ops.h, esp_partition.h, esp_image_format.h, esp_app_desc.h,
 * esp_system.h). The JavaScript face is ota-slots.ts, beside it.
 *
 * - The running image: its version (the application description the build
 *   stamps, CONFIG_APP_PROJECT_VER) and its OTA state, which says whether it
 *   is on probation (ESP_OTA_IMG_PENDING_VERIFY: the bootloader, built with
 *   CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, boots the previous image if this
 *   one resets before it is marked valid).
 * - The last image rolled back (esp_ota_get_last_invalid_partition), named by
 *   its version and the first bytes of its ELF SHA-256, and why the
 *   controller reset last (esp_reset_reason), so the previous image can say
 *   what happened.
 * - markValid and rollback: esp_ota_mark_app_valid_cancel_rollback and
 *   esp_ota_mark_app_invalid_rollback_and_reboot.
 * - A writer that resumes an update at a block boundary: the `ota` module's
 *   esp_ota_begin/esp_ota_write always start at byte 0, so this one erases and
 *   writes the partition itself (esp_partition_erase_range, esp_partition_write:
 *   each 4 KiB sector erased just before the first byte lands in it, as
 *   OTA_WITH_SEQUENTIAL_WRITES does), and on complete checks the whole image
 *   (esp_image_verify) before selecting it (esp_ota_set_boot_partition).
 *   Without flash encryption: with it, esp_partition_write needs 16-byte
 *   aligned writes.
 */

#include "xsPlatform.h"
#include "xsmc.h"
#include "xsHost.h"

#include "esp_err.h"
#include "app_update/include/esp_ota_ops.h"	/* as the SDK's ota.c: app_update/include is not on mcconfig's include path */
#include "esp_partition.h"
#include "esp_image_format.h"
#include "esp_app_desc.h"
#include "esp_system.h"

#define IMAGE_MAGIC 0xE9		/* ESP_IMAGE_HEADER_MAGIC: the first byte of every application image */

typedef struct {
	const esp_partition_t	*partition;
	uint32_t				position;
	uint32_t				byteLength;
	uint8_t					open;
} xsSlotWriterRecord, *xsSlotWriter;

void xs_otaslots_writer_destructor(void *data);

static const char *stateName(esp_ota_img_states_t state)
{
	switch (state) {
		case ESP_OTA_IMG_NEW:				return "new";
		case ESP_OTA_IMG_PENDING_VERIFY:	return "pending-verify";
		case ESP_OTA_IMG_VALID:				return "valid";
		case ESP_OTA_IMG_INVALID:			return "invalid";
		case ESP_OTA_IMG_ABORTED:			return "aborted";
		default:							return "undefined";
	}
}

/* The running image's version: its application description (CONFIG_APP_PROJECT_VER). */
void xs_otaslots_running_version(xsMachine *the)
{
	const esp_app_desc_t *desc = esp_app_get_description();
	xsmcSetString(xsResult, (char *)desc->version);
}

/* Its OTA state; undefined when it has none (flashed over serial: otadata erased, the first app boots). */
void xs_otaslots_running_state(xsMachine *the)
{
	esp_ota_img_states_t state;
	const esp_partition_t *running = esp_ota_get_running_partition();
	if ((NULL == running) || (ESP_OK != esp_ota_get_state_partition(running, &state)))
		return;
	xsmcSetString(xsResult, (char *)stateName(state));
}

/* The largest image the inactive slot holds. */
void xs_otaslots_slot_size(xsMachine *the)
{
	const esp_partition_t *next = esp_ota_get_next_update_partition(NULL);
	xsmcSetInteger(xsResult, next ? (xsIntegerValue)next->size : 0);
}

/* "<version> <16 hex digits of its ELF SHA-256>" of the image rolled back last, or undefined. */
void xs_otaslots_last_invalid(xsMachine *the)
{
	static const char hex[] = "0123456789abcdef";
	esp_app_desc_t desc;
	char text[sizeof(desc.version) + 1 + 16 + 1];
	const esp_partition_t *invalid = esp_ota_get_last_invalid_partition();
	if (NULL == invalid)
		return;
	if (ESP_OK != esp_ota_get_partition_description(invalid, &desc))
		return;
	size_t n = 0;
	while ((n < (sizeof(desc.version) - 1)) && desc.version[n]) {
		text[n] = desc.version[n];
		n++;
	}
	text[n++] = ' ';
	for (int i = 0; i < 8; i++) {
		text[n++] = hex[desc.app_elf_sha256[i] >> 4];
		text[n++] = hex[desc.app_elf_sha256[i] & 15];
	}
	text[n] = 0;
	xsmcSetString(xsResult, text);
}

/* A valid previous image a rollback would boot. */
void xs_otaslots_can_rollback(xsMachine *the)
{
	xsmcSetBoolean(xsResult, esp_ota_check_rollback_is_possible());
}

/* Why the controller reset last, in the words a rollback report uses. */
void xs_otaslots_reset_reason(xsMachine *the)
{
	const char *why;
	switch (esp_reset_reason()) {
		case ESP_RST_POWERON:
		case ESP_RST_BROWNOUT:
			why = "power";
			break;
		case ESP_RST_PANIC:
			why = "crash";
			break;
		case ESP_RST_INT_WDT:
		case ESP_RST_TASK_WDT:
		case ESP_RST_WDT:
			why = "watchdog";
			break;
		case ESP_RST_SW:
			why = "restart";
			break;
		default:
			why = "reset";
			break;
	}
	xsmcSetString(xsResult, (char *)why);
}

void xs_otaslots_mark_valid(xsMachine *the)
{
	if (ESP_OK != esp_ota_mark_app_valid_cancel_rollback())
		xsUnknownError("mark valid failed");
}

/* Returns only when it could not: with a previous image to boot, the controller restarts into it. */
void xs_otaslots_rollback(xsMachine *the)
{
	esp_err_t err = esp_ota_mark_app_invalid_rollback_and_reboot();
	if (ESP_ERR_OTA_ROLLBACK_FAILED == err)
		xsUnknownError("no previous image to boot");
	xsUnknownError("rollback failed");
}

/* new SlotWriter(offset, byteLength): resume writing the next update partition at `offset` (a sector boundary). */
void xs_otaslots_writer(xsMachine *the)
{
	esp_ota_img_states_t state;
	const esp_partition_t *running = esp_ota_get_running_partition();
	const esp_partition_t *partition = esp_ota_get_next_update_partition(NULL);
	xsNumberValue offset = xsmcToNumber(xsArg(0));
	xsNumberValue byteLength = xsmcToNumber(xsArg(1));

	if ((NULL == partition) || (partition == running))
		xsUnknownError("no update partition");
	// As esp_ota_begin: the image on probation must prove itself before the other slot is overwritten.
	if ((ESP_OK == esp_ota_get_state_partition(running, &state)) && (ESP_OTA_IMG_PENDING_VERIFY == state))
		xsUnknownError("the running image is on probation");
	if (!(byteLength >= 1) || (byteLength > partition->size) || !(offset >= 0) || (offset > byteLength))
		xsRangeError("invalid offset or byteLength");
	if (((uint32_t)offset != offset) || ((uint32_t)byteLength != byteLength) || ((uint32_t)offset % partition->erase_size))
		xsRangeError("offset must be a whole number of sectors");

	xsSlotWriter writer = c_calloc(1, sizeof(xsSlotWriterRecord));
	if (NULL == writer)
		xsUnknownError("no memory");
	writer->partition = partition;
	writer->position = (uint32_t)offset;
	writer->byteLength = (uint32_t)byteLength;
	writer->open = 1;
	xsmcSetHostData(xsThis, writer);
}

void xs_otaslots_writer_destructor(void *data)
{
	if (data)
		c_free(data);
}

static xsSlotWriter openWriter(xsMachine *the)
{
	xsSlotWriter writer = xsmcGetHostData(xsThis);
	if ((NULL == writer) || !writer->open)
		xsUnknownError("the image is closed (completed or cancelled)");
	return writer;
}

void xs_otaslots_writer_write(xsMachine *the)
{
	xsSlotWriter writer = openWriter(the);
	void *data;
	xsUnsignedValue size;
	uint32_t sector = writer->partition->erase_size;

	xsmcGetBufferReadable(xsArg(0), &data, &size);
	if (size > (writer->byteLength - writer->position))
		xsRangeError("write runs past the image");
	if ((0 == writer->position) && (size > 0) && (IMAGE_MAGIC != ((uint8_t *)data)[0]))
		xsUnknownError("not an application image");

	// Nothing here allocates in XS, so `data` stays where it is.
	uint32_t at = 0;
	while (at < size) {
		uint32_t position = writer->position;
		uint32_t n = sector - (position % sector);
		if (n > (size - at))
			n = size - at;
		if (0 == (position % sector)) {
			if (ESP_OK != esp_partition_erase_range(writer->partition, position, sector))
				xsUnknownError("erase failed");
		}
		if (ESP_OK != esp_partition_write(writer->partition, position, (uint8_t *)data + at, n))
			xsUnknownError("write failed");
		writer->position += n;
		at += n;
	}
}

void xs_otaslots_writer_cancel(xsMachine *the)
{
	xsSlotWriter writer = xsmcGetHostData(xsThis);
	if (writer)
		writer->open = 0;
}

void xs_otaslots_writer_complete(xsMachine *the)
{
	xsSlotWriter writer = openWriter(the);
	esp_image_metadata_t metadata;
	esp_partition_pos_t where;

	// As esp_ota_end: whatever the outcome, this writer is done.
	writer->open = 0;
	if (writer->position != writer->byteLength)
		xsUnknownError("image incomplete");
	where.offset = writer->partition->address;
	where.size = writer->partition->size;
	if (ESP_OK != esp_image_verify(ESP_IMAGE_VERIFY, &where, &metadata))
		xsUnknownError("not a valid image");
	if (ESP_OK != esp_ota_set_boot_partition(writer->partition))
		xsUnknownError("can't change boot partition");
}
