/**
 * What this image is (docs/updates.md, "Images"). Its own module so that the
 * one place a version is written is easy to find and to stamp:
 *
 * - the simulator's image, the rollup bundle, opens with a description line
 *   made from these two constants (rollup.config.mjs), and an image of
 *   another version is the bundle with both rewritten (hal-sim/images.ts);
 * - the ESP32's application description carries the same version
 *   (`CONFIG_APP_PROJECT_VER` in manifests/esp32/sdkconfig, which
 *   tools/check-manifests.ts holds equal to this).
 */

/** The firmware's version, `MAJOR.MINOR.PATCH` (numbers only). */
export const FIRMWARE_VERSION = '0.1.0';

/**
 * The journal format this image writes, so a machine can refuse an image
 * whose journal the previous one could not read after a rollback. 1 is the
 * format of docs/journal-format.md as of issue 15; a change to a record's
 * layout or to the checkpoint's newest version takes the next number.
 */
export const JOURNAL_FORMAT = 1;
