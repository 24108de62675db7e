/**
 * Operators (organisations) in the fleet store (migration 12): each owns
 * machines, and their audits, rollouts and fleet-wide alert rules. The
 * default operator holds what an install had before operators.
 */
import type { Queryable } from './db.js';

/** The operator of machines added without naming one, and of everything from before migration 12. */
export const DEFAULT_OPERATOR = 'default';
export const OPERATOR_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,39}$';
const OPERATOR_ID = new RegExp(OPERATOR_ID_PATTERN);

export interface Operator {
  id: string;
  name: string;
  machines: number;
  createdAt: string;
}

export function isOperatorId(id: unknown): id is string {
  return typeof id === 'string' && OPERATOR_ID.test(id);
}

export async function operatorExists(db: Queryable, id: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM operators WHERE id = $1', [id])).rows.length > 0;
}

/** Add an operator; false when the id is taken. */
export async function createOperator(db: Queryable, id: string, name: string): Promise<boolean> {
  if (!isOperatorId(id)) throw new Error('an operator id is 1 to 40 lower-case letters, digits or dashes, not starting with a dash');
  if (!/^[^\x00-\x1f\x7f]{1,100}$/.test(name)) throw new Error('an operator name is 1 to 100 characters, no control characters');
  const r = await db.query('INSERT INTO operators (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id', [id, name]);
  return r.rows.length > 0;
}

/** Operators in id order: all (operator null: a platform admin asks) or the one given. */
export async function listOperators(db: Queryable, operator: string | null): Promise<Operator[]> {
  const r = await db.query<{ id: string; name: string; created_at: Date | string; machines: string | number }>(
    `SELECT o.id, o.name, o.created_at, (SELECT count(*) FROM machines m WHERE m.operator_id = o.id) AS machines
     FROM operators o WHERE $1::text IS NULL OR o.id = $1 ORDER BY o.id`,
    [operator],
  );
  return r.rows.map((x) => ({ id: x.id, name: x.name, machines: Number(x.machines), createdAt: new Date(x.created_at).toISOString() }));
}

/** An operator's own alert webhook (migration 15); the secret never leaves the store but to sign. */
export interface AlertWebhookSetting {
  url: string;
  secret: string | null;
}

export async function alertWebhookOf(db: Queryable, operator: string): Promise<AlertWebhookSetting | null> {
  const r = await db.query<{ url: string | null; secret: string | null }>('SELECT alert_webhook_url AS url, alert_webhook_secret AS secret FROM operators WHERE id = $1', [operator]);
  const row = r.rows[0];
  return row?.url ? { url: row.url, secret: row.secret } : null;
}

/** Set (or, null, remove) an operator's alert webhook; the caller has checked the URL (webhookUrlProblem). */
export async function setAlertWebhook(db: Queryable, operator: string, webhook: AlertWebhookSetting | null): Promise<void> {
  await db.query('UPDATE operators SET alert_webhook_url = $2, alert_webhook_secret = $3 WHERE id = $1', [operator, webhook?.url ?? null, webhook?.secret ?? null]);
}
