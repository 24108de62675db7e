/**
 * Ingest: parsed machine messages are collected for a few milliseconds and
 * written in one transaction through the ingest store (store.ts), idempotent
 * on (machine, sequence number). Only after the commit does a machine get its
 * acknowledgement, so the sync cursor on the machine never passes an event
 * the store does not hold.
 *
 * When a write fails, the store's own answer decides (store/errors.ts):
 * - the store is down: everything is held back and tried again with
 *   backoff; nothing is refused or acknowledged, machines keep their events;
 * - the data: a batch is split into its messages, a message into its
 *   events, and the one event the store will not take is recorded as refused
 *   (refused_events, with the store's reason) and acknowledged, so it is never
 *   sent again and nothing waits behind it;
 * - neither is clear: tried a few times more, then taken for the data's.
 *
 * Stalls are said out loud: while messages wait and nothing commits, the
 * log says so every `stallMs`, and health() reports it.
 *
 * About 640 lines kept in one file on purpose: batching, backoff and the
 * poisoned-batch split share one queue and one in-flight batch, and the
 * rule "acknowledged only after the commit" is easiest to check where all
 * three are; parsing, the store's SQL, the waiting list and latency figures
 * are in their own files.
 */
import type { Queryable } from '../store/db.js';
import { classifyStoreError, describeStoreError } from '../store/errors.js';
import { storable } from '../store/json.js';
import { REAL_CLOCK, REAL_TIMERS, type Clock, type TimerId, type Timers } from '../time.js';
import { checkEvent } from './contract.js';
import { KnownMachines } from './known-machines.js';
import { LatencyRing } from './latency.js';
import { parseMessage, type EventCheck, type MachineEvent, type RefusedEvent, type Rejection } from './messages.js';
import type { IngestStore } from './store.js';
import { WaitingEvents } from './waiting.js';

/** The uplink contract as parseMessage asks it: why an event is refused, or undefined. */
function contractCheck(e: Record<string, unknown>): string | undefined {
  const r = checkEvent(e);
  return r.ok ? undefined : r.reason;
}

export interface IngestOptions {
  /** Rows (events, telemetry and status messages) per transaction; a flush starts when this many wait. */
  maxBatchRows?: number;
  /** Flush at the latest this long after the first message of a batch arrived. */
  flushMs?: number;
  /** Beyond this many waiting messages, new ones are dropped unacknowledged (machines resend). */
  maxPendingMessages?: number;
  /** No commit for this long while messages wait: a stall, logged (again every stallMs) and reported by health(). */
  stallMs?: number;
  /** While the store is down, a line at most this often (the first failure is always logged). */
  storeLogEveryMs?: number;
  /** First wait before a write that failed without a clear reason is tried again (50 ms, doubling). */
  suspectRetryMs?: number;
  /**
   * Longest wait between tries while the store is down (2 s): a try costs one failed connection,
   * and the wait after the store is back is pure catch-up time for every machine.
   */
  maxRetryMs?: number;
  /** The wall clock (stalls, the store's outage, refusals of unknown machines) and the timers batches and retries wait on: real time unless given (tests drive a virtual clock). */
  clock?: Clock;
  timers?: Timers;
  /** The per-event contract (docs/uplink.md; gateway/ingest/contract.ts unless given). */
  checkEvent?: EventCheck;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Called with true when so much waits that the source should stop reading, false when it may go on. */
  onPressure?: (high: boolean) => void;
  /**
   * Command outcomes among the events (and an update's reports), handed over
   * inside the ingest transaction; what it returns runs after the commit.
   */
  onCommandEvents?: (tx: Queryable, events: { machine: string; type: string; body: Record<string, unknown> }[]) => Promise<() => void>;
  /** After a commit: machines whose status says they came online. */
  onOnline?: (machines: string[]) => void;
  /**
   * After a commit: the machines whose telemetry was stored (the alert engine reads their state from the
   * store), once each, and whether their newest report of the batch has an `update` field (a download's
   * progress: rollouts look).
   */
  onTelemetry?: (telemetry: { machine: string; update: boolean }[]) => void;
}

