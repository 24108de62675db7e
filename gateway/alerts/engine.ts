/**
 * The alert engine: keeps one open alert per (machine, kind, subject) while
 * its condition holds, updates it when its figures change and closes it when
 * the condition is gone (docs/alerts.md).
 *
 * A machine is evaluated as a whole (rules.ts): the conditions its stored
 * telemetry shows, its silence (offline) and its rejected commands over the
 * window; the difference with its open alerts is written in one transaction,
 * and what changed goes to the webhook after the commit. Triggers:
 *
 * - after each ingest commit, the machines whose telemetry was stored
 *   (Ingester's onTelemetry hook; gathered for `gatherMs` and coalesced, so
 *   a machine that sent ten messages meanwhile is evaluated once, on its
 *   newest, and many machines share one transaction), and those that
 *   reported on a firmware update (a rollback opens `rolled-back`);
 * - a sweeper (`sweep(now)`, every 10 s in a gateway) for machines gone
 *   silent, machines that spoke again, and rejected commands;
 * - a rules change (`recheck`), on the stored telemetry at once.
 *
 * Several gateways may share one database: evaluations take a transaction-
 * scoped advisory lock and read the newest stored state under it, so two
 * gateways never work from different snapshots of one machine at once; the
 * writes are conditional besides (a partial unique index on open alerts,
 * ON CONFLICT DO NOTHING, updates and closes only of rows still open and
 * different), so a row is opened, changed or closed once and notified once.
 */
import type { Db, Queryable } from '../store/db.js';
import { evaluate, intervalOf, offlineCondition, rejectedCondition, resolveRules, rolledBackCondition, type AlertRules, type Condition } from './rules.js';
import { ALERT_COLUMNS, alertOf, type AlertRow } from './store.js';
import type { OperatorWebhooks, OperatorWebhook } from './operator-webhooks.js';
import { WebhookSender, type AlertEvent } from './webhook.js';
import { sameCanonicalJson } from '../store/json.js';

export type { AlertEvent } from './webhook.js';

export interface AlertEngineOptions {
  /** Every alert's notifications go here (the platform's global webhook, a WebhookSender), if set. */
  webhook?: WebhookSender | undefined;
  /** Each operator's alerts also go to its own webhook, if it set one (operators.alert_webhook_url); a gateway's engine has these. */
  operatorWebhooks?: OperatorWebhooks | undefined;
  /** Called after each commit with what changed (in the order sent to the webhook). */
  onAlert?: (e: AlertEvent) => void;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Machines per evaluation transaction (500). */
  chunk?: number;
  /**
   * Telemetry is gathered this long before it is evaluated (100 ms; 0: at once). An evaluation is a
   * transaction of seven statements whatever its size: with machines that each report now and then,
   * one per ingest commit cost more than the ingest itself (issue 16).
   */
  gatherMs?: number;
}

export interface AlertStats {
  evaluations: number;
  opened: number;
  updated: number;
  closed: number;
  errors: number;
}

/** Advisory lock key of alert evaluation ("vfal"): one evaluation at a time across gateways. */
const LOCK_KEY = 0x7666616c;

export class AlertEngine {
  readonly stats: AlertStats = { evaluations: 0, opened: 0, updated: 0, closed: 0, errors: 0 };
  readonly webhook: WebhookSender | undefined;
  readonly operatorWebhooks: OperatorWebhooks | undefined;
  private readonly db: Db;
  private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  private readonly onAlert: ((e: AlertEvent) => void) | undefined;
  private readonly chunk: number;
  private readonly gatherMs: number;
  /** Telemetry being gathered: the evaluation starts when this fires. */
  private gatherTimer: NodeJS.Timeout | undefined;
  /** Machines waiting for an evaluation (a set: one evaluation however many messages came). */
  private pending = new Set<string>();
  private draining: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  /** One evaluation transaction at a time in this process (one pooled connection, not several waiting on the lock). */
  private turn: Promise<unknown> = Promise.resolve();
  private closed = false;
  private loading = 0;

  constructor(db: Db, options: AlertEngineOptions = {}) {
    this.db = db;
    this.webhook = options.webhook;
    this.operatorWebhooks = options.operatorWebhooks;
    this.onAlert = options.onAlert;
    this.log = options.onLog ?? (() => {});
    this.chunk = options.chunk ?? 500;
    this.gatherMs = options.gatherMs ?? 100;
  }

