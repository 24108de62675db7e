/**
 * What ingest writes to the fleet store, and the only place its SQL lives:
 * which machines exist, the counts of refused messages by reason (audit
 * files' too), and one batch in one transaction (multi-row inserts from
 * array parameters, bodies as one JSON array, as few statements as the
 * batch allows: when batches are small a statement's round trip costs
 * more than its rows; idempotent on (machine, sequence number)), the daily
 * sales rollup kept in the same transaction (store/rollup.ts). The
 * ingester sees only the IngestStore interface, so its timing (batching,
 * backoff, splitting a refused batch) can be tried against a store that
 * fails on cue (test/gateway/ingester-unit.test.ts); this implementation is
 * tried against PGlite and PostgreSQL by the other gateway tests.
 */
import type { Db, Queryable } from '../store/db.js';
import { ping, sqlState } from '../store/errors.js';
import { ensureEventMonth, monthOf } from '../store/event-partitions.js';
import { canonicalJson, storable } from '../store/json.js';
import { ensureTelemetryPartition } from '../store/migrations.js';
import { HOURLY_FROM_INSERTED, ROLLUP_FROM_INSERTED } from '../store/rollup.js';
import type { MachineEvent, RefusedEvent, Rejection } from './messages.js';

/** A machine's event message as the store takes it (the ingester's own objects, which the hooks hand back). */
export interface EventMessage {
  readonly machine: string;
  /** Its newest sequence number. */
  readonly to: number;
  readonly events: readonly MachineEvent[];
  readonly refused: readonly RefusedEvent[];
}

export interface IngestBatch<M extends EventMessage> {
  /** When it is written, by the ingester's clock: telemetry goes to this day's partition. */
  readonly at: Date;
  readonly messages: readonly M[];
  /** Telemetry and status messages: their checked bodies, serialised again (the store never parses a machine's own bytes). */
  readonly telemetry: readonly { machine: string; text: string }[];
  readonly statuses: readonly { machine: string; online: boolean; text: string }[];
  /** Rejections by reason since the last write: how many, and the latest one's detail. */
  readonly rejections: ReadonlyMap<Rejection, { count: number; detail: string }>;
}

export interface WriteHooks<M extends EventMessage> {
  /** Inside the transaction: `message` has an event that differs from the one stored under its number (never acknowledged). */
  conflict(message: M, detail: string): void;
  /** Inside the transaction, after the events: the event messages without a conflict (command outcomes settle in the same transaction). */
  events?(tx: Queryable, messages: M[]): Promise<void>;
}

export interface WriteCounts {
  /** Events inserted (the others were stored already). */
  inserted: number;
  /** Refused events recorded (the others were recorded already). */
  refused: number;
}

export interface IngestStore {
  /** Of these machine ids, the ones the fleet has. */
  knownMachines(ids: readonly string[]): Promise<string[]>;
  /** Write a batch in one transaction: everything or, when it throws, nothing. */
  write<M extends EventMessage>(batch: IngestBatch<M>, hooks: WriteHooks<M>): Promise<WriteCounts>;
  /** Does the store answer a trivial query? (When a failed write's error alone cannot say whose fault it was: store/errors.ts.) */
  ping(): Promise<boolean>;
}

/** The fleet store (PostgreSQL or PGlite) as ingest writes to it. */
export function ingestStore(db: Db): IngestStore {
  return new SqlIngestStore(db);
}

const key = (machine: string, seq: number): string => `${machine}\u0000${seq}`;

/** Events as array parameters (one multi-row insert). */
interface EventRows {
  machines: string[];
  seqs: number[];
  types: string[];
  times: number[];
  bodies: string[];
}

interface RefusedRows {
  machines: string[];
  seqs: number[];
  times: (number | null)[];
  types: (string | null)[];
  reasons: string[];
  raws: string[];
}

class SqlIngestStore implements IngestStore {
  /** The day whose telemetry partition is known to exist. */
  private partitionDay = '';
  /** Months whose events partition is known to exist. */
  private readonly months = new Set<string>();

  constructor(private readonly db: Db) {}

  async knownMachines(ids: readonly string[]): Promise<string[]> {
    const found = await this.db.query<{ id: string }>('SELECT id FROM machines WHERE id = ANY($1::text[])', [ids], { name: 'ingest-known-machines' });
    return found.rows.map((r) => r.id);
  }

  ping(): Promise<boolean> {
    return ping(this.db);
  }

