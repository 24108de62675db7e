/**
 * npm run bench [-- --json]
 *
 * Under the XS engine: heap (slots) and compute (XS computrons, a
 * deterministic count) per complete cash vend, and the change-maker's worst
 * case for 16 coin types up to 10,000 minor units. In Node: vends per second
 * of wall time on the simulator. Figures are counts and ratios.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MachineHost } from '../hal-sim/host.js';
import { CutCampaign, isEventRecord } from '../hal-sim/power-cuts.js';
import { commandRoundTrip } from './command-roundtrip.js';
import { connectionsLoad, ingestLoad, openDb, startBenchMosquitto, type FleetConnections, type LoadResult } from './gateway-load.js';
import { outageCatchUp } from './outage.js';
import { Random } from '../hal-sim/scheduler.js';
import { checkCut } from '../hal-sim/cut-check.js';
import { busyWorkload, cutMachine, CUT_FLASH } from '../hal-sim/cut-workload.js';
import type { MachineSpec } from '../hal-sim/rig.js';
import type { TargetName } from '../hal-sim/transport.js';
import { XsWorker } from '../hal-sim/xs/xsnap.js';

const json = process.argv.includes('--json');
const figures: Record<string, number> = {};
const out = (line: string): void => {
  if (!json) process.stdout.write(line + '\n');
};
const record = (key: string, value: number, label: string, unit = ''): void => {
  figures[key] = value;
  out(`  ${label.padEnd(58)} ${Number.isInteger(value) ? value : value.toFixed(2)}${unit ? ' ' + unit : ''}`);
};

const machine: MachineSpec = {
  currency: 'USD',
  slots: [{ code: 'B4', product: 'Coke', price: 175, qty: 999, capacity: 999 }],
  changer: { coins: [{ value: 5, tube: 100 }, { value: 10, tube: 100 }, { value: 25, tube: 100 }, { value: 100, tube: null }] },
  bills: [100, 500],
};

/**
 * One complete cash vend, alternating between two customers so the tubes
 * stay level: a dollar bill and a dollar coin (a quarter back), or a dollar
 * bill and three quarters (exact).
 */
async function vend(host: MachineHost, i: number, code = 'B4'): Promise<void> {
  const before = host.rig.delivered.length;
  host.select(code);
  await host.runUntilIdle();
  host.insertBill(100);
  await host.runUntilIdle();
  for (const coin of i % 2 === 0 ? [100] : [25, 25, 25]) {
    if (!host.insertCoin(coin)) throw new Error('coin refused during the benchmark');
    await host.runUntilIdle();
  }
  const st = await host.runUntilIdle();
  if (host.rig.delivered.length !== before + 1 || st.state !== 'IDLE') throw new Error(`vend ${i} did not complete: ${st.state}`);
}

async function xsVend(): Promise<number> {
  out('Firmware under XS: one complete cash vend (select, bill, coins, dispense, change)');
  const empty = new XsWorker();
  const emptyHeap = (await empty.evaluate('gc()')).meter.currentHeapCount;
  await empty.close();

  const host = await MachineHost.start(machine, { target: 'xs' });
  const t = host.transport;
  try {
    for (let i = 0; i < 4; i++) await vend(host, i);
    const rest = await t.evaluate!('gc()');
    const m0 = t.meter!();
    const n = 40;
    for (let i = 0; i < n; i++) await vend(host, i);
    const m1 = t.meter!();
    const after = await t.evaluate!('gc()');
    const compute = (m1.totalCompute - m0.totalCompute) / n;
    // What one bridge message costs with nothing for the firmware to do:
    // JSON in and out, the timer scan. On the board there is no bridge.
    const e0 = t.meter!();
    for (let i = 0; i < 50; i++) {
      const reply = await t.deliver({ t: host.nowMs });
      if (reply.ops.length > 0) throw new Error('an empty delivery produced output');
    }
    const e1 = t.meter!();
    const bridge = (e1.totalCompute - e0.totalCompute) / (e1.cranks - e0.cranks);
    const cranks = (m1.cranks - m0.cranks) / n;
    record('xs.heapAtRestSlots', rest.currentHeapCount - emptyHeap, 'firmware heap at rest, after GC (slots above an empty engine)');
    record('xs.heapGrowthPerVendSlots', (after.currentHeapCount - rest.currentHeapCount) / n, 'heap growth per vend after GC (slots)');
    record('xs.computePerVend', Math.round(compute), 'compute per vend, as run behind the bridge (computrons)');
    record('xs.cranksPerVend', cranks, 'bridge messages per vend (firmware wake-ups)');
    record('xs.bridgeComputePerMessage', Math.round(bridge), 'compute of one empty bridge message (computrons)');
    const own = compute - cranks * bridge;
    record('xs.firmwareComputePerVend', Math.round(own), 'compute per vend, firmware alone (bridge subtracted)');
    return own;
  } finally {
    await host.close();
  }
}