  /** The ingest hook: telemetry of these machines was committed. Returns at once. */
  telemetry(list: readonly { machine: string }[]): void {
    if (this.closed) return;
    for (const t of list) this.pending.add(t.machine);
    this.gather();
  }

  /** Evaluate what is pending after gatherMs (unless an evaluation is due already or under way). */
  private gather(): void {
    if (this.gatherMs <= 0) return this.schedule();
    if (this.closed || this.draining || this.retryTimer || this.gatherTimer || this.pending.size === 0) return;
    this.gatherTimer = setTimeout(() => {
      this.gatherTimer = undefined;
      this.schedule();
    }, this.gatherMs);
  }

  /** Evaluate machines again now (their rules changed): these, an operator's fleet, or every machine; resolves once done. */
  async recheck(machines: readonly string[] | 'all' | { operator: string }): Promise<void> {
    // Counted while the list loads, so that idle() waits for a recheck just asked for.
    this.loading++;
    try {
      let ids: readonly string[];
      if (machines === 'all' || 'operator' in machines) {
        const operator = machines === 'all' ? null : machines.operator;
        ids = (await this.db.query<{ id: string }>('SELECT id FROM machines WHERE $1::text IS NULL OR operator_id = $1', [operator])).rows.map((r) => r.id);
      } else ids = machines;
      for (const id of ids) this.pending.add(id);
    } finally {
      this.loading--;
    }
    // Asked for now: no gathering.
    clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    this.schedule();
    await this.idle();
  }

  /** Resolves when nothing waits for an evaluation (or the engine is closed). */
  async idle(): Promise<void> {
    while (!this.closed && (this.pending.size > 0 || this.draining || this.retryTimer || this.gatherTimer || this.sweeping || this.loading > 0)) {
      await (this.draining ?? this.sweeping?.catch(() => {}) ?? new Promise((r) => setTimeout(r, 20)));
    }
  }

