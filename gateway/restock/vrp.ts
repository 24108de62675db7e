/**
 * Routes for many vans at once: the capacitated vehicle routing problem
 * (one depot, a load limit per van, optionally a limit on each route's
 * length, which is how a working day with a driving speed and a service
 * time per stop becomes a constraint), solved by an established heuristic:
 *
 * - Clarke and Wright's savings construction, parametrised (the savings
 *   d(0,i) + d(0,j) - lambda d(i,j)), over each customer's nearest
 *   neighbours only, so that thousands of stops stay cheap;
 * - local search to a local optimum with the classic moves, each tried
 *   only between near neighbours (granular): relocate a stop, swap two
 *   stops, 2-opt inside a route, 2-opt* between two routes (exchange tails);
 * - iterated: a ruin (a stop and its neighbours taken out) and recreate
 *   (cheapest feasible insertion) then local search again, keeping the best.
 *
 * Deterministic: a seeded generator and an iteration budget, never a clock,
 * so a plan is the same on every run and every machine. Route quality is
 * measured against the Augerat A and B sets of CVRPLIB (npm run bench,
 * docs/benchmarks.md). Pure: no store, no I/O.
 */

export interface VrpProblem {
  /** Nodes 0..n-1; node 0 is the depot. */
  n: number;
  /** Distance between two nodes (symmetric, >= 0). */
  dist(a: number, b: number): number;
  /** Each node's demand (the depot's is ignored), in the units of `capacity`. */
  demand: ArrayLike<number>;
  /** What one van carries. */
  capacity: number;
  /** The longest a route may be, as a distance, for a route of `stops` stops (a day's time limit less the service times, times the speed); none when absent. */
  maxRouteLength?: (stops: number) => number;
}

export interface VrpOptions {
  /** How many nearest neighbours the moves consider per stop (default 24). */
  neighbours?: number;
  /** Iterations of ruin and recreate after the first local optimum (default: scales with the size, 0 for none). */
  iterations?: number;
  /** Seed of the generator (default 1). */
  seed?: number;
}

export interface VrpSolution {
  /** Each route's stops in driving order (depot left out at both ends). */
  routes: number[][];
  /** The total distance, depot to depot for every route. */
  cost: number;
}

/** A small, fast, seeded generator (mulberry32). */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Each customer's nearest other customers, nearest first (a bounded insertion list: n^2 distances, no sort of n). */
function nearest(p: VrpProblem, k: number): Int32Array[] {
  const out: Int32Array[] = [new Int32Array(0)];
  const ids = new Int32Array(k);
  const ds = new Float64Array(k);
  for (let i = 1; i < p.n; i++) {
    let size = 0;
    for (let j = 1; j < p.n; j++) {
      if (j === i) continue;
      const d = p.dist(i, j);
      if (size === k && d >= ds[k - 1]!) continue;
      let at = size < k ? size++ : k - 1;
      while (at > 0 && ds[at - 1]! > d) {
        ds[at] = ds[at - 1]!;
        ids[at] = ids[at - 1]!;
        at--;
      }
      ds[at] = d;
      ids[at] = j;
    }
    out.push(ids.slice(0, size));
  }
  return out;
}

function routeLength(p: VrpProblem, r: readonly number[]): number {
  let len = 0;
  let prev = 0;
  for (const c of r) {
    len += p.dist(prev, c);
    prev = c;
  }
  return len + p.dist(prev, 0);
}

function routeLoad(p: VrpProblem, r: readonly number[]): number {
  let load = 0;
  for (const c of r) load += p.demand[c]!;
  return load;
}

const fits = (p: VrpProblem, load: number, length: number, stops: number): boolean =>
  load <= p.capacity && (p.maxRouteLength === undefined || length <= p.maxRouteLength(stops) + 1e-9);

