/**
 * MDB coin changer (address 0x08), level 2 and level 3 command sets
 * (MDB 4.2 §5).
 *
 * Init: RESET, POLL for "just reset", SETUP; at level 3 also EXPANSION
 * IDENTIFICATION (0F 00), FEATURE ENABLE (0F 01) for the options this driver
 * uses, and SEND DIAGNOSTIC STATUS (0F 05); then TUBE STATUS (no earlier than
 * 500 ms after the reset) and COIN TYPE. Then POLL for deposits and status.
 * Nothing above the level SETUP reported is ever sent.
 *
 * Payouts (DISPENSE, and the level 3 alternative payout) are the business
 * of firmware/mdb/payout.ts, which this driver owns and feeds: it reads the
 * tubes for it, routes it the answers to its commands and tells it what
 * POLL reported. The diagnostic codes are in firmware/mdb/changer-diagnostics.ts.
 */
import { COIN_TYPES } from '../money/coins.js';
import { DIAGNOSTIC, diagnosticIsError, diagnosticText } from './changer-diagnostics.js';
import { ADDRESS_CHANGER, CMD_EXPANSION, bcdCurrency } from './frame.js';
import { REPLY_ACK, REPLY_DATA, type ReplyKind } from './link.js';
import { Payout, READ_TUBES, type PayoutDone } from './payout.js';
import {
  PHASE_INIT,
  PHASE_READY,
  Peripheral,
  clearIdentity,
  emptyIdentity,
  parseIdentity,
  exactScaled,
  toMinor,
  type MdbIdentity,
  type PeripheralOptions,
} from './peripheral.js';

export type { PayoutDone } from './payout.js';

const CMD_SETUP = 1;
const CMD_TUBE_STATUS = 2;
const CMD_POLL = 3;
const CMD_COIN_TYPE = 4;

const EXP_IDENTIFICATION = 0x00;
const EXP_FEATURE_ENABLE = 0x01;
const EXP_DIAGNOSTIC = 0x05;

/** Level 3 option bits (identification Z30-Z33, FEATURE ENABLE Y1-Y4). */
export const CHANGER_FEATURE = Object.freeze({
  ALTERNATIVE_PAYOUT: 1 << 0,
  EXTENDED_DIAGNOSTICS: 1 << 1,
  MANUAL_FILL_PAYOUT: 1 << 2,
  FILE_TRANSPORT: 1 << 3,
});
/** What this driver uses, so what it enables when the changer offers it. */
const FEATURES_USED = CHANGER_FEATURE.ALTERNATIVE_PAYOUT | CHANGER_FEATURE.EXTENDED_DIAGNOSTICS;

const PHASE_SETUP = PHASE_INIT;
const PHASE_TUBES = PHASE_INIT + 1;
const PHASE_COIN_TYPE = PHASE_INIT + 2;
const PHASE_IDENTIFY = PHASE_INIT + 3;
const PHASE_FEATURES = PHASE_INIT + 4;
const PHASE_DIAGNOSTIC = PHASE_INIT + 5;

/** POLL status bytes 0x01..0x0D (MDB 4.2 §5.3), as changerStatus reports them. */
export const CHANGER_STATUS = Object.freeze({
  ESCROW_REQUEST: 0x01,
  PAYOUT_BUSY: 0x02,
  NO_CREDIT: 0x03,
  TUBE_SENSOR: 0x04,
  DOUBLE_ARRIVAL: 0x05,
  ACCEPTOR_UNPLUGGED: 0x06,
  TUBE_JAM: 0x07,
  ROM_ERROR: 0x08,
  ROUTING_ERROR: 0x09,
  BUSY: 0x0a,
  JUST_RESET: 0x0b,
  COIN_JAM: 0x0c,
  COIN_REMOVAL: 0x0d,
});

/** Where a deposited coin went (POLL 01yyxxxx, yy). */
export const ROUTE_CASHBOX = 0;
export const ROUTE_TUBES = 1;
export const ROUTE_REJECT = 3;

/** Wait this long after a reset before the first TUBE STATUS (MDB 4.2 §5.3, RESET) [MDB-TIME-5]. */
const TUBE_STATUS_AFTER_RESET_MS = 500;
/** Tubes filled by hand are not reported: re-read the counts this often. */
const TUBE_REFRESH_MS = 60000;
/** Level 3: ask for the diagnostic status this often while idle... */
const DIAGNOSTIC_INTERVAL_MS = 30000;
/** ...and sooner while the changer says it is still powering up. */
const DIAGNOSTIC_POWERING_UP_MS = 1000;

