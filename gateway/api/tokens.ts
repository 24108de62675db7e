/**
 * Operator API tokens: `vf_` and 32 random bytes, shown once when made; the
 * store keeps only their SHA-256. Roles are ordered: viewer < operator < admin.
 * A token belongs to one operator (it sees that operator's machines only) or,
 * an admin's, to none: a platform admin, who sees every operator's
 * (docs/tenants.md).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import { DEFAULT_OPERATOR, operatorExists } from '../store/operators.js';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenInfo {
  id: string;
  name: string;
  role: Role;
  /** The operator whose machines the token reaches; null: a platform admin (every operator). */
  operator: string | null;
}

const hash = (token: string): string => createHash('sha256').update(token).digest('hex');

export function allows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/**
 * Make a token for `operator`, or (null) a platform admin's. Not naming one
 * does what migration 12 did with the tokens made before operators: an admin
 * token is a platform admin's, any other the default operator's.
 */
export async function createToken(db: Db, name: string, role: Role, operator?: string | null): Promise<{ token: string; info: TokenInfo }> {
  if (!ROLES.includes(role)) throw new Error(`role must be one of ${ROLES.join(', ')}`);
  if (!/^[\w .@-]{1,64}$/.test(name)) throw new Error('token name: 1 to 64 letters, digits, spaces, dots, @ or dashes');
  const owner = operator === undefined ? (role === 'admin' ? null : DEFAULT_OPERATOR) : operator;
  if (owner === null && role !== 'admin') throw new Error('only an admin token can be a platform admin\'s: name its operator');
  if (owner !== null && !(await operatorExists(db, owner))) throw new Error(`no operator "${owner}"`);
  const token = `vf_${randomBytes(32).toString('base64url')}`;
  const id = randomUUID();
  await db.query('INSERT INTO api_tokens (id, name, role, hash, operator_id) VALUES ($1, $2, $3, $4, $5)', [id, name, role, hash(token), owner]);
  return { token, info: { id, name, role, operator: owner } };
}

/**
 * Revoke a live token; false when there is none by that id. `operator`
 * scopes it: a string, that operator's tokens only (another's, or a
 * platform admin's, is "none"); null or not given, any token.
 */
export async function revokeToken(db: Db, id: string, operator: string | null = null): Promise<boolean> {
  const r = await db.query<{ id: string }>(
    'UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND ($2::text IS NULL OR operator_id = $2) RETURNING id',
    [id, operator],
  );
  return r.rows.length > 0;
}

/** A token as listed: never its secret (the store has only its hash anyway). */
export interface TokenListing extends TokenInfo {
  createdAt: string;
  /** When it was last used on the API, to the minute; null: never since migration 15. */
  lastUsedAt: string | null;
}

/**
 * Live tokens, oldest first: `scope` a string, that operator's; null, every
 * token (a platform admin's view), narrowed to `operator` when given.
 */
export async function listTokens(db: Db, scope: string | null, operator?: string): Promise<TokenListing[]> {
  const only = scope ?? operator ?? null;
  const r = await db.query<{ id: string; name: string; role: Role; operator: string | null; created_at: Date | string; last_used_at: Date | string | null }>(
    `SELECT id, name, role, operator_id AS operator, created_at, last_used_at FROM api_tokens
     WHERE revoked_at IS NULL AND ($1::text IS NULL OR operator_id = $1) ORDER BY created_at, id`,
    [only],
  );
  const iso = (d: Date | string): string => new Date(d).toISOString();
  return r.rows.map((t) => ({ id: t.id, name: t.name, role: t.role, operator: t.operator, createdAt: iso(t.created_at), lastUsedAt: t.last_used_at === null ? null : iso(t.last_used_at) }));
}

export async function countTokens(db: Db): Promise<number> {
  const r = await db.query<{ n: string }>('SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL');
  return Number(r.rows[0]!.n);
}

/**
 * Looks tokens up by hash, remembering answers for a few seconds. A token
 * revoked through this process (`revoked`) is forgotten at once and its open
 * streams are ended; one revoked elsewhere (vendctl on the store, another
 * gateway) holds here for at most those seconds.
 */
export class TokenCheck {
  private readonly db: Db;
  private readonly cache = new Map<string, { info: TokenInfo | undefined; until: number }>();
  /** What to end when a token is revoked (its open live streams), by token id. */
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(db: Db) {
    this.db = db;
  }

  async check(token: string): Promise<TokenInfo | undefined> {
    if (!token.startsWith('vf_') || token.length > 100) return undefined;
    const h = hash(token);
    const hit = this.cache.get(h);
    if (hit && hit.until > Date.now()) return hit.info;
    const r = await this.db.query<{ id: string; name: string; role: Role; operator: string | null }>(
      'SELECT id, name, role, operator_id AS operator FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL',
      [h],
    );
    const info = r.rows[0];
    // Last use, to the minute: a write at most once a minute per token, not per request.
    if (info) await this.db.query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", [info.id]);
    if (this.cache.size > 10000) this.cache.clear();
    this.cache.set(h, { info, until: Date.now() + 5000 });
    return info;
  }

  /** Is this token (by id) still live? Asks the store, not the cache (a stream checking on its token). */
  async live(id: string): Promise<boolean> {
    return (await this.db.query('SELECT 1 FROM api_tokens WHERE id = $1 AND revoked_at IS NULL', [id])).rows.length > 0;
  }

  /** Call `end` when the token is revoked through this process; returns the undo. */
  watch(id: string, end: () => void): () => void {
    let set = this.watchers.get(id);
    if (!set) this.watchers.set(id, (set = new Set()));
    set.add(end);
    return () => {
      set.delete(end);
      if (set.size === 0 && this.watchers.get(id) === set) this.watchers.delete(id);
    };
  }

  /** The token was revoked: refused from the next request on, its streams ended now. */
  revoked(id: string): void {
    for (const [h, hit] of this.cache) if (hit.info?.id === id) this.cache.delete(h);
    for (const end of [...(this.watchers.get(id) ?? [])]) end();
    this.watchers.delete(id);
  }
}
