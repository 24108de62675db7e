/**
 * The dashboard's charts (browser side), drawn with uPlot as the gateway
 * serves it (/dashboard/vendor/, from the installed npm package: nothing
 * comes from the internet): the fleet's and one machine's sales and revenue
 * over the range picked (GET /sales/series), and its coin tube levels and cabinet
 * temperature (GET /machines/{id}/telemetry). Axes say their units, money
 * is in the machine's currency, times are UTC (the API's buckets are UTC
 * hours and days), and the legend under each chart gives the values under
 * the cursor. uPlot sizes and places its parts through the CSSOM, which the
 * page's policy (no inline style) allows.
 */
import type uPlot from 'uplot';

/** The machine's money (docs/uplink.md `currency`, `decimals`): amounts are minor units of it. */
export interface Money {
  currency: string;
  decimals: number;
}

export interface ChartTools {
  api<T>(path: string): Promise<T>;
  $(selector: string): HTMLElement;
  el(tag: string, attrs?: Record<string, string>, text?: string): HTMLElement;
  serial(fn: () => Promise<void>): () => void;
  /** An amount in minor units with its currency, as the rest of the page writes it. */
  money(minor: number, m: Money | null | undefined): string;
  /** The machine shown (undefined: none) and its money as the fleet list says. */
  selected(): string | undefined;
  moneyOfSelected(): Money | null;
  /** The money of every machine in the fleet list (null: one has not said). */
  fleetMoney(): (Money | null)[];
}

type Bucket = 'minute' | 'hour' | 'day';
const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
/** The ranges of the #range select: how far back, in which buckets (at most the API's 2000 a series). */
const RANGES: Record<string, { span: number; bucket: Bucket }> = {
  '1h': { span: 3_600_000, bucket: 'minute' },
  '6h': { span: 6 * 3_600_000, bucket: 'minute' },
  '24h': { span: 86_400_000, bucket: 'hour' },
  '7d': { span: 7 * 86_400_000, bucket: 'hour' },
  '30d': { span: 30 * 86_400_000, bucket: 'day' },
  '90d': { span: 90 * 86_400_000, bucket: 'day' },
  '1y': { span: 365 * 86_400_000, bucket: 'day' },
};
/** The bucket a custom range gets: the finest that keeps it within the API's 2000 buckets. */
const bucketFor = (span: number): Bucket => (span <= 2000 * BUCKET_MS.minute ? (span <= 6 * 3_600_000 ? 'minute' : 'hour') : span <= 2000 * BUCKET_MS.hour ? 'hour' : 'day');

const COLOURS = ['#1d4ed8', '#ed6c02', '#2e7d32', '#9333ea', '#c62828', '#0891b2', '#a16207', '#db2777'];
const UTC_TIME = { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone: 'UTC', hour12: false } as const;

let loading: Promise<typeof uPlot> | undefined;
/**
 * uPlot, loaded once when a chart is first drawn, with its style sheet: its browser build as a classic script
 * (it defines the global uPlot), so the page imports no module by a path only the gateway knows.
 */
function library(): Promise<typeof uPlot> {
  if (!loading) {
    if (!document.querySelector('link[data-uplot]')) {
      const css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = '/dashboard/vendor/uPlot.min.css';
      css.dataset['uplot'] = '';
      document.head.append(css);
    }
    loading = new Promise<typeof uPlot>((resolve, reject) => {
      const script = document.createElement('script');
      script.src = '/dashboard/vendor/uPlot.iife.min.js';
      script.addEventListener('load', () => {
        const U = (globalThis as { uPlot?: typeof uPlot }).uPlot;
        if (U) resolve(U);
        else reject(new Error('the chart library did not load'));
      });
      script.addEventListener('error', () => reject(new Error('the chart library could not be loaded')));
      document.head.append(script);
    }).catch((e: unknown) => {
      // Tried again with the next chart drawn.
      loading = undefined;
      throw e;
    });
  }
  return loading;
}

/** The index nearest `i` where some series (not the times) has a value; `i` itself when none has any. */
function nearestReading(data: uPlot.AlignedData, i: number): number {
  const has = (j: number): boolean => data.slice(1).some((ys) => ys[j] !== null && ys[j] !== undefined);
  const n = data[0].length;
  for (let d = 0; d < n; d++) {
    if (i - d >= 0 && has(i - d)) return i - d;
    if (i + d < n && has(i + d)) return i + d;
  }
  return i;
}

