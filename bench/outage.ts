/**
 * Catch-up after a database outage: simulated machines (the real firmware on
 * the simulator, each with its own MQTT connection) sell against a gateway
 * whose PostgreSQL is behind a TCP proxy; the proxy is cut for a minute of
 * wall time and restored. Measured: the events the machines recorded that
 * waited for the store, the duplicate rows the gateway processed afterwards,
 * how long until every machine's backlog is acknowledged, receive-to-commit
 * latency, and that every event is stored exactly once at the end.
 *
 * The machines run at `speed` times real time while connected (1: their
 * clocks, and so their acknowledgement timeouts, tick with the gateway's and
 * the outage is a minute for both).
 */
import { Gateway } from '../gateway/gateway.js';
import { openDb } from '../gateway/store/db.js';
import { MachineHost } from '../hal-sim/host.js';
import { usSnackMachine } from '../hal-sim/machines.js';
import { Random } from '../hal-sim/scheduler.js';
import { startBenchMosquitto } from './gateway-load.js';
import { freePort } from './lib/mosquitto.js';
import { CuttableProxy } from './lib/proxy.js';

export interface OutageResult {
  machines: number;
  /** Machine time per wall time over the run (the pace asked for, or less if the CPU could not keep up). */
  speed: number;
  cutSeconds: number;
  /** Events the machines recorded that were waiting (unacknowledged) when the store came back. */
  missed: number;
  /** Event rows the gateway processed and found already stored, from the cut to the end of the run. */
  duplicateRows: number;
  /** Event messages the gateway dropped because the same events were already waiting to be committed. */
  droppedWaiting: number;
  /** Event messages the machines published, and resend rounds (acknowledgement timeouts), from the cut to the end. */
  published: number;
  resends: number;
  /** From the restore until every machine's backlog (what it recorded until the restore) is acknowledged. */
  catchUpSeconds: number;
  /** Receive-to-commit p99 of the messages committed from the restore to the catch-up, and of those received after the restore. */
  p99Ms: number;
  p99ReceivedAfterMs: number;
  /** Every machine's events stored once each at the end. */
  exactlyOnce: boolean;
}

