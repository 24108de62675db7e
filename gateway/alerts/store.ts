/**
 * Alerts and alert rules in the fleet store (migration 6): the row shape,
 * its JSON form (the API's and the webhook's), listing (by operator), and
 * the rules patches: each operator's for its fleet, and a machine's own.
 */
import type { Queryable } from '../store/db.js';
import type { AlertKind, RulesPatch, Severity } from './rules.js';

/** An alert as the API answers it and the webhook sends it. */
export interface Alert {
  id: number;
  machine: string;
  kind: AlertKind;
  subject: string;
  severity: Severity;
  message: string;
  detail: Record<string, unknown>;
  openedAt: string;
  updatedAt: string;
  /** null while the condition holds. */
  closedAt: string | null;
}

export interface AlertRow {
  id: string | number;
  machine_id: string;
  kind: AlertKind;
  subject: string;
  severity: Severity;
  message: string;
  detail: Record<string, unknown>;
  opened_at: Date | string;
  updated_at: Date | string;
  closed_at: Date | string | null;
}

export const ALERT_COLUMNS = 'id, machine_id, kind, subject, severity, message, detail, opened_at, updated_at, closed_at';

const iso = (d: Date | string): string => (d instanceof Date ? d : new Date(d)).toISOString();

export function alertOf(r: AlertRow): Alert {
  return {
    id: Number(r.id),
    machine: r.machine_id,
    kind: r.kind,
    subject: r.subject,
    severity: r.severity,
    message: r.message,
    detail: r.detail,
    openedAt: iso(r.opened_at),
    updatedAt: iso(r.updated_at),
    closedAt: r.closed_at === null ? null : iso(r.closed_at),
  };
}

export type AlertState = 'open' | 'closed' | 'all';

export interface AlertQuery {
  state?: AlertState;
  machine?: string | undefined;
  kind?: string | undefined;
  limit?: number;
  /** Only this operator's machines' alerts (null or absent: every operator's). */
  operator?: string | null | undefined;
}

/** Alerts, newest first. */
export async function listAlerts(db: Queryable, q: AlertQuery = {}): Promise<Alert[]> {
  // The state filter is one of three fixed fragments; everything else is a parameter.
  const state = q.state ?? 'open';
  const where = state === 'open' ? 'closed_at IS NULL' : state === 'closed' ? 'closed_at IS NOT NULL' : 'true';
  const r = await db.query<AlertRow>(
    `SELECT ${ALERT_COLUMNS} FROM alerts
     WHERE ${where} AND ($1::text IS NULL OR machine_id = $1) AND ($2::text IS NULL OR kind = $2)
       AND ($4::text IS NULL OR machine_id IN (SELECT m.id FROM machines m WHERE m.operator_id = $4))
     ORDER BY opened_at DESC, id DESC LIMIT $3`,
    [q.machine ?? null, q.kind ?? null, q.limit ?? 100, q.operator ?? null],
  );
  return r.rows.map(alertOf);
}

/** Open alerts per machine of `operator` (null: every operator's; the fleet list shows the count). */
export async function openAlertCounts(db: Queryable, operator: string | null = null, machines?: readonly string[]): Promise<Map<string, number>> {
  const r = await db.query<{ machine_id: string; n: string | number }>(
    'SELECT a.machine_id, count(*) AS n FROM alerts a JOIN machines m ON m.id = a.machine_id WHERE a.closed_at IS NULL AND ($1::text IS NULL OR m.operator_id = $1) AND ($2::text[] IS NULL OR a.machine_id = ANY($2::text[])) GROUP BY a.machine_id',
    [operator, machines ? [...machines] : null],
  );
  return new Map(r.rows.map((x) => [x.machine_id, Number(x.n)]));
}

/** Open critical alerts per machine (a device offline, a currency mismatch...): what the dashboard counts as errors. */
export async function openCriticalCounts(db: Queryable, operator: string | null = null, machines?: readonly string[]): Promise<Map<string, number>> {
  const r = await db.query<{ machine_id: string; n: string | number }>(
    "SELECT a.machine_id, count(*) AS n FROM alerts a JOIN machines m ON m.id = a.machine_id WHERE a.closed_at IS NULL AND a.severity = 'critical' AND ($1::text IS NULL OR m.operator_id = $1) AND ($2::text[] IS NULL OR a.machine_id = ANY($2::text[])) GROUP BY a.machine_id",
    [operator, machines ? [...machines] : null],
  );
  return new Map(r.rows.map((x) => [x.machine_id, Number(x.n)]));
}

/** An operator's fleet-wide rules patch ({} when none set), kept with the operator (migration 12). */
export async function getFleetRules(db: Queryable, operator: string): Promise<RulesPatch> {
  const r = await db.query<{ rules: RulesPatch }>('SELECT alert_rules AS rules FROM operators WHERE id = $1', [operator]);
  return r.rows[0]?.rules ?? {};
}

/** Replace an operator's fleet-wide rules patch ({}: the built-in defaults). */
export async function putFleetRules(db: Queryable, operator: string, patch: RulesPatch): Promise<void> {
  await db.query('UPDATE operators SET alert_rules = $2::jsonb WHERE id = $1', [operator, JSON.stringify(patch)]);
}

/** The rules patch stored for a machine ({} when none). */
export async function getRulesPatch(db: Queryable, scope: string): Promise<RulesPatch> {
  const r = await db.query<{ rules: RulesPatch }>('SELECT rules FROM alert_rules WHERE machine_id = $1', [scope]);
  return r.rows[0]?.rules ?? {};
}

/** Replace a machine's rules patch (an empty patch removes the row: everything inherited from its operator's fleet). */
export async function putRulesPatch(db: Queryable, scope: string, patch: RulesPatch): Promise<void> {
  if (Object.keys(patch).length === 0) {
    await db.query('DELETE FROM alert_rules WHERE machine_id = $1', [scope]);
    return;
  }
  await db.query(
    `INSERT INTO alert_rules (machine_id, rules, updated_at) VALUES ($1, $2::jsonb, now())
     ON CONFLICT (machine_id) DO UPDATE SET rules = EXCLUDED.rules, updated_at = now()`,
    [scope, JSON.stringify(patch)],
  );
}
