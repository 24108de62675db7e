/**
 * Routes for many vans (gateway/restock/vrp.ts) against published
 * instances: every CVRPLIB Augerat A instance solved to a valid plan (each
 * stop once, no van over its load) within 5 % of the best known cost on
 * average; a route-length limit kept; the same plan on every run; small
 * instances against brute force.
 */
import { strict as assert } from 'node:assert';
import { planCost, solveVrp, type VrpProblem } from '../../gateway/restock/vrp.js';
import { checkSolution, loadSet, parseCvrp } from '../../bench/lib/cvrplib.js';

/** Deterministic random problems on a 100 x 100 square. */
function randomProblem(n: number, seed: number, capacity: number): VrpProblem & { xs: number[]; ys: number[] } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const xs = Array.from({ length: n }, () => Math.round(next() * 100));
  const ys = Array.from({ length: n }, () => Math.round(next() * 100));
  const demand = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1 + Math.floor(next() * 9)));
  return { n, capacity, demand, xs, ys, dist: (a, b) => Math.hypot(xs[a]! - xs[b]!, ys[a]! - ys[b]!) };
}

/** The cheapest plan by brute force: every way to cut every order of the stops into routes. */
function bruteForce(p: VrpProblem): number {
  const stops = Array.from({ length: p.n - 1 }, (_, i) => i + 1);
  let best = Infinity;
  const permute = (rest: number[], done: number[]): void => {
    if (rest.length === 0) {
      // Each of the n-2 gaps either starts a new route or not.
      for (let cuts = 0; cuts < 1 << (done.length - 1); cuts++) {
        const routes: number[][] = [[done[0]!]];
        for (let i = 1; i < done.length; i++) {
          if (cuts & (1 << (i - 1))) routes.push([]);
          routes[routes.length - 1]!.push(done[i]!);
        }
        if (routes.every((r) => r.reduce((a, c) => a + p.demand[c]!, 0) <= p.capacity)) best = Math.min(best, planCost(p, routes));
      }
      return;
    }
    for (let i = 0; i < rest.length; i++) permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...done, rest[i]!]);
  };
  permute(stops, []);
  return best;
}

describe('routes for many vans', function () {
  this.timeout(120000);

  it('plans every Augerat A instance validly, within 5 % of the best known cost on average', () => {
    const gaps: number[] = [];
    for (const inst of loadSet('A')) {
      const s = solveVrp(inst.problem);
      assert.deepEqual(checkSolution(inst, s), []);
      assert.ok(s.cost >= inst.best, `${inst.name}: ${s.cost} below the optimum ${inst.best}: the distances are wrong`);
      gaps.push((s.cost - inst.best) / inst.best);
    }
    assert.equal(gaps.length, 27);
    const avg = gaps.reduce((a, g) => a + g, 0) / gaps.length;
    assert.ok(avg < 0.05, `average gap ${(100 * avg).toFixed(2)} %`);
    assert.ok(Math.max(...gaps) < 0.1, `worst gap ${(100 * Math.max(...gaps)).toFixed(2)} %`);
  });

  it('keeps a limit on each route, and still visits every stop', () => {
    const inst = loadSet('A')[0]!;
    const free = solveVrp(inst.problem);
    const longest = Math.max(...free.routes.map((r) => planCost(inst.problem, [r])));
    const limit = Math.round(longest * 0.8);
    const limited = { ...inst, problem: { ...inst.problem, maxRouteLength: () => limit } };
    const s = solveVrp(limited.problem);
    assert.deepEqual(checkSolution(limited, s), []);
    for (const r of s.routes) assert.ok(planCost(inst.problem, [r]) <= limit, `a route of ${planCost(inst.problem, [r])} over ${limit}`);
    assert.ok(s.routes.length >= free.routes.length);
  });

  it('gives the same plan on every run', () => {
    const p = randomProblem(60, 7, 40);
    assert.deepEqual(solveVrp(p), solveVrp(p));
  });

  it('finds the optimum of small problems (brute force)', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const p = randomProblem(7, seed, 12 + (seed % 5) * 3);
      const s = solveVrp(p);
      const exact = bruteForce(p);
      assert.ok(Math.abs(s.cost - exact) < 1e-6, `seed ${seed}: ${s.cost} vs the optimum ${exact}`);
    }
  });

  it('reads only what the CVRPLIB format says, and says what is missing', () => {
    assert.throws(() => parseCvrp('NAME : X\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : GEO\nCAPACITY : 10\n', 'Cost 1'), /EUC_2D/);
    assert.throws(() => parseCvrp('NAME : X\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 3 4\nDEMAND_SECTION\n1 0\n2 5\nDEPOT_SECTION\n1\n-1\n', 'no cost'), /Cost/);
    const tiny = parseCvrp('NAME : X-n2-k1\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 3 4\nDEMAND_SECTION\n1 0\n2 5\nDEPOT_SECTION\n1\n-1\nEOF\n', 'Cost 10');
    assert.deepEqual(solveVrp(tiny.problem), { routes: [[1]], cost: 10 });
  });
});
