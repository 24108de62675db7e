/**
 * Type declarations for the Moddable SDK modules the ESP32 build of
 * vendfleet uses, written for this project from the SDK's module sources
 * and the ECMA-419 specification. They declare only what the device code
 * (`firmware/platform/esp32`) calls, with the types the ESP32
 * implementations actually take and return, so a mismatch shows up in
 * `tsc -b` rather than on a board.
 *
 * Ambient module declarations only: no globals. The XS-specific globals
 * the device code needs (`native`, `System`, `trace`) are declared inside
 * the modules that use them, so nothing here changes what the portable
 * firmware (`firmware/`) can see.
 */
/// <reference path="./base.d.ts" />
/// <reference path="./embedded-io.d.ts" />
/// <reference path="./embedded-storage.d.ts" />
/// <reference path="./embedded-network.d.ts" />
/// <reference path="./embedded-sensor.d.ts" />
/// <reference path="./esp32.d.ts" />
