/**
 * What every MDB peripheral driver shares: the reset and "just reset" start
 * of its init sequence, the stepping through the rest of it (an optional
 * expansion step given up after a few tries), the non-response timer that
 * declares it offline (MDB 4.2 §5.4, §6.4, §7.5), the rule that a silent
 * device is RESET at most every 10 s, and the POLL cadence. Subclasses
 * provide the device-specific init steps, their own commands and POLL
 * parsing.
 */
import type { MdbDevice } from './bus.js';
import { CMD_EXPANSION } from './frame.js';
import { REPLY_ACK, REPLY_DATA, REPLY_NAK, REPLY_TIMEOUT, type ReplyKind } from './link.js';

export const PHASE_RESET = 0;
export const PHASE_JUST_RESET = 1;
/** Device-specific init steps use phases from here on. */
export const PHASE_INIT = 2;
export const PHASE_READY = 100;

/** An optional init step (a level 2/3 expansion) is skipped after this many failed attempts. */
const EXPANSION_TRIES = 3;
/** EXPANSION's FEATURE ENABLE subcommand, the same for the changer (0F 01) and the bill validator (37 01). */
const EXP_FEATURE_ENABLE = 0x01;

export interface PeripheralTiming {
  /** POLL period once ready (MDB: 25..200 ms). */
  pollIntervalMs: number;
  /** Silence after which the device is declared offline (changer 2 s, bill validator 5 s). */
  nonResponseMs: number;
  /** Minimum time between RESETs of a silent device. */
  resetIntervalMs: number;
  /** How long to wait for the "just reset" report before carrying on with setup. */
  justResetWaitMs: number;
}

export interface PeripheralLog {
  (level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
}

/** What every driver's options carry besides the callbacks of its device's events. */
export interface PeripheralOptions {
  /** The machine's decimal places: values reach the callbacks in its minor units. */
  decimals: number;
  /**
   * The machine's currency, ISO 4217 numeric (840 USD). A device reporting
   * another one in its SETUP answer is not enabled (MDB 4.2: the currency
   * codes must match). Absent or 0: not checked.
   */
  currency?: number;
  /** Optional: the device answered and was refused (its currency or scaling); it stays disabled. */
  deviceRefused?(): void;
  timing: PeripheralTiming;
  log: PeripheralLog;
}

export abstract class Peripheral implements MdbDevice {
  abstract readonly name: string;
  protected readonly address: number;
  protected readonly timing: PeripheralTiming;
  protected readonly log: PeripheralLog;
  protected phase = PHASE_RESET;
  /** Command code (low 3 bits of the address byte) of the block in flight, and its subcommand. */
  protected inFlight = -1;
  protected inFlightSub = -1;
  protected lastHeard = -Infinity;
  protected lastReset = -Infinity;
  protected lastPoll = -Infinity;
  protected resetAt = -Infinity;
  /** When the current init step (or a subclass's retry of a command) may go next. */
  protected retryAt = -Infinity;
  /** Failed attempts at the current optional init step. */
  private initTries = 0;
  /** FEATURE ENABLE bits in flight. */
  protected featuresAsked = 0;
  private bootAt: number | undefined;
  private offlineReported = true;
  /** The machine's currency (ISO 4217 numeric; 0: not checked). */
  protected readonly machineCurrency: number;
  /** Why the device is not used although it answers ('' it is usable): its currency, or a scaling that cannot express the machine's money. */
  protected refusal: Refusal = '';
  /** The machine was told the device is ready (and must hear when it is not). */
  protected announced = false;
  /** Counts of link outcomes, for telemetry. */
  readonly health = { resets: 0, justResets: 0, offline: 0, timeouts: 0, naks: 0 };

  private readonly hooks: { deviceRefused?(): void } | undefined;

  constructor(address: number, timing: PeripheralTiming, log: PeripheralLog, currency = 0, hooks?: { deviceRefused?(): void }) {
    this.address = address;
    this.timing = timing;
    this.log = log;
    this.machineCurrency = currency;
    this.hooks = hooks;
  }

  /** The device finished its setup refused: tell whoever listens (the display, the fleet). */
  protected refusedReady(): void {
    if (this.hooks?.deviceRefused) this.hooks.deviceRefused();
  }

