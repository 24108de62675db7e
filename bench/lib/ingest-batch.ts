/**
 * What one small ingest batch costs the store and this process (issue 16):
 * batches of `--batch` one-event messages from as many machines (the size a
 * batch has at the fleet's average rate, 11), written through the ingest
 * store one after another, on PGlite (in this process) and on PostgreSQL (a
 * schema of the bench's own). Measured: wall time and this process's CPU per
 * batch, and on PostgreSQL its backends' CPU (/proc of the pool's backends,
 * found by application name). No broker, no MQTT: the store's share alone.
 */
import { readFileSync } from 'node:fs';
import { ingestStore } from '../../gateway/ingest/store.js';
import { parseMessage, type MachineEvent, type RefusedEvent } from '../../gateway/ingest/messages.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import type { Figures } from './figures.js';

const APP = `vf-batch-bench-${process.pid}`;

interface EventMessage {
  machine: string;
  to: number;
  events: MachineEvent[];
  refused: RefusedEvent[];
}

/** CPU ticks (1/100 s) of this bench's PostgreSQL backends so far. */
async function backendTicks(db: Db): Promise<number> {
  const r = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [APP]);
  let ticks = 0;
  for (const { pid } of r.rows) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // A backend of another host or gone: not counted.
    }
  }
  return ticks;
}

async function measure(db: Db, o: { batch: number; batches: number }): Promise<{ wallMs: number; cpuMs: number; backendMs: number | undefined }> {
  await migrate(db);
  const ids = Array.from({ length: 2000 }, (_, i) => `batch-${i}`);
  await addMachines(db, ids);
  const store = ingestStore(db);
  const seqs = new Map<string, number>();
  let next = 0;
  const write = async (): Promise<void> => {
    const messages: EventMessage[] = [];
    for (let i = 0; i < o.batch; i++) {
      const machine = ids[next++ % ids.length]!;
      const seq = (seqs.get(machine) ?? 0) + 1;
      seqs.set(machine, seq);
      const m = parseMessage(`fleet/${machine}/events`, Buffer.from(`{"v":1,"events":[{"seq":${seq},"t":${seq},"type":"vend-ok","slot":"B4","price":125}]}`));
      if (!m.ok || m.kind !== 'events') throw new Error('bench message refused');
      messages.push(m);
    }
    await store.write({ at: new Date(), messages, telemetry: [], statuses: [], rejections: new Map() }, { conflict: () => { throw new Error('conflict in the bench'); } });
  };
  // Warm: the first batches make the month's partition, prepare statements, fill caches.
  for (let i = 0; i < 20; i++) await write();
  const postgres = db.kind === 'postgres';
  const b0 = postgres ? await backendTicks(db) : 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < o.batches; i++) await write();
  const wallMs = (performance.now() - t0) / o.batches;
  const c = process.cpuUsage(c0);
  const backendMs = postgres ? ((await backendTicks(db)) - b0) * 10 / o.batches : undefined;
  return { wallMs, cpuMs: (c.user + c.system) / 1000 / o.batches, backendMs };
}

export async function ingestBatchBench(f: Figures, o: { pgUrl: string; batch: number; batches: number }): Promise<void> {
  f.out('');
  f.out(`One ingest batch at a time: ${o.batches} batches of ${o.batch} one-event messages from as many machines, through the ingest store`);
  const pglite = await openDb();
  try {
    const r = await measure(pglite, o);
    f.record('batch.pglite.wallMs', r.wallMs, 'PGlite: wall time per batch (ms)', '', 2);
    f.record('batch.pglite.cpuMs', r.cpuMs, 'PGlite: this process\'s CPU per batch (ms; the store runs in it)', '', 2);
  } finally {
    await pglite.close();
  }
  // The driver names its connections from PGAPPNAME when it opens them (the pool opens more later): set while measuring.
  const previous = process.env['PGAPPNAME'];
  process.env['PGAPPNAME'] = APP;
  const schema = `bench_${process.pid}_batch`;
  const pg = await openDb({ url: o.pgUrl, schema });
  try {
    const r = await measure(pg, o);
    f.record('batch.postgres.wallMs', r.wallMs, 'PostgreSQL: wall time per batch (ms; the commit waits for the WAL flush)', '', 2);
    f.record('batch.postgres.cpuMs', r.cpuMs, 'PostgreSQL: the gateway process\'s CPU per batch (ms)', '', 2);
    f.record('batch.postgres.backendMs', r.backendMs ?? 0, 'PostgreSQL: its backends\' CPU per batch (ms; 10 ms ticks, summed)', '', 2);
  } finally {
    await pg.exec(`DROP SCHEMA ${schema} CASCADE`);
    await pg.close();
    if (previous === undefined) delete process.env['PGAPPNAME'];
    else process.env['PGAPPNAME'] = previous;
  }
}
