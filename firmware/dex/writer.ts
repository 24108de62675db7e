/**
 * Writes EVA-DTS segments straight into bytes: numbers digit by digit,
 * names character by character, the G85 CRC and the SE count kept as it
 * goes. No string per element or per line, so a 100-slot audit costs the
 * XS heap one buffer, not thousands of temporary strings.
 */
import { charCode } from '../text/chars.js';
import { crc16Bytes } from './crc16.js';

const STAR = 0x2a;

export class DexWriter {
  private buf: Uint8Array;
  private len = 0;
  private lineStart = 0;
  /** Separators owed: written only when a non-empty element follows (trailing empties are left out). */
  private stars = 0;
  private counting = false;
  private checked = true;
  crc = 0;
  /** Segments from ST on, the current one included once it ends. */
  count = 0;

  constructor(sizeHint: number) {
    this.buf = new Uint8Array(sizeHint);
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }

  private byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }

  /** Begin a segment. G85 and SE are outside the CRC; ST starts the count. */
  seg(id: string): this {
    this.lineStart = this.len;
    this.stars = 0;
    if (id === 'ST') this.counting = true;
    this.checked = id !== 'G85' && id !== 'SE';
    this.raw(id, 4);
    return this;
  }

  private flush(): void {
    for (; this.stars > 0; this.stars--) this.byte(STAR);
  }

  /** Printable ASCII without the separator; anything else becomes '?'. At most `max` characters. */
  private raw(v: string, max: number): void {
    const n = v.length < max ? v.length : max;
    this.room(n);
    for (let i = 0; i < n; i++) {
      const c = charCode(v, i);
      this.buf[this.len++] = c >= 0x20 && c <= 0x7e && c !== STAR ? c : 0x3f;
    }
  }

  str(v: string, max = 20): this {
    this.stars++;
    if (v.length > 0) {
      this.flush();
      this.raw(v, max);
    }
    return this;
  }

  /** A non-negative integer (counters and money in minor units). */
  num(v: number): this {
    this.stars++;
    this.flush();
    let n = Math.floor(v > 0 ? v : 0);
    let digits = 1;
    for (let p = 10; p <= n; p *= 10) digits++;
    this.room(digits);
    for (let i = this.len + digits - 1; i >= this.len; i--) {
      this.buf[i] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
    this.len += digits;
    return this;
  }

  empty(): this {
    this.stars++;
    return this;
  }

  end(): void {
    this.byte(0x0d);
    this.byte(0x0a);
    if (!this.counting) return;
    this.count++;
    if (this.checked) this.crc = crc16Bytes(this.crc, this.buf, this.lineStart, this.len);
  }

  /** The file so far (a view of the buffer). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}