  /** Up and usable for the machine's money: a device refused for its currency or scaling is not. */
  get ready(): boolean {
    return this.phase === PHASE_READY && this.refusal === '';
  }

  /** Answers on the bus but is not enabled, and why: 'currency' or 'scaling' ('' when not refused). */
  get refused(): Refusal {
    return this.phase === PHASE_READY ? this.refusal : '';
  }

  /**
   * Decide from a SETUP answer whether the device may be enabled: its
   * currency must be the machine's, and `expressible` says whether its
   * scaling can express the machine's money. Logs a refusal once.
   */
  protected judge(currency: number, expressible: boolean): void {
    // [MDB-CHG-3] [MDB-BILL-3] [MDB-CL-4]
    const was = this.refusal;
    this.refusal = this.machineCurrency !== 0 && currency !== this.machineCurrency ? 'currency' : expressible ? '' : 'scaling';
    if (this.refusal !== '' && this.refusal !== was) {
      this.log(
        'warn',
        this.refusal === 'currency'
          ? `${this.name}: currency ${currency} is not the machine's ${this.machineCurrency}; not enabled`
          : `${this.name}: its scaling cannot express the machine's prices; not enabled`,
      );
    }
  }

  wakeAt(now: number): number {
    if (this.bootAt === undefined) this.bootAt = now;
    switch (this.phase) {
      case PHASE_RESET: {
        // Retry quickly while the device may simply still be booting; after
        // that, a silent device is reset at most every resetInterval [MDB-TIME-4].
        const gap = now - this.bootAt < this.timing.nonResponseMs ? this.timing.pollIntervalMs : this.timing.resetIntervalMs;
        return this.lastReset + gap;
      }
      case PHASE_JUST_RESET:
        return this.lastPoll + this.timing.pollIntervalMs;
      case PHASE_READY: {
        // POLL every poll period (25..200 ms, firmware/config.ts) [MDB-TIME-3].
        const poll = this.lastPoll + this.timing.pollIntervalMs;
        return poll <= now || this.hasWork(now) ? Math.min(now, poll) : poll;
      }
      default:
        return this.initWakeAt(now);
    }
  }

  nextRequest(tx: Uint8Array, now: number): number {
    switch (this.phase) {
      case PHASE_RESET:
        this.lastReset = now;
        this.health.resets++;
        return this.command(tx, 0, -1);
      case PHASE_JUST_RESET:
        this.lastPoll = now;
        return this.command(tx, this.pollCommand, -1);
      case PHASE_READY: {
        const length = this.nextWork(tx, now);
        if (length > 0) return length;
        this.lastPoll = now;
        return this.command(tx, this.pollCommand, -1);
      }
      default:
        return this.nextInit(tx, now);
    }
  }

