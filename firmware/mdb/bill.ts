/**
 * MDB bill validator (address 0x30), level 1 and level 2 command sets
 * (MDB 4.2 §6).
 *
 * Init: RESET, POLL for "just reset", SETUP, identification (37 00 at level
 * 1, 37 02 with the option bits at level 2), FEATURE ENABLE (37 01, level 2
 * only), STACKER, BILL TYPE. A bill in escrow is not credit: the VMC decides
 * to stack or return it (ESCROW, MDB 4.2 §6.3), and only a "stacked" report
 * credits the customer.
 *
 * A reset (the validator's own, or the VMC's after silence) hands an escrowed
 * bill back. If a "stack" had gone out for it (acknowledged or not: the
 * answer may be what was lost), the report that would have said what
 * happened is lost with the validator's RAM, so the STACKER count read during
 * the init decides: one more bill than when the stack was ordered means it
 * was stacked (credit), otherwise it was returned.
 */
import { ADDRESS_BILL, CMD_EXPANSION, bcdCurrency } from './frame.js';
import { REPLY_ACK, REPLY_DATA, type ReplyKind } from './link.js';
import {
  PHASE_INIT,
  PHASE_READY,
  PHASE_RESET,
  Peripheral,
  clearIdentity,
  emptyIdentity,
  parseIdentity,
  exactScaled,
  toMinor,
  type MdbIdentity,
  type PeripheralOptions,
} from './peripheral.js';

const CMD_SETUP = 1;
const CMD_POLL = 3;
const CMD_BILL_TYPE = 4;
const CMD_ESCROW = 5;
const CMD_STACKER = 6;

const EXP_IDENTIFICATION = 0x00;
const EXP_FEATURE_ENABLE = 0x01;
const EXP_IDENTIFICATION_OPTIONS = 0x02;

/** Level 2+ option bits (identification Z30-Z33, FEATURE ENABLE). */
export const BILL_FEATURE = Object.freeze({ FILE_TRANSPORT: 1 << 0, RECYCLER: 1 << 1 });
/** Options this driver uses (none yet: no recycler, no file transport); FEATURE ENABLE asks for these. */
const BILL_FEATURES_USED = 0;
/** Bill types 0..15: SETUP's credit table, BILL TYPE's masks, POLL's xxxx. */
const BILL_TYPES = 16;
/** The validator reports what became of an escrowed bill within this long of the ESCROW command [MDB-TIME-6]. */
const ESCROW_RESULT_MS = 30000;

const PHASE_SETUP = PHASE_INIT;
const PHASE_STACKER = PHASE_INIT + 1;
const PHASE_BILL_TYPE = PHASE_INIT + 2;
const PHASE_IDENTIFY = PHASE_INIT + 3;
const PHASE_FEATURES = PHASE_INIT + 4;

/**
 * Where POLL says a bill went (1yyyxxxx: yyy routing, xxxx type). Only
 * STACKED to RECYCLER move credit; the others are rejections and recycler
 * service moves (MDB 4.2 §6.3, POLL).
 */
export const BILL_ROUTE = Object.freeze({ STACKED: 0, ESCROW: 1, RETURNED: 2, RECYCLER: 3, DISABLED_REJECTED: 4 });

/** POLL status bytes (MDB 4.2 §6.3), as billStatus reports them. */
export const BILL_STATUS = Object.freeze({
  MOTOR: 0x01,
  SENSOR: 0x02,
  BUSY: 0x03,
  ROM: 0x04,
  JAMMED: 0x05,
  JUST_RESET: 0x06,
  REMOVED: 0x07,
  CASHBOX_OUT: 0x08,
  DISABLED: 0x09,
  INVALID_ESCROW: 0x0a,
  REJECTED: 0x0b,
  CREDITED_REMOVAL: 0x0c,
});

/** The validator's events, each a callback in the driver's options. */
export interface BillCallbacks {
  billReady(): void;
  billLost(): void;
  /** A bill waits in escrow for the VMC's decision. */
  billEscrowed(type: number, value: number): void;
  /** A bill went to the stacker (or recycler): credit. */
  billStacked(type: number, value: number): void;
  /** A bill from escrow was handed back to the customer. */
  billReturned(type: number, value: number): void;
  /** Optional: without it the driver logs the status byte. */
  billStatus?(code: number): void;
  /** The validator identified itself (optional; `identity` has it too). */
  billIdentified?(identity: MdbIdentity): void;
}

export interface BillValidatorOptions extends PeripheralOptions, BillCallbacks {}

export interface BillSetup {
  level: number;
  currency: number;
  scale: number;
  decimals: number;
  stackerCapacity: number;
  escrow: boolean;
}

