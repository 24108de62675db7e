/**
 * The change-maker's search on hard coin sets, in Node: for each family, 30
 * (`--sets`) seeded sets of 16 values, full tubes and random tubes (0 to 59 coins), ten
 * amounts from 6,000 to 12,000 units each; counts the plans paid unproven
 * (past the node budget), those with more coins than the fewest, and the most
 * nodes one plan took, and checks every proven count against a DP. Every set is one an MDB changer can report
 * (values up to 255 units: a coin's credit is one byte; the planner refuses more). Families: values all c mod M
 * (c fixed per set, those up to 255: fewer than 16 for M above 15), `mixed` (each value 1 mod 37 or 2 mod 41, the
 * 12 up to 248: no modulus for the whole set), random values from 1 to 255, and `close` (16 of 200 to 255). A family prefixed `low`
 * (`low`, `low7`, `lowmixed`, `lowclose`) has low tubes: half of them 255 and the rest 1 to 3 coins, then all 1 to 3.
 *
 *   node dist/bench/change-sweep.js [--planner PATH] [--sets N] [--nodes BUDGET] [M ...]
 *
 * SWEEP_DEBUG=unproven (or wrong) prints those plans.
 *
 * `--planner` loads another build of firmware/money/change.js (the "before"
 * figures in docs/benchmarks.md). Default families: 7 17 23 37 mixed random.
 */
import { pathToFileURL } from 'node:url';
import type { ChangeMaker as Planner } from '../firmware/money/change.js';
import { fewestTable } from './lib/change-oracle.js';

type PlannerClass = new (values: ArrayLike<number>, maxAmount: number, searchNodes?: number) => Planner;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--planner');
  const path = at >= 0 ? argv.splice(at, 2)[1]! : new URL('../firmware/money/change.js', import.meta.url).href;
  const setsAt = argv.indexOf('--sets');
  const sets = setsAt >= 0 ? Number(argv.splice(setsAt, 2)[1]) : 30;
  // `--nodes N`: a lower node budget, so the exact fallback settles most plans (its own limits, not the search's).
  const nodesAt = argv.indexOf('--nodes');
  const budget = nodesAt >= 0 ? Number(argv.splice(nodesAt, 2)[1]) : undefined;
  const mod = (await import(path.startsWith('file:') ? path : pathToFileURL(path).href)) as { ChangeMaker: PlannerClass };
  const families = argv.length > 0 ? argv : ['7', '17', '23', '37', 'mixed', 'random'];
  const max = 12000;
  for (const spec of families) {
    const low = spec.startsWith('low');
    const family = low ? spec.slice(3) || 'random' : spec;
    let s = 12345;
    const pick = (n: number): number => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return Math.floor((s / 4294967296) * n);
    };
    const distinct = (n: number, top: number): number[] => {
      const v: number[] = [];
      while (v.length < n) {
        const x = 1 + pick(top);
        if (!v.includes(x)) v.push(x);
      }
      return v;
    };
    const M = Number(family);
    const mixed = (): number[] => {
      const v: number[] = [];
      while (v.length < 12) {
        const x = pick(2) === 0 ? 38 + 37 * pick(6) : 43 + 41 * pick(6);
        if (!v.includes(x)) v.push(x);
      }
      return v;
    };
    let plans = 0;
    let unproven = 0;
    let most = 0;
    let wrong = 0;
    let above = 0;
    for (let round = 0; round < sets; round++) {
      const c = family === 'random' || family === 'mixed' || family === 'close' ? 0 : 1 + pick(M - 1);
      const values = family === 'random' ? distinct(16, 255) : family === 'close' ? distinct(16, 56).map((v) => v + 199) : family === 'mixed' ? mixed() : distinct(16, Math.max(16, Math.floor(240 / M))).map((v) => v * M + c).filter((v) => v <= 255);
      for (const full of [true, false]) {
        const counts = low ? values.map((_, t) => (full && t % 2 === 0 ? 255 : 1 + pick(3))) : values.map(() => (full ? 255 : pick(60)));
        const truth = fewestTable(values, counts, max);
        const cm = budget === undefined ? new mod.ChangeMaker(values, max) : new mod.ChangeMaker(values, max, budget);
        for (let i = 0; i < 10; i++) {
          const amount = max - pick(max / 2);
          const plan = cm.solve(amount, counts);
          let below = amount;
          while (below > 0 && truth[below] === Infinity) below--;
          plans++;
          if (!plan.optimal) {
            unproven++;
            if (process.env['SWEEP_DEBUG'] === 'unproven') console.log(JSON.stringify({ values, counts, amount, count: plan.count, truth: truth[below] }));
          }
          if (cm.nodes > most) most = cm.nodes;
          if (plan.paid !== below || plan.count < truth[below]! || (plan.optimal && plan.count !== truth[below])) {
            wrong++;
            if (process.env['SWEEP_DEBUG'] === 'wrong') console.log(JSON.stringify({ values, counts, amount, paid: plan.paid, below, count: plan.count, truth: truth[below], optimal: plan.optimal }));
          }
          if (plan.count > truth[below]!) above++;
        }
      }
    }
    const name = (low ? 'low tubes, ' : '') + (family === 'random' ? 'random 1..255' : family === 'close' ? 'close 200..255' : family === 'mixed' ? 'mixed 37 / 41' : `values c mod ${M}`);
    console.log(`${name.padEnd(28)} plans ${plans}  unproven ${String(unproven).padStart(3)}  most nodes ${most}  wrong ${wrong}  not the fewest ${above}`);
  }
}

await main();
