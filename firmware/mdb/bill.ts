/**
 * MDB bill validator (address 0x30), level 1 command set.
 *
 * Init: RESET, POLL for "just reset", SETUP, STACKER, BILL TYPE. A bill in
 * escrow is not credit: the VMC decides to stack or return it (ESCROW), and
 * only a "stacked" report credits the customer.
 */
import { ADDRESS_BILL, bcdCurrency } from './frame.js';
import { REPLY_ACK, REPLY_DATA, type ReplyKind } from './link.js';
import { PHASE_INIT, PHASE_READY, Peripheral, toMinor, type PeripheralLog, type PeripheralTiming } from './peripheral.js';

const CMD_SETUP = 1;
const CMD_POLL = 3;
const CMD_BILL_TYPE = 4;
const CMD_ESCROW = 5;
const CMD_STACKER = 6;

const PHASE_SETUP = PHASE_INIT;
const PHASE_STACKER = PHASE_INIT + 1;
const PHASE_BILL_TYPE = PHASE_INIT + 2;

export const ROUTE_STACKED = 0;
export const ROUTE_ESCROW = 1;
export const ROUTE_RETURNED = 2;
export const ROUTE_RECYCLER = 3;
export const ROUTE_DISABLED_REJECTED = 4;

export const BILL_MOTOR = 0x01;
export const BILL_SENSOR = 0x02;
export const BILL_BUSY = 0x03;
export const BILL_ROM = 0x04;
export const BILL_JAMMED = 0x05;
export const BILL_JUST_RESET = 0x06;
export const BILL_REMOVED = 0x07;
export const BILL_CASHBOX_OUT = 0x08;
export const BILL_DISABLED = 0x09;
export const BILL_INVALID_ESCROW = 0x0a;
export const BILL_REJECTED = 0x0b;
export const BILL_CREDITED_REMOVAL = 0x0c;

