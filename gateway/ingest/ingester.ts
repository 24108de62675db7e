/**
 * Ingest: parsed machine messages are collected for a few milliseconds and
 * written in one transaction (array-parameter multi-row inserts), idempotent
 * on (machine, sequence number). Only after the commit does a machine get its
 * acknowledgement, so the sync cursor on the machine never passes an event
 * the store does not hold.
 *
 * A database that is down holds the batch back (nothing acknowledged,
 * retried with backoff, machines keep the events in their journals); a batch
 * the database refuses for its data is split so one bad message cannot
 * poison the others.
 */
import type { Db, Queryable } from '../store/db.js';
import { ensureTelemetryPartition } from '../store/migrations.js';
import { parseMessage, type MachineEvent, type Rejection } from './messages.js';
import { canonicalJson } from '../store/json.js';
import { WaitingEvents } from './waiting.js';

export interface IngestOptions {
  /** Rows (events, telemetry and status messages) per transaction; a flush starts when this many wait. */
  maxBatchRows?: number;
  /** Flush at the latest this long after the first message of a batch arrived. */
  flushMs?: number;
  /** Beyond this many waiting messages, new ones are dropped unacknowledged (machines resend). */
  maxPendingMessages?: number;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Called with true when so much waits that the source should stop reading, false when it may go on. */
  onPressure?: (high: boolean) => void;
  /**
   * Command outcomes among the events, handed over inside the ingest
   * transaction; what it returns runs after the commit.
   */
  onCommandEvents?: (tx: Queryable, events: { machine: string; type: string; body: Record<string, unknown> }[]) => Promise<() => void>;
  /** After a commit: machines whose status says they came online. */
  onOnline?: (machines: string[]) => void;
  /** After a commit: the telemetry stored, the newest body per machine of the batch (the alert engine). */
  onTelemetry?: (telemetry: { machine: string; body: Record<string, unknown> }[]) => void;
}

const COMMAND_EVENTS = new Set(['command', 'command-rejected']);

export interface IngestStats {
  messages: number;
  events: number;
  duplicates: number;
  telemetry: number;
  statuses: number;
  rejected: Partial<Record<Rejection, number>>;
  batches: number;
  /** Messages dropped unacknowledged while the store was unavailable. */
  shed: number;
  /** Event messages dropped because the same events were already waiting to be committed (that copy's commit acknowledges them), and their events. */
  waitingDuplicates: number;
  waitingDuplicateEvents: number;
  storeErrors: number;
}

type Pending =
  | { kind: 'events'; machine: string; events: MachineEvent[]; text: string; at: number }
  | { kind: 'telemetry'; machine: string; body: Record<string, unknown>; text: string; at: number }
  | { kind: 'status'; machine: string; online: boolean; body: Record<string, unknown>; at: number };

const LATENCY_SAMPLES = 8192;

export class Ingester {
  readonly stats: IngestStats = { messages: 0, events: 0, duplicates: 0, telemetry: 0, statuses: 0, rejected: {}, batches: 0, shed: 0, waitingDuplicates: 0, waitingDuplicateEvents: 0, storeErrors: 0 };
  private readonly db: Db;
  private readonly ack: (machine: string, from: number, to: number) => void;
  private readonly options: Required<Omit<IngestOptions, 'onLog' | 'onPressure' | 'onCommandEvents' | 'onOnline' | 'onTelemetry'>>;
  private readonly onCommandEvents: IngestOptions['onCommandEvents'];
  private readonly onOnline: IngestOptions['onOnline'];
  private readonly onTelemetry: IngestOptions['onTelemetry'];
  private readonly onPressure: ((high: boolean) => void) | undefined;
  private pressure = false;
  private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  private pending: Pending[] = [];
  /** Event messages in `pending` or in the batch being written: a resend of them is dropped. */
  private readonly waitingEvents = new WaitingEvents();
  private pendingRows = 0;
  private urgent = false;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private retryMs = 0;
  private readonly knownMachines = new Set<string>();
  private readonly unknownUntil = new Map<string, number>();
  private rejectionsToStore = new Map<Rejection, { count: number; detail: string }>();
  private partitionDay = '';
  private closed = false;
  /** Receive-to-commit times of recent messages, ms (a ring). */
  readonly latencies = new Float64Array(LATENCY_SAMPLES);
  /** When each of those messages was received (performance.now()), so a window can be picked. */
  private readonly receivedAt = new Float64Array(LATENCY_SAMPLES);
  private latencyCount = 0;

