/**
 * MDB coin changer (address 0x08), level 2 and level 3 command sets.
 *
 * Init: RESET, POLL for "just reset", SETUP; at level 3 also EXPANSION
 * IDENTIFICATION (0F 00), FEATURE ENABLE (0F 01) for the options this driver
 * uses, and SEND DIAGNOSTIC STATUS (0F 05); then TUBE STATUS (no earlier than
 * 500 ms after the reset) and COIN TYPE. Then POLL for deposits and status.
 * Nothing above the level SETUP reported is ever sent.
 *
 * Payouts are verified, never assumed: TUBE STATUS is read before the first
 * DISPENSE and again once the changer stops reporting "payout busy"; what was
 * paid is the difference. A DISPENSE whose answer was lost is not repeated
 * (the changer may have heard it); the payout is verified as it stands and
 * the caller plans any remainder again from the fresh tube counts.
 *
 * Alternative payout (level 3 with the option enabled): the changer chooses
 * the coins for a value (0F 02), PAYOUT VALUE POLL (0F 04) follows progress,
 * and PAYOUT STATUS (0F 03) says how many coins of each type went out. The
 * tubes are read before (for the journal) and after, as for DISPENSE; a
 * payout the changer's reset or silence cut short is settled from the tube
 * counts instead, since its PAYOUT STATUS is lost with the changer's RAM.
 */
import { ADDRESS_CHANGER, bcdCurrency } from './frame.js';
import { REPLY_ACK, REPLY_DATA, REPLY_NAK, type ReplyKind } from './link.js';
import {
  PHASE_INIT,
  PHASE_READY,
  Peripheral,
  clearIdentity,
  emptyIdentity,
  parseIdentity,
  toMinor,
  type MdbIdentity,
  type PeripheralOptions,
} from './peripheral.js';

const CMD_SETUP = 1;
const CMD_TUBE_STATUS = 2;
const CMD_POLL = 3;
const CMD_COIN_TYPE = 4;
const CMD_DISPENSE = 5;
const CMD_EXPANSION = 7;

const EXP_IDENTIFICATION = 0x00;
const EXP_FEATURE_ENABLE = 0x01;
const EXP_PAYOUT = 0x02;
const EXP_PAYOUT_STATUS = 0x03;
const EXP_PAYOUT_VALUE_POLL = 0x04;
const EXP_DIAGNOSTIC = 0x05;

/** Level 3 option bits (identification Z30-Z33, FEATURE ENABLE Y1-Y4). */
export const FEATURE_ALTERNATIVE_PAYOUT = 1 << 0;
export const FEATURE_EXTENDED_DIAGNOSTICS = 1 << 1;
export const FEATURE_MANUAL_FILL_PAYOUT = 1 << 2;
export const FEATURE_FILE_TRANSPORT = 1 << 3;
/** What this driver uses, so what it enables when the changer offers it. */
const FEATURES_USED = FEATURE_ALTERNATIVE_PAYOUT | FEATURE_EXTENDED_DIAGNOSTICS;

const PHASE_SETUP = PHASE_INIT;
const PHASE_TUBES = PHASE_INIT + 1;
const PHASE_COIN_TYPE = PHASE_INIT + 2;
const PHASE_IDENTIFY = PHASE_INIT + 3;
const PHASE_FEATURES = PHASE_INIT + 4;
const PHASE_DIAGNOSTIC = PHASE_INIT + 5;
/** An optional init step (level 3 expansion) is skipped after this many failed attempts. */
const EXPANSION_TRIES = 3;

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
/** Alternative payout: send EXPANSION PAYOUT for the next chunk of value. */
const PAYOUT_ALT_SEND = 5;
/** Alternative payout: PAYOUT VALUE POLL until it answers a lone ACK (done). */
const PAYOUT_ALT_WAIT = 6;
/** Alternative payout: PAYOUT STATUS until it answers the coins paid per type. */
const PAYOUT_ALT_STATUS = 7;
/**
 * Alternative payout counted and tubes read: finish at the next POLL that
 * does not say "just reset". A changer that reset before PAYOUT STATUS
 * answers "done" and zero coins (its RAM is gone) and says so only on POLL.
 */
