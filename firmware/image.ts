/**
 * Image descriptions and versions (docs/updates.md, "Images"). Every image
 * opens with one line the machine and the gateway read without running it:
 *
 *     /*VFIMG {"version":"0.2.0","journal":3}*\/\n
 *
 * (on the ESP32 the version rides in the application description instead).
 * Portable: the simulator's board, its host and the tools read it the same way.
 */

import { parseVersion } from './update/version.js';

export interface ImageDescription {
  /** `MAJOR.MINOR.PATCH`, numbers only. */
  version: string;
  /** The journal format the image writes (firmware/version.ts JOURNAL_FORMAT). */
  journal: number;
}

/** The description ends within this many bytes of the start, or there is none. */
export const DESCRIPTION_MAX_BYTES = 256;

const OPEN = '/*VFIMG ';
const CLOSE = '*/\n';
/** A version as docs/updates.md defines it (the one rule: update/version.ts). */
export function isVersion(v: unknown): v is string {
  return typeof v === 'string' && parseVersion(v) >= 0;
}

/** Numeric comparison field by field: negative when a is older than b, 0 when equal. Both must be versions. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (x < 0 || y < 0) throw new RangeError(`not a version: ${x < 0 ? a : b}`);
  return x - y;
}

/** The description line for an image (with its newline). */
export function formatImageDescription(d: ImageDescription): string {
  if (!isVersion(d.version)) throw new RangeError(`not a version: ${String(d.version)}`);
  if (!Number.isInteger(d.journal) || d.journal < 0 || d.journal > 0xffff) throw new RangeError(`journal format must be 0..65535, not ${d.journal}`);
  return `${OPEN}${JSON.stringify({ version: d.version, journal: d.journal })}${CLOSE}`;
}

/**
 * The description at the start of an image's bytes, or undefined when they
 * do not open with one (any other bytes, a torn or hostile line). Only the
 * first DESCRIPTION_MAX_BYTES are looked at; the line is ASCII.
 */
export function parseImageDescription(bytes: Uint8Array): ImageDescription | undefined {
  const n = bytes.length < DESCRIPTION_MAX_BYTES ? bytes.length : DESCRIPTION_MAX_BYTES;
  let text = '';
  let end = -1;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b >= 0x80 || (b < 0x20 && b !== 0x0a)) return undefined;
    text += String.fromCharCode(b);
    if (b === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0 || !text.startsWith(OPEN) || !text.endsWith(CLOSE)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text.slice(OPEN.length, text.length - CLOSE.length));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const o = json as { version?: unknown; journal?: unknown };
  if (!isVersion(o.version)) return undefined;
  const journal = o.journal;
  if (typeof journal !== 'number' || !Number.isInteger(journal) || journal < 0 || journal > 0xffff) return undefined;
  return { version: o.version, journal };
}
