/**
 * The one machine-id rule, used by provisioning, the MQTT logins and ACLs,
 * ingest and the API (and mirrored by the firmware's configuration check).
 *
 * Letters, digits, dashes and underscores, starting with a letter or digit:
 * no dots or slashes, because an id is a topic level (fleet/{id}/events) and,
 * on an AMQP broker, a routing-key word (fleet.{id}.events), where a dot
 * would split it in two; no leading punctuation, so that names the gateway
 * uses for itself ($gateway) can never be a machine's.
 */
export const MACHINE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
export const MACHINE_ID = new RegExp(MACHINE_ID_PATTERN);
export const MACHINE_ID_RULE = 'a machine id is 1 to 64 letters, digits, dashes or underscores, starting with a letter or digit (and not "gateway")';

/** Names the brokers' logins and ACLs give to the gateways: never a machine's. */
const RESERVED = new Set(['gateway']);

export function isMachineId(id: string): boolean {
  return MACHINE_ID.test(id) && !RESERVED.has(id);
}
