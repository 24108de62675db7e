/**
 * A coin changer's payouts, one at a time: owned by the changer
 * (firmware/mdb/changer.ts), which reads the tubes for it, hands it the
 * answers to its commands and tells it what POLL said. Split out of the
 * changer the way temoto/vender keeps coin/dispense.go apart from coin.go.
 *
 * Payouts are verified, never assumed: TUBE STATUS is read before the first
 * DISPENSE and again once the changer stops reporting "payout busy"; what was
 * paid is the difference (the before/after comparison MDB 4.2 §5 asks the
 * VMC to make). A DISPENSE whose answer was lost is not repeated (the changer
 * may have heard it); the payout is verified as it stands and the caller
 * plans any remainder again from the fresh tube counts.
 *
 * Alternative payout (level 3 with the option enabled): the changer chooses
 * the coins for a value (EXPANSION PAYOUT, 0F 02), PAYOUT VALUE POLL (0F 04)
 * follows progress, and PAYOUT STATUS (0F 03) says how many coins of each
 * type went out (MDB 4.2 §5.3). The tubes are read before (for the journal)
 * and after, as for DISPENSE; a payout the changer's reset or silence cut
 * short is settled from the tube counts instead, since its PAYOUT STATUS is
 * lost with the changer's RAM.
 */
import { COIN_TYPES } from '../money/coins.js';
import { ADDRESS_CHANGER, CMD_EXPANSION } from './frame.js';
import { REPLY_ACK, REPLY_DATA, REPLY_NAK, type ReplyKind } from './link.js';
import { toMinor, type PeripheralLog, type PeripheralTiming } from './peripheral.js';

/** DISPENSE: one byte, count << 4 | coin type (MDB 4.2 §5.3). */
const CMD_DISPENSE = 5;
const EXP_PAYOUT = 0x02;
const EXP_PAYOUT_STATUS = 0x03;
const EXP_PAYOUT_VALUE_POLL = 0x04;
/** At most 15 coins of a type per DISPENSE (the count is a nibble) [MDB-CHG-8]. */
const MAX_DISPENSE = 15;
/** At most 255 scale units per EXPANSION PAYOUT (one byte) [MDB-CHG-13]. */
const MAX_PAYOUT_UNITS = 255;
/** DISPENSE and EXPANSION PAYOUT refused this many times are given up (refused, so not acted on). */
const MAX_NAKS = 2;

/*
 * The phases: plain constants rather than a frozen group, since the changer
 * asks about them at every wake-up and a property read costs more under XS.
 */
const NONE = 0;
/** Read the tubes before the first coin goes out. */
const PRE_STATUS = 1;
const DISPENSE = 2;
/** DISPENSE sent: wait for POLL to stop reporting "payout busy". */
const WAIT = 3;
/** Read the tubes again and settle. */
const VERIFY = 4;
/** Alternative payout: send EXPANSION PAYOUT for the next chunk of value. */
const ALT_SEND = 5;
/** Alternative payout: PAYOUT VALUE POLL until it answers a lone ACK (done). */
const ALT_WAIT = 6;
/** Alternative payout: PAYOUT STATUS until it answers the coins paid per type. */
const ALT_STATUS = 7;
/**
 * Alternative payout counted and tubes read: finish at the next POLL that
 * does not say "just reset". A changer that reset before PAYOUT STATUS
 * answers "done" and zero coins (its RAM is gone) and says so only on POLL.
 */
const ALT_CONFIRM = 8;

/** Longest a payout may keep reporting "busy" before it is verified anyway. */
const PAYOUT_WATCHDOG_MS = 30000;

/** What `next` returns when the payout needs the tube counts read (the changer sends TUBE STATUS). */
export const READ_TUBES = -1;

/** Receives what a payout actually paid, per coin type and in total (minor units), once verified. */
export type PayoutDone = (paid: Uint16Array, value: number) => void;

/** What a payout reads of its changer, which keeps it current (SETUP, TUBE STATUS, POLL). */
export interface PayoutSource {
  readonly tubes: Uint8Array;
  readonly values: Int32Array;
  readonly credits: Uint8Array;
  readonly setup: { readonly scale: number; readonly decimals: number };
}

/** Who hears that a payout is about to start (the changer's `payoutStarting` callback). */
export interface PayoutListener {
  payoutStarting(tubes: Uint8Array): void;
}

