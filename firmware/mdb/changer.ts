/**
 * MDB coin changer (address 0x08), level 2 command set.
 *
 * Init: RESET, POLL for "just reset", SETUP, TUBE STATUS (no earlier than
 * 500 ms after the reset), COIN TYPE. Then POLL for deposits and status.
 *
 * Payouts are verified, never assumed: TUBE STATUS is read before the first
 * DISPENSE and again once the changer stops reporting "payout busy"; what was
 * paid is the difference. A DISPENSE whose answer was lost is not repeated
 * (the changer may have heard it); the payout is verified as it stands and
 * the caller plans any remainder again from the fresh tube counts.
 */
import { ADDRESS_CHANGER, bcdCurrency } from './frame.js';
import { REPLY_ACK, REPLY_DATA, REPLY_NAK, type ReplyKind } from './link.js';
import { PHASE_INIT, PHASE_READY, Peripheral, toMinor, type PeripheralLog, type PeripheralTiming } from './peripheral.js';

const CMD_SETUP = 1;
const CMD_TUBE_STATUS = 2;
const CMD_POLL = 3;
const CMD_COIN_TYPE = 4;
const CMD_DISPENSE = 5;

const PHASE_SETUP = PHASE_INIT;
const PHASE_TUBES = PHASE_INIT + 1;
const PHASE_COIN_TYPE = PHASE_INIT + 2;

/** Changer POLL status codes (single bytes 0x01..0x0D). */
export const CHANGER_ESCROW_REQUEST = 0x01;
export const CHANGER_PAYOUT_BUSY = 0x02;
export const CHANGER_NO_CREDIT = 0x03;
export const CHANGER_TUBE_SENSOR = 0x04;
export const CHANGER_DOUBLE_ARRIVAL = 0x05;
export const CHANGER_ACCEPTOR_UNPLUGGED = 0x06;
export const CHANGER_TUBE_JAM = 0x07;
export const CHANGER_ROM_ERROR = 0x08;
export const CHANGER_ROUTING_ERROR = 0x09;
export const CHANGER_BUSY = 0x0a;
export const CHANGER_JUST_RESET = 0x0b;
export const CHANGER_COIN_JAM = 0x0c;
export const CHANGER_COIN_REMOVAL = 0x0d;

export const ROUTE_CASHBOX = 0;
export const ROUTE_TUBES = 1;
export const ROUTE_REJECT = 3;

const PAYOUT_NONE = 0;
const PAYOUT_PRE_STATUS = 1;
const PAYOUT_DISPENSE = 2;
const PAYOUT_WAIT = 3;
const PAYOUT_VERIFY = 4;

/** Longest a payout may keep reporting "busy" before it is verified anyway. */
const PAYOUT_WATCHDOG_MS = 30000;
const TUBE_STATUS_AFTER_RESET_MS = 500;
/** Tubes filled by hand are not reported: re-read the counts this often. */
const TUBE_REFRESH_MS = 60000;

export interface ChangerEvents {
  changerReady(): void;
  changerLost(): void;
  /** A coin was accepted; `value` in the machine's minor units; routing ROUTE_CASHBOX or ROUTE_TUBES. */
  coinDeposited(type: number, value: number, routing: number): void;
  coinRejected(type: number): void;
  coinsDispensedManually(type: number, count: number, value: number): void;
  changerStatus(code: number): void;
  /** The coin-return (escrow) lever was pressed. */
  coinReturnPressed(): void;
  /** A payout read the tubes and is about to send its first DISPENSE (counts per coin type). */
  payoutStarting(tubes: Uint8Array): void;
}

export type PayoutDone = (paid: Uint16Array, value: number) => void;

export interface ChangerSetup {
  level: number;
  currency: number;
  scale: number;
  decimals: number;
  routable: number;
}

export class CoinChanger extends Peripheral {
  readonly name = 'changer';
  protected readonly pollCommand = CMD_POLL;
  private readonly events: ChangerEvents;
  private readonly machineDecimals: number;
  readonly setup: ChangerSetup = { level: 0, currency: 0, scale: 1, decimals: 2, routable: 0 };
  /** Coin credit per type in scale units as reported by SETUP (0 = unused). */
  readonly credits = new Uint8Array(16);
  /** Coin value per type in the machine's minor units (0 = unused). */
  readonly values = new Int32Array(16);
  /** Coins in the tube of each type, from TUBE STATUS and deposit reports. */
  readonly tubes = new Uint8Array(16);
  tubeFull = 0;
  private accepting = false;
  private sentAcceptMask = -1;
  private needCoinType = false;
  private needTubeStatus = false;
  private retryAt = -Infinity;
  private tubesReadAt = -Infinity;

