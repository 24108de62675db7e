/**
 * Route drivers' links in the store (tables driver_links, driver_restocks):
 * a secret `dl_...` shown once, of which only the SHA-256 is kept, the route
 * as planned when it was made, and an end (the end of the UTC day unless
 * told). A link reaches its route's machines and the slots on their pick
 * lists, and nothing else (docs/restocking.md "The driver's page").
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Queryable } from '../store/db.js';

export interface DriverLink {
  id: string;
  operator: string;
  name: string;
  route: StoredRoute;
  expiresAt: string;
}

/** The parts of a stored route (GET /route's answer) a link's checks read. */
export interface StoredRoute {
  stops: { machine: string; picklist: { lines: { slot: string; capacity: number | null }[] } }[];
}

/** Why a secret opens nothing: the page says which. */
export type LinkRefusal = 'unknown' | 'expired' | 'revoked';

/** Statuses after which the slot may be tapped again: nothing was restocked. */
export const RETRYABLE = ['refused', 'failed', 'interrupted', 'unsupported', 'rejected', 'expired', 'cancelled'] as const;

const hash = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** The end of the UTC day `now` is in. */
export function endOfDay(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
}

export async function createLink(db: Queryable, operator: string, name: string, route: Record<string, unknown>, expiresAt: Date): Promise<{ id: string; secret: string }> {
  const secret = `dl_${randomBytes(32).toString('base64url')}`;
  const id = randomUUID();
  await db.query('INSERT INTO driver_links (id, operator_id, name, secret_hash, route, expires_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)', [id, operator, name, hash(secret), JSON.stringify(route), expiresAt.toISOString()]);
  return { id, secret };
}

/** The live link with this secret, or why there is none. */
export async function openLink(db: Queryable, secret: string): Promise<DriverLink | LinkRefusal> {
  if (!/^dl_[\w-]{1,80}$/.test(secret)) return 'unknown';
  const r = await db.query<{ id: string; operator_id: string; name: string; route: StoredRoute; expires_at: Date | string; revoked_at: Date | string | null; live: boolean }>(
    'SELECT id, operator_id, name, route, expires_at, revoked_at, expires_at > now() AS live FROM driver_links WHERE secret_hash = $1',
    [hash(secret)],
  );
  const l = r.rows[0];
  if (!l) return 'unknown';
  if (l.revoked_at !== null) return 'revoked';
  if (!l.live) return 'expired';
  return { id: l.id, operator: l.operator_id, name: l.name, route: l.route, expiresAt: new Date(l.expires_at).toISOString() };
}

/** Revoke a live link of `operator` (null: any operator's); false when there is none. */
export async function revokeLink(db: Queryable, id: string, operator: string | null): Promise<boolean> {
  const r = await db.query('UPDATE driver_links SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR operator_id = $2) RETURNING id', [id, operator]);
  return r.rows.length > 0;
}

/** The restock command already sent for this slot under the link, with its status. */
export async function slotRestock(db: Queryable, link: string, machine: string, slot: string): Promise<{ command: string; status: string } | undefined> {
  const r = await db.query<{ command_id: string; status: string }>(
    'SELECT r.command_id, c.status FROM driver_restocks r JOIN commands c ON c.id = r.command_id WHERE r.link_id = $1 AND r.machine_id = $2 AND r.slot = $3',
    [link, machine, slot],
  );
  const row = r.rows[0];
  return row && { command: row.command_id, status: row.status };
}

/**
 * In the transaction issuing a restock: tie the command to the slot, unless
 * another tap's command holds it and may still restock (then false: the
 * caller rolls its command back and answers with that one).
 */
export async function bindSlotRestock(tx: Queryable, link: string, machine: string, slot: string, command: string): Promise<boolean> {
  const r = await tx.query(
    `INSERT INTO driver_restocks (link_id, machine_id, slot, command_id) VALUES ($1, $2, $3, $4)
     ON CONFLICT (link_id, machine_id, slot) DO UPDATE SET command_id = EXCLUDED.command_id
     WHERE (SELECT status FROM commands WHERE id = driver_restocks.command_id) = ANY($5::text[])
     RETURNING command_id`,
    [link, machine, slot, command, [...RETRYABLE]],
  );
  return r.rows.length > 0;
}

/** Whether the command is one of this link's restocks. */
export async function linkHasCommand(db: Queryable, link: string, command: string): Promise<{ machine: string; slot: string } | undefined> {
  const r = await db.query<{ machine_id: string; slot: string }>('SELECT machine_id, slot FROM driver_restocks WHERE link_id = $1 AND command_id = $2', [link, command]);
  const row = r.rows[0];
  return row && { machine: row.machine_id, slot: row.slot };
}