/** The changer's events, each a callback in the driver's options (the Moddable way: callbacks come in the options). */
export interface ChangerCallbacks {
  changerReady(): void;
  changerLost(): void;
  /** A coin was accepted; `value` in the machine's minor units; routing ROUTE_CASHBOX or ROUTE_TUBES. */
  coinDeposited(type: number, value: number, routing: number): void;
  /** Optional: without it the driver logs the rejection. */
  coinRejected?(type: number): void;
  coinsDispensedManually(type: number, count: number, value: number): void;
  /** Optional: without it the driver logs the status byte. */
  changerStatus?(code: number): void;
  /** The coin-return (escrow) lever was pressed. */
  coinReturnPressed(): void;
  /** A payout read the tubes and is about to send its first DISPENSE or PAYOUT (counts per coin type). */
  payoutStarting(tubes: Uint8Array): void;
  /** Level 3: the changer identified itself (optional; `identity` has it too). */
  changerIdentified?(identity: MdbIdentity): void;
  /** Level 3: the diagnostic status changed (codes main << 8 | sub; `diagnostic` has it too). */
  changerDiagnostic?(codes: Uint16Array, count: number): void;
}

/**
 * The driver's options: the callbacks are called as methods of this object,
 * so an object that listens to the changer can carry the other fields and
 * be passed as it is.
 */
export interface CoinChangerOptions extends PeripheralOptions, ChangerCallbacks {}