  private payoutPhase = PAYOUT_NONE;
  private readonly payoutLeft = new Uint16Array(16);
  private readonly payoutBefore = new Uint8Array(16);
  private readonly payoutDelta = new Int16Array(16);
  private readonly payoutPaid = new Uint16Array(16);
  private payoutDone: PayoutDone | undefined;
  private payoutNaks = 0;
  private dispenseAt = 0;
  private busyCleared = false;

  constructor(events: ChangerEvents, machineDecimals: number, timing: PeripheralTiming, log: PeripheralLog) {
    super(ADDRESS_CHANGER, timing, log);
    this.events = events;
    this.machineDecimals = machineDecimals;
  }

  get paying(): boolean {
    return this.payoutPhase !== PAYOUT_NONE;
  }

  /** Enable or disable coin acceptance (sent as COIN TYPE when it changes). */
  setAccepting(on: boolean): void {
    this.accepting = on;
    if (this.phase === PHASE_READY && this.acceptMask() !== this.sentAcceptMask) this.needCoinType = true;
  }

  /** Re-read the tube counts (for example after the operator filled the tubes). */
  refreshTubes(): void {
    this.needTubeStatus = true;
  }

  /**
   * Pay out `coins[t]` coins of each type t. `done` receives what was actually
   * paid, per type and in total, once verified. Returns false if a payout is
   * already running or the changer is not ready.
   */
  payout(coins: ArrayLike<number>, done: PayoutDone): boolean {
    if (this.payoutPhase !== PAYOUT_NONE || this.phase !== PHASE_READY) return false;
    let any = false;
    for (let t = 0; t < 16; t++) {
      const n = t < coins.length ? coins[t]! : 0;
      this.payoutLeft[t] = n;
      if (n > 0) any = true;
    }
    this.payoutDelta.fill(0);
    this.payoutNaks = 0;
    this.payoutDone = done;
    this.payoutPhase = any ? PAYOUT_PRE_STATUS : PAYOUT_VERIFY;
    if (!any) this.payoutBefore.set(this.tubes);
    return true;
  }

  private acceptMask(): number {
    if (!this.accepting) return 0;
    let mask = 0;
    for (let t = 0; t < 16; t++) if (this.credits[t] !== 0 && this.credits[t] !== 0xff) mask |= 1 << t;
    return mask;
  }

  // ---- init -------------------------------------------------------------

  protected startInit(now: number): void {
    this.phase = PHASE_SETUP;
    this.retryAt = now;
  }

  protected initWakeAt(_now: number): number {
    if (this.phase === PHASE_TUBES) return Math.max(this.retryAt, this.resetAt + TUBE_STATUS_AFTER_RESET_MS);
    return this.retryAt;
  }

  protected nextInit(tx: Uint8Array, now: number): number {
    this.retryAt = now + this.timing.pollIntervalMs;
    switch (this.phase) {
      case PHASE_SETUP:
        return this.command(tx, CMD_SETUP, -1);
      case PHASE_TUBES:
        return this.command(tx, CMD_TUBE_STATUS, -1);
      default:
        return this.coinType(tx);
    }
  }

  private coinType(tx: Uint8Array): number {
    const mask = this.acceptMask();
    this.command(tx, CMD_COIN_TYPE, -1);
    this.inFlightSub = mask;
    tx[1] = mask >> 8;
    tx[2] = mask & 0xff;
    // Manual payout buttons stay enabled for every tube so the operator can empty them.
    tx[3] = this.setup.routable >> 8;
    tx[4] = this.setup.routable & 0xff;
    return 5;
  }

  // ---- ready: work and polling -----------------------------------------

  protected hasWork(now: number): boolean {
    if (this.needCoinType || this.needTubeStatus) return true;
    if (this.payoutPhase === PAYOUT_NONE && now - this.tubesReadAt >= TUBE_REFRESH_MS) this.needTubeStatus = true;
    switch (this.payoutPhase) {
      case PAYOUT_PRE_STATUS:
      case PAYOUT_VERIFY:
        return true;
      case PAYOUT_DISPENSE:
        return now >= this.retryAt;
      default:
        return false;
    }
  }