export interface BillEvents {
  billReady(): void;
  billLost(): void;
  /** A bill waits in escrow for the VMC's decision. */
  billEscrowed(type: number, value: number): void;
  /** A bill went to the stacker (or recycler): credit. */
  billStacked(type: number, value: number): void;
  /** A bill from escrow was handed back to the customer. */
  billReturned(type: number, value: number): void;
  billStatus(code: number): void;
}

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
  private readonly events: BillEvents;
  private readonly machineDecimals: number;
  readonly setup: BillSetup = { level: 0, currency: 0, scale: 1, decimals: 2, stackerCapacity: 0, escrow: false };
  readonly values = new Int32Array(16);
  stackerCount = 0;
  stackerFull = false;
  private accepting = false;
  private acceptLimit = 0;
  private sentMask = -1;
  private needBillType = false;
  private needStacker = false;
  private retryAt = -Infinity;
  /** Bill type in escrow (-1: none), and the decision for it not yet sent (-1: none). */
  private escrowType = -1;
  private escrowDecision = -1;
  /** The validator accepted a "stack" for the bill in escrow. */
  private stackAcked = false;

  constructor(events: BillEvents, machineDecimals: number, timing: PeripheralTiming, log: PeripheralLog) {
    super(ADDRESS_BILL, timing, log);
    this.events = events;
    this.machineDecimals = machineDecimals;
  }

  /** Value of the bill held in escrow, or 0. */
  get escrowValue(): number {
    return this.escrowType >= 0 ? this.values[this.escrowType]! : 0;
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
    if (!this.accepting) return 0;
    let mask = 0;
    for (let t = 0; t < 16; t++) {
      const v = this.values[t]!;
      if (v > 0 && v <= this.acceptLimit) mask |= 1 << t;
    }
    return mask;
  }

  // ---- init -------------------------------------------------------------

  protected startInit(now: number): void {
    this.phase = PHASE_SETUP;
    this.retryAt = now;
  }

  protected initWakeAt(_now: number): number {
    return this.retryAt;
  }

  protected nextInit(tx: Uint8Array, now: number): number {
    this.retryAt = now + this.timing.pollIntervalMs;
    switch (this.phase) {
      case PHASE_SETUP:
        return this.command(tx, CMD_SETUP, -1);
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
    // Escrow every enabled bill: the VMC decides whether to take it.
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
          this.phase = PHASE_STACKER;
          this.retryAt = now;
        }
        return;
      case CMD_STACKER:
        if (kind !== REPLY_DATA || length < 2) return;
        this.stackerFull = (data[0]! & 0x80) !== 0;
        this.stackerCount = ((data[0]! & 0x7f) << 8) | data[1]!;
        this.needStacker = false;
        if (this.phase === PHASE_STACKER) {
          this.phase = PHASE_BILL_TYPE;
          this.retryAt = now;
        }
        return;
      case CMD_BILL_TYPE:
        if (kind !== REPLY_ACK) return;
        this.sentMask = sub;
        this.needBillType = this.mask() !== sub;
        if (this.phase === PHASE_BILL_TYPE) {
          this.becameReady(now);
          this.events.billReady();
        }
        return;
      case CMD_ESCROW:
        if (kind === REPLY_ACK) {
          if (sub === 1) this.stackAcked = true;
          this.escrowDecision = -1;
        }
        // Otherwise the decision stays pending and is sent again.
        return;
    }
  }

  private parseSetup(data: Uint8Array, length: number): void {
    const s = this.setup;
    s.level = data[0]!;
    s.currency = bcdCurrency(data[1]!, data[2]!);
    s.scale = ((data[3]! << 8) | data[4]!) || 1;
    s.decimals = data[5]!;
    s.stackerCapacity = (data[6]! << 8) | data[7]!;
    s.escrow = data[10] === 0xff;
    this.values.fill(0);
    for (let t = 0; t < 16 && 11 + t < length; t++) {
      const credit = data[11 + t]!;
      if (credit !== 0 && credit !== 0xff) this.values[t] = toMinor(credit, s.scale, s.decimals, this.machineDecimals);
    }
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
          case ROUTE_STACKED:
          case ROUTE_RECYCLER:
            this.clearEscrow(type);
            this.stackerCount++;
            // The STACKER answer says full too, but only when asked: count towards the capacity meanwhile.
            if (this.setup.stackerCapacity > 0 && this.stackerCount >= this.setup.stackerCapacity) this.stackerFull = true;
            this.events.billStacked(type, value);
            break;
          case ROUTE_ESCROW:
            this.escrowType = type;
            this.escrowDecision = -1;
            this.stackAcked = false;
            this.events.billEscrowed(type, value);
            break;
          case ROUTE_RETURNED:
            this.clearEscrow(type);
            this.events.billReturned(type, value);
            break;
          default:
            // Rejected while disabled, or recycler service moves: no credit.
            break;
        }
      } else if ((b & 0xe0) === 0x40) {
        // 010xxxxx: bills inserted while acceptance was disabled.
      } else if (b === BILL_JUST_RESET) {
        this.afterReset(now);
      } else if (b === BILL_INVALID_ESCROW) {
        this.log('warn', 'bill validator: invalid escrow request');
        this.events.billStatus(b);
      } else {
        this.events.billStatus(b);
      }
    }
    return true;
  }

  private clearEscrow(type: number): void {
    if (this.escrowType === type || this.escrowType < 0) {
      this.escrowType = -1;
      this.escrowDecision = -1;
      this.stackAcked = false;
    }
  }

  /** A reset hands an escrowed bill back, unless the validator had already accepted "stack". */
  private afterReset(now: number): void {
    const type = this.escrowType;
    if (type >= 0) {
      const value = this.values[type]!;
      const stacked = this.stackAcked;
      this.escrowType = -1;
      this.escrowDecision = -1;
      this.stackAcked = false;
      if (stacked) {
        this.log('warn', 'bill validator: reset after accepting STACK; crediting the bill');
        this.events.billStacked(type, value);
      } else {
        this.events.billReturned(type, value);
      }
    }
    this.justReset(now);
  }

  protected lostReady(_now: number): void {
    this.sentMask = -1;
    this.events.billLost();
  }
}
