/**
 * RabbitMQ logins for provisioned machines and the gateways, as definitions
 * to import (docs/cluster.md "Logins"; gateway/amqp/rabbitmq-users.ts says
 * what each gets):
 *
 *   umask 077
 *   printf 'machine vm-0042 %s\n' "$MQTT_PASSWORD" | npm run -s rabbitmq-users > logins.json
 *   rabbitmqctl import_definitions logins.json && rm logins.json
 *
 * Standard input, one login a line: `machine <id> <mqttPassword>` (what
 * `vendctl provision` returned) or `gateway <user> <password>`; blank lines
 * and lines starting with # are skipped. `--vhost NAME` (default /).
 * Passwords are read from standard input, never from the command line, and
 * the output holds only RabbitMQ's salted hashes of them.
 */
import { fleetUserDefinitions } from '../gateway/amqp/rabbitmq-users.js';

async function main(): Promise<void> {
  const at = process.argv.indexOf('--vhost');
  const vhost = at > 0 ? process.argv[at + 1] ?? '' : '/';
  if (!vhost) throw new Error('--vhost needs a name');
  let text = '';
  for await (const chunk of process.stdin) text += (chunk as Buffer).toString('utf8');
  const machines: { id: string; password: string }[] = [];
  let gateway: { user: string; password: string } | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [kind, name, password, extra] = line.split(/\s+/);
    if (!kind || !name || !password || extra !== undefined || (kind !== 'machine' && kind !== 'gateway')) throw new Error(`line ${i + 1}: expected "machine <id> <password>" or "gateway <user> <password>"`);
    if (kind === 'machine') machines.push({ id: name, password });
    else if (gateway) throw new Error(`line ${i + 1}: a second gateway user`);
    else gateway = { user: name, password };
  }
  if (machines.length === 0 && !gateway) throw new Error('no logins on standard input');
  process.stdout.write(JSON.stringify(fleetUserDefinitions(machines, gateway, vhost), null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`rabbitmq-users: ${(e as Error).message}\n`);
  process.exit(2);
});
