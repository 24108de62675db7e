/**
 * When does each slot run out? Pure: from a slot's sales per hour of the
 * week over a window (28 days by default) estimate its sales rate in each of
 * the 168 hours of the week, then walk forward from the moment its stock was
 * reported, hour by hour, consuming the quantity (docs/restocking.md).
 *
 * Sparse data is smoothed so that one sale does not make a spike: each
 * hour's rate is a Gamma-Poisson posterior mean, its own sales plus `alpha`
 * (default 1) pseudo-sales spread according to a prior shape:
 *
 *   rate[h] = (alpha + n[h]) / (alpha / prior[h] + exposure[h])
 *
 * where prior[h] = the slot's overall hourly mean x a shape of mean 1. The
 * shape is the hour-of-week profile of the machine's other slots (itself
 * smoothed the same way towards their day-of-week x hour-of-day profile,
 * and those towards flat); when the other slots sold nothing, the slot's own
 * day-of-week x hour-of-day profile. With many sales in an hour the slot's
 * own count wins; one sale in four weeks makes its hour about twice the mean
 * on a machine that sells otherwise, not 168 times. Hours are UTC hours of
 * the week (bucket 0 = Monday 00:00 UTC): a
 * local weekly pattern is a weekly pattern in UTC too, shifted by one hour
 * across a daylight-saving change.
 */

export const WEEK_HOURS = 168;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
const WEEK_MS = WEEK_HOURS * HOUR_MS;

/** The hour of the week of a time (ms since the epoch): 0 = Monday 00:00-01:00 UTC. The epoch was a Thursday (hour 72). */
export function hourOfWeek(ms: number): number {
  const h = Math.floor(ms / HOUR_MS);
  return (((h + 72) % WEEK_HOURS) + WEEK_HOURS) % WEEK_HOURS;
}

/** How many hours of each hour of the week lie in [since, until) (partial hours counted in part). */
export function exposureHours(since: number, until: number): number[] {
  const e = new Array<number>(WEEK_HOURS).fill(0);
  // Whole weeks at once: every hour of the week once per week.
  const weeks = Math.max(0, Math.floor((until - since) / WEEK_MS));
  if (weeks > 0) for (let h = 0; h < WEEK_HOURS; h++) e[h] = weeks;
  let t = since + weeks * WEEK_MS;
  while (t < until) {
    const next = Math.min(until, (Math.floor(t / HOUR_MS) + 1) * HOUR_MS);
    e[hourOfWeek(t)]! += (next - t) / HOUR_MS;
    t = next;
  }
  return e;
}

/** Sales per hour of the week, of the times (ms or Date) in [since, until). */
export function countsFromTimes(times: Iterable<number | Date>, since: number, until: number): number[] {
  const c = new Array<number>(WEEK_HOURS).fill(0);
  for (const x of times) {
    const t = typeof x === 'number' ? x : x.getTime();
    if (t >= since && t < until) c[hourOfWeek(t)]! += 1;
  }
  return c;
}

/** A plain loop: the forecast sums 168-hour arrays many times a slot, and reduce's callback costs several times the additions. */
function sum(a: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}

/*
 * The arithmetic below is written as plain loops over preallocated arrays (the restock KPI works out a
 * fleet's rates at once: 100,000 slots at 10,000 machines), each value computed by the same operations in
 * the same order as the formulas say, so the results are the same to the last bit whichever way they are written.
 */

/** Gamma-Poisson posterior mean per bucket: prior mean `prior[i]` worth `alpha` pseudo-sales, then `counts[i]` sales in `exposure[i]` hours. */
function shrink(counts: readonly number[], exposure: readonly number[], prior: readonly number[], alpha: number): number[] {
  const out = new Array<number>(counts.length);
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!;
    const mu = prior[i]!;
    const e = exposure[i]!;
    out[i] = mu <= 0 ? (e > 0 ? n / e : 0) : (alpha + n) / (alpha / mu + e);
  }
  return out;
}

/** Rates scaled to an exposure-weighted mean of 1 (a shape), or undefined when there is nothing to scale. */
function shapeOf(rates: readonly number[], exposure: readonly number[]): number[] | undefined {
  const e = sum(exposure);
  let weighted = 0;
  for (let i = 0; i < rates.length; i++) weighted += rates[i]! * exposure[i]!;
  const m = e > 0 ? weighted / e : 0;
  if (!(m > 0)) return undefined;
  const out = new Array<number>(rates.length);
  for (let i = 0; i < rates.length; i++) out[i] = rates[i]! / m;
  return out;
}

const flat = (n: number, v: number): number[] => new Array<number>(n).fill(v);

/**
 * A series' weekly shape from two coarser profiles, each smoothed towards flat: its day-of-week profile
 * (7 buckets of 24 hours) times its hour-of-day profile (24 buckets of 7 days). Pooling makes them
 * reliable where single hours of the week are not: four quiet weekends say "no sales at weekends"
 * together, though each weekend hour alone saw only 4 hours. Undefined without sales.
 */
function separableShape(counts: readonly number[], exposure: readonly number[], alpha: number): number[] | undefined {
  const n = sum(counts);
  const e = sum(exposure);
  if (n <= 0 || e <= 0) return undefined;
  const mean = n / e;
  const dc = flat(7, 0);
  const de = flat(7, 0);
  const hc = flat(24, 0);
  const he = flat(24, 0);
  for (let d = 0, h = 0; d < 7; d++) {
    for (let k = 0; k < 24; k++, h++) {
      dc[d]! += counts[h]!;
      de[d]! += exposure[h]!;
      hc[k]! += counts[h]!;
      he[k]! += exposure[h]!;
    }
  }
  const day = shrink(dc, de, flat(7, mean), alpha);
  const hour = shrink(hc, he, flat(24, mean), alpha);
  const shape = new Array<number>(WEEK_HOURS);
  for (let d = 0, h = 0; d < 7; d++) for (let k = 0; k < 24; k++, h++) shape[h] = (day[d]! / mean) * (hour[k]! / mean);
  return shapeOf(shape, exposure);
}

