/**
 * SHA-256 (FIPS 180-4) over byte arrays, for command signatures and
 * firmware images (whose hash state can be saved and resumed at a block
 * boundary, so a download survives a reboot).
 *
 * Written for the board: one 64-word schedule and the state live in typed
 * arrays allocated once per hasher, so hashing allocates nothing per block.
 * (An ESP32 build may swap in the ROM's hardware SHA behind the same shape;
 * this one runs everywhere the firmware does, the simulator and XS included.)
 */

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const INITIAL = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

export const SHA256_BLOCK = 64;
export const SHA256_LENGTH = 32;

export class Sha256 {
  private readonly h = new Uint32Array(8);
  private readonly w = new Uint32Array(64);
  private readonly block = new Uint8Array(SHA256_BLOCK);
  private used = 0;
  /** Bytes hashed so far (a message of up to 2^53 bytes is plenty for commands). */
  private length = 0;

  constructor() {
    this.reset();
  }

  reset(): this {
    this.h.set(INITIAL);
    this.used = 0;
    this.length = 0;
    return this;
  }

  update(data: Uint8Array, start = 0, end = data.length): this {
    this.length += end - start;
    let i = start;
    if (this.used > 0) {
      const take = Math.min(SHA256_BLOCK - this.used, end - i);
      this.block.set(data.subarray(i, i + take), this.used);
      this.used += take;
      i += take;
      if (this.used < SHA256_BLOCK) return this;
      this.compress(this.block, 0);
      this.used = 0;
    }
    for (; i + SHA256_BLOCK <= end; i += SHA256_BLOCK) this.compress(data, i);
    if (i < end) {
      this.block.set(data.subarray(i, end));
      this.used = end - i;
    }
    return this;
  }

  /**
   * The state after a whole number of blocks (the 8 state words, big-endian,
   * into `out` at `at`), to carry on hashing later, after a reboot
   * (`resume`): a download's progress on flash is this and the byte count.
   * False when a partial block is pending (it is not in the state).
   */
  save(out: Uint8Array, at = 0): boolean {
    if (this.used !== 0) return false;
    this.words(out, at);
    return true;
  }

  /** Carry on from a state `save` wrote after `length` bytes (a multiple of the block size). */
  resume(state: Uint8Array, at: number, length: number): this {
    if (length % SHA256_BLOCK !== 0) throw new RangeError('a hash resumes at a block boundary');
    for (let i = 0; i < 8; i++) {
      const o = at + i * 4;
      this.h[i] = ((state[o]! << 24) | (state[o + 1]! << 16) | (state[o + 2]! << 8) | state[o + 3]!) >>> 0;
    }
    this.used = 0;
    this.length = length;
    return this;
  }

  /** Writes the 32-byte digest into `out` (at `at`) and resets the hasher. */
  digest(out: Uint8Array = new Uint8Array(SHA256_LENGTH), at = 0): Uint8Array {
    const bits = this.length * 8;
    const b = this.block;
    b[this.used++] = 0x80;
    if (this.used > 56) {
      b.fill(0, this.used);
      this.compress(b, 0);
      this.used = 0;
    }
    b.fill(0, this.used, 56);
    // Length in bits, big-endian, in the last 8 bytes (the high word from a float divide: no 64-bit ints needed).
    const high = Math.floor(bits / 0x100000000);
    const low = bits >>> 0;
    b[56] = high >>> 24;
    b[57] = high >>> 16;
    b[58] = high >>> 8;
    b[59] = high;
    b[60] = low >>> 24;
    b[61] = low >>> 16;
    b[62] = low >>> 8;
    b[63] = low;
    this.compress(b, 0);
    this.words(out, at);
    this.reset();
    return out;
  }

  /** The 8 state words, big-endian, into `out` at `at` (the digest, or a saved state). */
  private words(out: Uint8Array, at: number): void {
    for (let i = 0; i < 8; i++) {
      const v = this.h[i]!;
      out[at + i * 4] = v >>> 24;
      out[at + i * 4 + 1] = v >>> 16;
      out[at + i * 4 + 2] = v >>> 8;
      out[at + i * 4 + 3] = v;
    }
  }

  private compress(d: Uint8Array, o: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++, o += 4) w[i] = (d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!;
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15]!;
      const b = w[i - 2]!;
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = w[i - 16]! + s0 + w[i - 7]! + s1;
    }
    const h = this.h;
    let a = h[0]!;
    let b = h[1]!;
    let c = h[2]!;
    let e = h[4]!;
    let f = h[5]!;
    let g = h[6]!;
    let dd = h[3]!;
    let hh = h[7]!;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i]! + w[i]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (dd + t1) | 0;
      dd = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = h[0]! + a;
    h[1] = h[1]! + b;
    h[2] = h[2]! + c;
    h[3] = h[3]! + dd;
    h[4] = h[4]! + e;
    h[5] = h[5]! + f;
    h[6] = h[6]! + g;
    h[7] = h[7]! + hh;
  }
}
