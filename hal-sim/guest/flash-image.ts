/**
 * A NOR flash partition in RAM with the `embedded:storage/flash` shape:
 * erased bytes read 0xFF, a write can only clear bits (new = old AND data),
 * writes must be aligned, erase works on whole blocks.
 *
 * Power cuts: `cutAfter(op, bytes)` makes the op-th write or erase from now
 * stop after `bytes` bytes (a prefix; the rest of the range is untouched)
 * and throw PowerCut; `flipBit` damages a stored bit. Portable, so the
 * firmware's own tests use it under XS too.
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
  private cut: { op: number; bytes: number } | undefined;

  constructor(geometry: FlashGeometry, image?: Uint8Array) {
    if (geometry.size % geometry.blockLength !== 0) throw new RangeError('flash size must be a whole number of blocks');
    this.geometry = geometry;
    this.bytes = new Uint8Array(geometry.size);
    if (image) this.bytes.set(image);
    else this.bytes.fill(0xff);
    this.eraseCounts = new Uint32Array(geometry.size / geometry.blockLength);
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
    const limit = this.limit(index, data.length);
    for (let i = 0; i < limit; i++) this.bytes[byteOffset + i]! &= data[i]!;
    this.bytesWritten += limit;
    if (limit < data.length || this.cut?.op === index) this.powerCut();
  }

  eraseBlock(first: number, last = first): void {
    const n = this.eraseCounts.length;
    if (first < 0 || last < first || last >= n) throw new RangeError(`flash erase of blocks ${first}..${last} out of range`);
    const index = this.ops++;
    this.onOp?.({ kind: 'erase', first, last }, index);
    const L = this.geometry.blockLength;
    const length = (last - first + 1) * L;
    const limit = this.limit(index, length);
    this.bytes.fill(0xff, first * L, first * L + limit);
    for (let b = first; b <= last; b++) if ((b - first) * L < limit) this.eraseCounts[b]!++;
    if (limit < length || this.cut?.op === index) this.powerCut();
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