export class BillValidator extends Peripheral {
  readonly name = 'bill validator';
  protected readonly pollCommand = CMD_POLL;
  private readonly events: BillCallbacks;
  private readonly machineDecimals: number;
  readonly setup: BillSetup = { level: 0, currency: 0, scale: 1, decimals: 2, stackerCapacity: 0, escrow: false };
  readonly values = new Int32Array(BILL_TYPES);
  /** Identification (manufacturer, serial, model, software; option bits at level 2). */
  readonly identity: MdbIdentity = emptyIdentity();
  stackerCount = 0;
  stackerFull = false;
  private accepting = false;
  private acceptLimit = 0;
  private sentMask = -1;
  private needBillType = false;
  private needStacker = false;
  /** Bill type in escrow (-1: none), and the decision for it not yet sent (-1: none). */
  private escrowType = -1;
  private escrowDecision = -1;
  /** The validator accepted a "stack" for the bill in escrow. */
  private stackAcked = false;
  /** Value of the bill in escrow, as when it was escrowed (SETUP is read again after a reset). */
  private escrowedValue = 0;
  /** A "stack" for the bill in escrow went on the wire (acknowledged or not), and the stacker count then. */
  private stackSent = false;
  private stackerBefore = 0;
  /** After a reset: the escrowed bill's fate is decided by the STACKER count read during the init. */
  private stackUnsure = false;
  /** When the validator acknowledged ESCROW for the bill in escrow (-1: not yet); its result is due within 30 s. */
  private decidedAt = -1;

  constructor(options: BillValidatorOptions) {
    super(ADDRESS_BILL, options.timing, options.log, options.currency, options);
    this.events = options;
    this.machineDecimals = options.decimals;
  }

  /** Value of the bill held in escrow, or 0. */
  get escrowValue(): number {
    return this.escrowType >= 0 ? this.escrowedValue : 0;
  }

  get escrowBusy(): boolean {
    return this.escrowDecision >= 0 || this.stackAcked;
  }

  /** Accept bills worth at most `limit` (0 or `on` false disables acceptance). */
  setAccepting(on: boolean, limit: number): void {
    this.accepting = on;
    this.acceptLimit = limit;
    if (this.phase === PHASE_READY && this.mask() !== this.sentMask) this.needBillType = true;
  }

  /** Stack (true) or return (false) the bill in escrow. */
  decide(stack: boolean): void {
    if (this.escrowType < 0) return;
    this.escrowDecision = stack ? 1 : 0;
  }

  refreshStacker(): void {
    this.needStacker = true;
  }

  private mask(): number {
    // A validator in another currency (or scaling) takes no bills: they would be credited in the wrong money.
    if (!this.accepting || this.refusal !== '') return 0;
    let mask = 0;
    for (let t = 0; t < BILL_TYPES; t++) {
      const v = this.values[t]!;
      if (v > 0 && v <= this.acceptLimit) mask |= 1 << t;
    }
    return mask;
  }

  // ---- init -------------------------------------------------------------

  /** Every init follows a reset (the validator's or ours), and a reset returns an escrowed bill [MDB-BILL-6]. */
  protected startInit(now: number): void {
    this.settleEscrowAfterReset();
    this.initStep(PHASE_SETUP, now);
  }

  protected nextInit(tx: Uint8Array, now: number): number {
    this.retryAt = now + this.timing.pollIntervalMs;
    switch (this.phase) {
      case PHASE_SETUP:
        return this.command(tx, CMD_SETUP, -1);
      case PHASE_IDENTIFY:
        // Level 2+ answers with the option bits; 37 00 is the level 1 form [MDB-BILL-1] [MDB-TIME-7].
        return this.command(tx, CMD_EXPANSION, this.setup.level >= 2 ? EXP_IDENTIFICATION_OPTIONS : EXP_IDENTIFICATION);
      case PHASE_FEATURES:
        return this.featureEnable(tx, this.identity.features, BILL_FEATURES_USED);
      case PHASE_STACKER:
        return this.command(tx, CMD_STACKER, -1);
      default:
        return this.billType(tx);
    }
  }

  private billType(tx: Uint8Array): number {
    const mask = this.mask();
    this.command(tx, CMD_BILL_TYPE, -1);
    this.inFlightSub = mask;
    tx[1] = mask >> 8;
    tx[2] = mask & 0xff;
    // Escrow every enabled bill: the VMC decides whether to take it [MDB-BILL-4].
    const escrow = this.setup.escrow ? mask : 0;
    tx[3] = escrow >> 8;
    tx[4] = escrow & 0xff;
    return 5;
  }

