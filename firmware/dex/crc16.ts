/**
 * CRC-16/ARC (reflected polynomial 0xA001, initial value 0), the check
 * EVA-DTS puts in G85 and the DEX/UCS link puts after each block. Bitwise:
 * an audit is a few kilobytes once in a while, not worth a 512-byte table.
 */
import { charCode } from '../text/chars.js';

export function crc16Update(crc: number, byte: number): number {
  crc ^= byte & 0xff;
  for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  return crc;
}

/** Continue `crc` over the characters of an ASCII string. */
export function crc16Text(crc: number, text: string): number {
  const n = text.length;
  for (let i = 0; i < n; i++) crc = crc16Update(crc, charCode(text, i));
  return crc;
}

/** Continue `crc` over bytes `from` to `to` (exclusive). */
export function crc16Bytes(crc: number, bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) crc = crc16Update(crc, bytes[i]!);
  return crc;
}

/** Four uppercase hexadecimal digits, as G85 wants them. */
export function crc16Hex(crc: number): string {
  const h = (crc & 0xffff).toString(16).toUpperCase();
  return '0000'.slice(h.length) + h;
}
