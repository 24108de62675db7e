/** Bytes as lower-case hex digits (a SHA-256 in an uplink message). */
const DIGITS = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += DIGITS[bytes[i]! >> 4]! + DIGITS[bytes[i]! & 15]!;
  return out;
}