export class Payout {
  private readonly source: PayoutSource;
  private readonly listener: PayoutListener;
  private readonly machineDecimals: number;
  private readonly timing: PeripheralTiming;
  private readonly log: PeripheralLog;

  private phase = NONE;
  private retryAt = -Infinity;
  private readonly left = new Uint16Array(COIN_TYPES);
  private readonly before = new Uint8Array(COIN_TYPES);
  /** Coins that reached or left the tubes during the payout by other ways (deposits, manual buttons). */
  private readonly delta = new Int16Array(COIN_TYPES);
  private readonly paid = new Uint16Array(COIN_TYPES);
  private done: PayoutDone | undefined;
  private naks = 0;
  private dispenseAt = 0;
  private busyCleared = false;

  /** The payout in progress is an alternative payout (EXPANSION PAYOUT). */
  private alt = false;
  /** Alternative payout: scale units still to ask for, and the chunk in flight. */
  private altLeft = 0;
  private altChunk = 0;
  /** Alternative payout: coins per type PAYOUT STATUS reported, summed over chunks. */
  private readonly altPaid = new Uint16Array(COIN_TYPES);
  /** Every chunk's PAYOUT STATUS arrived (false once a reset or silence lost one: the tubes decide). */
  private altCounted = false;
  /** Value paid so far by the alternative payout, from PAYOUT VALUE POLL (minor units; progress only). */
  paidSoFar = 0;

  constructor(source: PayoutSource, listener: PayoutListener, machineDecimals: number, timing: PeripheralTiming, log: PeripheralLog) {
    this.source = source;
    this.listener = listener;
    this.machineDecimals = machineDecimals;
    this.timing = timing;
    this.log = log;
  }

  get paying(): boolean {
    return this.phase !== NONE;
  }

  /** Pay `coins[t]` coins of each type t (the changer has checked it is ready and idle). */
  start(coins: ArrayLike<number>, done: PayoutDone): boolean {
    let any = false;
    for (let t = 0; t < COIN_TYPES; t++) {
      const n = t < coins.length ? coins[t]! : 0;
      this.left[t] = n;
      if (n > 0) any = true;
    }
    this.delta.fill(0);
    this.naks = 0;
    this.done = done;
    this.alt = false;
    this.phase = any ? PRE_STATUS : VERIFY;
    if (!any) this.before.set(this.source.tubes);
    return true;
  }

  /** Have the changer pay `units` scale units with coins it chooses (it has checked it can). */
  startValue(units: number, done: PayoutDone): boolean {
    this.left.fill(0);
    this.delta.fill(0);
    this.altPaid.fill(0);
    this.naks = 0;
    this.done = done;
    this.alt = true;
    this.altCounted = true;
    this.altLeft = units > 0 ? units : 0;
    this.altChunk = 0;
    this.paidSoFar = 0;
    this.phase = this.altLeft > 0 ? PRE_STATUS : VERIFY;
    if (this.altLeft === 0) this.before.set(this.source.tubes);
    return true;
  }

  /** Something to send now (only asked while paying). */
  due(now: number): boolean {
    switch (this.phase) {
      case PRE_STATUS:
      case VERIFY:
        return true;
      case DISPENSE:
      case ALT_SEND:
      case ALT_WAIT:
      case ALT_STATUS:
        return now >= this.retryAt;
      default:
        return false;
    }
  }

  /**
   * The payout's next block into `tx` (address byte first, no checksum):
   * its length, READ_TUBES when the tube counts must be read first, or 0.
   */
  next(tx: Uint8Array, now: number): number {
    switch (this.phase) {
      case PRE_STATUS:
      case VERIFY:
        return READ_TUBES;
      case DISPENSE:
        if (now < this.retryAt) return 0;
        for (let t = 0; t < COIN_TYPES; t++) {
          const left = this.left[t]!;
          if (left > 0) {
            const n = left > MAX_DISPENSE ? MAX_DISPENSE : left;
            tx[0] = ADDRESS_CHANGER | CMD_DISPENSE;
            tx[1] = (n << 4) | t;
            return 2;
          }
        }
        this.phase = VERIFY;
        return READ_TUBES;
      case ALT_SEND: {
        if (now < this.retryAt) return 0;
        const chunk = this.altLeft > MAX_PAYOUT_UNITS ? MAX_PAYOUT_UNITS : this.altLeft;
        this.altChunk = chunk;
        tx[0] = ADDRESS_CHANGER | CMD_EXPANSION;
        tx[1] = EXP_PAYOUT;
        tx[2] = chunk;
        return 3;
      }
      case ALT_WAIT:
        // Interleaved with the ordinary POLL, which still brings deposits and status.
        if (now < this.retryAt) return 0;
        tx[0] = ADDRESS_CHANGER | CMD_EXPANSION;
        tx[1] = EXP_PAYOUT_VALUE_POLL;
        return 2;
      case ALT_STATUS:
        if (now < this.retryAt) return 0;
        tx[0] = ADDRESS_CHANGER | CMD_EXPANSION;
        tx[1] = EXP_PAYOUT_STATUS;
        return 2;
    }
    return 0;
  }

