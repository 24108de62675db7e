/**
 * An MDB bill validator with escrow, peripheral side: SETUP, POLL with
 * routing and status reports, BILL TYPE, ESCROW (stack or return, with
 * transport time), STACKER, and identification: 37 00 at level 1 (default),
 * 37 02 with option bits and 37 01 FEATURE ENABLE at level 2. Bills are
 * physical: a returned bill is counted as handed back, a stacked one lands
 * in the cash box.
 */
import type { Scheduler } from '../scheduler.js';
import type { SimMdbBus } from './bus.js';
import { ascii, toBcd, type SimIdentity } from './changer.js';
import { SimPeripheral, type Reply } from './peripheral.js';

export interface SimBillOptions {
  /** Accepted bill values in minor units, bill type 0 first. */
  bills: readonly number[];
  currency: number;
  decimals: number;
  stackerCapacity?: number;
  /** Time from insertion to the bill resting in escrow. */
  validateUs?: number;
  stackUs?: number;
  returnUs?: number;
  /** MDB level reported by SETUP: 1 (default) or 2. */
  level?: 1 | 2;
  identity?: Partial<SimIdentity>;
}

/** Offers file transport (b0), which the VMC has no use for. */
export const SIM_BILL_IDENTITY: SimIdentity = { manufacturer: 'VFL', serial: '000000067890', model: 'SIM-BILL2', software: 0x0210, features: 0b0001 };

const MAX_EVENTS = 8;

export class SimBillValidator extends SimPeripheral {
  readonly options: SimBillOptions;
  readonly scale: number;
  readonly credits: number[];
  enableMask = 0;
  escrowMask = 0;
  private justReset = true;
  private events: number[] = [];
  /** Bill type in escrow, or -1. */
  escrowed = -1;
  /** A bill is travelling (validation, stacking or return). */
  moving = false;
  /** Bill type on its way to the stacker (-1: none). */
  stacking = -1;
  /** Bill type being validated (-1: none). */
  validating = -1;
  stacked = 0;
  readonly stackedBills: number[] = [];
  /** Values of the bills handed back to the customer (from escrow, or refused at the slot). */
  readonly returnedBills: number[] = [];
  billsRefused = 0;
  /** MDB level reported by SETUP; a test may change it and reset the validator. */
  level: 1 | 2;
  identity: SimIdentity;
  /** Option bits the VMC enabled (37 01); cleared by a reset. */
  enabledFeatures = 0;

  get billsReturned(): number {
    return this.returnedBills.length;
  }

  get returnedValue(): number {
    let v = 0;
    for (const b of this.returnedBills) v += b;
    return v;
  }

  constructor(scheduler: Scheduler, bus: SimMdbBus, options: SimBillOptions) {
    super(0x30, scheduler, bus);
    this.options = options;
    if (options.bills.length === 0 || options.bills.length > 16) throw new RangeError('a bill validator has 1 to 16 bill types');
    let g = 0;
    for (const b of options.bills) g = gcd(g, b);
    this.scale = g;
    this.credits = options.bills.map((b) => b / g);
    if (this.credits.some((c) => c > 254)) throw new RangeError('bill values too far apart for one scaling factor');
    this.level = options.level ?? 1;
    this.identity = { ...SIM_BILL_IDENTITY, ...options.identity };
  }

  get pending(): boolean {
    return this.events.length > 0 || this.justReset || this.moving;
  }

  /** The customer feeds a bill. Returns false if it was refused at once. */
  insertBill(value: number): boolean {
    const type = this.options.bills.findIndex((b, t) => b === value && (this.enableMask & (1 << t)) !== 0);
    if (type < 0 || this.escrowed >= 0 || this.moving || this.events.length >= MAX_EVENTS || !this.powered) {
      this.billsRefused++;
      this.returnedBills.push(value);
      return false;
    }
    this.moving = true;
    this.validating = type;
    this.scheduler.after(this.options.validateUs ?? 600_000, () => {
      this.moving = false;
      this.validating = -1;
      if (this.escrowMask & (1 << type)) {
        this.escrowed = type;
        this.events.push(0x90 | type);
      } else {
        this.stack(type);
      }
    });
    return true;
  }

  /**
   * Report POLL activity this simulation does not produce itself (recycler
   * and manual-dispense routes, bills refused while disabled, insert
   * attempts), one byte an event, in the order they come.
   */
  report(...bytes: number[]): void {
    this.events.push(...bytes);
  }

