/** UTF-8 without TextEncoder/TextDecoder (not every XS build has them). */
import { charCode } from './chars.js';

export function encodeUtf8(s: string): ArrayBuffer {
  // Every message the machine publishes passes here: no per-character garbage (text/chars.ts).
  const length = s.length;
  let n = 0;
  for (let i = 0; i < length; i++) {
    const c = charCode(s, i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < length) {
      n += 4;
      i++;
    } else n += 3;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (let i = 0; i < length; i++) {
    let c = charCode(s, i);
    if (c < 0x80) {
      out[o++] = c;
    } else if (c < 0x800) {
      out[o++] = 0xc0 | (c >> 6);
      out[o++] = 0x80 | (c & 63);
    } else if (c >= 0xd800 && c < 0xdc00 && i + 1 < length) {
      c = 0x10000 + ((c - 0xd800) << 10) + (charCode(s, ++i) - 0xdc00);
      out[o++] = 0xf0 | (c >> 18);
      out[o++] = 0x80 | ((c >> 12) & 63);
      out[o++] = 0x80 | ((c >> 6) & 63);
      out[o++] = 0x80 | (c & 63);
    } else {
      out[o++] = 0xe0 | (c >> 12);
      out[o++] = 0x80 | ((c >> 6) & 63);
      out[o++] = 0x80 | (c & 63);
    }
  }
  return out.buffer;
}

export function decodeUtf8(buffer: ArrayBuffer): string {
  const b = new Uint8Array(buffer);
  let s = '';
  for (let i = 0; i < b.length; ) {
    const c = b[i++]!;
    if (c < 0x80) s += String.fromCharCode(c);
    else if (c < 0xe0) s += String.fromCharCode(((c & 31) << 6) | (b[i++]! & 63));
    else if (c < 0xf0) s += String.fromCharCode(((c & 15) << 12) | ((b[i++]! & 63) << 6) | (b[i++]! & 63));
    else {
      const cp = ((c & 7) << 18) | ((b[i++]! & 63) << 12) | ((b[i++]! & 63) << 6) | (b[i++]! & 63);
      s += String.fromCharCode(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 1023));
    }
  }
  return s;
}