/** Hourly rates of a series from its counts, smoothed towards `shape` (or its own day-of-week x hour-of-day shape). Zero without sales. */
function seriesRates(counts: readonly number[], exposure: readonly number[], alpha: number, shape?: readonly number[]): number[] {
  const n = sum(counts);
  const e = sum(exposure);
  if (n <= 0 || e <= 0) return flat(WEEK_HOURS, 0);
  const s = shape ?? separableShape(counts, exposure, alpha)!;
  const mean = n / e;
  const prior = new Array<number>(s.length);
  for (let i = 0; i < s.length; i++) prior[i] = mean * s[i]!;
  return shrink(counts, exposure, prior, alpha);
}

/**
 * A slot's expected sales per hour for each hour of the week. `others` are
 * the machine's other slots' sales per hour of the week over the same window
 * (their profile is the prior shape); all three arrays have 168 entries.
 */
export function slotRates(counts: readonly number[], others: readonly number[], exposure: readonly number[], alpha = 1): number[] {
  const otherRates = seriesRates(others, exposure, alpha);
  return seriesRates(counts, exposure, alpha, shapeOf(otherRates, exposure));
}

/** When `qty` items are sold at `rates` (per hour, by hour of the week) starting at `from` (ms); null when nothing sells. */
export function predictEmpty(rates: readonly number[], qty: number, from: number): number | null {
  if (qty <= 0) return from;
  const weekly = sum(rates);
  if (!(weekly > 0)) return null;
  let left = qty;
  let t = from;
  let skipped = false;
  // At most the first partial hour, a week of whole hours after skipping whole weeks, and one more.
  for (let guard = 0; guard < 2 * WEEK_HOURS + 4; guard++) {
    const end = (Math.floor(t / HOUR_MS) + 1) * HOUR_MS;
    const r = rates[hourOfWeek(t)]!;
    const hours = (end - t) / HOUR_MS;
    if (r > 0 && r * hours >= left) return t + (left / r) * HOUR_MS;
    left -= r * hours;
    t = end;
    if (!skipped) {
      // A slow slot can take months: whole weeks are skipped at once (each sells `weekly`).
      skipped = true;
      let k = Math.floor(left / weekly);
      if (k > 0 && left - k * weekly <= 1e-12) k -= 1;
      if (k > 0) {
        t += k * WEEK_MS;
        left -= k * weekly;
      }
    }
  }
  return t;
}

/** A slot's stock as the machine last reported it (docs/uplink.md). */
export interface SlotStock {
  code: string;
  product?: string | undefined;
  qty: number;
  capacity?: number | undefined;
  sku?: number | undefined;
  fault?: boolean | undefined;
}

export interface SlotForecast {
  slot: string;
  product: string | null;
  qty: number;
  capacity: number | null;
  /** Out of service (a jam or motor fault): it sells nothing until fixed, so no empty time is predicted unless it is empty. */
  fault: boolean;
  /** Sales in the window. */
  sales: number;
  /** Expected sales per day, averaged over the week. */
  ratePerDay: number;
  /** When the slot is expected to be empty (the report time when it is empty already); null when it sells nothing. */
  emptyAt: Date | null;
  /** Days from now until emptyAt (0 when it is probably empty already); null with emptyAt. */
  daysLeft: number | null;
}

export interface ForecastInput {
  slots: readonly SlotStock[];
  /** Sales per hour of the week in the window, by slot code (slots no longer on the machine count for its profile). */
  sales: ReadonlyMap<string, readonly number[]>;
  /** Hours of each hour of the week in the window (exposureHours). */
  exposure: readonly number[];
  /** When the quantities were reported: the walk starts there. */
  from: Date;
  now: Date;
  alpha?: number;
}

/** Every slot of a machine: its rate and predicted empty time. */
export function forecastMachine(input: ForecastInput): SlotForecast[] {
  const alpha = input.alpha ?? 1;
  const zero = new Array<number>(WEEK_HOURS).fill(0);
  const machine = zero.slice();
  for (const c of input.sales.values()) for (let h = 0; h < WEEK_HOURS; h++) machine[h]! += c[h] ?? 0;
  return input.slots.map((s) => {
    const own = input.sales.get(s.code) ?? zero;
    const rates = slotRates(
      own,
      machine.map((x, h) => x - (own[h] ?? 0)),
      input.exposure,
      alpha,
    );
    const weekly = sum(rates);
    const fault = s.fault === true;
    const emptyMs = s.qty <= 0 ? input.from.getTime() : fault ? null : predictEmpty(rates, s.qty, input.from.getTime());
    return {
      slot: s.code,
      product: s.product ?? null,
      qty: s.qty,
      capacity: s.capacity ?? null,
      fault,
      sales: sum(own),
      ratePerDay: (weekly * 24) / WEEK_HOURS,
      emptyAt: emptyMs === null ? null : new Date(emptyMs),
      daysLeft: emptyMs === null ? null : Math.max(0, (emptyMs - input.now.getTime()) / DAY_MS),
    };
  });
}
