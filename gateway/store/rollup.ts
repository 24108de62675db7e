/**
 * The daily sales rollup (table sales_daily, migration 14): sales and
 * revenue per machine, slot and UTC day of receipt, so reports over days
 * read a row per machine, slot and day instead of every sale.
 *
 * Ingest adds the sales it has just inserted, in the same transaction
 * (gateway/ingest/store.ts): a resend inserts nothing and so adds nothing,
 * a conflict is not inserted, a batch that fails rolls its additions back.
 * A sale's day is the UTC date of its received_at, which is the storing
 * transaction's now() (the events table's default): the same now() dates
 * the rollup here. Reading a body goes through the sales view's own
 * functions (sale_slot, sale_price), so the rollup counts what the view shows.
 * The hourly rollup (sales_hourly, migration 19) is kept the same way, for
 * the restocking forecasts' recent weeks only.
 */
import type { Queryable } from './db.js';

/**
 * Add freshly inserted events' sales to the rollup: an SQL statement over `source`, a CTE of the events
 * the same statement inserted (columns machine_id, type, body), so ingest inserts and adds in one
 * statement (gateway/ingest/store.ts). In key order: two transactions adding to the same rows take
 * their locks in the same order (no deadlock).
 */
export const ROLLUP_FROM_INSERTED = (source: string): string =>
  `INSERT INTO sales_daily (machine_id, day, slot, sales, revenue)
     SELECT machine_id, (now() AT TIME ZONE 'UTC')::date, coalesce(sale_slot(body), ''), count(*), coalesce(sum(sale_price(body)), 0)
     FROM ${source} WHERE type = 'vend-ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
     ON CONFLICT (machine_id, day, slot) DO UPDATE SET sales = sales_daily.sales + EXCLUDED.sales, revenue = sales_daily.revenue + EXCLUDED.revenue`;

/**
 * The same for the hourly rollup (sales_hourly, migration 19): sales with a slot code per UTC hour (hours
 * since the epoch, of the transaction's now(), which is their received_at), machine and slot, in key order.
 */
export const HOURLY_FROM_INSERTED = (source: string): string =>
  `INSERT INTO sales_hourly (hour, machine_id, slot, sales)
     SELECT floor(extract(epoch FROM now()) / 3600)::int, machine_id, sale_slot(body), count(*)
     FROM ${source} WHERE type = 'vend-ok' AND sale_slot(body) IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
     ON CONFLICT (hour, machine_id, slot) DO UPDATE SET sales = sales_hourly.sales + EXCLUDED.sales`;

/**
 * Days of hours sales_hourly keeps: the forecasts' window (28 days) and a week to spare. Readers take
 * from it only hours newer than HOURLY_READ_DAYS, a day short of what is kept, so pruning never races them.
 */
export const HOURLY_KEEP_DAYS = 35;
export const HOURLY_READ_DAYS = HOURLY_KEEP_DAYS - 1;

/** Drop sales_hourly's hours older than HOURLY_KEEP_DAYS (run with the retention, hourly). Returns the rows dropped. */
export async function pruneSalesHours(db: Queryable, now = new Date()): Promise<number> {
  const r = await db.query<{ n: number }>(
    'WITH gone AS (DELETE FROM sales_hourly WHERE hour < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone',
    [Math.floor(now.getTime() / 3_600_000) - HOURLY_KEEP_DAYS * 24],
  );
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Count the rollup's days in [fromDay, toDay) again from the sales view
 * (dates as YYYY-MM-DD, UTC): for events stored by other means than ingest
 * (a bulk load, a gateway older than migration 14). Days whose raw events
 * were already dropped by retention must not be rebuilt: they would count zero.
 */
export async function rebuildRollup(tx: Queryable, fromDay: string, toDay: string): Promise<void> {
  // Grouping a year of sales in memory rather than in many spilled batches (this transaction only).
  await tx.query("SET LOCAL work_mem = '256MB'");
  await tx.query('DELETE FROM sales_daily WHERE day >= $1::date AND day < $2::date', [fromDay, toDay]);
  await tx.query('DELETE FROM sales_daily_fleet WHERE day >= $1::date AND day < $2::date', [fromDay, toDay]);
  await tx.query(
    `INSERT INTO sales_daily (machine_id, day, slot, sales, revenue)
     SELECT machine_id, (received_at AT TIME ZONE 'UTC')::date, coalesce(slot, ''), count(*), coalesce(sum(price), 0)
     FROM sales WHERE received_at >= ($1::date)::timestamp AT TIME ZONE 'UTC' AND received_at < ($2::date)::timestamp AT TIME ZONE 'UTC'
     GROUP BY 1, 2, 3`,
    [fromDay, toDay],
  );
  // The hours of those days too (they are pruned again later when older than the hourly rollup keeps), in hour
  // order as ingest writes them: an hour's rows together on disk, so reading a day reads its pages only.
  await tx.query(
    `DELETE FROM sales_hourly WHERE hour >= floor(extract(epoch FROM ($1::date)::timestamp AT TIME ZONE 'UTC') / 3600)::int
       AND hour < floor(extract(epoch FROM ($2::date)::timestamp AT TIME ZONE 'UTC') / 3600)::int`,
    [fromDay, toDay],
  );
  await tx.query(
    `INSERT INTO sales_hourly (hour, machine_id, slot, sales)
     SELECT floor(extract(epoch FROM received_at) / 3600)::int, machine_id, slot, count(*)
     FROM sales WHERE slot IS NOT NULL AND received_at >= ($1::date)::timestamp AT TIME ZONE 'UTC' AND received_at < ($2::date)::timestamp AT TIME ZONE 'UTC'
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [fromDay, toDay],
  );
}

/**
 * Write the fleet's totals of the days over for an hour that have none yet
 * (sales_daily_fleet): no sale is dated on them any more (a transaction that
 * began before midnight has long committed). Returns how many days were
 * closed. Run now and then (the gateway does, hourly); reads are right
 * without it, only slower for the fleet's series.
 */
export async function closeSalesDays(db: Queryable): Promise<number> {
  const r = await db.query<{ day: string }>(
    `INSERT INTO sales_daily_fleet (day, sales, revenue)
     SELECT day, sum(sales), sum(revenue) FROM sales_daily d
     WHERE day < ((now() - interval '1 hour') AT TIME ZONE 'UTC')::date AND NOT EXISTS (SELECT 1 FROM sales_daily_fleet f WHERE f.day = d.day)
     GROUP BY day
     ON CONFLICT (day) DO NOTHING
     RETURNING day`,
  );
  return r.rows.length;
}
