/**
 * Idempotency keys of remote purchases in the store (table idempotency):
 * one row per (machine, key), claimed by the one request that inserted it,
 * tied to the vend command inside the transaction that issues it, and
 * holding the first answer so that every later request with the key gets
 * it again. Why it is built so: docs/architecture.md, "The operator API".
 */
import type { Queryable } from './db.js';

/** The answer a purchase got, replayed for the same key. */
export interface StoredAnswer {
  status: number;
  body: unknown;
}

export interface KeyRecord {
  /** What the first request asked for (a hash of it): another purchase under the key is refused. */
  requestHash: string;
  commandId: string | undefined;
  response: StoredAnswer | undefined;
}

/** Claim the key for a purchase: true for the request that created the row, false when it was there. */
export async function claimKey(db: Queryable, machine: string, key: string, requestHash: string): Promise<boolean> {
  const r = await db.query<{ key: string }>('INSERT INTO idempotency (machine_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING key', [machine, key, requestHash]);
  return r.rows.length > 0;
}

/** The key's row (undefined when there is none). */
export async function keyRecord(db: Queryable, machine: string, key: string): Promise<KeyRecord | undefined> {
  const r = await db.query<{ request_hash: string; command_id: string | null; response: StoredAnswer | null }>('SELECT request_hash, command_id, response FROM idempotency WHERE machine_id = $1 AND key = $2', [machine, key]);
  const row = r.rows[0];
  return row && { requestHash: row.request_hash, commandId: row.command_id ?? undefined, response: row.response ?? undefined };
}

/**
 * Take the key over from the request that claimed it, if that one has
 * issued no command in 10 s (it died doing so): atomic, so only one taker
 * wins. True when this request now holds the claim.
 */
export async function takeOverKey(db: Queryable, machine: string, key: string): Promise<boolean> {
  const r = await db.query("UPDATE idempotency SET created_at = now() WHERE machine_id = $1 AND key = $2 AND command_id IS NULL AND created_at < now() - interval '10 seconds' RETURNING key", [machine, key]);
  return r.rows.length > 0;
}

/** The vend command issued under the key, if any yet. */
export async function keyCommand(db: Queryable, machine: string, key: string): Promise<string | undefined> {
  const r = await db.query<{ command_id: string | null }>('SELECT command_id FROM idempotency WHERE machine_id = $1 AND key = $2', [machine, key]);
  return r.rows[0]?.command_id ?? undefined;
}

/** In the transaction that issues the vend: tie it to the key. False when another request's command got there first. */
export async function bindKeyCommand(tx: Queryable, machine: string, key: string, commandId: string): Promise<boolean> {
  const r = await tx.query('UPDATE idempotency SET command_id = $3 WHERE machine_id = $1 AND key = $2 AND command_id IS NULL RETURNING key', [machine, key, commandId]);
  return r.rows.length > 0;
}

/** Keep the purchase's answer under its key. */
export async function saveKeyAnswer(db: Queryable, machine: string, key: string, answer: StoredAnswer): Promise<void> {
  await db.query('UPDATE idempotency SET response = $3::jsonb WHERE machine_id = $1 AND key = $2', [machine, key, JSON.stringify(answer)]);
}

/**
 * Give the key up after a transient refusal (the machine was busy, or the
 * vend expired before it was ever sent): nothing was dispensed, so the same
 * key may buy again. Only the row still tied to that command goes.
 */
export async function releaseKey(db: Queryable, machine: string, key: string, commandId: string): Promise<void> {
  await db.query('DELETE FROM idempotency WHERE machine_id = $1 AND key = $2 AND command_id = $3', [machine, key, commandId]);
}
