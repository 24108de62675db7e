/**
 * Is a failed write the store's fault or the data's? The answer decides
 * whether the gateway holds a message back and tries again (nothing may be
 * refused because the database was away) or refuses it with a reason and
 * goes on (nothing may wait forever behind one message the database will
 * never take).
 *
 * The default is "the data": PostgreSQL refuses content with SQLSTATEs of
 * many classes (22 data exceptions, 23 integrity, 54 "stack depth limit
 * exceeded" for deeply nested JSON, 0A, XX...), and a list of those can
 * never be complete. The store is blamed only for what says the store
 * cannot take anything right now: no connection, the server shutting down,
 * no space or memory, a read-only replica, a missing table or privilege.
 * Even then, a connection-level error is checked: if the store answers a
 * trivial query at once, the connection was not the problem, and the write
 * is only suspect (tried a few times more, then taken for the data's fault).
 */
import type { Queryable } from './db.js';

export type StoreFault =
  /** The store cannot take anything now: hold everything, retry with backoff, never refuse. */
  | 'outage'
  /** Maybe the moment (a deadlock, a cancelled statement, a lost connection the store recovered from): retry a few times, then refuse. */
  | 'suspect'
  /** The store refuses this content: refuse it with the reason and go on. */
  | 'data';

/** SQLSTATEs (or their classes) that mean the store as a whole cannot take writes now. */
const STORE_DOWN = [
  /^53/, // insufficient resources: disk full, out of memory, too many connections
  /^58/, // system error: I/O
  /^57P0[1-5]$/, // admin or crash shutdown, cannot connect now, database dropped
  /^25006$/, // read-only transaction (a failover left us on a replica)
  /^28/, // invalid authorisation (a rotated password)
  /^3D000$/, // no such database
  /^3F000$/, // no such schema
  /^42501$/, // insufficient privilege
  /^42P01$/, // undefined table (a migration not applied)
  /^42703$/, // undefined column
];
/** Connection-level: believed only if the store does not answer a ping either. */
const CONNECTION = /^08/;
/** The moment, not the data: worth another try or two. */
const TRANSIENT = [/^40/, /^55P03$/, /^57014$/, /^XX/];

/** The SQLSTATE of a PostgreSQL error (pg and PGlite alike), if it is one. */
export function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  // Node's own errors carry errno names (ECONNREFUSED): those are connection-level.
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('E') ? code : undefined;
}

/** The error alone: 'connection' when only a ping can tell. */
export function faultOf(e: unknown): StoreFault | 'connection' {
  const state = sqlState(e);
  if (state === undefined) return 'connection';
  if (STORE_DOWN.some((r) => r.test(state))) return 'outage';
  if (CONNECTION.test(state)) return 'connection';
  if (TRANSIENT.some((r) => r.test(state))) return 'suspect';
  return 'data';
}

/** Did the store fail (rather than the code around it)? A SQLSTATE, or a network error on the way to it. */
export function isStoreError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return sqlState(e) !== undefined || (typeof code === 'string' && /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|NOTFOUND|AI_AGAIN)$/.test(code));
}

/**
 * Classify a failed write, asking the store when the error alone cannot tell:
 * `store` is pinged, or is itself the question "does the store answer?".
 */
export async function classifyStoreError(e: unknown, store: Queryable | (() => Promise<boolean>), pingMs = 2000): Promise<StoreFault> {
  const f = faultOf(e);
  if (f !== 'connection') return f;
  const answers = typeof store === 'function' ? await store() : await ping(store, pingMs);
  return answers ? 'suspect' : 'outage';
}

/** Does the store answer a trivial query within `ms`? */
export async function ping(store: Queryable, ms = 2000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      store.query('SELECT 1').then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** A short, single-line description of a store error for logs and rejection records. */
export function describeStoreError(e: unknown): string {
  const state = sqlState(e);
  const message = e instanceof Error ? e.message : String(e);
  return `${message.replace(/\s+/g, ' ').slice(0, 300)}${state ? ` (SQLSTATE ${state})` : ''}`;
}
