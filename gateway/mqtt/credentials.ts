/**
 * MQTT logins checked against the fleet store: a machine by its id and the
 * password provisioning gave it (stored as a SHA-256 hash), the gateway by a
 * secret of its own (GATEWAY_MQTT_PASSWORD, or one made per process when the
 * gateway and the embedded broker share it).
 */
import { timingSafeEqual } from 'node:crypto';
import { isMachineId } from '../machine-id.js';
import { sha256 } from '../commands/service.js';
import type { Db } from '../store/db.js';
import type { Identity } from './acl.js';
import type { CredentialCheck } from './embedded-broker.js';

export const GATEWAY_USER = 'gateway';

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function storeCredentials(db: Db, gatewayPassword: string): CredentialCheck {
  const cache = new Map<string, { hash: string | null; until: number }>();
  return async (username: string, password: Buffer): Promise<Identity | undefined> => {
    const given = password.toString('utf8');
    if (username === GATEWAY_USER) return same(sha256(given), sha256(gatewayPassword)) ? { kind: 'gateway' } : undefined;
    if (!isMachineId(username)) return undefined;
    let hit = cache.get(username);
    if (!hit || hit.until < Date.now()) {
      const r = await db.query<{ h: string | null }>('SELECT mqtt_secret_hash AS h FROM machines WHERE id = $1', [username]);
      hit = { hash: r.rows[0]?.h ?? null, until: Date.now() + 5000 };
      if (cache.size > 100000) cache.clear();
      cache.set(username, hit);
    }
    return hit.hash !== null && same(sha256(given), hit.hash) ? { kind: 'machine', id: username } : undefined;
  };
}
