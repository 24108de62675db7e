/**
 * Who may publish and subscribe where (docs/security.md). A machine speaks
 * only for itself: it publishes its own events, telemetry and status and
 * reads only its own acknowledgements and commands. The gateway reads every
 * machine's uplink topics (audit files included) (also through a shared subscription) and writes
 * acknowledgements and commands. Firmware updates (docs/updates.md) the
 * same way: a machine asks on its own fleet/{id}/update/get and reads its
 * own fleet/{id}/update/chunk; the gateway reads the one and writes the
 * other. gateway/deploy/acl says the same to Mosquitto
 * (test/gateway/acl-file.test.ts holds the two to each other).
 */

import { isMachineId } from '../machine-id.js';

export type Identity = { kind: 'machine'; id: string } | { kind: 'gateway' };

/** The topic levels after fleet/{machine}/, by direction. */
const UP = new Set(['events', 'telemetry', 'status', 'audit', 'update/get']);
const DOWN = new Set(['acks', 'commands', 'update/chunk']);

/** fleet/{machine}/{kind} with a concrete, valid machine id (kind may be two levels: update/get); undefined otherwise. */
function split(topic: string): { machine: string; kind: string } | undefined {
  const parts = topic.split('/');
  if (parts.length < 3 || parts.length > 4 || parts[0] !== 'fleet' || !isMachineId(parts[1]!)) return undefined;
  return { machine: parts[1]!, kind: parts.slice(2).join('/') };
}

/** The gateways' subscription probes (gateway/mqtt/subscriber.ts): a topic no machine can have. */
const PROBES = new Set(['fleet/$gateway/status', 'fleet/$gateway/audit', 'fleet/$gateway/update/get']);

export function mayPublish(who: Identity, topic: string): boolean {
  if (who.kind === 'gateway' && PROBES.has(topic)) return true;
  const t = split(topic);
  if (!t) return false;
  if (who.kind === 'gateway') return DOWN.has(t.kind);
  return t.machine === who.id && UP.has(t.kind);
}

export function maySubscribe(who: Identity, filter: string): boolean {
  if (who.kind === 'gateway') {
    // fleet/+/events and friends, directly or as $share/{group}/fleet/+/...
    const plain = filter.startsWith('$share/') ? filter.split('/').slice(2).join('/') : filter;
    const parts = plain.split('/');
    return (parts.length === 3 || parts.length === 4) && parts[0] === 'fleet' && (parts[1] === '+' || isMachineId(parts[1]!)) && UP.has(parts.slice(2).join('/'));
  }
  const t = split(filter);
  return t !== undefined && t.machine === who.id && DOWN.has(t.kind);
}