const PAYOUT_ALT_CONFIRM = 8;

/** Longest a payout may keep reporting "busy" before it is verified anyway. */
const PAYOUT_WATCHDOG_MS = 30000;
const TUBE_STATUS_AFTER_RESET_MS = 500;
/** Tubes filled by hand are not reported: re-read the counts this often. */
const TUBE_REFRESH_MS = 60000;
/** Level 3: ask for the diagnostic status this often while idle... */
const DIAGNOSTIC_INTERVAL_MS = 30000;
/** ...and sooner while the changer says it is still powering up. */
const DIAGNOSTIC_POWERING_UP_MS = 1000;

/** Diagnostic codes (main << 8 | sub) from SEND DIAGNOSTIC STATUS. */
export const DIAG_POWERING_UP = 0x0100;
export const DIAG_POWERING_DOWN = 0x0200;
export const DIAG_OK = 0x0300;
export const DIAG_KEYPAD_SHIFTED = 0x0400;
export const DIAG_MANUAL_ACTIVE = 0x0510;
export const DIAG_NEW_INVENTORY = 0x0520;
export const DIAG_INHIBITED = 0x0600;

/** The changer's events, each a callback in the driver's options (the Moddable way: callbacks come in the options). */
export interface ChangerCallbacks {
  changerReady(): void;
  changerLost(): void;
  /** A coin was accepted; `value` in the machine's minor units; routing ROUTE_CASHBOX or ROUTE_TUBES. */
  coinDeposited(type: number, value: number, routing: number): void;
  coinRejected(type: number): void;
  coinsDispensedManually(type: number, count: number, value: number): void;
  changerStatus(code: number): void;
  /** The coin-return (escrow) lever was pressed. */
  coinReturnPressed(): void;
  /** A payout read the tubes and is about to send its first DISPENSE or PAYOUT (counts per coin type). */
  payoutStarting(tubes: Uint8Array): void;
  /** Level 3: the changer identified itself (optional; `identity` has it too). */
  changerIdentified?(identity: MdbIdentity): void;
  /** Level 3: the diagnostic status changed (codes main << 8 | sub; `diagnostic` has it too). */
  changerDiagnostic?(codes: Uint16Array, count: number): void;
}

/** The last SEND DIAGNOSTIC STATUS answer. */
export interface ChangerDiagnostic {
  /** Up to 8 codes, main << 8 | sub (DIAG_OK, DIAG_INHIBITED, 0x1xxx errors...). */
  readonly codes: Uint16Array;
  count: number;
  /** Board time of the answer (-Infinity: never asked, or below level 3). */
  at: number;
}

/** A diagnostic code in words (MDB 4.2 changer diagnostic codes). */
export function diagnosticText(code: number): string {
  switch (code) {
    case DIAG_POWERING_UP:
      return 'powering up';
    case DIAG_POWERING_DOWN:
      return 'powering down';
    case DIAG_OK:
      return 'OK';
    case DIAG_KEYPAD_SHIFTED:
      return 'keypad shifted';
    case DIAG_MANUAL_ACTIVE:
      return 'manual fill/payout active';
    case DIAG_NEW_INVENTORY:
      return 'new inventory information available';
    case DIAG_INHIBITED:
      return 'inhibited by VMC';
    case 0x1001:
      return 'changer error: checksum error #1';
    case 0x1002:
      return 'changer error: checksum error #2';
    case 0x1003:
      return 'changer error: low line voltage';
    case 0x1110:
      return 'discriminator: flight deck open';
    case 0x1111:
      return 'discriminator: escrow return stuck open';
    case 0x1130:
      return 'discriminator: coin jam in sensor';
    case 0x1141:
      return 'discriminator: discrimination below standard';
    case 0x1150:
      return 'discriminator: validation sensor A out of range';
    case 0x1151:
      return 'discriminator: validation sensor B out of range';
    case 0x1152:
      return 'discriminator: validation sensor C out of range';
    case 0x1153:
      return 'discriminator: operating temperature exceeded';
    case 0x1154:
      return 'discriminator: sizing optics failure';
    case 0x1230:
      return 'accept gate: coins entered gate but did not exit';
    case 0x1231:
      return 'accept gate: alarm active';
    case 0x1240:
      return 'accept gate: open but no coin detected';
    case 0x1250:
      return 'accept gate: post-gate sensor covered before gate opened';
    case 0x1310:
      return 'separator: sort sensor error';
    case 0x1502:
      return 'tubes: cassette removed';
    case 0x1503:
      return 'tubes: cash box sensor error';
    case 0x1504:
      return 'tubes: sunlight on tube sensors';
  }
  switch (code >> 8) {
    case 0x10:
      return 'changer error';
    case 0x11:
      return 'discriminator error';
    case 0x12:
      return 'accept gate error';
    case 0x13:
      return 'separator error';
    case 0x14:
      return 'dispenser error (payout/tube jam)';
    case 0x15:
      return 'coin cassette/tube error';
    default:
      return 'unknown';
  }
}