/** Savings construction with shape `lambda` over the neighbour lists. */
function savings(p: VrpProblem, near: Int32Array[], lambda: number): number[][] {
  const routeOf = new Int32Array(p.n).fill(-1);
  const routes: (number[] | null)[] = [];
  const loads: number[] = [];
  const lengths: number[] = [];
  for (let i = 1; i < p.n; i++) {
    routeOf[i] = routes.length;
    routes.push([i]);
    loads.push(p.demand[i]!);
    lengths.push(2 * p.dist(0, i));
  }
  const pairs: { i: number; j: number; s: number }[] = [];
  for (let i = 1; i < p.n; i++) {
    for (const j of near[i]!) if (j > i || !near[j]!.includes(i)) pairs.push({ i, j, s: p.dist(0, i) + p.dist(0, j) - lambda * p.dist(i, j) });
  }
  pairs.sort((a, b) => b.s - a.s || a.i - b.i || a.j - b.j);
  for (const { i, j } of pairs) {
    const ri = routeOf[i]!;
    const rj = routeOf[j]!;
    if (ri === rj) continue;
    const a = routes[ri]!;
    const b = routes[rj]!;
    // Only the ends of two routes join: i at one end of its route, j at one end of its own.
    const iEnd = a[a.length - 1] === i;
    const iStart = a[0] === i;
    const jEnd = b[b.length - 1] === j;
    const jStart = b[0] === j;
    if (!(iEnd || iStart) || !(jEnd || jStart)) continue;
    const load = loads[ri]! + loads[rj]!;
    const length = lengths[ri]! + lengths[rj]! - p.dist(0, i) - p.dist(0, j) + p.dist(i, j);
    if (!fits(p, load, length, a.length + b.length)) continue;
    const left = iEnd ? a : a.slice().reverse();
    const right = jStart ? b : b.slice().reverse();
    const joined = left.concat(right);
    routes[ri] = joined;
    routes[rj] = null;
    loads[ri] = load;
    lengths[ri] = length;
    for (const c of right) routeOf[c] = ri;
  }
  return routes.filter((r): r is number[] => r !== null);
}

/** The working solution: routes with their loads and lengths, and where each stop is. */
class Plan {
  readonly routes: number[][];
  readonly loads: number[];
  readonly lengths: number[];
  readonly routeOf: Int32Array;
  readonly posOf: Int32Array;

  constructor(
    readonly p: VrpProblem,
    routes: number[][],
  ) {
    this.routes = routes.map((r) => r.slice());
    this.loads = this.routes.map((r) => routeLoad(p, r));
    this.lengths = this.routes.map((r) => routeLength(p, r));
    this.routeOf = new Int32Array(p.n).fill(-1);
    this.posOf = new Int32Array(p.n).fill(-1);
    for (let r = 0; r < this.routes.length; r++) this.index(r);
  }

  index(r: number): void {
    const route = this.routes[r]!;
    for (let k = 0; k < route.length; k++) {
      this.routeOf[route[k]!] = r;
      this.posOf[route[k]!] = k;
    }
  }

  refresh(r: number): void {
    this.loads[r] = routeLoad(this.p, this.routes[r]!);
    this.lengths[r] = routeLength(this.p, this.routes[r]!);
    this.index(r);
  }

  prev(c: number): number {
    const k = this.posOf[c]!;
    return k === 0 ? 0 : this.routes[this.routeOf[c]!]![k - 1]!;
  }

  next(c: number): number {
    const r = this.routes[this.routeOf[c]!]!;
    const k = this.posOf[c]!;
    return k === r.length - 1 ? 0 : r[k + 1]!;
  }

  cost(): number {
    let c = 0;
    for (const l of this.lengths) c += l;
    return c;
  }

  /** Drop emptied routes. */
  compact(): void {
    for (let r = this.routes.length - 1; r >= 0; r--) {
      if (this.routes[r]!.length > 0) continue;
      this.routes.splice(r, 1);
      this.loads.splice(r, 1);
      this.lengths.splice(r, 1);
    }
    for (let r = 0; r < this.routes.length; r++) this.index(r);
  }
}

const EPS = 1e-7;

/** Move u to just after v (v may be the depot of route `rv` when v = 0 and `rv` given). */
function tryRelocate(s: Plan, u: number, v: number): boolean {
  const p = s.p;
  const ru = s.routeOf[u]!;
  const rv = s.routeOf[v]!;
  if (u === v || s.next(v) === u) return false;
  const up = s.prev(u);
  const un = s.next(u);
  const vn = s.next(v);
  const removed = p.dist(up, u) + p.dist(u, un) - p.dist(up, un);
  const added = p.dist(v, u) + p.dist(u, vn) - p.dist(v, vn);
  if (added - removed > -EPS) return false;
  if (ru !== rv) {
    const du = p.demand[u]!;
    if (!fits(p, s.loads[rv]! + du, s.lengths[rv]! + added, s.routes[rv]!.length + 1)) return false;
  } else if (!fits(p, s.loads[rv]!, s.lengths[rv]! + added - removed, s.routes[rv]!.length)) return false;
  const from = s.routes[ru]!;
  from.splice(s.posOf[u]!, 1);
  s.index(ru);
  const to = s.routes[rv]!;
  to.splice(s.posOf[v]! + 1, 0, u);
  s.refresh(rv);
  if (ru !== rv) s.refresh(ru);
  return true;
}