  private schedule(): void {
    if (this.closed || this.draining || this.retryTimer || this.gatherTimer || this.pending.size === 0) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // What arrived during the evaluation is gathered again before the next.
      this.gather();
    });
  }

  /** Evaluate the machines pending now (those added meanwhile wait for the next). */
  private async drain(): Promise<void> {
    let left = this.pending.size;
    while (!this.closed && this.pending.size > 0 && left > 0) {
      const ids = [...this.pending].slice(0, Math.min(this.chunk, left));
      left -= ids.length;
      for (const id of ids) this.pending.delete(id);
      try {
        await this.evaluate(ids);
        this.retryMs = 0;
      } catch (e) {
        // The store is down or refused: the machines wait for the next try (nothing is lost but time).
        for (const id of ids) this.pending.add(id);
        this.stats.errors++;
        this.retryMs = Math.min(Math.max(this.retryMs * 2, 1000), 30000);
        if (this.stats.errors <= 5 || this.stats.errors % 100 === 0) this.log('warn', `alerts: evaluation failed (${(e as Error).message}); again in ${this.retryMs} ms`);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.schedule();
        }, this.retryMs);
        return;
      }
    }
  }

  /**
   * Silence and rejected commands: evaluates the machines that may have gone
   * offline (nothing for their interval times the fewest intervals any rule
   * allows), those with an offline alert that spoke again, and those with
   * rejected commands in the window or an open alert about them. `now` is
   * the time to judge by (tests pass one in the future).
   */
  async sweep(now?: Date): Promise<void> {
    if (this.closed) return;
    const run = async (): Promise<void> => {
      // Every set of rules in force anywhere: each operator's fleet's, and each machine's over its operator's.
      const fleets = await this.db.query<{ id: string; rules: unknown }>('SELECT id, alert_rules AS rules FROM operators');
      const own = await this.db.query<{ rules: unknown; fleet: unknown }>('SELECT r.rules, o.alert_rules AS fleet FROM alert_rules r JOIN machines m ON m.id = r.machine_id JOIN operators o ON o.id = m.operator_id');
      const every = [resolveRules(undefined), ...fleets.rows.map((r) => resolveRules(r.rules)), ...own.rows.map((r) => resolveRules(r.fleet, r.rules))];
      const fewest = Math.min(...every.map((r) => r.offline.intervals));
      const shortest = Math.min(...every.map((r) => r.offline.defaultIntervalS));
      const widest = Math.max(...every.map((r) => r.commandsRejected.windowMinutes));
      const interval = `COALESCE(CASE WHEN jsonb_typeof(ms.telemetry->'intervalS') = 'number' AND (ms.telemetry->>'intervalS')::double precision > 0 THEN (ms.telemetry->>'intervalS')::double precision END, $3::double precision)`;
      const silentSince = `COALESCE($1::timestamptz, now()) - make_interval(secs => $2::double precision * ${interval})`;
      const r = await this.db.query<{ machine_id: string }>(
        `SELECT ms.machine_id FROM machine_state ms
         WHERE ms.last_seen < ${silentSince}
           AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.machine_id = ms.machine_id AND a.kind = 'offline' AND a.closed_at IS NULL)
         UNION
         SELECT a.machine_id FROM alerts a JOIN machine_state ms ON ms.machine_id = a.machine_id
         WHERE a.kind = 'offline' AND a.closed_at IS NULL AND ms.last_seen >= ${silentSince}
         UNION
         SELECT machine_id FROM alerts WHERE kind = 'commands-rejected' AND closed_at IS NULL
         UNION
         SELECT machine_id FROM events WHERE type = 'command-rejected' AND received_at > COALESCE($1::timestamptz, now()) - make_interval(mins => $4::int)`,
        [now ?? null, fewest, shortest, widest],
      );
      const ids = r.rows.map((x) => x.machine_id);
      for (let i = 0; i < ids.length && !this.closed; i += this.chunk) await this.evaluate(ids.slice(i, i + this.chunk), now);
    };
    // One sweep at a time; a caller arriving during one waits for it and then runs its own (its `now` may differ).
    while (this.sweeping) await this.sweeping.catch(() => {});
    this.sweeping = run().finally(() => {
      this.sweeping = undefined;
    });
    await this.sweeping;
  }

  /** Sweep every `ms` until closed (errors logged, not thrown). */
  startSweeper(ms = 10000): void {
    if (this.sweepTimer || ms <= 0) return;
    this.sweepTimer = setInterval(() => {
      if (this.sweeping || this.closed) return;
      this.sweep().catch((e: Error) => {
        this.stats.errors++;
        if (this.stats.errors <= 5 || this.stats.errors % 100 === 0) this.log('warn', `alerts: sweep failed: ${e.message}`);
      });
    }, ms);
  }

  /** Evaluate these machines, write the differences, notify after the commit. */
  private async evaluate(ids: readonly string[], now?: Date): Promise<void> {
    if (ids.length === 0) return;
    const mine = this.turn.then(() => this.db.transaction((tx) => this.reconcile(tx, ids, now ?? null)));
    this.turn = mine.catch(() => {});
    const events = await mine;
    this.stats.evaluations += ids.length;
    for (const { operator, webhook, ...e } of events) {
      this.stats[e.event]++;
      this.webhook?.push(e);
      this.operatorWebhooks?.push(operator, webhook, e);
      try {
        this.onAlert?.(e);
      } catch (err) {
        this.log('warn', `alerts: listener failed: ${(err as Error).message}`);
      }
    }
  }

  /**
   * The reads run with every evaluation (several a second while a fleet reports) go by name: PostgreSQL
   * parses and plans each once per connection (store/db.ts), not every time.
   */
  private async reconcile(tx: Queryable, ids: readonly string[], now: Date | null): Promise<Routed[]> {
    // Gateways sharing the store take turns; each then reads the newest committed state.
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [LOCK_KEY], { name: 'alerts-lock' });
    // last_seen as milliseconds since the epoch (truncated, as a Date holds it): a number is cheaper for the driver than a
    // timestamp's text, and most evaluations never need it (only an offline condition says it).
    const states = await tx.query<{ machine_id: string; telemetry: unknown; last_seen_ms: string | number | null; silent_s: string | number | null }>(
      `SELECT m.id AS machine_id, ms.telemetry, floor(EXTRACT(EPOCH FROM ms.last_seen) * 1000)::float8 AS last_seen_ms,
         EXTRACT(EPOCH FROM (COALESCE($2::timestamptz, now()) - ms.last_seen)) AS silent_s
       FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id WHERE m.id = ANY($1::text[])`,
      [ids, now],
      { name: 'alerts-states' },
    );
    const known = states.rows.map((s) => s.machine_id);
    if (known.length === 0) return [];
    // Each machine by its operator's fleet rules, then its own.
    // And its operator's webhook, as the store has it now: a change through any gateway holds from the next alert.
    const stored = await tx.query<{ machine_id: string; fleet: unknown; rules: unknown; operator: string; url: string | null; secret: string | null }>(
      `SELECT m.id AS machine_id, o.alert_rules AS fleet, r.rules, o.id AS operator, o.alert_webhook_url AS url, o.alert_webhook_secret AS secret
       FROM machines m JOIN operators o ON o.id = m.operator_id
       LEFT JOIN alert_rules r ON r.machine_id = m.id WHERE m.id = ANY($1::text[])`,
      [known],
      { name: 'alerts-rules' },
    );
    const rules = new Map<string, AlertRules>(stored.rows.map((r) => [r.machine_id, resolveRules(r.fleet, r.rules ?? undefined)]));
    const owners = new Map(stored.rows.map((r) => [r.machine_id, { operator: r.operator, webhook: r.url === null ? null : { url: r.url, secret: r.secret } }]));
    const routed = (event: AlertEvent['event'], row: AlertRow): Routed => ({ event, alert: alertOf(row), ...owners.get(row.machine_id)! });

    // Rejected commands per machine over its window (usually one window for all: one query).
    const byWindow = new Map<number, string[]>();
    for (const [m, r] of rules) if (r.kinds['commands-rejected']) byWindow.set(r.commandsRejected.windowMinutes, [...(byWindow.get(r.commandsRejected.windowMinutes) ?? []), m]);
    const rejected = new Map<string, { count: number; reasons: Record<string, number> }>();
    for (const [minutes, machines] of byWindow) {
      const r = await tx.query<{ machine_id: string; reason: string | null; n: string | number; suppressed: string | number | null }>(
        `SELECT machine_id, body->>'reason' AS reason, count(*) AS n,
           sum(CASE WHEN jsonb_typeof(body->'suppressed') = 'number' THEN (body->>'suppressed')::numeric ELSE 0 END) AS suppressed
         FROM events WHERE type = 'command-rejected' AND machine_id = ANY($1::text[])
           AND received_at > COALESCE($2::timestamptz, now()) - make_interval(mins => $3::int)
         GROUP BY machine_id, body->>'reason'`,
        [machines, now, minutes],
        { name: 'alerts-rejected' },
      );
      for (const row of r.rows) {
        const e = rejected.get(row.machine_id) ?? { count: 0, reasons: {} };
        const n = Number(row.n);
        const hidden = Number(row.suppressed ?? 0);
        e.count += n + hidden;
        e.reasons[row.reason ?? 'unknown'] = (e.reasons[row.reason ?? 'unknown'] ?? 0) + n;
        // Rejections the machine counted but did not journal (its rate limit): their reasons are unknown.
        if (hidden > 0) e.reasons['unrecorded'] = (e.reasons['unrecorded'] ?? 0) + hidden;
        rejected.set(row.machine_id, e);
      }
    }

    // The newest update report of each (a rollback is an alert until the machine reports on an update again).
    const updates = await tx.query<{ machine_id: string; phase: string; version: string; reason: string | null }>(
      'SELECT machine_id, phase, version, reason FROM machine_updates WHERE machine_id = ANY($1::text[])',
      [known],
      { name: 'alerts-updates' },
    );
    const reports = new Map(updates.rows.map((u) => [u.machine_id, u]));

    const want = new Map<string, Condition & { machine: string }>();
    for (const s of states.rows) {
      const r = rules.get(s.machine_id)!;
      const list = evaluate(s.telemetry, r);
      const lastSeen = s.last_seen_ms === null ? null : new Date(Number(s.last_seen_ms));
      const off = offlineCondition(lastSeen, s.silent_s === null ? null : Number(s.silent_s), intervalOf(s.telemetry), r);
      if (off) list.push(off);
      const rj = rejected.get(s.machine_id);
      const rc = rj ? rejectedCondition(rj.count, rj.reasons, r) : undefined;
      if (rc) list.push(rc);
      const rb = rolledBackCondition(reports.get(s.machine_id), r);
      if (rb) list.push(rb);
      for (const c of list) want.set(key(s.machine_id, c.kind, c.subject), { ...c, machine: s.machine_id });
    }

    // What the comparison needs, not the whole row: its three dates would each be parsed into a Date for nothing.
    const open = await tx.query<Pick<AlertRow, 'id' | 'machine_id' | 'kind' | 'subject' | 'severity' | 'message' | 'detail'>>(
      'SELECT id, machine_id, kind, subject, severity, message, detail FROM alerts WHERE closed_at IS NULL AND machine_id = ANY($1::text[])',
      [known],
      { name: 'alerts-open' },
    );
    const toClose: string[] = [];
    const toUpdate: { id: string; c: Condition }[] = [];
    for (const a of open.rows) {
      const k = key(a.machine_id, a.kind, a.subject);
      const c = want.get(k);
      if (!c) toClose.push(String(a.id));
      else {
        want.delete(k);
        if (c.severity !== a.severity || c.message !== a.message || !sameCanonicalJson(c.detail, a.detail)) toUpdate.push({ id: String(a.id), c });
      }
    }
    const toOpen = [...want.values()];

    const events: Routed[] = [];
    if (toOpen.length > 0) {
      const r = await tx.query<AlertRow>(
        `INSERT INTO alerts (machine_id, kind, subject, severity, message, detail)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
         ON CONFLICT (machine_id, kind, subject) WHERE closed_at IS NULL DO NOTHING
         RETURNING ${ALERT_COLUMNS}`,
        [toOpen.map((c) => c.machine), toOpen.map((c) => c.kind), toOpen.map((c) => c.subject), toOpen.map((c) => c.severity), toOpen.map((c) => c.message), toOpen.map((c) => c.detail)],
      );
      for (const row of r.rows) events.push(routed('opened', row));
    }
    if (toUpdate.length > 0) {
      // Only rows still open and still different: a change another gateway already made is not made (or notified) twice.
      const r = await tx.query<AlertRow>(
        `UPDATE alerts a SET severity = u.severity, message = u.message, detail = u.detail, updated_at = now()
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[]) AS u(id, severity, message, detail)
         WHERE a.id = u.id AND a.closed_at IS NULL AND (a.severity <> u.severity OR a.message <> u.message OR a.detail <> u.detail)
         RETURNING ${ALERT_COLUMNS.split(', ').map((c) => `a.${c}`).join(', ')}`,
        [toUpdate.map((u) => u.id), toUpdate.map((u) => u.c.severity), toUpdate.map((u) => u.c.message), toUpdate.map((u) => u.c.detail)],
      );
      for (const row of r.rows) events.push(routed('updated', row));
    }
    if (toClose.length > 0) {
      const r = await tx.query<AlertRow>(`UPDATE alerts SET closed_at = now(), updated_at = now() WHERE id = ANY($1::bigint[]) AND closed_at IS NULL RETURNING ${ALERT_COLUMNS}`, [toClose]);
      for (const row of r.rows) events.push(routed('closed', row));
    }
    return events;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    this.closed = true;
    // What is under way finishes (bounded: a store that hangs must not hold the shutdown).
    const busy = Promise.allSettled([this.draining, this.sweeping].filter((p) => p !== undefined));
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([busy, new Promise((r) => (bound = setTimeout(r, 5000).unref()))]);
    // Cleared once the work is done: a closed engine leaves no timer behind (test/gateway/close.test.ts).
    clearTimeout(bound);
    this.webhook?.close();
    this.operatorWebhooks?.close();
  }
}

/** An alert's change with its machine's operator and that operator's webhook (null: none). */
type Routed = AlertEvent & { operator: string; webhook: OperatorWebhook | null };

const key = (machine: string, kind: string, subject: string): string => `${machine}\u0000${kind}\u0000${subject}`;

