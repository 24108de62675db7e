/**
 * A level-2 MDB coin changer, peripheral side: SETUP, TUBE STATUS, POLL with
 * deposit and status reports, COIN TYPE, DISPENSE with real payout time and
 * tube counts. Coins are physical: what goes into a tube can be paid out,
 * what is paid out is counted, and a jam stops a payout part way.
 */
import type { Scheduler } from '../scheduler.js';
import type { SimMdbBus } from './bus.js';
import { SimPeripheral, type Reply } from './peripheral.js';

export interface SimCoin {
  /** Minor units. */
  value: number;
  /** Coins in its tube; null: no tube, this coin goes to the cash box. */
  tube: number | null;
}

export interface SimChangerOptions {
  coins: readonly SimCoin[];
  /** Numeric ISO 4217 code (840 USD, 978 EUR). */
  currency: number;
  decimals: number;
  tubeCapacity?: number;
  payoutUsPerCoin?: number;
}

const MAX_EVENTS = 16;

export class SimCoinChanger extends SimPeripheral {
  readonly options: SimChangerOptions;
  readonly scale: number;
  readonly credits: number[];
  readonly tubes: number[];
  readonly hasTube: boolean[];
  readonly cashbox: number[];
  readonly capacity: number;
  acceptMask = 0;
  manualMask = 0;
  private justReset = true;
  /** Reported-but-not-yet-acknowledged and not-yet-reported events, oldest first. */
  private events: number[][] = [];
  private payouts: { type: number; count: number }[] = [];
  private paying = false;
  /** Stop the next payout after this many coins, reporting a tube jam. */
  jamPayoutAfter: number | undefined;
  /** Coins handed to the customer by DISPENSE: values in order. */
  readonly paidOut: number[] = [];
  /** Coins the customer inserted that came straight back (acceptance off, unknown coin). */
  coinsReturned = 0;
  /** Value of every coin the changer accepted (tubes and cash box). */
  acceptedValue = 0;
  private readonly payoutUs: number;

  constructor(scheduler: Scheduler, bus: SimMdbBus, options: SimChangerOptions) {
    super(0x08, scheduler, bus);
    this.options = options;
    if (options.coins.length === 0 || options.coins.length > 16) throw new RangeError('a changer has 1 to 16 coin types');
    let g = 0;
    for (const c of options.coins) g = gcd(g, c.value);
    // Scale so each coin's credit fits a byte.
    this.scale = g;
    this.credits = options.coins.map((c) => c.value / g);
    if (this.credits.some((c) => c > 254)) throw new RangeError('coin values too far apart for one scaling factor');
    this.capacity = options.tubeCapacity ?? 200;
    this.tubes = options.coins.map((c) => c.tube ?? 0);
    this.hasTube = options.coins.map((c) => c.tube !== null);
    this.cashbox = options.coins.map(() => 0);
    this.payoutUs = options.payoutUsPerCoin ?? 150_000;
  }

  get busy(): boolean {
    return this.paying || this.payouts.length > 0;
  }

  /** True while events wait to be reported to the VMC. */
  get pending(): boolean {
    return this.events.length > 0 || this.justReset;
  }

  get paidValue(): number {
    let v = 0;
    for (const c of this.paidOut) v += c;
    return v;
  }

  /** Value of accepted coins the VMC has not acknowledged yet (lost with the changer's RAM if the power fails). */
  get unreportedValue(): number {
    let v = 0;
    for (const e of this.events) if ((e[0]! & 0xc0) === 0x40) v += this.options.coins[e[0]! & 15]!.value;
    return v;
  }

  /** The customer drops a coin. Returns false if it came straight back. */
  insertCoin(value: number): boolean {
    const type = this.options.coins.findIndex((c, t) => c.value === value && (this.acceptMask & (1 << t)) !== 0);
    if (type < 0 || this.events.length >= MAX_EVENTS || !this.powered) {
      this.coinsReturned++;
      return false;
    }
    this.acceptedValue += value;
    if (this.hasTube[type] && this.tubes[type]! < this.capacity) {
      this.tubes[type]!++;
      this.events.push([0x40 | 0x10 | type, this.tubes[type]!]);
    } else {
      this.cashbox[type]!++;
      this.events.push([0x40 | type, this.tubes[type]!]);
    }
    return true;
  }

