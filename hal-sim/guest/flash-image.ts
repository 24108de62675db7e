/**
 * A NOR flash partition in RAM with the `embedded:storage/flash` shape:
 * erased bytes read 0xFF, a write can only clear bits (new = old AND data),
 * writes must be aligned, erase works on whole blocks.
 *
 * Power cuts: `cutAfter(op, bytes)` makes the op-th write or erase from now
 * stop after `bytes` bytes (a prefix; the rest of the range is untouched)
 * and throw PowerCut; `flipBit` damages a stored bit. Portable, so the
 * firmware's own tests use it under XS too.
 *
 * Faults (`FlashFaults`, after littlefs's emulated block device): writes to
 * or erases of chosen blocks fail the way the ESP32's do (throw "write
 * failed" / "erase failed", nothing changed), bits stuck at 1 or at 0, and
 * wear-out: a block erased `wearLimit` times refuses further erases. They
 * depend only on the partition's state (bytes, erase counts), so the
 * guest's mirror and the host's partition fail alike.
 */
import type { FlashPartition } from '../../firmware/board.js';

export class PowerCut extends Error {
  constructor() {
    super('power cut');
    this.name = 'PowerCut';
  }
}

export interface FlashGeometry {
  size: number;
  blockLength: number;
  writeAlign: number;
}

/** An Error as Moddable's ESP32 flash throws it: the chip refused the write or erase. */
export class FlashFault extends Error {
  constructor(what: 'write' | 'erase') {
    super(`${what} failed`);
  }
}

export interface FlashFaults {
  /** Writes touching these blocks throw and change nothing, while the block has the given erase count (-1: always). */
  failWrites?: [block: number, eraseCount: number][];
  /** Erases of these blocks throw and change nothing, while the block has the given erase count (-1: always). */
  failErases?: [block: number, eraseCount: number][];
  /** Bits that hold one value whatever is written or erased: [byte offset, bit, value]. */
  stuck?: [offset: number, bit: number, value: 0 | 1][];
  /** A block erased this many times is worn out: its erases fail from then on. */
  wearLimit?: number;
}

export type FlashOp = { kind: 'write'; offset: number; data: Uint8Array } | { kind: 'erase'; first: number; last: number };

export class FlashImage implements FlashPartition {
  readonly bytes: Uint8Array;
  readonly geometry: FlashGeometry;
  /** Writes and erases performed (or begun) so far. */
  ops = 0;
  bytesWritten = 0;
  readonly eraseCounts: Uint32Array;
  /** Called for every op before it is applied (the simulator records them). */
  onOp: ((op: FlashOp, index: number) => void) | undefined;
  readonly faults: FlashFaults;
  private cut: { op: number; bytes: number } | undefined;

  constructor(geometry: FlashGeometry, image?: Uint8Array, faults: FlashFaults = {}, eraseCounts?: ArrayLike<number>) {
    if (geometry.size % geometry.blockLength !== 0) throw new RangeError('flash size must be a whole number of blocks');
    this.geometry = geometry;
    this.bytes = new Uint8Array(geometry.size);
    if (image) this.bytes.set(image);
    else this.bytes.fill(0xff);
    this.eraseCounts = new Uint32Array(geometry.size / geometry.blockLength);
    if (eraseCounts) this.eraseCounts.set(eraseCounts);
    this.faults = faults;
    this.stick();
  }

  /** The same partition, faults and wear included. */
  copy(): FlashImage {
    return new FlashImage(this.geometry, this.bytes, this.faults, this.eraseCounts);
  }

  status(): FlashGeometry {
    return { ...this.geometry };
  }

  read(byteLength: number, byteOffset: number): ArrayBuffer {
    if (byteOffset < 0 || byteLength < 0 || byteOffset + byteLength > this.bytes.length) throw new RangeError(`flash read ${byteLength}@${byteOffset} out of range`);
    return this.bytes.slice(byteOffset, byteOffset + byteLength).buffer;
  }

