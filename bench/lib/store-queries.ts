/**
 * The store's own figures, on the machine's PostgreSQL in a schema of the
 * bench's own (dropped after):
 *
 * - Sales reports over a year of 1,000 machines' sales (generated in bulk
 *   with SQL, N a day each over 10 slots, ending now): /fleet/summary and a
 *   30-day /sales/series of the fleet and of one machine, read through the
 *   daily rollup (through the API, as an operator would) and raw (the
 *   sales view), p50 and p95 of repeated reads; and how long the rollup
 *   takes to build from the year (what migration 14 does on an existing store).
 * - machine_state under upserts like ingest's (status, telemetry and
 *   event counts of 100,000 machines): the most upserts a second four
 *   connections make, and at 450 a second for a minute the share of HOT
 *   updates, the dead rows left and the table's growth, with the table as
 *   created before migration 14 (fillfactor 100, default autovacuum) and as
 *   tuned by it.
 */
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { addMonths, ensureEventMonth, monthOf } from '../../gateway/store/event-partitions.js';
import { migrate } from '../../gateway/store/migrations.js';
import { closeSalesDays, rebuildRollup } from '../../gateway/store/rollup.js';
import { fleetSummary, salesSeries, type SalesSource } from '../../gateway/store/sales.js';
import type { Figures } from './figures.js';

const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const DAY_MS = 86_400_000;

function quantile(values: number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]!;
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
  await fn(); // warm: plans and caches
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return { p50: quantile(ms, 0.5), p95: quantile(ms, 0.95) };
}

export interface StoreBenchOptions {
  machines?: number;
  days?: number;
  salesPerDay?: number;
}