  /** The customer pulls the coin-return lever: reported as status 0x01 (escrow request). */
  pressReturnLever(): void {
    this.events.push([0x01]);
  }

  /** Report a status code at the next POLL (coin jam 0x0C, acceptor unplugged 0x06, ...). */
  reportStatus(code: number): void {
    this.events.push([code & 0x1f]);
  }

  /** The changer restarts by itself (brown-out, firmware watchdog): it will report "just reset". */
  spontaneousReset(): void {
    this.justReset = true;
    this.acceptMask = 0;
    this.payouts = [];
  }

  protected commandLength(block: readonly number[]): number {
    switch (block[0]! & 7) {
      case 4:
        return 6;
      case 5:
        return 3;
      case 7:
        if (block.length < 2) return 0;
        return block[1] === 0x01 ? 7 : block[1] === 0x02 ? 4 : 3;
      default:
        return 2;
    }
  }

  protected handle(command: number, block: readonly number[], acked: (fn: () => void) => void): Reply {
    switch (command) {
      case 0: // RESET
        this.justReset = true;
        this.acceptMask = 0;
        this.manualMask = 0;
        this.payouts = [];
        return 'ack';
      case 1: {
        // SETUP
        let routing = 0;
        this.hasTube.forEach((t, i) => {
          if (t) routing |= 1 << i;
        });
        const bcd = 0x1000 | toBcd(this.options.currency);
        const reply = [2, bcd >> 8, bcd & 0xff, this.scale, this.options.decimals, routing >> 8, routing & 0xff];
        for (let t = 0; t < 16; t++) reply.push(this.credits[t] ?? 0);
        return reply;
      }
      case 2: {
        // TUBE STATUS
        let full = 0;
        this.tubes.forEach((n, i) => {
          if (this.hasTube[i] && n >= this.capacity) full |= 1 << i;
        });
        const reply = [full >> 8, full & 0xff];
        for (let t = 0; t < 16; t++) reply.push(Math.min(255, this.tubes[t] ?? 0));
        return reply;
      }
      case 3: {
        // POLL
        const reply: number[] = [];
        let taken = 0;
        const wasReset = this.justReset;
        if (wasReset) reply.push(0x0b);
        if (this.busy) reply.push(0x02);
        for (const e of this.events) {
          if (reply.length + e.length > 16) break;
          reply.push(...e);
          taken++;
        }
        if (reply.length === 0) return [];
        acked(() => {
          if (wasReset) this.justReset = false;
          this.events.splice(0, taken);
        });
        return reply;
      }
      case 4: // COIN TYPE
        this.acceptMask = (block[1]! << 8) | block[2]!;
        this.manualMask = (block[3]! << 8) | block[4]!;
        return 'ack';
      case 5: {
        // DISPENSE
        const type = block[1]! & 15;
        const count = block[1]! >> 4;
        if (type < this.tubes.length && this.hasTube[type] && count > 0) {
          this.payouts.push({ type, count });
          if (!this.paying) this.payNext();
        }
        return 'ack';
      }
      default:
        // Level 2: no expansion commands; stay silent like a real device.
        return 'none';
    }
  }

  private payNext(): void {
    const job = this.payouts[0];
    if (!job) {
      this.paying = false;
      return;
    }
    this.paying = true;
    this.scheduler.after(this.payoutUs, () => {
      const current = this.payouts[0];
      if (!current) {
        this.paying = false;
        return;
      }
      if (this.jamPayoutAfter === 0 || this.tubes[current.type]! === 0) {
        // Jammed or empty tube: abandon the rest of this payout.
        if (this.jamPayoutAfter === 0) this.events.push([0x07]);
        this.jamPayoutAfter = undefined;
        this.payouts = [];
        this.paying = false;
        return;
      }
      if (this.jamPayoutAfter !== undefined) this.jamPayoutAfter--;
      this.tubes[current.type]!--;
      this.paidOut.push(this.options.coins[current.type]!.value);
      current.count--;
      if (current.count === 0) this.payouts.shift();
      this.payNext();
    });
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export function toBcd(n: number): number {
  let out = 0;
  let shift = 0;
  do {
    out |= (n % 10) << shift;
    n = Math.floor(n / 10);
    shift += 4;
  } while (n > 0);
  return out;
}
