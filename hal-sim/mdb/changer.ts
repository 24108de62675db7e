/**
 * An MDB coin changer, peripheral side: SETUP, TUBE STATUS, POLL with
 * deposit and status reports, COIN TYPE, DISPENSE with real payout time and
 * tube counts. Coins are physical: what goes into a tube can be paid out,
 * what is paid out is counted, and a jam stops a payout part way.
 *
 * At level 3 (`level`, default 2) it also answers the EXPANSION commands:
 * IDENTIFICATION, FEATURE ENABLE, alternative PAYOUT (it chooses the coins:
 * fewest coins for the largest value it can pay up to the one asked), PAYOUT
 * VALUE POLL (value paid since the previous one; a lone ACK when done),
 * PAYOUT STATUS (coins per type; a lone ACK while busy) and SEND DIAGNOSTIC
 * STATUS (powering up, OK, inhibited, manual fill active, dispenser error
 * after a jam, or whatever a test sets). At level 2 they go unanswered, as on
 * a real level 2 changer.
 */
import type { Scheduler } from '../scheduler.js';
import type { SimMdbBus } from './bus.js';
import { SimPeripheral, type Reply } from './peripheral.js';
import { COIN_TYPES } from '../../firmware/money/coins.js';

export interface SimCoin {
  /** Minor units. */
  value: number;
  /** Coins in its tube; null: no tube, this coin goes to the cash box. */
  tube: number | null;
  /** A token, not money: SETUP reports its credit as FF (its value is ignored). */
  token?: boolean;
}

/** What a level 3 changer says in EXPANSION IDENTIFICATION. */
export interface SimIdentity {
  /** 3 ASCII characters. */
  manufacturer: string;
  /** Up to 12 ASCII characters each. */
  serial: string;
  model: string;
  /** BCD, e.g. 0x0142. */
  software: number;
  /** Option bits offered (b0 alternative payout, b1 extended diagnostics, b2 manual fill/payout, b3 file transport). */
  features: number;
}

export interface SimChangerOptions {
  coins: readonly SimCoin[];
  /** Numeric ISO 4217 code (840 USD, 978 EUR). */
  currency: number;
  decimals: number;
  tubeCapacity?: number;
  payoutUsPerCoin?: number;
  /** MDB level reported by SETUP: 2 (default) or 3. */
  level?: 2 | 3;
  identity?: Partial<SimIdentity>;
}

const MAX_EVENTS = 16;
/** Reported as "powering up" by the diagnostic this long after a reset. */
const POWER_UP_US = 500_000;

export const SIM_CHANGER_IDENTITY: SimIdentity = { manufacturer: 'VFL', serial: '000000012345', model: 'SIM-CHANGER3', software: 0x0142, features: 0b0011 };