async function sale(host: MachineHost, code: string, coins: number[]): Promise<void> {
  host.select(code);
  await host.runUntilIdle();
  for (const coin of coins) {
    host.insertCoin(coin);
    await host.runUntilIdle();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function outageCatchUp(options: { pgUrl: string; machines?: number; cutMs?: number; speed?: number; log?: (line: string) => void }): Promise<OutageResult> {
  const n = options.machines ?? 20;
  const cutMs = options.cutMs ?? 60000;
  const speed = options.speed ?? 1;
  const log = options.log ?? (() => {});
  const pg = new URL(options.pgUrl);
  const proxy = new CuttableProxy(await freePort(), { host: pg.hostname, port: Number(pg.port || 5432) });
  await proxy.start();
  const url = new URL(options.pgUrl);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  const schema = `bench_outage_${process.pid}`;
  const broker = await startBenchMosquitto();
  const db = await openDb({ url: url.toString(), schema });
  const gw = await Gateway.start({ mqttUrl: broker.url, db });
  const ids = Array.from({ length: n }, (_, i) => `out${process.pid % 10000}-${i}`);
  await gw.addMachines(ids);
  const spec = usSnackMachine({ slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 999, capacity: 999 }, { code: 'B4', product: 'Coke', price: 175, qty: 999, capacity: 999 }] });
  const hosts: MachineHost[] = [];
  let stopping = false;
  let customers: Promise<void>[] = [];
  try {
    for (const [i, id] of ids.entries()) hosts.push(await MachineHost.start(spec, { machineId: id, seed: i + 1, network: { url: broker.url, speed } }));
    const wall0 = performance.now();
    const virtual0 = hosts.map((h) => h.nowMs);
    // Customers one after another, a few seconds apart (machine time): a busy fleet. They pay
    // exactly in coins, so the tubes never run dry and a machine sells at the same rate all along.
    customers = hosts.map(async (host, i) => {
      const rnd = new Random(1000 + i);
      for (let k = 0; !stopping; k++) {
        await host.run(rnd.int(1, 5) * 1000);
        if (!stopping) await sale(host, k % 2 === 0 ? 'A1' : 'B4', k % 2 === 0 ? [100, 25] : [100, 25, 25, 25]);
      }
    });
    const statuses = (): Promise<Awaited<ReturnType<MachineHost['status']>>[]> => Promise.all(hosts.map((h) => h.status()));
    // Warm up: every machine online and selling, its events flowing.
    for (let i = 0; i < 600; i++) {
      const st = await statuses();
      if (st.every((s) => s.uplink?.state === 'online' && s.journal.synced > 10)) break;
      await sleep(100);
    }
    await sleep(5000);

    const stats = gw.ingester.stats;
    const before = await statuses();
    const dup0 = stats.duplicates;
    const dropped0 = stats.waitingDuplicates;
    log(`    cut: ${before.reduce((a, s) => a + s.journal.unsynced, 0)} events unacknowledged, ${stats.events} stored so far`);
    await proxy.cut();
    await sleep(cutMs);
    await proxy.start();
    const restored = performance.now();
    gw.ingester.resetLatency();
    const atRestore = await statuses();
    const missed = atRestore.reduce((a, s) => a + s.journal.unsynced, 0);
    log(`    restored: ${missed} events waiting on the machines, ${stats.storeErrors} store errors, ${gw.ingester.waiting} messages waiting in the gateway`);
    // Caught up: the machine's cursor passed everything it had recorded when the store came back.
    const target = atRestore.map((s) => s.journal.lastSeq);
    const caughtAt: (number | undefined)[] = hosts.map(() => undefined);
    const end = restored + 300000;
    while (caughtAt.some((t) => t === undefined) && performance.now() < end) {
      const st = await statuses();
      const now = performance.now();
      st.forEach((s, i) => {
        if (caughtAt[i] === undefined && s.journal.synced >= target[i]!) caughtAt[i] = now;
      });
      await sleep(50);
    }
    const caught = caughtAt.every((t) => t !== undefined);
    const catchUpSeconds = caught ? (Math.max(...(caughtAt as number[])) - restored) / 1000 : Infinity;
    const p99Ms = gw.ingester.latency(99);
    const p99ReceivedAfterMs = gw.ingester.latency(99, restored);
    log(`    caught up ${caught ? `in ${catchUpSeconds.toFixed(1)} s` : 'NOT within 300 s'}; ${gw.ingester.latencySamples} messages committed meanwhile, ${stats.duplicates - dup0} duplicate rows, ${stats.waitingDuplicates - dropped0} resends dropped as waiting`);

    // A little more selling, then everyone leaves and the machines finish sending.
    await sleep(5000);
    stopping = true;
    await Promise.all(customers);
    customers = [];
    // At most five minutes of wall time, in steps of about 100 ms whatever the pace.
    const drained = performance.now() + 300000;
    while (performance.now() < drained) {
      const st = await statuses();
      if (st.every((s) => s.journal.unsynced === 0)) break;
      await Promise.all(hosts.map((h) => h.run(100 * speed)));
    }
    await gw.ingester.flush();
    const after = await statuses();
    const unsynced = after.reduce((a, s) => a + s.journal.unsynced, 0);
    if (unsynced > 0) log(`    ${unsynced} events still unacknowledged five minutes after the customers left`);
    const wall = performance.now() - wall0;
    const virtual = hosts.reduce((a, h, i) => a + h.nowMs - virtual0[i]!, 0) / n;
    let exactlyOnce = true;
    for (const [i, id] of ids.entries()) {
      const r = await db.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]);
      const stored = Number(r.rows[0]!.n);
      if (stored !== after[i]!.journal.lastSeq || after[i]!.journal.unsynced !== 0) {
        exactlyOnce = false;
        log(`    ${id}: ${stored} events stored, journal at ${after[i]!.journal.lastSeq}, ${after[i]!.journal.unsynced} unacknowledged`);
      }
    }
    const sum = (f: (s: (typeof after)[number]) => number): number => after.reduce((a, s, i) => a + f(s) - f(before[i]!), 0);
    return {
      machines: n,
      speed: virtual / wall,
      cutSeconds: cutMs / 1000,
      missed,
      duplicateRows: stats.duplicates - dup0,
      droppedWaiting: stats.waitingDuplicates - dropped0,
      published: sum((s) => s.uplink?.published ?? 0),
      resends: sum((s) => s.uplink?.resends ?? 0),
      catchUpSeconds,
      p99Ms,
      p99ReceivedAfterMs,
      exactlyOnce,
    };
  } finally {
    stopping = true;
    await Promise.all(customers).catch(() => {});
    await Promise.all(hosts.map((h) => h.close()));
    await gw.close();
    await proxy.start().catch(() => {});
    await db.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
    await db.close();
    await proxy.cut();
    broker.process.kill('SIGKILL');
  }
}