  constructor(db: Db, ack: (machine: string, from: number, to: number) => void, options: IngestOptions = {}) {
    this.db = db;
    this.ack = ack;
    this.options = { maxBatchRows: options.maxBatchRows ?? 1000, flushMs: options.flushMs ?? 10, maxPendingMessages: options.maxPendingMessages ?? 50000 };
    this.log = options.onLog ?? (() => {});
    this.onPressure = options.onPressure;
    this.onCommandEvents = options.onCommandEvents;
    this.onOnline = options.onOnline;
    this.onTelemetry = options.onTelemetry;
  }

  /** A message arrived on `topic`. Never throws: bad input is counted and logged. */
  submit(topic: string, payload: Uint8Array): void {
    if (this.closed) {
      // Shutting down: not stored, not acknowledged; the machine sends it again.
      this.stats.shed++;
      return;
    }
    this.stats.messages++;
    const m = parseMessage(topic, payload);
    if (!m.ok) return this.reject(m.reason, m.detail);
    if (!this.knownMachines.has(m.machine)) {
      const until = this.unknownUntil.get(m.machine);
      if (until !== undefined && until > Date.now()) return this.reject('unknown-machine', m.machine);
      // Not seen yet: look it up as part of the flush.
    }
    if (m.kind === 'events' && this.waitingEvents.covers(m.machine, m.events)) {
      // A resend of events still waiting for the store: queued again it would be written twice.
      this.stats.waitingDuplicates++;
      this.stats.waitingDuplicateEvents += m.events.length;
      return;
    }
    if (this.pending.length >= this.options.maxPendingMessages) {
      this.stats.shed++;
      return;
    }
    const at = performance.now();
    const p: Pending =
      m.kind === 'events'
        ? { kind: 'events', machine: m.machine, events: m.events, text: m.text, at }
        : m.kind === 'telemetry'
          ? { kind: 'telemetry', machine: m.machine, body: m.body, text: m.text, at }
          : { kind: 'status', machine: m.machine, online: m.online, body: m.body, at };
    this.pending.push(p);
    this.pendingRows += rows(p);
    if (p.kind === 'events') this.waitingEvents.add(p);
    // A command's outcome has someone waiting for it (an API call): no batching delay.
    if (p.kind === 'events' && !this.urgent) {
      for (const e of p.events) if (COMMAND_EVENTS.has(e.type)) this.urgent = true;
      if (this.urgent && this.timer && this.retryMs === 0) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    }
    if (!this.pressure && this.pendingRows > 2 * this.options.maxBatchRows) {
      // Let the broker hold the rest (it queues QoS 1 for us) rather than this process's heap.
      this.pressure = true;
      this.onPressure?.(true);
    }
    this.schedule();
  }