  onReply(kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean | void {
    const command = this.inFlight;
    const sub = this.inFlightSub;
    this.inFlight = -1;
    this.inFlightSub = -1;
    if (kind === REPLY_ACK || kind === REPLY_DATA || kind === REPLY_NAK) this.lastHeard = now;
    if (kind === REPLY_NAK) this.health.naks++;
    if (kind === REPLY_TIMEOUT) this.health.timeouts++;
    if (this.checkSilence(now)) return;

    if (command === 0) {
      // Pace the next RESET from the end of this one: it may have left the UART late (behind
      // another device's block), and the 10 s must hold between RESETs on the wire.
      this.lastReset = now;
      // RESET: the device restarts; it will report "just reset" on POLL.
      if (kind === REPLY_ACK) {
        this.resetAt = now;
        this.phase = PHASE_JUST_RESET;
      }
      return;
    }
    if (command === this.pollCommand) {
      if (kind !== REPLY_DATA) {
        if (kind === REPLY_ACK && this.phase === PHASE_JUST_RESET && now - this.resetAt >= this.timing.justResetWaitMs) {
          // Some devices never report "just reset" after a RESET; carry on [MDB-CHG-1].
          this.startInit(now);
        }
        if (kind === REPLY_ACK) this.pollIdle(now);
        return;
      }
      return this.handlePoll(data, length, now);
    }
    return this.handleReply(command, sub, kind, data, length, now);
  }

  /** Called by subclasses when a POLL carried the device's "just reset" status. */
  protected justReset(now: number): void {
    this.health.justResets++;
    const wasReady = this.phase === PHASE_READY;
    if (this.phase !== PHASE_JUST_RESET) this.log('warn', `${this.name}: unexpected reset`);
    this.resetAt = now;
    this.startInit(now);
    if (wasReady) this.lostReady(now);
  }

  /** Leave READY: the device stayed silent past its non-response time (MDB 4.2 §5.4, §6.4, §7.5) [MDB-TIME-2]. */
  private checkSilence(now: number): boolean {
    if (this.phase === PHASE_RESET) return false;
    if (now - this.lastHeard <= this.timing.nonResponseMs) return false;
    if (this.lastHeard === -Infinity && now - this.lastReset <= this.timing.nonResponseMs) return false;
    const wasReady = this.phase === PHASE_READY;
    this.phase = PHASE_RESET;
    this.health.offline++;
    if (!this.offlineReported) {
      this.offlineReported = true;
      this.log('warn', `${this.name}: no response for ${this.timing.nonResponseMs} ms, offline`);
    }
    if (wasReady) this.lostReady(now);
    this.wentOffline(now);
    return true;
  }

  protected becameReady(now: number): void {
    this.phase = PHASE_READY;
    this.offlineReported = false;
    this.lastPoll = now - this.timing.pollIntervalMs;
  }

  /** Go to init step `phase` now. */
  protected initStep(phase: number, now: number): void {
    this.phase = phase;
    this.retryAt = now;
    this.initTries = 0;
  }

  /** An optional step failed: try again at the next poll, or give up on it after a few attempts and go on to `next`. */
  protected initFailed(next: number, what: string, now: number): void {
    if (++this.initTries < EXPANSION_TRIES) return;
    this.log('warn', `${this.name}: no answer to ${what}, carrying on without it`);
    this.initStep(next, now);
  }

  /** When the next init step is due: by default as soon as the step says. */
  protected initWakeAt(_now: number): number {
    return this.retryAt;
  }

  /** EXPANSION FEATURE ENABLE for the options both offered and `used` (4 option bytes, MSB first). */
  protected featureEnable(tx: Uint8Array, offered: number, used: number): number {
    const f = (offered & used) >>> 0;
    this.featuresAsked = f;
    this.command(tx, CMD_EXPANSION, EXP_FEATURE_ENABLE);
    tx[2] = (f >>> 24) & 0xff;
    tx[3] = (f >>> 16) & 0xff;
    tx[4] = (f >>> 8) & 0xff;
    tx[5] = f & 0xff;
    return 6;
  }

  /**
   * A block a helper wrote whole (the changer's payout): its command code
   * (from the address byte) and first data byte are what is in flight.
   */
  protected sending(tx: Uint8Array, length: number): number {
    this.inFlight = tx[0]! & 7;
    this.inFlightSub = length > 1 ? tx[1]! : -1;
    return length;
  }

  protected command(tx: Uint8Array, command: number, sub: number): number {
    this.inFlight = command;
    this.inFlightSub = sub;
    tx[0] = this.address | command;
    if (sub < 0) return 1;
    tx[1] = sub;
    return 2;
  }

  /** Low 3 bits of the POLL address byte for this device. */
  protected abstract readonly pollCommand: number;
  protected abstract startInit(now: number): void;
  protected abstract nextInit(tx: Uint8Array, now: number): number;
  protected abstract hasWork(now: number): boolean;
  protected abstract nextWork(tx: Uint8Array, now: number): number;
  protected abstract handlePoll(data: Uint8Array, length: number, now: number): boolean | void;
  protected abstract handleReply(
    command: number,
    sub: number,
    kind: ReplyKind,
    data: Uint8Array,
    length: number,
    now: number,
  ): boolean | void;
  /** A POLL was answered with a plain ACK (nothing to report). */
  protected pollIdle(_now: number): void {}
  protected abstract lostReady(now: number): void;
  protected wentOffline(_now: number): void {}
}

/**
 * What a device says about itself in an EXPANSION IDENTIFICATION answer
 * (changer 0F 00, bill validator 37 00 / 37 02, and the same layout in a
 * cashless reader's PERIPHERAL ID): kept for telemetry and the DEX CA1/BA1
 * records. One object per driver, overwritten at each init (a device may be
 * swapped while the machine runs).
 */
export interface MdbIdentity {
  /** False until an identification answer has been parsed (level 2 changers have none). */
  known: boolean;
  /** Three ASCII characters (e.g. the maker's EVA code). */
  manufacturer: string;
  serial: string;
  model: string;
  /** Software version: its four BCD digits, e.g. "0142". */
  software: string;
  /** Option bits the device offers (0 when its answer carries none). */
  features: number;
  /** Option bits the VMC enabled with FEATURE ENABLE. */
  enabled: number;
}

export function emptyIdentity(): MdbIdentity {
  return { known: false, manufacturer: '', serial: '', model: '', software: '', features: 0, enabled: 0 };
}

export function clearIdentity(id: MdbIdentity): void {
  id.known = false;
  id.manufacturer = '';
  id.serial = '';
  id.model = '';
  id.software = '';
  id.features = 0;
  id.enabled = 0;
}

/** Bytes of manufacturer (3), serial (12), model (12) and software version (2). */
export const IDENTITY_LENGTH = 29;
/** With the 4 option-bit bytes that follow at level 3 (changer) / level 2 (bill validator). */
export const IDENTITY_WITH_OPTIONS_LENGTH = 33;

/**
 * Parse the identification in `data[offset..end)`; option bits only if
 * `withOptions` and the block is long enough. False if it is too short.
 */
export function parseIdentity(data: Uint8Array, offset: number, end: number, withOptions: boolean, into: MdbIdentity): boolean {
  if (end - offset < IDENTITY_LENGTH) return false;
  into.manufacturer = asciiField(data, offset, 3);
  into.serial = asciiField(data, offset + 3, 12);
  into.model = asciiField(data, offset + 15, 12);
  into.software = bcdDigits(data[offset + 27]!) + bcdDigits(data[offset + 28]!);
  into.features =
    withOptions && end - offset >= IDENTITY_WITH_OPTIONS_LENGTH
      ? ((data[offset + 29]! << 24) | (data[offset + 30]! << 16) | (data[offset + 31]! << 8) | data[offset + 32]!) >>> 0
      : 0;
  into.enabled = 0;
  into.known = true;
  return true;
}

/** ASCII, padding (spaces, NULs) trimmed from the right; anything unprintable shown as '?'. */
function asciiField(data: Uint8Array, start: number, n: number): string {
  let end = start + n;
  while (end > start && (data[end - 1] === 0x20 || data[end - 1] === 0)) end--;
  let out = '';
  for (let i = start; i < end; i++) {
    const c = data[i]!;
    out += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?';
  }
  return out;
}

function bcdDigits(b: number): string {
  const hi = (b >> 4) & 15;
  const lo = b & 15;
  // A nibble above 9 is not BCD; show it in hex rather than invent a digit.
  return hi.toString(16).toUpperCase() + lo.toString(16).toUpperCase();
}

/** Why a device that answers is not used: '' none, its currency, or its scaling. */
export type Refusal = '' | 'currency' | 'scaling';

/**
 * `minor` (machine minor units) in the device's scaled units, or -1 when it
 * is not a whole number of them (the device cannot express that amount).
 */
export function exactScaled(minor: number, scale: number, deviceDecimals: number, machineDecimals: number): number {
  let v = minor;
  for (let d = machineDecimals; d < deviceDecimals; d++) v *= 10;
  let unit = scale;
  for (let d = deviceDecimals; d < machineDecimals; d++) unit *= 10;
  return v % unit === 0 ? v / unit : -1;
}

/** Convert a scaled MDB value to the machine's minor units. */
export function toMinor(scaled: number, scale: number, deviceDecimals: number, machineDecimals: number): number {
  let v = scaled * scale;
  for (let d = deviceDecimals; d < machineDecimals; d++) v *= 10;
  for (let d = machineDecimals; d < deviceDecimals; d++) v = Math.floor(v / 10);
  return v;
}