/** Events that settle commands (the command service's COMMAND_EVENT_TYPES): outcomes, refusals, an update's reports. */
const COMMAND_EVENTS = new Set(['command', 'command-rejected', 'update-begin', 'update']);
/**
 * A write whose failure is neither clearly the store's nor the data's (a lost connection while the
 * store answers pings, a deadlock): a batch is split at once (writing its parts alone costs little);
 * a part that fails alone is tried this many times, with backoff, then taken for the data's fault.
 */
const SUSPECT_TRIES = 5;

export interface IngestStats {
  messages: number;
  events: number;
  duplicates: number;
  /** Events refused for their content, recorded in refused_events and acknowledged. */
  refusedEvents: number;
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

export interface IngestHealth {
  /** Messages waiting to be written. */
  waiting: number;
  /** How long messages have waited with nothing committed (0: not stalled). */
  stalledMs: number;
  storeAvailable: boolean;
  /** The last store failure, when the store is unavailable. */
  lastError: string | undefined;
  /** Since the last commit (undefined: none yet). */
  lastCommitAgoMs: number | undefined;
}

/**
 * Told once a submitted message is done with: 'stored' when it is committed (or
 * recorded as refused, or rejected for good: nothing to keep), 'dropped' when it
 * was let go unstored and the source should hand it over again.
 */
export type Settled = (outcome: 'stored' | 'dropped') => void;

/** One submitted message's settlement, shared by the parts it may be split into. */
interface Ticket {
  left: number;
  settled: Settled;
}

/**
 * A message waiting for its commit. Telemetry and status keep only their checked text (what the store
 * takes), not the parsed body: a report is some sixty objects, and whatever waits for a commit while a
 * backlog builds outlives the young generation, which made the collector a quarter of the gateway's
 * time at three times the fleet's rate (issue 16).
 */
type Pending = (
  | { kind: 'events'; machine: string; from: number; to: number; events: MachineEvent[]; refused: RefusedEvent[] }
  | { kind: 'telemetry'; machine: string; text: string; update: boolean }
  | { kind: 'status'; machine: string; online: boolean; text: string }
) & {
  at: number;
  /** Written in a transaction of its own (a batch it was in was refused). */
  solo?: boolean;
  /** Whom to tell when it is done with (a source that acknowledges to its broker after the commit). */
  ticket?: Ticket;
};
type EventsPending = Pending & { kind: 'events' };

export class Ingester {
  readonly stats: IngestStats = { messages: 0, events: 0, duplicates: 0, refusedEvents: 0, telemetry: 0, statuses: 0, rejected: {}, batches: 0, shed: 0, waitingDuplicates: 0, waitingDuplicateEvents: 0, storeErrors: 0 };
  private readonly store: IngestStore;
  private readonly ack: (machine: string, from: number, to: number) => void;
  private readonly options: { maxBatchRows: number; flushMs: number; maxPendingMessages: number; stallMs: number; storeLogEveryMs: number; suspectRetryMs: number; maxRetryMs: number };
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly checkEvent: EventCheck | undefined;
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
  private timer: TimerId | undefined;
  private draining: Promise<void> | undefined;
  private retryMs = 0;
  private suspectTries = 0;
  private readonly machines = new KnownMachines();
  private rejectionsToStore = new Map<Rejection, { count: number; detail: string }>();
  private closed = false;
  /** Store down: since when, the last error, when it was last logged. */
  private down: { since: number; error: string; loggedAt: number; attempts: number } | undefined;
  /** When the oldest waiting message started waiting with nothing committed since; when the stall was last logged. */
  private waitingSince: number | undefined;
  private stallLoggedAt: number | undefined;
  private lastCommitAt: number | undefined;
  private readonly watchdog: TimerId;
  /** Receive-to-commit times of recent messages. */
  private readonly latencies = new LatencyRing();