  private reject(reason: Rejection, detail: string): void {
    const n = (this.stats.rejected[reason] ?? 0) + 1;
    this.stats.rejected[reason] = n;
    // Logged for the first few of each reason and then every thousandth, so a flood cannot drown the log.
    if (n <= 5 || n % 1000 === 0) this.log('warn', `rejected (${reason}, ${n} so far): ${detail}`);
    const r = this.rejectionsToStore.get(reason);
    if (r) {
      r.count++;
      r.detail = detail;
    } else {
      this.rejectionsToStore.set(reason, { count: 1, detail });
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.draining || this.timer) return;
    const delay = this.retryMs > 0 ? this.retryMs : this.pendingRows >= this.options.maxBatchRows || this.urgent ? 0 : this.options.flushMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  /** Write what is waiting now (tests and shutdown call it directly); joins a write under way. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.draining) return this.draining;
    this.draining = this.drain();
    try {
      await this.draining;
    } finally {
      this.draining = undefined;
      if (this.pending.length > 0 || this.rejectionsToStore.size > 0) this.schedule();
    }
  }

  /** One writer: batches of at most maxBatchRows, one transaction each, until nothing waits or the store is down. */
  private async drain(): Promise<void> {
    while (this.pending.length > 0 || this.rejectionsToStore.size > 0) {
      let take = 0;
      let taken = 0;
      while (take < this.pending.length && taken < this.options.maxBatchRows) taken += rows(this.pending[take++]!);
      const batch = this.pending.slice(0, take);
      this.urgent = false;
      const rejections = this.rejectionsToStore;
      this.pending = this.pending.slice(take);
      this.pendingRows -= taken;
      this.rejectionsToStore = new Map();
      try {
        await this.write(batch, rejections);
      } finally {
        // Even if the write threw: a message kept as waiting after it is gone would swallow its resends.
        this.waitingEvents.settle(batch, this.pending);
      }
      if (this.pressure && this.pendingRows < this.options.maxBatchRows) {
        this.pressure = false;
        this.onPressure?.(false);
      }
      // The store is down: come back after the backoff (schedule() in flush()).
      if (this.retryMs > 0) return;
    }
  }

  private async write(batch: Pending[], rejections: Map<Rejection, { count: number; detail: string }>): Promise<void> {
    try {
      const ok = await this.admit(batch);
      const conflicts = await this.commit(ok, rejections);
      this.retryMs = 0;
      this.acknowledge(ok.filter((p) => !conflicts.has(p)));
    } catch (e) {
      const err = e as { code?: string; message?: string };
      if (isDataError(err) && batch.length > 1) {
        // One message the database will not take: find it, keep the rest.
        this.log('warn', `batch of ${batch.length} refused (${err.message ?? String(e)}); writing its messages one by one`);
        for (const item of batch) await this.write([item], new Map());
        if (rejections.size > 0) await this.write([], rejections);
        return;
      }
      if (isDataError(err)) {
        this.reject('db-error', `${batch[0]?.machine ?? ''}: ${err.message ?? String(e)}`);
        return;
      }
      // The store is unavailable: hold everything back and try again.
      this.stats.storeErrors++;
      this.retryMs = Math.min(10000, Math.max(250, this.retryMs * 2));
      if (this.stats.storeErrors <= 3 || this.stats.storeErrors % 100 === 0) this.log('error', `store unavailable (${err.message ?? String(e)}); retrying in ${this.retryMs} ms`);
      this.pending = batch.concat(this.pending);
      for (const item of batch) this.pendingRows += rows(item);
      for (const [reason, r] of rejections) {
        const mine = this.rejectionsToStore.get(reason);
        if (mine) mine.count += r.count;
        else this.rejectionsToStore.set(reason, r);
      }
    }
  }

  /** Drop messages from machines the store does not know (looked up once, remembered). */
  private async admit(batch: Pending[]): Promise<Pending[]> {
    const unknown = [...new Set(batch.map((p) => p.machine).filter((m) => !this.knownMachines.has(m)))];
    if (unknown.length > 0) {
      const found = await this.db.query<{ id: string }>('SELECT id FROM machines WHERE id = ANY($1::text[])', [unknown]);
      for (const r of found.rows) this.knownMachines.add(r.id);
    }
    const ok: Pending[] = [];
    for (const p of batch) {
      if (this.knownMachines.has(p.machine)) ok.push(p);
      else {
        this.unknownUntil.set(p.machine, Date.now() + 10000);
        this.reject('unknown-machine', p.machine);
      }
    }
    return ok;
  }

  /** Returns the messages whose events clash with different events already stored under the same numbers. */
  private async commit(batch: Pending[], rejections: Map<Rejection, { count: number; detail: string }>): Promise<Set<Pending>> {
    const machines: string[] = [];
    const messageMachines: string[] = [];
    const messages: string[] = [];
    const telemetry: { machine: string; body: string }[] = [];
    const statuses: { machine: string; online: boolean; body: string }[] = [];
    for (const p of batch) {
      if (p.kind === 'events') {
        messageMachines.push(p.machine);
        messages.push(p.text);
        for (let i = 0; i < p.events.length; i++) machines.push(p.machine);
      } else if (p.kind === 'telemetry') {
        telemetry.push({ machine: p.machine, body: p.text });
      } else {
        statuses.push({ machine: p.machine, online: p.online, body: JSON.stringify(p.body) });
      }
    }
    const day = new Date().toISOString().slice(0, 10);
    if (telemetry.length > 0 && day !== this.partitionDay) {
      await ensureTelemetryPartition(this.db, new Date());
      this.partitionDay = day;
    }
    const conflicts = new Set<Pending>();
    let afterCommit: (() => void) | undefined;
    const inserted = await this.db.transaction(async (tx) => {
      let count = 0;
      if (machines.length > 0) {
        // Each message's events array is expanded by the database (checked above, field by field).
        const r = await tx.query<{ machine_id: string; seq: string }>(
          `INSERT INTO events (machine_id, seq, type, machine_time, body)
           SELECT m.machine, (e->>'seq')::bigint, e->>'type', (e->>'t')::bigint, e
           FROM unnest($1::text[], $2::jsonb[]) AS m(machine, msg), jsonb_array_elements(m.msg->'events') AS e
           ON CONFLICT (machine_id, seq) DO NOTHING
           RETURNING machine_id, seq`,
          [messageMachines, messages],
        );
        count = r.rows.length;
        if (count < machines.length) await this.checkResends(tx, batch, r.rows, conflicts);
        await this.touchMachines(tx, batch, r.rows);
        if (this.onCommandEvents) {
          const commandEvents: { machine: string; type: string; body: Record<string, unknown> }[] = [];
          for (const p of batch) {
            if (p.kind !== 'events' || conflicts.has(p)) continue;
            for (const e of p.events) if (COMMAND_EVENTS.has(e.type)) commandEvents.push({ machine: p.machine, type: e.type, body: e.body });
          }
          if (commandEvents.length > 0) afterCommit = await this.onCommandEvents(tx, commandEvents);
        }
      }
      if (telemetry.length > 0) {
        await tx.query(
          `INSERT INTO telemetry (machine_id, received_at, body) SELECT m, now(), b FROM unnest($1::text[], $2::jsonb[]) AS t(m, b)`,
          [telemetry.map((t) => t.machine), telemetry.map((t) => t.body)],
        );
        // The newest telemetry per machine becomes its state.
        const latest = new Map(telemetry.map((t) => [t.machine, t.body]));
        await tx.query(
          `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at)
           SELECT m, true, now(), b, now() FROM unnest($1::text[], $2::jsonb[]) AS t(m, b)
           ON CONFLICT (machine_id) DO UPDATE SET online = true, last_seen = now(),
             -- Several gateways may store a machine's messages out of order: an older report never
             -- replaces a newer one (t is the journal's clock); a state older than ten minutes always
             -- gives way, so a machine whose clock went back (a wiped journal) is not stuck.
             telemetry = CASE WHEN machine_state.telemetry->>'t' IS NULL OR machine_state.telemetry_at < now() - interval '10 minutes'
                                OR (EXCLUDED.telemetry->>'t')::bigint >= (machine_state.telemetry->>'t')::bigint
                              THEN EXCLUDED.telemetry ELSE machine_state.telemetry END,
             telemetry_at = CASE WHEN machine_state.telemetry->>'t' IS NULL OR machine_state.telemetry_at < now() - interval '10 minutes'
                                OR (EXCLUDED.telemetry->>'t')::bigint >= (machine_state.telemetry->>'t')::bigint
                              THEN now() ELSE machine_state.telemetry_at END`,
          [[...latest.keys()], [...latest.values()]],
        );
      }
      if (statuses.length > 0) {
        // The last status of each machine in the batch is the one that holds (a will after an online, or the reverse).
        const latest = new Map(statuses.map((s) => [s.machine, s]));
        const list = [...latest.values()];
        await tx.query(
          `INSERT INTO machine_state (machine_id, online, last_seen, status)
           SELECT m, o, now(), b FROM unnest($1::text[], $2::boolean[], $3::jsonb[]) AS t(m, o, b)
           ON CONFLICT (machine_id) DO UPDATE SET online = EXCLUDED.online, last_seen = now(), status = EXCLUDED.status`,
          [list.map((s) => s.machine), list.map((s) => s.online), list.map((s) => s.body)],
        );
      }
      for (const [reason, r] of rejections) {
        await tx.query(
          `INSERT INTO rejections (reason, count, last_at, last_detail) VALUES ($1, $2, now(), $3)
           ON CONFLICT (reason) DO UPDATE SET count = rejections.count + EXCLUDED.count, last_at = now(), last_detail = EXCLUDED.last_detail`,
          [reason, r.count, r.detail.slice(0, 500)],
        );
      }
      return count;
    });
    afterCommit?.();
    if (this.onOnline) {
      const online = statuses.filter((st) => st.online).map((st) => st.machine);
      if (online.length > 0) this.onOnline(online);
    }
    if (this.onTelemetry && telemetry.length > 0) {
      // Only the newest body of each machine matters: it is its state now.
      const latest = new Map<string, Record<string, unknown>>();
      for (const p of batch) if (p.kind === 'telemetry') latest.set(p.machine, p.body);
      this.onTelemetry([...latest].map(([machine, body]) => ({ machine, body })));
    }
    this.stats.batches++;
    this.stats.events += inserted;
    this.stats.duplicates += machines.length - inserted;
    this.stats.telemetry += telemetry.length;
    this.stats.statuses += statuses.length;
    const now = performance.now();
    for (const p of batch) {
      const i = this.latencyCount++ % LATENCY_SAMPLES;
      this.latencies[i] = now - p.at;
      this.receivedAt[i] = p.at;
    }
    return conflicts;
  }

  /**
   * Events not inserted were already stored: a resend must be the same event.
   * A different event under a stored number (a machine whose journal was
   * wiped and started again) is never acknowledged, so the machine keeps it
   * in flash and says so, rather than it being taken for a duplicate and lost.
   */
  private async checkResends(tx: Queryable, batch: Pending[], inserted: { machine_id: string; seq: string }[], conflicts: Set<Pending>): Promise<void> {
    const fresh = new Set(inserted.map((r) => `${r.machine_id}\u0000${Number(r.seq)}`));
    const machines: string[] = [];
    const seqs: number[] = [];
    for (const p of batch) {
      if (p.kind !== 'events') continue;
      for (const e of p.events) {
        if (!fresh.has(`${p.machine}\u0000${e.seq}`)) {
          machines.push(p.machine);
          seqs.push(e.seq);
        }
      }
    }
    const stored = await tx.query<{ machine_id: string; seq: string; type: string; machine_time: string; body: Record<string, unknown> }>(
      `SELECT e.machine_id, e.seq, e.type, e.machine_time, e.body FROM events e
       JOIN unnest($1::text[], $2::bigint[]) AS k(m, s) ON e.machine_id = k.m AND e.seq = k.s`,
      [machines, seqs],
    );
    const byKey = new Map(stored.rows.map((r) => [`${r.machine_id}\u0000${Number(r.seq)}`, r]));
    for (const p of batch) {
      if (p.kind !== 'events') continue;
      for (const e of p.events) {
        const s = byKey.get(`${p.machine}\u0000${e.seq}`);
        if (s && (s.type !== e.type || Number(s.machine_time) !== e.t || canonicalJson(s.body) !== canonicalJson(e.body))) {
          conflicts.add(p);
          this.reject('seq-conflict', `${p.machine}: event ${e.seq} differs from the one stored (${s.type} at ${s.machine_time}, now ${e.type} at ${e.t}); not acknowledged`);
          break;
        }
      }
    }
  }

  /** Last seen, newest sequence number and event count per machine in the batch. */
  private async touchMachines(tx: Queryable, batch: Pending[], inserted: { machine_id: string }[]): Promise<void> {
    const newest = new Map<string, number>();
    for (const p of batch) if (p.kind === 'events') newest.set(p.machine, Math.max(newest.get(p.machine) ?? 0, p.events[p.events.length - 1]!.seq));
    const counts = new Map<string, number>();
    for (const r of inserted) counts.set(r.machine_id, (counts.get(r.machine_id) ?? 0) + 1);
    const ids = [...newest.keys()];
    await tx.query(
      `INSERT INTO machine_state (machine_id, online, last_seen, last_seq, events)
       SELECT m, true, now(), s, c FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS t(m, s, c)
       ON CONFLICT (machine_id) DO UPDATE SET online = true, last_seen = now(),
         last_seq = GREATEST(machine_state.last_seq, EXCLUDED.last_seq), events = machine_state.events + EXCLUDED.events`,
      [ids, ids.map((m) => newest.get(m)!), ids.map((m) => counts.get(m) ?? 0)],
    );
  }

  /**
   * One acknowledgement per machine per run of consecutive numbers in the
   * batch: a machine with twenty messages in flight gets one ack, not twenty
   * (the broker and this process each handle a twentieth of the packets).
   */
  private acknowledge(batch: Pending[]): void {
    const open = new Map<string, { from: number; to: number }>();
    for (const p of batch) {
      if (p.kind !== 'events') continue;
      const from = p.events[0]!.seq;
      const to = p.events[p.events.length - 1]!.seq;
      const run = open.get(p.machine);
      if (run && from === run.to + 1) run.to = to;
      else {
        if (run) this.ack(p.machine, run.from, run.to);
        open.set(p.machine, { from, to });
      }
    }
    for (const [machine, run] of open) this.ack(machine, run.from, run.to);
  }

  /** Receive-to-commit latency percentile over recent messages (those received at or after `receivedSince`, a performance.now() time), ms. */
  latency(percentile: number, receivedSince = -Infinity): number {
    const sorted: number[] = [];
    for (let i = 0; i < Math.min(this.latencyCount, LATENCY_SAMPLES); i++) if (this.receivedAt[i]! >= receivedSince) sorted.push(this.latencies[i]!);
    const n = sorted.length;
    if (n === 0) return 0;
    sorted.sort((a, b) => a - b);
    return sorted[Math.min(n - 1, Math.floor((percentile / 100) * n))]!;
  }

  /** Latencies recorded since the last reset (more than the ring holds: only the newest are kept). */
  get latencySamples(): number {
    return this.latencyCount;
  }

  /** Machines just provisioned: accepted at once, even if they were refused a moment ago. */
  known(ids: readonly string[]): void {
    for (const id of ids) {
      this.knownMachines.add(id);
      this.unknownUntil.delete(id);
    }
  }

  /** Forget the latencies recorded so far (benchmarks measure a window). */
  resetLatency(): void {
    this.latencyCount = 0;
  }

  get waiting(): number {
    return this.pending.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
  }
}

/** What a message costs a transaction: its events, or one row. */
function rows(p: Pending): number {
  return p.kind === 'events' ? p.events.length : 1;
}


/** SQLSTATE classes that mean "this data", not "this database": data exceptions, integrity, syntax. */
function isDataError(e: { code?: string }): boolean {
  return typeof e.code === 'string' && /^(22|23|42)/.test(e.code);
}