  write(buffer: ArrayBuffer | ArrayBufferView, byteOffset: number): void {
    const data = ArrayBuffer.isView(buffer) ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : new Uint8Array(buffer);
    const a = this.geometry.writeAlign;
    if (byteOffset % a !== 0 || data.length % a !== 0) throw new RangeError(`flash write ${data.length}@${byteOffset} is not aligned to ${a}`);
    if (byteOffset < 0 || byteOffset + data.length > this.bytes.length) throw new RangeError(`flash write ${data.length}@${byteOffset} out of range`);
    const index = this.ops++;
    this.onOp?.({ kind: 'write', offset: byteOffset, data: data.slice() }, index);
    const L = this.geometry.blockLength;
    let refused = false;
    if (this.faults.failWrites) for (let b = Math.floor(byteOffset / L); b * L < byteOffset + data.length; b++) refused ||= this.fails(this.faults.failWrites, b);
    const limit = refused ? 0 : this.limit(index, data.length);
    for (let i = 0; i < limit; i++) this.bytes[byteOffset + i]! &= data[i]!;
    this.bytesWritten += limit;
    this.stick();
    if (limit < data.length && this.cut?.op === index) this.powerCut();
    if (refused) throw new FlashFault('write');
    if (this.cut?.op === index) this.powerCut();
  }

  eraseBlock(first: number, last = first): void {
    const n = this.eraseCounts.length;
    if (first < 0 || last < first || last >= n) throw new RangeError(`flash erase of blocks ${first}..${last} out of range`);
    const index = this.ops++;
    this.onOp?.({ kind: 'erase', first, last }, index);
    const L = this.geometry.blockLength;
    const worn = this.faults.wearLimit;
    let refused = false;
    for (let b = first; b <= last; b++) refused ||= this.fails(this.faults.failErases, b) || (worn !== undefined && this.eraseCounts[b]! >= worn);
    const length = (last - first + 1) * L;
    const limit = refused ? 0 : this.limit(index, length);
    this.bytes.fill(0xff, first * L, first * L + limit);
    for (let b = first; b <= last; b++) if ((b - first) * L < limit) this.eraseCounts[b]!++;
    this.stick();
    if (limit < length && this.cut?.op === index) this.powerCut();
    if (refused) throw new FlashFault('erase');
    if (this.cut?.op === index) this.powerCut();
  }

  private fails(list: [number, number][] | undefined, b: number): boolean {
    return list?.some(([block, count]) => block === b && (count < 0 || count === this.eraseCounts[b])) ?? false;
  }

  /** Stuck bits hold their value through every write and erase. */
  private stick(): void {
    if (!this.faults.stuck) return;
    for (const [o, bit, v] of this.faults.stuck) {
      if (v) this.bytes[o]! |= 1 << bit;
      else this.bytes[o]! &= ~(1 << bit);
    }
  }

  close(): void {}

  /** Cut the power during the op-th operation from the start (ops count), after `bytes` of it. */
  cutAt(op: number, bytes: number): void {
    this.cut = { op, bytes };
  }

  flipBit(byteOffset: number, bit: number): void {
    this.bytes[byteOffset]! ^= 1 << bit;
  }

  /** Apply a recorded op (what the firmware's mirror did), with cut injection. */
  apply(op: FlashOp): void {
    if (op.kind === 'write') this.write(op.data, op.offset);
    else this.eraseBlock(op.first, op.last);
  }

  private limit(index: number, length: number): number {
    if (!this.cut || this.cut.op !== index) return length;
    return Math.max(0, Math.min(length, this.cut.bytes));
  }

  private powerCut(): never {
    this.cut = undefined;
    throw new PowerCut();
  }
}

/** Runs of non-erased bytes: how a flash image crosses the bridge. */
export function imageRuns(bytes: Uint8Array): [number, string][] {
  const runs: [number, string][] = [];
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] === 0xff) {
      i++;
      continue;
    }
    let j = i;
    // Short stretches of 0xFF inside data stay in the run.
    while (j < bytes.length && (bytes[j] !== 0xff || (j + 8 < bytes.length && !allFF(bytes, j, j + 8)))) j++;
    runs.push([i, toHex(bytes, i, j)]);
    i = j;
  }
  return runs;
}

function allFF(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0xff) return false;
  return true;
}

const HEX = '0123456789abcdef';

export function toHex(b: Uint8Array, from = 0, to = b.length): string {
  let s = '';
  for (let i = from; i < to; i++) s += HEX[b[i]! >> 4]! + HEX[b[i]! & 15]!;
  return s;
}

export function fromHex(s: string, out: Uint8Array, at: number): void {
  for (let i = 0; i + 1 < s.length; i += 2) out[at + (i >> 1)] = parseInt(s.slice(i, i + 2), 16);
}
