/**
 * The fleet KPI "machines needing restock today", from the forecasts
 * (docs/restocking.md "Needing restock today"): a machine counts when a slot
 * it reports is empty or out of service, or is predicted to run out before
 * the end of the UTC day, by the same forecast as the restocking route
 * (forecast.ts: its rates over the last 28 days, walked forward from the
 * stock the machine last reported).
 *
 * Computed naively (restockVisits) that is a month of sales counted and
 * every slot's rates worked out again on each look: seconds at 10,000
 * machines. Here the month's counts move forward in memory (SalesWindow) and
 * each slot's rates are kept for up to an hour; each look reads again the
 * slots of the machines whose telemetry was written since (its revision,
 * migration 18) and walks the kept rates from them, so stock changes show
 * at once; a machine whose slots, rates and day are as at the last look
 * keeps its answer without the walk. A look works out again at most `budget` machines'
 * rates (the oldest first), so a fleet whose rates all expire together is
 * brought up to date over a few looks, not in one long pause.
 */
import type { Queryable } from '../store/db.js';
import { slotsOf, type Slot, type Telemetry } from '../store/machines.js';
import { DAY_MS, exposureHours, HOUR_MS, predictEmpty, slotRates, WEEK_HOURS } from './forecast.js';
import { SalesWindow } from './sales-window.js';

export interface RestockTodayOptions {
  /** How old kept rates may get (default an hour). */
  maxAgeMs?: number;
  /** Machines whose rates a look may work out again when they are only old (new machines always are). */
  budget?: number;
  /** The sales window's lag behind now (SalesWindow; default a minute). */
  lagMs?: number;
  /** Where the first look counts the window from (SalesWindow; default the hourly rollup). */
  source?: 'rollup' | 'raw';
}

interface Kept {
  at: number;
  /** Rates per slot code, worked out when first asked. */
  rates: Map<string, number[]>;
}

interface Seen {
  rev: string | null;
  slots: Slot[];
  /** When the slots were reported (ms; null: not said). */
  reportedAt: number | null;
}

interface Verdict {
  k: Kept;
  rev: string | null;
  from: number;
  dayEnd: number;
  needs: boolean;
}

export interface RestockToday {
  /** The machines needing restock today, of `operator` (null: every operator's). */
  machines: Set<string>;
  /** Machines looked at. */
  of: number;
  /** The end of the sales window the rates come from. */
  salesUntil: Date;
}

const endOfDay = (ms: number): number => (Math.floor(ms / DAY_MS) + 1) * DAY_MS;

export class RestockTodayService {
  private readonly window: SalesWindow;
  private readonly kept = new Map<string, Kept>();
  private readonly maxAgeMs: number;
  private readonly budget: number;

  constructor(
    private readonly db: Queryable,
    options: RestockTodayOptions = {},
  ) {
    this.window = new SalesWindow(db, undefined, options.lagMs, options.source);
    this.maxAgeMs = options.maxAgeMs ?? HOUR_MS;
    this.budget = options.budget ?? 1000;
    this.reuseMs = Math.min(60_000, this.maxAgeMs);
  }

  /** Each machine's slots as last read, with the telemetry revision they are of (readSlots). */
  private readonly seen = new Map<string, Seen>();
  /** Each machine's last answer and what it was worked out from (the same inputs give it again without the walk). */
  private readonly verdicts = new Map<string, Verdict>();

  private readonly running = new Map<string | null, Promise<RestockToday>>();
  private warm = false;
  /**
   * Each operator's last answer, with what it was worked out from: the store's telemetry (how many machines, the
   * sum of their telemetry revisions: any write of a machine's telemetry gives it a new, larger number) and the
   * UTC day. A look asked for again within `reuseMs` of it, nothing of these moved, answers the same: the
   * dashboard's summary and map ask on every page and every live change, and a look at 10,000 machines reads
   * them all (hundreds of ms on PGlite). Sales alone do not move an answer sooner: rates are kept up to `maxAgeMs`.
   */
  private readonly answers = new Map<string | null, { key: string; at: number; answer: RestockToday }>();
  private readonly reuseMs: number;

