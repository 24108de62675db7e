/**
 * The restock KPI's first look (`npm run bench -- --restock-only`, wall
 * clock in Node): on the dashboard bench's store (bench/lib/dashboard.ts:
 * 10,000 machines by default, the forecasts' month as raw sales), how long
 * RestockTodayService's first look takes, the one every API process pays
 * after it starts (restockToday is null until it is done). Timed with the
 * month counted from the hourly rollup (as the gateway does) and from the
 * sales themselves (`source: 'raw'`, how it was counted before migration
 * 18), each in a service of its own; the two answers must be the same
 * machines. Also the window's count alone and a second (warm) look.
 */
import { RestockTodayService } from '../../gateway/restock/today.js';
import { SalesWindow } from '../../gateway/restock/sales-window.js';
import { openDb } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { bigSeed, seedDashboardStore, type DashboardBenchOptions } from './dashboard.js';
import type { Figures } from './figures.js';

/** The dashboard bench's store options: the same store, kept in the same place. */
export type RestockLookOptions = DashboardBenchOptions;

export async function restockLookBench(f: Figures, options: RestockLookOptions = {}): Promise<void> {
  const seed = bigSeed(options);
  const store = options.pgUrl ? 'pg' : 'pglite';
  const schema = `bench_restock_${process.pid}`;
  f.out('');
  f.out(`Restock KPI: the first look after a start, ${seed.machines} machines, ${seed.salesPerDay} sales a day each (${store === 'pg' ? 'PostgreSQL' : 'PGlite'})`);
  const db = await openDb(options.pgUrl ? { url: options.pgUrl, schema } : options.dataDir ? { dataDir: options.dataDir } : {});
  const k = `restock.${store}`;
  const ms = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const t = performance.now();
    const v = await fn();
    return [v, performance.now() - t];
  };
  try {
    const [applied, migrateMs] = await ms(() => migrate(db));
    if (applied.includes(19) && applied.length < 19) f.record(`${k}.migration19Ms`, migrateMs, 'migration 19 on the kept store (the hourly rollup backfilled)', 'ms', 0);
    const have = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM machines')).rows[0]!.n);
    if (options.dataDir && have === seed.machines) f.out(`    the store in ${options.dataDir} is seeded already: used again`);
    else {
      const [{ events }, seedMs] = await ms(() => seedDashboardStore(db, seed, f.out));
      f.record(`${k}.seedSeconds`, seedMs / 1000, `seeded: ${events} vend-ok events, s`);
    }
    const rows = async (sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql)).rows[0]!.n);
    f.out(`    the window: ${await rows("SELECT count(*) AS n FROM events WHERE type = 'vend-ok' AND received_at >= now() - interval '28 days'")} sales, ${await rows("SELECT count(*) AS n FROM sales_hourly WHERE hour >= floor(extract(epoch FROM now() - interval '28 days') / 3600)")} rollup rows`);
    const [w, windowMs] = await ms(() => new SalesWindow(db).at(new Date()));
    f.record(`${k}.windowMs`, windowMs, `the month's counts alone, from the hourly rollup (${w.counts.size} machines)`, 'ms', 0);
    const rollup = new RestockTodayService(db);
    const [fast, fastMs] = await ms(() => rollup.today(null));
    f.record(`${k}.firstLookMs`, fastMs, 'first look: the month from the hourly rollup, every slot\'s rates', 'ms', 0);
    const [, warmMs] = await ms(() => rollup.today(null));
    f.record(`${k}.warmLookMs`, warmMs, 'the next look (counts moved, rates kept)', 'ms', 0);
    const [slow, slowMs] = await ms(() => new RestockTodayService(db, { source: 'raw' }).today(null));
    f.record(`${k}.firstLookRawMs`, slowMs, 'first look with the month counted from the sales (as before)', 'ms', 0);
    f.record(`${k}.speedup`, slowMs / fastMs, 'from the sales / from the rollup', 'x');
    const a = [...fast.machines].sort().join();
    const b = [...slow.machines].sort().join();
    if (a !== b) throw new Error(`the two first looks disagree: ${fast.machines.size} and ${slow.machines.size} machines need restock today`);
    f.out(`    both looks: ${fast.machines.size} of ${fast.of} machines need restock today`);
  } finally {
    if (options.pgUrl) await db.exec(`DROP SCHEMA ${schema} CASCADE`);
    await db.close();
  }
}