/** A drawn chart in its box; remade when its series change (another machine, currency or coin set), else given new data. */
interface Drawn {
  key: string;
  plot: uPlot;
}

/** One chart's place on the page: the plot, and a line under it for "no data" or an error. */
class ChartBox {
  private drawn: Drawn | undefined;
  private readonly plotBox: HTMLElement;
  private readonly note: HTMLElement;
  private readonly name: string;

  constructor(
    tools: ChartTools,
    readonly box: HTMLElement,
    private readonly height: number,
  ) {
    this.name = box.getAttribute('aria-label') ?? 'chart';
    this.plotBox = tools.el('div', { class: 'chart-plot' });
    this.note = tools.el('p', { class: 'chart-note', role: 'status' });
    box.replaceChildren(this.plotBox, this.note);
    // The plot follows its box (a phone turned, the window resized).
    new ResizeObserver(() => {
      const w = this.width();
      if (this.drawn && w > 0 && Math.abs(this.drawn.plot.width - w) > 1) this.drawn.plot.setSize({ width: w, height: this.height });
    }).observe(box);
  }

  private width(): number {
    return Math.max(200, Math.floor(this.box.clientWidth));
  }

  /** Draw `data` with the options `make` gives (called only when `key` differs from the drawn chart's). */
  async draw(key: string, make: (U: typeof uPlot, width: number, height: number) => uPlot.Options, data: uPlot.AlignedData, note: string): Promise<void> {
    let U: typeof uPlot;
    try {
      U = await library();
    } catch (e) {
      return this.fail((e as Error).message);
    }
    this.note.textContent = note;
    if (this.drawn?.key === key) {
      this.drawn.plot.setData(data);
      return;
    }
    this.drawn?.plot.destroy();
    const opts = make(U, this.width(), this.height);
    // Axis titles and tick labels are drawn on the canvas: the box says them as text too (its aria-label and
    // data-axes; data-ticks0, 1, ... the ticks last drawn), for what reads the page without seeing it.
    const titles = (opts.axes ?? []).map((a) => (typeof a.label === 'string' ? a.label : ''));
    this.box.dataset['axes'] = titles.join(' | ');
    this.box.setAttribute('aria-label', `${this.name}; axes: ${titles.join(', ')}`);
    opts.axes?.forEach((a, i) => {
      const f = a.values;
      if (typeof f !== 'function') return;
      a.values = (u, splits, axis, space, incr) => {
        const out = f(u, splits, axis, space, incr);
        this.box.dataset[`ticks${i}`] = out.join(' | ');
        return out;
      };
    });
    // Under the cursor, the nearest bucket that has a reading (a gap, a bucket without a report, is skipped rather
    // than shown as "–"), the same one for every series, so the legend's time is the time of its values.
    opts.cursor = { dataIdx: (u, _series, closest) => nearestReading(u.data, closest), ...opts.cursor };
    this.drawn = { key, plot: new U(opts, data, this.plotBox) };
  }

  fail(message: string): void {
    this.drawn?.plot.destroy();
    this.drawn = undefined;
    this.note.textContent = message;
  }
}

interface SalesSeries {
  bucket: Bucket;
  points: { t: string; sales: number; revenue: number }[];
}
interface TelemetrySeries {
  bucket: Bucket;
  currency: string | null;
  decimals: number | null;
  coins: number[];
  points: { t: string; reports: number; temperature: number | null; tubes: (number | null)[] }[];
}

