/**
 * The board's application slots on the host (firmware/board.ts
 * FirmwareSlots), behind the HAL bridge. The slots' bytes live on the host
 * (hal-sim/firmware-slots.ts), as the journal's flash does: here every call
 * is checked as the ESP32 would check it, so a misuse throws at once in the
 * firmware, and what it does goes to the host as `slot` ops in program order
 * with everything else. A power cut among those ops tears the slot exactly
 * where the firmware was.
 *
 * The guest keeps only the inactive slot's first bytes (its description), so
 * that `complete()` can read the description after a resume too.
 */
import type { FirmwareSlotOpenOptions, FirmwareSlots, FirmwareSlotWriter, RunningImage } from '../../firmware/board.js';
import { DESCRIPTION_MAX_BYTES, parseImageDescription } from '../../firmware/image.js';
import { fromHex, toHex } from './flash-image.js';
import type { GuestOp, SlotsInfo } from './protocol.js';

/** Longer rollback reasons are cut to this (they travel in NVS on the ESP32). */
export const MAX_REASON = 120;

export class BridgeSlots implements FirmwareSlots {
  readonly slotSize: number;
  readonly blockLength: number;
  running: RunningImage;
  private canRollback: boolean;
  /** The inactive slot's first bytes, as written. */
  private readonly head = new Uint8Array(DESCRIPTION_MAX_BYTES).fill(0xff);
  private writer: SlotWriter | undefined;
  /** rollback() was called: the board is restarting, nothing more reaches it. */
  private restarting = false;

  constructor(
    info: SlotsInfo,
    private readonly emit: (op: GuestOp) => void,
  ) {
    this.slotSize = info.slotSize;
    this.blockLength = info.blockLength;
    const r = info.running;
    this.running = r.rolledBack ? { version: r.version, probation: r.probation, rolledBack: { ...r.rolledBack } } : { version: r.version, probation: r.probation };
    this.canRollback = info.canRollback;
    fromHex(info.head.slice(0, 2 * DESCRIPTION_MAX_BYTES), this.head, 0);
  }

  open(options: FirmwareSlotOpenOptions): FirmwareSlotWriter {
    this.alive();
    if (this.running.probation) throw new Error('the running image is on probation: markValid() before writing the other slot');
    if (this.writer && !this.writer.closed) throw new Error('busy: an image is being written');
    const byteLength = options.byteLength;
    const offset = options.offset ?? 0;
    if (!Number.isInteger(byteLength) || byteLength < 1 || byteLength > this.slotSize) throw new RangeError(`byteLength must be 1..${this.slotSize}, not ${byteLength}`);
    if (!Number.isInteger(offset) || offset < 0 || offset > byteLength || offset % this.blockLength !== 0) {
      throw new RangeError(`offset must be a multiple of ${this.blockLength} within the image, not ${offset}`);
    }
    if (offset === 0) this.head.fill(0xff);
    // The inactive slot held the image a rollback would boot; from here on it holds this one.
    this.canRollback = false;
    this.running = { version: this.running.version, probation: false };
    this.emit(['slot', 'open', byteLength, offset]);
    const writer = new SlotWriter(this, byteLength, offset);
    this.writer = writer;
    return writer;
  }

  markValid(): void {
    this.alive();
    if (!this.running.probation) return;
    this.emit(['slot', 'valid']);
    this.running = this.running.rolledBack ? { ...this.running, probation: false } : { version: this.running.version, probation: false };
  }

  rollback(reason: string): void {
    this.alive();
    if (typeof reason !== 'string') throw new TypeError('rollback needs a reason');
    if (!this.canRollback) throw new Error('no previous image to boot');
    if (this.writer) this.writer.closed = true;
    this.restarting = true;
    this.emit(['slot', 'rollback', reason.slice(0, MAX_REASON)]);
  }

  /** For the writer: bytes at `position` are on their way to the slot. */
  wrote(position: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length && position + i < DESCRIPTION_MAX_BYTES; i++) this.head[position + i] = bytes[i]!;
    this.emit(['slot', 'write', hexInParts(bytes)]);
  }

  describeHead(): boolean {
    return parseImageDescription(this.head) !== undefined;
  }

  send(op: GuestOp): void {
    this.emit(op);
  }

  alive(): void {
    if (this.restarting) throw new Error('the board is restarting (rollback)');
  }
}

/**
 * Hex of a slot write: an update writes kilobytes at a time, and XS copies the
 * whole string at each `+=`, so the text is built 256 bytes at a time.
 */
function hexInParts(bytes: Uint8Array): string {
  if (bytes.length <= 256) return toHex(bytes);
  const parts: string[] = [];
  for (let at = 0; at < bytes.length; at += 256) parts.push(toHex(bytes, at, Math.min(bytes.length, at + 256)));
  return parts.join('');
}

class SlotWriter implements FirmwareSlotWriter {
  closed = false;

  constructor(
    private readonly slots: BridgeSlots,
    private readonly byteLength: number,
    private position: number,
  ) {}

  write(buffer: ArrayBuffer | ArrayBufferView): void {
    this.slots.alive();
    if (this.closed) throw new Error('the image is closed (completed or cancelled)');
    const bytes = ArrayBuffer.isView(buffer) ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : new Uint8Array(buffer);
    if (this.position + bytes.length > this.byteLength) throw new RangeError(`write of ${bytes.length} bytes at ${this.position} runs past the image's ${this.byteLength}`);
    if (bytes.length === 0) return;
    this.slots.wrote(this.position, bytes);
    this.position += bytes.length;
  }

  cancel(): void {
    if (this.closed) return;
    this.closed = true;
    this.slots.send(['slot', 'cancel']);
  }

  complete(): void {
    this.slots.alive();
    if (this.closed) throw new Error('the image is closed (completed or cancelled)');
    // As esp_ota_end: a failed check ends the writer too, and the running image stays selected.
    let problem: string | undefined;
    if (this.position !== this.byteLength) problem = `image incomplete: ${this.position} of ${this.byteLength} bytes written`;
    else if (!this.slots.describeHead()) problem = 'not an image: it does not open with a description';
    this.closed = true;
    if (problem) {
      this.slots.send(['slot', 'cancel']);
      throw new Error(problem);
    }
    this.slots.send(['slot', 'complete']);
  }
}
