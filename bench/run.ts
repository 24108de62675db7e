/**
 * npm run bench [-- --json] [--xs-only | --latency-only | --change-only [--change-bundle FILE] | --heap-only [--heap-root DIR] | --gateway-only | --ingest-only [--machines N] [--rate R] [--ingest-seconds S] | --ingest-batch-only [--batch N] [--batches N] | --deadlocks-only [--machines N] [--rounds N] | --commands-only | --outage-only | --route-only | --rollout-only | --update-cuts-only | --update-link-only | --store-only | --peripheral-only | --cluster-only | --dashboard-only [--dashboard-machines N] [--dashboard-sales-per-day N] [--dashboard-pg] [--dashboard-keep DIR] | --restock-only [--dashboard-machines N] [--dashboard-sales-per-day N] [--dashboard-pg] [--dashboard-keep DIR] | --connections-only [--machines N] [--connect M] [--connections-seconds S]] [--no-cuts] [--no-cluster] [--cluster-machines N] [--cluster-seconds N] [--no-gateway] [--no-store] [--outage-speed N] [--store-sales-per-day N] [--update-link-targets sim,xs] [--update-link-set k=v,...] [--update-link-speed N]
 *
 * Under the XS engine: heap (slots) and compute (XS computrons, a
 * deterministic count) per complete cash vend, and the change-maker's worst
 * case for 16 coin types up to 10,000 minor units. In Node: vends per second
 * of wall time on the simulator. Figures are counts and ratios.
 *
 * This file picks the sections from the flags; each section lives in
 * bench/lib (firmware-xs, simulator, gateway) and records into one Figures.
 */
import { latencyBench } from './lib/latency.js';
import { Figures } from './lib/figures.js';
import { xsChange, xsDex, xsJournal, xsUpdate, xsVend } from './lib/firmware-xs.js';
import { heapSplitBench } from './lib/heap-split.js';
import { commandBench, distinctMachinesBench, gatewayBench, outageBench } from './lib/gateway.js';
import { rolloutBench } from './lib/rollout.js';
import { routeBench } from './lib/route.js';
import { storeBench } from './lib/store.js';
import { storeQueryBench } from './lib/store-queries.js';
import { updateCutBench } from './lib/update-cuts.js';
import { peripheralBench } from './lib/peripheral.js';
import { clusterBench } from './lib/rabbitmq-bench.js';
import { journalWear, powerCutCampaign, throughput } from './lib/simulator.js';
import { updateLinkBench } from './lib/update-link.js';
import { fleetConnectionsBench } from './lib/fleet-connections.js';
import { dashboardBench } from './lib/dashboard.js';
import { restockLookBench } from './lib/restock-look.js';
import { vansDeferBench } from './lib/vans-defer.js';
import { deadlockBench } from './lib/ingest-deadlocks.js';
import { ingestBatchBench } from './lib/ingest-batch.js';

const argv = process.argv;
const f = new Figures(argv.includes('--json'));

/** --outage-speed N (default 1), read when the outage section starts, which checks it. */
function outageSpeed(): number {
  const at = argv.indexOf('--outage-speed');
  return at > 0 ? Number(argv[at + 1]) : 1;
}

/** --store-sales-per-day N (default 20): each generated machine's sales a day in the store section. */
function storeSalesPerDay(): number {
  const at = argv.indexOf('--store-sales-per-day');
  const n = at > 0 ? Number(argv[at + 1]) : 20;
  if (!Number.isInteger(n) || n < 1) throw new Error('--store-sales-per-day: a whole number from 1');
  return n;
}

/**
 * --update-link-targets sim,xs (the default): the targets the update over a slow link runs on;
 * --update-link-set chunkBytes=4096,inFlight=2: firmware `update` settings other than its defaults;
 * --update-link-speed N: the machine's clock at most N times wall time while connected (sim 20, xs 10:
 * bench/lib/update-link.ts says why).
 */
