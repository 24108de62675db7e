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

/** Sales and revenue per bucket in [from, to), for one machine or (undefined) the fleet; empty buckets included. */
export async function salesSeries(db: Queryable, bucket: Bucket, from: Date, to: Date, machine: string | undefined): Promise<{ t: string; sales: number; revenue: number }[]> {
  const r = await db.query<{ b: Date; n: string; revenue: string | null }>(
    `SELECT date_trunc($1, received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b, count(*) AS n, sum(price) AS revenue
     FROM sales WHERE received_at >= $2 AND received_at < $3 AND ($4::text IS NULL OR machine_id = $4) GROUP BY 1`,
    [bucket, from, to, machine ?? null],
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

/** The fleet's totals now. */
export async function fleetSummary(db: Queryable): Promise<FleetSummary> {
  const r = await db.query<{ machines: string; online: string; today_n: string; today_rev: string | null; day_n: string; day_rev: string | null }>(
    `SELECT (SELECT count(*) FROM machines) AS machines,
            (SELECT count(*) FROM machine_state WHERE online) AS online,
            count(*) FILTER (WHERE received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today_n,
            sum(price) FILTER (WHERE received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today_rev,
            count(*) AS day_n, sum(price) AS day_rev
     FROM sales WHERE received_at >= now() - interval '24 hours'`,
  );
  const x = r.rows[0]!;
  // A store without the alerts migration yet has no alerts to count.
  const alerts = (await db.query<{ t: string | null }>("SELECT to_regclass('alerts')::text AS t")).rows[0]?.t
    ? Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM alerts WHERE closed_at IS NULL')).rows[0]!.n)
    : 0;
  return {
    machines: Number(x.machines),
    online: Number(x.online),
    today: { sales: Number(x.today_n), revenue: Number(x.today_rev ?? 0) },
    last24h: { sales: Number(x.day_n), revenue: Number(x.day_rev ?? 0) },
    openAlerts: alerts,
  };
}