  // ---- ready --------------------------------------------------------------

  protected hasWork(_now: number): boolean {
    return this.escrowDecision >= 0 || this.needBillType || this.needStacker;
  }

  protected nextWork(tx: Uint8Array, _now: number): number {
    if (this.escrowDecision >= 0) {
      if (this.escrowDecision === 1 && !this.stackSent) {
        // From here on the bill may reach the stacker even if no answer does.
        this.stackSent = true;
        this.stackerBefore = this.stackerCount;
      }
      this.command(tx, CMD_ESCROW, this.escrowDecision);
      return 2;
    }
    if (this.needBillType) return this.billType(tx);
    if (this.needStacker) return this.command(tx, CMD_STACKER, -1);
    return 0;
  }

  protected handleReply(command: number, sub: number, kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean | void {
    switch (command) {
      case CMD_SETUP:
        if (kind === REPLY_DATA && length >= 11) {
          this.parseSetup(data, length);
          clearIdentity(this.identity);
          this.initStep(PHASE_IDENTIFY, now);
        }
        return;
      case CMD_EXPANSION:
        if (sub === EXP_FEATURE_ENABLE) {
          if (this.phase !== PHASE_FEATURES) return;
          if (kind === REPLY_ACK) {
            this.identity.enabled = this.featuresAsked;
            this.initStep(PHASE_STACKER, now);
          } else {
            this.initFailed(PHASE_STACKER, 'EXPANSION FEATURE ENABLE', now);
          }
          return;
        }
        if (this.phase !== PHASE_IDENTIFY) return;
        if (kind === REPLY_DATA && parseIdentity(data, 0, length, sub === EXP_IDENTIFICATION_OPTIONS, this.identity)) {
          const id = this.identity;
          this.log('info', `bill validator: ${id.manufacturer} model ${id.model} serial ${id.serial} software ${id.software}${sub === EXP_IDENTIFICATION_OPTIONS ? `, options 0x${id.features.toString(16)}` : ''}`);
          this.events.billIdentified?.(id);
          this.initStep(this.setup.level >= 2 ? PHASE_FEATURES : PHASE_STACKER, now);
        } else {
          this.initFailed(this.setup.level >= 2 ? PHASE_FEATURES : PHASE_STACKER, 'EXPANSION IDENTIFICATION', now);
        }
        return;
      case CMD_STACKER: {
        if (kind !== REPLY_DATA || length < 2) return;
        this.stackerFull = (data[0]! & 0x80) !== 0;
        const count = ((data[0]! & 0x7f) << 8) | data[1]!;
        this.needStacker = false;
        if (this.stackUnsure) this.settleUnsureStack(count);
        this.stackerCount = count;
        if (this.phase === PHASE_STACKER) this.initStep(PHASE_BILL_TYPE, now);
        return;
      }
      case CMD_BILL_TYPE:
        if (kind !== REPLY_ACK) return;
        this.sentMask = sub;
        this.needBillType = this.mask() !== sub;
        if (this.phase === PHASE_BILL_TYPE) {
          this.becameReady(now);
          // A refused validator stays polled (its refusal shows in telemetry) but the machine never uses it.
          if (this.refusal === '') {
            this.announced = true;
            this.events.billReady();
          } else {
            this.refusedReady();
          }
        }
        return;
      case CMD_ESCROW:
        if (kind === REPLY_ACK) {
          if (sub === 1) this.stackAcked = true;
          this.escrowDecision = -1;
          if (this.escrowType >= 0) this.decidedAt = now;
        }
        // Otherwise the decision stays pending and is sent again [MDB-BILL-7].
        return;
    }
  }

  private parseSetup(data: Uint8Array, length: number): void {
    const s = this.setup;
    s.level = data[0]!;
    s.currency = bcdCurrency(data[1]!, data[2]!);
    // 16-bit scaling, MSB first [MDB-BILL-2] [MDB-LINK-12].
    s.scale = ((data[3]! << 8) | data[4]!) || 1;
    s.decimals = data[5]!;
    s.stackerCapacity = (data[6]! << 8) | data[7]!;
    s.escrow = data[10] === 0xff;
    this.values.fill(0);
    let exact = true;
    for (let t = 0; t < BILL_TYPES && 11 + t < length; t++) {
      const credit = data[11 + t]!;
      if (credit !== 0 && credit !== 0xff) {
        this.values[t] = toMinor(credit, s.scale, s.decimals, this.machineDecimals);
        if (exactScaled(this.values[t]!, s.scale, s.decimals, this.machineDecimals) !== credit) exact = false;
      }
    }
    this.judge(s.currency, exact);
    this.sentMask = -1;
    this.log('info', `bill validator: level ${s.level}, currency ${s.currency}, scale ${s.scale}, escrow ${s.escrow ? 'yes' : 'no'}`);
  }

  protected handlePoll(data: Uint8Array, length: number, now: number): boolean | void {
    for (let i = 0; i < length; i++) {
      const b = data[i]!;
      if (b & 0x80) {
        const routing = (b >> 4) & 7;
        const type = b & 15;
        const value = this.values[type]!;
        switch (routing) {
          case BILL_ROUTE.STACKED:
          case BILL_ROUTE.RECYCLER:
            this.clearEscrow(type);
            this.stackerCount++;
            // The STACKER answer says full too, but only when asked: count towards the capacity meanwhile.
            if (this.setup.stackerCapacity > 0 && this.stackerCount >= this.setup.stackerCapacity) this.stackerFull = true;
            this.events.billStacked(type, value);
            break;
          case BILL_ROUTE.ESCROW:
            this.escrowType = type;
            this.escrowedValue = value;
            this.escrowDecision = -1;
            this.stackAcked = false;
            this.stackSent = false;
            this.stackUnsure = false;
            this.decidedAt = -1;
            this.events.billEscrowed(type, value);
            break;
          case BILL_ROUTE.RETURNED:
            this.clearEscrow(type);
            this.events.billReturned(type, value);
            break;
          default:
            // Rejected while disabled, or recycler service moves: no credit [MDB-BILL-5].
            break;
        }
      } else if ((b & 0xe0) === 0x40) {
        // 010xxxxx: bills inserted while acceptance was disabled.
      } else if (b === BILL_STATUS.JUST_RESET) {
        // The validator says it was reset: the init (and what it does with an escrowed bill) starts over.
        this.justReset(now);
      } else {
        if (b === BILL_STATUS.INVALID_ESCROW) this.log('warn', 'bill validator: invalid escrow request');
        if (this.events.billStatus) this.events.billStatus(b);
        else this.log('warn', `bill validator status 0x${b.toString(16)}`);
      }
    }
    this.pollIdle(now);
    return true;
  }

  /**
   * After every POLL. [MDB-TIME-6] A validator that has not said within 30 s
   * of ESCROW what became of the bill is stuck: RESET it (it answers, so now
   * rather than 10 s on). The reset hands back a bill it still holds, and
   * after a STACK the STACKER count read by the init decides, as after any
   * reset. (One method for both kinds of answer: each costs heap.)
   */
  protected override pollIdle(now: number): void {
    if (this.decidedAt < 0 || this.phase !== PHASE_READY || now - this.decidedAt <= ESCROW_RESULT_MS) return;
    this.log('warn', `bill validator: no stacked or returned report ${ESCROW_RESULT_MS} ms after ESCROW; resetting it`);
    this.decidedAt = -1;
    this.phase = PHASE_RESET;
    this.lastReset = -Infinity;
    this.lostReady(now);
  }

  private clearEscrow(type: number): void {
    if (this.escrowType === type || this.escrowType < 0) this.dropEscrow();
  }

  private dropEscrow(): void {
    this.escrowType = -1;
    this.escrowedValue = 0;
    this.escrowDecision = -1;
    this.stackAcked = false;
    this.stackSent = false;
    this.stackUnsure = false;
    this.decidedAt = -1;
  }

  /**
   * A reset hands an escrowed bill back, unless a "stack" had gone out for it:
   * then the STACKER count (read during the init) decides.
   */
  private settleEscrowAfterReset(): void {
    const type = this.escrowType;
    if (type < 0 || this.stackUnsure) return;
    if (this.stackSent) {
      this.stackUnsure = true;
      this.escrowDecision = -1;
      this.log('warn', `bill validator: reset after STACK was sent${this.stackAcked ? ' and accepted' : ''}; the stacker count will tell`);
      return;
    }
    const value = this.escrowedValue;
    this.dropEscrow();
    this.events.billReturned(type, value);
  }

  private settleUnsureStack(count: number): void {
    const type = this.escrowType;
    const value = this.escrowedValue;
    const stacked = count > this.stackerBefore;
    this.dropEscrow();
    if (stacked) {
      this.log('warn', `bill validator: stacker count ${this.stackerBefore} -> ${count}; the bill was stacked, crediting it`);
      this.events.billStacked(type, value);
    } else {
      this.log('warn', `bill validator: stacker count still ${count}; the bill was returned`);
      this.events.billReturned(type, value);
    }
  }

  protected lostReady(_now: number): void {
    this.sentMask = -1;
    if (!this.announced) return;
    this.announced = false;
    this.events.billLost();
  }
}
