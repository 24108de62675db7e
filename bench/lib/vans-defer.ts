/**
 * GET /routes when many visits wait (gateway/restock/vans.ts fitPrefix): the
 * most urgent visits a few vans can do out of many, found by one solve, a
 * removal estimate and cheap insertions, against the bisection over full
 * solves it replaced (kept here as the reference). Figures: solves, ms and
 * visits kept by each, on deterministic machines around one city.
 */
import { pickList } from '../../gateway/restock/picklist.js';
import { dayKm, fitPrefix, unitsOf, type Located, type VansRequest } from '../../gateway/restock/vans.js';
import { haversineKm, type Point } from '../../gateway/restock/route.js';
import { solveVrp } from '../../gateway/restock/vrp.js';
import type { Figures } from './figures.js';

/** `n` visits in urgency order, 8 to 30 items each, in a 0.4° x 0.5° box around the depot. */
export function deferVisits(n: number, seed = 7): { depot: Point; visits: Located[] } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const depot = { lat: 39.75, lon: -105.0 };
  const visits = Array.from({ length: n }, (_, i): Located => {
    const need = 8 + Math.floor(next() * 23);
    return {
      machine: `dv${String(i).padStart(4, '0')}`,
      location: { lat: depot.lat - 0.2 + next() * 0.4, lon: depot.lon - 0.25 + next() * 0.5, address: null },
      reasons: [{ kind: 'empty', slot: 'A1' }],
      firstEmptyAt: null,
      asOf: null,
      picklist: pickList([{ code: 'A1', qty: 0, capacity: need }]),
    };
  });
  return { depot, visits };
}

/** The bisection over full solves that fitPrefix replaced: the longest prefix whose solve fits the vans. */
export function bisectPrefix(req: VansRequest, reachable: readonly Located[]): { kept: number; solves: number } {
  let solves = 0;
  const fits = (n: number): boolean => {
    solves += 1;
    if (n === 0) return true;
    const points: Point[] = [req.depot, ...reachable.slice(0, n).map((v) => v.location)];
    const demand = new Float64Array(points.length);
    for (let i = 0; i < n; i++) demand[i + 1] = unitsOf(reachable[i]!, req.capacity);
    const total = reachable.slice(0, n).reduce((a, v) => a + unitsOf(v, req.capacity), 0);
    if (total > req.vans * req.capacity) return false;
    return solveVrp({ n: points.length, dist: (a, b) => haversineKm(points[a]!, points[b]!), demand, capacity: req.capacity, maxRouteLength: (k) => dayKm(req, k) }).routes.length <= req.vans;
  };
  if (fits(reachable.length)) return { kept: reachable.length, solves };
  let lo = 0;
  let hi = reachable.length - 1;
  let units = 0;
  for (let i = 0; i <= hi; i++) {
    units += unitsOf(reachable[i]!, req.capacity);
    if (units > req.vans * req.capacity) {
      hi = Math.min(hi, i);
      break;
    }
  }
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return { kept: lo, solves };
}

export function vansDeferBench(f: Figures, sizes: readonly number[] = [200, 600]): void {
  f.out('');
  f.out('GET /routes with many visits deferred (3 vans of 2,000 or 6,000 items, 8 h days at 30 km/h, 10 min a stop: the day binds; at 6,000 the load bounds nothing): fitPrefix vs the bisection it replaced');
  {
    // Both once on a small set first: the solver's code compiled (JIT) before either is timed.
    const { depot, visits } = deferVisits(100, 3);
    const warm: VansRequest = { depot, vans: 3, capacity: 2000, hours: 8, speedKmh: 30, serviceMin: 10, days: 1 };
    fitPrefix(warm, visits);
    bisectPrefix(warm, visits);
  }
  for (const [n, capacity] of sizes.flatMap((n) => [[n, 2000], [n, 6000]] as const)) {
    const { depot, visits } = deferVisits(n);
    const req: VansRequest = { depot, vans: 3, capacity, hours: 8, speedKmh: 30, serviceMin: 10, days: 1 };
    const t0 = performance.now();
    const now = fitPrefix(req, visits);
    const t1 = performance.now();
    const before = bisectPrefix(req, visits);
    const t2 = performance.now();
    const k = `routes.defer.${n}.cap${capacity}`;
    f.record(`${k}.ms`, t1 - t0, `${n} visits, vans of ${capacity}: fitPrefix, ms (${now.solves} solves, ${now.kept} kept)`, 'ms', 0);
    f.record(`${k}.bisectMs`, t2 - t1, `${n} visits, vans of ${capacity}: bisection, ms (${before.solves} solves, ${before.kept} kept)`, 'ms', 0);
    f.record(`${k}.speedup`, (t2 - t1) / (t1 - t0), `${n} visits, vans of ${capacity}: bisection / fitPrefix time`, 'x');
    f.record(`${k}.keptRatio`, now.kept / Math.max(1, before.kept), `${n} visits, vans of ${capacity}: visits kept, fitPrefix / bisection`, 'x');
  }
}