  /**
   * The answer when the service has looked before (fast), else undefined at once, with the first look
   * (the whole window counted, seconds on a big store) started: a page is not held up by it.
   */
  async ifReady(operator: string | null): Promise<RestockToday | undefined> {
    if (this.warm) return this.today(operator);
    this.today(operator).catch(() => {});
    return undefined;
  }

  /** How many looks are under way (one an operator at most). */
  get looking(): number {
    return this.running.size;
  }

  /** Waits for the looks under way (their errors are their askers'): the API waits for them before its store may close. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * The machines needing restock today. A look already under way for the same operator answers a second
   * asker too (the dashboard asks for the summary and the list at once): at most one look at a time each.
   */
  today(operator: string | null, now?: Date): Promise<RestockToday> {
    if (now !== undefined) return this.look(operator, now);
    const running = this.running.get(operator);
    if (running) return running;
    const p = this.lookOrReuse(operator, new Date()).finally(() => this.running.delete(operator));
    this.running.set(operator, p);
    return p;
  }

  /** The last answer when nothing it was worked out from moved (see `answers`), else a look. */
  private async lookOrReuse(operator: string | null, now: Date): Promise<RestockToday> {
    // Read before the look: a telemetry write after this read moves the key, so the next asker looks again.
    const k = (
      await this.db.query<{ n: string; revs: string | null }>(
        `SELECT count(*)::text AS n, sum(ms.telemetry_rev)::text AS revs
         FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id WHERE $1::text IS NULL OR m.operator_id = $1`,
        [operator],
      )
    ).rows[0];
    const key = `${k?.n ?? 0} ${k?.revs ?? ''} ${Math.floor(now.getTime() / DAY_MS)}`;
    const last = this.answers.get(operator);
    if (last && last.key === key && now.getTime() - last.at >= 0 && now.getTime() - last.at < this.reuseMs) return last.answer;
    const answer = await this.look(operator, now);
    this.answers.set(operator, { key, at: now.getTime(), answer });
    return answer;
  }

  private async look(operator: string | null, now: Date): Promise<RestockToday> {
    const w = await this.window.at(now);
    const r = await this.db.query<{ id: string; created_at: Date; rev: string | null }>(
      `SELECT m.id, m.created_at, ms.telemetry_rev::text AS rev
       FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id WHERE $1::text IS NULL OR m.operator_id = $1`,
      [operator],
    );
    await this.readSlots(r.rows, operator);
    const until = w.until.getTime();
    const start = w.since.getTime();
    const whole = exposureHours(start, until);
    const dayEnd = endOfDay(now.getTime());
    const t = now.getTime();
    if (w.changed === 'all') this.kept.clear();
    // Old rates worked out again, the oldest first, at most `budget` of them a look.
    const stale = r.rows
      .map((m) => ({ id: m.id, k: this.kept.get(m.id) }))
      .filter((x) => x.k !== undefined && t - x.k.at > this.maxAgeMs)
      .sort((a, b) => a.k!.at - b.k!.at)
      .slice(0, this.budget);
    for (const s of stale) this.kept.delete(s.id);
    const out = new Set<string>();
    // Working rates out is the costly part (tens of microseconds a slot): the event loop gets a turn every
    // few milliseconds of it, so the first look at a big fleet does not stall the API's other answers (and
    // the page's files) for seconds.
    let turn = performance.now();
    for (const m of r.rows) {
      if (performance.now() - turn > 10) {
        await new Promise((resolve) => setImmediate(resolve));
        turn = performance.now();
      }
      const seen = this.seen.get(m.id)!;
      const slots = seen.slots;
      if (slots.length === 0) continue;
      // As forecastMachines: the walk starts when the quantities were reported (not after now).
      const reported = seen.reportedAt ?? t;
      const from = reported < t ? reported : t;
      let k = this.kept.get(m.id);
      if (!k) this.kept.set(m.id, (k = { at: t, rates: new Map() }));
      // The same slots walked with the same rates from the same time to the same midnight: the same answer.
      const v = this.verdicts.get(m.id);
      if (v && v.k === k && v.rev === seen.rev && v.from === from && v.dayEnd === dayEnd) {
        if (v.needs) out.add(m.id);
        continue;
      }
      let needs = false;
      // The machine's sales of every slot, summed once for all its slots' "others".
      let total: number[] | undefined;
      for (const s of slots) {
        if (s.qty <= 0 || s.fault === true) {
          needs = true;
          break;
        }
        let rates = k.rates.get(s.code);
        if (!rates) {
          const sales = w.counts.get(m.id);
          total ??= machineTotal(sales);
          rates = this.ratesOf(sales?.get(s.code), total, new Date(m.created_at).getTime(), start, until, whole);
          k.rates.set(s.code, rates);
        }
        const empty = predictEmpty(rates, s.qty, from);
        if (empty !== null && empty <= dayEnd) {
          needs = true;
          break;
        }
      }
      this.verdicts.set(m.id, { k, rev: seen.rev, from, dayEnd, needs });
      if (needs) out.add(m.id);
    }
    this.warm = true;
    return { machines: out, of: r.rows.length, salesUntil: w.until };
  }

