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

export async function revokeToken(db: Db, id: string): Promise<boolean> {
  const r = await db.query<{ id: string }>('UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id', [id]);
  return r.rows.length > 0;
}

export async function countTokens(db: Db): Promise<number> {
  const r = await db.query<{ n: string }>('SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL');
  return Number(r.rows[0]!.n);
}

/** Looks tokens up by hash, remembering answers for a few seconds (a revocation takes effect within that). */
export class TokenCheck {
  private readonly db: Db;
  private readonly cache = new Map<string, { info: TokenInfo | undefined; until: number }>();

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
    if (this.cache.size > 10000) this.cache.clear();
    this.cache.set(h, { info, until: Date.now() + 5000 });
    return info;
  }
}
