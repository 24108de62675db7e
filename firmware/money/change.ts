/**
 * Change-making under the coins actually in the tubes.
 *
 * Finds the fewest coins that pay an amount exactly, using at most `counts[i]`
 * coins of value `values[i]`. Greedy is wrong for bounded tubes (one 25 and
 * three 10s pay 30 as 10+10+10) and for non-canonical coin sets.
 *
 * Exact parts, all in a few kilobytes fixed at construction:
 *
 * - which amounts can be paid at all: a bitset over the amounts (one bit per
 *   unit of the coins' greatest common divisor), filled by bounded subset-sum
 *   with each tube split into binary pieces (1, 2, 4, ... coins), so
 *   O(types x log(coins) x amount / 32) word operations. It answers `canPay`,
 *   `coversUpTo` and the most that can be paid below an amount;
 * - the fewest coins for an amount that can be paid: a depth-first
 *   branch-and-bound over the coin values, largest first, at most one level
 *   a value (16), so its state is a fixed array. It prunes a branch when the
 *   coins used plus the remainder over the largest value left cannot beat the
 *   best plan found, when the remainder exceeds what the smaller tubes hold,
 *   and when the remainder is not a multiple of the smaller values' common
 *   divisor (it steps a tube's count over the residue class that keeps it one).
 *   A search that runs past RESIDUE_AFTER nodes (real coin sets never do)
 *   adds a residue bound: tables of least deficit sums modulo q (up to 32)
 *   that rule out the coin counts a pathological set's residues forbid, in
 *   levels x q Int32 entries of the work array (at most 2 KB), and from then
 *   on the count congruence (values all c mod M fix the coin count modulo
 *   M / gcd(c, M), any M; two rows of the work array). A search with
 *   no plan yet by then builds one level by level without backtracking (the
 *   most coins whose remainder the smaller tubes can pay, by the bitset over
 *   them alone), so the node budget bounds the whole search.
 * - a search that reaches its node budget hands over to an exact fallback
 *   where one applies (see exact): a value V whose tube cannot run out, the
 *   tubes that cannot bind relaxed to unlimited (every plan with the fewest
 *   coins then fits them, by an exchange argument modulo V), the others'
 *   counts enumerated; a dynamic programme over the amounts that keeps only
 *   the last V entries, in the bitset's buffer. Where the binding tubes allow
 *   more than 1,024 combinations, two deficit programmes follow (see deficit
 *   and counted): fewest coins per deficit sum V N - A against a value whose
 *   tube cannot bind, else a bit table of (coins, deficit) against the largest
 *   value, each exact when its table fits the same buffer. Where neither fits,
 *   the last stage runs the search again from the root with no node budget,
 *   its bound the best plan found, until it completes: exact by exhaustion in
 *   the same rows, so every plan is proven (`optimal` is always true now), but
 *   its nodes are not bounded (the most found: 1.2 million, 1.17 billion
 *   computrons under XS; docs/benchmarks.md, docs/architecture.md).
 * - the search runs in slices (start, resume: SLICE_NODES nodes each, paused at
 *   the entry to a node, its state in the rows and a few fields), so a caller
 *   on the event loop (the payout path) plans between MDB polls; solve runs
 *   the slices to the end. The exact fallback and the deficit programmes run
 *   within one slice.
 *
 * A dynamic programme over all amounts is exact in polynomial time, but it
 * needs a counter per amount (60 KB at 30,000 units even with no
 * reconstruction table) and cannot be made to fit; the search needs no memory
 * per amount, the fallback a window of the largest value's size, and their
 * cost is measured, worst cases included, in docs/benchmarks.md.
 */

import { COIN_TYPES } from './coins.js';

/**
 * Largest coin value, in units of the coins' greatest common divisor, that a set may hold. An MDB changer reports
 * each coin type's credit in ONE byte in units of its scaling factor (reference mdb.md, "Coin changer (0x08)",
 * 09 SETUP: "coin scaling factor; ...; credit of coin types 0..15 in scale units (0 unused, 0xFF token)"), so a coin
 * it pays is credit x F minor units (F the scaling and decimals conversion, common to all its coins) with credit at
 * most 254; F divides the values' gcd, so value / gcd <= credit <= 255. The exact fallback's proofs and buffer sizes
 * rely on this bound (see exact), so a set no changer can report is refused here rather than planned unproven.
 */
export const MAX_COIN_UNITS = 255;

/** Largest amount the planner can be sized for, in units of the coins' greatest common divisor (the configuration's maxCredit limit). */
export const MAX_UNITS = 30000;

/**
 * Fixed state of the search: STRIDE entries for each of these rows, one a level and one more, since the
 * search enters level m (past the last) with its remainder and coins used (with 16 levels and rows of 16, those
 * two landed on the next rows' first entries: the coins used at level 0 and the best plan's first count).
 */
const STRIDE = COIN_TYPES + 1;
const ORDER = 0; // original coin types, largest value first (fixed at construction)
const VAL = 1; // per search level: the coin value (equal values merged)
const CNT = 2; // coins available at that value
const CAP = 3; // value the levels from here down can pay at most
const GCD = 4; // common divisor of the values from here down
const K = 5; // coins taken at the level on the current path
const KMIN = 6; // fewest coins the level may take (the rest must fit below)
const STEP = 7; // step between counts that keep the remainder on the smaller values' grid
const REM = 8; // remainder entering the level
const USED = 9; // coins used above the level
const BEST = 10; // the best plan's coins per level
const FIRST = 11; // the level's first position in ORDER (for splitting a merged value back)
const PERIOD = 12; // the count congruence's period from the level down (0: none; see the residue bound)
const INV = 13; // and the inverse that gives the class (set with PERIOD at RESIDUE_AFTER)
const STACK = 14; // two rows: amounts the exact fallback still has to split (see exact)
const ROWS = 16;
// After the ROWS rows: per level (at most one a coin type with a value), `q` entries of the residue
// bound's table, then q itself (the modulus, at most 32, fixed at construction; kept there rather
// than in a field of its own).
const NONE = 0x7fffffff;
/** Search nodes after which the exact fallback and the deficit programmes take over, and where none of them settles the plan the search runs again to exhaustion, seeded with the best plan found (there is one by then: see RESIDUE_AFTER; its compute: docs/benchmarks.md; real coin sets stay far below). */
export const SEARCH_NODES = 20000;
/** Search nodes after which the residue bound's tables are built and used, and a first plan is built if the search has none (real coin sets finish far sooner, so never pay for them). */
export const RESIDUE_AFTER = 1000;
/** Most bytes the exact fallback's table may take in the bitset's buffer (it shares it): 2,048 Uint16 entries. */
const FALLBACK_BYTES = 4096;
/** Most combinations of scarce tubes' counts the exact fallback enumerates, and most passes over the amounts it makes for them (as many a pass as fit in the table after its window, two entries each). */
const COMBOS = 1024;
const PASSES = 8;
/** Most passes over the amounts the exact fallback makes for one plan, over all its tries (see exact). */
const FALLBACK_PASSES = 8;
const UNSET = 0xffff;
/**
 * Search nodes a slice of planning runs (start, resume): about 1,000 computrons a node under XS, so about 1 million
 * computrons, some 10 ms of board compute at 100 million a second, well under the MDB poll interval (25 to 200 ms).
 * Measured in docs/benchmarks.md ("Planning in slices").
 */
export const SLICE_NODES = 1000;