async function xsChange(vendCompute: number): Promise<void> {
  out('');
  out('Change-making under XS: 16 coin types (gcd 1), 255 coins per tube');
  const w = new XsWorker({ meteringLimit: 2_000_000_000 });
  try {
    await w.evaluate(readFileSync(fileURLToPath(new URL('../bundle/bench-change.js', import.meta.url)), 'utf8'));
    const base = (await w.evaluate('0')).meter.compute;
    // Only an ArrayBuffer crosses back from XS, so the footprint comes back as text.
    const fp = await w.evaluate('new TextEncoder().encode(String(benchChangeSetup(10000))).buffer');
    record('change.footprintBytes', Number(new TextDecoder().decode(fp.reply)), 'planner buffers for amounts up to 10,000 (bytes)');
    for (const amount of [100, 1000, 5000, 9999, 10000]) {
      const r = await w.evaluate(`benchChangeSolve(${amount})`);
      const c = r.meter.compute - base;
      record(`change.compute.${amount}`, c, `plan ${String(amount).padStart(5)} minor units (computrons; ${(c / vendCompute).toFixed(2)} vends)`);
    }
    out('Change-making under XS, typical: USD tubes 5/10/25 (gcd 5), credit up to 50.00');
    const tfp = await w.evaluate('new TextEncoder().encode(String(benchChangeSetup(5000, [5, 10, 25, 0]))).buffer');
    record('change.typical.footprintBytes', Number(new TextDecoder().decode(tfp.reply)), 'planner buffers (bytes)');
    for (const amount of [25, 375, 4825]) {
      const r = await w.evaluate(`benchChangeSolve(${amount})`);
      const c = r.meter.compute - base;
      record(`change.typical.compute.${amount}`, c, `plan ${String(amount).padStart(5)} minor units (computrons; ${(c / vendCompute).toFixed(2)} vends)`);
    }
  } finally {
    await w.close();
  }
}

const BENCH_FLASH = { size: 64 * 1024, blockLength: 4096, writeAlign: 4 };

