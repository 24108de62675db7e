/**
 * Every machine's sales per slot and hour of the week over the forecasts'
 * window (28 days), kept in memory and moved forward by the sales that
 * entered and left the window since the last look: two short range reads
 * instead of a month of sales each time (at 10,000 machines that month is
 * millions of rows and seconds of counting). The counts are exactly those
 * loadSalesCounts gives for the same window; the window ends `lagMs` before
 * now, so a sale whose transaction began before a look and committed after
 * it is still counted when the window reaches it.
 *
 * The first look (and one after a gap longer than the window) counts the
 * whole window: its whole hours from the hourly rollup (sales_hourly,
 * gateway/store/rollup.ts), a narrow row per machine, slot and hour kept
 * with the sales themselves, and only the part-hours at its ends from the
 * sales (every sale's JSON body read: on PGlite that took about 50 s for a
 * month of 10,000 machines' sales, docs/benchmarks.md). Hours older than
 * the rollup keeps are counted from the sales too.
 */
import type { Queryable } from '../store/db.js';
import { HOURLY_READ_DAYS } from '../store/rollup.js';
import { DAY_MS, HOUR_MS, WEEK_HOURS } from './forecast.js';
import { DEFAULT_WINDOW_DAYS } from './plan.js';

export interface WindowCounts {
  /** Per machine, per slot: sales per hour of the week in [since, until). */
  counts: ReadonlyMap<string, ReadonlyMap<string, Uint32Array>>;
  since: Date;
  until: Date;
  /** Machines whose counts changed in the last move (every machine after a full read). */
  changed: ReadonlySet<string> | 'all';
}

type Rows = { machine_id: string; slot: string; h: number; n: string | number }[];

async function countsIn(db: Queryable, since: number, until: number): Promise<Rows> {
  if (until <= since) return [];
  // As loadSalesCounts counts (store.ts): the epoch was a Thursday, hour 72 of a week that starts on Monday.
  const r = await db.query<{ machine_id: string; slot: string; h: number; n: string }>(
    `SELECT machine_id, slot, ((floor(extract(epoch FROM received_at) / 3600)::bigint + 72) % 168)::int AS h, count(*) AS n
     FROM sales WHERE received_at >= $1 AND received_at < $2 AND slot IS NOT NULL GROUP BY 1, 2, 3`,
    [new Date(since), new Date(until)],
  );
  return r.rows;
}

/**
 * The hourly rollup's sales in the whole hours [from, to) (hours since the epoch) as one text of records,
 * not a row each: PGlite hands every row to JavaScript at a cost of microseconds, and a day of a big fleet
 * is a hundred thousand of them. A record is a line "machine slot hour-of-week sales" (SalesWindow.addText).
 */
async function rolledUp(db: Queryable, from: number, to: number): Promise<string | null> {
  if (to <= from) return null;
  const r = await db.query<{ c: string | null }>(
    `SELECT string_agg(concat_ws(' ', machine_id, slot, (hour + 72) % 168, sales), E'\n') AS c FROM sales_hourly WHERE hour >= $1 AND hour < $2`,
    [from, to],
  );
  return r.rows[0]?.c ?? null;
}

