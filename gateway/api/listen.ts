/**
 * Start the operator API on a port (another free one if it is taken), and
 * make the first admin token when the store has none: printed once, kept
 * only as a hash.
 */
import type { FastifyInstance } from 'fastify';
import type { Db } from '../store/db.js';
import { countTokens, createToken } from './tokens.js';

export async function listen(app: FastifyInstance, host: string, port: number): Promise<{ url: string; port: number; fellBack: boolean }> {
  let fellBack = false;
  try {
    await app.listen({ host, port });
  } catch (e) {
    if ((e as { code?: string }).code !== 'EADDRINUSE') throw e;
    await app.listen({ host, port: 0 });
    fellBack = true;
  }
  const addr = app.server.address();
  const p = typeof addr === 'object' && addr ? addr.port : port;
  return { url: `http://${host}:${p}`, port: p, fellBack };
}

/** A new admin token if there is no token at all (the first start); undefined otherwise. */
export async function firstAdminToken(db: Db): Promise<string | undefined> {
  if ((await countTokens(db)) > 0) return undefined;
  return (await createToken(db, 'first admin', 'admin')).token;
}