export interface ChangePlan {
  /** Coins of each type to pay out, indexed like the values given. */
  readonly coins: Uint16Array;
  /** Value the plan pays: the amount asked for, or the most that can be paid below it. */
  paid: number;
  /** Number of coins in the plan. */
  count: number;
  /** True when `paid` equals the amount asked for. */
  exact: boolean;
  /** True when `count` is proven the fewest. Always true now: where the search's budget runs out and no table settles the plan, the last stage runs the search to exhaustion (kept for callers and older builds, which paid such a plan unproven). */
  optimal: boolean;
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
  /** Bit a: `a` units can be paid from the tubes (for the amount last worked out). */
  private readonly bits: Int32Array;
  /** The exact fallback's table, a view over the bitset's buffer (the two are never needed at once). */
  private readonly table: Uint16Array;
  /** The same buffer a byte an entry, for the deficit programme's counts when they fit in a byte. */
  private readonly bytes: Uint8Array;
  private readonly work: Int32Array;
  /** Search nodes the last `solve` visited (for the bench); while a plan is under way, those so far. */
  nodes = 0;
  /** Of those, the nodes of the last stage (the search run again to exhaustion; 0 when it did not run). */
  lastNodes = 0;
  private readonly searchNodes: number;
  /** RESIDUE_AFTER, or the node budget if lower (the guided plan must be made by then). */
  private readonly residueAfter: number;
  /** Passes over the amounts the exact fallback has left for this plan, and the lower bound its last try found. */
  private passesLeft = 0;
  private lower = 0;
  /** Open values in the fallback's USED row. */
  private open = 0;
  /** Where the exact fallback's last pass splits the amount (see unbounded). */
  private cut = 0;
  readonly plan: ChangePlan;
  /** The tube counts of the plan under way (start copies them: the caller's may change between slices). */
  private readonly tubes: Int32Array;
  /** The search's state between slices (see search): its target, levels, best count so far, level, stage. */
  private searching = false;
  private target = 0;
  private levels = 0;
  private best = NONE;
  private at = 0;
  private residue = false;
  private last = false;
  private lastFrom = 0;

