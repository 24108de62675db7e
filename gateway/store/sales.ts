/**
 * Sales as the operator API and the dashboard read them, counted in the
 * store from the sales view (vend-ok events with their slot and price, by
 * the time the gateway received them): one machine's by slot over a range,
 * a time series in UTC buckets, and the fleet's totals.
 */
import type { Queryable } from './db.js';

export interface SalesBySlot {
  sales: number;
  revenue: number;
  bySlot: { slot: string; sales: number; revenue: number }[];
}

/** A machine's sales in [from, to), in all and per slot (slot order). */
export async function salesBySlot(db: Queryable, machine: string, from: Date, to: Date): Promise<SalesBySlot> {
  // GROUPING tells the total from the group of sales without a slot code (slot NULL in the sales view).
  const r = await db.query<{ slot: string | null; whole: number | string; n: string; revenue: string | null }>(
    `SELECT slot, GROUPING(slot) AS whole, count(*) AS n, sum(price) AS revenue FROM sales WHERE machine_id = $1 AND received_at >= $2 AND received_at < $3 GROUP BY ROLLUP (slot) ORDER BY slot NULLS LAST`,
    [machine, from, to],
  );
  const total = r.rows.find((x) => Number(x.whole) === 1);
  return {
    sales: Number(total?.n ?? 0),
    revenue: Number(total?.revenue ?? 0),
    bySlot: r.rows.filter((x): x is typeof x & { slot: string } => Number(x.whole) === 0 && x.slot !== null).map((x) => ({ slot: x.slot, sales: Number(x.n), revenue: Number(x.revenue ?? 0) })),
  };
}

export type Bucket = 'minute' | 'hour' | 'day';
export const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * Sales and revenue per bucket in [from, to), for one machine or (undefined)
 * the fleet of `operator` (null: every operator's); empty buckets included.
 */
export async function salesSeries(db: Queryable, bucket: Bucket, from: Date, to: Date, machine: string | undefined, operator: string | null = null): Promise<{ t: string; sales: number; revenue: number }[]> {
  const r = await db.query<{ b: Date; n: string; revenue: string | null }>(
    `SELECT date_trunc($1, s.received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b, count(*) AS n, sum(s.price) AS revenue
     FROM sales s JOIN machines m ON m.id = s.machine_id
     WHERE s.received_at >= $2 AND s.received_at < $3 AND ($4::text IS NULL OR s.machine_id = $4) AND ($5::text IS NULL OR m.operator_id = $5) GROUP BY 1`,
    [bucket, from, to, machine ?? null, operator],
  );
  const got = new Map(r.rows.map((x) => [new Date(x.b).getTime(), x]));
  const step = BUCKET_MS[bucket];
  const points: { t: string; sales: number; revenue: number }[] = [];
  // Buckets start on the unit's boundary (UTC), as date_trunc cuts them.
  for (let t = Math.floor(from.getTime() / step) * step; t < to.getTime(); t += step) {
    const x = got.get(t);
    points.push({ t: new Date(t).toISOString(), sales: Number(x?.n ?? 0), revenue: Number(x?.revenue ?? 0) });
  }
  return points;
}

export interface FleetSummary {
  machines: number;
  online: number;
  /** Since midnight UTC. */
  today: { sales: number; revenue: number };
  last24h: { sales: number; revenue: number };
  openAlerts: number;
}

/** The totals now of `operator`'s fleet (null: every operator's). */
export async function fleetSummary(db: Queryable, operator: string | null = null): Promise<FleetSummary> {
  const r = await db.query<{ machines: string; online: string; today_n: string; today_rev: string | null; day_n: string; day_rev: string | null }>(
    `SELECT (SELECT count(*) FROM machines WHERE $1::text IS NULL OR operator_id = $1) AS machines,
            (SELECT count(*) FROM machine_state ms JOIN machines m ON m.id = ms.machine_id WHERE ms.online AND ($1::text IS NULL OR m.operator_id = $1)) AS online,
            count(*) FILTER (WHERE s.received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today_n,
            sum(s.price) FILTER (WHERE s.received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today_rev,
            count(*) AS day_n, sum(s.price) AS day_rev
     FROM sales s JOIN machines m ON m.id = s.machine_id WHERE s.received_at >= now() - interval '24 hours' AND ($1::text IS NULL OR m.operator_id = $1)`,
    [operator],
  );
  const x = r.rows[0]!;
  // A store without the alerts migration yet has no alerts to count.
  const alerts = (await db.query<{ t: string | null }>("SELECT to_regclass('alerts')::text AS t")).rows[0]?.t
    ? Number(
        (await db.query<{ n: string }>('SELECT count(*) AS n FROM alerts a JOIN machines m ON m.id = a.machine_id WHERE a.closed_at IS NULL AND ($1::text IS NULL OR m.operator_id = $1)', [operator]))
          .rows[0]!.n,
      )
    : 0;
  return {
    machines: Number(x.machines),
    online: Number(x.online),
    today: { sales: Number(x.today_n), revenue: Number(x.today_rev ?? 0) },
    last24h: { sales: Number(x.day_n), revenue: Number(x.day_rev ?? 0) },
    openAlerts: alerts,
  };
}