/** The last SEND DIAGNOSTIC STATUS answer. */
export interface ChangerDiagnostic {
  /** Up to 8 codes, main << 8 | sub (DIAGNOSTIC.OK, DIAGNOSTIC.INHIBITED, 0x1xxx errors...). */
  readonly codes: Uint16Array;
  count: number;
  /** Board time of the answer (-Infinity: never asked, or below level 3). */
  at: number;
}

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
  private readonly events: ChangerCallbacks;
  private readonly machineDecimals: number;
  readonly setup: ChangerSetup = { level: 0, currency: 0, scale: 1, decimals: 2, routable: 0 };
  /** Level 3 identification (manufacturer, serial, model, software, options); `known` false below level 3. */
  readonly identity: MdbIdentity = emptyIdentity();
  /** Level 3 diagnostic status, refreshed while idle and on trouble. */
  readonly diagnostic: ChangerDiagnostic = { codes: new Uint16Array(8), count: 0, at: -Infinity };
  /** Coin credit per type in scale units as reported by SETUP (0 = unused). */
  readonly credits = new Uint8Array(COIN_TYPES);
  /** Coin value per type in the machine's minor units (0 = unused). */
  readonly values = new Int32Array(COIN_TYPES);
  /** Coins in the tube of each type, from TUBE STATUS and deposit reports. */
  readonly tubes = new Uint8Array(COIN_TYPES);
  tubeFull = 0;
  private accepting = false;
  private sentAcceptMask = -1;
  private needCoinType = false;
  private needTubeStatus = false;
  private tubesReadAt = -Infinity;
  /** Next diagnostic request (level 3). */
  private diagnosticAt = Infinity;
  private readonly payouts: Payout;

  constructor(options: CoinChangerOptions) {
    super(ADDRESS_CHANGER, options.timing, options.log, options.currency, options);
    this.events = options;
    this.machineDecimals = options.decimals;
    this.payouts = new Payout(this, options, options.decimals, options.timing, options.log);
  }

  get paying(): boolean {
    return this.payouts.paying;
  }

  /** Value paid so far by the alternative payout, from PAYOUT VALUE POLL (minor units; progress only). */
  get paidSoFar(): number {
    return this.payouts.paidSoFar;
  }

  /** The changer pays a value itself (level 3, alternative payout offered and enabled). */
  get canPayoutValue(): boolean {
    return this.phase === PHASE_READY && this.setup.level >= 3 && (this.identity.enabled & CHANGER_FEATURE.ALTERNATIVE_PAYOUT) !== 0 && this.unitValue() > 0;
  }

  /** The smallest amount the changer can be asked to pay (one scale unit), in minor units. */
  unitValue(): number {
    return toMinor(1, this.setup.scale, this.setup.decimals, this.machineDecimals);
  }

  /** Any diagnostic code in the last answer is a fault (0x10xx..0x15xx). */
  get diagnosticError(): boolean {
    for (let i = 0; i < this.diagnostic.count; i++) if (diagnosticIsError(this.diagnostic.codes[i]!)) return true;
    return false;
  }

  /** Ask for the diagnostic status at the next idle moment (level 3; ignored below). */
  requestDiagnostic(): void {
    if (this.setup.level >= 3) this.diagnosticAt = -Infinity;
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
    if (this.payouts.paying || this.phase !== PHASE_READY) return false;
    return this.payouts.start(coins, done);
  }

  /**
   * Alternative payout (level 3): the changer pays `amount` (minor units) with
   * coins it chooses, in chunks of at most 255 scale units. `done` receives the
   * coins paid per type and their value, as for `payout`: from PAYOUT STATUS,
   * or from the tube counts if the changer reset or went silent meanwhile. An
   * amount that is not a whole number of scale units is paid rounded down; a
   * changer that cannot pay it all pays what it can (the caller sees less).
   * Returns false if not `canPayoutValue` or a payout is already running.
   */
  payoutValue(amount: number, done: PayoutDone): boolean {
    if (this.payouts.paying || !this.canPayoutValue) return false;
    return this.payouts.startValue(Math.floor(amount / this.unitValue()), done);
  }

  private acceptMask(): number {
    // A changer in another currency (or scaling) takes no coins: they would be credited in the wrong money.
    if (!this.accepting || this.refusal !== '') return 0;
    let mask = 0;
    for (let t = 0; t < COIN_TYPES; t++) if (this.credits[t] !== 0 && this.credits[t] !== 0xff) mask |= 1 << t;
    return mask;
  }

  // ---- init -------------------------------------------------------------

  protected startInit(now: number): void {
    this.initStep(PHASE_SETUP, now);
    this.diagnosticAt = Infinity;
  }

  protected override initWakeAt(_now: number): number {
    if (this.phase === PHASE_TUBES) return Math.max(this.retryAt, this.resetAt + TUBE_STATUS_AFTER_RESET_MS);
    return this.retryAt;
  }

  protected nextInit(tx: Uint8Array, now: number): number {
    this.retryAt = now + this.timing.pollIntervalMs;
    switch (this.phase) {
      case PHASE_SETUP:
        return this.command(tx, CMD_SETUP, -1);
      case PHASE_IDENTIFY:
        return this.command(tx, CMD_EXPANSION, EXP_IDENTIFICATION);
      case PHASE_FEATURES:
        // Only options the changer offered [MDB-CHG-12].
        return this.featureEnable(tx, this.identity.features, FEATURES_USED);
      case PHASE_DIAGNOSTIC:
        return this.command(tx, CMD_EXPANSION, EXP_DIAGNOSTIC);
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
    // Manual payout buttons stay enabled for every tube so the operator can empty them [MDB-CHG-7].
    tx[3] = this.setup.routable >> 8;
    tx[4] = this.setup.routable & 0xff;
    return 5;
  }

  // ---- ready: work and polling -----------------------------------------

  protected hasWork(now: number): boolean {
    if (this.needCoinType || this.needTubeStatus) return true;
    if (this.payouts.paying) return this.payouts.due(now);
    if (now - this.tubesReadAt >= TUBE_REFRESH_MS) this.needTubeStatus = true;
    // The diagnostic waits for an idle changer: a payout has the bus first.
    return now >= this.diagnosticAt;
  }

  protected nextWork(tx: Uint8Array, now: number): number {
    const length = this.payouts.next(tx, now);
    if (length === READ_TUBES) return this.command(tx, CMD_TUBE_STATUS, -1);
    if (length > 0) return this.sending(tx, length);
    if (this.needCoinType) return this.coinType(tx);
    if (this.needTubeStatus) return this.command(tx, CMD_TUBE_STATUS, -1);
    if (!this.payouts.paying && now >= this.diagnosticAt) {
      // Asked once per due time: a lost answer waits for the next round rather than hammering.
      this.diagnosticAt = now + DIAGNOSTIC_INTERVAL_MS;
      return this.command(tx, CMD_EXPANSION, EXP_DIAGNOSTIC);
    }
    return 0;
  }

  protected handleReply(command: number, sub: number, kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean | void {
    switch (command) {
      case CMD_SETUP:
        if (kind === REPLY_DATA && length >= 7) {
          this.parseSetup(data, length);
          clearIdentity(this.identity);
          this.diagnostic.count = 0;
          this.diagnostic.at = -Infinity;
          // Level 3 commands only to a level 3 changer (MDB 4.2 §5.3, SETUP) [MDB-TIME-7] [MDB-CHG-1].
          this.initStep(this.setup.level >= 3 ? PHASE_IDENTIFY : PHASE_TUBES, now);
        }
        return;
      case CMD_TUBE_STATUS:
        if (kind !== REPLY_DATA || length < 2) return;
        this.parseTubes(data, length);
        this.tubesReadAt = now;
        if (this.phase === PHASE_TUBES) {
          this.initStep(PHASE_COIN_TYPE, now);
          this.payouts.tubesRead(now, true);
          return;
        }
        this.needTubeStatus = false;
        this.payouts.tubesRead(now, false);
        return;
      case CMD_COIN_TYPE:
        if (kind !== REPLY_ACK) return;
        this.sentAcceptMask = sub;
        this.needCoinType = this.acceptMask() !== sub;
        if (this.phase === PHASE_COIN_TYPE) {
          this.becameReady(now);
          if (this.setup.level >= 3 && this.diagnosticAt === Infinity) this.diagnosticAt = now + DIAGNOSTIC_INTERVAL_MS;
          // A refused changer stays polled (its refusal shows in telemetry) but the machine never uses it.
          if (this.refusal === '') {
            this.announced = true;
            this.events.changerReady();
          } else {
            this.refusedReady();
          }
        }
        return;
      case CMD_EXPANSION:
        if (this.expansionReply(sub, kind, data, length, now)) return;
        break;
    }
    // DISPENSE and the alternative payout's commands.
    this.payouts.reply(command, sub, kind, data, length, now);
  }

  /** The answer to one of the init's EXPANSION commands, or to a diagnostic request; false for the others. */
  private expansionReply(sub: number, kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean {
    switch (sub) {
      case EXP_IDENTIFICATION:
        if (this.phase !== PHASE_IDENTIFY) return true;
        if (kind === REPLY_DATA && parseIdentity(data, 0, length, true, this.identity)) {
          const id = this.identity;
          this.log('info', `changer: ${id.manufacturer} model ${id.model} serial ${id.serial} software ${id.software}, options 0x${id.features.toString(16)}`);
          this.events.changerIdentified?.(id);
          this.initStep(PHASE_FEATURES, now);
        } else {
          // Without the identification the options are unknown: enable none.
          this.initFailed(PHASE_DIAGNOSTIC, 'EXPANSION IDENTIFICATION', now);
        }
        return true;
      case EXP_FEATURE_ENABLE:
        if (this.phase !== PHASE_FEATURES) return true;
        if (kind === REPLY_ACK) {
          this.identity.enabled = this.featuresAsked;
          this.initStep(PHASE_DIAGNOSTIC, now);
        } else {
          this.initFailed(PHASE_DIAGNOSTIC, 'EXPANSION FEATURE ENABLE', now);
        }
        return true;
      case EXP_DIAGNOSTIC:
        if (kind === REPLY_DATA && length >= 2) this.parseDiagnostic(data, length, now);
        if (this.phase === PHASE_DIAGNOSTIC) {
          if (kind === REPLY_DATA) this.initStep(PHASE_TUBES, now);
          else this.initFailed(PHASE_TUBES, 'SEND DIAGNOSTIC STATUS', now);
        }
        return true;
    }
    return false;
  }

  private parseDiagnostic(data: Uint8Array, length: number, now: number): void {
    const d = this.diagnostic;
    let changed = d.at === -Infinity;
    let count = 0;
    let poweringUp = false;
    for (let i = 0; i + 1 < length && count < d.codes.length; i += 2) {
      const code = (data[i]! << 8) | data[i + 1]!;
      if (d.codes[count] !== code || count >= d.count) changed = true;
      d.codes[count++] = code;
      if (code === DIAGNOSTIC.POWERING_UP) poweringUp = true;
      // The changer says its tube counts moved (manual fill, cassette change): read them.
      if (code === DIAGNOSTIC.NEW_INVENTORY) this.needTubeStatus = true;
    }
    if (count !== d.count) changed = true;
    d.count = count;
    d.at = now;
    this.diagnosticAt = now + (poweringUp ? DIAGNOSTIC_POWERING_UP_MS : DIAGNOSTIC_INTERVAL_MS);
    if (!changed) return;
    for (let i = 0; i < count; i++) {
      const code = d.codes[i]!;
      if (diagnosticIsError(code)) this.log('warn', `changer diagnostic ${hex4(code)}: ${diagnosticText(code)}`);
    }
    this.events.changerDiagnostic?.(d.codes, count);
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
    let exact = true;
    for (let t = 0; t < COIN_TYPES && 7 + t < length; t++) {
      const credit = data[7 + t]!;
      this.credits[t] = credit;
      // 0 is an unused type and FF a token: neither is money [MDB-CHG-2].
      if (credit !== 0 && credit !== 0xff) {
        this.values[t] = toMinor(credit, s.scale, s.decimals, this.machineDecimals);
        if (exactScaled(this.values[t]!, s.scale, s.decimals, this.machineDecimals) !== credit) exact = false;
      }
    }
    this.judge(s.currency, exact);
    this.sentAcceptMask = -1;
    this.log('info', `changer: level ${s.level}, currency ${s.currency}, scale ${s.scale}, ${s.decimals} decimals, tube mask 0x${s.routable.toString(16).padStart(4, '0')}`);
  }

  private parseTubes(data: Uint8Array, length: number): void {
    this.tubeFull = (data[0]! << 8) | data[1]!;
    for (let t = 0; t < COIN_TYPES; t++) {
      const count = 2 + t < length ? data[2 + t]! : 0;
      // "Full" with a count of zero is a faulty tube sensor; the count (0) is all we can rely on [MDB-CHG-4].
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
        this.payouts.tubeMoved(type, -count);
        this.events.coinsDispensedManually(type, count, this.values[type]! * count);
        i += 2;
      } else if ((b & 0xc0) === 0x40) {
        // 01yyxxxx zzzzzzzz: coin deposited, yy routing; a reject (11) or an unknown coin is no credit [MDB-CHG-5].
        if (i + 1 >= length) break;
        const routing = (b >> 4) & 3;
        const type = b & 15;
        if (routing === ROUTE_REJECT || this.values[type] === 0) {
          if (this.events.coinRejected) this.events.coinRejected(type);
          else this.log('info', `coin type ${type} rejected`);
        } else {
          if (routing === ROUTE_TUBES) {
            this.tubes[type] = data[i + 1]!;
            this.payouts.tubeMoved(type, 1);
          }
          this.events.coinDeposited(type, this.values[type]!, routing);
        }
        i += 2;
      } else if ((b & 0xe0) === 0x20) {
        // 001xxxxx: slugs seen since last POLL; nothing to credit.
        i++;
      } else {
        if (b === CHANGER_STATUS.JUST_RESET) {
          // The whole init again [MDB-CHG-6].
          this.justReset(now);
        } else if (b === CHANGER_STATUS.PAYOUT_BUSY) {
          busy = true;
        } else if (b === CHANGER_STATUS.ESCROW_REQUEST) {
          this.events.coinReturnPressed();
        } else {
          // Trouble: the level 3 diagnostic says more about it than the status byte.
          if (b !== CHANGER_STATUS.NO_CREDIT && b !== CHANGER_STATUS.BUSY && b !== CHANGER_STATUS.DOUBLE_ARRIVAL) this.requestDiagnostic();
          if (this.events.changerStatus) this.events.changerStatus(b);
          else this.log('warn', `changer status 0x${b.toString(16)}`);
        }
        i++;
      }
    }
    this.payouts.polled(busy, now);
    return true;
  }

  protected override pollIdle(now: number): void {
    this.payouts.polled(false, now);
  }

  protected lostReady(_now: number): void {
    this.sentAcceptMask = -1;
    this.payouts.interrupted();
    if (!this.announced) return;
    this.announced = false;
    this.events.changerLost();
  }
}

function hex4(code: number): string {
  const s = code.toString(16).toUpperCase();
  return s.length >= 4 ? s : '0000'.slice(s.length) + s;
}
