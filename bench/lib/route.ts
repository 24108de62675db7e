/**
 * Route planning speed (gateway/restock/route.ts): how long one plan takes
 * for a driver's day (12 stops, solved exactly) and for larger areas (local
 * search), on random stops around one city. Correctness and the quality
 * bound against brute force are tests' business (test/gateway/restock.test.ts).
 */
import { planRoute, type Point } from '../../gateway/restock/route.js';
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