/** Exchange u and v (in one route or two). */
function trySwap(s: Plan, u: number, v: number): boolean {
  const p = s.p;
  const ru = s.routeOf[u]!;
  const rv = s.routeOf[v]!;
  if (s.next(u) === v || s.next(v) === u) return false;
  const up = s.prev(u);
  const un = s.next(u);
  const vp = s.prev(v);
  const vn = s.next(v);
  const du = p.dist(vp, u) + p.dist(u, vn) - p.dist(vp, v) - p.dist(v, vn);
  const dv = p.dist(up, v) + p.dist(v, un) - p.dist(up, u) - p.dist(u, un);
  if (du + dv > -EPS) return false;
  if (ru !== rv) {
    const diff = p.demand[u]! - p.demand[v]!;
    if (!fits(p, s.loads[rv]! + diff, s.lengths[rv]! + du, s.routes[rv]!.length)) return false;
    if (!fits(p, s.loads[ru]! - diff, s.lengths[ru]! + dv, s.routes[ru]!.length)) return false;
  } else if (!fits(p, s.loads[ru]!, s.lengths[ru]! + du + dv, s.routes[ru]!.length)) return false;
  s.routes[ru]![s.posOf[u]!] = v;
  s.routes[rv]![s.posOf[v]!] = u;
  s.refresh(ru);
  if (rv !== ru) s.refresh(rv);
  return true;
}

/** 2-opt inside a route (u before v): u -> v and next(u) -> next(v), the part between reversed. */
function tryTwoOpt(s: Plan, u: number, v: number): boolean {
  const p = s.p;
  const r = s.routeOf[u]!;
  if (s.routeOf[v] !== r) return false;
  let a = u;
  let b = v;
  if (s.posOf[a]! > s.posOf[b]!) [a, b] = [b, a];
  const an = s.next(a);
  const bn = s.next(b);
  if (an === b) return false;
  const delta = p.dist(a, b) + p.dist(an, bn) - p.dist(a, an) - p.dist(b, bn);
  if (delta > -EPS) return false;
  if (!fits(p, s.loads[r]!, s.lengths[r]! + delta, s.routes[r]!.length)) return false;
  const route = s.routes[r]!;
  const i = s.posOf[a]! + 1;
  const j = s.posOf[b]!;
  const mid = route.slice(i, j + 1).reverse();
  route.splice(i, mid.length, ...mid);
  s.refresh(r);
  return true;
}

/** 2-opt* between two routes: u's route continues with v's tail, and v's route with u's tail. */
function tryTwoOptStar(s: Plan, u: number, v: number): boolean {
  const p = s.p;
  const ru = s.routeOf[u]!;
  const rv = s.routeOf[v]!;
  if (ru === rv) return false;
  const un = s.next(u);
  const vn = s.next(v);
  const delta = p.dist(u, vn) + p.dist(v, un) - p.dist(u, un) - p.dist(v, vn);
  if (delta > -EPS) return false;
  const a = s.routes[ru]!;
  const b = s.routes[rv]!;
  const newA = a.slice(0, s.posOf[u]! + 1).concat(b.slice(s.posOf[v]! + 1));
  const newB = b.slice(0, s.posOf[v]! + 1).concat(a.slice(s.posOf[u]! + 1));
  const la = routeLength(p, newA);
  const lb = routeLength(p, newB);
  if (!fits(p, routeLoad(p, newA), la, newA.length) || !fits(p, routeLoad(p, newB), lb, newB.length)) return false;
  s.routes[ru] = newA;
  s.routes[rv] = newB;
  s.refresh(ru);
  s.refresh(rv);
  return true;
}

/**
 * Moves between near neighbours until none improves, starting from `start`
 * and following the stops each improvement touched (a queue), so that a
 * local repair costs what it touches, not the whole plan.
 */
function localSearch(s: Plan, near: Int32Array[], start: readonly number[]): void {
  const p = s.p;
  const queued = new Uint8Array(p.n);
  const queue: number[] = [];
  const push = (c: number): void => {
    if (c > 0 && !queued[c]) {
      queued[c] = 1;
      queue.push(c);
    }
  };
  for (let i = start.length - 1; i >= 0; i--) push(start[i]!);
  while (queue.length > 0) {
    const u = queue.pop()!;
    queued[u] = 0;
    const touched = (v: number): void => {
      for (const c of [u, v, s.prev(u), s.next(u), s.prev(v), s.next(v)]) push(c);
    };
    for (const v of near[u]!) {
      const pv = s.prev(v);
      const pu = s.prev(u);
      if (tryRelocate(s, u, v) || (pv !== 0 && tryRelocate(s, u, pv)) || trySwap(s, u, v) || tryTwoOpt(s, u, v) || tryTwoOptStar(s, u, v) || (pu !== 0 && tryTwoOptStar(s, pu, v))) {
        touched(v);
        break;
      }
    }
    if (queued[u]) continue;
    // u moved to the first place of another route (next to the depot), when that is shorter.
    const up = s.prev(u);
    const un = s.next(u);
    const removed = p.dist(up, u) + p.dist(u, un) - p.dist(up, un);
    for (let r = 0; r < s.routes.length; r++) {
      const route = s.routes[r]!;
      if (route.length === 0 || s.routeOf[u] === r) continue;
      const first = route[0]!;
      const added = p.dist(0, u) + p.dist(u, first) - p.dist(0, first);
      if (added - removed > -EPS || !fits(p, s.loads[r]! + p.demand[u]!, s.lengths[r]! + added, route.length + 1)) continue;
      const ru = s.routeOf[u]!;
      s.routes[ru]!.splice(s.posOf[u]!, 1);
      s.refresh(ru);
      route.unshift(u);
      s.refresh(r);
      touched(first);
      push(up);
      push(un);
      break;
    }
  }
  s.compact();
}

