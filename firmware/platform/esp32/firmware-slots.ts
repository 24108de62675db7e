/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The board's application slots on the ESP32 (firmware/board.ts
 * FirmwareSlots, docs/updates.md "The slot"): two OTA app partitions and
 * ESP-IDF's bootloader built with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
 * (manifests/esp32: partitions.csv, sdkconfig). The simulator's counterpart
 * is hal-sim/guest/bridge-slots.ts with hal-sim/firmware-slots.ts; both
 * check calls the same way and say so in the same words.
 *
 * - A new image (offset 0) is written with Moddable's `ota` module; an
 *   update resumed at a sector boundary with native/ota-slots' writer (the
 *   SDK's starts at byte 0). Either erases each 4 KiB sector just before
 *   writing into it, and `complete()` verifies the image and selects it.
 * - Probation, markValid and rollback are ESP-IDF's (native/ota-slots).
 * - The report of a rollback lives in NVS (the SDK's `preference`): a
 *   reason given to `rollback()` is written there before the controller
 *   restarts; a reset that ends a probation (a crash, the watchdog, the
 *   power) leaves none, so the image booted next takes the reset's reason
 *   (esp_reset_reason) the first time it sees that image abandoned, and
 *   records it, so that later boots say the same. NVS rather than RTC
 *   memory: RTC memory does not survive the power cuts a report must.
 */
import OTA from 'ota';
import Preference from 'preference';
import type { FirmwareSlotOpenOptions, FirmwareSlots, FirmwareSlotWriter, LogLevel, RunningImage } from '../../board.js';
import { canRollback, lastInvalid, markValid, resetReason, rollback, runningState, runningVersion, slotSize, SlotWriter } from './native/ota-slots.js';

/** NVS namespace (at most 15 characters). */
const DOMAIN = 'vf-slots';
/** The ESP32's flash sector: resume offsets are multiples of it. */
const SECTOR = 4096;
/** Rollback reasons are cut to this in NVS (as on the simulator). */
const MAX_REASON = 120;

/** What NVS keeps about the last rollback: `id` names the abandoned build; `done` once an update replaced it. */
interface RollbackRecord {
  id: string;
  version: string;
  reason: string;
  done?: boolean;
}

export class Esp32FirmwareSlots implements FirmwareSlots {
  readonly slotSize: number;
  readonly blockLength = SECTOR;
  running: RunningImage;
  private writer: Writer | undefined;

  constructor(private readonly log: (level: LogLevel, message: string) => void) {
    this.slotSize = slotSize();
    const version = runningVersion();
    const probation = runningState() === 'pending-verify';
    const report = this.rollbackReport();
    this.running = report ? { version, probation, rolledBack: { version: report.version, reason: report.reason } } : { version, probation };
    if (probation) log('warn', `firmware ${version} is on probation: it must be marked valid, or the previous image boots at the next reset`);
  }

  open(options: FirmwareSlotOpenOptions): FirmwareSlotWriter {
    if (this.running.probation) throw new Error('the running image is on probation: markValid() before writing the other slot');
    if (this.writer && !this.writer.closed) throw new Error('busy: an image is being written');
    const byteLength = options.byteLength;
    const offset = options.offset ?? 0;
    if (!Number.isInteger(byteLength) || byteLength < 1 || byteLength > this.slotSize) throw new RangeError(`byteLength must be 1..${this.slotSize}, not ${byteLength}`);
    if (!Number.isInteger(offset) || offset < 0 || offset > byteLength || offset % SECTOR !== 0) {
      throw new RangeError(`offset must be a multiple of ${SECTOR} within the image, not ${offset}`);
    }
    // The abandoned image is about to be overwritten: its report has been made (or never will be).
    const record = readRecord();
    if (record && !record.done) Preference.set(DOMAIN, 'rollback', JSON.stringify({ ...record, done: true }));
    this.running = { version: this.running.version, probation: false };
    const target = offset === 0 ? new OTA({ byteLength }) : new SlotWriter(offset, byteLength);
    const writer = new Writer(target, byteLength, offset);
    this.writer = writer;
    return writer;
  }

  markValid(): void {
    if (!this.running.probation) return;
    markValid();
    this.running = this.running.rolledBack ? { ...this.running, probation: false } : { version: this.running.version, probation: false };
    this.log('info', `firmware ${this.running.version} marked valid`);
  }

  rollback(reason: string): void {
    if (typeof reason !== 'string') throw new TypeError('rollback needs a reason');
    if (!canRollback()) throw new Error('no previous image to boot');
    this.log('warn', `firmware ${this.running.version} rolls back: ${reason}`);
    Preference.set(DOMAIN, 'reason', reason.slice(0, MAX_REASON));
    try {
      rollback(); // restarts into the previous image; returns only by throwing
    } finally {
      Preference.delete(DOMAIN, 'reason');
    }
  }

  /** The last rollback as this image should report it, recording it the first time it is seen. */
  private rollbackReport(): RollbackRecord | undefined {
    const record = readRecord();
    const abandoned = lastInvalid();
    if (abandoned && record?.id !== abandoned.id) {
      const given = Preference.get(DOMAIN, 'reason');
      const fresh: RollbackRecord = { id: abandoned.id, version: abandoned.version, reason: typeof given === 'string' ? given : resetReason() };
      Preference.set(DOMAIN, 'rollback', JSON.stringify(fresh));
      Preference.delete(DOMAIN, 'reason');
      this.log('warn', `firmware ${fresh.version} was rolled back (${fresh.reason})`);
      return fresh;
    }
    return record && !record.done ? record : undefined;
  }
}

function readRecord(): RollbackRecord | undefined {
  const text = Preference.get(DOMAIN, 'rollback');
  if (typeof text !== 'string') return undefined;
  try {
    const r = JSON.parse(text) as Partial<RollbackRecord>;
    if (typeof r.id === 'string' && typeof r.version === 'string' && typeof r.reason === 'string') return { id: r.id, version: r.version, reason: r.reason, ...(r.done ? { done: true } : {}) };
  } catch {
    // A torn or foreign value: as if there were none.
  }
  return undefined;
}

/** Keeps the image's length, so that each write and `complete()` are checked as on the simulator. */
class Writer implements FirmwareSlotWriter {
  closed = false;

  constructor(
    private readonly target: { write(b: ArrayBuffer | ArrayBufferView): void; cancel(): void; complete(): void },
    private readonly byteLength: number,
    private position: number,
  ) {}

  write(buffer: ArrayBuffer | ArrayBufferView): void {
    if (this.closed) throw new Error('the image is closed (completed or cancelled)');
    const n = buffer.byteLength;
    if (this.position + n > this.byteLength) throw new RangeError(`write of ${n} bytes at ${this.position} runs past the image's ${this.byteLength}`);
    if (n === 0) return;
    this.target.write(buffer);
    this.position += n;
  }

  cancel(): void {
    if (this.closed) return;
    this.closed = true;
    this.target.cancel();
  }

  complete(): void {
    if (this.closed) throw new Error('the image is closed (completed or cancelled)');
    this.closed = true;
    if (this.position !== this.byteLength) {
      this.target.cancel();
      throw new Error(`image incomplete: ${this.position} of ${this.byteLength} bytes written`);
    }
    this.target.complete();
  }
}