  /**
   * @param values coin values in minor units, one per coin type (0 for a type that is not in a tube)
   * @param maxAmount the largest amount that will be planned at once, in minor units
   * @param searchNodes the search's node budget (the tests lower it so the exact fallback does the work)
   */
  constructor(values: ArrayLike<number>, maxAmount: number, searchNodes = SEARCH_NODES) {
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
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v / this.unit > MAX_COIN_UNITS)
        throw new RangeError(`coin value ${v} is ${v / this.unit} units of the set's common divisor ${this.unit}: an MDB changer reports a coin's credit in one byte of its scaling factor, so at most ${MAX_COIN_UNITS}`);
    }
    this.maxAmount = maxAmount;
    if (!Number.isInteger(searchNodes) || searchNodes < 1) throw new RangeError('searchNodes must be a positive integer');
    this.searchNodes = searchNodes;
    this.residueAfter = searchNodes < RESIDUE_AFTER ? searchNodes : RESIDUE_AFTER;
    this.maxUnits = Math.floor(maxAmount / this.unit);
    if (this.maxUnits > MAX_UNITS) throw new RangeError(`maxAmount ${maxAmount} exceeds ${MAX_UNITS} units of ${this.unit}`);
    this.values = Int32Array.from(values);
    this.unitValues = new Int32Array(n);
    this.tubes = new Int32Array(n);
    for (let i = 0; i < n; i++) this.unitValues[i] = this.values[i]! / this.unit;
    // The bitset, and in the same buffer the exact fallback's table (2V + 1 Uint16 entries for the largest value V,
    // at most 511, and the rest, at least 1,537, for its scarce combinations; see exact) and the deficit
    // programmes' (see deficit and counted). FALLBACK_BYTES whatever the credit limit, so that what they settle
    // does not depend on it.
    const words = (this.maxUnits >> 5) + 1;
    // The deficit programme (see deficit) takes the whole FALLBACK_BYTES whatever the set, so its reach does
    // not depend on the credit limit.
    const tableWords = FALLBACK_BYTES >> 2;
    this.bits = new Int32Array(words > tableWords ? words : tableWords);
    this.table = new Uint16Array(this.bits.buffer);
    this.bytes = new Uint8Array(this.bits.buffer);
    // The residue bound's modulus q: a multiple of the common divisor of the values' differences (every
    // level's deficits are multiples of it, so q sees the coin count's residue), as large as allowed.
    let d = 0;
    let first = 0;
    let levels = 0;
    for (let i = 0; i < n; i++) {
      const v = this.unitValues[i]!;
      if (v === 0) continue;
      if (first === 0) first = v;
      d = gcd(v > first ? v - first : first - v, d);
      levels++;
    }
    const q = d === 0 || d > 32 ? 32 : d * Math.floor(32 / d); // at most 32: 2 KB of tables for 16 types
    this.work = new Int32Array(ROWS * STRIDE + levels * q + 1);
    this.work[this.work.length - 1] = q;
    // Types by value, largest first (insertion sort: at most 16).
    const w = this.work;
    for (let i = 0; i < n; i++) {
      let j = i;
      while (j > 0 && this.unitValues[w[j - 1]!]! < this.unitValues[i]!) {
        w[j] = w[j - 1]!;
        j--;
      }
      w[j] = i;
    }
    this.plan = { coins: new Uint16Array(n), paid: 0, count: 0, exact: true, optimal: true };
  }

  get types(): number {
    return this.values.length;
  }

  /** Bytes of typed-array storage this planner holds (for heap budgeting); fixed at construction. */
  get footprint(): number {
    return this.bits.byteLength + this.work.byteLength + this.values.byteLength + this.unitValues.byteLength + this.tubes.byteLength + this.plan.coins.byteLength;
  }

  /** Fill `bits` with the amounts 0..target units the tubes of values below `under` units can pay. */
  private reachable(target: number, counts: ArrayLike<number>, under: number): void {
    const bits = this.bits;
    const top = target >> 5;
    bits.fill(0, 0, top + 1);
    bits[0] = 1;
    for (let t = 0; t < this.values.length; t++) {
      const v = this.unitValues[t]!;
      if (v === 0 || v > target || v >= under) continue;
      let left = counts[t]!;
      const most = Math.floor(target / v);
      if (!(left > 0)) continue;
      if (left > most) left = most;
      // Pieces of 1, 2, 4, ... coins then the rest: every count up to `left` is a sum of some of them.
      for (let piece = 1; left > 0; piece += piece) {
        const k = piece < left ? piece : left;
        left -= k;
        const shift = k * v;
        const q = shift >> 5;
        const b = shift & 31;
        // From the top down, so each word reads the ones below it before they change.
        if (b === 0) {
          for (let i = top; i >= q; i--) bits[i] = bits[i]! | bits[i - q]!;
        } else {
          for (let i = top; i > q; i--) bits[i] = bits[i]! | (bits[i - q]! << b) | (bits[i - q - 1]! >>> (32 - b));
          bits[q] = bits[q]! | (bits[0]! << b);
        }
      }
    }
    // Bits above the target are not amounts worked out.
    const extra = 31 - (target & 31);
    if (extra > 0) bits[top] = bits[top]! & (-1 >>> extra);
  }

  /**
   * Plan a payout of `amount` from tubes holding `counts[i]` coins of type i.
   * The returned plan object is reused by the next call.
   * When the amount cannot be paid exactly, the plan pays the most it can below it.
   * Runs the search in slices (see start) to the end: the same plan as the slices give.
   */
  solve(amount: number, counts: ArrayLike<number>): ChangePlan {
    let plan = this.start(amount, counts);
    while (plan === undefined) plan = this.resume();
    return plan;
  }

  /**
   * Start planning a payout (as solve) and run at most `slice` search nodes: the plan if it is settled by then,
   * else undefined, and `resume` goes on with the next slice (the planner holds the search's state, and the tube
   * counts copied here, in between). A slice of SLICE_NODES nodes is about 1 million computrons under XS
   * (docs/benchmarks.md), so a caller that runs one a timer turn leaves the event loop, and the MDB polls, free
   * between them. `canPay` and `coversUpTo` may be called between slices; another `start` or `solve` abandons
   * the plan under way.
   */
  start(amount: number, counts: ArrayLike<number>, slice = SLICE_NODES): ChangePlan | undefined {
    const plan = this.plan;
    plan.coins.fill(0);
    plan.paid = 0;
    plan.count = 0;
    plan.exact = amount === 0;
    plan.optimal = true;
    this.nodes = 0;
    this.lastNodes = 0;
    this.searching = false;
    if (!Number.isInteger(amount) || amount < 0) throw new RangeError(`amount ${amount} is not a non-negative integer`);
    if (!Number.isInteger(slice) || slice < 1) throw new RangeError('slice must be a positive integer');
    if (amount === 0) return plan;
    const target = Math.floor(Math.min(amount, this.maxAmount) / this.unit);
    this.reachable(target, counts, NONE);
    let a = target;
    while (a > 0 && ((this.bits[a >> 5]! >>> (a & 31)) & 1) === 0) a--;
    plan.exact = a * this.unit === amount;
    plan.paid = a * this.unit;
    if (a === 0) return plan;
    const tubes = this.tubes;
    for (let t = 0; t < tubes.length; t++) tubes[t] = counts[t]! > 0 ? counts[t]! : 0;
    this.begin(a, tubes);
    this.searching = true;
    return this.resume(slice);
  }

  /** Run the next slice of the plan `start` left under way: the plan once settled, else undefined. */
  resume(slice = SLICE_NODES): ChangePlan | undefined {
    if (!this.searching) return this.plan;
    if (!Number.isInteger(slice) || slice < 1) throw new RangeError('slice must be a positive integer');
    if (!this.search(slice)) return undefined;
    this.searching = false;
    this.plan.count = this.split();
    return this.plan;
  }

  /** A plan is under way (start returned undefined and resume has not settled it yet). */
  get pending(): boolean {
    return this.searching;
  }

  /** The fewest coins paying `target` units (which the tubes can pay), written into the plan. */
  private begin(target: number, counts: ArrayLike<number>): void {
    const w = this.work;
    const T = STRIDE;
    const uv = this.unitValues;
    // Levels: the values in the tubes, largest first, equal values merged.
    let m = 0;
    for (let p = 0; p < this.values.length; p++) {
      const t = w[ORDER * T + p]!;
      const v = uv[t]!;
      const c = counts[t]!;
      if (v === 0 || v > target || !(c > 0)) continue;
      if (m > 0 && w[VAL * T + m - 1] === v) {
        w[CNT * T + m - 1] = w[CNT * T + m - 1]! + c;
      } else {
        w[VAL * T + m] = v;
        w[CNT * T + m] = c;
        w[FIRST * T + m] = p;
        m++;
      }
    }
    let cap = 0;
    let g = 0;
    for (let i = m - 1; i >= 0; i--) {
      const v = w[VAL * T + i]!;
      let c = w[CNT * T + i]!;
      const most = Math.floor(target / v);
      if (c > most) w[CNT * T + i] = c = most;
      cap += c * v;
      g = gcd(v, g);
      w[CAP * T + i] = cap;
      w[GCD * T + i] = g;
    }
    for (let i = 0; i < m; i++) {
      const below = i + 1 < m ? w[GCD * T + i + 1]! : 0;
      // Counts k with k*v = r (mod below) are `below / gcd(v, below)` apart.
      w[STEP * T + i] = below === 0 ? 1 : below / gcd(w[VAL * T + i]!, below);
    }

    this.target = target;
    this.levels = m;
    this.best = NONE;
    this.at = 0;
    this.residue = false;
    this.last = false;
    this.lastFrom = 0;
    w[REM * T] = target;
    w[USED * T] = 0;
  }

  /**
   * Run the search (see begin) for at most `slice` more nodes: true when it is over (the fewest is in `best`, its
   * plan in BEST), false when it paused at the entry to a node, its state in the rows and the fields above, for the
   * next call. Pausing changes nothing the search does, so a search run in slices visits the same nodes and settles
   * the same plan as one run at once. The exact fallback and the deficit programmes run within one slice (bounded:
   * see the bench).
   */
  private search(slice: number): boolean {
    const w = this.work;
    const T = STRIDE;
    const target = this.target;
    const m = this.levels;
    const counts = this.tubes;
    let best = this.best;
    let nodes = this.nodes;
    let i = this.at;
    const q = w[w.length - 1]!;
    let residue = this.residue;
    // In the last stage (see below): the search runs without a budget, from node lastFrom on.
    let last = this.last;
    let lastFrom = this.lastFrom;
    const stop = nodes + slice;
    for (;;) {
      if (nodes >= stop) {
        // The slice is spent: pause at the entry to level i (its remainder and coins used are in the rows).
        this.best = best;
        this.nodes = nodes;
        this.at = i;
        this.residue = residue;
        this.last = last;
        this.lastFrom = lastFrom;
        this.lastNodes = last ? nodes - lastFrom : 0;
        return false;
      }

      // Enter level i with the remainder and the coins used so far.
      // A pathological coin set (many close values whose sums miss the amount) can need millions of
      // nodes to prove a plan the fewest; past the budget the best plan found so far is paid.
      if (++nodes > this.searchNodes && !last) {
        // best is set: the guided plan below was made at RESIDUE_AFTER if the search had none by then. The
        // exact fallback proves it or finds the fewest where it applies, else the deficit programmes.
        let f = this.exact(target, m, best);
        if (f < 0) f = this.deficit(target, m, best);
        if (f >= 0) {
          best = f;
          break;
        }
        // The last stage: none of the tables could settle the plan, so the search starts again from the root
        // with no node budget, its bound the best plan found (still in BEST: the stages write it only with a
        // plan of fewer coins, and then settle). Run to the end it is exact (every bound it prunes with is a
        // lower bound), so the plan is proven by exhaustion, in the same rows. The residue bound is on (built
        // at RESIDUE_AFTER, or at the budget if lower, both before the budget runs out) and its rows and
        // tables are untouched by the stages; the tubes are restored (exact saved them in STEP, the stages
        // capped CNT) and STEP rebuilt. Its nodes are unbounded in principle: the most found is measured in
        // docs/benchmarks.md ("The last stage: search to exhaustion").
        for (let l = 0; l < m; l++) w[CNT * T + l] = w[STEP * T + l]!;
        for (let l = 0; l < m; l++) {
          const below = l + 1 < m ? w[GCD * T + l + 1]! : 0;
          w[STEP * T + l] = below === 0 ? 1 : below / gcd(w[VAL * T + l]!, below);
        }
        last = true;
        lastFrom = nodes;
        i = 0;
        w[REM * T] = target;
        w[USED * T] = 0;
        continue;
      }
      if (nodes === this.residueAfter) {
        if (best === NONE) {
          // No plan yet (a set whose sums mostly miss the amount, e.g. values all 1 mod 37): the descent
          // could backtrack for minutes before its first plan, so build one without backtracking. Level
          // by level, largest value first, take the most coins that leave a remainder the tubes of
          // smaller values can pay, which a bitset over those tubes alone says. The target is payable
          // (solve's bitset), so each level finds such a count and the last leaves 0. Bounded: at most
          // m bitset fills, each no larger than solve's; no memory (solve's bitset, no longer needed).
          // The search then goes on under its node budget with this plan to beat: all of it is bounded.
          best = 0;
          for (let l = 0, r = target; l < m; l++) {
            const v = w[VAL * T + l]!;
            this.reachable(r, counts, v);
            let k = Math.floor(r / v);
            if (k > w[CNT * T + l]!) k = w[CNT * T + l]!;
            while (k > 0 && ((this.bits[(r - k * v) >> 5]! >>> ((r - k * v) & 31)) & 1) === 0) k--;
            w[BEST * T + l] = k;
            best += k;
            r -= k * v;
          }
        }
        // A hard case: build the residue bound's tables, one a level (see below). Level l's entry rho is
        // the least deficit sum D = sum(VAL[l] - v) over any coins (tubes ignored) of the levels from l
        // down whose D = rho (mod q), NONE if there is none; coins of VAL[l] itself add nothing. Adding
        // one value's coins (step s = d mod q, cost d >= 0) to a table: within each cycle rho, rho + s,
        // ... the least entry cannot improve (costs are not negative), and walking once round from it,
        // each entry becomes min(itself, the previous one + d), which covers any number of the coins.
        // That is the round-robin shortest-path algorithm (Boecker and Liptak) over the q residues:
        // O(q) a value, O(q x levels^2 / 2) in all. Sums stay below q x 30,000 < 2^31.
        for (let l = 0; l < m; l++) {
          const base = ROWS * T + l * q;
          w.fill(NONE, base, base + q);
          w[base] = 0;
          for (let j = l + 1; j < m; j++) {
            const d = w[VAL * T + l]! - w[VAL * T + j]!;
            const s = d % q;
            if (s === 0) continue; // returns to the same residue at a cost: never shorter
            const g = gcd(s, q);
            for (let p = 0; p < g; p++) {
              let at = -1;
              let n = NONE;
              for (let c = p, t = 0; t < q / g; t++, c = (c + s) % q) {
                if (w[base + c]! < n) {
                  n = w[base + c]!;
                  at = c;
                }
              }
              if (at < 0) continue;
              for (let t = 1; t < q / g; t++) {
                at = (at + s) % q;
                n += d;
                if (w[base + at]! < n) n = w[base + at]!;
                else w[base + at] = n;
              }
            }
          }
        }
        // The count congruence, one a level: every value from l down is c (mod M), M the common divisor
        // of their differences (of each from VAL[l] suffices), so k coins of them sum to k*c (mod M) and
        // a plan of k coins for r has k*c = r (mod M). gcd(c, M) = gcd(VAL[l], the differences) = GCD[l],
        // which r already is a multiple of at a node; dividing by it, k = (r / GCD[l]) * inv (mod P) with
        // P = M / GCD[l] and inv the inverse of c / GCD[l] modulo P (coprime to it). PERIOD holds P and INV
        // the inverse (extended Euclid: O(log M), integers below 30,000). P <= 1 (one value, or coprime
        // differences) says nothing. No table, so any M: values all 1 mod 37 give P = 37, which the
        // residue tables (q <= 32) cannot see.
        for (let l = 0; l < m; l++) {
          const v = w[VAL * T + l]!;
          let d = 0;
          for (let j = l + 1; j < m; j++) d = gcd(v - w[VAL * T + j]!, d);
          const g = w[GCD * T + l]!;
          const p = d / g;
          w[PERIOD * T + l] = p;
          w[INV * T + l] = 0;
          if (p <= 1) continue;
          // Extended Euclid on (c / g, p): keeps x with x * (c / g) = a (mod p); ends at a = 1 (coprime).
          let a = (v % d) / g;
          let b = p;
          let x = 1;
          let y = 0;
          while (b !== 0) {
            const t = Math.floor(a / b);
            let u = a - t * b;
            a = b;
            b = u;
            u = x - t * y;
            x = y;
            y = u;
          }
          w[INV * T + l] = ((x % p) + p) % p;
        }
        residue = true;
      }
      let descend = false;
      const r = w[REM * T + i]!;
      const used = w[USED * T + i]!;
      let lb = NONE;
      if (r === 0) {
        if (used < best) {
          best = used;
          for (let j = 0; j < m; j++) w[BEST * T + j] = j < i ? w[K * T + j]! : 0;
        }
      } else if (i < m && r <= w[CAP * T + i]! && r % w[GCD * T + i]! === 0) {
        lb = this.bound(i, r, m);
        if (residue) {
          // The residue bound, a lower bound on the coins any plan of the levels from i down needs for r.
          // Proof: let a plan use k coins v_1..v_k of those levels (V = VAL[i] the largest, so each
          // V - v_j >= 0). Their deficit sum is D = sum(V - v_j) = k*V - r exactly. The table's entry
          // for D mod q is the least deficit sum of any coins of those levels in that residue, tubes
          // ignored: a minimum over a superset of this plan's coins, so D >= entry. Hence a k with
          // entry[(k*V - r) mod q] > k*V - r has no plan. No plan has fewer coins than the LP bound lb
          // either (and lb >= r / V, so D >= 0 there), so the fewest is at least the first k from lb up
          // that passes; each k skipped is ruled out, so stopping after q tries still leaves a lower
          // bound. Nor does any plan have more than `most` coins: its k coins add up to r, so the k
          // smallest coins the tubes hold add up to at most r, and `most` is the largest such k (the
          // smallest tubes first, the last in part). A node whose bound passes `most` has no plan.
          // The bound is not monotone in a level's count (unlike the LP bound), so it only cuts this
          // node; the levels above still step to their next count. On a set whose values are all 1
          // (mod 7), say, it sees the count's residue and more, where the LP bound alone leaves
          // millions of nodes ruling out the counts below the fewest. Integers only: k <= r, so
          // k*V <= 30000 * 30000 < 2^31.
          const v = w[VAL * T + i]!;
          const base = ROWS * T + i * q;
          let most = 0;
          for (let l = m - 1, left = r; l >= i; l--) {
            const c = w[CNT * T + l]!;
            const vl = w[VAL * T + l]!;
            if (c * vl >= left) {
              most += Math.floor(left / vl);
              break;
            }
            most += c;
            left -= c * vl;
          }
          // Only the counts in the congruence's class (above) can pay r: start from the first one from lb
          // up and step by its period, so each count tried is ruled out by the table or is the bound.
          const p = w[PERIOD * T + i]!;
          let step = 1;
          if (p > 1) {
            const k0 = (((r / w[GCD * T + i]!) % p) * w[INV * T + i]!) % p;
            lb += (k0 - (lb % p) + p) % p;
            step = p;
          }
          let d = lb * v - r;
          for (let t = 0; t < q && used + lb < best && lb <= most && w[base + (d % q)]! > d; t++) {
            lb += step;
            d += step * v;
          }
          if (lb > most) lb = NONE;
        }
      }
      if (used + lb < best) {
        const v = w[VAL * T + i]!;
        const c = w[CNT * T + i]!;
        const capBelow = i + 1 < m ? w[CAP * T + i + 1]! : 0;
        const gBelow = i + 1 < m ? w[GCD * T + i + 1]! : 0;
        let k = Math.floor(r / v);
        if (k > c) k = c;
        const kmin = r > capBelow ? Math.floor((r - capBelow + v - 1) / v) : 0;
        // The largest count that leaves the remainder on the smaller values' grid.
        if (gBelow === 0) {
          if (k * v !== r) k = -1;
        } else {
          const step = w[STEP * T + i]!;
          let tries = 0;
          while (k >= kmin && (r - k * v) % gBelow !== 0 && tries < step) {
            k--;
            tries++;
          }
          if ((r - k * v) % gBelow !== 0) k = -1;
        }
        if (k >= kmin && k >= 0 && used + k + this.bound(i + 1, r - k * v, m) < best) {
          w[K * T + i] = k;
          w[KMIN * T + i] = kmin;
          descend = true;
        }
      }
      if (descend) {
        const k = w[K * T + i]!;
        w[REM * T + i + 1] = w[REM * T + i]! - k * w[VAL * T + i]!;
        w[USED * T + i + 1] = w[USED * T + i]! + k;
        i++;
        // A remainder of 0 is a plan; record it without a level below the last.
        if (i === m && w[REM * T + i]! !== 0) i--;
        else continue;
      }
      // Back up to the next count at a level above.
      let resumed = false;
      while (i > 0) {
        i--;
        if (i + 1 >= m) continue;
        const v = w[VAL * T + i]!;
        const r = w[REM * T + i]!;
        const k = w[K * T + i]! - w[STEP * T + i]!;
        if (k < w[KMIN * T + i]! || k < 0) continue;
        // Fewer of this value only raises the bound (the values below are smaller), so the level is done once it fails.
        if (w[USED * T + i]! + k + this.bound(i + 1, r - k * v, m) >= best) continue;
        w[K * T + i] = k;
        w[REM * T + i + 1] = r - k * v;
        w[USED * T + i + 1] = w[USED * T + i]! + k;
        i++;
        resumed = true;
        break;
      }
      if (!resumed) break;
    }
    this.nodes = nodes;
    this.lastNodes = last ? nodes - lastFrom : 0;
    this.best = best;
    return true;
  }

  /** The search's plan (see search; it is over): each level's coins split over the types of that value, in ORDER. */
  private split(): number {
    const w = this.work;
    const T = STRIDE;
    const uv = this.unitValues;
    const m = this.levels;
    const counts = this.tubes;
    const coins = this.plan.coins;
    for (let j = 0; j < m; j++) {
      let k = w[BEST * T + j]!;
      for (let p = w[FIRST * T + j]!; k > 0 && p < this.values.length; p++) {
        const t = w[ORDER * T + p]!;
        if (uv[t] !== w[VAL * T + j]) break;
        const c = counts[t]!;
        if (!(c > 0)) continue;
        const take = k < c ? k : c;
        coins[t] = take;
        k -= take;
      }
    }
    return this.best;
  }

  /**
   * The exact fallback, for a search that reached its node budget: the fewest coins for `target` units, with the
   * plan in the BEST row if it has fewer than `best`, or -1 where it does not apply (the deficit programmes then try).
   *
   * It splits the levels around a pivot, a value V whose tube holds every coin of V that fits in the target:
   * "open" levels, V and the smaller values v whose tubes hold at least min(the coins of v that fit, u / gcd(u,
   * v) - 1 for each open u above v, V included), and "scarce" ones, the rest (every value above V among them).
   * It applies when the scarce tubes allow at most COMBOS combinations of counts, in at most PASSES passes (see
   * attempt; when the search's count leaves too many, exact asks again from the relaxed bound up).
   * Relax the open tubes (any number of coins) and keep the scarce ones: every plan with the fewest coins
   * under that relaxation fits the real tubes, so its count is the answer. Proof: such a plan uses at most
   * target / V coins of V. For an open u above v, u / g coins of v (g = gcd(u, v)) pay the same as v / g coins
   * of u, which are fewer, and u is unlimited under the relaxation: so the plan uses fewer than u / g coins of
   * v, and no more than fit; the tube holds that many. The levels are classified from the pivot down, each against the open ones above it, so in one pass.
   *
   * Under the relaxation the fewest open coins for a units is f(a) = 1 + min f(a - v) over the open values,
   * which needs only the last V entries: a pass over 0..target in a window of V + 1 Uint16 entries (f is at
   * most 30,000) in the bitset's buffer, no longer needed then, gives f at target - s for each scarce
   * combination of a batch (its sum s, sorted, two entries each after the window), and the fewest is the least
   * n + f(target - s) over them all, n the combination's coins. The open part of the plan comes from splitting
   * its amount (Hirschberg's divide and conquer, see unbounded): the stack of amounts to split holds at most 17
   * (each is at most half the last plus V). Time O(levels x target) a pass, at most FALLBACK_PASSES of them
   * over all tries, and about that again for each depth of the splitting: O(levels x target x (FALLBACK_PASSES +
   * log(target / V))) in all.
   */
  private exact(target: number, m: number, best: number): number {
    const w = this.work;
    const T = STRIDE;
    // The tubes as the search had them (attempts cap CNT in place).
    for (let l = 0; l < m; l++) w[STEP * T + l] = w[CNT * T + l]!;
    this.passesLeft = FALLBACK_PASSES;
    let r = this.attempt(target, m, best);
    if (r !== -1 || this.lower === 0) return r;
    // Only a bound below the search's count: ask, from just above it, whether a plan has fewer coins than
    // `goal`. Each answer rules out plans below goal or settles the fewest; the caps, tighter for a lower goal,
    // often let the pivot's conditions hold where they did not for `best`.
    // (The last goal is `best` again: ruling out fewer than best proves the search's plan.)
    for (let goal = this.lower + 1; goal <= best; goal++) {
      r = this.attempt(target, m, goal);
      if (r === -1) return -1;
      if (r < goal) return r;
    }
    return best;
  }

  /**
   * One try of the exact fallback for plans with fewer coins than `goal`: their fewest (plan in BEST) if there
   * is one, `goal` if there is none, -1 if it cannot say (then `lower` is a lower bound on such plans' coins
   * when it has one, else 0).
   */
  private attempt(target: number, m: number, best: number): number {
    const w = this.work;
    const T = STRIDE;
    const t = this.table;
    this.lower = 0;
    for (let l = 0; l < m; l++) w[CNT * T + l] = w[STEP * T + l]!;
    // Only a plan with fewer coins than `best` matters. It has at most best - 1 of any value, and k coins of v
    // below the largest value X leave target - kv to at most best - 1 - k coins of at most X, so k <= ((best -
    // 1) X - target) / (X - v). KMIN holds that cap a level and CNT the tube capped there (the search's rows,
    // done with); the relaxed plan below obeys the same caps (it too has fewer than `best` coins, if it beats it).
    const X = w[VAL * T]!;
    if ((best - 1) * X < target) return best;
    for (let l = 0; l < m; l++) {
      const v = w[VAL * T + l]!;
      let cap = best - 1;
      if (v < X) {
        const k = Math.floor(((best - 1) * X - target) / (X - v));
        if (k < cap) cap = k;
      }
      w[KMIN * T + l] = cap;
      if (w[CNT * T + l]! > cap) w[CNT * T + l] = cap;
    }
    const passes = this.passesLeft < PASSES ? this.passesLeft : PASSES;
    if (passes === 0) return -1;
    // The pivot: the first level, from the largest value, whose scarce combinations fit. K marks the scarce
    // levels (the search is over): those above the pivot, and below it those whose tube may bind.
    let p = -1;
    let combos = 0;
    for (let c = 0; c < m && p < 0; c++) {
      const V = w[VAL * T + c]!;
      const fit = Math.floor(target / V);
      const cap = w[KMIN * T + c]!;
      if (w[CNT * T + c]! < (fit < cap ? fit : cap) || 2 * V + 1 > t.length) continue;
      let n = 1;
      for (let l = 0; l < m && n <= COMBOS; l++) {
        let scarce = l < c;
        if (l > c) {
          // The most coins of v a relaxed plan with the fewest can use: those that fit, the cap above, and for
          // each open value u above it, u / gcd(u, v) - 1 (as many coins of v pay v / gcd(u, v) coins of u, fewer).
          const v = w[VAL * T + l]!;
          let most = Math.floor(target / v);
          if (w[KMIN * T + l]! < most) most = w[KMIN * T + l]!;
          for (let u = c; u < l; u++) {
            if (w[K * T + u] !== 0 && u !== c) continue;
            const x = w[VAL * T + u]! / gcd(w[VAL * T + u]!, v) - 1;
            if (x < most) most = x;
          }
          scarce = w[CNT * T + l]! < most;
        }
        w[K * T + l] = scarce ? 1 : 0;
        if (scarce) n *= w[CNT * T + l]! + 1;
      }
      // At least one combination a batch, and at most PASSES batches (and the passes left).
      const batch = (t.length - 2 * V - 1) >> 1;
      if (n <= COMBOS && batch > 0 && n <= passes * batch) {
        p = c;
        combos = n;
      }
    }
    // No pivot: the same passes still give a lower bound, with every tube that may bind enumerated and the
    // rest relaxed (the fullest of them too, until the combinations fit): it proves the search's plan the
    // fewest when it reaches `best`, but gives no plan of its own.
    const loose = p < 0;
    if (loose) {
      if (2 * X + 3 > t.length) return -1;
      p = 0;
      const batch = (t.length - 2 * X - 1) >> 1;
      w[K * T] = 0;
      for (let l = 1; l < m; l++) {
        const fit = Math.floor(target / w[VAL * T + l]!);
        w[K * T + l] = w[CNT * T + l]! < (fit < w[KMIN * T + l]! ? fit : w[KMIN * T + l]!) ? 1 : 0;
      }
      for (;;) {
        combos = 1;
        let fullest = -1;
        for (let l = 1; l < m; l++) {
          if (w[K * T + l] === 0) continue;
          combos *= w[CNT * T + l]! + 1;
          if (fullest < 0 || w[CNT * T + l]! > w[CNT * T + fullest]!) fullest = l;
        }
        if (combos <= COMBOS && combos <= passes * batch) break;
        w[K * T + fullest] = 0;
      }
    }
    const V = w[VAL * T + p]!;
    // The open values, largest first, in USED (the search's, done with), so the passes' inner loop reads one row.
    let open = 0;
    for (let l = 0; l < m; l++) if (w[K * T + l] === 0) w[USED * T + open++] = w[VAL * T + l]!;
    this.open = open;
    // The combinations in batches of as many as fit after the window, each by sum, largest first (index at
    // t[at + j], sum at t[at + batch + j]); for each batch one pass over the open values reads f at target - s
    // for each of its combinations as it passes.
    const at = 2 * V + 1;
    const batch = (t.length - at) >> 1;
    const W = V + 1;
    let f = UNSET;
    let chosen = 0;
    for (let first = 0; first < combos; first += batch) {
      let kept = 0;
      for (let i = first; i < combos && i < first + batch; i++) {
        const sum = this.combination(i, m, false);
        if (sum > target) continue;
        let j = kept++;
        while (j > 0 && t[at + batch + j - 1]! < sum) {
          t[at + j] = t[at + j - 1]!;
          t[at + batch + j] = t[at + batch + j - 1]!;
          j--;
        }
        t[at + j] = i;
        t[at + batch + j] = sum;
      }
      t[0] = 0;
      for (let a = 0, i = 0, j = 0; a <= target && j < kept; a++) {
        if (a > 0) {
          let b = UNSET;
          for (let o = USED * T, end = o + open; o < end; o++) {
            const v = w[o]!;
            if (v > a) continue;
            const k = i - v;
            const x = t[k < 0 ? k + W : k]!;
            if (x < b) b = x;
          }
          t[i] = b === UNSET ? UNSET : b + 1;
        }
        for (; j < kept && target - t[at + batch + j]! === a; j++) {
          if (t[i] === UNSET) continue;
          // The combination's coins: its count, from its index (the sum is not needed again).
          const n = this.combination(t[at + j]!, m, true) + t[i]!;
          if (n < f) {
            f = n;
            chosen = t[at + j]!;
          }
        }
        if (++i === W) i = 0;
      }
    }
    this.passesLeft -= Math.ceil(combos / batch);
    // f is the fewest below `best` if there is one: at least best says there is none.
    if (f >= best) return best;
    if (loose) {
      this.lower = f;
      return -1;
    }
    for (let l = 0; l < m; l++) w[BEST * T + l] = 0;
    // The scarce counts into BEST; the open part pays the rest.
    let sp = 0;
    w[STACK * T + sp++] = target - this.combination(chosen, m, false, true);
    while (sp > 0) {
      const A = w[STACK * T + --sp]!;
      if (A === 0) continue;
      this.unbounded(A, V);
      if (A < t.length) {
        // The whole table: take a coin whose remainder needs one coin fewer, until nothing is left.
        for (let a = A; a > 0; ) {
          let l = 0;
          while (w[K * T + l] !== 0 || w[VAL * T + l]! > a || t[a - w[VAL * T + l]!] !== t[a]! - 1) l++;
          w[BEST * T + l] = w[BEST * T + l]! + 1;
          a -= w[VAL * T + l]!;
        }
      } else {
        w[STACK * T + sp++] = this.cut;
        w[STACK * T + sp++] = A - this.cut;
      }
    }
    return f;
  }

  /**
   * The deficit programme, for a search that reached its node budget where the exact fallback could not say:
   * the fewest coins for `target` units, with the plan in the BEST row if it has fewer than `best` (the search's
   * plan, in BEST), or -1 where its table does not fit (the last stage, the search to exhaustion, then runs).
   *
   * Take a pivot, the largest value V whose tube cannot bind a plan with fewer than `best` coins (it holds
   * best - 1 coins, or every coin of V that fits). Any plan of N coins that pays A has deficit sum over its
   * other coins of (V - v) x_v = V N - A =: D(N) (the pivot's coins add 0), and its other coins number M <= N.
   * Conversely, coins other than the pivot's (within their tubes) with deficit D(N) and M <= N coins, and
   * N - M coins of V, pay V (N - M) + (V M - D(N)) = A in exactly N coins, N - M of V being within its tube
   * (N - M <= best - 1, or N - M <= A / V since the others pay V M - D(N) >= 0). So the fewest coins below
   * `best` is the least N < best with g(D(N)) <= N, where g(D) is the fewest coins other than the pivot's
   * whose deficits add up to exactly D, each tube capped at best - 1; `best` itself if there is none.
   * Values above V have negative deficits, at least D_lo = the sum of (V - v) x cap over them; a plan below
   * `best` has D(N) <= V (best - 1) - A = D_hi. g is a bounded knapsack over [D_lo, max(D_hi, 0)] (each tube
   * split into pieces of 1, 2, 4, ... coins, each a 0/1 item: every count up to the cap is a sum of some),
   * the negative values first, so every partial sum of a plan's deficits (falling to its negative part, then
   * rising to its total) stays in the range. One entry a deficit: a byte when best - 1 <= 254 (g above 254
   * is useless then: M <= N <= 254; 255 marks none), else a Uint16; the range must fit the FALLBACK_BYTES
   * table. The plan: peel the levels last in first out, each count k found from g over the levels before it
   * (g'(D - k w) + k <= the coins left), so one programme a level.
   *
   * Compute: a level's cap of c coins splits into at most log2(c) + 1 pieces, 8 for a tube (255 coins), 12 for
   * a value in several tubes (at most 16 x 255 = 4,080 coins); a programme is that many passes a level over at
   * most 4,096 entries. The count runs over at most 15 levels, then the plan peels them with one programme
   * over 14, 13, ..., 0 levels: at most 120 level-passes, 120 x 12 x 4,096 = 5.9 million entry updates (a
   * compare and a store each; 3.9 million with one tube a value), O(levels^2 x log(coins) x range) in all.
   * Memory: the table in the bitset's buffer, nothing else
   * (rows of the work array).
   */
  private deficit(target: number, m: number, best: number): number {
    const w = this.work;
    const T = STRIDE;
    if (best <= 1) return best;
    // The tubes as the search had them (exact's tries capped CNT in place and saved it in STEP).
    for (let l = 0; l < m; l++) w[CNT * T + l] = w[STEP * T + l]!;
    let p = -1;
    for (let l = 0; l < m && p < 0; l++) {
      const fit = Math.floor(target / w[VAL * T + l]!);
      if (w[CNT * T + l]! >= (fit < best - 1 ? fit : best - 1)) p = l;
    }
    if (p < 0) return this.counted(target, m, best);
    const V = w[VAL * T + p]!;
    // Every deficit is a multiple of the common divisor gw of the values' differences from V: the table
    // counts in steps of gw (values all 1 mod 37 make it 37 times narrower).
    let gw = 0;
    for (let l = 0; l < m; l++) if (l !== p) gw = gcd(Math.abs(V - w[VAL * T + l]!), gw);
    if (gw === 0) gw = 1;
    // Caps (KMIN) and deficits (K, in steps of gw) a level; D_lo (likewise). A plan below `best` has at most
    // best - 1 coins of a value, and k coins of v below the largest value X leave A - k v to at most best - 1 - k
    // coins of at most X, so k <= ((best - 1) X - A) / (X - v) (as in attempt).
    const X = w[VAL * T]!;
    let lo = 0;
    for (let l = 0; l < m; l++) {
      let c = w[CNT * T + l]!;
      if (c > best - 1) c = best - 1;
      if (l > 0) {
        const k = Math.floor(((best - 1) * X - target) / (X - w[VAL * T + l]!));
        if (k < c) c = k < 0 ? 0 : k;
      }
      w[KMIN * T + l] = l === p ? 0 : c;
      w[K * T + l] = (V - w[VAL * T + l]!) / gw;
      if (l < p) lo += w[K * T + l]! * w[KMIN * T + l]!;
    }
    const dHi = Math.floor((V * (best - 1) - target) / gw);
    if (dHi < lo) return best;
    const hi = dHi > 0 ? dHi : 0;
    const narrow = best - 1 <= 254;
    const size = hi - lo + 1;
    if (size > (narrow ? this.bytes.length : this.table.length)) return this.counted(target, m, best);
    // Levels in the programme's order (values above V first), as positions 0..m-2 in `levelAt`.
    const run = (levels: number): void => this.deficitTable(levels, p, lo, size, narrow);
    const g = narrow ? this.bytes : this.table;
    const none = narrow ? 0xff : UNSET;
    run(m - 1);
    let n = -1;
    for (let N = Math.max(0, Math.ceil((target + lo * gw) / V)); N < best; N++) {
      const e = V * N - target;
      if (e % gw !== 0) continue;
      const d = e / gw;
      if (d < lo || d > dHi) continue;
      const x = g[d - lo]!;
      if (x !== none && x <= N) {
        n = N;
        break;
      }
    }
    if (n < 0) return best;
    // The plan: peel the levels, last in first out.
    let d = (V * n - target) / gw;
    let left = n;
    let used = 0;
    for (let j = m - 2; j >= 0; j--) {
      const l = j < p ? j : j + 1;
      run(j);
      const wl = w[K * T + l]!;
      let k = 0;
      for (; k <= w[KMIN * T + l]!; k++) {
        const e = d - k * wl;
        if (e < lo || e > hi) continue;
        const x = g[e - lo]!;
        if (x !== none && x + k <= left) break;
      }
      // k is found: g over j + 1 levels at d was at most `left`, and it is the least over the counts of level l.
      w[BEST * T + l] = k;
      d -= k * wl;
      left -= k;
      used += k;
    }
    w[BEST * T + p] = n - used;
    return n;
  }

  /**
   * The counted deficit table, where the deficit programme's range does not fit (its pivot's tube, below values
   * whose tubes bind, leaves a wide negative range): the pivot is the largest value V whatever its tube, so
   * every other coin's deficit V - v is at least 1, and the table keeps the count too. Bit (M, D) says some
   * coins other than V's, within their tubes, number M and have deficits adding up to D. A plan of N coins has
   * D = V N - A and M in [N - c, N] (c the tube of V), and conversely (as in deficit); M <= D since each deficit
   * is at least 1. So for plans below a goal G: D <= V (G - 1) - A =: Dh and M <= min(G - 1, Dh), rows of
   * Dh + 1 bits, one a count. The goal is the largest up to `best` whose rows fit the bitset's buffer; the
   * fewest is the least N < G with a bit (M, V N - A), M in [N - c, N]. If there is none, `best` is proven
   * when G = best, else -1. The plan: peel the levels as deficit does, one table a level.
   *
   * Compute: a table is at most 15 levels x 12 pieces (8 with one tube a value) x 1,024 words of shift-or;
   * with the plan's tables over 14, 13, ..., 0 levels, at most 120 level-passes x 12 x 1,024 = 1.5 million
   * word updates in all.
   */
  private counted(target: number, m: number, best: number): number {
    const w = this.work;
    const T = STRIDE;
    const bits = this.bits;
    const V = w[VAL * T]!;
    const c = w[CNT * T]!;
    // Deficits in steps of their common divisor, as in deficit.
    let gw = 0;
    for (let l = 1; l < m; l++) gw = gcd(V - w[VAL * T + l]!, gw);
    if (gw === 0) gw = 1;
    this.cV = V;
    this.cA = target;
    this.cGw = gw;
    this.cWmin = m > 1 ? (V - w[VAL * T + 1]!) / gw : 1;
    // The largest goal whose rows fit.
    let G = best;
    let dh = 0;
    let rows = 0;
    let total = 0;
    for (; G > 1; G--) {
      dh = V * (G - 1) - target;
      // No plan below G (its coins would pay at most V (G - 1) < A): that proves `best` only when G is best.
      if (dh < 0) return G === best ? best : -1;
      dh = Math.floor(dh / gw);
      rows = (G - 1 < dh ? G - 1 : dh) + 1;
      this.cWords = (dh >> 5) + 1;
      total = 0;
      for (let M = 0; M < rows; M++) total += this.cWords - this.rowStart(M);
      if (total <= bits.length) break;
    }
    if (G <= 1) return -1;
    for (let l = 1; l < m; l++) {
      const wl = (V - w[VAL * T + l]!) / gw;
      w[K * T + l] = wl;
      let cap = w[CNT * T + l]!;
      if (cap > rows - 1) cap = rows - 1;
      if (cap > Math.floor(dh / wl)) cap = Math.floor(dh / wl);
      w[KMIN * T + l] = cap;
    }
    this.countedTable(m, rows, total);
    let n = -1;
    let mm = 0;
    for (let N = Math.ceil(target / V); N < G && n < 0; N++) {
      if ((V * N - target) % gw !== 0) continue;
      const d = (V * N - target) / gw;
      const top = N < rows - 1 ? N : rows - 1;
      for (let M = N - c > 0 ? N - c : 0; M <= top; M++) {
        if (this.countedBit(M, d)) {
          n = N;
          mm = M;
          break;
        }
      }
    }
    if (n < 0) return G === best ? best : -1;
    let d = (V * n - target) / gw;
    let left = mm;
    for (let l = m - 1; l >= 1; l--) {
      this.countedTable(l, rows, total);
      const wl = w[K * T + l]!;
      let k = 0;
      for (; k <= w[KMIN * T + l]! && k <= left && k * wl <= d; k++) if (this.countedBit(left - k, d - k * wl)) break;
      // Found: bit (left, d) of the table with level l says some count of it leaves a bit of the one without.
      w[BEST * T + l] = k;
      d -= k * wl;
      left -= k;
    }
    w[BEST * T] = n - mm;
    return n;
  }

  /** The counted table's parameters (see counted): V, A, the deficits' step, the least deficit, words a full row. */
  private cV = 0;
  private cA = 0;
  private cGw = 1;
  private cWmin = 1;
  private cWords = 0;

  /**
   * First word row M keeps (words a full row if none). Its deficits are at least M x the least deficit (every
   * coin adds at least that), and at least (V M - A) / step: M coins of deficit D pay V M - D step units, at most
   * A for any part of a plan (its coins only add). Bits below are never set by a plan, so rows start there.
   */
  private rowStart(M: number): number {
    let lo = M * this.cWmin;
    const over = this.cV * M - this.cA;
    if (over > 0) {
      const x = Math.ceil(over / this.cGw);
      if (x > lo) lo = x;
    }
    const s = lo >> 5;
    return s < this.cWords ? s : this.cWords;
  }

  /** Bit (M, d) of the counted table. */
  private countedBit(M: number, d: number): boolean {
    const s = this.rowStart(M);
    const j = d >> 5;
    if (j < s || j >= this.cWords) return false;
    let at = 0;
    for (let r = 0; r < M; r++) at += this.cWords - this.rowStart(r);
    return ((this.bits[at + j - s]! >>> (d & 31)) & 1) !== 0;
  }

  /** The counted deficit table over levels 1..levels-1 (see counted): `rows` rows, `total` words in all. */
  private countedTable(levels: number, rows: number, total: number): void {
    const w = this.work;
    const T = STRIDE;
    const bits = this.bits;
    const words = this.cWords;
    bits.fill(0, 0, total);
    bits[0] = 1;
    for (let l = 1; l < levels; l++) {
      const wl = w[K * T + l]!;
      let left = w[KMIN * T + l]!;
      for (let piece = 1; left > 0; piece += piece) {
        const k = piece < left ? piece : left;
        left -= k;
        const shift = k * wl;
        const q = shift >> 5;
        const b = shift & 31;
        if (q >= words || k >= rows) continue;
        // Row offsets from the top down: dst for row M, src for row M - k.
        let dst = total - (words - this.rowStart(rows - 1));
        let src = dst;
        for (let r = rows - 1; r > rows - 1 - k; r--) src -= words - this.rowStart(r - 1);
        for (let M = rows - 1; M >= k; M--) {
          const sd = this.rowStart(M);
          const ss = this.rowStart(M - k);
          for (let i = words - 1; i >= sd && i >= q; i--) {
            const j = i - q;
            const hi = j >= ss ? bits[src + j - ss]! : 0;
            let x = b === 0 ? hi : hi << b;
            if (b !== 0 && j - 1 >= ss) x |= bits[src + j - 1 - ss]! >>> (32 - b);
            bits[dst + i - sd] = bits[dst + i - sd]! | x;
          }
          if (M > k) {
            dst -= words - this.rowStart(M - 1);
            src -= words - this.rowStart(M - k - 1);
          }
        }
      }
    }
  }

  /** g over the first `levels` levels of the deficit programme's order (see deficit), into its table. */
  private deficitTable(levels: number, p: number, lo: number, size: number, narrow: boolean): void {
    const w = this.work;
    const T = STRIDE;
    const g = narrow ? this.bytes : this.table;
    const none = narrow ? 0xff : UNSET;
    g.fill(none, 0, size);
    g[-lo] = 0;
    for (let j = 0; j < levels; j++) {
      const l = j < p ? j : j + 1;
      const wl = w[K * T + l]!;
      let left = w[KMIN * T + l]!;
      for (let piece = 1; left > 0; piece += piece) {
        const k = piece < left ? piece : left;
        left -= k;
        const shift = k * wl;
        if (shift > 0) {
          for (let i = size - 1; i >= shift; i--) {
            const x = g[i - shift]!;
            if (x !== none && x + k < g[i]!) g[i] = x + k < none ? x + k : none;
          }
        } else {
          for (let i = 0, end = size + shift; i < end; i++) {
            const x = g[i - shift]!;
            if (x !== none && x + k < g[i]!) g[i] = x + k < none ? x + k : none;
          }
        }
      }
    }
  }

  /**
   * Scarce combination `i` (mixed radix over the scarce levels, each 0..its count): its sum, or its coins
   * when `coins`; `write` puts its counts in the BEST row.
   */
  private combination(i: number, m: number, coins: boolean, write = false): number {
    const w = this.work;
    const T = STRIDE;
    let sum = 0;
    let n = 0;
    for (let l = 0; l < m; l++) {
      if (w[K * T + l] === 0) continue;
      const radix = w[CNT * T + l]! + 1;
      const k = i % radix;
      i = (i - k) / radix;
      sum += k * w[VAL * T + l]!;
      n += k;
      if (write) w[BEST * T + l] = k;
    }
    return coins ? n : sum;
  }

  /**
   * f(A), the fewest coins for A units from the open levels (K 0), any number of each (UNSET if none), with V
   * the largest open value, over the table (see exact). An amount whose whole table fits leaves it there. A
   * larger one (then A >= 2V + 1) leaves in `cut` an x in [A/2 - V + 1, A/2] with f(x) + f(A - x) = f(A): any
   * plan for A, as a path 0 -> A in steps of at most V, passes one, so a pass to A/2 + V that also keeps f over
   * that band (V entries after the window) finds one.
   */
  private unbounded(A: number, V: number): number {
    const w = this.work;
    const T = STRIDE;
    const t = this.table;
    t[0] = 0;
    if (A < t.length) {
      for (let a = 1; a <= A; a++) {
        let b = UNSET;
        for (let o = USED * T, end = o + this.open; o < end; o++) {
          const k = a - w[o]!;
          if (k >= 0 && t[k]! < b) b = t[k]!;
        }
        t[a] = b === UNSET ? UNSET : b + 1;
      }
      return t[A]!;
    }
    const W = V + 1; // the window: f(a - V) .. f(a), entry a mod W
    const mid = A >> 1;
    const lo = mid - V + 1; // the band [lo, mid], V entries from t[W] on
    const hi = A - lo;
    let f = UNSET;
    this.cut = lo;
    for (let a = 1, i = 1; a <= hi; a++) {
      let b = UNSET;
      for (let o = USED * T, end = o + this.open; o < end; o++) {
        const v = w[o]!;
        if (v > a) continue;
        const k = i - v;
        const x = t[k < 0 ? k + W : k]!;
        if (x < b) b = x;
      }
      const fa = b === UNSET ? UNSET : b + 1;
      t[i] = fa;
      if (a >= lo && a <= mid) t[W + a - lo] = fa;
      // a in [A - mid, A - lo] pairs with x = A - a in the band, already kept (x <= mid <= A - mid <= a).
      if (a >= A - mid && fa !== UNSET) {
        const fx = t[W + A - a - lo]!;
        if (fx !== UNSET && fx + fa < f) {
          f = fx + fa;
          this.cut = A - a;
        }
      }
      if (++i === W) i = 0;
    }
    return f;
  }

  /**
   * Fewest coins levels `from`..m-1 could pay `r` with if coins could be
   * split: the largest values first, each tube emptied before the next, the
   * last one in part. No plan does better, and it is far tighter than
   * "remainder over the largest value" once the large tubes run low.
   */
  private bound(from: number, r: number, m: number): number {
    if (r === 0) return 0;
    const w = this.work;
    const T = STRIDE;
    let coins = 0;
    for (let l = from; l < m; l++) {
      const v = w[VAL * T + l]!;
      const c = w[CNT * T + l]!;
      if (c * v >= r) return coins + Math.floor((r + v - 1) / v);
      coins += c;
      r -= c * v;
    }
    return NONE;
  }

  /**
   * True when every amount from one unit up to `limit` can be paid exactly:
   * the tubes can give change for any price (else "exact change only").
   */
  coversUpTo(limit: number, counts: ArrayLike<number>): boolean {
    const top = Math.min(limit, this.maxAmount);
    if (top < this.unit) return true;
    const units = Math.floor(top / this.unit);
    this.reachable(units, counts, NONE);
    const bits = this.bits;
    for (let a = 1; a <= units; a++) if (((bits[a >> 5]! >>> (a & 31)) & 1) === 0) return false;
    return true;
  }

  /** True when `amount` can be paid exactly from the tubes. */
  canPay(amount: number, counts: ArrayLike<number>): boolean {
    if (amount === 0) return true;
    if (amount > this.maxAmount || amount % this.unit !== 0) return false;
    const units = amount / this.unit;
    this.reachable(units, counts, NONE);
    return ((this.bits[units >> 5]! >>> (units & 31)) & 1) === 1;
  }
}
