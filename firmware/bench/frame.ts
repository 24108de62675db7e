/**
 * Framing of the bench protocol: one line per message,
 *
 *     <payload>*<CCCC>\n
 *
 * where CCCC is the CRC-16/ARC of the payload's UTF-8 bytes in four
 * uppercase hex digits (the check EVA-DTS uses, already in the firmware).
 * A console line is easy to read and type, and the checksum catches what a
 * noisy bench cable or a boot message glued to a request does to it.
 *
 * The reader keeps at most `maxLine` bytes: a longer line is dropped whole
 * (and reported), and reading resynchronises at the next newline, so no
 * amount of garbage can grow the buffer. Pure code: runs under XS.
 */
import { crc16Bytes } from '../dex/crc16.js';
import { charCode } from '../text/chars.js';
import { decodeUtf8, encodeUtf8 } from '../text/utf8.js';

const LF = 0x0a;
const CR = 0x0d;
const STAR = 0x2a;
const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The bytes of one framed line, newline included. */
export function frameLine(payload: string): Uint8Array {
  const body = new Uint8Array(encodeUtf8(payload));
  const n = body.length;
  const out = new Uint8Array(n + 6);
  out.set(body);
  const crc = crc16Bytes(0, body, 0, n);
  out[n] = STAR;
  for (let i = 0; i < 4; i++) out[n + 1 + i] = charCode(HEX, (crc >> (12 - 4 * i)) & 15);
  out[n + 5] = LF;
  return out;
}

export type CheckedLine =
  | { readonly ok: true; readonly payload: string; readonly crc: number }
  | { readonly ok: false; readonly reason: 'missing' | 'mismatch'; readonly crc: number };

/** Check the checksum of a received line (`length` bytes of `line`, no newline). */
export function checkLine(line: Uint8Array, length: number): CheckedLine {
  if (length < 5 || line[length - 5] !== STAR) return { ok: false, reason: 'missing', crc: -1 };
  let sent = 0;
  for (let i = length - 4; i < length; i++) {
    const v = hexValue(line[i]!);
    if (v < 0) return { ok: false, reason: 'missing', crc: -1 };
    sent = (sent << 4) | v;
  }
  const crc = crc16Bytes(0, line, 0, length - 5);
  if (crc !== sent) return { ok: false, reason: 'mismatch', crc: sent };
  return { ok: true, payload: decodeUtf8(line.slice(0, length - 5).buffer), crc };
}

/**
 * Splits a byte stream into lines in a fixed buffer. `onLine` gets the
 * buffer itself (valid only during the call) and the line's length without
 * its newline or a carriage return before it; blank lines are skipped.
 */
export class LineReader {
  private readonly buffer: Uint8Array;
  private length = 0;
  /** Bytes dropped from the line under way because it outgrew the buffer. */
  private dropped = 0;

  constructor(
    readonly maxLine: number,
    private readonly onLine: (line: Uint8Array, length: number) => void,
    private readonly onOverflow: (droppedBytes: number) => void,
  ) {
    this.buffer = new Uint8Array(maxLine);
  }

  push(data: Uint8Array): void {
    const buffer = this.buffer;
    const max = this.maxLine;
    for (let i = 0; i < data.length; i++) {
      const b = data[i]!;
      if (b === LF) {
        const n = this.length;
        const dropped = this.dropped;
        this.length = 0;
        this.dropped = 0;
        if (dropped > 0) this.onOverflow(n + dropped);
        else {
          const end = n > 0 && buffer[n - 1] === CR ? n - 1 : n;
          if (end > 0) this.onLine(buffer, end);
        }
      } else if (this.dropped > 0 || this.length >= max) {
        this.dropped++;
      } else {
        buffer[this.length++] = b;
      }
    }
  }

  /** Forget a partial line (a new connection starts clean). */
  reset(): void {
    this.length = 0;
    this.dropped = 0;
  }
}