export class SalesWindow {
  private counts = new Map<string, Map<string, Uint32Array>>();
  private since = 0;
  private until = 0;
  private loaded = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Queryable,
    private readonly windowMs = DEFAULT_WINDOW_DAYS * DAY_MS,
    private readonly lagMs = 60_000,
    /** 'raw': the first look counts the whole window from the sales (the reference the rollup is checked and measured against). */
    private readonly source: 'rollup' | 'raw' = 'rollup',
  ) {}

  /** The counts for the window ending `lagMs` before `now`; one move at a time. */
  at(now: Date): Promise<WindowCounts> {
    const next = this.queue.then(() => this.move(now.getTime() - this.lagMs));
    this.queue = next.catch(() => {});
    return next;
  }

  private slotOf(machine: string, slot: string): Uint32Array {
    let m = this.counts.get(machine);
    if (!m) this.counts.set(machine, (m = new Map()));
    let c = m.get(slot);
    if (!c) m.set(slot, (c = new Uint32Array(WEEK_HOURS)));
    return c;
  }

  private add(rows: Rows, sign: 1 | -1, changed?: Set<string>): void {
    for (const r of rows) {
      const c = this.slotOf(r.machine_id, r.slot);
      const h = Number(r.h);
      c[h] = Math.max(0, c[h]! + sign * Number(r.n));
      changed?.add(r.machine_id);
    }
  }

  /**
   * rolledUp's records counted into `into` by "machine slot" (one key, one lookup: a month is millions of
   * records, so no object each and the numbers read digit by digit). Slot codes hold no spaces (the sales
   * view's rule) and machine ids no line breaks (machine-id.ts), so a record's last two words are its
   * numbers and what comes before them is the machine and the slot.
   */
  private static addText(text: string | null, into: Map<string, Uint32Array>): void {
    if (!text) return;
    const digits = (from: number, to: number): number => {
      let v = 0;
      for (let i = from; i < to; i++) v = v * 10 + (text.charCodeAt(i) - 48);
      return v;
    };
    for (let start = 0; start < text.length; ) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      const c = text.lastIndexOf(' ', end - 1);
      const b = text.lastIndexOf(' ', c - 1);
      const key = text.slice(start, b);
      let counts = into.get(key);
      if (!counts) into.set(key, (counts = new Uint32Array(WEEK_HOURS)));
      const h = digits(b + 1, c);
      counts[h] = counts[h]! + digits(c + 1, end);
      start = end + 1;
    }
  }

  private async move(until: number): Promise<WindowCounts> {
    const since = until - this.windowMs;
    const changed = new Set<string>();
    // The first look, a window that moved past the whole old one, or a clock that went back: read it all.
    if (!this.loaded || since >= this.until || until < this.until || since < this.since) {
      this.counts = new Map();
      // Whole hours the rollup keeps from the rollup, the rest (part-hours, older hours) from the sales.
      const first = Math.ceil(since / HOUR_MS);
      const last = Math.floor(until / HOUR_MS);
      const kept = this.source === 'raw' ? last : Math.max(first, last - HOURLY_READ_DAYS * 24);
      if (kept >= last) {
        for (let a = since; a < until; a += HOUR_MS) this.add(await countsIn(this.db, a, Math.min(until, a + HOUR_MS)), 1);
      } else {
        // A piece at a time (an hour of sales, a day of rollup): on a store with one connection (PGlite)
        // other queries (a page's) get their turn between pieces instead of waiting for the whole month.
        const rolled = new Map<string, Uint32Array>();
        for (let h = kept; h < last; h += 24) {
          // A turn of the event loop between pieces: PGlite answers through promises alone, so without it the
          // month's reads run back to back and the process serves nothing else (a page, its files) meanwhile.
          await new Promise((resolve) => setImmediate(resolve));
          SalesWindow.addText(await rolledUp(this.db, h, Math.min(last, h + 24)), rolled);
        }
        for (const [key, c] of rolled) {
          const space = key.lastIndexOf(' ');
          let m = this.counts.get(key.slice(0, space));
          if (!m) this.counts.set(key.slice(0, space), (m = new Map()));
          m.set(key.slice(space + 1), c);
        }
        for (let a = since; a < kept * HOUR_MS; a += HOUR_MS) this.add(await countsIn(this.db, a, Math.min(kept * HOUR_MS, a + HOUR_MS)), 1);
        this.add(await countsIn(this.db, last * HOUR_MS, until), 1);
      }
      this.loaded = true;
      this.since = since;
      this.until = until;
      return { counts: this.counts, since: new Date(since), until: new Date(until), changed: 'all' };
    }
    const [entered, left] = await Promise.all([countsIn(this.db, this.until, until), countsIn(this.db, this.since, since)]);
    this.add(entered, 1, changed);
    this.add(left, -1, changed);
    this.since = since;
    this.until = until;
    return { counts: this.counts, since: new Date(since), until: new Date(until), changed };
  }
}
