/**
 * The event store's size on PostgreSQL: realistic sales (7 events each, the
 * bodies the firmware's describer writes) from 1,000 machines written
 * through the real ingest path into one month's partition, then measured
 * with pg_total_relation_size (table, TOAST and indexes) after VACUUM.
 * Scaled to the fleet (100,000 machines, 100 sales a day each) and
 * to the retention (13 months kept, the current one besides). The same rows
 * in the unpartitioned layout before migration 13, and as an archive file
 * (gzip CSV), for comparison.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MachineEvent } from '../../gateway/ingest/messages.js';
import { ingestStore, type EventMessage } from '../../gateway/ingest/store.js';
import { openDb } from '../../gateway/store/db.js';
import { writeArchive } from '../../gateway/store/event-archive.js';
import { monthOf, partitionName } from '../../gateway/store/event-partitions.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import type { Figures } from './figures.js';

const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const FLEET = 100000;
const SALES_PER_DAY = 100;
const EVENTS_PER_SALE = 7;
/** Days the store holds at most with 13 months kept: 13 whole months besides the current one (up to 31 days). */
const RETENTION_MONTHS = 13;
const DAYS_KEPT = Math.ceil(RETENTION_MONTHS * 30.44 + 31);

/** One cash sale as the firmware journals it: three coins, the vend, the change. */
function sale(seq: number, t: number, r: () => number): MachineEvent[] {
  const slot = `${'ABCDEF'[Math.floor(r() * 6)]}${1 + Math.floor(r() * 8)}`;
  const price = 100 + 5 * Math.floor(r() * 40);
  const e = (type: string, fields: Record<string, unknown>, i: number): MachineEvent => {
    const body = { seq: seq + i, t: t + i, type, ...fields };
    return { seq: seq + i, t: t + i, type, body };
  };
  const tubes = Array.from({ length: 6 }, () => Math.floor(r() * 60));
  return [
    e('coin-in', { coinType: 2, routing: 'tubes', value: 25 }, 0),
    e('coin-in', { coinType: 3, routing: 'cashbox', value: 100 }, 1),
    e('coin-in', { coinType: 3, routing: 'cashbox', value: 100 }, 2),
    e('vend-start', { slot, price }, 3),
    e('vend-ok', { slot, price }, 4),
    e('payout-start', { asked: 225 - price > 0 ? 225 - price : 0, tubes }, 5),
    e('payout-done', { paid: 225 - price > 0 ? 225 - price : 0, coins: 2, perType: { '1': 1, '2': 1 } }, 6),
  ];
}

export async function storeBench(f: Figures, machines = 1000, salesPerMachine = 30): Promise<void> {
  const events = machines * salesPerMachine * EVENTS_PER_SALE;
  f.out('');
  f.out(`Event store on PostgreSQL: ${events} events (${machines} machines x ${salesPerMachine} cash sales x ${EVENTS_PER_SALE} events) through the ingest path`);
  const schema = `bench_store_${process.pid}`;
  const db = await openDb({ url: PG_URL, schema });
  const dir = mkdtempSync(join(tmpdir(), 'vf-store-bench-'));
  try {
    await migrate(db);
    const ids = Array.from({ length: machines }, (_, i) => `vm-${String(i + 1).padStart(6, '0')}`);
    await addMachines(db, ids);
    const store = ingestStore(db);
    let seed = 42;
    const r = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const started = performance.now();
    // As the gateway writes: messages of up to 20 events, about 500 rows a transaction, machines interleaved.
    for (let s = 0; s < salesPerMachine; s += 3) {
      const messages: EventMessage[] = [];
      for (const id of ids) {
        const list: MachineEvent[] = [];
        for (let k = s; k < Math.min(s + 3, salesPerMachine); k++) list.push(...sale(k * EVENTS_PER_SALE + 1, 1_700_000 + k * 300, r));
        messages.push({ machine: id, to: list.at(-1)!.seq, events: list, refused: [] });
      }
      for (let i = 0; i < messages.length; i += 24) {
        await store.write({ at: new Date(), messages: messages.slice(i, i + 24), telemetry: [], statuses: [], rejections: new Map() }, { conflict: () => {} });
      }
    }
    const seconds = (performance.now() - started) / 1000;
    await db.exec('VACUUM ANALYZE events');
    const size = async (sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql)).rows[0]!.n);
    const stored = await size('SELECT count(*) AS n FROM events');
    if (stored !== events) throw new Error(`${stored} events stored, ${events} written`);
    const month = monthOf(Date.now());
    const partition = await size(`SELECT pg_total_relation_size('${partitionName(month)}') AS n`);
    const marks = await size(`SELECT pg_total_relation_size('event_marks') AS n`);
    // The layout before migration 13, the same rows.
    await db.exec(`CREATE TABLE events_flat (machine_id text NOT NULL, seq bigint NOT NULL, type text NOT NULL, machine_time bigint NOT NULL, body jsonb NOT NULL,
      received_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (machine_id, seq))`);
    await db.exec('CREATE INDEX events_flat_type_time ON events_flat (type, received_at)');
    await db.exec('INSERT INTO events_flat SELECT * FROM events ORDER BY received_at');
    // VACUUM alone: several statements in one exec run as one transaction, where it cannot.
    await db.exec('VACUUM ANALYZE events_flat');
    const flat = await size(`SELECT pg_total_relation_size('events_flat') AS n`);
    const archive = await writeArchive(db, month, dir);
    const perEvent = partition / events;
    const perDayEvents = FLEET * SALES_PER_DAY * EVENTS_PER_SALE;
    const gb = (bytes: number): number => bytes / 1e9;
    f.record('store.events', events, 'events written');
    f.record('store.eventsPerSecond', Math.round(events / seconds), 'events a second through the ingest path (one writer)');
    f.record('store.bytesPerEvent', perEvent, 'bytes per event in its month (table + indexes + TOAST)');
    f.record('store.bytesPerEventUnpartitioned', flat / events, 'bytes per event, the same rows in the layout before (one table)');
    f.record('store.marksBytesPerMachine', marks / machines, 'bytes per machine in event_marks');
    f.record('store.archiveBytesPerEvent', archive.bytes / events, 'bytes per event in an archive file (gzip CSV)');
    f.record('store.gbPerDay', gb(perEvent * perDayEvents), `GB a day at ${FLEET} machines x ${SALES_PER_DAY} sales x ${EVENTS_PER_SALE} events`, 'GB');
    f.record('store.gbKept', gb(perEvent * perDayEvents * DAYS_KEPT), `GB in the store at most, ${RETENTION_MONTHS} months kept (${DAYS_KEPT} days)`, 'GB');
    f.record('store.archiveGbPerMonth', gb((archive.bytes / events) * perDayEvents * 30.44), 'GB of archive files a month at that fleet', 'GB');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await db.exec(`DROP SCHEMA ${schema} CASCADE`);
    await db.close();
  }
}