/** The time axis and the legend's time: UTC, as the buckets are cut. */
function timeAxis(bucket: Bucket): uPlot.Axis {
  return {
    label: 'time (UTC)',
    labelSize: 18,
    values: (_u, splits) =>
      splits.map((s) => {
        const d = new Date(s * 1000);
        const iso = d.toISOString();
        // A day's tick is its date; an hour's or minute's its clock, with the date at midnight.
        if (bucket === 'day' || iso.slice(11, 16) === '00:00') return iso.slice(5, 10);
        return iso.slice(11, 16);
      }),
  };
}
const timeSeries = (bucket: Bucket): uPlot.Series => ({
  label: `${bucket} from (UTC)`,
  value: (_u, v) => (v === null ? '–' : new Date(v * 1000).toLocaleString('en-GB', UTC_TIME)),
});
const seconds = (iso: string): number => Date.parse(iso) / 1000;
/** 1, 2, 5, 10, 20, 50, ... up to 5e12: axis steps in minor units of a currency. */
const MINOR_STEPS: readonly number[] = Array.from({ length: 13 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

type Range = { from: Date; to: Date; bucket: Bucket };
const query = (r: Range): string => `bucket=${r.bucket}&from=${r.from.toISOString()}&to=${r.to.toISOString()}`;

/** A range select (RANGES and "custom range") with custom from/to inputs (UTC), made after it and shown when picked. */
class RangePicker {
  private readonly from: HTMLInputElement;
  private readonly to: HTMLInputElement;
  private readonly custom: HTMLElement;

  constructor(
    tools: ChartTools,
    private readonly select: HTMLSelectElement,
    changed: () => void,
  ) {
    const id = select.id;
    this.from = tools.el('input', { type: 'datetime-local', id: `${id}-from`, 'aria-label': 'from (UTC)' }) as HTMLInputElement;
    this.to = tools.el('input', { type: 'datetime-local', id: `${id}-to`, 'aria-label': 'to (UTC)' }) as HTMLInputElement;
    this.custom = tools.el('span', { id: `${id}-custom`, class: 'range-custom' });
    this.custom.append(tools.el('span', {}, 'from'), this.from, tools.el('span', {}, 'to'), this.to, tools.el('span', {}, 'UTC'));
    this.custom.hidden = true;
    select.after(this.custom);
    select.addEventListener('change', () => {
      if (select.value === 'custom' && this.from.value === '' && this.to.value === '') {
        // Start from the last 24 hours, for the person to move.
        const end = Math.ceil(Date.now() / 60000) * 60000;
        this.to.value = new Date(end).toISOString().slice(0, 16);
        this.from.value = new Date(end - 86_400_000).toISOString().slice(0, 16);
      }
      changed();
    });
    for (const input of [this.from, this.to]) input.addEventListener('change', changed);
  }

  /** The range picked: [from, to) and its bucket; a message instead when the custom one is not a range. */
  picked(): Range | string {
    if (this.select.value === 'custom') {
      this.custom.hidden = false;
      const a = Date.parse(`${this.from.value}:00Z`);
      const b = Date.parse(`${this.to.value}:00Z`);
      if (!Number.isFinite(a) || !Number.isFinite(b)) return 'Pick a start and an end (UTC).';
      if (a >= b) return 'The start must be before the end.';
      return { from: new Date(a), to: new Date(b), bucket: bucketFor(b - a) };
    }
    this.custom.hidden = true;
    const r = RANGES[this.select.value] ?? RANGES['24h']!;
    // To the next whole minute: the newest bucket is the one now is in.
    const end = Math.ceil(Date.now() / 60000) * 60000;
    return { from: new Date(end - r.span), to: new Date(end), bucket: r.bucket };
  }
}

/** The money a set of machines sells in: one currency, none said (null), or several ('mixed': revenue cannot be summed). */
function moneyOfAll(all: readonly (Money | null)[]): Money | null | 'mixed' {
  const said = new Map(all.filter((m): m is Money => m !== null).map((m) => [`${m.currency}/${m.decimals}`, m]));
  if (said.size > 1) return 'mixed';
  return [...said.values()][0] ?? null;
}

/**
 * Sales and revenue of one machine (or, undefined, the fleet the token sees) over `r` into `box`; `money` says the
 * currency (mixed: sales only, the revenue of several currencies is no one figure); `still` is false when what the
 * chart shows changed while the series was read (another machine picked).
 */
async function drawSales(tools: ChartTools, box: ChartBox, r: Range | string, machine: string | undefined, money: Money | null | 'mixed', still: () => boolean): Promise<void> {
  if (typeof r === 'string') return box.fail(r);
  let s: SalesSeries;
  try {
    s = await tools.api<SalesSeries>(`/sales/series?${machine !== undefined ? `machine=${encodeURIComponent(machine)}&` : ''}${query(r)}`);
  } catch (e) {
    return box.fail(`Sales could not be read: ${(e as Error).message}`);
  }
  if (!still()) return;
  const mm = money === 'mixed' ? null : money;
  const unit = 10 ** (mm?.decimals ?? 2);
  const currency = mm?.currency ?? 'currency not reported';
  const xs = s.points.map((p) => seconds(p.t));
  // Revenue in whole units of the currency (the axis reads 1.50, not 150 cents); back to minor units for money().
  const revenue = s.points.map((p) => p.revenue / unit);
  const count = s.points.map((p) => p.sales);
  const total = s.points.reduce((a, p) => a + p.revenue, 0);
  const sold = count.reduce((a, n) => a + n, 0);
  box.box.dataset['sales'] = String(sold);
  box.box.dataset['revenue'] = String(total);
  box.box.dataset['bucket'] = s.bucket;
  box.box.dataset['points'] = String(s.points.length);
  const when = `from ${r.from.toLocaleString('en-GB', UTC_TIME)} to ${r.to.toLocaleString('en-GB', UTC_TIME)} UTC, per ${s.bucket}`;
  const salesSeries: uPlot.Series = {
    label: `sales per ${s.bucket}`,
    scale: 'n',
    stroke: COLOURS[1]!,
    width: 2,
    points: { show: s.points.length <= 30 },
    value: (_u, v) => (v === null ? '–' : `${v} sale${v === 1 ? '' : 's'}`),
  };
  const salesAxis = (side: 1 | 3): uPlot.Axis => ({
    scale: 'n',
    side,
    label: `sales per ${s.bucket}`,
    labelSize: 18,
    size: 44,
    ...(side === 1 ? { grid: { show: false } } : {}),
    incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000],
    values: (_u, splits) => splits.map((v) => String(v)),
  });
  const n = { range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [0, Math.max(max, 1)] };
  if (money === 'mixed')
    return box.draw(
      `${machine ?? ''}|mixed|${s.bucket}`,
      (U, width, height) => ({
        width,
        height,
        tzDate: (ts) => U.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        scales: { x: { time: true }, n },
        series: [timeSeries(s.bucket), salesSeries],
        axes: [timeAxis(s.bucket), salesAxis(3)],
        legend: { live: true },
      }),
      [xs, count],
      `${sold} sale${sold === 1 ? '' : 's'} ${when}; the machines sell in several currencies: revenue is on each machine's chart`,
    );
  return box.draw(
    `${machine ?? ''}|${currency}|${unit}|${s.bucket}`,
    (U, width, height) => ({
      width,
      height,
      tzDate: (ts) => U.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: { x: { time: true }, money: { range: (_u, _min, max) => [0, Math.max(max, 1 / unit)] }, n },
      series: [
        timeSeries(s.bucket),
        {
          label: `revenue (${currency})`,
          scale: 'money',
          stroke: COLOURS[0]!,
          fill: 'rgba(29, 78, 216, 0.35)',
          ...(U.paths.bars ? { paths: U.paths.bars({ size: [0.7, 40] }) } : {}),
          points: { show: false },
          value: (_u, v) => (v === null ? '–' : tools.money(Math.round(v * unit), mm)),
        },
        salesSeries,
      ],
      axes: [
        timeAxis(s.bucket),
        {
          scale: 'money',
          label: `revenue (${currency}) per ${s.bucket}`,
          labelSize: 18,
          size: 60,
          // Steps of whole minor units: a finer step repeats its labels at the currency's decimals ("0.01, 0.01, 0.00").
          incrs: MINOR_STEPS.map((n) => n / unit),
          values: (_u, splits) => splits.map((v) => v.toFixed(mm?.decimals ?? 2)),
        },
        salesAxis(1),
      ],
      legend: { live: true },
    }),
    [xs, revenue, count],
    `${sold} sale${sold === 1 ? '' : 's'}, ${tools.money(total, mm)} ${when}`,
  );
}

/**
 * The charts: the fleet's sales (#fleet-chart, its own range in #fleet-range) and the selected machine's sales,
 * coin tubes and temperature (#chart, #tube-chart, #temperature-chart, over #range), with their refresh.
 */
export function chartPanel(tools: ChartTools): { refresh(): void; refreshTelemetry(): void; refreshFleet(): void } {
  const { $, api } = tools;
  const range = new RangePicker(tools, $('#range') as HTMLSelectElement, () => refresh());
  const fleetSelect = $('#fleet-range') as HTMLSelectElement;
  // The same ranges as the machine's.
  fleetSelect.replaceChildren(...[...($('#range') as HTMLSelectElement).options].map((o) => o.cloneNode(true)));
  const fleetRange = new RangePicker(tools, fleetSelect, () => refreshFleet());
  const fleet = new ChartBox(tools, $('#fleet-chart'), 230);
  const sales = new ChartBox(tools, $('#chart'), 220);
  const tubes = new ChartBox(tools, $('#tube-chart'), 200);
  const temperature = new ChartBox(tools, $('#temperature-chart'), 180);

  const refreshFleet = tools.serial(async () => {
    await drawSales(tools, fleet, fleetRange.picked(), undefined, moneyOfAll(tools.fleetMoney()), () => true);
  });

  const refreshSales = tools.serial(async () => {
    const id = tools.selected();
    if (!id) return;
    await drawSales(tools, sales, range.picked(), id, tools.moneyOfSelected(), () => id === tools.selected());
  });

  const refreshTelemetry = tools.serial(async () => {
    const id = tools.selected();
    if (!id) return;
    const r = range.picked();
    if (typeof r === 'string') {
      tubes.fail(r);
      temperature.fail(r);
      return;
    }
    let s: TelemetrySeries;
    try {
      s = await api<TelemetrySeries>(`/machines/${encodeURIComponent(id)}/telemetry?${query(r)}`);
    } catch (e) {
      const m = `Telemetry could not be read: ${(e as Error).message}`;
      tubes.fail(m);
      temperature.fail(m);
      return;
    }
    if (id !== tools.selected()) return;
    const mm: Money | null = s.currency !== null ? { currency: s.currency, decimals: s.decimals ?? 2 } : tools.moneyOfSelected();
    const xs = s.points.map((p) => seconds(p.t));
    const reports = s.points.reduce((a, p) => a + p.reports, 0);
    const few = s.points.filter((p) => p.reports > 0).length <= 60;
    tubes.box.dataset['coins'] = String(s.coins.length);
    tubes.box.dataset['points'] = String(s.points.length);
    if (s.coins.length === 0) tubes.fail(reports === 0 ? 'No telemetry in this range.' : 'No coin changer reported in this range.');
    else
      await tubes.draw(
        `${id}|${mm?.currency ?? ''}|${s.bucket}|${s.coins.join(',')}`,
        (U, width, height) => ({
          width,
          height,
          tzDate: (ts) => U.tzDate(new Date(ts * 1000), 'Etc/UTC'),
          scales: { x: { time: true }, coins: { range: (_u, _min, max) => [0, Math.max(max, 10)] } },
          series: [
            timeSeries(s.bucket),
            ...s.coins.map(
              (c, i): uPlot.Series => ({
                label: `${tools.money(c, mm)} tube`,
                scale: 'coins',
                stroke: COLOURS[i % COLOURS.length]!,
                width: 2,
                spanGaps: true,
                points: { show: few },
                value: (_u, v) => (v === null ? '–' : `${v} coin${v === 1 ? '' : 's'} (${tools.money(v * c, mm)})`),
              }),
            ),
          ],
          axes: [timeAxis(s.bucket), { scale: 'coins', label: 'coins in the tube', labelSize: 18, size: 44, incrs: [1, 2, 5, 10, 20, 50, 100, 200], values: (_u, splits) => splits.map((v) => String(v)) }],
          legend: { live: true },
        }),
        [xs, ...s.coins.map((_c, i) => s.points.map((p) => p.tubes[i] ?? null))],
        `${reports} report${reports === 1 ? '' : 's'}; each ${s.bucket}'s newest tube counts`,
      );
    const temps = s.points.map((p) => p.temperature);
    temperature.box.dataset['readings'] = String(temps.filter((t) => t !== null).length);
    if (temps.every((t) => t === null)) temperature.fail(reports === 0 ? 'No telemetry in this range.' : 'No temperature reported in this range (no sensor).');
    else
      await temperature.draw(
        `${id}|${s.bucket}`,
        (U, width, height) => ({
          width,
          height,
          tzDate: (ts) => U.tzDate(new Date(ts * 1000), 'Etc/UTC'),
          scales: { x: { time: true }, c: { range: (_u, min, max) => [Math.floor(Math.min(min, 0)), Math.ceil(Math.max(max, min + 2))] } },
          series: [
            timeSeries(s.bucket),
            { label: 'temperature', scale: 'c', stroke: COLOURS[4]!, width: 2, spanGaps: true, points: { show: few }, value: (_u, v) => (v === null ? '–' : `${v.toFixed(1)} °C`) },
          ],
          axes: [timeAxis(s.bucket), { scale: 'c', label: 'temperature (°C)', labelSize: 18, size: 60, values: (_u, splits) => splits.map((v) => `${v} °C`) }],
          legend: { live: true },
        }),
        [xs, temps],
        `mean per ${s.bucket}`,
      );
  });

  const refresh = (): void => {
    refreshSales();
    refreshTelemetry();
  };
  return { refresh, refreshTelemetry, refreshFleet };
}
