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
