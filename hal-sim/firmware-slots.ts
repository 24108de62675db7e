/**
 * The board's two application slots on the host, and the bootloader that
 * chooses between them: a model of ESP-IDF's OTA partitions (ota_0, ota_1),
 * its otadata and its bootloader built with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE.
 * It outlives the firmware (and the power), as the journal's FlashImage does;
 * MachineHost boots whatever it selects and applies the firmware's `slot` ops
 * to it (hal-sim/guest/bridge-slots.ts is the firmware's side).
 *
 * Each slot is NOR flash (a FlashImage of 4 KiB blocks) with a state:
 *
 * | state | ESP-IDF | boots? |
 * |---|---|---|
 * | empty | erased, never written | no |
 * | written | bytes of an image not completed (being written, cancelled, torn by a cut) | no |
 * | new | ESP_OTA_IMG_NEW: completed and selected, not booted yet | yes, once: it becomes pending-verify |
 * | pending-verify | ESP_OTA_IMG_PENDING_VERIFY: booted, on probation | a reset makes it invalid and boots the other slot |
 * | valid | ESP_OTA_IMG_VALID (or the first image flashed) | yes |
 * | invalid | ESP_OTA_IMG_INVALID / ABORTED: rolled back | no |
 *
 * Bytes reach a slot strictly in order from where `open` put the writer, and
 * each block is erased just before the first byte lands in it (ESP-IDF's
 * OTA_WITH_SEQUENTIAL_WRITES), so resuming at a block boundary leaves the
 * bytes before it as they were. State changes (complete, markValid,
 * rollback, and the rollback report kept for the previous image, which the
 * ESP32 keeps in NVS) are single operations: a cut before one leaves the
 * old state, as otadata's two CRC-checked copies do.
 *
 * Power cuts: every erase, write and state change is one operation, counted
 * in `ops` across both slots; `cutAt(op, bytes)` makes that operation stop
 * after `bytes` bytes (nothing, for a state change) and throw PowerCut, like
 * FlashImage.cutAt for the journal. The writer is RAM: gone at any reset.
 */
import { createHash } from 'node:crypto';
import { DESCRIPTION_MAX_BYTES, parseImageDescription, type ImageDescription } from '../firmware/image.js';
import { FlashImage, PowerCut, fromHex, toHex } from './guest/flash-image.js';
import type { GuestOp, SlotsInfo } from './guest/protocol.js';

export type SlotState = 'empty' | 'written' | 'new' | 'pending-verify' | 'valid' | 'invalid';

/** Why the controller reset: what a rolled-back image's report says when it did not ask for it. */
export type ResetCause = 'power' | 'crash' | 'watchdog' | 'restart';

export interface SlotGeometry {
  slotSize: number;
  blockLength: number;
}

/** The ESP32's: two 0x170000-byte app partitions in 4 MiB of flash beside a 1 MiB journal (manifests/esp32/partitions.csv). */
export const DEFAULT_SLOTS: SlotGeometry = { slotSize: 0x170000, blockLength: 4096 };

export type SlotIndex = 0 | 1;

/** A completed image: its length, its SHA-256 (standing in for the digest ESP-IDF appends to an image and checks at boot) and its description. */
export interface SlotImage {
  length: number;
  sha256: string;
  description: ImageDescription;
}

export type SlotOp =
  | { kind: 'erase'; slot: SlotIndex; block: number }
  | { kind: 'write'; slot: SlotIndex; offset: number; data: Uint8Array }
  | { kind: 'state'; what: 'open' | 'complete' | 'valid' | 'rollback' };

/** The slots' state apart from their bytes (AppSlots.record). */
export interface SlotsRecord {
  selected: SlotIndex;
  running: SlotIndex | undefined;
  rolledBack: { version: string; reason: string } | undefined;
  boots: number;
  states: [SlotState, SlotState];
  images: [SlotImage | undefined, SlotImage | undefined];
}

/** What the bootloader boots. */
export interface BootedImage {
  slot: SlotIndex;
  bytes: Uint8Array;
  description: ImageDescription;
}

interface Slot {
  /** Allocated when first written: an erased slot costs no memory. */
  flash: FlashImage | undefined;
  state: SlotState;
  image: SlotImage | undefined;
}

