/**
 * Operator API tokens: `vf_` and 32 random bytes, shown once when made; the
 * store keeps only their SHA-256. Roles are ordered: viewer < operator < admin.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenInfo {
  id: string;
  name: string;
  role: Role;
}

const hash = (token: string): string => createHash('sha256').update(token).digest('hex');

export function allows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export async function createToken(db: Db, name: string, role: Role): Promise<{ token: string; info: TokenInfo }> {
  if (!ROLES.includes(role)) throw new Error(`role must be one of ${ROLES.join(', ')}`);
  if (!/^[\w .@-]{1,64}$/.test(name)) throw new Error('token name: 1 to 64 letters, digits, spaces, dots, @ or dashes');
  const token = `vf_${randomBytes(32).toString('base64url')}`;
  const id = randomUUID();
  await db.query('INSERT INTO api_tokens (id, name, role, hash) VALUES ($1, $2, $3, $4)', [id, name, role, hash(token)]);
  return { token, info: { id, name, role } };
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
    const r = await this.db.query<{ id: string; name: string; role: Role }>('SELECT id, name, role FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL', [h]);
    const info = r.rows[0];
    if (this.cache.size > 10000) this.cache.clear();
    this.cache.set(h, { info, until: Date.now() + 5000 });
    return info;
  }
}