async function updateLink(): Promise<void> {
  const at = argv.indexOf('--update-link-targets');
  const targets = at > 0 ? (argv[at + 1] ?? '').split(',') : ['sim', 'xs'];
  const set = argv.indexOf('--update-link-set');
  const update: Record<string, number> = {};
  for (const kv of set > 0 ? (argv[set + 1] ?? '').split(',') : []) {
    const [k, v] = kv.split('=');
    if (!k || !v || !Number.isFinite(Number(v))) throw new Error(`--update-link-set: "${kv}" is not name=number`);
    update[k] = Number(v);
  }
  const sp = argv.indexOf('--update-link-speed');
  const speed = sp > 0 ? Number(argv[sp + 1]) : undefined;
  if (speed !== undefined && !(speed > 0)) throw new Error('--update-link-speed needs a number above 0');
  for (const target of targets) {
    if (target !== 'sim' && target !== 'xs') throw new Error(`--update-link-targets: no target "${target}" (sim, xs)`);
    await updateLinkBench(f, { target, ...(speed !== undefined ? { speed } : {}), ...(set > 0 ? { update } : {}) });
  }
}

/** --cluster-machines N (default 1000), --cluster-seconds N (default 20, each load and after the kill). */
async function cluster(): Promise<void> {
  const arg = (name: string, d: number): number => {
    const at = argv.indexOf(name);
    const n = at > 0 ? Number(argv[at + 1]) : d;
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: a whole number from 1`);
    return n;
  };
  await clusterBench(f, { machines: arg('--cluster-machines', 1000), seconds: arg('--cluster-seconds', 20) });
}

/** --machines N (default 100,000: the fleet whose rates the loads are), --connect M (at most M of them connect) and --connections-seconds S (default 60, each load) for --connections-only. */
function wholeNumber(flag: string, fallback: number): number {
  const at = argv.indexOf(flag);
  const n = at > 0 ? Number(argv[at + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: a whole number from 1`);
  return n;
}

