/**
 * The order to visit machines in, pure, by great-circle (haversine)
 * distance. Up to 12 stops (a driver's day, mostly) the shortest order is
 * found exactly (Held-Karp). Beyond, a local search: nearest-neighbour tours
 * from several starts, each improved by 2-opt (reverse a stretch) and Or-opt
 * (move a run of one to three stops) until neither helps; the shortest is
 * kept. Measured against brute force (docs/restocking.md,
 * test/gateway/restock.test.ts).
 *
 * Without a depot the route is an open path with free ends; with a depot it
 * starts there and, unless told otherwise, comes back. Both are solved as a
 * closed tour through node 0: a depot whose return leg costs nothing, or a
 * dummy at distance 0 from everything.
 */

export interface Point {
  lat: number;
  lon: number;
}

/** Mean Earth radius (IUGG), km. */
const EARTH_KM = 6371.0088;

export function haversineKm(a: Point, b: Point): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

export interface RouteOptions {
  depot?: Point | undefined;
  /** Come back to the depot at the end (default true; no meaning without a depot). */
  returnToDepot?: boolean | undefined;
}

export interface Route {
  /** Indices into the stops, in visiting order. */
  order: number[];
  /** legsKm[i]: from the previous stop (the depot for the first; 0 for the first without a depot) to order[i]. */
  legsKm: number[];
  /** Last stop back to the depot (0 without a depot or return). */
  returnKm: number;
  totalKm: number;
}

/** d[i][j], node 0 the depot (or the dummy), node k+1 stop k. */
function matrix(stops: readonly Point[], options: RouteOptions): number[][] {
  const n = stops.length;
  const back = options.returnToDepot ?? true;
  const d: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(n + 1).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) d[i + 1]![j + 1] = d[j + 1]![i + 1] = haversineKm(stops[i]!, stops[j]!);
    if (options.depot) {
      d[0]![i + 1] = haversineKm(options.depot, stops[i]!);
      d[i + 1]![0] = back ? d[0]![i + 1]! : 0;
    }
  }
  return d;
}

/** Length of the closed tour 0 -> p[0] -> ... -> p[n-1] -> 0. */
function tourLength(d: readonly number[][], p: readonly number[]): number {
  let s = 0;
  let prev = 0;
  for (const x of p) {
    s += d[prev]![x]!;
    prev = x;
  }
  return s + d[prev]![0]!;
}

function nearestNeighbour(d: readonly number[][], n: number, first?: number): number[] {
  const left = new Set<number>();
  for (let i = 1; i <= n; i++) left.add(i);
  const p: number[] = [];
  let at = 0;
  if (first !== undefined) {
    p.push(first);
    left.delete(first);
    at = first;
  }
  while (left.size > 0) {
    let best = -1;
    let bestD = Infinity;
    for (const j of left) {
      if (d[at]![j]! < bestD) {
        bestD = d[at]![j]!;
        best = j;
      }
    }
    p.push(best);
    left.delete(best);
    at = best;
  }
  return p;
}

const EPS = 1e-9;

/** 2-opt: reverse p[i..j] while that shortens the tour. Edges between stops are symmetric; the ones to node 0 are read in their direction. */
function twoOpt(d: readonly number[][], p: number[]): boolean {
  const n = p.length;
  let improved = false;
  for (let again = true; again; ) {
    again = false;
    for (let i = 0; i < n - 1; i++) {
      const a = i === 0 ? 0 : p[i - 1]!;
      for (let j = i + 1; j < n; j++) {
        const b = p[i]!;
        const c = p[j]!;
        const e = j === n - 1 ? 0 : p[j + 1]!;
        const delta = d[a]![c]! + d[b]![e]! - d[a]![b]! - d[c]![e]!;
        if (delta < -EPS) {
          for (let x = i, y = j; x < y; x++, y--) [p[x], p[y]] = [p[y]!, p[x]!];
          again = improved = true;
        }
      }
    }
  }
  return improved;
}

/** Or-opt: move a run of 1 to 3 stops (either way round) to another place while that shortens the tour. */
function orOpt(d: readonly number[][], p: number[]): boolean {
  const n = p.length;
  let improved = false;
  for (let again = true; again; ) {
    again = false;
    for (let len = 1; len <= 3 && !again; len++) {
      for (let i = 0; i + len <= n && !again; i++) {
        const prev = i === 0 ? 0 : p[i - 1]!;
        const next = i + len === n ? 0 : p[i + len]!;
        const first = p[i]!;
        const last = p[i + len - 1]!;
        const removed = d[prev]![first]! + d[last]![next]! - d[prev]![next]!;
        // Put it between p[k-1] and p[k] (node 0 at either end), away from where it is.
        for (let k = 0; k <= n; k++) {
          if (k >= i && k <= i + len) continue;
          const u = k === 0 ? 0 : p[k - 1]!;
          const v = k === n ? 0 : p[k]!;
          const forward = d[u]![first]! + d[last]![v]! - d[u]![v]!;
          const backward = d[u]![last]! + d[first]![v]! - d[u]![v]!;
          if (Math.min(forward, backward) - removed < -EPS) {
            const run = p.slice(i, i + len);
            if (backward < forward) run.reverse();
            const rest = [...p.slice(0, i), ...p.slice(i + len)];
            const at = k < i ? k : k - len;
            p.splice(0, n, ...rest.slice(0, at), ...run, ...rest.slice(at));
            again = improved = true;
            break;
          }
        }
      }
    }
  }
  return improved;
}

