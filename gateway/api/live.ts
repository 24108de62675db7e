/**
 * What changed in the fleet store, for pages that stay open (the
 * dashboard). One poller per API process, whatever the number of pages,
 * reads what changed since its last look and tells every subscriber which
 * machines, commands, alerts, audits and rollouts to fetch again. Reading the store
 * (rather than hooking this process's ingest) shows the changes made by
 * every gateway sharing the database. A feed is one operator's: its queries
 * read that operator's machines (and their commands, alerts, audits,
 * rollouts) only; null, a platform admin's, reads every operator's.
 */
import type { Db } from '../store/db.js';

export interface Change {
  /** Store time of this look. */
  at: string;
  /** Machines with new telemetry, status or events. */
  machines: string[];
  /** Machines with new sales. */
  sales: string[];
  commands: { id: string; machine: string; status: string }[];
  /** Machines whose alerts opened, changed or closed. */
  alerts: string[];
  audits: { id: number; machine: string | null }[];
  /** Rollouts that moved on (a machine's state, a wave, paused, halted...). */
  rollouts: string[];
}

/** Looks overlap by this much: a transaction that started before a look may commit after it. */
const OVERLAP_MS = 3000;

export class LiveFeed {
  private readonly listeners = new Set<(c: Change) => void>();
  private timer: NodeJS.Timeout | undefined;
  private since: Date | undefined;
  private busy = false;
  private hasAlerts: boolean | undefined;
  private hasRollouts: boolean | undefined;

  constructor(
    private readonly db: Db,
    private readonly operator: string | null = null,
    private readonly everyMs = 1000,
  ) {}

  subscribe(fn: (c: Change) => void): () => void {
    this.listeners.add(fn);
    this.timer ??= setInterval(() => void this.look(), this.everyMs);
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
        this.since = undefined;
      }
    };
  }

  close(): void {
    this.listeners.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async look(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = (await this.db.query<{ now: Date }>('SELECT now() AS now')).rows[0]!.now;
      const since = new Date((this.since ?? now).getTime() - OVERLAP_MS);
      const db = this.db;
      const op = this.operator;
      // $2: the operator's machines only (NULL: every operator's).
      const mine = `($2::text IS NULL OR machine_id IN (SELECT m.id FROM machines m WHERE m.operator_id = $2))`;
      const [machines, sales, commands, audits] = await Promise.all([
        db.query<{ id: string }>(`SELECT machine_id AS id FROM machine_state WHERE last_seen > $1 AND ${mine}`, [since, op]),
        db.query<{ id: string }>(`SELECT DISTINCT machine_id AS id FROM sales WHERE received_at > $1 AND ${mine}`, [since, op]),
        db.query<{ id: string; machine: string; status: string }>(`SELECT id, machine_id AS machine, status FROM commands WHERE updated_at > $1 AND ${mine} ORDER BY updated_at`, [since, op]),
        db.query<{ id: string; machine: string | null }>('SELECT id, machine_id AS machine FROM audits WHERE received_at > $1 AND ($2::text IS NULL OR operator_id = $2)', [since, op]),
      ]);
      // The alerts table arrives with its own migration; until then there is nothing to report.
      this.hasAlerts ??= (await db.query<{ t: string | null }>("SELECT to_regclass('alerts')::text AS t")).rows[0]?.t != null;
      const alerts = this.hasAlerts
        ? await db.query<{ id: string }>(`SELECT DISTINCT machine_id AS id FROM alerts WHERE (opened_at > $1 OR updated_at > $1 OR closed_at > $1) AND ${mine}`, [since, op])
        : { rows: [] };
      this.hasRollouts ??= (await db.query<{ t: string | null }>("SELECT to_regclass('rollouts')::text AS t")).rows[0]?.t != null;
      const rollouts = this.hasRollouts
        ? await db.query<{ id: string }>(
            `SELECT id FROM rollouts WHERE updated_at > $1 AND ($2::text IS NULL OR operator_id = $2)
             UNION SELECT DISTINCT e.rollout_id AS id FROM rollout_machines e JOIN rollouts r ON r.id = e.rollout_id WHERE e.updated_at > $1 AND ($2::text IS NULL OR r.operator_id = $2)`,
            [since, op],
          )
        : { rows: [] };
      this.since = now;
      const change: Change = {
        at: now.toISOString(),
        machines: machines.rows.map((r) => r.id),
        sales: sales.rows.map((r) => r.id),
        commands: commands.rows,
        alerts: alerts.rows.map((r) => r.id),
        audits: audits.rows.map((r) => ({ id: Number(r.id), machine: r.machine })),
        rollouts: rollouts.rows.map((r) => r.id),
      };
      if (change.machines.length + change.sales.length + change.commands.length + change.alerts.length + change.audits.length + change.rollouts.length === 0) return;
      for (const fn of this.listeners) fn(change);
    } catch {
      // The store is away for a moment: the next look covers the gap (since stays put).
    } finally {
      this.busy = false;
    }
  }
}
