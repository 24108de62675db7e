/**
 * Upkeep of `events` months, run by the gateway at start and every hour (on
 * its clock and timers, so tests drive it in virtual time): make this month
 * and the next few ahead, and, with a retention, take each month wholly older
 * than it out of the store: written to an archive file first (when there is
 * an archive directory), then dropped. A month loaded back from a file is
 * held and left alone until released. Several gateways may run it at once:
 * each step is safe to repeat, and the drop is decided under a lock on the
 * month's event_archives row (which a load takes too).
 */
import { REAL_CLOCK, REAL_TIMERS, type Clock, type TimerId, type Timers } from '../time.js';
import type { Db, Queryable } from './db.js';
import { writeArchive, type ArchiveFile } from './event-archive.js';
import { addMonths, ensureEventMonth, eventMonths, monthOf, partitionName, type Month } from './event-partitions.js';

export interface EventUpkeepOptions {
  /** Months kept in the store besides the current one (0: all, forever). A month goes once it ended this many months ago. */
  retentionMonths?: number;
  /** Where months past the retention are written before they are dropped; null: dropped without a file. */
  archiveDir: string | null;
  /** Months made ahead of the current one (2). */
  monthsAhead?: number;
  /** How often it runs (3,600,000 ms). */
  everyMs?: number;
  clock?: Clock;
  timers?: Timers;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export interface UpkeepResult {
  made: Month[];
  archived: ArchiveFile[];
  dropped: Month[];
  /** Past the retention but loaded back from a file, so kept. */
  held: Month[];
}

export class EventUpkeep {
  private timer: TimerId | undefined;
  private running: Promise<UpkeepResult> | undefined;
  private readonly clock: Clock;
  private readonly timers: Timers;

  constructor(
    private readonly db: Db,
    private readonly options: EventUpkeepOptions,
  ) {
    const r = options.retentionMonths ?? 0;
    if (!Number.isInteger(r) || r < 0) throw new Error(`events retention must be a whole number of months, got ${r}`);
    this.clock = options.clock ?? REAL_CLOCK;
    this.timers = options.timers ?? REAL_TIMERS;
  }

  /** Run now and then every `everyMs`; a run's failure is logged and the next one tries again. */
  start(): void {
    const go = (): void => {
      // A tick while a pass is under way is that pass's.
      if (this.running) return;
      this.run().catch((e: Error) => this.options.onLog?.('warn', `events upkeep: ${e.message}`));
    };
    go();
    this.timer = this.timers.repeat(go, this.options.everyMs ?? 3600_000);
  }

  /** One pass, by the clock as it is now (after any pass under way: never two at once). */
  async run(): Promise<UpkeepResult> {
    while (this.running) await this.running.catch(() => {});
    const p = this.pass().finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  async close(): Promise<void> {
    this.timers.clear(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
  }

  private async pass(): Promise<UpkeepResult> {
    const log = this.options.onLog ?? (() => {});
    const now = monthOf(this.clock.now());
    const result: UpkeepResult = { made: [], archived: [], dropped: [], held: [] };
    const have = new Set(await eventMonths(this.db));
    for (let i = 0; i <= (this.options.monthsAhead ?? 2); i++) {
      const m = addMonths(now, i);
      if (have.has(m)) continue;
      await ensureEventMonth(this.db, m);
      result.made.push(m);
    }
    const keep = this.options.retentionMonths ?? 0;
    if (keep === 0) return result;
    // A month goes when it ended `keep` months ago or more: month m ends at the start of m+1.
    const oldest = addMonths(now, -keep);
    const held = new Set(
      (await this.db.query<{ month: string }>('SELECT month FROM event_archives WHERE loaded_at IS NOT NULL')).rows.map((r) => r.month),
    );
    for (const m of [...have].sort()) {
      if (m >= oldest) break;
      if (held.has(m)) {
        result.held.push(m);
        continue;
      }
      const file = this.options.archiveDir === null ? undefined : await writeArchive(this.db, m, this.options.archiveDir);
      const dropped = await this.db.transaction((tx) => dropMonth(tx, m, file));
      if (file) result.archived.push(file);
      if (dropped) {
        result.dropped.push(m);
        log('info', `events: ${m} ${file ? `archived to ${file.file} (${file.rows} events, ${file.bytes} bytes) and ` : ''}dropped`);
      } else {
        result.held.push(m);
        log('info', `events: ${m} was loaded back while it was being archived: kept`);
      }
    }
    return result;
  }
}

/**
 * Drop month `m` unless it was loaded back meanwhile. The machines' marks
 * say what was archived first (a resend of those numbers is then known), in
 * id order as ingest locks them, and before `events` is locked whole by the
 * drop: ingest locks marks before it writes events, so the two never wait on
 * each other in a circle.
 */
async function dropMonth(tx: Queryable, m: Month, file: ArchiveFile | undefined): Promise<boolean> {
  const row = await tx.query<{ loaded_at: string | null }>(
    `INSERT INTO event_archives (month) VALUES ($1) ON CONFLICT (month) DO UPDATE SET loaded_at = event_archives.loaded_at RETURNING loaded_at`,
    [m],
  );
  if (row.rows[0]!.loaded_at !== null) return false;
  const name = partitionName(m);
  const exists = await tx.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [name]);
  if (!exists.rows[0]?.r) return true;
  let highest: Map<string, number>;
  if (file) highest = file.highest;
  else {
    const r = await tx.query<{ machine_id: string; high: string }>(`SELECT machine_id, max(seq) AS high FROM ${name} GROUP BY machine_id`);
    highest = new Map(r.rows.map((x) => [x.machine_id, Number(x.high)]));
  }
  const ids = [...highest.keys()].sort();
  await tx.query(
    `INSERT INTO event_marks (machine_id, high, archived_through)
     SELECT m, h, h FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS t(m, h, i) ORDER BY i
     ON CONFLICT (machine_id) DO UPDATE SET high = GREATEST(event_marks.high, EXCLUDED.high),
       archived_through = GREATEST(event_marks.archived_through, EXCLUDED.archived_through)`,
    [ids, ids.map((id) => highest.get(id)!)],
  );
  // Without a file: the month is recorded as dropped (archived_at) with no file to load back.
  await tx.query(`UPDATE event_archives SET file = $2, rows = $3, bytes = $4, sha256 = $5, archived_at = now() WHERE month = $1`, [
    m,
    file?.file ?? null,
    file?.rows ?? null,
    file?.bytes ?? null,
    file?.sha256 ?? null,
  ]);
  await tx.query(`DROP TABLE ${name}`);
  return true;
}

/** Let upkeep take a month loaded back from a file out again (at its next run, written again and dropped). */
export async function releaseMonth(db: Queryable, m: Month): Promise<boolean> {
  const r = await db.query('UPDATE event_archives SET loaded_at = NULL WHERE month = $1 AND loaded_at IS NOT NULL RETURNING month', [m]);
  return r.rows.length > 0;
}