function improve(d: readonly number[][], p: number[]): number[] {
  // Each can open moves for the other; both only ever shorten the tour, so this ends.
  for (let round = 0; round < 1000; round++) {
    const a = twoOpt(d, p);
    const b = orOpt(d, p);
    if (!a && !b) break;
  }
  return p;
}

function answer(d: readonly number[][], p: readonly number[], depot: boolean): Route {
  const legsKm: number[] = [];
  let prev = 0;
  for (const x of p) {
    legsKm.push(depot || prev !== 0 ? d[prev]![x]! : 0);
    prev = x;
  }
  const returnKm = p.length > 0 && depot ? d[prev]![0]! : 0;
  return { order: p.map((x) => x - 1), legsKm, returnKm, totalKm: legsKm.reduce((a, b) => a + b, 0) + returnKm };
}

/** Up to this many stops the route is solved exactly (Held-Karp: n^2 2^n steps, a few ms at 12). */
export const EXACT_MAX = 12;

/** The shortest tour by dynamic programming over subsets (Held-Karp). */
function heldKarp(d: readonly number[][], n: number): number[] {
  const size = 1 << n;
  const cost = new Float64Array(size * n).fill(Infinity);
  const from = new Int8Array(size * n).fill(-1);
  for (let j = 0; j < n; j++) cost[(1 << j) * n + j] = d[0]![j + 1]!;
  for (let mask = 1; mask < size; mask++) {
    for (let j = 0; j < n; j++) {
      const c = cost[mask * n + j]!;
      if (!(mask & (1 << j)) || c === Infinity) continue;
      for (let k = 0; k < n; k++) {
        if (mask & (1 << k)) continue;
        const next = mask | (1 << k);
        const v = c + d[j + 1]![k + 1]!;
        if (v < cost[next * n + k]! - EPS) {
          cost[next * n + k] = v;
          from[next * n + k] = j;
        }
      }
    }
  }
  let end = 0;
  let best = Infinity;
  for (let j = 0; j < n; j++) {
    const v = cost[(size - 1) * n + j]! + d[j + 1]![0]!;
    if (v < best - EPS) {
      best = v;
      end = j;
    }
  }
  const p: number[] = [];
  for (let mask = size - 1, j = end; j >= 0; ) {
    p.push(j + 1);
    const prev = from[mask * n + j]!;
    mask &= ~(1 << j);
    j = prev;
  }
  return p.reverse();
}

/** The heuristic alone: nearest neighbour from several starts, each improved by 2-opt and Or-opt. */
export function localSearchRoute(stops: readonly Point[], options: RouteOptions = {}): Route {
  const n = stops.length;
  const d = matrix(stops, options);
  let best: number[] = [];
  let bestLen = Infinity;
  // Several starts, the shortest result kept: nearest neighbour from the depot, and from stops taken first
  // (local search ends in different local optima). Each start costs about n^2 to n^3 steps: every stop
  // is tried up to about 60 stops, fewer beyond (one at 500), so that large routes still take well under a second.
  const tries = Math.min(n, Math.max(options.depot ? 0 : 1, Math.floor(250000 / Math.max(1, n * n))));
  const starts: (number | undefined)[] = [...(options.depot || n === 0 ? [undefined] : []), ...Array.from({ length: tries }, (_, i) => 1 + Math.floor((i * n) / tries))];
  for (const s of starts) {
    const p = improve(d, nearestNeighbour(d, n, s));
    const len = tourLength(d, p);
    if (len < bestLen - EPS) {
      best = p;
      bestLen = len;
    }
  }
  return answer(d, best, options.depot !== undefined);
}

/** The visiting order: exact up to EXACT_MAX stops, the local search beyond. */
export function planRoute(stops: readonly Point[], options: RouteOptions = {}): Route {
  if (stops.length === 0 || stops.length > EXACT_MAX) return localSearchRoute(stops, options);
  return answer(matrix(stops, options), heldKarp(matrix(stops, options), stops.length), options.depot !== undefined);
}

/** The optimum by trying every order (for tests: n! orders, keep n small). */
export function bruteForceRoute(stops: readonly Point[], options: RouteOptions = {}): Route {
  const n = stops.length;
  if (n > 10) throw new RangeError('brute force is for at most 10 stops');
  const d = matrix(stops, options);
  const p = Array.from({ length: n }, (_, i) => i + 1);
  let best = p.slice();
  let bestLen = tourLength(d, p);
  // Heap's algorithm: every permutation, one swap apart.
  const c = new Array<number>(n).fill(0);
  for (let i = 1; i < n; ) {
    if (c[i]! < i) {
      const k = i % 2 === 0 ? 0 : c[i]!;
      [p[k], p[i]] = [p[i]!, p[k]!];
      const len = tourLength(d, p);
      if (len < bestLen - EPS) {
        bestLen = len;
        best = p.slice();
      }
      c[i]! += 1;
      i = 1;
    } else {
      c[i] = 0;
      i++;
    }
  }
  return answer(d, best, options.depot !== undefined);
}
