/**
 * Sales as the operator API and the dashboard read them (vend-ok events
 * with their slot and price, by the time the gateway received them): one
 * machine's by slot over a range, a time series in UTC buckets, and the
 * fleet's totals.
 *
 * Whole UTC days come from the daily rollup (sales_daily, store/rollup.ts);
 * the parts of a range that are not whole days (its ends, the last 24 hours
 * before today's midnight) are counted from the sales view. `source: 'raw'`
 * counts everything from the view: the reference the rollup is checked and
 * measured against.
 */
import type { Queryable } from './db.js';

export type SalesSource = 'rollup' | 'raw';

const DAY_MS = 86_400_000;
const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * [from, to) as whole UTC days [fromDay, toDay) and the pieces either side
 * of them (none when empty). A range that ends today at or after the
 * store's `now` takes today whole too: nothing is received after now, so
 * today's rollup rows are the sales from its midnight to `to`.
 */
export function splitRange(from: Date, to: Date, source: SalesSource = 'rollup', now?: Date): { days: [string, string] | undefined; rest: [Date, Date][] } {
  const first = Math.ceil(from.getTime() / DAY_MS) * DAY_MS;
  let last = Math.floor(to.getTime() / DAY_MS) * DAY_MS;
  // Only today's part-day (a range ending far ahead keeps its last part-day raw: it holds nothing).
  if (now !== undefined && to >= now && last < to.getTime() && last === Math.floor(now.getTime() / DAY_MS) * DAY_MS) last += DAY_MS;
  if (source === 'raw' || first >= last) return { days: undefined, rest: from < to ? [[from, to]] : [] };
  const rest: [Date, Date][] = [];
  if (from.getTime() < first) rest.push([from, new Date(first)]);
  if (last < to.getTime()) rest.push([new Date(last), to]);
  return { days: [dayOf(first), dayOf(last)], rest };
}

/** The store's clock, when a range may reach it (splitRange). */
async function storeNow(db: Queryable, to: Date, source: SalesSource): Promise<Date | undefined> {
  if (source === 'raw' || to.getTime() < Date.now() - DAY_MS) return undefined;
  return (await db.query<{ now: Date }>('SELECT now() AS now')).rows[0]!.now;
}

export interface SalesBySlot {
  sales: number;
  revenue: number;
  bySlot: { slot: string; sales: number; revenue: number }[];
}

/** A machine's sales in [from, to), in all and per slot (slot order). */
export async function salesBySlot(db: Queryable, machine: string, from: Date, to: Date, source: SalesSource = 'rollup'): Promise<SalesBySlot> {
  const { days, rest } = splitRange(from, to, source, await storeNow(db, to, source));
  // Per slot; '' is the sales without a slot code (NULL in the sales view): in the totals, not in bySlot.
  const rows: { slot: string; n: string; revenue: string | null }[] = [];
  if (days) {
    rows.push(...(await db.query<{ slot: string; n: string; revenue: string | null }>(
      'SELECT slot, sum(sales) AS n, sum(revenue) AS revenue FROM sales_daily WHERE machine_id = $1 AND day >= $2::date AND day < $3::date GROUP BY slot',
      [machine, days[0], days[1]],
    )).rows);
  }
  for (const [a, b] of rest) {
    rows.push(...(await db.query<{ slot: string; n: string; revenue: string | null }>(
      `SELECT coalesce(slot, '') AS slot, count(*) AS n, sum(price) AS revenue FROM sales WHERE machine_id = $1 AND received_at >= $2 AND received_at < $3 GROUP BY 1`,
      [machine, a, b],
    )).rows);
  }
  const slots = new Map<string, { sales: number; revenue: number }>();
  let sales = 0;
  let revenue = 0;
  for (const r of rows) {
    const n = Number(r.n);
    const v = Number(r.revenue ?? 0);
    sales += n;
    revenue += v;
    if (r.slot === '') continue;
    const s = slots.get(r.slot) ?? { sales: 0, revenue: 0 };
    s.sales += n;
    s.revenue += v;
    slots.set(r.slot, s);
  }
  // Slot order as PostgreSQL sorted them before (byte order of the codes: the collation of test schemas is C-like for these).
  const bySlot = [...slots].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([slot, s]) => ({ slot, ...s }));
  return { sales, revenue, bySlot };
}