  protected nextWork(tx: Uint8Array, now: number): number {
    switch (this.payoutPhase) {
      case PAYOUT_PRE_STATUS:
      case PAYOUT_VERIFY:
        return this.command(tx, CMD_TUBE_STATUS, -1);
      case PAYOUT_DISPENSE:
        if (now >= this.retryAt) {
          for (let t = 0; t < 16; t++) {
            const left = this.payoutLeft[t]!;
            if (left > 0) {
              const n = left > 15 ? 15 : left;
              this.command(tx, CMD_DISPENSE, (n << 4) | t);
              tx[1] = (n << 4) | t;
              return 2;
            }
          }
          this.payoutPhase = PAYOUT_VERIFY;
          return this.command(tx, CMD_TUBE_STATUS, -1);
        }
        break;
    }
    if (this.needCoinType) return this.coinType(tx);
    if (this.needTubeStatus) return this.command(tx, CMD_TUBE_STATUS, -1);
    return 0;
  }

  protected handleReply(command: number, sub: number, kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean | void {
    switch (command) {
      case CMD_SETUP:
        if (kind === REPLY_DATA && length >= 7) {
          this.parseSetup(data, length);
          this.phase = PHASE_TUBES;
          this.retryAt = now;
        }
        return;
      case CMD_TUBE_STATUS:
        if (kind !== REPLY_DATA || length < 2) return;
        this.parseTubes(data, length);
        this.tubesReadAt = now;
        if (this.phase === PHASE_TUBES) {
          this.phase = PHASE_COIN_TYPE;
          this.retryAt = now;
          return;
        }
        this.needTubeStatus = false;
        if (this.payoutPhase === PAYOUT_PRE_STATUS) {
          this.payoutBefore.set(this.tubes);
          this.events.payoutStarting(this.payoutBefore);
          this.payoutPhase = PAYOUT_DISPENSE;
          this.retryAt = now;
        } else if (this.payoutPhase === PAYOUT_VERIFY) {
          this.finishPayout();
        }
        return;
      case CMD_COIN_TYPE:
        if (kind !== REPLY_ACK) return;
        this.sentAcceptMask = sub;
        this.needCoinType = this.acceptMask() !== sub;
        if (this.phase === PHASE_COIN_TYPE) {
          this.becameReady(now);
          this.events.changerReady();
        }
        return;
      case CMD_DISPENSE: {
        const type = sub & 15;
        const count = sub >> 4;
        if (kind === REPLY_ACK) {
          this.payoutLeft[type] = this.payoutLeft[type]! - count;
          this.enterWait(now);
        } else if (kind === REPLY_NAK && ++this.payoutNaks <= 2) {
          this.retryAt = now + this.timing.pollIntervalMs;
        } else {
          // Lost or refused: the changer may be paying. Stop issuing; verify what happened.
          this.log('warn', `changer: DISPENSE ${count}x type ${type} unconfirmed, verifying`);
          this.payoutLeft.fill(0);
          this.enterWait(now);
        }
        return;
      }
    }
  }

  private enterWait(now: number): void {
    this.payoutPhase = PAYOUT_WAIT;
    this.dispenseAt = now;
    this.busyCleared = false;
  }

  private parseSetup(data: Uint8Array, length: number): void {
    const s = this.setup;
    s.level = data[0]!;
    s.currency = bcdCurrency(data[1]!, data[2]!);
    s.scale = data[3]! || 1;
    s.decimals = data[4]!;
    s.routable = (data[5]! << 8) | data[6]!;
    this.credits.fill(0);
    this.values.fill(0);
    for (let t = 0; t < 16 && 7 + t < length; t++) {
      const credit = data[7 + t]!;
      this.credits[t] = credit;
      if (credit !== 0 && credit !== 0xff) this.values[t] = toMinor(credit, s.scale, s.decimals, this.machineDecimals);
    }
    this.sentAcceptMask = -1;
    this.log('info', `changer: level ${s.level}, currency ${s.currency}, scale ${s.scale}, ${s.decimals} decimals, tube mask 0x${s.routable.toString(16).padStart(4, '0')}`);
  }

  private parseTubes(data: Uint8Array, length: number): void {
    this.tubeFull = (data[0]! << 8) | data[1]!;
    for (let t = 0; t < 16; t++) {
      const count = 2 + t < length ? data[2 + t]! : 0;
      // "Full" with a count of zero is a faulty tube sensor; the count (0) is all we can rely on.
      this.tubes[t] = this.setup.routable & (1 << t) ? count : 0;
    }
  }

  protected handlePoll(data: Uint8Array, length: number, now: number): boolean | void {
    let busy = false;
    let i = 0;
    while (i < length) {
      const b = data[i]!;
      if (b & 0x80) {
        // 1yyyxxxx zzzzzzzz: coins paid out with the manual buttons.
        if (i + 1 >= length) break;
        const count = (b >> 4) & 7;
        const type = b & 15;
        this.tubes[type] = data[i + 1]!;
        if (this.payoutPhase !== PAYOUT_NONE) this.payoutDelta[type] = this.payoutDelta[type]! - count;
        this.events.coinsDispensedManually(type, count, this.values[type]! * count);
        i += 2;
      } else if ((b & 0xc0) === 0x40) {
        // 01yyxxxx zzzzzzzz: coin deposited, yy routing.
        if (i + 1 >= length) break;
        const routing = (b >> 4) & 3;
        const type = b & 15;
        if (routing === ROUTE_REJECT || this.values[type] === 0) {
          this.events.coinRejected(type);
        } else {
          if (routing === ROUTE_TUBES) {
            this.tubes[type] = data[i + 1]!;
            if (this.payoutPhase !== PAYOUT_NONE) this.payoutDelta[type] = this.payoutDelta[type]! + 1;
          }
          this.events.coinDeposited(type, this.values[type]!, routing);
        }
        i += 2;
      } else if ((b & 0xe0) === 0x20) {
        // 001xxxxx: slugs seen since last POLL; nothing to credit.
        i++;
      } else {
        if (b === CHANGER_JUST_RESET) {
          this.justReset(now);
        } else if (b === CHANGER_PAYOUT_BUSY) {
          busy = true;
        } else if (b === CHANGER_ESCROW_REQUEST) {
          this.events.coinReturnPressed();
        } else {
          this.events.changerStatus(b);
        }
        i++;
      }
    }
    this.payoutProgress(busy, now);
    return true;
  }

  protected override pollIdle(now: number): void {
    this.payoutProgress(false, now);
  }

  private payoutProgress(busy: boolean, now: number): void {
    if (this.payoutPhase !== PAYOUT_WAIT) return;
    // At least one full poll period after the DISPENSE, so a changer that
    // starts reporting "busy" a moment late is not taken for finished.
    const settled = now - this.dispenseAt >= this.timing.pollIntervalMs;
    if (!busy && settled) this.busyCleared = true;
    if (this.busyCleared || now - this.dispenseAt > PAYOUT_WATCHDOG_MS) {
      let more = false;
      for (let t = 0; t < 16; t++) if (this.payoutLeft[t]! > 0) more = true;
      this.payoutPhase = more ? PAYOUT_DISPENSE : PAYOUT_VERIFY;
      this.retryAt = now;
    }
  }

  private finishPayout(): void {
    let value = 0;
    for (let t = 0; t < 16; t++) {
      // Coins that left the tube, net of coins that arrived or were hand-dispensed meanwhile.
      let paid = this.payoutBefore[t]! + this.payoutDelta[t]! - this.tubes[t]!;
      if (paid < 0) paid = 0;
      this.payoutPaid[t] = paid;
      value += paid * this.values[t]!;
    }
    const done = this.payoutDone;
    this.payoutDone = undefined;
    this.payoutPhase = PAYOUT_NONE;
    this.payoutLeft.fill(0);
    done?.(this.payoutPaid, value);
  }

  protected lostReady(_now: number): void {
    this.sentAcceptMask = -1;
    // A payout interrupted by a reset or silence is verified once the changer is back
    // (one that had not dispensed anything yet simply starts again).
    if (this.payoutPhase !== PAYOUT_NONE && this.payoutPhase !== PAYOUT_PRE_STATUS) {
      this.payoutLeft.fill(0);
      this.payoutPhase = PAYOUT_VERIFY;
    }
    this.events.changerLost();
  }
}