/** Main codes 0x10..0x15 are faults; the others are states. */
export function diagnosticIsError(code: number): boolean {
  return code >= 0x1000;
}

export interface CoinChangerOptions extends PeripheralOptions, ChangerCallbacks {}

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
  private readonly events: ChangerCallbacks;
  private readonly machineDecimals: number;
  readonly setup: ChangerSetup = { level: 0, currency: 0, scale: 1, decimals: 2, routable: 0 };
  /** Level 3 identification (manufacturer, serial, model, software, options); `known` false below level 3. */
  readonly identity: MdbIdentity = emptyIdentity();
  /** Level 3 diagnostic status, refreshed while idle and on trouble. */
  readonly diagnostic: ChangerDiagnostic = { codes: new Uint16Array(8), count: 0, at: -Infinity };
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

  /** Init attempts at the current optional (expansion) step. */
  private initTries = 0;
  /** FEATURE ENABLE bits in flight. */
  private featuresAsked = 0;
  /** Next diagnostic request (level 3). */
  private diagnosticAt = Infinity;

  /** The payout in progress is an alternative payout (EXPANSION PAYOUT). */
  private payoutAlt = false;
  /** Alternative payout: scale units still to ask for, and the chunk in flight. */
  private altLeft = 0;
  private altChunk = 0;
  /** Alternative payout: coins per type PAYOUT STATUS reported, summed over chunks. */
  private readonly altPaid = new Uint16Array(16);
  /** Every chunk's PAYOUT STATUS arrived (false once a reset or silence lost one: the tubes decide). */
  private altCounted = false;
  /** Value paid so far by the alternative payout, from PAYOUT VALUE POLL (minor units; progress only). */
  paidSoFar = 0;

  constructor(options: CoinChangerOptions) {
    super(ADDRESS_CHANGER, options.timing, options.log);
    this.events = options;
    this.machineDecimals = options.decimals;
  }

  get paying(): boolean {
    return this.payoutPhase !== PAYOUT_NONE;
  }

  /** The changer pays a value itself (level 3, alternative payout offered and enabled). */
  get canPayoutValue(): boolean {
    return this.phase === PHASE_READY && this.setup.level >= 3 && (this.identity.enabled & FEATURE_ALTERNATIVE_PAYOUT) !== 0 && this.unitValue() > 0;
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
    this.payoutAlt = false;
    this.payoutPhase = any ? PAYOUT_PRE_STATUS : PAYOUT_VERIFY;
    if (!any) this.payoutBefore.set(this.tubes);
    return true;
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
    if (this.payoutPhase !== PAYOUT_NONE || !this.canPayoutValue) return false;
    const units = Math.floor(amount / this.unitValue());
    this.payoutLeft.fill(0);
    this.payoutDelta.fill(0);
    this.altPaid.fill(0);
    this.payoutNaks = 0;
    this.payoutDone = done;
    this.payoutAlt = true;
    this.altCounted = true;
    this.altLeft = units > 0 ? units : 0;
    this.altChunk = 0;
    this.paidSoFar = 0;
    this.payoutPhase = this.altLeft > 0 ? PAYOUT_PRE_STATUS : PAYOUT_VERIFY;
    if (this.altLeft === 0) this.payoutBefore.set(this.tubes);
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
    this.initTries = 0;
    this.diagnosticAt = Infinity;
  }

  private initStep(phase: number, now: number): void {
    this.phase = phase;
    this.retryAt = now;
    this.initTries = 0;
  }

  /** An optional step failed: try again shortly, or give up on it after a few attempts. */
  private initFailed(next: number, what: string, now: number): void {
    if (++this.initTries < EXPANSION_TRIES) return;
    this.log('warn', `changer: no answer to ${what}, carrying on without it`);
    this.initStep(next, now);
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
      case PHASE_IDENTIFY:
        return this.command(tx, CMD_EXPANSION, EXP_IDENTIFICATION);
      case PHASE_FEATURES:
        return this.featureEnable(tx);
      case PHASE_DIAGNOSTIC:
        return this.command(tx, CMD_EXPANSION, EXP_DIAGNOSTIC);
      case PHASE_TUBES:
        return this.command(tx, CMD_TUBE_STATUS, -1);
      default:
        return this.coinType(tx);
    }
  }

  private featureEnable(tx: Uint8Array): number {
    const f = (this.identity.features & FEATURES_USED) >>> 0;
    this.featuresAsked = f;
    this.command(tx, CMD_EXPANSION, EXP_FEATURE_ENABLE);
    tx[2] = (f >>> 24) & 0xff;
    tx[3] = (f >>> 16) & 0xff;
    tx[4] = (f >>> 8) & 0xff;
    tx[5] = f & 0xff;
    return 6;
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
      case PAYOUT_ALT_SEND:
      case PAYOUT_ALT_WAIT:
      case PAYOUT_ALT_STATUS:
        return now >= this.retryAt;
      case PAYOUT_NONE:
        // The diagnostic waits for an idle changer: a payout has the bus first.
        return now >= this.diagnosticAt;
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
      case PAYOUT_ALT_SEND:
        if (now >= this.retryAt) {
          const chunk = this.altLeft > 255 ? 255 : this.altLeft;
          this.altChunk = chunk;
          this.command(tx, CMD_EXPANSION, EXP_PAYOUT);
          tx[2] = chunk;
          return 3;
        }
        break;
      case PAYOUT_ALT_WAIT:
        // Interleaved with the ordinary POLL, which still brings deposits and status.
        if (now >= this.retryAt) return this.command(tx, CMD_EXPANSION, EXP_PAYOUT_VALUE_POLL);
        break;
      case PAYOUT_ALT_STATUS:
        if (now >= this.retryAt) return this.command(tx, CMD_EXPANSION, EXP_PAYOUT_STATUS);
        break;
    }
    if (this.needCoinType) return this.coinType(tx);
    if (this.needTubeStatus) return this.command(tx, CMD_TUBE_STATUS, -1);
    if (this.payoutPhase === PAYOUT_NONE && now >= this.diagnosticAt) {
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
          this.initStep(this.setup.level >= 3 ? PHASE_IDENTIFY : PHASE_TUBES, now);
        }
        return;
      case CMD_EXPANSION:
        return this.expansionReply(sub, kind, data, length, now);
      case CMD_TUBE_STATUS:
        if (kind !== REPLY_DATA || length < 2) return;
        this.parseTubes(data, length);
        this.tubesReadAt = now;
        if (this.phase === PHASE_TUBES) {
          this.phase = PHASE_COIN_TYPE;
          this.retryAt = now;
          // A payout the reset or silence interrupted is settled from these counts now, before
          // changerReady: whoever listens then sees tubes that already match the books.
          if (this.payoutPhase === PAYOUT_VERIFY) this.finishPayout();
          return;
        }
        this.needTubeStatus = false;
        if (this.payoutPhase === PAYOUT_PRE_STATUS) {
          this.payoutBefore.set(this.tubes);
          this.events.payoutStarting(this.payoutBefore);
          this.payoutPhase = this.payoutAlt ? PAYOUT_ALT_SEND : PAYOUT_DISPENSE;
          this.retryAt = now;
        } else if (this.payoutPhase === PAYOUT_VERIFY) {
          if (this.payoutAlt && this.altCounted) this.payoutPhase = PAYOUT_ALT_CONFIRM;
          else this.finishPayout();
        }
        return;
      case CMD_COIN_TYPE:
        if (kind !== REPLY_ACK) return;
        this.sentAcceptMask = sub;
        this.needCoinType = this.acceptMask() !== sub;
        if (this.phase === PHASE_COIN_TYPE) {
          this.becameReady(now);
          if (this.setup.level >= 3 && this.diagnosticAt === Infinity) this.diagnosticAt = now + DIAGNOSTIC_INTERVAL_MS;
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

  private expansionReply(sub: number, kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean | void {
    switch (sub) {
      case EXP_IDENTIFICATION:
        if (this.phase !== PHASE_IDENTIFY) return;
        if (kind === REPLY_DATA && parseIdentity(data, 0, length, true, this.identity)) {
          const id = this.identity;
          this.log('info', `changer: ${id.manufacturer} model ${id.model} serial ${id.serial} software ${id.software}, options 0x${id.features.toString(16)}`);
          this.events.changerIdentified?.(id);
          this.initStep(PHASE_FEATURES, now);
        } else {
          // Without the identification the options are unknown: enable none.
          this.initFailed(PHASE_DIAGNOSTIC, 'EXPANSION IDENTIFICATION', now);
        }
        return;
      case EXP_FEATURE_ENABLE:
        if (this.phase !== PHASE_FEATURES) return;
        if (kind === REPLY_ACK) {
          this.identity.enabled = this.featuresAsked;
          this.initStep(PHASE_DIAGNOSTIC, now);
        } else {
          this.initFailed(PHASE_DIAGNOSTIC, 'EXPANSION FEATURE ENABLE', now);
        }
        return;
      case EXP_DIAGNOSTIC:
        if (kind === REPLY_DATA && length >= 2) this.parseDiagnostic(data, length, now);
        if (this.phase === PHASE_DIAGNOSTIC) {
          if (kind === REPLY_DATA) this.initStep(PHASE_TUBES, now);
          else this.initFailed(PHASE_TUBES, 'SEND DIAGNOSTIC STATUS', now);
        }
        return;
      case EXP_PAYOUT:
        if (this.payoutPhase !== PAYOUT_ALT_SEND) return;
        if (kind === REPLY_ACK) {
          this.altLeft -= this.altChunk;
          this.altWait(now);
        } else if (kind === REPLY_NAK && ++this.payoutNaks <= 2) {
          // Refused, so not acted on: asking again is safe.
          this.retryAt = now + this.timing.pollIntervalMs;
        } else if (kind === REPLY_NAK) {
          this.log('warn', 'changer: EXPANSION PAYOUT refused, verifying');
          this.altLeft = 0;
          this.payoutPhase = PAYOUT_VERIFY;
        } else {
          // Lost: the changer may be paying. Never ask twice; PAYOUT STATUS says what it did.
          this.log('warn', `changer: EXPANSION PAYOUT ${this.altChunk} unconfirmed, verifying`);
          this.altLeft = 0;
          this.altWait(now);
        }
        return;
      case EXP_PAYOUT_VALUE_POLL:
        if (this.payoutPhase !== PAYOUT_ALT_WAIT) return;
        this.retryAt = now + this.timing.pollIntervalMs;
        if (kind === REPLY_DATA && length >= 1) {
          // Paid since the previous value poll (MDB 4.2); progress only, PAYOUT STATUS counts the money.
          this.paidSoFar += toMinor(data[0]!, this.setup.scale, this.setup.decimals, this.machineDecimals);
        } else if (kind === REPLY_ACK && now - this.dispenseAt >= this.timing.pollIntervalMs) {
          // A lone ACK: the payout is finished (after a poll period, so a slow start is not taken for the end).
          this.payoutPhase = PAYOUT_ALT_STATUS;
          this.retryAt = now;
        }
        if (this.payoutPhase === PAYOUT_ALT_WAIT && now - this.dispenseAt > PAYOUT_WATCHDOG_MS) {
          this.payoutPhase = PAYOUT_ALT_STATUS;
          this.retryAt = now;
        }
        return;
      case EXP_PAYOUT_STATUS:
        if (this.payoutPhase !== PAYOUT_ALT_STATUS) return;
        if (kind === REPLY_DATA) {
          let value = 0;
          for (let t = 0; t < 16 && t < length; t++) {
            const n = data[t]!;
            this.altPaid[t] = this.altPaid[t]! + n;
            const credit = this.credits[t]!;
            if (credit !== 0xff) value += n * credit;
          }
          // Next chunk only while chunks are paid in full: a short one means the tubes cannot do more.
          this.payoutPhase = this.altLeft > 0 && value >= this.altChunk ? PAYOUT_ALT_SEND : PAYOUT_VERIFY;
          this.payoutNaks = 0;
          this.retryAt = now;
          return;
        }
        this.retryAt = now + this.timing.pollIntervalMs;
        if (now - this.dispenseAt > PAYOUT_WATCHDOG_MS) {
          // Still "busy" (a lone ACK) or silent for too long: the tube counts decide.
          this.log('warn', 'changer: no PAYOUT STATUS, verifying from the tubes');
          this.altCounted = false;
          this.altLeft = 0;
          this.payoutPhase = PAYOUT_VERIFY;
        }
        return;
    }
  }

  private altWait(now: number): void {
    this.payoutPhase = PAYOUT_ALT_WAIT;
    this.dispenseAt = now;
    this.retryAt = now + this.timing.pollIntervalMs;
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
      if (code === DIAG_POWERING_UP) poweringUp = true;
      // The changer says its tube counts moved (manual fill, cassette change): read them.
      if (code === DIAG_NEW_INVENTORY) this.needTubeStatus = true;
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
          // Trouble: the level 3 diagnostic says more about it than the status byte.
          if (b !== CHANGER_NO_CREDIT && b !== CHANGER_BUSY && b !== CHANGER_DOUBLE_ARRIVAL) this.requestDiagnostic();
          this.events.changerStatus(b);
        }
        i++;
      }
    }
    this.payoutProgress(busy, now);
    // A "just reset" in this POLL has already turned the payout over to the tube counts.
    if (this.payoutPhase === PAYOUT_ALT_CONFIRM) this.finishPayout();
    return true;
  }

  protected override pollIdle(now: number): void {
    this.payoutProgress(false, now);
    if (this.payoutPhase === PAYOUT_ALT_CONFIRM) this.finishPayout();
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
    let disagree = false;
    const counted = this.payoutAlt && this.altCounted;
    for (let t = 0; t < 16; t++) {
      // Coins that left the tube, net of coins that arrived or were hand-dispensed meanwhile.
      let paid = this.payoutBefore[t]! + this.payoutDelta[t]! - this.tubes[t]!;
      if (paid < 0) paid = 0;
      if (counted) {
        // PAYOUT STATUS counts the coins that passed the payout sensor; tube counts are the changer's estimate.
        if (paid !== this.altPaid[t]) disagree = true;
        paid = this.altPaid[t]!;
      }
      this.payoutPaid[t] = paid;
      value += paid * this.values[t]!;
    }
    if (disagree) this.log('warn', 'changer: PAYOUT STATUS and the tube counts disagree; going by PAYOUT STATUS');
    // VALUE POLL reports increments and stops at "done", so the last coins are only in PAYOUT STATUS.
    if (this.payoutAlt) this.paidSoFar = value;
    const done = this.payoutDone;
    this.payoutDone = undefined;
    this.payoutPhase = PAYOUT_NONE;
    this.payoutAlt = false;
    this.altLeft = 0;
    this.payoutLeft.fill(0);
    done?.(this.payoutPaid, value);
  }

  protected lostReady(_now: number): void {
    this.sentAcceptMask = -1;
    // A payout interrupted by a reset or silence is verified once the changer is back
    // (one that had not dispensed anything yet simply starts again).
    if (this.payoutPhase !== PAYOUT_NONE && this.payoutPhase !== PAYOUT_PRE_STATUS) {
      this.payoutLeft.fill(0);
      // An alternative payout's PAYOUT STATUS died with the changer's RAM: the tubes decide.
      this.altLeft = 0;
      this.altCounted = false;
      this.payoutPhase = PAYOUT_VERIFY;
    }
    this.events.changerLost();
  }
}

function hex4(code: number): string {
  const s = code.toString(16).toUpperCase();
  return s.length >= 4 ? s : '0000'.slice(s.length) + s;
}