const other = (s: SlotIndex): SlotIndex => (s === 0 ? 1 : 0);

export class AppSlots {
  readonly geometry: SlotGeometry;
  private readonly slots: [Slot, Slot];
  /** The slot the bootloader boots next (otadata's choice). */
  selected: SlotIndex = 0;
  /** The slot booted last; undefined before the first boot. */
  running: SlotIndex | undefined;
  /** The image rolled back last and why, for the image booted instead (NVS on the ESP32); cleared by the next `open`. */
  rolledBack: { version: string; reason: string } | undefined;
  boots = 0;
  /** Operations so far (erases, writes, state changes): what `cutAt` and `onOp` count. */
  ops = 0;
  /** Every operation before it is carried out. */
  onOp: ((op: SlotOp, index: number) => void) | undefined;
  private cut: { op: number; bytes: number } | undefined;
  private writer: { slot: SlotIndex; byteLength: number; position: number; touched: boolean } | undefined;

  /** Slot 0 holds `image` as first flashed (valid, no probation); slot 1 is erased. */
  constructor(image: Uint8Array, geometry: SlotGeometry = DEFAULT_SLOTS) {
    this.geometry = geometry;
    if (image.length > geometry.slotSize) throw new RangeError(`an image of ${image.length} bytes does not fit a ${geometry.slotSize}-byte slot`);
    const description = parseImageDescription(image);
    if (!description) throw new Error('the first image has no description (docs/updates.md, "Images")');
    const flash = new FlashImage({ size: geometry.slotSize, blockLength: geometry.blockLength, writeAlign: 1 });
    flash.bytes.set(image);
    this.slots = [
      { flash, state: 'valid', image: { length: image.length, sha256: sha256(image), description } },
      { flash: undefined, state: 'empty', image: undefined },
    ];
  }

  state(slot: SlotIndex): SlotState {
    return this.slots[slot].state;
  }

  image(slot: SlotIndex): SlotImage | undefined {
    return this.slots[slot].image;
  }

  /** A slot's bytes (a copy; erased bytes read 0xFF). */
  read(slot: SlotIndex, byteLength: number, offset = 0): Uint8Array {
    const f = this.slots[slot].flash;
    if (!f) return new Uint8Array(byteLength).fill(0xff);
    return new Uint8Array(f.read(byteLength, offset));
  }

  /** Damage a stored bit (flash wearing out, a cosmic ray): the bootloader's check finds it. */
  flipBit(slot: SlotIndex, byteOffset: number, bit: number): void {
    this.slots[slot].flash?.flipBit(byteOffset, bit);
  }

  /** The running image is on probation. */
  get probation(): boolean {
    return this.running !== undefined && this.slots[this.running].state === 'pending-verify';
  }

  /** Cut the power during operation `op` (counted in `ops` from construction), after `bytes` of it. */
  cutAt(op: number, bytes: number): void {
    this.cut = { op, bytes };
  }

  // ---- power-cut campaigns (hal-sim/update-cuts.ts) ----------------------------------------

  /** What survives a reset besides the slots' bytes: states, images, the boot choice, the report (otadata and NVS). */
  record(): SlotsRecord {
    return {
      selected: this.selected,
      running: this.running,
      rolledBack: this.rolledBack ? { ...this.rolledBack } : undefined,
      boots: this.boots,
      states: [this.slots[0].state, this.slots[1].state],
      images: [this.slots[0].image, this.slots[1].image],
    };
  }

  /**
   * The slots as a power cut leaves them: the first image flashed, then
   * `flashOps` (erases and writes, in order) applied whole, then `torn` (if
   * any) stopped after `bytes` bytes, and the rest as `record` says.
   */
  static rebuild(first: Uint8Array, geometry: SlotGeometry, record: SlotsRecord, flashOps: readonly SlotOp[], torn?: { op: SlotOp; bytes: number }): AppSlots {
    const slots = new AppSlots(first, geometry);
    const flash = (s: SlotIndex): FlashImage => (slots.slots[s].flash ??= new FlashImage({ size: geometry.slotSize, blockLength: geometry.blockLength, writeAlign: 1 }));
    const apply = (op: SlotOp): void => {
      if (op.kind === 'erase') flash(op.slot).eraseBlock(op.block);
      else if (op.kind === 'write') flash(op.slot).write(op.data, op.offset);
    };
    for (const op of flashOps) apply(op);
    if (torn && torn.op.kind !== 'state') {
      const f = flash(torn.op.slot);
      f.cutAt(f.ops, torn.bytes);
      try {
        apply(torn.op);
      } catch (e) {
        if (!(e instanceof PowerCut)) throw e;
      }
    }
    slots.selected = record.selected;
    slots.running = record.running;
    slots.rolledBack = record.rolledBack ? { ...record.rolledBack } : undefined;
    slots.boots = record.boots;
    for (const s of [0, 1] as const) {
      slots.slots[s].state = record.states[s];
      slots.slots[s].image = record.images[s];
    }
    return slots;
  }