  /** `store`: the fleet store as ingest writes to it (ingestStore(db), store.ts). */
  constructor(store: IngestStore, ack: (machine: string, from: number, to: number) => void, options: IngestOptions = {}) {
    this.store = store;
    this.ack = ack;
    this.options = {
      maxBatchRows: options.maxBatchRows ?? 1000,
      flushMs: options.flushMs ?? 10,
      maxPendingMessages: options.maxPendingMessages ?? 50000,
      stallMs: options.stallMs ?? 10000,
      storeLogEveryMs: options.storeLogEveryMs ?? 10000,
      suspectRetryMs: options.suspectRetryMs ?? 50,
      maxRetryMs: options.maxRetryMs ?? 2000,
    };
    this.clock = options.clock ?? REAL_CLOCK;
    this.timers = options.timers ?? REAL_TIMERS;
    this.checkEvent = options.checkEvent ?? contractCheck;
    this.log = options.onLog ?? (() => {});
    this.onPressure = options.onPressure;
    this.onCommandEvents = options.onCommandEvents;
    this.onOnline = options.onOnline;
    this.onTelemetry = options.onTelemetry;
    this.watchdog = this.timers.repeat(() => this.checkStall(), Math.max(100, Math.min(1000, this.options.stallMs / 4)));
  }

  private now(): number {
    return this.clock.now();
  }

