/**
 * Who may publish and subscribe where (docs/security.md). A machine speaks
 * only for itself: it publishes its own events, telemetry and status and
 * reads only its own acknowledgements and commands. The gateway reads every
 * machine's uplink topics (audit files included) (also through a shared subscription) and writes
 * acknowledgements and commands.
 */

import { isMachineId } from '../machine-id.js';

export type Identity = { kind: 'machine'; id: string } | { kind: 'gateway' };

const UP = new Set(['events', 'telemetry', 'status', 'audit']);
const DOWN = new Set(['acks', 'commands']);

/** fleet/{machine}/{kind} with a concrete, valid machine id; undefined otherwise. */
function split(topic: string): { machine: string; kind: string } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== 'fleet' || !isMachineId(parts[1]!)) return undefined;
  return { machine: parts[1]!, kind: parts[2]! };
}

/** The gateways' subscription probes (gateway/mqtt/subscriber.ts): a topic no machine can have. */
const PROBES = new Set(['fleet/$gateway/status', 'fleet/$gateway/audit']);

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
    return parts.length === 3 && parts[0] === 'fleet' && (parts[1] === '+' || isMachineId(parts[1]!)) && UP.has(parts[2]!);
  }
  const t = split(filter);
  return t !== undefined && t.machine === who.id && DOWN.has(t.kind);
}
