/**
 * One machine's telemetry history as a time series (the telemetry table,
 * one row per report, by received time): per UTC bucket the mean
 * temperature and the coin tube counts of the bucket's newest report that lists tubes, for
 * the dashboard's tube and temperature charts. Buckets without a report are
 * included (null), so a chart shows the gap.
 */
import type { Queryable } from './db.js';
import { BUCKET_MS, type Bucket } from './sales.js';

/** The most buckets one answer holds: the API refuses a range that would need more (use a bigger bucket). */
export const MAX_TELEMETRY_POINTS = 2000;

export interface TelemetryPoint {
  /** The bucket's start (UTC). */
  t: string;
  /** Reports received in the bucket. */
  reports: number;
  /** Mean of the reports' `temperature` (°C, one decimal); null when none said it. */
  temperature: number | null;
  /** Coins in each tube by `coins` order (the newest report of the bucket); null where it did not report that coin. */
  tubes: (number | null)[];
}

export interface TelemetrySeries {
  /** The coin values (minor units) the reports list tubes for, smallest first. */
  coins: number[];
  points: TelemetryPoint[];
}

/** The tubes as a report lists them (docs/uplink.md); anything else in the machine's word is left out. */
function tubesOf(v: unknown): Map<number, number> {
  const out = new Map<number, number>();
  if (!Array.isArray(v)) return out;
  for (const x of v.slice(0, 16)) {
    if (typeof x !== 'object' || x === null) continue;
    const { value, count } = x as { value?: unknown; count?: unknown };
    if (Number.isSafeInteger(value) && Number.isSafeInteger(count) && (value as number) > 0 && (count as number) >= 0) out.set(value as number, count as number);
  }
  return out;
}

/** `machine`'s telemetry in [from, to) per `bucket`; the caller bounds the bucket count (MAX_TELEMETRY_POINTS). */
export async function telemetrySeries(db: Queryable, machine: string, bucket: Bucket, from: Date, to: Date): Promise<TelemetrySeries> {
  const r = await db.query<{ b: Date; n: string; temperature: number | null; tubes: unknown }>(
    `SELECT date_trunc($1, received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b, count(*) AS n,
            avg(CASE WHEN jsonb_typeof(body->'temperature') = 'number' THEN (body->>'temperature')::float8 END) AS temperature,
            (array_agg(body->'tubes' ORDER BY received_at DESC) FILTER (WHERE jsonb_typeof(body->'tubes') = 'array'))[1] AS tubes
     FROM telemetry WHERE machine_id = $2 AND received_at >= $3 AND received_at < $4 GROUP BY 1`,
    [bucket, machine, from, to],
  );
  const got = new Map<number, { reports: number; temperature: number | null; tubes: Map<number, number> }>();
  const coins = new Set<number>();
  for (const x of r.rows) {
    const tubes = tubesOf(typeof x.tubes === 'string' ? JSON.parse(x.tubes) : x.tubes);
    for (const c of tubes.keys()) coins.add(c);
    const temperature = x.temperature === null ? null : Number(x.temperature);
    got.set(new Date(x.b).getTime(), { reports: Number(x.n), temperature: temperature !== null && Number.isFinite(temperature) ? Math.round(temperature * 10) / 10 : null, tubes });
  }
  const values = [...coins].sort((a, b) => a - b);
  const step = BUCKET_MS[bucket];
  const points: TelemetryPoint[] = [];
  // Buckets start on the unit's boundary (UTC), as date_trunc cuts them.
  for (let t = Math.floor(from.getTime() / step) * step; t < to.getTime(); t += step) {
    const x = got.get(t);
    points.push({ t: new Date(t).toISOString(), reports: x?.reports ?? 0, temperature: x?.temperature ?? null, tubes: values.map((c) => x?.tubes.get(c) ?? null) });
  }
  return { coins: values, points };
}
