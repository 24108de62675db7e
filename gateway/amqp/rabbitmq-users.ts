/**
 * RabbitMQ logins for a fleet (docs/cluster.md, docs/security.md): each
 * machine its own user (user name = machine id) kept to its own topics, as
 * Mosquitto's ACL file (gateway/deploy/acl) keeps it there, and the
 * gateways' user. Written as RabbitMQ definitions, so that a whole batch of
 * provisioned machines goes in with one `rabbitmqctl import_definitions`
 * (additive: users, permissions and policies not in the file stay as they are).
 *
 * What the MQTT plugin (3.10) checks, and so what a machine is given:
 * - vhost permissions: configure, write and read on its own subscription
 *   queues (mqtt-subscription-{id}qos0/qos1, which it declares and binds) and
 *   write and read on amq.topic (publishing, binding from it);
 * - topic permissions on amq.topic (routing keys, fleet/{id}/events is
 *   fleet.{id}.events): write on its uplink topics, read (subscribing) on its
 *   downlink topics only. Another machine's topics and the gateways' probe
 *   topics (fleet.$gateway.*) match neither.
 * Passwords are stored salted and hashed as RabbitMQ hashes them itself
 * (rabbit_password_hashing_sha256): the file never holds a password.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isMachineId, MACHINE_ID_RULE } from '../machine-id.js';

export const MQTT_EXCHANGE = 'amq.topic';
/** What a machine publishes (docs/security.md): the routing-key words after fleet.{id}. */
export const MACHINE_WRITES = ['events', 'telemetry', 'status', 'audit', 'update.get'];
/** What a machine subscribes to. */
export const MACHINE_READS = ['acks', 'commands', 'update.chunk'];

export interface RabbitUser {
  name: string;
  password_hash: string;
  hashing_algorithm: 'rabbit_password_hashing_sha256';
  tags: string[];
}

export interface RabbitDefinitions {
  users: RabbitUser[];
  permissions: { user: string; vhost: string; configure: string; write: string; read: string }[];
  topic_permissions: { user: string; vhost: string; exchange: string; write: string; read: string }[];
}

/** RabbitMQ's own SHA-256 password hash: base64(salt ‖ SHA-256(salt ‖ password)), a 4-byte salt. */
export function rabbitPasswordHash(password: string, salt: Buffer = randomBytes(4)): string {
  const digest = createHash('sha256').update(salt).update(password, 'utf8').digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

/** A regular expression matching `s` literally. */
function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function alternatives(words: string[]): string {
  return `(${words.map(literal).join('|')})`;
}

/** The permissions one machine gets (exported for the docs and the test). */
export function machinePermissions(id: string, vhost = '/'): { permissions: RabbitDefinitions['permissions'][number]; topic: RabbitDefinitions['topic_permissions'][number] } {
  if (!isMachineId(id)) throw new Error(`"${id}": ${MACHINE_ID_RULE}`);
  const queues = `mqtt-subscription-${literal(id)}qos[01]`;
  const prefix = `^fleet\\.${literal(id)}\\.`;
  return {
    permissions: { user: id, vhost, configure: `^${queues}$`, write: `^(${queues}|amq\\.topic)$`, read: `^(${queues}|amq\\.topic)$` },
    topic: { user: id, vhost, exchange: MQTT_EXCHANGE, write: `${prefix}${alternatives(MACHINE_WRITES)}$`, read: `${prefix}${alternatives(MACHINE_READS)}$` },
  };
}

/**
 * Definitions for `machines` (each its id and MQTT password, as provisioning returned it) and, if
 * given, the gateways' user (all of the vhost: it declares its queues, binds them, publishes
 * acks, commands, chunks and probes).
 */
export function fleetUserDefinitions(machines: { id: string; password: string }[], gateway?: { user: string; password: string }, vhost = '/'): RabbitDefinitions {
  const d: RabbitDefinitions = { users: [], permissions: [], topic_permissions: [] };
  const seen = new Set<string>();
  for (const m of machines) {
    if (seen.has(m.id)) throw new Error(`"${m.id}" is listed twice`);
    seen.add(m.id);
    if (m.password.length === 0) throw new Error(`"${m.id}": no password`);
    const p = machinePermissions(m.id, vhost);
    d.users.push({ name: m.id, password_hash: rabbitPasswordHash(m.password), hashing_algorithm: 'rabbit_password_hashing_sha256', tags: [] });
    d.permissions.push(p.permissions);
    d.topic_permissions.push(p.topic);
  }
  if (gateway) {
    if (seen.has(gateway.user) || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(gateway.user)) throw new Error(`"${gateway.user}": not a usable gateway user name (or a machine's)`);
    if (gateway.password.length === 0) throw new Error('the gateway user needs a password');
    d.users.push({ name: gateway.user, password_hash: rabbitPasswordHash(gateway.password), hashing_algorithm: 'rabbit_password_hashing_sha256', tags: [] });
    d.permissions.push({ user: gateway.user, vhost, configure: '.*', write: '.*', read: '.*' });
  }
  return d;
}