async function xsJournal(vendCompute: number): Promise<void> {
  out('');
  out('Journal under XS: 64 KiB partition (16 blocks of 4 KiB), filled with unacknowledged sales');
  const w = new XsWorker({ meteringLimit: 2_000_000_000 });
  const text = (r: { reply: Uint8Array }): string => new TextDecoder().decode(r.reply);
  try {
    await w.evaluate(readFileSync(fileURLToPath(new URL('../bundle/bench-journal.js', import.meta.url)), 'utf8'));
    const fill = JSON.parse(text(await w.evaluate('new TextEncoder().encode(benchJournalFill(64)).buffer'))) as { sales: number; events: number; dropped: number };
    if (fill.dropped !== 0) throw new Error(`${fill.dropped} records dropped while filling the partition`);
    record('journal.fullPartitionSales', fill.sales, 'sales held unacknowledged before the partition is full');
    const base = (await w.evaluate('0')).meter.compute;
    const recover = async (): Promise<{ compute: number; records: number; sales: number }> => {
      const rec = await w.evaluate('new TextEncoder().encode(benchJournalRecover()).buffer');
      return { compute: rec.meter.compute - base, ...(JSON.parse(text(rec)) as { records: number; sales: number }) };
    };
    const full = await recover();
    if (full.sales !== fill.sales) throw new Error(`recovery found ${full.sales} sales, ${fill.sales} were made`);
    record('journal.recoveryCompute', full.compute, 'recovery of the full partition (computrons)');
    // Replay runs from the newest checkpoint, so the cost peaks just before the next one:
    // measure after each sale over more than a block's worth of sales.
    let worst = full;
    let sellCompute = 0;
    for (let i = 0; i < 40; i++) {
      sellCompute += (await w.evaluate('benchJournalSell()')).meter.compute - base;
      const r = await recover();
      if (r.compute > worst.compute) worst = r;
    }
    record('journal.computePerSale', Math.round(sellCompute / 40), 'journaling one cash sale: 7 events and a sync record (computrons)');
    record('journal.recoveryWorstCompute', worst.compute, `worst recovery over the next 40 sales (${worst.records} records replayed; computrons)`);
    record('journal.recoveryInVends', worst.compute / vendCompute, 'worst recovery compute / firmware compute of one vend', 'vends');
    // The simulated board's 1 MiB partition: recovery reads every header, so it grows with the block count.
    const big = JSON.parse(text(await w.evaluate('new TextEncoder().encode(benchJournalFill(1024)).buffer'))) as { sales: number };
    const bigRecovery = await recover();
    if (bigRecovery.sales !== big.sales) throw new Error(`1 MiB recovery found ${bigRecovery.sales} sales, ${big.sales} were made`);
    record('journal.mib.fullPartitionSales', big.sales, '1 MiB partition: sales held unacknowledged when full');
    record('journal.mib.recoveryInVends', bigRecovery.compute / vendCompute, '1 MiB partition: recovery compute / one vend', 'vends');
    const h0 = (await w.evaluate('gc()')).meter.currentHeapCount;
    await w.evaluate('benchJournalHold()');
    const h1 = (await w.evaluate('gc()')).meter.currentHeapCount;
    record('journal.heapSlots', h1 - h0, 'heap held by an open journal and its ledger, 12 slots (XS slots)');
    record('journal.bufferBytes', BENCH_FLASH.blockLength + 1024 + 32, 'its buffers: one block of scratch, CRC table, payload (bytes)');
  } finally {
    await w.close();
  }
}

async function xsDex(vendCompute: number): Promise<void> {
  out('');
  out('EVA-DTS audit file under XS: every slot sold from, wall clock known (every PA5 present)');
  const w = new XsWorker({ meteringLimit: 2_000_000_000 });
  try {
    await w.evaluate(readFileSync(fileURLToPath(new URL('../bundle/bench-dex.js', import.meta.url)), 'utf8'));
    for (const slots of [12, 40, 100]) {
      await w.evaluate(`benchDexSetup(${slots})`);
      const h0 = (await w.evaluate('gc()')).meter.currentHeapCount;
      const base = (await w.evaluate('0')).meter.compute;
      const r = await w.evaluate('new TextEncoder().encode(String(benchDexBuild())).buffer');
      const bytes = Number(new TextDecoder().decode(r.reply));
      const compute = r.meter.compute - base;
      const peak = r.meter.currentHeapCount - h0;
      record(`dex.${slots}.bytes`, bytes, `${slots} slots: file size (bytes)`);
      record(`dex.${slots}.compute`, compute, `${slots} slots: compute to write it (computrons; ${(compute / vendCompute).toFixed(1)} vends)`);
      record(`dex.${slots}.heapSlots`, peak, `${slots} slots: heap in use right after, before GC (XS slots; garbage once sent)`);
    }
  } finally {
    await w.close();
  }
}