  spontaneousReset(): void {
    this.returnEscrow(false);
    this.justReset = true;
    this.enableMask = 0;
    this.enabledFeatures = 0;
  }

  private stack(type: number): void {
    this.stacked++;
    this.stackedBills.push(this.options.bills[type]!);
    this.events.push(0x80 | type);
  }

  private returnEscrow(report: boolean): void {
    if (this.escrowed < 0) return;
    const type = this.escrowed;
    this.escrowed = -1;
    this.returnedBills.push(this.options.bills[type]!);
    if (report) this.events.push(0xa0 | type);
  }

  protected commandLength(block: readonly number[]): number {
    switch (block[0]! & 7) {
      case 2:
        return 4;
      case 4:
        return 6;
      case 5:
        return 3;
      case 7:
        if (block.length < 2) return 0;
        return block[1] === 0x01 ? 7 : 3;
      default:
        return 2;
    }
  }

  protected handle(command: number, block: readonly number[], acked: (fn: () => void) => void): Reply {
    switch (command) {
      case 0: // RESET: an escrowed bill goes back to the customer.
        this.returnEscrow(false);
        this.justReset = true;
        this.enableMask = 0;
        this.enabledFeatures = 0;
        this.events = [];
        return 'ack';
      case 1: {
        const bcd = 0x1000 | toBcd(this.options.currency);
        const cap = this.options.stackerCapacity ?? 500;
        const reply = [this.level, bcd >> 8, bcd & 0xff, this.scale >> 8, this.scale & 0xff, this.options.decimals, cap >> 8, cap & 0xff, 0, 0, 0xff];
        for (let t = 0; t < 16; t++) reply.push(this.credits[t] ?? 0);
        return reply;
      }
      case 2: // SECURITY
        return 'ack';
      case 3: {
        const reply: number[] = [];
        const wasReset = this.justReset;
        if (wasReset) reply.push(0x06);
        const taken = Math.min(this.events.length, 16 - reply.length);
        for (let i = 0; i < taken; i++) reply.push(this.events[i]!);
        if (reply.length === 0) return [];
        acked(() => {
          if (wasReset) this.justReset = false;
          this.events.splice(0, taken);
        });
        return reply;
      }
      case 4:
        this.enableMask = (block[1]! << 8) | block[2]!;
        this.escrowMask = (block[3]! << 8) | block[4]!;
        return 'ack';
      case 5: {
        if (this.escrowed < 0 || this.moving) {
          this.events.push(0x0a);
          return 'ack';
        }
        const type = this.escrowed;
        const stack = block[1] === 1;
        this.moving = true;
        if (stack) this.stacking = type;
        this.scheduler.after(stack ? (this.options.stackUs ?? 1_200_000) : (this.options.returnUs ?? 700_000), () => {
          this.moving = false;
          this.stacking = -1;
          if (this.escrowed !== type) return;
          if (stack) {
            this.escrowed = -1;
            this.stack(type);
          } else {
            this.returnEscrow(true);
          }
        });
        return 'ack';
      }
      case 6: {
        const n = Math.min(this.stacked, 0x7fff);
        const full = this.stacked >= (this.options.stackerCapacity ?? 500) ? 0x80 : 0;
        return [full | (n >> 8), n & 0xff];
      }
      case 7:
        return this.expansion(block);
      default:
        return 'none';
    }
  }

  private expansion(block: readonly number[]): Reply {
    const id = this.identity;
    const ident = [...ascii(id.manufacturer, 3), ...ascii(id.serial, 12), ...ascii(id.model, 12), (id.software >> 8) & 0xff, id.software & 0xff];
    switch (block[1]) {
      case 0x00: // LEVEL 1 IDENTIFICATION (no option bits): every level answers it.
        return ident;
      case 0x01: // LEVEL 2+ FEATURE ENABLE
        if (this.level < 2) return 'none';
        this.enabledFeatures = (((block[2]! << 24) | (block[3]! << 16) | (block[4]! << 8) | block[5]!) & id.features) >>> 0;
        return 'ack';
      case 0x02: {
        // LEVEL 2+ IDENTIFICATION WITH OPTION BITS
        if (this.level < 2) return 'none';
        const f = id.features >>> 0;
        return [...ident, (f >>> 24) & 0xff, (f >>> 16) & 0xff, (f >>> 8) & 0xff, f & 0xff];
      }
      default:
        return 'none';
    }
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