/** Put stops back where each costs least (a new route when none fits). */
function recreate(s: Plan, out: number[]): void {
  const p = s.p;
  for (const u of out) {
    let best = Infinity;
    let bestRoute = -1;
    let bestPos = 0;
    for (let r = 0; r < s.routes.length; r++) {
      const route = s.routes[r]!;
      if (s.loads[r]! + p.demand[u]! > p.capacity) continue;
      let prev = 0;
      for (let k = 0; k <= route.length; k++) {
        const next = k < route.length ? route[k]! : 0;
        const added = p.dist(prev, u) + p.dist(u, next) - p.dist(prev, next);
        if (added < best && fits(p, s.loads[r]! + p.demand[u]!, s.lengths[r]! + added, route.length + 1)) {
          best = added;
          bestRoute = r;
          bestPos = k;
        }
        prev = next;
      }
    }
    if (bestRoute < 0) {
      s.routes.push([u]);
      s.loads.push(p.demand[u]!);
      s.lengths.push(2 * p.dist(0, u));
      s.index(s.routes.length - 1);
    } else {
      s.routes[bestRoute]!.splice(bestPos, 0, u);
      s.refresh(bestRoute);
    }
  }
}

function shuffle(a: number[], rnd: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

/** Solve; every stop is on exactly one route, and every route keeps the limits (a stop that fits no van alone gets a route of its own). */
export function solveVrp(problem: VrpProblem, options: VrpOptions = {}): VrpSolution {
  let p = problem;
  if (p.n <= 1) return { routes: [], cost: 0 };
  // Distances looked up, not computed (haversine is trigonometry), while the table stays modest (2,000 stops: 32 MB).
  if (p.n <= 2000) {
    const n = p.n;
    const table = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) table[i * n + j] = table[j * n + i] = p.dist(i, j);
    p = { ...p, dist: (a, b) => table[a * n + b]! };
  }
  const k = Math.min(p.n - 2, options.neighbours ?? 16);
  const near = nearest(p, Math.max(1, k));
  const rnd = generator(options.seed ?? 1);
  const order: number[] = [];
  for (let i = 1; i < p.n; i++) order.push(i);
  // Several savings shapes, each polished; the best goes on.
  let best: Plan | undefined;
  for (const lambda of [0.6, 1.0, 1.4, 1.8]) {
    const s = new Plan(p, savings(p, near, lambda));
    localSearch(s, near, order);
    if (!best || s.cost() < best.cost() - EPS) best = s;
  }
  let current = new Plan(p, best!.routes);
  const iterations = options.iterations ?? Math.max(30, Math.min(300, Math.floor(8000 / p.n)));
  for (let it = 0; it < iterations; it++) {
    const trial = new Plan(p, current.routes);
    // Ruin: a random stop and some of its nearest neighbours.
    const seed = 1 + Math.floor(rnd() * (p.n - 1));
    const size = Math.max(2, Math.min(p.n - 1, k + 1, Math.round((p.n - 1) * (0.05 + 0.15 * rnd()))));
    const out = [seed, ...Array.from(near[seed]!).slice(0, size - 1)];
    const around = new Set<number>(out);
    for (const u of out) for (const v of near[u]!) around.add(v);
    for (const u of out) {
      const r = trial.routeOf[u]!;
      trial.routes[r]!.splice(trial.posOf[u]!, 1);
      trial.refresh(r);
    }
    trial.compact();
    shuffle(out, rnd);
    recreate(trial, out);
    localSearch(trial, near, [...around]);
    const c = trial.cost();
    // Accept a little worse now and then (it leaves a local optimum); keep the best seen.
    if (c < current.cost() - EPS || rnd() < 0.05) current = trial;
    if (c < best!.cost() - EPS) best = new Plan(p, trial.routes);
  }
  const routes = best!.routes.filter((r) => r.length > 0).map((r) => r.slice());
  return { routes, cost: routes.reduce((a, r) => a + routeLength(problem, r), 0) };
}

/** The total distance of routes (depot to depot), for checking a plan. */
export function planCost(p: VrpProblem, routes: readonly (readonly number[])[]): number {
  return routes.reduce((a, r) => a + routeLength(p, r), 0);
}
