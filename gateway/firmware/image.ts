/**
 * What the registry takes as a firmware image, before any signature or
 * store is involved (docs/updates.md "Images"): the version rule, release
 * notes that are safe to show anywhere, and what the image's own first
 * bytes say about it (the `/*VFIMG {...}*\/` description of a simulator
 * bundle, or an ESP32 application image's magic byte).
 */
import { parseVersion } from '../../firmware/update/version.js';
import { JOURNAL_FORMAT } from '../../firmware/version.js';

/**
 * The journal format an image writes when neither its description nor the
 * upload says: the format this source tree's firmware writes
 * (firmware/version.ts).
 */
export const CURRENT_JOURNAL_FORMAT = JOURNAL_FORMAT;

/** Images larger than this are refused unless the registry is told otherwise (FIRMWARE_MAX_BYTES). */
export const DEFAULT_MAX_IMAGE_BYTES = 4 * 1024 * 1024;
/** The most a configuration may allow: the bytes of an image are held in memory whole. */
export const MAX_IMAGE_BYTES_LIMIT = 32 * 1024 * 1024;
/** Release notes: UTF-8 bytes at most (they travel in a query string, which Node caps at 16 KiB with its headers). */
export const MAX_NOTES_BYTES = 4096;
/** The description line must end within this many bytes of the start. */
const MAX_DESCRIPTION_BYTES = 1024;

export const SHA256_PATTERN = '^[0-9a-f]{64}$';
export const SHA256_HEX = new RegExp(SHA256_PATTERN);

/** MAJOR.MINOR.PATCH, the firmware's rule (firmware/update/version.ts: a machine journals a version in 32 bits). */
export const VERSION_PATTERN = '^(0|[1-9][0-9]{0,3})\\.(0|[1-9][0-9]{0,3})\\.(0|[1-9][0-9]{0,3})$';
export const VERSION_RULE = 'a version is MAJOR.MINOR.PATCH: three whole numbers without leading zeros (e.g. 1.4.0), no pre-release part; MAJOR at most 255, MINOR and PATCH at most 4095';

export function isVersion(text: string): boolean {
  return parseVersion(text) >= 0;
}

/** Field by field, numerically: negative if a is older than b, 0 if the same, positive if newer. */
export function compareVersions(a: string, b: string): number {
  return parseVersion(a) - parseVersion(b);
}

/**
 * Why these release notes cannot be kept and shown as they are, or
 * undefined. They end up in terminals, logs and the dashboard: only
 * well-formed text, no control characters but tab and line breaks, no
 * bidirectional overrides (text that reads one way and is another), and
 * no U+FFFD (what broken UTF-8 decodes to).
 */
export function notesProblem(notes: string): string | undefined {
  if (Buffer.byteLength(notes, 'utf8') > MAX_NOTES_BYTES) return `release notes are at most ${MAX_NOTES_BYTES} bytes of UTF-8`;
  if (!notes.isWellFormed()) return 'release notes must be valid Unicode (a lone UTF-16 surrogate is not)';
  if (notes.includes('\uFFFD')) return 'release notes hold U+FFFD, the mark of text that was not valid UTF-8';
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/.test(notes)) return 'release notes must not hold control characters other than tab and line breaks';
  if (/[\u202A-\u202E\u2066-\u2069]/.test(notes)) return 'release notes must not hold bidirectional embedding, override or isolate characters';
  return undefined;
}

/** The two kinds of image a machine boots (docs/updates.md "Images"). */
export type ImageKind = 'sim' | 'esp32';

export interface ImageFacts {
  kind: ImageKind;
  /** The description line's fields, when the image has one (simulator bundles). */
  description?: { version: string; journal?: number };
}

export class ImageError extends Error {}

const MARK = Buffer.from('/*VFIMG ', 'latin1');
const END = Buffer.from('*/', 'latin1');
/** The first byte of every ESP-IDF application image (ESP_IMAGE_HEADER_MAGIC). */
const ESP_IMAGE_MAGIC = 0xe9;

/**
 * What the image says about itself. A simulator bundle starts with its
 * description line; an ESP32 image starts with 0xE9 and carries none the
 * gateway reads (its version rides in esp_app_desc_t, set by the build).
 * Anything else is not an image a machine boots: most likely the wrong file.
 */
export function imageFacts(bytes: Uint8Array): ImageFacts {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, MAX_DESCRIPTION_BYTES));
  if (head.subarray(0, MARK.length).equals(MARK)) return { kind: 'sim', description: parseDescription(head) };
  if (bytes[0] === ESP_IMAGE_MAGIC) return { kind: 'esp32' };
  throw new ImageError('this is not a firmware image: a simulator bundle starts with its /*VFIMG {...}*/ description line, an ESP32 application image with the byte 0xE9');
}

function parseDescription(head: Buffer): { version: string; journal?: number } {
  const end = head.indexOf(END, MARK.length);
  if (end < 0) throw new ImageError(`the image's /*VFIMG ...*/ description does not end within its first ${MAX_DESCRIPTION_BYTES} bytes`);
  const text = head.subarray(MARK.length, end).toString('utf8');
  let d: unknown;
  try {
    d = JSON.parse(text);
  } catch {
    throw new ImageError("the image's /*VFIMG ...*/ description is not JSON");
  }
  if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new ImageError("the image's /*VFIMG ...*/ description is not a JSON object");
  const { version, journal } = d as { version?: unknown; journal?: unknown };
  if (typeof version !== 'string' || !isVersion(version)) throw new ImageError(`the image's description has no valid version: ${VERSION_RULE}`);
  if (journal === undefined) return { version };
  if (!isJournalFormat(journal)) throw new ImageError("the image's description has a journal format that is not a whole number from 1 to 65535");
  return { version, journal };
}

export function isJournalFormat(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}