  /**
   * A message arrived on `topic`. Never throws: bad input is counted and logged.
   * `settled`, if given, is called once the message is done with (after the commit that stores it).
   */
  submit(topic: string, payload: Uint8Array, settled?: Settled): void {
    if (this.closed) {
      // Shutting down: not stored, not acknowledged; the machine sends it again.
      this.stats.shed++;
      settled?.('dropped');
      return;
    }
    this.stats.messages++;
    const m = parseMessage(topic, payload, this.checkEvent);
    if (!m.ok) {
      this.reject(m.reason, m.detail);
      settled?.('stored');
      return;
    }
    // A machine not seen yet is looked up as part of the flush.
    if (!this.machines.mayQueue(m.machine, this.now())) {
      this.reject('unknown-machine', m.machine);
      settled?.('stored');
      return;
    }
    if (m.kind === 'events' && this.waitingEvents.covers(m.machine, m)) {
      // A resend of events still waiting for the store: queued again it would be written twice.
      this.stats.waitingDuplicates++;
      this.stats.waitingDuplicateEvents += m.to - m.from + 1;
      settled?.('stored');
      return;
    }
    if (this.pending.length >= this.options.maxPendingMessages) {
      this.stats.shed++;
      settled?.('dropped');
      return;
    }
    const at = performance.now();
    const p: Pending =
      m.kind === 'events'
        ? { kind: 'events', machine: m.machine, from: m.from, to: m.to, events: m.events, refused: m.refused, at }
        : m.kind === 'telemetry'
          ? { kind: 'telemetry', machine: m.machine, text: m.text, update: m.body['update'] !== undefined, at }
          : { kind: 'status', machine: m.machine, online: m.online, text: m.text, at };
    if (settled) p.ticket = { left: 1, settled };
    if (p.kind === 'events') for (const r of p.refused) this.reject('bad-event', `${p.machine}: event ${r.seq}: ${r.reason}`);
    this.enqueue(p);
    // A command's outcome has someone waiting for it (an API call): no batching delay.
    if (p.kind === 'events' && !this.urgent) {
      for (const e of p.events) if (COMMAND_EVENTS.has(e.type)) this.urgent = true;
      if (this.urgent && this.timer !== undefined && this.retryMs === 0) {
        this.timers.clear(this.timer);
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

  private enqueue(p: Pending): void {
    if (this.pending.length === 0 && this.waitingSince === undefined) this.waitingSince = this.now();
    this.pending.push(p);
    this.pendingRows += rows(p);
    if (p.kind === 'events') this.waitingEvents.add(p);
  }

  /** Put items back at the front, in their order (a failed write, or one split into parts). */
  private requeue(items: Pending[]): void {
    this.pending = items.concat(this.pending);
    for (const p of items) this.pendingRows += rows(p);
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
    if (this.closed || this.draining || this.timer !== undefined) return;
    const delay = this.retryMs > 0 ? this.retryMs : this.pendingRows >= this.options.maxBatchRows || this.urgent || this.pending[0]?.solo ? 0 : this.options.flushMs;
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  /** Write what is waiting now (tests and shutdown call it directly); joins a write under way. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      this.timers.clear(this.timer);
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
      if (this.pending[0]?.solo) {
        take = 1;
        taken = rows(this.pending[0]);
      } else {
        while (take < this.pending.length && taken < this.options.maxBatchRows && !this.pending[take]!.solo) taken += rows(this.pending[take++]!);
      }
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
      // The store is down (or a write is suspect): come back after the backoff (schedule() in flush()).
      if (this.retryMs > 0) return;
    }
  }

  private async write(batch: Pending[], rejections: Map<Rejection, { count: number; detail: string }>): Promise<void> {
    try {
      const ok = await this.admit(batch);
      const conflicts = await this.commit(ok, rejections);
      this.committed();
      this.acknowledge(ok.filter((p) => !conflicts.has(p)));
      // Stored, conflicting (recorded) or from an unknown machine (rejected): done with, every one.
      for (const p of batch) release(p);
      return;
    } catch (e) {
      const fault = this.closed ? 'outage' : await classifyStoreError(e, () => this.store.ping());
      const why = describeStoreError(e);
      if (fault === 'outage') {
        this.suspectTries = 0;
        this.holdBack(batch, rejections);
        this.storeDown(why);
        return;
      }
      const single = batch.length === 1 && batch[0]!.solo === true;
      if (fault === 'suspect' && single && ++this.suspectTries <= SUSPECT_TRIES) {
        // Alone and still failing without a clear reason: a few quick tries (about 1.5 s in all), then the data's fault.
        this.holdBack(batch, rejections);
        this.retryMs = this.options.suspectRetryMs * 2 ** (this.suspectTries - 1);
        this.log('warn', `ingest: a write failed (${why}); trying again (${this.suspectTries} of ${SUSPECT_TRIES})`);
        return;
      }
      // The store answers but will not take this: find the part it refuses, keep the rest.
      this.suspectTries = 0;
      this.retryMs = 0;
      this.refuseContent(batch, rejections, why);
    }
  }

  /** Nothing was written: everything goes back to wait for the store. */
  private holdBack(batch: Pending[], rejections: Map<Rejection, { count: number; detail: string }>): void {
    this.requeue(batch);
    for (const [reason, r] of rejections) {
      const mine = this.rejectionsToStore.get(reason);
      if (mine) mine.count += r.count;
      else this.rejectionsToStore.set(reason, r);
    }
  }

  /**
   * The store refused the content of something in `batch`: write smaller
   * parts on their own until the one it refuses is alone, then record that
   * one as refused (an event, acknowledged) or rejected (telemetry, status).
   */
  private refuseContent(batch: Pending[], rejections: Map<Rejection, { count: number; detail: string }>, why: string): void {
    if (batch.length > 1 || (batch.length === 1 && !batch[0]!.solo)) {
      if (batch.length > 1) this.log('warn', `ingest: a batch of ${batch.length} messages was refused (${why}); writing its messages one by one`);
      // The same messages (still waiting, so their resends are still recognised), each written alone.
      for (const p of batch) p.solo = true;
      this.holdBack(batch, rejections);
      return;
    }
    // The rejection records are fixed words and cleaned text: they cannot be what was refused. Keep them.
    this.holdBack([], rejections);
    const p = batch[0];
    if (!p) return;
    if (p.kind !== 'events') {
      this.reject('db-error', `${p.machine}: ${p.kind} refused by the store: ${why}`);
      release(p);
      return;
    }
    const parts = p.events.length + p.refused.length;
    if (parts > 1) {
      // One event at a time, in order: the store will say which one it cannot take.
      const single: EventsPending[] = [];
      for (const e of p.events) single.push({ kind: 'events', machine: p.machine, from: e.seq, to: e.seq, events: [e], refused: [], at: p.at, solo: true });
      for (const r of p.refused) single.push({ kind: 'events', machine: p.machine, from: r.seq, to: r.seq, events: [], refused: [r], at: p.at, solo: true });
      single.sort((a, b) => a.from - b.from);
      if (p.ticket) {
        // The message is done with when all its parts are.
        p.ticket.left += single.length - 1;
        for (const part of single) part.ticket = p.ticket;
      }
      this.requeue(single);
      for (const part of single) this.waitingEvents.add(part);
      return;
    }
    const e = p.events[0];
    if (e) {
      // This event alone is refused: recorded as such with the store's reason, then acknowledged.
      this.reject('bad-event', `${p.machine}: event ${e.seq} refused by the store: ${why}`);
      this.requeue([{ ...p, events: [], refused: [{ seq: e.seq, t: e.t, type: e.type, reason: `the store refused it: ${why}`, raw: JSON.stringify(e.body).slice(0, 2000) }] }]);
      return;
    }
    const r = p.refused[0];
    if (r && r.raw !== '') {
      // Even its refusal record was refused: keep the number and the reason, not the bytes.
      this.requeue([{ ...p, refused: [{ seq: r.seq, t: r.t, type: r.type, reason: storable(r.reason), raw: '' }] }]);
      return;
    }
    this.reject('db-error', `${p.machine}: events ${p.from}..${p.to} could not be recorded: ${why}; not acknowledged`);
    // Not acknowledged to the machine, which sends it again; kept by the broker it would only come back to fail again.
    release(p);
  }

  private storeDown(why: string): void {
    this.stats.storeErrors++;
    this.retryMs = Math.min(this.options.maxRetryMs, Math.max(Math.min(250, this.options.maxRetryMs), this.retryMs * 2));
    const now = this.now();
    if (!this.down) {
      this.down = { since: now, error: why, loggedAt: now, attempts: 1 };
      this.log('error', `store unavailable (${why}); ${this.pending.length} messages held back, retrying in ${this.retryMs} ms`);
      return;
    }
    this.down.attempts++;
    this.down.error = why;
    // Never muted: a line every storeLogEveryMs for as long as it lasts.
    if (now - this.down.loggedAt >= this.options.storeLogEveryMs) {
      this.down.loggedAt = now;
      this.log('error', `store still unavailable after ${Math.round((now - this.down.since) / 1000)} s (${this.down.attempts} attempts, ${this.pending.length} messages held back): ${why}`);
    }
  }

  private committed(): void {
    const now = this.now();
    this.retryMs = 0;
    this.suspectTries = 0;
    if (this.down) {
      this.log('info', `store available again after ${Math.round((now - this.down.since) / 1000)} s (${this.down.attempts} failed attempts)`);
      this.down = undefined;
    }
    if (this.stallLoggedAt !== undefined && this.waitingSince !== undefined) this.log('info', `ingest: progressing again after ${Math.round((now - this.waitingSince) / 1000)} s`);
    this.stallLoggedAt = undefined;
    this.lastCommitAt = now;
    this.waitingSince = this.pending.length > 0 ? now : undefined;
  }

  private checkStall(): void {
    const stalled = this.stalledMs();
    if (stalled === 0) return;
    const now = this.now();
    if (this.stallLoggedAt !== undefined && now - this.stallLoggedAt < this.options.stallMs) return;
    this.stallLoggedAt = now;
    this.log(
      'error',
      `ingest: no progress for ${Math.round(stalled / 1000)} s while ${this.pending.length} messages wait${this.down ? ` (store unavailable: ${this.down.error})` : ''}`,
    );
  }

  private stalledMs(): number {
    if (this.waitingSince === undefined || (this.pending.length === 0 && this.rejectionsToStore.size === 0)) return 0;
    const waited = this.now() - this.waitingSince;
    return waited >= this.options.stallMs ? waited : 0;
  }

  health(): IngestHealth {
    const now = this.now();
    return {
      waiting: this.pending.length,
      stalledMs: this.stalledMs(),
      storeAvailable: this.down === undefined,
      lastError: this.down?.error,
      lastCommitAgoMs: this.lastCommitAt === undefined ? undefined : now - this.lastCommitAt,
    };
  }

  /** Drop messages from machines the store does not have. */
  private async admit(batch: Pending[]): Promise<Pending[]> {
    const { ok, refused } = await this.machines.admit(batch, this.store, () => this.now());
    for (const p of refused) this.reject('unknown-machine', p.machine);
    return ok;
  }

  /** Returns the messages whose events clash with different events already stored under the same numbers. */
  private async commit(batch: Pending[], rejections: Map<Rejection, { count: number; detail: string }>): Promise<Set<Pending>> {
    const messages: EventsPending[] = [];
    const telemetry: { machine: string; text: string }[] = [];
    const statuses: { machine: string; online: boolean; text: string }[] = [];
    let events = 0;
    let refused = 0;
    for (const p of batch) {
      if (p.kind === 'events') {
        messages.push(p);
        events += p.events.length;
        refused += p.refused.length;
      } else if (p.kind === 'telemetry') {
        telemetry.push({ machine: p.machine, text: p.text });
      } else {
        statuses.push({ machine: p.machine, online: p.online, text: p.text });
      }
    }
    const conflicts = new Set<Pending>();
    let afterCommit: (() => void) | undefined;
    const onCommandEvents = this.onCommandEvents;
    const counts = await this.store.write(
      { at: new Date(this.now()), messages, telemetry, statuses, rejections },
      {
        conflict: (p, detail) => {
          conflicts.add(p);
          this.reject('seq-conflict', detail);
        },
        ...(onCommandEvents
          ? {
              events: async (tx: Queryable, accepted: EventsPending[]) => {
                const commandEvents: { machine: string; type: string; body: Record<string, unknown> }[] = [];
                for (const p of accepted) for (const e of p.events) if (COMMAND_EVENTS.has(e.type)) commandEvents.push({ machine: p.machine, type: e.type, body: e.body });
                if (commandEvents.length > 0) afterCommit = await onCommandEvents(tx, commandEvents);
              },
            }
          : {}),
      },
    );
    afterCommit?.();
    if (this.onOnline) {
      const online = statuses.filter((st) => st.online).map((st) => st.machine);
      if (online.length > 0) this.onOnline(online);
    }
    if (this.onTelemetry && telemetry.length > 0) {
      // Only the newest report of each machine matters: it is its state now.
      const latest = new Map<string, boolean>();
      for (const p of batch) if (p.kind === 'telemetry') latest.set(p.machine, p.update);
      this.onTelemetry([...latest].map(([machine, update]) => ({ machine, update })));
    }
    this.stats.batches++;
    this.stats.events += counts.inserted;
    this.stats.duplicates += events - counts.inserted + (refused - counts.refused);
    this.stats.refusedEvents += counts.refused;
    this.stats.telemetry += telemetry.length;
    this.stats.statuses += statuses.length;
    const now = performance.now();
    for (const p of batch) this.latencies.record(p.at, now);
    return conflicts;
  }

  /**
   * One acknowledgement per machine per run of consecutive numbers in the
   * batch: a machine with twenty messages in flight gets one ack, not twenty
   * (the broker and this process each handle a twentieth of the packets).
   * Refused events are in the range: they are recorded, under their numbers.
   */
  private acknowledge(batch: Pending[]): void {
    const open = new Map<string, { from: number; to: number }>();
    for (const p of batch) {
      if (p.kind !== 'events') continue;
      const run = open.get(p.machine);
      if (run && p.from === run.to + 1) run.to = p.to;
      else {
        if (run) this.ack(p.machine, run.from, run.to);
        open.set(p.machine, { from: p.from, to: p.to });
      }
    }
    for (const [machine, run] of open) this.ack(machine, run.from, run.to);
  }

  /** Receive-to-commit latency percentile over recent messages (those received at or after `receivedSince`, a performance.now() time), ms. */
  latency(percentile: number, receivedSince = -Infinity): number {
    return this.latencies.percentile(percentile, receivedSince);
  }

  /** Latencies recorded since the last reset (more than the ring holds: only the newest are kept). */
  get latencySamples(): number {
    return this.latencies.samples;
  }

  /** Machines just provisioned: accepted at once, even if they were refused a moment ago. */
  known(ids: readonly string[]): void {
    this.machines.add(ids);
  }

  /** Forget the latencies recorded so far (benchmarks measure a window). */
  resetLatency(): void {
    this.latencies.reset();
  }

  get waiting(): number {
    return this.pending.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timers.clear(this.watchdog);
    await this.flush();
    this.timers.clear(this.timer);
    this.timer = undefined;
  }
}

/** A message (or a part of one) is done with: tell its source once all parts are. */
function release(p: Pending): void {
  const t = p.ticket;
  if (t && --t.left === 0) t.settled('stored');
}

/** What a message costs a transaction: its events, or one row. */
function rows(p: Pending): number {
  return p.kind === 'events' ? p.events.length + p.refused.length : 1;
}