export type Bucket = 'minute' | 'hour' | 'day';
export const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * Sales and revenue per bucket in [from, to), for one machine or (undefined)
 * the fleet of `operator` (null: every operator's); empty buckets included.
 */
export async function salesSeries(
  db: Queryable,
  bucket: Bucket,
  from: Date,
  to: Date,
  machine: string | undefined,
  source: SalesSource = 'rollup',
  operator: string | null = null,
): Promise<{ t: string; sales: number; revenue: number }[]> {
  // Only day buckets can be read from a daily rollup.
  const { days, rest } = splitRange(from, to, bucket === 'day' ? source : 'raw', bucket === 'day' ? await storeNow(db, to, source) : undefined);
  const got = new Map<number, { sales: number; revenue: number }>();
  const add = (t: number, n: string, revenue: string | null): void => {
    const x = got.get(t) ?? { sales: 0, revenue: 0 };
    x.sales += Number(n);
    x.revenue += Number(revenue ?? 0);
    got.set(t, x);
  };
  if (days) {
    // The fleet's closed days are a row each (sales_daily_fleet); the others are summed over machines and slots.
    let open: string[] | null = null;
    // sales_daily_fleet is every operator's: one operator's fleet sums its machines' rows instead.
    if (machine === undefined && operator !== null) {
      open = [];
      for (let t = Date.parse(`${days[0]}T00:00:00Z`); t < Date.parse(`${days[1]}T00:00:00Z`); t += DAY_MS) open.push(dayOf(t));
    } else if (machine === undefined) {
      const closed = await db.query<{ day: string; n: string; revenue: string }>(
        `SELECT to_char(day, 'YYYY-MM-DD') AS day, sales AS n, revenue FROM sales_daily_fleet WHERE day >= $1::date AND day < $2::date`,
        [days[0], days[1]],
      );
      for (const x of closed.rows) add(Date.parse(`${x.day}T00:00:00Z`), x.n, x.revenue);
      const have = new Set(closed.rows.map((x) => x.day));
      open = [];
      for (let t = Date.parse(`${days[0]}T00:00:00Z`); t < Date.parse(`${days[1]}T00:00:00Z`); t += DAY_MS) if (!have.has(dayOf(t))) open.push(dayOf(t));
    }
    // Two statements, not one with ORs: each gets the plan that fits it (a machine's days by the primary key, the fleet's open days by day).
    const r =
      open === null
        ? await db.query<{ day: string; n: string; revenue: string | null }>(
            `SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(sales) AS n, sum(revenue) AS revenue FROM sales_daily
             WHERE machine_id = $3 AND day >= $1::date AND day < $2::date GROUP BY day`,
            [days[0], days[1], machine],
          )
        : open.length > 0
          ? await db.query<{ day: string; n: string; revenue: string | null }>(
              `SELECT to_char(d.day, 'YYYY-MM-DD') AS day, sum(d.sales) AS n, sum(d.revenue) AS revenue FROM sales_daily d
               WHERE d.day = ANY($1::date[]) AND ($2::text IS NULL OR d.machine_id IN (SELECT id FROM machines WHERE operator_id = $2)) GROUP BY d.day`,
              [open, operator],
            )
          : { rows: [] };
    for (const x of r.rows) add(Date.parse(`${x.day}T00:00:00Z`), x.n, x.revenue);
  }
  for (const [a, b] of rest) {
    const r = await db.query<{ b: Date; n: string; revenue: string | null }>(
      `SELECT date_trunc($1, received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b, count(*) AS n, sum(price) AS revenue
       FROM sales WHERE received_at >= $2 AND received_at < $3 AND ($4::text IS NULL OR machine_id = $4)
         AND ($5::text IS NULL OR machine_id IN (SELECT id FROM machines WHERE operator_id = $5)) GROUP BY 1`,
      [bucket, a, b, machine ?? null, operator],
    );
    for (const x of r.rows) add(new Date(x.b).getTime(), x.n, x.revenue);
  }
  const step = BUCKET_MS[bucket];
  const points: { t: string; sales: number; revenue: number }[] = [];
  // Buckets start on the unit's boundary (UTC), as date_trunc cuts them.
  for (let t = Math.floor(from.getTime() / step) * step; t < to.getTime(); t += step) {
    const x = got.get(t);
    points.push({ t: new Date(t).toISOString(), sales: x?.sales ?? 0, revenue: x?.revenue ?? 0 });
  }
  return points;
}

export interface FleetSummary {
  machines: number;
  online: number;
  /** Since midnight UTC. */
  /** Revenue of every currency summed, as before (meaningless across currencies: see revenueByCurrency). */
  today: { sales: number; revenue: number; revenueByCurrency: CurrencyRevenue[] };
  /** Null when not asked for (`parts.last24h` false: the dashboard does not show it, and after noon UTC it reads hours of raw sales). */
  last24h: { sales: number; revenue: number } | null;
  openAlerts: number;
  /** Machines not online now (machines less online). */
  offline: number;
  /** Machines in trouble: their last telemetry reports errors, or they have an open critical alert (the dashboard's "with errors"). */
  withErrors: number;
  /** The money the machines say they sell in (each currency and decimals once; machines that have not said left out), in currency order. */
  currencies: { currency: string; decimals: number }[];
}

/** The totals now (the store's clock) of `operator`'s fleet (null: every operator's). */
/** Revenue in one currency (minor units of it; currency null: machines that have not said theirs). */
export interface CurrencyRevenue {
  currency: string | null;
  /** Its decimals as the machines said (2 when not said); machines that disagree on them are summed apart. */
  decimals: number;
  revenue: number;
}

/**
 * Today's revenue per currency: the rollup's rows for today joined with each
 * machine's currency as its last telemetry says (docs/uplink.md `currency`,
 * `decimals`); largest first.
 */
export async function revenueByCurrency(db: Queryable, operator: string | null = null): Promise<CurrencyRevenue[]> {
  return (await todayByCurrency(db, operator)).map(({ currency, decimals, revenue }) => ({ currency, decimals, revenue }));
}

/** Today's sales and revenue per currency (revenueByCurrency, with the sales): summed, today's totals. */
async function todayByCurrency(db: Queryable, operator: string | null): Promise<(CurrencyRevenue & { sales: number })[]> {
  // Each machine's day summed first (its slots' rows), then its money read once: not a machine's telemetry per slot row.
  const r = await db.query<{ currency: string | null; decimals: number | null; sales: string; revenue: string }>(
    `WITH d AS (
       SELECT machine_id, sum(sales) AS n, sum(revenue) AS rev FROM sales_daily
       WHERE day = (now() AT TIME ZONE 'UTC')::date AND ($1::text IS NULL OR machine_id IN (SELECT id FROM machines WHERE operator_id = $1))
       GROUP BY machine_id),
     money AS (
       SELECT d.n, d.rev,
              CASE WHEN jsonb_typeof(ms.telemetry) = 'object' AND ms.telemetry->>'currency' ~ '^[A-Z]{3}$' THEN ms.telemetry->>'currency' END AS currency,
              CASE WHEN jsonb_typeof(ms.telemetry) = 'object' AND ms.telemetry->>'decimals' IN ('0', '1', '2', '3') THEN (ms.telemetry->>'decimals')::int ELSE 2 END AS decimals
       FROM d LEFT JOIN machine_state ms ON ms.machine_id = d.machine_id)
     SELECT currency, coalesce(decimals, 2) AS decimals, sum(n)::text AS sales, sum(rev)::text AS revenue FROM money
     GROUP BY currency, coalesce(decimals, 2)
     ORDER BY sum(rev) DESC, currency, 2`,
    [operator],
  );
  return r.rows.map((x) => ({ currency: x.currency, decimals: Number(x.decimals ?? 2), sales: Number(x.sales), revenue: Number(x.revenue) }));
}

/**
 * `yesterday`: how the rollup source reads the 24 hours' part before midnight ('raw': the sales since this time
 * yesterday; 'rollup': yesterday's rollup less the raw sales up to this time yesterday). Both are exact; by
 * default the one reading fewer raw sales (tests ask for each).
 */
export async function fleetSummary(
  db: Queryable,
  source: SalesSource = 'rollup',
  operator: string | null = null,
  yesterday?: 'raw' | 'rollup',
  parts: { last24h?: boolean } = {},
): Promise<FleetSummary> {
  const last24h = parts.last24h ?? true;
  // A store without the alerts migration yet has no alerts to count.
  const hasAlerts = (await db.query<{ t: string | null }>("SELECT to_regclass('alerts')::text AS t")).rows[0]?.t != null;
  // One pass over the machines and their state: how many, online, with errors (as the fleet list marks them:
  // errors in the last telemetry, or an open critical alert), and the money they say they sell in.
  // Its reads do not depend on each other: sent together (on PostgreSQL they run side by side on the pool).
  const countsRead = db.query<{ machines: string; online: string; errors: string; money: string | null }>(
    `SELECT count(*) AS machines, count(*) FILTER (WHERE ms.online) AS online,
            count(*) FILTER (WHERE (jsonb_typeof(ms.telemetry->'errors') = 'array' AND jsonb_array_length(ms.telemetry->'errors') > 0)
                                ${hasAlerts ? "OR m.id IN (SELECT machine_id FROM alerts WHERE closed_at IS NULL AND severity = 'critical')" : ''}) AS errors,
            string_agg(DISTINCT CASE WHEN jsonb_typeof(ms.telemetry) = 'object' AND ms.telemetry->>'currency' ~ '^[A-Z]{3}$'
                                     THEN (ms.telemetry->>'currency') || ' ' || CASE WHEN ms.telemetry->>'decimals' IN ('0', '1', '2', '3') THEN ms.telemetry->>'decimals' ELSE '2' END END, ',') AS money
     FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id
     WHERE $1::text IS NULL OR m.operator_id = $1`,
    [operator],
  );
  const alertsRead = hasAlerts
    ? db.query<{ n: string }>('SELECT count(*) AS n FROM alerts a JOIN machines m ON m.id = a.machine_id WHERE a.closed_at IS NULL AND ($1::text IS NULL OR m.operator_id = $1)', [operator])
    : undefined;
  const todayRead = source === 'rollup' ? todayByCurrency(db, operator) : undefined;
  // Each read's rejection is the caller's once awaited below; none is left unhandled meanwhile.
  for (const p of [countsRead, alertsRead, todayRead]) p?.catch(() => {});
  const c = (await countsRead).rows[0]!;
  const currencies = (c.money ?? '')
    .split(',')
    .filter((x) => x !== '')
    .map((x) => ({ currency: x.slice(0, 3), decimals: Number(x.slice(4)) }))
    .sort((a, b) => (a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : a.decimals - b.decimals));
  const mine = `($1::text IS NULL OR machine_id IN (SELECT id FROM machines WHERE operator_id = $1))`;
  let sales: { today_n: string | number | null; today_rev: string | number | null; day_n: string | number | null; day_rev: string | number | null };
  const byCurrency = await todayRead;
  if (source === 'rollup') {
    // Today is today's rollup rows (all sales received since midnight). The rest of the 24 hours is yesterday's
    // since this time yesterday: read raw after midnight's first 12 hours; before then, yesterday's rollup less
    // the sales raw up to this time yesterday (the shorter part read raw: a year of sales is never scanned, and
    // the raw rows read are at most 12 hours'). Yesterday's fleet total is the closed day's row when written.
    const MIDNIGHT = `date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`;
    const before =
      (yesterday ?? (new Date().getUTCHours() >= 12 ? 'raw' : 'rollup')) === 'raw'
        ? `before AS (SELECT count(*) AS n, sum(price) AS rev FROM sales WHERE received_at >= now() - interval '24 hours' AND received_at < ${MIDNIGHT} AND ${mine})`
        : `yday AS (SELECT f.sales AS n, f.revenue AS rev FROM sales_daily_fleet f WHERE f.day = (now() AT TIME ZONE 'UTC')::date - 1 AND $1::text IS NULL
                    UNION ALL
                    SELECT sum(sales), sum(revenue) FROM sales_daily WHERE day = (now() AT TIME ZONE 'UTC')::date - 1 AND ${mine}
                      AND NOT ($1::text IS NULL AND EXISTS (SELECT 1 FROM sales_daily_fleet f WHERE f.day = (now() AT TIME ZONE 'UTC')::date - 1))),
           early AS (SELECT count(*) AS n, sum(price) AS rev FROM sales WHERE received_at >= ${MIDNIGHT} - interval '1 day' AND received_at < now() - interval '24 hours' AND ${mine}),
           before AS (SELECT coalesce(sum(yday.n), 0) - (SELECT n FROM early) AS n, coalesce(sum(yday.rev), 0) - coalesce((SELECT rev FROM early), 0) AS rev FROM yday)`;
    // Today: its rollup rows, as summed per currency (one read of them for both).
    const todayN = byCurrency!.reduce((a, x) => a + x.sales, 0);
    const todayRev = byCurrency!.reduce((a, x) => a + x.revenue, 0);
    const b = last24h ? (await db.query<{ n: string | null; rev: string | null }>(`WITH ${before} SELECT before.n, before.rev FROM before`, [operator])).rows[0]! : { n: null, rev: null };
    sales = { today_n: todayN, today_rev: todayRev, day_n: todayN + Number(b.n ?? 0), day_rev: todayRev + Number(b.rev ?? 0) };
  } else {
    sales = (
      await db.query<typeof sales>(
        `SELECT count(*) FILTER (WHERE received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today_n,
                sum(price) FILTER (WHERE received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today_rev,
                count(*) AS day_n, sum(price) AS day_rev
         FROM sales WHERE received_at >= now() - interval '24 hours' AND ${mine}`,
        [operator],
      )
    ).rows[0]!;
  }
  const alerts = alertsRead ? Number((await alertsRead).rows[0]!.n) : 0;
  return {
    machines: Number(c.machines),
    online: Number(c.online),
    today: { sales: Number(sales.today_n ?? 0), revenue: Number(sales.today_rev ?? 0), revenueByCurrency: byCurrency ? byCurrency.map(({ currency, decimals, revenue }) => ({ currency, decimals, revenue })) : await revenueByCurrency(db, operator) },
    last24h: last24h ? { sales: Number(sales.day_n ?? 0), revenue: Number(sales.day_rev ?? 0) } : null,
    openAlerts: alerts,
    offline: Number(c.machines) - Number(c.online),
    withErrors: Number(c.errors),
    currencies,
  };
}
