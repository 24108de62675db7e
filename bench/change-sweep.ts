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
 *   node dist/bench/change-sweep.js [--nodes BUDGET] --climb STEPS [--seed S] [--starts N] [--from CASE]
 *
 * SWEEP_DEBUG=unproven (or wrong) prints those plans; SWEEP_DEBUG=last prints each family's plan with the most
 * last-stage nodes (the search run again to exhaustion where no table settles the plan).
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
  // `--climb STEPS`: instead of the families, a seeded hill-climb (seeds from `--seed`, default 1, `--starts` of
  // them, default 4) over sets a changer can report (16 values up to 255, tubes 0 to 255, amounts up to 30,000),
  // keeping each change (a value, a tube or the amount) that does not lower the plan's search nodes (all stages),
  // so it climbs to the last stage's (the search run again to exhaustion) most nodes at the budget given.
  const climbAt = argv.indexOf('--climb');
  const climb = climbAt >= 0 ? Number(argv.splice(climbAt, 2)[1]) : 0;
  const seedAt = argv.indexOf('--seed');
  const seed = seedAt >= 0 ? Number(argv.splice(seedAt, 2)[1]) : 1;
  const startsAt = argv.indexOf('--starts');
  const starts = startsAt >= 0 ? Number(argv.splice(startsAt, 2)[1]) : 4;
  // `--from '{"values":[...],"counts":[...],"amount":N}'`: every start climbs from this case (say a climb's last).
  const fromAt = argv.indexOf('--from');
  const from = fromAt >= 0 ? (JSON.parse(argv.splice(fromAt, 2)[1]!) as Case) : undefined;
  const mod = (await import(path.startsWith('file:') ? path : pathToFileURL(path).href)) as { ChangeMaker: PlannerClass };
  if (climb > 0) {
    hillClimb(mod.ChangeMaker, climb, seed, starts, budget, from);
    return;
  }
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
    let lastMost = 0;
    let lastRuns = 0;
    let worstLast = '';
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
          if (cm.lastNodes > 0) lastRuns++;
          if (cm.lastNodes > lastMost) {
            lastMost = cm.lastNodes;
            worstLast = JSON.stringify({ values, counts, amount });
          }
          if (plan.paid !== below || plan.count < truth[below]! || (plan.optimal && plan.count !== truth[below])) {
            wrong++;
            if (process.env['SWEEP_DEBUG'] === 'wrong') console.log(JSON.stringify({ values, counts, amount, paid: plan.paid, below, count: plan.count, truth: truth[below], optimal: plan.optimal }));
          }
          if (plan.count > truth[below]!) above++;
        }
      }
    }
    const name = (low ? 'low tubes, ' : '') + (family === 'random' ? 'random 1..255' : family === 'close' ? 'close 200..255' : family === 'mixed' ? 'mixed 37 / 41' : `values c mod ${M}`);
    console.log(`${name.padEnd(28)} plans ${plans}  unproven ${String(unproven).padStart(3)}  most nodes ${most}  last stage ${lastRuns} plans, most ${lastMost} nodes  wrong ${wrong}  not the fewest ${above}`);
    if (process.env['SWEEP_DEBUG'] === 'last' && worstLast) console.log(`  most last-stage nodes: ${worstLast}`);
  }
}

/** The hill-climb (see `--climb`): prints each start's most nodes, its last-stage nodes, and the case, checked against the DP. */
interface Case {
  values: number[];
  counts: number[];
  amount: number;
}

function hillClimb(Planner: PlannerClass, steps: number, seed: number, starts: number, budget: number | undefined, from?: Case): void {
  const max = 30000;
  let s = seed >>> 0;
  const pick = (n: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 4294967296) * n);
  };
  const tube = (): number => (pick(3) === 0 ? pick(4) : pick(256));
  for (let start = 0; start < starts; start++) {
    const values: number[] = [];
    while (values.length < 16) {
      const v = 1 + pick(255);
      if (!values.includes(v)) values.push(v);
    }
    const counts = values.map(() => tube());
    let amount = 1 + pick(max);
    if (from) {
      values.splice(0, 16, ...from.values);
      counts.splice(0, 16, ...from.counts);
      amount = from.amount;
    }
    const score = (vs: number[], cs: number[], a: number): { nodes: number; last: number; optimal: boolean } => {
      const cm = budget === undefined ? new Planner(vs, max) : new Planner(vs, max, budget);
      const plan = cm.solve(a, cs);
      return { nodes: cm.nodes, last: cm.lastNodes, optimal: plan.optimal };
    };
    let cur = score(values, counts, amount);
    for (let step = 0; step < steps; step++) {
      const vs = values.slice();
      const cs = counts.slice();
      let a = amount;
      const what = pick(3);
      if (what === 0) {
        const v = 1 + pick(255);
        if (!vs.includes(v)) vs[pick(vs.length)] = v;
      } else if (what === 1) cs[pick(cs.length)] = tube();
      else a = Math.min(max, Math.max(1, a + pick(2001) - 1000));
      const next = score(vs, cs, a);
      if (next.nodes >= cur.nodes) {
        cur = next;
        values.splice(0, values.length, ...vs);
        counts.splice(0, counts.length, ...cs);
        amount = a;
      }
    }
    const truth = fewestTable(values, counts, amount);
    let below = amount;
    while (below > 0 && truth[below] === Infinity) below--;
    const cm = budget === undefined ? new Planner(values, max) : new Planner(values, max, budget);
    const plan = cm.solve(amount, counts);
    const agrees = plan.paid === below && plan.count === truth[below];
    console.log(`start ${start}: nodes ${cur.nodes}, last stage ${cur.last}, ${cur.optimal ? 'proven' : 'unproven'}, ${agrees ? 'equals the DP' : 'DIFFERS FROM THE DP'}: ${JSON.stringify({ values, counts, amount })}`);
  }
}

await main();
