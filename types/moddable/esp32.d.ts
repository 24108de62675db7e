/** Modules of the SDK's ESP32 device build (build/devices/esp32/modules). */

declare module 'ota' {
  /**
   * Writing an update into the next OTA partition from its first byte
   * (build/devices/esp32/modules/ota): the constructor begins it
   * (esp_ota_begin with OTA_WITH_SEQUENTIAL_WRITES: each sector is erased as
   * writing reaches it; it throws while the running image is on probation),
   * `write` appends (esp_ota_write: the first byte must be the image magic),
   * `cancel` abandons it, `complete` verifies the image (esp_ota_end) and
   * selects it for the next boot (esp_ota_set_boot_partition). Each throws
   * an Error when ESP-IDF refuses. The constructor ignores its arguments.
   */
  export default class OTA {
    constructor(options?: { byteLength?: number });
    write(data: ArrayBuffer | ArrayBufferView): void;
    cancel(): void;
    complete(): void;
  }
}