interface PayoutJob {
  type: number;
  count: number;
  /** Part of an alternative payout (EXPANSION PAYOUT). */
  alt: boolean;
}

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
  private payouts: PayoutJob[] = [];
  private paying = false;
  /** MDB level reported by SETUP; a test may change it and reset the changer (a changer swapped). */
  level: 2 | 3;
  identity: SimIdentity;
  /** Option bits the VMC enabled (FEATURE ENABLE); cleared by a reset. */
  enabledFeatures = 0;
  /** Diagnostic codes (main << 8 | sub) to report instead of the changer's own state. */
  diagnosticOverride: number[] | undefined;
  /** The operator is filling or emptying tubes by hand (diagnostic 05 10). */
  manualFillActive = false;
  /** A payout jammed since the last reset (diagnostic 14 00). */
  jammed = false;
  private resetAtUs = 0;
  /** An alternative payout is under way. */
  private altActive = false;
  /** Coins per type paid by alternative payouts since the VMC last acknowledged PAYOUT STATUS. */
  private readonly altPaid = new Array<number>(COIN_TYPES).fill(0);
  /** Scale units paid by the alternative payout since the last acknowledged PAYOUT VALUE POLL. */
  private altUnpolled = 0;
  /** Every EXPANSION PAYOUT acted on: value asked and paid (minor units) once done, coins chosen per type. */
  readonly altPayouts: { asked: number; chosen: number[] }[] = [];
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
    for (const c of options.coins) if (!c.token) g = gcd(g, c.value);
    // Scale so each coin's credit fits a byte.
    this.scale = g;
    this.credits = options.coins.map((c) => (c.token ? 0xff : c.value / g));
    if (this.credits.some((c) => c > 254 && c !== 0xff)) throw new RangeError('coin values too far apart for one scaling factor');
    this.capacity = options.tubeCapacity ?? 200;
    this.tubes = options.coins.map((c) => c.tube ?? 0);
    this.hasTube = options.coins.map((c) => c.tube !== null);
    this.cashbox = options.coins.map(() => 0);
    this.payoutUs = options.payoutUsPerCoin ?? 150_000;
    this.level = options.level ?? 2;
    this.identity = { ...SIM_CHANGER_IDENTITY, ...options.identity };
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
  /**
   * Report POLL activity this simulation does not produce itself (a rejected
   * coin, slugs, a status byte), as one event, in the order it comes.
   */
  report(...bytes: number[]): void {
    this.events.push(bytes);
  }

  spontaneousReset(): void {
    this.powerUp();
  }

  /** What a reset (RESET, brown-out) does to the changer's RAM: payouts stop, options and pending counts are lost. */
  private powerUp(): void {
    this.justReset = true;
    this.acceptMask = 0;
    this.payouts = [];
    this.enabledFeatures = 0;
    this.altActive = false;
    this.altPaid.fill(0);
    this.altUnpolled = 0;
    this.jammed = false;
    this.resetAtUs = this.scheduler.now;
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
        this.powerUp();
        this.manualMask = 0;
        return 'ack';
      case 1: {
        // SETUP
        let routing = 0;
        this.hasTube.forEach((t, i) => {
          if (t) routing |= 1 << i;
        });
        const bcd = 0x1000 | toBcd(this.options.currency);
        const reply = [this.level, bcd >> 8, bcd & 0xff, this.scale, this.options.decimals, routing >> 8, routing & 0xff];
        for (let t = 0; t < COIN_TYPES; t++) reply.push(this.credits[t] ?? 0);
        return reply;
      }
      case 2: {
        // TUBE STATUS
        let full = 0;
        this.tubes.forEach((n, i) => {
          if (this.hasTube[i] && n >= this.capacity) full |= 1 << i;
        });
        const reply = [full >> 8, full & 0xff];
        for (let t = 0; t < COIN_TYPES; t++) reply.push(Math.min(255, this.tubes[t] ?? 0));
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
          this.payouts.push({ type, count, alt: false });
          if (!this.paying) this.payNext();
        }
        return 'ack';
      }
      case 7:
        // Level 2: no expansion commands; stay silent like a real device.
        if (this.level < 3) return 'none';
        return this.expansion(block, acked);
      default:
        return 'none';
    }
  }

  private expansion(block: readonly number[], acked: (fn: () => void) => void): Reply {
    switch (block[1]) {
      case 0x00: {
        // IDENTIFICATION: manufacturer, serial, model, software (BCD), option bits.
        const id = this.identity;
        const f = id.features >>> 0;
        return [...ascii(id.manufacturer, 3), ...ascii(id.serial, 12), ...ascii(id.model, 12), (id.software >> 8) & 0xff, id.software & 0xff, (f >>> 24) & 0xff, (f >>> 16) & 0xff, (f >>> 8) & 0xff, f & 0xff];
      }
      case 0x01: // FEATURE ENABLE: only what is offered can be enabled.
        this.enabledFeatures = (((block[2]! << 24) | (block[3]! << 16) | (block[4]! << 8) | block[5]!) & this.identity.features) >>> 0;
        return 'ack';
      case 0x02: {
        // PAYOUT: refused unless enabled, or while another payout runs.
        if (!(this.enabledFeatures & 1) || this.busy) return 'nak';
        this.startAltPayout(block[2]!);
        return 'ack';
      }
      case 0x03: {
        // PAYOUT STATUS: a lone ACK while paying; the counts, cleared once acknowledged.
        if (this.altActive) return 'ack';
        const counts = this.altPaid.slice();
        acked(() => {
          for (let t = 0; t < COIN_TYPES; t++) this.altPaid[t] = Math.max(0, this.altPaid[t]! - counts[t]!);
        });
        return counts.map((n) => Math.min(255, n));
      }
      case 0x04: {
        // PAYOUT VALUE POLL: value paid since the last one; a lone ACK once the payout is over.
        if (!this.altActive) return 'ack';
        const v = Math.min(255, this.altUnpolled);
        acked(() => {
          this.altUnpolled -= v;
        });
        return [v];
      }
      case 0x05: {
        const codes = this.diagnosticCodes();
        const reply: number[] = [];
        for (const c of codes.slice(0, 8)) reply.push((c >> 8) & 0xff, c & 0xff);
        return reply;
      }
      default:
        return 'nak';
    }
  }

  /** What SEND DIAGNOSTIC STATUS reports now. */
  diagnosticCodes(): number[] {
    if (this.diagnosticOverride) return this.diagnosticOverride;
    if (this.scheduler.now - this.resetAtUs < POWER_UP_US) return [0x0100];
    if (this.manualFillActive) return [0x0510];
    if (this.jammed) return [0x1400];
    if (this.acceptMask === 0) return [0x0600];
    return [0x0300];
  }

  /** Coins per type an alternative payout of `units` scale units would pay now: the largest value up to it, in the fewest coins. */
  chooseCoins(units: number): number[] {
    // Bounded change-making over at most 255 units: best[v] = fewest coins paying exactly v.
    const best = new Array<number>(units + 1).fill(Infinity);
    const pick: number[][] = [new Array<number>(COIN_TYPES).fill(0)];
    best[0] = 0;
    for (let t = 0; t < this.credits.length; t++) {
      const credit = this.credits[t]!;
      if (!this.hasTube[t] || credit === 0) continue;
      // Each coin in the tube is one item (0/1 knapsack), at most units/credit of them matter.
      const n = Math.min(this.tubes[t]!, Math.floor(units / credit));
      for (let k = 0; k < n; k++) {
        for (let v = units; v >= credit; v--) {
          const c = best[v - credit]! + 1;
          if (c < best[v]!) {
            best[v] = c;
            const p = pick[v - credit]!.slice();
            p[t]!++;
            pick[v] = p;
          }
        }
      }
    }
    for (let v = units; v >= 0; v--) if (best[v]! < Infinity) return pick[v]!;
    return new Array<number>(COIN_TYPES).fill(0);
  }

  private startAltPayout(units: number): void {
    const chosen = this.chooseCoins(units);
    this.altPayouts.push({ asked: units * this.scale, chosen });
    this.altActive = true;
    // Largest coins first, as a real changer pays.
    const order = chosen.map((n, t) => ({ t, n })).filter((x) => x.n > 0).sort((a, b) => this.credits[b.t]! - this.credits[a.t]!);
    for (const { t, n } of order) this.payouts.push({ type: t, count: n, alt: true });
    if (this.payouts.length === 0) {
      // Nothing payable: done at once (PAYOUT STATUS reports zeros).
      this.altActive = false;
      return;
    }
    if (!this.paying) this.payNext();
  }

  private payNext(): void {
    const job = this.payouts[0];
    if (!job) {
      this.paying = false;
      this.altActive = false;
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
        if (this.jamPayoutAfter === 0) {
          this.events.push([0x07]);
          this.jammed = true;
        }
        this.jamPayoutAfter = undefined;
        this.payouts = [];
        this.paying = false;
        this.altActive = false;
        return;
      }
      if (this.jamPayoutAfter !== undefined) this.jamPayoutAfter--;
      this.tubes[current.type]!--;
      this.paidOut.push(this.options.coins[current.type]!.value);
      if (current.alt) {
        this.altPaid[current.type]!++;
        this.altUnpolled += this.credits[current.type]!;
      }
      current.count--;
      if (current.count === 0) this.payouts.shift();
      this.payNext();
    });
  }
}

/** An ASCII field padded with spaces to `n` bytes. */
export function ascii(text: string, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(i < text.length ? text.charCodeAt(i) & 0x7f : 0x20);
  return out;
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