async function main(): Promise<void> {
  if (argv.includes('--peripheral-only')) {
    await peripheralBench(f);
    f.finish();
    return;
  }
  /** The dashboard bench's big store, from the flags: its size, and PostgreSQL (--dashboard-pg) or PGlite (kept in --dashboard-keep DIR). */
  const bigStore = (): { machines: number; salesPerDay: number; pgUrl?: string; dataDir?: string } => {
    const seed = { machines: wholeNumber('--dashboard-machines', 10000), salesPerDay: wholeNumber('--dashboard-sales-per-day', 10) };
    const keep = argv.indexOf('--dashboard-keep');
    if (argv.includes('--dashboard-pg')) return { ...seed, pgUrl: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test' };
    return { ...seed, ...(keep > 0 && argv[keep + 1] !== undefined ? { dataDir: argv[keep + 1]! } : {}) };
  };
  if (argv.includes('--dashboard-only')) {
    // The dashboard's first screen over a big store in Chromium (minutes: the year is seeded first); --dashboard-pg: on PostgreSQL instead of PGlite.
    await dashboardBench(f, bigStore());
    f.finish();
    return;
  }
  if (argv.includes('--restock-only')) {
    // The restock KPI's first look on the dashboard bench's store, from the hourly rollup and from the sales (no browser).
    await restockLookBench(f, bigStore());
    f.finish();
    return;
  }
  if (argv.includes('--connections-only')) {
    // The whole fleet on one Mosquitto (minutes; run alone, not with the rest: it needs the machine's memory and ports).
    const pgUrl = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
    const connect = argv.includes('--connect') ? { connect: wholeNumber('--connect', 1) } : {};
    await fleetConnectionsBench(f, { machines: wholeNumber('--machines', 100000), seconds: wholeNumber('--connections-seconds', 60), pgUrl, ...connect });
    f.finish();
    return;
  }
  if (argv.includes('--ingest-only')) {
    // The gateway's CPU per message, few machines against many distinct ones at one rate (issue 16).
    await distinctMachinesBench(f, { machines: wholeNumber('--machines', 2000), rate: wholeNumber('--rate', 1144), seconds: wholeNumber('--ingest-seconds', 10) });
    f.finish();
    return;
  }
  if (argv.includes('--ingest-batch-only')) {
    // One small ingest batch at a time through the store: its CPU on PGlite, in the gateway and in PostgreSQL (issue 16).
    await ingestBatchBench(f, { pgUrl: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test', batch: wholeNumber('--batch', 11), batches: wholeNumber('--batches', 500) });
    f.finish();
    return;
  }
  if (argv.includes('--deadlocks-only')) {
    // Two ingesters on one PostgreSQL writing the same machines in opposite orders: batches ended by a deadlock.
    await deadlockBench(f, { pgUrl: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test', machines: wholeNumber('--machines', 200), rounds: wholeNumber('--rounds', 20) });
    f.finish();
    return;
  }
  if (argv.includes('--cluster-only')) {
    // The fleet on a 3-node RabbitMQ cluster of the bench's own (minutes: three Erlang nodes, thousands of machines).
    await cluster();
    f.finish();
    return;
  }
  if (argv.includes('--update-link-only')) {
    await updateLink();
    f.finish();
    return;
  }
  if (argv.includes('--store-only')) {
    // The store on this machine's PostgreSQL: its size, then reads over a year of sales (minutes: the year is generated first).
    await storeBench(f);
    await storeQueryBench(f, { salesPerDay: storeSalesPerDay() });
    f.finish();
    return;
  }
  if (argv.includes('--commands-only')) {
    await commandBench(f);
    f.finish();
    return;
  }
  if (argv.includes('--outage-only')) {
    await outageBench(f, outageSpeed());
    await rolloutBench(f);
    f.finish();
    return;
  }
  if (argv.includes('--rollout-only')) {
    await rolloutBench(f);
    f.finish();
    return;
  }
  if (argv.includes('--update-cuts-only')) {
    await updateCutBench(f);
    f.finish();
    return;
  }
  if (argv.includes('--route-only')) {
    routeBench(f);
    vansDeferBench(f);
    f.finish();
    return;
  }
  if (argv.includes('--gateway-only')) {
    routeBench(f);
    await gatewayBench(f);
    await commandBench(f);
    await outageBench(f, outageSpeed());
    await rolloutBench(f);
    await storeBench(f);
    f.finish();
    return;
  }
  if (argv.includes('--latency-only')) {
    await latencyBench(f);
    f.finish();
    return;
  }
  if (argv.includes('--heap-only')) {
    // The heap at rest split into code (flash) and running state (RAM); `--heap-root DIR` measures another built worktree.
    const at = argv.indexOf('--heap-root');
    await heapSplitBench(f, ...(at > 0 && argv[at + 1] ? [argv[at + 1]!] : []));
    f.finish();
    return;
  }
  if (argv.includes('--change-only')) {
    // The change planner alone under XS; `--change-bundle FILE` measures another build of bench/xs/change-bench.ts.
    const at = argv.indexOf('--change-bundle');
    await xsChange(f, undefined, at > 0 ? argv[at + 1] : undefined);
    f.finish();
    return;
  }
  const vendCompute = await xsVend(f);
  if (argv.includes('--xs-only')) {
    // The firmware under XS alone (a minute): vend, change-making, journal, audit file, firmware download.
    await xsChange(f, vendCompute);
    await xsJournal(f, vendCompute);
    await xsDex(f, vendCompute);
    await xsUpdate(f, vendCompute);
    f.finish();
    return;
  }
  await xsChange(f, vendCompute);
  await xsJournal(f, vendCompute);
  await xsDex(f, vendCompute);
  await xsUpdate(f, vendCompute);
  await latencyBench(f);
  await journalWear(f, 10000);
  if (!argv.includes('--no-cuts')) {
    await powerCutCampaign(f);
    await updateCutBench(f);
  }
  if (!argv.includes('--no-gateway')) {
    routeBench(f);
    await gatewayBench(f);
    await commandBench(f);
    await outageBench(f, outageSpeed());
    await rolloutBench(f);
    await storeBench(f);
  }
  if (!argv.includes('--no-cluster')) await cluster();
  if (!argv.includes('--no-store')) await storeQueryBench(f, { salesPerDay: storeSalesPerDay() });
  await updateLink();
  f.out('');
  f.out('Simulator throughput');
  await throughput(f, 'sim', 300);
  await throughput(f, 'xs', 60);
  await peripheralBench(f);
  f.finish();
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