  /** The answer to a block `next` made (command code, first data byte); false if it was not one. */
  reply(command: number, sub: number, kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean {
    if (command === CMD_DISPENSE) {
      const type = sub & 15;
      const count = sub >> 4;
      if (kind === REPLY_ACK) {
        this.left[type] = this.left[type]! - count;
        this.enterWait(now);
      } else if (kind === REPLY_NAK && ++this.naks <= MAX_NAKS) {
        this.retryAt = now + this.timing.pollIntervalMs;
      } else {
        // Lost or refused: the changer may be paying. Stop issuing; verify what happened [MDB-CHG-11].
        this.log('warn', `changer: DISPENSE ${count}x type ${type} unconfirmed, verifying`);
        this.left.fill(0);
        this.enterWait(now);
      }
      return true;
    }
    if (command !== CMD_EXPANSION) return false;
    switch (sub) {
      case EXP_PAYOUT:
        if (this.phase !== ALT_SEND) return true;
        if (kind === REPLY_ACK) {
          this.altLeft -= this.altChunk;
          this.altWait(now);
        } else if (kind === REPLY_NAK && ++this.naks <= MAX_NAKS) {
          // Refused, so not acted on: asking again is safe [MDB-CHG-11].
          this.retryAt = now + this.timing.pollIntervalMs;
        } else if (kind === REPLY_NAK) {
          this.log('warn', 'changer: EXPANSION PAYOUT refused, verifying');
          this.altLeft = 0;
          this.phase = VERIFY;
        } else {
          // Lost: the changer may be paying. Never ask twice; PAYOUT STATUS says what it did [MDB-CHG-11].
          this.log('warn', `changer: EXPANSION PAYOUT ${this.altChunk} unconfirmed, verifying`);
          this.altLeft = 0;
          this.altWait(now);
        }
        return true;
      case EXP_PAYOUT_VALUE_POLL:
        if (this.phase !== ALT_WAIT) return true;
        this.retryAt = now + this.timing.pollIntervalMs;
        if (kind === REPLY_DATA && length >= 1) {
          // Paid since the previous value poll (MDB 4.2 §5.3); progress only, PAYOUT STATUS counts the money.
          const s = this.source.setup;
          this.paidSoFar += toMinor(data[0]!, s.scale, s.decimals, this.machineDecimals);
        } else if (kind === REPLY_ACK && now - this.dispenseAt >= this.timing.pollIntervalMs) {
          // A lone ACK: the payout is finished (after a poll period, so a slow start is not taken for the end) [MDB-CHG-14].
          this.phase = ALT_STATUS;
          this.retryAt = now;
        }
        if (this.phase === ALT_WAIT && now - this.dispenseAt > PAYOUT_WATCHDOG_MS) {
          this.phase = ALT_STATUS;
          this.retryAt = now;
        }
        return true;
      case EXP_PAYOUT_STATUS:
        if (this.phase !== ALT_STATUS) return true;
        if (kind === REPLY_DATA) {
          const credits = this.source.credits;
          let value = 0;
          for (let t = 0; t < COIN_TYPES && t < length; t++) {
            const n = data[t]!;
            this.altPaid[t] = this.altPaid[t]! + n;
            const credit = credits[t]!;
            if (credit !== 0xff) value += n * credit;
          }
          // Next chunk only while chunks are paid in full: a short one means the tubes cannot do more.
          this.phase = this.altLeft > 0 && value >= this.altChunk ? ALT_SEND : VERIFY;
          this.naks = 0;
          this.retryAt = now;
          return true;
        }
        this.retryAt = now + this.timing.pollIntervalMs;
        if (now - this.dispenseAt > PAYOUT_WATCHDOG_MS) {
          // Still "busy" (a lone ACK) or silent for too long: the tube counts decide.
          this.log('warn', 'changer: no PAYOUT STATUS, verifying from the tubes');
          this.altCounted = false;
          this.altLeft = 0;
          this.phase = VERIFY;
        }
        return true;
    }
    return false;
  }

  /**
   * The changer read the tubes (the source's `tubes` are fresh). During its
   * init (`initialising`), a payout the reset or silence interrupted is
   * settled from these counts at once, before changerReady, so whoever
   * listens then sees tubes that already match the books.
   */
  tubesRead(now: number, initialising: boolean): void {
    if (this.phase === PRE_STATUS && !initialising) {
      this.before.set(this.source.tubes);
      this.listener.payoutStarting(this.before);
      this.phase = this.alt ? ALT_SEND : DISPENSE;
      this.retryAt = now;
    } else if (this.phase === VERIFY) {
      if (this.alt && this.altCounted && !initialising) this.phase = ALT_CONFIRM;
      else this.finish();
    }
  }

  /** POLL reported coins of `type` reaching (+) or leaving (-) the tubes other than by this payout. */
  tubeMoved(type: number, coins: number): void {
    if (this.phase !== NONE) this.delta[type] = this.delta[type]! + coins;
  }

  /** A POLL was answered; `busy` if it reported "payout busy". */
  polled(busy: boolean, now: number): void {
    if (this.phase === WAIT) {
      // "Payout busy" cleared [MDB-CHG-9], at least one full poll period after the DISPENSE, so a changer that
      // starts reporting "busy" a moment late is not taken for finished.
      const settled = now - this.dispenseAt >= this.timing.pollIntervalMs;
      if (!busy && settled) this.busyCleared = true;
      if (this.busyCleared || now - this.dispenseAt > PAYOUT_WATCHDOG_MS) {
        let more = false;
        for (let t = 0; t < COIN_TYPES; t++) if (this.left[t]! > 0) more = true;
        this.phase = more ? DISPENSE : VERIFY;
        this.retryAt = now;
      }
    }
    // A "just reset" in this POLL has already turned the payout over to the tube counts.
    if (this.phase === ALT_CONFIRM) this.finish();
  }

  /**
   * The changer reset or went silent. A payout under way is verified once it
   * is back (one that had not dispensed anything yet simply starts again).
   */
  interrupted(): void {
    if (this.phase === NONE || this.phase === PRE_STATUS) return;
    this.left.fill(0);
    // An alternative payout's PAYOUT STATUS died with the changer's RAM: the tubes decide.
    this.altLeft = 0;
    this.altCounted = false;
    this.phase = VERIFY;
  }

  private altWait(now: number): void {
    this.phase = ALT_WAIT;
    this.dispenseAt = now;
    this.retryAt = now + this.timing.pollIntervalMs;
  }

  private enterWait(now: number): void {
    this.phase = WAIT;
    this.dispenseAt = now;
    this.busyCleared = false;
  }

  private finish(): void {
    const { tubes, values } = this.source;
    let value = 0;
    let disagree = false;
    const counted = this.alt && this.altCounted;
    for (let t = 0; t < COIN_TYPES; t++) {
      // Coins that left the tube, net of coins that arrived or were hand-dispensed meanwhile [MDB-CHG-10].
      let paid = this.before[t]! + this.delta[t]! - tubes[t]!;
      if (paid < 0) paid = 0;
      if (counted) {
        // PAYOUT STATUS counts the coins that passed the payout sensor; tube counts are the changer's estimate.
        if (paid !== this.altPaid[t]) disagree = true;
        paid = this.altPaid[t]!;
      }
      this.paid[t] = paid;
      value += paid * values[t]!;
    }
    if (disagree) this.log('warn', 'changer: PAYOUT STATUS and the tube counts disagree; going by PAYOUT STATUS');
    // VALUE POLL reports increments and stops at "done", so the last coins are only in PAYOUT STATUS.
    if (this.alt) this.paidSoFar = value;
    const done = this.done;
    this.done = undefined;
    this.phase = NONE;
    this.alt = false;
    this.altLeft = 0;
    this.left.fill(0);
    done?.(this.paid, value);
  }
}