async function journalWear(sales: number): Promise<void> {
  out('');
  out(`Journal on the simulator: ${sales} cash sales, 64 KiB partition, the gateway acknowledging every minute`);
  const slots = Array.from({ length: Math.ceil(sales / 900) + 1 }, (_, i) => ({ code: `S${i}`, product: `P${i}`, price: 175, qty: 900, capacity: 999 }));
  let logical = 0;
  const host = await MachineHost.start(
    { ...machine, slots },
    {
      target: 'sim',
      flash: BENCH_FLASH,
      autoAckMs: 60000,
      onFlashOp: (_h, op) => {
        if (op.kind === 'write' && isEventRecord(op.data)) logical += 9 + (op.data[1]! | (op.data[2]! << 8));
      },
    },
  );
  try {
    for (let i = 0; i < sales; i++) await vend(host, i, slots[Math.floor(i / 900)]!.code);
    const st = await host.status();
    if (st.counters.sales !== sales || st.journal.dropped !== 0) throw new Error(`sales ${st.counters.sales}, dropped ${st.journal.dropped}`);
    const written = host.flash.bytesWritten;
    const erases = Array.from(host.flash.eraseCounts);
    const total = erases.reduce((a, b) => a + b, 0);
    const max = Math.max(...erases);
    const min = Math.min(...erases);
    record('journal.flashBytesPerSale', written / sales, 'flash bytes written per sale (headers, checkpoints, sync, padding)');
    record('journal.eventBytesPerSale', logical / sales, 'event bytes per sale (type, sequence, time, payload)');
    record('journal.writeAmplification', written / logical, 'write amplification (flash bytes / event bytes)', 'x');
    record('journal.erasesPer10kSales', Math.round((total * 10000) / sales), 'block erases per 10,000 sales');
    record('journal.eraseSpreadPercent', ((max - min) * 100) / max, `erase spread across blocks ((max-min)/max; ${min}..${max})`, '%');
  } finally {
    await host.close();
  }
}

async function powerCutCampaign(): Promise<void> {
  out('');
  out('Power cut at every flash write and erase of a busy run (230 customers: change, bills, refunds, jams)');
  const campaign = await CutCampaign.record(cutMachine(), { target: 'sim', seed: 7, flash: CUT_FLASH, autoAckMs: 120000 }, (host) => busyWorkload(host, 230, 31));
  const rnd = new Random(11);
  const failures: string[] = [];
  let checked = 0;
  let uncertain = 0;
  const wall0 = performance.now();
  for (let k = 0; k < campaign.total; k++) {
    const len = campaign.length(k);
    // Mid-operation (a torn write or a half-erased block), and the instant before it starts.
    for (const bytes of [len >> 1, 0]) {
      try {
        uncertain += (await checkCut(campaign, k, bytes, rnd, 1)).uncertainVends;
      } catch (e) {
        failures.push((e as Error).message.split('\n')[0]!);
      }
      checked++;
    }
    if (!json && k % 250 === 249) process.stderr.write(`  ... ${k + 1}/${campaign.total} ops, ${failures.length} failures, ${((performance.now() - wall0) / 1000).toFixed(0)} s\n`);
  }
  record('cuts.flashOps', campaign.total, 'flash writes and erases in the run');
  record('cuts.checked', checked, 'cuts checked (each op: mid-way and just before)');
  record('cuts.failed', failures.length, 'cuts after which an invariant failed');
  record('cuts.uncertainVends', uncertain, 'vends left uncertain by a cut (not charged)');
  // The same recording, the firmware booting under XS: every 13th op, mid-way.
  const xs = campaign.withTarget('xs');
  let xsChecked = 0;
  let xsFailed = 0;
  for (let k = 0; k < campaign.total; k += 13) {
    try {
      await checkCut(xs, k, campaign.length(k) >> 1, rnd, 1);
    } catch (e) {
      xsFailed++;
      failures.push(`xs: ${(e as Error).message.split('\n')[0]!}`);
    }
    xsChecked++;
  }
  record('cuts.xsChecked', xsChecked, 'cuts checked with the firmware under XS (every 13th op)');
  record('cuts.xsFailed', xsFailed, 'of those, cuts after which an invariant failed');
  for (const f of failures.slice(0, 5)) out(`    ${f}`);
  if (failures.length > 0) process.exitCode = 1;
}

const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

