/**
 * Route planning speed (gateway/restock/route.ts): how long one plan takes
 * for a driver's day (12 stops, solved exactly) and for larger areas (local
 * search), on random stops around one city. Correctness and the quality
 * bound against brute force are tests' business (test/gateway/restock.test.ts).
 */
import { haversineKm, planRoute, type Point } from '../../gateway/restock/route.js';
import { solveVrp } from '../../gateway/restock/vrp.js';
import { runSet } from './cvrplib.js';
import type { Figures } from './figures.js';

export interface RouteFigure {
  stops: number;
  plans: number;
  /** Wall time per plan, ms. */
  msPerPlan: number;
}

/** Deterministic stops in a 0.5° x 0.6° box, so runs compare. */
function stops(n: number, seed: number): Point[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return Array.from({ length: n }, () => ({ lat: 39.5 + next() * 0.5, lon: -105.3 + next() * 0.6 }));
}

/** The figures into `f`, one per size. */
export function routeBench(f: Figures): void {
  f.out('');
  f.out('Route planning (gateway/restock/route.ts), random stops around a depot');
  for (const r of routeTimes()) f.record(`route.${r.stops}.msPerPlan`, r.msPerPlan, `${r.stops} stops: one plan (mean of ${r.plans})`, 'ms');
  vanBench(f);
}

/**
 * Many vans (gateway/restock/vrp.ts): the gap to the published optimal or
 * best-known cost on CVRPLIB's Augerat A and B sets, and the solve time per
 * instance; then a fleet-sized plan (machines around one city, vans of 300
 * items) for its time.
 */
export function vanBench(f: Figures): void {
  f.out('');
  f.out('Routes for many vans (gateway/restock/vrp.ts) against CVRPLIB (test/fixtures/cvrplib)');
  for (const set of ['A', 'B'] as const) {
    const r = runSet(set);
    const avg = r.reduce((a, x) => a + x.gap, 0) / r.length;
    const worst = r.reduce((a, x) => (x.gap > a.gap ? x : a));
    const slowest = r.reduce((a, x) => (x.ms > a.ms ? x : a));
    const over = r.filter((x) => x.routes > x.vehicles).length;
    f.record(`vrp.${set}.avgGapPct`, 100 * avg, `set ${set} (${r.length} instances): average gap to the best known cost`, '%');
    f.record(`vrp.${set}.worstGapPct`, 100 * worst.gap, `  worst gap (${worst.name})`, '%');
    f.record(`vrp.${set}.maxMs`, slowest.ms, `  slowest instance (${slowest.name})`, 'ms', 0);
    f.record(`vrp.${set}.moreVans`, over, '  instances planned with more vans than the name says', '', 0);
  }
  for (const machines of [1000, 4000]) {
    const depot = { lat: 39.74, lon: -104.99 };
    const points = [depot, ...stops(machines, 77 + machines)];
    let seed = machines;
    const demand = points.map((_, i) => (i === 0 ? 0 : 10 + ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 40)));
    const t0 = performance.now();
    const plan = solveVrp({ n: points.length, capacity: 300, demand, dist: (a, b) => haversineKm(points[a]!, points[b]!) }, { iterations: 30 });
    f.record(`vrp.fleet${machines}.ms`, performance.now() - t0, `${machines} machines, vans of 300 items: one plan (${plan.routes.length} vans, ${Math.round(plan.cost)} km)`, 'ms', 0);
  }
}

export function routeTimes(sizes: readonly number[] = [12, 50, 100, 300], plans = 5): RouteFigure[] {
  const depot = { lat: 39.74, lon: -104.99 };
  const result: RouteFigure[] = [];
  for (const n of sizes) {
    const sets = Array.from({ length: plans }, (_, i) => stops(n, 1000 * n + i));
    planRoute(sets[0]!, { depot }); // warm up the JIT before timing
    const t0 = performance.now();
    for (const set of sets) planRoute(set, { depot });
    result.push({ stops: n, plans, msPerPlan: (performance.now() - t0) / plans });
  }
  return result;
}