  /**
   * Bring the kept slots of `rows` up to date: the machines whose telemetry revision (migration 18) moved since
   * they were read, or never read, are read again; all of them (one read) when they are many, as at the first look.
   */
  private async readSlots(rows: readonly { id: string; rev: string | null }[], operator: string | null): Promise<void> {
    const stale = rows.filter((m) => this.seen.get(m.id)?.rev !== m.rev || !this.seen.has(m.id)).map((m) => m.id);
    if (stale.length === 0) return;
    const all = stale.length > 2000;
    const r = await this.db.query<{ id: string; slots: unknown; telemetry_at: Date | null; rev: string | null }>(
      `SELECT ms.machine_id AS id, ms.telemetry->'slots' AS slots, ms.telemetry_at, ms.telemetry_rev::text AS rev
       FROM machine_state ms JOIN machines m ON m.id = ms.machine_id
       WHERE ${all ? '$1::text IS NULL OR m.operator_id = $1' : 'ms.machine_id = ANY($1::text[])'}`,
      [all ? operator : stale],
    );
    // A machine without a state row has no slots (rev null, as the look read it).
    for (const id of stale) this.seen.set(id, { rev: null, slots: [], reportedAt: null });
    for (const m of r.rows) {
      const slots = slotsOf({ slots: m.slots } as Telemetry).filter((s) => typeof s?.code === 'string' && typeof s.qty === 'number');
      this.seen.set(m.id, { rev: m.rev, slots, reportedAt: m.telemetry_at ? new Date(m.telemetry_at).getTime() : null });
    }
  }

  /** A slot's rates as forecastMachine works them out (its own sales, the machine's others as the prior shape). */
  private ratesOf(sales: Uint32Array | undefined, total: readonly number[], createdAt: number, start: number, until: number, whole: number[]): number[] {
    // A machine provisioned within the window has sold only since then (at least an hour): forecastMachines' rule.
    const since = Math.min(until - HOUR_MS, Math.max(start, createdAt));
    const exposure = since === start ? whole : exposureHours(since, until);
    const own = new Array<number>(WEEK_HOURS);
    const others = new Array<number>(WEEK_HOURS);
    // Whole numbers: the machine's total less this slot's is exactly the sum of its other slots'.
    for (let h = 0; h < WEEK_HOURS; h++) {
      own[h] = sales?.[h] ?? 0;
      others[h] = total[h]! - own[h]!;
    }
    return slotRates(own, others, exposure);
  }
}

/** Sales per hour of the week of all of a machine's slots. */
function machineTotal(sales: ReadonlyMap<string, Uint32Array> | undefined): number[] {
  const t = new Array<number>(WEEK_HOURS).fill(0);
  for (const c of sales?.values() ?? []) for (let h = 0; h < WEEK_HOURS; h++) t[h]! += c[h]!;
  return t;
}

/** One service per store (its kept counts and rates), shared by the routes that show the KPI. */
const services = new WeakMap<Queryable, RestockTodayService>();
export function restockTodayOf(db: Queryable): RestockTodayService {
  let s = services.get(db);
  if (!s) services.set(db, (s = new RestockTodayService(db)));
  return s;
}
