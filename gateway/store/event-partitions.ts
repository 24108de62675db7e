/**
 * `events` is partitioned by the month (UTC) the gateway received each
 * event in: one table per month, `events_YYYYMM`. Receive time, not the
 * machine's clock: a month once over is never written again (new rows get
 * now()), so it can be archived and dropped whole, and a machine whose clock
 * is wrong cannot scatter rows into old months. Here: the month arithmetic,
 * making months, listing them. Who made them and when they go:
 * event-upkeep.ts; the files they go to: event-archive.ts.
 */
import type { Queryable } from './db.js';
import { sqlState } from './errors.js';

/** A month as 'YYYY-MM' (UTC). */
export type Month = string;

const MONTH = /^(\d{4})-(\d{2})$/;
const PARTITION = /^events_(\d{4})(\d{2})$/;

export function monthOf(ms: number): Month {
  return new Date(ms).toISOString().slice(0, 7);
}

/** The month `n` months after `m` (n may be negative). */
export function addMonths(m: Month, n: number): Month {
  const [, y, mo] = MONTH.exec(m) ?? fail(`bad month ${m}`);
  const d = new Date(Date.UTC(Number(y), Number(mo) - 1 + n, 1));
  return d.toISOString().slice(0, 7);
}

/** The first instant of the month, ISO (UTC). */
export function monthStart(m: Month): string {
  if (!MONTH.test(m)) fail(`bad month ${m}`);
  return `${m}-01T00:00:00.000Z`;
}

export function partitionName(m: Month): string {
  if (!MONTH.test(m)) fail(`bad month ${m}`);
  return `events_${m.replace('-', '')}`;
}

/** The month a partition name holds, or undefined for a name that is not one of ours. */
export function monthOfPartition(name: string): Month | undefined {
  const r = PARTITION.exec(name);
  return r ? `${r[1]}-${r[2]}` : undefined;
}

function fail(message: string): never {
  throw new Error(message);
}

/**
 * Make the month's partition unless it exists. Two gateways may try at
 * once: the loser's "already exists" is success. (The name is built from a
 * checked month, never from input.)
 */
export async function ensureEventMonth(db: Queryable, m: Month): Promise<string> {
  const name = partitionName(m);
  const exists = await db.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [name]);
  if (exists.rows[0]?.r) return name;
  try {
    await db.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF events FOR VALUES FROM ('${monthStart(m)}') TO ('${monthStart(addMonths(m, 1))}')`);
  } catch (e) {
    // 42P07 duplicate table, 23505 its catalogue row: another gateway made it between the look and the make.
    const state = sqlState(e);
    if (state !== '42P07' && state !== '23505') throw e;
  }
  return name;
}

/** The months `events` has a partition for, oldest first. */
export async function eventMonths(db: Queryable): Promise<Month[]> {
  const r = await db.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass`);
  return r.rows
    .map((x) => monthOfPartition(x.name))
    .filter((m): m is Month => m !== undefined)
    .sort();
}
