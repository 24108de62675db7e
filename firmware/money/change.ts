/**
 * Change-making under the coins actually in the tubes.
 *
 * Finds the fewest coins that pay an amount exactly, using at most `counts[i]`
 * coins of value `values[i]`. Greedy is wrong for bounded tubes (one 25 and
 * three 10s pay 30 as 10+10+10) and for non-canonical coin sets, so this is a
 * bounded min-coin dynamic programme: per coin type, a sliding-window minimum
 * over each residue class, O(types x amount) time.
 *
 * All buffers are allocated once, sized for the largest amount the machine
 * will ever pay (its maximum credit) in units of the coins' greatest common
 * divisor, so planning a payout allocates nothing.
 */

import { COIN_TYPES } from './coins.js';

const INF = 0xffff;
export const MAX_UNITS = 30000;

export interface ChangePlan {
  /** Coins of each type to pay out, indexed like the values given. */
  readonly coins: Uint16Array;
  /** Value the plan pays: the amount asked for, or the most that can be paid below it. */
  paid: number;
  /** Number of coins in the plan. */
  count: number;
  /** True when `paid` equals the amount asked for. */
  exact: boolean;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

export class ChangeMaker {
  readonly unit: number;
  readonly maxAmount: number;
  private readonly values: Int32Array;
  private readonly unitValues: Int32Array;
  private readonly maxUnits: number;
  private readonly best: Uint16Array;
  private readonly choice: Uint8Array;
  private readonly dequeIndex: Uint16Array;
  private readonly dequeKey: Int16Array;
  readonly plan: ChangePlan;

  /**
   * @param values coin values in minor units, one per coin type (0 for a type that is not in a tube)
   * @param maxAmount the largest amount that will be planned at once, in minor units
   */
  constructor(values: ArrayLike<number>, maxAmount: number) {
    const n = values.length;
    if (n > COIN_TYPES) throw new RangeError(`at most ${COIN_TYPES} coin types`);
    if (!Number.isInteger(maxAmount) || maxAmount < 0) throw new RangeError('maxAmount must be a non-negative integer');
    let g = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`coin value ${v} is not a non-negative integer`);
      if (v > 0) g = gcd(v, g);
    }
    this.unit = g === 0 ? 1 : g;
    this.maxAmount = maxAmount;
    this.maxUnits = Math.floor(maxAmount / this.unit);
    // Deque keys (coins - position) must fit an Int16.
    if (this.maxUnits > MAX_UNITS) throw new RangeError(`maxAmount ${maxAmount} exceeds ${MAX_UNITS} units of ${this.unit}`);
    this.values = Int32Array.from(values);
    this.unitValues = new Int32Array(n);
    for (let i = 0; i < n; i++) this.unitValues[i] = this.values[i]! / this.unit;
    const cells = this.maxUnits + 1;
    this.best = new Uint16Array(cells);
    this.choice = new Uint8Array(n * cells);
    this.dequeIndex = new Uint16Array(cells);
    this.dequeKey = new Int16Array(cells);
    this.plan = { coins: new Uint16Array(n), paid: 0, count: 0, exact: true };
  }

  get types(): number {
    return this.values.length;
  }

  /** Bytes of typed-array storage this planner holds (for heap budgeting). */
  get footprint(): number {
    return this.best.byteLength + this.choice.byteLength + this.dequeIndex.byteLength + this.dequeKey.byteLength;
  }

  /**
   * Plan a payout of `amount` from tubes holding `counts[i]` coins of type i.
   * The returned plan object is reused by the next call.
   * When the amount cannot be paid exactly, the plan pays the most it can below it.
   */
  solve(amount: number, counts: ArrayLike<number>): ChangePlan {
    const n = this.values.length;
    const plan = this.plan;
    plan.coins.fill(0);
    plan.paid = 0;
    plan.count = 0;
    plan.exact = amount === 0;
    if (!Number.isInteger(amount) || amount < 0) throw new RangeError(`amount ${amount} is not a non-negative integer`);
    if (amount === 0) return plan;
    const capped = Math.min(amount, this.maxAmount);
    const target = Math.floor(capped / this.unit);
    const best = this.best;
    const choice = this.choice;
    const cells = this.maxUnits + 1;
    const dqIndex = this.dequeIndex;
    const dqKey = this.dequeKey;
    best.fill(INF, 0, target + 1);
    best[0] = 0;

    for (let t = 0; t < n; t++) {
      const v = this.unitValues[t]!;
      const row = t * cells;
      let limit = v > 0 ? counts[t]! : 0;
      if (limit > 255) limit = 255;
      if (v === 0 || limit <= 0) {
        choice.fill(0, row, row + target + 1);
        continue;
      }
      if (limit * v >= target) {
        // The tube can never run out within this amount: the plain unbounded
        // recurrence (about half the work of the windowed one) is exact.
        choice.fill(0, row, row + Math.min(v, target + 1));
        for (let a = v; a <= target; a++) {
          const from = best[a - v]!;
          if (from !== INF && from + 1 < best[a]!) {
            best[a] = from + 1;
            choice[row + a] = choice[row + a - v]! + 1;
          } else {
            choice[row + a] = 0;
          }
        }
        continue;
      }
      for (let r = 0; r < v && r <= target; r++) {
        let head = 0;
        let tail = 0;
        let j = 0;
        for (let a = r; a <= target; a += v, j++) {
          const cur = best[a]!;
          if (cur !== INF) {
            const key = cur - j;
            while (tail > head && dqKey[tail - 1]! >= key) tail--;
            dqIndex[tail] = j;
            dqKey[tail] = key;
            tail++;
          }
          while (tail > head && dqIndex[head]! < j - limit) head++;
          if (tail > head) {
            best[a] = dqKey[head]! + j;
            choice[row + a] = j - dqIndex[head]!;
          } else {
            best[a] = INF;
            choice[row + a] = 0;
          }
        }
      }
    }

    let a = target;
    while (a > 0 && best[a] === INF) a--;
    plan.exact = a * this.unit === amount;
    plan.paid = a * this.unit;
    plan.count = best[a]!;
    for (let t = n - 1; t >= 0 && a > 0; t--) {
      const k = choice[t * cells + a]!;
      plan.coins[t] = k;
      a -= k * this.unitValues[t]!;
    }
    return plan;
  }

  /**
   * True when every amount from one unit up to `limit` can be paid exactly:
   * the tubes can give change for any price (else "exact change only").
   */
  coversUpTo(limit: number, counts: ArrayLike<number>): boolean {
    const top = Math.min(limit, this.maxAmount);
    if (top < this.unit) return true;
    this.solve(top, counts);
    const units = Math.floor(top / this.unit);
    for (let a = 1; a <= units; a++) if (this.best[a] === INF) return false;
    return true;
  }

  /** True when `amount` can be paid exactly from the tubes. */
  canPay(amount: number, counts: ArrayLike<number>): boolean {
    if (amount === 0) return true;
    if (amount > this.maxAmount || amount % this.unit !== 0) return false;
    return this.solve(amount, counts).exact;
  }
}