  // ---- the firmware's operations (FirmwareSlots, through the bridge) --------------------

  open(byteLength: number, offset: number): void {
    const { slotSize, blockLength } = this.geometry;
    if (this.running === undefined) throw new Error('nothing has booted');
    if (this.probation) throw new Error('the running image is on probation');
    if (this.writer) throw new Error('an image is being written');
    if (!Number.isInteger(byteLength) || byteLength < 1 || byteLength > slotSize) throw new RangeError(`byteLength ${byteLength} out of range`);
    if (!Number.isInteger(offset) || offset < 0 || offset > byteLength || offset % blockLength !== 0) throw new RangeError(`offset ${offset} out of range`);
    this.stateOp('open', () => {
      this.rolledBack = undefined;
    });
    this.writer = { slot: other(this.running), byteLength, position: offset, touched: false };
  }

  write(data: Uint8Array): void {
    const w = this.writer;
    if (!w) throw new Error('no image is open');
    if (w.position + data.length > w.byteLength) throw new RangeError(`write past the image's ${w.byteLength} bytes`);
    const L = this.geometry.blockLength;
    const slot = this.slots[w.slot];
    let at = 0;
    while (at < data.length) {
      if (!w.touched) {
        // The old image there is gone from the first byte that changes.
        w.touched = true;
        slot.state = 'written';
        slot.image = undefined;
      }
      slot.flash ??= new FlashImage({ size: this.geometry.slotSize, blockLength: L, writeAlign: 1 });
      const pos = w.position;
      if (pos % L === 0) this.flashOp({ kind: 'erase', slot: w.slot, block: pos / L }, L, (f) => f.eraseBlock(pos / L));
      const n = Math.min(data.length - at, L - (pos % L));
      const part = data.subarray(at, at + n);
      this.flashOp({ kind: 'write', slot: w.slot, offset: pos, data: part.slice() }, n, (f) => f.write(part, pos));
      w.position += n;
      at += n;
    }
  }

  cancel(): void {
    this.writer = undefined;
  }

  /** Check the image written (all of it, with a description) and select it for the next boot. */
  complete(): void {
    const w = this.writer;
    if (!w) throw new Error('no image is open');
    this.writer = undefined;
    if (w.position !== w.byteLength) throw new Error(`image incomplete: ${w.position} of ${w.byteLength} bytes`);
    const bytes = this.read(w.slot, w.byteLength);
    const description = parseImageDescription(bytes.subarray(0, DESCRIPTION_MAX_BYTES));
    if (!description) throw new Error('not an image: no description');
    const image: SlotImage = { length: w.byteLength, sha256: sha256(bytes), description };
    this.stateOp('complete', () => {
      const slot = this.slots[w.slot];
      slot.state = 'new';
      slot.image = image;
      this.selected = w.slot;
    });
  }

  markValid(): void {
    if (!this.probation) return;
    const r = this.running!;
    this.stateOp('valid', () => {
      this.slots[r].state = 'valid';
    });
  }

  /** Mark the running image invalid and select the other; the host then restarts the controller. */
  rollback(reason: string): void {
    const r = this.running;
    if (r === undefined || this.slots[other(r)].state !== 'valid' || !this.verifies(other(r))) throw new Error('no previous image to boot');
    this.writer = undefined;
    this.stateOp('rollback', () => {
      this.abandon(r, reason);
    });
  }

  // ---- the bootloader -----------------------------------------------------------------------