async function gatewayBench(): Promise<void> {
  out('');
  out('Gateway: messages (QoS 1, ~200 bytes) through Mosquitto into the store; load generator (its own process), broker, database and gateway on this machine');
  const broker = await startBenchMosquitto();
  try {
    for (const store of ['postgres', 'pglite'] as const) {
      // PostgreSQL carries the goal: three runs each, the median reported with the spread.
      const runs = store === 'postgres' ? 3 : 1;
      for (const [machines, window, label, kind] of [
        [10, 20, 'steady', 'events'],
        [50, 100, 'saturated', 'events'],
        [10, 20, 'telemetry', 'telemetry'],
      ] as const) {
        const results: LoadResult[] = [];
        for (let run = 0; run < runs; run++) {
          const schema = `bench_${process.pid}_${machines}_${run}`;
          const db = store === 'postgres' ? await openDb({ url: PG_URL, schema }) : await openDb();
          try {
            const r = await ingestLoad({ mqttUrl: broker.url, db, machines, window, seconds: 8, kind });
            if (r.rejected > 0 || r.duplicates > 0) throw new Error(`${r.rejected} rejected, ${r.duplicates} duplicates under load`);
            results.push(r);
          } finally {
            if (store === 'postgres') await db.exec(`DROP SCHEMA ${schema} CASCADE`);
            await db.close();
          }
        }
        const key = `gateway.${store}.${label}`;
        const of = runs > 1 ? `, median of ${runs}` : '';
        const rate = results.map((r) => r.persistedPerSecond);
        const p99 = results.map((r) => r.p99Ms);
        const spread = (v: number[], digits = 0): string => (runs > 1 ? ` (${Math.min(...v).toFixed(digits)} to ${Math.max(...v).toFixed(digits)})` : '');
        record(`${key}.perSecond`, Math.round(median(rate)), `${store}, ${label} (${machines} x ${window} in flight${of}): ${kind}/s`);
        if (runs > 1) out(`    runs: ${spread(rate).trim()}`);
        record(`${key}.p99Ms`, median(p99), `${store}, ${label}: receive-to-commit p99 (ms)`);
        if (runs > 1) out(`    runs: ${spread(p99, 1).trim()}`);
        record(`${key}.gatewayCpuMsPer1000`, median(results.map((r) => r.gatewayCpuMsPer1000)), `${store}, ${label}: gateway CPU per 1,000 messages (ms)`);
      }
    }
    // A fresh broker, so its memory growth is the connections' alone.
    const fresh = await startBenchMosquitto();
    const schema = `bench_${process.pid}_fleet`;
    const db = await openDb({ url: PG_URL, schema });
    let c: FleetConnections;
    try {
      c = await connectionsLoad(fresh, db, 10000);
    } finally {
      fresh.process.kill('SIGKILL');
      await db.exec(`DROP SCHEMA ${schema} CASCADE`);
      await db.close();
    }
    record('gateway.connections', c.connected, 'machines connected at once (will, acks subscription, retained status)');
    record('gateway.fleetAcknowledged', c.acknowledged, 'of them, first events stored and acknowledged');
    record('gateway.fleetAckSeconds', c.ackSeconds, 'seconds from the last connection to the last acknowledgement', 's');
    record('gateway.fleetOnline', c.onlineInStore, 'online in the store while connected');
    record('gateway.fleetOfflineAfterWills', c.offlineAfterWills, 'offline in the store after every connection dropped (last wills)');
    record('gateway.brokerBytesPerConnection', Math.round(c.brokerBytesPerConnection), 'Mosquitto memory per connected machine (bytes)');
  } finally {
    broker.process.kill('SIGKILL');
  }
}

async function commandBench(): Promise<void> {
  out('');
  out('Remote commands: API call to the machine\'s outcome committed (Mosquitto, PostgreSQL, one simulated machine), 2,000 telemetry messages/s in the background');
  const r = await commandRoundTrip(PG_URL, 200, 2000);
  record('commands.p50Ms', r.p50Ms, `round trip p50 over ${r.commands} commands (ms)`);
  record('commands.p99Ms', r.p99Ms, 'round trip p99 (ms; goal under 50)');
  record('commands.maxMs', r.maxMs, 'round trip slowest (ms)');
  record('commands.backgroundPerSecond', Math.round(r.backgroundPerSecond), 'background telemetry stored per second meanwhile');
}