  async write<M extends EventMessage>(batch: IngestBatch<M>, hooks: WriteHooks<M>): Promise<WriteCounts> {
    const day = batch.at.toISOString().slice(0, 10);
    if (batch.telemetry.length > 0 && day !== this.partitionDay) {
      await ensureTelemetryPartition(this.db, batch.at);
      this.partitionDay = day;
    }
    const hasEvents = batch.messages.some((p) => p.events.length > 0);
    const ref: RefusedRows = { machines: [], seqs: [], times: [], types: [], reasons: [], raws: [] };
    for (const p of batch.messages) {
      for (const r of p.refused) {
        ref.machines.push(p.machine);
        ref.seqs.push(r.seq);
        ref.times.push(r.t);
        ref.types.push(r.type);
        ref.reasons.push(storable(r.reason.slice(0, 500)));
        ref.raws.push(storable(r.raw));
      }
    }
    const months = [monthOf(batch.at.getTime()), monthOf(Date.now())];
    try {
      return await this.writeOnce(batch, hooks, hasEvents, ref, months);
    } catch (e) {
      // No partition for the row: a month dropped under us, or the store's clock in a month not made yet.
      // Make the store's own month and try once more (nothing of the failed transaction stayed).
      if (!hasEvents || sqlState(e) !== '23514' || !/no partition/i.test((e as Error).message)) throw e;
      this.months.clear();
      const now = await this.db.query<{ m: string }>(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM') AS m`);
      return this.writeOnce(batch, hooks, hasEvents, ref, [...months, now.rows[0]!.m]);
    }
  }

  private async writeOnce<M extends EventMessage>(batch: IngestBatch<M>, hooks: WriteHooks<M>, hasEvents: boolean, ref: RefusedRows, months: string[]): Promise<WriteCounts> {
    if (hasEvents) {
      // The month of the batch (and of this process's clock): made ahead by the upkeep, made here if it was not.
      for (const m of months) {
        if (this.months.has(m)) continue;
        await ensureEventMonth(this.db, m);
        this.months.add(m);
      }
    }
    return this.db.transaction(async (tx) => {
      const counts: WriteCounts = { inserted: 0, refused: 0 };
      const conflicts = new Set<M>();
      let touched = false;
      let telemetryStored = false;
      if (hasEvents) {
        // The batch's telemetry goes in the statement that takes the lock (one round trip fewer).
        const { fresh, conflicting } = await sortOut(tx, batch.messages, batch.telemetry);
        telemetryStored = batch.telemetry.length > 0;
        if (fresh.machines.length > 0) {
          // One statement (INSERT_EVENTS: the events, their sales into the daily and hourly rollups, each machine's state). What was checked, serialised again: the store never parses a machine's own bytes.
          const touch = touchRows(batch.messages);
          const r = await tx.query<{ n: number }>(
            INSERT_EVENTS,
            // The bodies as one JSON array, not an array parameter whose quotes the driver escapes one by one (storeTelemetry).
            [fresh.machines, fresh.seqs, fresh.types, fresh.times, `[${fresh.bodies.join(',')}]`, touch.ids, touch.newest],
            { name: 'ingest-events' },
          );
          counts.inserted = Number(r.rows[0]!.n);
          touched = true;
        }
        for (const [p, detail] of conflicting) {
          conflicts.add(p);
          hooks.conflict(p, detail);
        }
      }
      if (ref.machines.length > 0) {
        const r = await tx.query(
          `INSERT INTO refused_events (machine_id, seq, machine_time, type, reason, raw)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[])
           ON CONFLICT (machine_id, seq) DO NOTHING
           RETURNING seq`,
          [ref.machines, ref.seqs, ref.times, ref.types, ref.reasons, ref.raws],
          { name: 'ingest-refused' },
        );
        counts.refused = r.rows.length;
      }
      if (batch.messages.length > 0) {
        if (!touched) {
          const touch = touchRows(batch.messages);
          await tx.query(TOUCH_ONLY, [touch.ids, touch.newest], { name: 'ingest-touch' });
        }
        await hooks.events?.(tx, batch.messages.filter((p) => !conflicts.has(p)));
      }
      if (batch.telemetry.length > 0 && !telemetryStored) await storeTelemetry(tx, batch.telemetry);
      if (batch.statuses.length > 0) await storeStatuses(tx, batch.statuses);
      for (const [reason, r] of batch.rejections) await countRejections(tx, reason, r.count, r.detail);
      return counts;
    });
  }
}

/** Add to the count of messages refused for `reason` (table rejections), with the latest one's detail. */
export async function countRejections(db: Queryable, reason: Rejection, count: number, detail: string): Promise<void> {
  await db.query(
    `INSERT INTO rejections (reason, count, last_at, last_detail) VALUES ($1, $2, now(), $3)
     ON CONFLICT (reason) DO UPDATE SET count = rejections.count + EXCLUDED.count, last_at = now(), last_detail = EXCLUDED.last_detail`,
    [reason, count, storable(detail.slice(0, 500))],
    { name: 'count-rejections' },
  );
}

/**
 * How far back a number can be resent, below the machine's highest stored
 * one: the firmware has at most 100 events unacknowledged (docs/uplink.md);
 * this leaves room for a firmware that sends more.
 */
export const RESEND_WINDOW = 10000;

/**
 * Which events of the batch are new, and which messages clash with what is
 * stored. `events` cannot keep (machine, seq) unique by itself (its key holds
 * the month), so this does, under a lock on each machine's event_marks row
 * (in id order: two gateways lock the same way round and never deadlock):
 * - above the machine's highest stored number: new, without looking;
 * - otherwise looked for in every month: found, it is a resend, which must be
 *   the same event; not found, it is new (it arrived after a later one);
 * - at or below the highest archived number and not found (its month went to
 *   a file): a resend, unless it is more than RESEND_WINDOW below the highest
 *   stored number, which only a journal that started over sends.
 * A different event under a stored number (a machine whose journal was wiped
 * and started again) is a conflict: the message is never acknowledged, so the
 * machine keeps it in flash and says so, rather than it being taken for a
 * duplicate and lost. Its other new events are stored.
 */
async function sortOut<M extends EventMessage>(
  tx: Queryable,
  messages: readonly M[],
  telemetry: readonly { machine: string; text: string }[],
): Promise<{ fresh: EventRows; conflicting: Map<M, string> }> {
  // Each machine's newest number in this batch: high is raised to it in the statement that takes the lock
  // (one statement, not two: the embedded store pays per statement). A number that then turns out to be a
  // conflict leaves high above what is stored, which only sends that number to be looked up (step 2).
  const newest = new Map<string, number>();
  for (const p of messages) for (const e of p.events) newest.set(p.machine, Math.max(newest.get(p.machine) ?? 0, e.seq));
  const ids = [...newest.keys()].sort();
  const params = [ids, ids.map((m) => newest.get(m)!)];
  const marks = await (telemetry.length > 0
    ? tx.query<MarkRow>(MARKS_AND_TELEMETRY, [...params, ...telemetryParams(telemetry)], { name: 'ingest-marks-telemetry' })
    : tx.query<MarkRow>(MARKS, params, { name: 'ingest-marks' }));
  const mark = new Map(marks.rows.map((r) => [r.machine_id, { high: Number(r.high_before), archived: Number(r.archived_through) }]));
  const look = { machines: [] as string[], seqs: [] as number[] };
  for (const p of messages) {
    const m = mark.get(p.machine)!;
    for (const e of p.events) {
      if (e.seq <= m.high || e.seq <= m.archived) {
        look.machines.push(p.machine);
        look.seqs.push(e.seq);
      }
    }
  }
  const byKey = new Map<string, { type: string; machine_time: string; body: unknown }>();
  if (look.machines.length > 0) {
    const found = await tx.query<{ machine_id: string; seq: string; type: string; machine_time: string; body: Record<string, unknown> }>(
      `SELECT e.machine_id, e.seq, e.type, e.machine_time, e.body FROM events e
       JOIN unnest($1::text[], $2::bigint[]) AS k(m, s) ON e.machine_id = k.m AND e.seq = k.s`,
      [look.machines, look.seqs],
      { name: 'ingest-lookup' },
    );
    for (const r of found.rows) byKey.set(key(r.machine_id, Number(r.seq)), r);
  }
  const fresh: EventRows = { machines: [], seqs: [], types: [], times: [], bodies: [] };
  const conflicting = new Map<M, string>();
  for (const p of messages) {
    const m = mark.get(p.machine)!;
    for (const e of p.events) {
      const k = key(p.machine, e.seq);
      const s = byKey.get(k);
      if (s) {
        if (!conflicting.has(p) && (s.type !== e.type || Number(s.machine_time) !== e.t || canonicalJson(s.body) !== canonicalJson(e.body))) {
          conflicting.set(p, `${p.machine}: event ${e.seq} differs from the one stored (${s.type} at ${s.machine_time}, now ${e.type} at ${e.t}); not acknowledged`);
        }
        continue;
      }
      if (e.seq <= m.archived) {
        if (m.high - e.seq >= RESEND_WINDOW && !conflicting.has(p)) {
          conflicting.set(p, `${p.machine}: event ${e.seq} is ${m.high - e.seq} below the newest stored (${m.high}), in an archived month: a journal that started over? not acknowledged`);
        }
        continue;
      }
      // Taken: the same number again in this batch is compared with this copy.
      byKey.set(k, { type: e.type, machine_time: String(e.t), body: e.body });
      fresh.machines.push(p.machine);
      fresh.seqs.push(e.seq);
      fresh.types.push(e.type);
      fresh.times.push(e.t);
      fresh.bodies.push(JSON.stringify(e.body));
    }
  }
  return { fresh, conflicting };
}

/** The machines of a batch's event messages, in id order (rows locked in one order: gateways never deadlock), and each one's newest number. */
function touchRows(messages: readonly EventMessage[]): { ids: string[]; newest: number[] } {
  const newest = new Map<string, number>();
  for (const p of messages) newest.set(p.machine, Math.max(newest.get(p.machine) ?? 0, p.to));
  const ids = [...newest.keys()].sort();
  return { ids, newest: ids.map((m) => newest.get(m)!) };
}

/**
 * Last seen, newest sequence number and event count per machine of the batch: the machines and their
 * numbers in parameters `ids` and `newest`; the events counted are the rows of `inserted` (a CTE with
 * machine_id; none: 0). A statement of its own, or a CTE.
 */
const TOUCH_MACHINES = (ids: string, newest: string, inserted?: string): string =>
  `INSERT INTO machine_state (machine_id, online, last_seen, last_seq, events)
     SELECT t.m, true, now(), t.s, ${inserted ? 'coalesce(c.n, 0)' : '0'} FROM unnest(${ids}::text[], ${newest}::bigint[]) WITH ORDINALITY AS t(m, s, i)
     ${inserted ? `LEFT JOIN (SELECT machine_id, count(*) AS n FROM ${inserted} GROUP BY machine_id) c ON c.machine_id = t.m` : ''} ORDER BY t.i
     ON CONFLICT (machine_id) DO UPDATE SET online = true, last_seen = now(),
       last_seq = GREATEST(machine_state.last_seq, EXCLUDED.last_seq), events = machine_state.events + EXCLUDED.events`;

/**
 * A batch's events in one statement (a statement is a round trip and a write, which cost more than the rows
 * when batches are small): the events, their sales into the daily rollup (only what this statement inserted:
 * resends add nothing) and each machine's state, with the count inserted. Built once: it is sent (by name)
 * with every batch.
 */
const INSERT_EVENTS = `WITH ins AS (
   INSERT INTO events (machine_id, seq, type, machine_time, body)
   SELECT m, s, ty, mt, b::jsonb FROM ROWS FROM (unnest($1::text[]), unnest($2::bigint[]), unnest($3::text[]), unnest($4::bigint[]), json_array_elements($5::json)) AS t(m, s, ty, mt, b)
   ON CONFLICT DO NOTHING
   RETURNING machine_id, type, body
 ), rollup AS (${ROLLUP_FROM_INSERTED('ins')}
 ), hourly AS (${HOURLY_FROM_INSERTED('ins')}
 ), touch AS (${TOUCH_MACHINES('$6', '$7', 'ins')})
 SELECT count(*)::int AS n FROM ins`;

/** The machines' state alone (a batch whose events were all stored already). */
const TOUCH_ONLY = TOUCH_MACHINES('$1', '$2');

/**
 * Every report into the history; the newest of each machine becomes its state (one statement: the
 * history's insert as a CTE). The bodies go as one JSON array (they are JSON text already) rather than an
 * array parameter, whose every quote the driver would escape: with reports of a kilobyte, that escaping
 * cost more CPU than the rest of the write. Machines in id order, so two gateways lock state rows the same way round.
 */
/**
 * The telemetry's writes as CTEs (`r`, `history`, and the state rows' upsert as `name`), their parameters
 * numbered from `$first`: the machines of the reports, the reports as one JSON array, each machine's newest
 * report (1-based) in machine id order (telemetryParams).
 */
const TELEMETRY_CTES = (first: number, name: string): string => `r AS MATERIALIZED (
       SELECT m, b::jsonb AS b, i FROM ROWS FROM (unnest($${first}::text[]), json_array_elements($${first + 1}::json)) WITH ORDINALITY AS t(m, b, i)
     ), history AS (
       INSERT INTO telemetry (machine_id, received_at, body) SELECT m, now(), b FROM r ORDER BY i
     ), ${name} AS (
     INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at)
     SELECT r.m, true, now(), r.b, now() FROM unnest($${first + 2}::int[]) WITH ORDINALITY AS k(i, o) JOIN r ON r.i = k.i ORDER BY k.o
     ON CONFLICT (machine_id) DO UPDATE SET online = true, last_seen = now(),
       -- Several gateways may store a machine's messages out of order: an older report never
       -- replaces a newer one (t is the journal's clock); a state older than ten minutes always
       -- gives way, so a machine whose clock went back (a wiped journal) is not stuck.
       telemetry = CASE WHEN machine_state.telemetry->>'t' IS NULL OR machine_state.telemetry_at < now() - interval '10 minutes'
                          OR (EXCLUDED.telemetry->>'t')::bigint >= (machine_state.telemetry->>'t')::bigint
                        THEN EXCLUDED.telemetry ELSE machine_state.telemetry END,
       telemetry_at = CASE WHEN machine_state.telemetry->>'t' IS NULL OR machine_state.telemetry_at < now() - interval '10 minutes'
                          OR (EXCLUDED.telemetry->>'t')::bigint >= (machine_state.telemetry->>'t')::bigint
                        THEN now() ELSE machine_state.telemetry_at END
     )`;

/**
 * Every report into the history; the newest of each machine becomes its state (one statement: the
 * history's insert and the state's upsert as CTEs). The bodies go as one JSON array (they are JSON text already) rather than an
 * array parameter, whose every quote the driver would escape: with reports of a kilobyte, that escaping
 * cost more CPU than the rest of the write. Machines in id order, so two gateways lock state rows the same way round.
 */
const STORE_TELEMETRY = `WITH ${TELEMETRY_CTES(1, 'state')} SELECT 1 AS done`;

/** The telemetry statement's parameters (TELEMETRY_CTES). */
function telemetryParams(telemetry: readonly { machine: string; text: string }[]): unknown[] {
  // Each machine's newest report (1-based, as SQL counts), in machine id order.
  const latest = new Map<string, number>();
  telemetry.forEach((t, i) => latest.set(t.machine, i + 1));
  const ids = [...latest.keys()].sort();
  return [telemetry.map((t) => t.machine), `[${telemetry.map((t) => t.text).join(',')}]`, ids.map((m) => latest.get(m)!)];
}

async function storeTelemetry(tx: Queryable, telemetry: readonly { machine: string; text: string }[]): Promise<void> {
  await tx.query(STORE_TELEMETRY, telemetryParams(telemetry), { name: 'ingest-telemetry' });
}

interface MarkRow {
  machine_id: string;
  high_before: string;
  archived_through: string;
}

/** Each machine's event_marks row locked (in id order) and raised to its newest number in the batch: $1 the machines, $2 their numbers. */
const MARKS_UPSERT = `INSERT INTO event_marks (machine_id, high) SELECT m, h FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS t(m, h, i) ORDER BY i
     ON CONFLICT (machine_id) DO UPDATE SET high_before = event_marks.high, high = GREATEST(event_marks.high, EXCLUDED.high)
     RETURNING machine_id, high_before, archived_through`;
const MARKS = MARKS_UPSERT;
/**
 * The same with the batch's telemetry written in it ($3 to $5, TELEMETRY_CTES): a round trip fewer for a batch of
 * events and telemetry. Nothing of one feeds the other, and the events' lookup and insert stay statements of their
 * own after it (the lookup must see what another gateway committed while this one waited for the lock).
 */
const MARKS_AND_TELEMETRY = `WITH ${TELEMETRY_CTES(3, 'telemetry_state')}
     ${MARKS_UPSERT}`;

/** The last status of each machine in the batch is the one that holds (a will after an online, or the reverse). */
async function storeStatuses(tx: Queryable, statuses: readonly { machine: string; online: boolean; text: string }[]): Promise<void> {
  // In id order: two gateways lock state rows the same way round.
  const list = [...new Map(statuses.map((s) => [s.machine, s])).values()].sort((a, b) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0));
  await tx.query(
    `INSERT INTO machine_state (machine_id, online, last_seen, status)
     SELECT m, o, now(), b FROM unnest($1::text[], $2::boolean[], $3::jsonb[]) WITH ORDINALITY AS t(m, o, b, i) ORDER BY i
     ON CONFLICT (machine_id) DO UPDATE SET online = EXCLUDED.online, last_seen = now(), status = EXCLUDED.status`,
    [list.map((s) => s.machine), list.map((s) => s.online), list.map((s) => s.text)],
    { name: 'ingest-statuses' },
  );
}