  /**
   * The controller comes out of reset (`cause`; the first boot has none):
   * an image still on probation is abandoned, then the selected slot boots
   * if it verifies, else the other one. Throws when neither can boot.
   */
  boot(cause?: ResetCause): BootedImage {
    this.writer = undefined;
    const was = this.running;
    if (was !== undefined && this.slots[was].state === 'pending-verify') this.abandon(was, cause ?? 'power');
    let s = this.selected;
    if (!this.bootable(s)) {
      if (this.slots[s].state !== 'empty' && this.slots[s].state !== 'written') this.slots[s].state = 'invalid';
      s = other(s);
      if (!this.bootable(s)) throw new Error('no bootable image in either slot');
    }
    const slot = this.slots[s];
    if (slot.state === 'new') slot.state = 'pending-verify';
    this.selected = s;
    this.running = s;
    this.boots++;
    const image = slot.image!;
    return { slot: s, bytes: slot.flash!.bytes.subarray(0, image.length), description: image.description };
  }

  /** What the board's `firmware` is told at boot. */
  info(): SlotsInfo {
    const r = this.running;
    if (r === undefined) throw new Error('nothing has booted');
    const running: SlotsInfo['running'] = { version: this.slots[r].image!.description.version, probation: this.probation };
    if (this.rolledBack) running.rolledBack = { ...this.rolledBack };
    const inactive = other(r);
    const f = this.slots[inactive].flash;
    return {
      slotSize: this.geometry.slotSize,
      blockLength: this.geometry.blockLength,
      running,
      canRollback: this.slots[inactive].state === 'valid' && this.verifies(inactive),
      head: f ? toHex(f.bytes, 0, DESCRIPTION_MAX_BYTES) : '',
    };
  }

  private abandon(slot: SlotIndex, reason: string): void {
    const s = this.slots[slot];
    s.state = 'invalid';
    this.rolledBack = { version: s.image!.description.version, reason };
    if (this.selected === slot) this.selected = other(slot);
  }

  private bootable(slot: SlotIndex): boolean {
    const st = this.slots[slot].state;
    return (st === 'new' || st === 'pending-verify' || st === 'valid') && this.verifies(slot);
  }

  /** The image's bytes still hash to what was written (the bootloader's esp_image_verify). */
  private verifies(slot: SlotIndex): boolean {
    const s = this.slots[slot];
    return !!s.image && !!s.flash && sha256(s.flash.bytes.subarray(0, s.image.length)) === s.image.sha256;
  }

  private nextOp(op: SlotOp): { index: number; cutBytes: number | undefined } {
    const index = this.ops++;
    this.onOp?.(op, index);
    const cut = this.cut && this.cut.op === index ? this.cut.bytes : undefined;
    if (cut !== undefined) this.cut = undefined;
    return { index, cutBytes: cut };
  }

  private flashOp(op: SlotOp, length: number, run: (f: FlashImage) => void): void {
    const f = this.slots[op.kind === 'state' ? 0 : op.slot].flash!;
    const { cutBytes } = this.nextOp(op);
    if (cutBytes !== undefined) f.cutAt(f.ops, Math.max(0, Math.min(length, cutBytes)));
    run(f);
  }

  private stateOp(what: 'open' | 'complete' | 'valid' | 'rollback', apply: () => void): void {
    const { cutBytes } = this.nextOp({ kind: 'state', what });
    // A state change is written whole or not at all (otadata: two copies, each with its CRC).
    if (cutBytes !== undefined) throw new PowerCut();
    apply();
  }
}

/** The firmware's slot operations as they cross the bridge. */
export type SlotGuestOp = Extract<GuestOp, ['slot', ...unknown[]]>;

/** Apply one of the firmware's slot operations; true for a rollback (the controller restarts now). Throws PowerCut. */
export function applySlotOp(slots: AppSlots, op: SlotGuestOp): boolean {
  switch (op[1]) {
    case 'open':
      slots.open(op[2], op[3]);
      return false;
    case 'write': {
      const data = new Uint8Array(op[2].length >> 1);
      fromHex(op[2], data, 0);
      slots.write(data);
      return false;
    }
    case 'cancel':
      slots.cancel();
      return false;
    case 'complete':
      slots.complete();
      return false;
    case 'valid':
      slots.markValid();
      return false;
    case 'rollback':
      slots.rollback(op[2]);
      return true;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