async function outageBench(): Promise<void> {
  const at = process.argv.indexOf('--outage-speed');
  const speed = at > 0 ? Number(process.argv[at + 1]) : 1;
  if (!(speed > 0)) throw new Error('--outage-speed needs a number above 0');
  out('');
  out(`Catch-up after a 60 s PostgreSQL outage: 20 simulated machines (firmware on the simulator at ${speed}x real time) selling through Mosquitto to one gateway`);
  const r = await outageCatchUp({ pgUrl: PG_URL, machines: 20, cutMs: 60000, speed, log: out });
  const key = `outage.x${speed}`;
  record(`${key}.speed`, r.speed, 'machine time / wall time over the run', 'x');
  record(`${key}.missed`, r.missed, 'events waiting on the machines when the store came back');
  record(`${key}.duplicateRows`, r.duplicateRows, 'duplicate rows the gateway processed (cut to end)');
  record(`${key}.duplicateRatio`, r.missed > 0 ? r.duplicateRows / r.missed : 0, 'duplicate rows per event missed (goal: at most 2)', 'x');
  record(`${key}.droppedWaiting`, r.droppedWaiting, 'messages dropped as already waiting in the gateway');
  record(`${key}.published`, r.published, 'event messages the machines published (cut to end)');
  record(`${key}.resends`, r.resends, 'acknowledgement timeouts on the machines (cut to end)');
  record(`${key}.catchUpSeconds`, r.catchUpSeconds, 'seconds from restore until every backlog is acknowledged (goal: under 10)', 's');
  record(`${key}.p99Ms`, r.p99Ms, 'receive-to-commit p99, messages committed restore to catch-up (ms)');
  record(`${key}.p99ReceivedAfterMs`, r.p99ReceivedAfterMs, 'receive-to-commit p99, of those received after the restore (ms)');
  record(`${key}.exactlyOnce`, r.exactlyOnce ? 1 : 0, 'every event stored exactly once at the end (1 = yes)');
  if (!r.exactlyOnce) throw new Error('events lost or not synced after the outage');
}

async function throughput(target: TargetName, n: number): Promise<void> {
  const host = await MachineHost.start(machine, { target });
  try {
    await vend(host, 0);
    const wall0 = performance.now();
    const machine0 = host.rig.scheduler.now;
    for (let i = 1; i <= n; i++) await vend(host, i);
    const wall = (performance.now() - wall0) / 1000;
    const machineSeconds = (host.rig.scheduler.now - machine0) / 1e6;
    record(`${target}.vendsPerSecond`, n / wall, `vends per second of wall time (${n} vends, target ${target})`);
    record(`${target}.speedup`, machineSeconds / wall, `machine time / wall time (target ${target})`, 'x');
  } finally {
    await host.close();
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--commands-only')) {
    await commandBench();
    if (json) process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  if (process.argv.includes('--outage-only')) {
    await outageBench();
    if (json) process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  if (process.argv.includes('--gateway-only')) {
    await gatewayBench();
    await commandBench();
    await outageBench();
    if (json) process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  const vendCompute = await xsVend();
  if (process.argv.includes('--xs-only')) {
    // The firmware under XS alone (a minute): vend, change-making, journal, audit file.
    await xsChange(vendCompute);
    await xsJournal(vendCompute);
    await xsDex(vendCompute);
    if (json) process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  await xsChange(vendCompute);
  await xsJournal(vendCompute);
  await xsDex(vendCompute);
  await journalWear(10000);
  if (!process.argv.includes('--no-cuts')) await powerCutCampaign();
  if (!process.argv.includes('--no-gateway')) {
    await gatewayBench();
    await commandBench();
    await outageBench();
  }
  out('');
  out('Simulator throughput');
  await throughput('sim', 300);
  await throughput('xs', 60);
  if (json) process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
