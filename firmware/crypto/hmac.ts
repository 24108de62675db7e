/**
 * HMAC-SHA-256 (RFC 2104) with a fixed key, and a comparison that takes the
 * same time whatever the bytes, so a forger learns nothing from timing.
 */
import { charCode } from '../text/chars.js';
import { SHA256_BLOCK, SHA256_LENGTH, Sha256 } from './sha256.js';

export class HmacSha256 {
  private readonly inner = new Uint8Array(SHA256_BLOCK);
  private readonly outer = new Uint8Array(SHA256_BLOCK);
  private readonly hash = new Sha256();
  private readonly mid = new Uint8Array(SHA256_LENGTH);

  constructor(key: Uint8Array) {
    let k = key;
    if (k.length > SHA256_BLOCK) k = this.hash.update(key).digest();
    for (let i = 0; i < SHA256_BLOCK; i++) {
      const b = i < k.length ? k[i]! : 0;
      this.inner[i] = b ^ 0x36;
      this.outer[i] = b ^ 0x5c;
    }
  }

  /** The MAC of `data[start..end)`, written into `out`. */
  sign(data: Uint8Array, out: Uint8Array = new Uint8Array(SHA256_LENGTH), start = 0, end = data.length): Uint8Array {
    this.hash.reset().update(this.inner).update(data, start, end).digest(this.mid);
    return this.hash.update(this.outer).update(this.mid).digest(out);
  }
}

/** True when `a` and `b` hold the same bytes; the time depends only on the length. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Hex text to bytes; undefined when it is not even-length hex. */
export function fromHex(text: string, out?: Uint8Array): Uint8Array | undefined {
  const length = text.length;
  if (length % 2 !== 0) return undefined;
  const bytes = out ?? new Uint8Array(length / 2);
  if (bytes.length !== length / 2) return undefined;
  for (let i = 0; i < bytes.length; i++) {
    const hi = nibble(charCode(text, 2 * i));
    const lo = nibble(charCode(text, 2 * i + 1));
    if (hi < 0 || lo < 0) return undefined;
    bytes[i] = (hi << 4) | lo;
  }
  return bytes;
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