/** A year of sales for `machines` machines, `salesPerDay` each, one INSERT per day (progress on `out`). */
async function generateSales(db: Db, machines: number, days: number, salesPerDay: number, out: (s: string) => void): Promise<number> {
  await db.query(`INSERT INTO machines (id) SELECT 'bm' || lpad(m::text, 5, '0') FROM generate_series(1, $1::int) m`, [machines]);
  // events is partitioned by the month received (migration 13): the months the year covers first.
  const now = monthOf(Date.now());
  for (let m = monthOf(Date.now() - days * 86_400_000); m <= now; m = addMonths(m, 1)) await ensureEventMonth(db, m);
  const t0 = performance.now();
  for (let d = days - 1; d >= 0; d--) {
    // Day d before today (UTC), spread over its 24 hours; today only up to now. Slots A1..E2, prices 1.00 to 3.00.
    await db.transaction(async (tx) => {
      // A bulk load of rows made for existing machines: the per-row foreign-key checks are skipped (this transaction only; needs a superuser).
      await tx.query('SET LOCAL session_replication_role = replica');
      await tx.query(
      `INSERT INTO events (machine_id, seq, type, machine_time, body, received_at)
       SELECT machine_id, seq, type, machine_time, body, received_at FROM (
         SELECT 'bm' || lpad(m::text, 5, '0') AS machine_id, ((100000 - $1::int) * $3::int + s)::bigint AS seq, 'vend-ok' AS type, ($1::int * 86400 + (s * 863 + m * 7) % 86400)::bigint AS machine_time,
           ('{"slot":"' || chr(65 + (m + s) % 5) || (1 + (s * 7 + $1::int) % 2)::text || '","price":' || (100 + ((m * 31 + s * 17 + $1::int) % 21) * 10)::text || '}')::jsonb AS body,
           date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $1::int) + make_interval(secs => (s * 863 + m * 7) % 86400) AS received_at
         FROM generate_series(1, $2::int) m, generate_series(1, $3::int) s) x
       WHERE x.received_at <= now()`,
      [d, machines, salesPerDay],
      );
    });
    if (d % 30 === 0) out(`    generated ${days - d} of ${days} days (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  await db.exec('ANALYZE events');
  return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]!.n);
}

export async function storeQueryBench(f: Figures, options: StoreBenchOptions = {}): Promise<void> {
  await salesReportBench(f, options);
  await machineStateBench(f);
}

async function salesReportBench(f: Figures, options: StoreBenchOptions): Promise<void> {
  const machines = options.machines ?? 1000;
  const days = options.days ?? 365;
  const perDay = options.salesPerDay ?? 20;
  f.out('');
  f.out(`Store: sales reports over ${days} days of ${machines} machines x ${perDay} sales a day (PostgreSQL, this machine), rollup vs raw`);
  const schema = `bench_store_${process.pid}`;
  const db = await openDb({ url: PG_URL, schema });
  try {
    await migrate(db);
    const t0 = performance.now();
    const events = await generateSales(db, machines, days, perDay, f.out);
    f.record('store.sales.events', events, `vend-ok events generated (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    const today = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS);
    const first = new Date(today.getTime() - (days - 1) * DAY_MS).toISOString().slice(0, 10);
    const after = new Date(today.getTime() + DAY_MS).toISOString().slice(0, 10);
    const r0 = performance.now();
    await db.transaction((tx) => rebuildRollup(tx, first, after));
    await closeSalesDays(db);
    await db.exec('ANALYZE sales_daily');
    f.record('store.rollup.buildSeconds', (performance.now() - r0) / 1000, 'rollup built from the year (the migration backfill), s');
    const rows = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM sales_daily')).rows[0]!.n);
    const size = (rel: string) => db.query<{ b: string }>('SELECT pg_total_relation_size($1::regclass) AS b', [rel]).then((r) => Number(r.rows[0]!.b));
    f.record('store.rollup.rows', rows, 'rollup rows (machine x slot x day)');
    f.record('store.rollup.mb', (await size('sales_daily')) / 1e6, 'rollup size, with indexes', 'MB');
    f.record('store.events.mb', (await size('events')) / 1e6, 'events size, with indexes', 'MB');

    const commands = new CommandService(db, () => {});
    const api = await buildApi({ db, commands });
    try {
      const token = (await createToken(db, 'bench', 'viewer')).token;
      const headers = { authorization: `Bearer ${token}` };
      const to = new Date();
      // 30 days to now: from a midnight (29 whole days and today, all from the rollup), and from this time of day (its first part-day read raw).
      const from = new Date(Math.floor(to.getTime() / DAY_MS) * DAY_MS - 29 * DAY_MS);
      const fromNow = new Date(to.getTime() - 30 * DAY_MS);
      const get = async (url: string): Promise<void> => {
        const r = await api.inject({ method: 'GET', url, headers });
        if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${r.body}`);
      };
      const series = `/sales/series?bucket=day&from=${from.toISOString()}&to=${to.toISOString()}`;
      // The API and the raw reading must agree before either is timed.
      const viaApi = (await api.inject({ method: 'GET', url: series, headers })).json() as { points: unknown[] };
      const raw = await salesSeries(db, 'day', from, to, undefined, 'raw');
      if (JSON.stringify(viaApi.points) !== JSON.stringify(raw)) throw new Error('the rollup series differs from the raw one');
      const reads: [string, string, (s: SalesSource) => Promise<unknown>, () => Promise<void>][] = [
        ['summary', '/fleet/summary', (s) => fleetSummary(db, s), () => get('/fleet/summary')],
        ['series30d', '30-day /sales/series by day, the fleet, from midnight', (s) => salesSeries(db, 'day', from, to, undefined, s), () => get(series)],
        ['series30dMidday', '30-day /sales/series by day, the fleet, from mid-day', (s) => salesSeries(db, 'day', fromNow, to, undefined, s), () => get(`/sales/series?bucket=day&from=${fromNow.toISOString()}&to=${to.toISOString()}`)],
        ['machineSeries30d', '30-day /sales/series by day, one machine', (s) => salesSeries(db, 'day', from, to, 'bm00001', s), () => get(`${series}&machine=bm00001`)],
      ];
      for (const [key, label, fn, route] of reads) {
        const api = await timed(100, route);
        const rolled = await timed(100, () => fn('rollup'));
        const rawT = await timed(10, () => fn('raw'));
        f.record(`store.${key}.api.p95Ms`, api.p95, `${label}: through the API (rollup), p95`, 'ms');
        f.record(`store.${key}.api.p50Ms`, api.p50, `${label}: through the API (rollup), p50`, 'ms');
        f.record(`store.${key}.rollup.p95Ms`, rolled.p95, `${label}: store query, rollup, p95`, 'ms');
        f.record(`store.${key}.raw.p95Ms`, rawT.p95, `${label}: store query, raw, p95`, 'ms');
        f.record(`store.${key}.rawOverRollup`, rawT.p50 / rolled.p50, `${label}: raw / rollup (p50)`, 'x');
      }
    } finally {
      await api.close();
      commands.close();
    }
  } finally {
    await db.exec(`DROP SCHEMA ${schema} CASCADE`);
    await db.close();
  }
}

/** A telemetry body like a machine's: 20 slots' stock and prices (about 1 KB). */
function telemetry(m: number, t: number): string {
  const slots = Array.from({ length: 20 }, (_, i) => ({ code: `${String.fromCharCode(65 + (i >> 2))}${(i & 3) + 1}`, qty: (m + t + i) % 12, capacity: 12, price: 150 + i * 10 }));
  return JSON.stringify({ t, fw: '1.4.2', temp: 4 + ((m + t) % 3), door: false, slots });
}

const STATE_MACHINES = 100_000;

async function machineStateBench(f: Figures): Promise<void> {
  f.out('');
  f.out(`Store: machine_state of ${STATE_MACHINES.toLocaleString('en')} machines under ingest's upserts (batches of 10; telemetry about 1 KB), before and after migration 14's tuning`);
  for (const tuned of [false, true]) {
    const schema = `bench_state_${process.pid}_${tuned ? 'tuned' : 'plain'}`;
    const db = await openDb({ url: PG_URL, schema });
    const workers = await Promise.all([0, 1, 2, 3].map(() => openDb({ url: PG_URL, schema })));
    const label = tuned ? 'tuned (fillfactor 50, vacuum by count)' : 'as before (fillfactor 100, default autovacuum)';
    try {
      await migrate(db);
      if (!tuned) await db.exec('ALTER TABLE machine_state RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay)');
      await db.query(`INSERT INTO machines (id) SELECT 'sm' || m FROM generate_series(1, $1::int) m`, [STATE_MACHINES]);
      // Every machine has reported once: the table as a running fleet has it.
      await db.query(
        `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) SELECT 'sm' || m, true, now(), $2::jsonb, now() FROM generate_series(1, $1::int) m`,
        [STATE_MACHINES, telemetry(0, 0)],
      );
      await db.exec('VACUUM ANALYZE machine_state');
      const stats = async () =>
        (await db.query<{ upd: string; hot: string; dead: string; size: string; vac: string }>(
          `SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot, n_dead_tup AS dead, pg_total_relation_size('machine_state') AS size, autovacuum_count + vacuum_count AS vac
           FROM pg_stat_user_tables WHERE relid = 'machine_state'::regclass`,
        )).rows[0]!;
      let next = 0;
      let t = 1;
      /** One batch: ten machines' telemetry upsert, and the event-count upsert for the same ten (as ingest does). */
      const batch = async (w: Db): Promise<void> => {
        const ids: string[] = [];
        const bodies: string[] = [];
        for (let i = 0; i < 10; i++) {
          const m = (next++ * 7919) % STATE_MACHINES;
          ids.push(`sm${m + 1}`);
          bodies.push(telemetry(m, t++));
        }
        await w.transaction(async (tx) => {
          await tx.query(
            `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) SELECT m, true, now(), b, now() FROM unnest($1::text[], $2::jsonb[]) AS t(m, b)
             ON CONFLICT (machine_id) DO UPDATE SET online = true, last_seen = now(), telemetry = EXCLUDED.telemetry, telemetry_at = now()`,
            [ids, bodies],
          );
        });
      };
      // The most a second: four connections as fast as they go, 15 s.
      const before = await stats();
      let done = 0;
      const end = performance.now() + 15000;
      await Promise.all(workers.map(async (w) => {
        while (performance.now() < end) {
          await batch(w);
          done += 10;
        }
      }));
      f.record(`store.state.${tuned ? 'tuned' : 'plain'}.maxPerSecond`, Math.round(done / 15), `${label}: upserts/s, most (4 connections)`);
      // 450 a second (45 batches), a minute.
      const paced0 = await stats();
      const start = performance.now();
      let sent = 0;
      while (performance.now() - start < 60000) {
        const due = Math.floor(((performance.now() - start) / 1000) * 45);
        const jobs: Promise<void>[] = [];
        while (sent < due) {
          jobs.push(batch(workers[sent % workers.length]!));
          sent++;
        }
        await Promise.all(jobs);
        await new Promise((r) => setTimeout(r, 20));
      }
      // Backends send their counts to the statistics when idle: a moment, then read.
      for (const w of workers) await w.close();
      workers.length = 0;
      await new Promise((r) => setTimeout(r, 1500));
      const after = await stats();
      const upd = Number(after.upd) - Number(paced0.upd);
      const hot = Number(after.hot) - Number(paced0.hot);
      f.record(`store.state.${tuned ? 'tuned' : 'plain'}.pacedPerSecond`, Math.round((sent * 10) / 60), `${label}: upserts/s paced (goal 450)`);
      f.record(`store.state.${tuned ? 'tuned' : 'plain'}.hotPercent`, upd > 0 ? (100 * hot) / upd : 0, `${label}: HOT updates at 450/s`, '%');
      f.record(`store.state.${tuned ? 'tuned' : 'plain'}.deadRows`, Number(after.dead), `${label}: dead rows after the minute`);
      f.record(`store.state.${tuned ? 'tuned' : 'plain'}.vacuums`, Number(after.vac) - Number(before.vac), `${label}: vacuums in the run (auto or not)`);
      f.record(`store.state.${tuned ? 'tuned' : 'plain'}.growthMb`, (Number(after.size) - Number(before.size)) / 1e6, `${label}: table and index growth over the run`, 'MB');
    } finally {
      for (const w of workers) await w.close();
      await db.exec(`DROP SCHEMA ${schema} CASCADE`);
      await db.close();
    }
  }
}
