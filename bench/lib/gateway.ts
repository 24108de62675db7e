/**
 * The gateway on this machine, with real Mosquitto and PostgreSQL: ingest
 * rates and latency under load (PostgreSQL and PGlite), 10,000 connected
 * machines, remote-command round trips, and the catch-up after a database
 * outage (bench/gateway-load.ts, command-roundtrip.ts and outage.ts do the
 * work; this records their figures).
 */
import { commandRoundTrip } from '../command-roundtrip.js';
import { connectionsLoad, ingestLoad, openDb, startBenchMosquitto, type FleetConnections, type LoadResult } from '../gateway-load.js';
import { outageCatchUp } from '../outage.js';
import type { Figures } from './figures.js';

const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export async function gatewayBench(f: Figures): Promise<void> {
  f.out('');
  f.out('Gateway: messages (QoS 1, ~200 bytes) through Mosquitto into the store; load generator (its own process), broker, database and gateway on this machine');
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
        f.record(`${key}.perSecond`, Math.round(median(rate)), `${store}, ${label} (${machines} x ${window} in flight${of}): ${kind}/s`);
        if (runs > 1) f.out(`    runs: ${spread(rate).trim()}`);
        f.record(`${key}.p99Ms`, median(p99), `${store}, ${label}: receive-to-commit p99 (ms)`);
        if (runs > 1) f.out(`    runs: ${spread(p99, 1).trim()}`);
        f.record(`${key}.gatewayCpuMsPer1000`, median(results.map((r) => r.gatewayCpuMsPer1000)), `${store}, ${label}: gateway CPU per 1,000 messages (ms)`);
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
    f.record('gateway.connections', c.connected, 'machines connected at once (will, acks subscription, retained status)');
    f.record('gateway.fleetAcknowledged', c.acknowledged, 'of them, first events stored and acknowledged');
    f.record('gateway.fleetAckSeconds', c.ackSeconds, 'seconds from the last connection to the last acknowledgement', 's');
    f.record('gateway.fleetOnline', c.onlineInStore, 'online in the store while connected');
    f.record('gateway.fleetOfflineAfterWills', c.offlineAfterWills, 'offline in the store after every connection dropped (last wills)');
    f.record('gateway.brokerBytesPerConnection', Math.round(c.brokerBytesPerConnection), 'Mosquitto memory per connected machine (bytes)');
  } finally {
    broker.process.kill('SIGKILL');
  }
}

/**
 * The gateway's CPU per message when every message comes from another machine (issue 16), against a few
 * machines sending many, at the same fixed rate so batches are the same size: `machines` publishers, one
 * message in flight each, against 10 with many in flight; events (one a message) and telemetry; PostgreSQL.
 */
export async function distinctMachinesBench(f: Figures, o: { machines: number; rate: number; seconds: number }): Promise<void> {
  f.out('');
  f.out(`Gateway CPU per message, few machines against ${o.machines} distinct ones, ${o.rate} messages/s (load generator, Mosquitto, PostgreSQL on this machine)`);
  const broker = await startBenchMosquitto();
  try {
    for (const kind of ['events', 'telemetry'] as const) {
      for (const [machines, window] of [
        [10, Math.max(20, Math.ceil(o.rate / 10))],
        [o.machines, 1],
      ] as const) {
        const schema = `bench_${process.pid}_distinct_${machines}`;
        const db = await openDb({ url: PG_URL, schema });
        try {
          const r = await ingestLoad({ mqttUrl: broker.url, db, machines, window, seconds: o.seconds, kind, rate: o.rate });
          if (r.rejected > 0 || r.duplicates > 0) throw new Error(`${r.rejected} rejected, ${r.duplicates} duplicates under load`);
          const key = `distinct.${kind}.m${machines}`;
          f.record(`${key}.perSecond`, Math.round(r.persistedPerSecond), `${kind}, ${machines} machines: stored/s`);
          f.record(`${key}.gatewayCpuMsPer1000`, r.gatewayCpuMsPer1000, `${kind}, ${machines} machines: gateway CPU per 1,000 messages (ms)`, '', 1);
          f.record(`${key}.p99Ms`, r.p99Ms, `${kind}, ${machines} machines: receive-to-commit p99 (ms)`, '', 1);
        } finally {
          await db.exec(`DROP SCHEMA ${schema} CASCADE`);
          await db.close();
        }
      }
    }
  } finally {
    broker.process.kill('SIGKILL');
  }
}

export async function commandBench(f: Figures): Promise<void> {
  f.out('');
  f.out('Remote commands: API call to the machine\'s outcome committed (Mosquitto, PostgreSQL, one simulated machine), 2,000 telemetry messages/s in the background');
  const r = await commandRoundTrip(PG_URL, 200, 2000);
  f.record('commands.p50Ms', r.p50Ms, `round trip p50 over ${r.commands} commands (ms)`);
  f.record('commands.p99Ms', r.p99Ms, 'round trip p99 (ms; goal under 50)');
  f.record('commands.maxMs', r.maxMs, 'round trip slowest (ms)');
  f.record('commands.backgroundPerSecond', Math.round(r.backgroundPerSecond), 'background telemetry stored per second meanwhile');
}

/** `speed`: machine time per wall time for the simulated machines (--outage-speed). */
export async function outageBench(f: Figures, speed: number): Promise<void> {
  if (!(speed > 0)) throw new Error('--outage-speed needs a number above 0');
  f.out('');
  f.out(`Catch-up after a 60 s PostgreSQL outage: 20 simulated machines (firmware on the simulator at ${speed}x real time) selling through Mosquitto to one gateway`);
  const r = await outageCatchUp({ pgUrl: PG_URL, machines: 20, cutMs: 60000, speed, log: f.out });
  const key = `outage.x${speed}`;
  f.record(`${key}.speed`, r.speed, 'machine time / wall time over the run', 'x');
  f.record(`${key}.missed`, r.missed, 'events waiting on the machines when the store came back');
  f.record(`${key}.duplicateRows`, r.duplicateRows, 'duplicate rows the gateway processed (cut to end)');
  f.record(`${key}.duplicateRatio`, r.missed > 0 ? r.duplicateRows / r.missed : 0, 'duplicate rows per event missed (goal: at most 2)', 'x');
  f.record(`${key}.droppedWaiting`, r.droppedWaiting, 'messages dropped as already waiting in the gateway');
  f.record(`${key}.published`, r.published, 'event messages the machines published (cut to end)');
  f.record(`${key}.resends`, r.resends, 'acknowledgement timeouts on the machines (cut to end)');
  f.record(`${key}.catchUpSeconds`, r.catchUpSeconds, 'seconds from restore until every backlog is acknowledged (goal: under 10)', 's');
  f.record(`${key}.p99Ms`, r.p99Ms, 'receive-to-commit p99, messages committed restore to catch-up (ms)');
  f.record(`${key}.p99ReceivedAfterMs`, r.p99ReceivedAfterMs, 'receive-to-commit p99, of those received after the restore (ms)');
  f.record(`${key}.exactlyOnce`, r.exactlyOnce ? 1 : 0, 'every event stored exactly once at the end (1 = yes)');
  if (!r.exactlyOnce) throw new Error('events lost or not synced after the outage');
}

