/**
 * The shipped RabbitMQ setup, booted for real (docs/cluster.md): one node of
 * the test's own (bench/lib/rabbitmq.ts) started with exactly
 * gateway/deploy/rabbitmq/rabbitmq.conf and enabled_plugins, where only the
 * two listener lines are rewritten (5672 and 1883 become 127.0.0.1:<free
 * port>: the machine's own node holds 5672 and Mosquitto 1883), then
 * definitions.json (the MQTT-session policy) and the logins that
 * `npm run rabbitmq-users` writes for provisioned machines and the gateway
 * imported with rabbitmqctl, as docs/cluster.md says. A simulated machine
 * (the real firmware) logs in as itself and syncs and takes a command
 * through a gateway logged in as itself over AMQP; a machine cannot publish
 * as another, read another's commands or acks, or speak on the gateways'
 * probe topics, as Mosquitto's ACL file keeps it (docs/security.md).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type mqtt from 'mqtt';
import { Gateway } from '../../gateway/gateway.js';
import { CommandService } from '../../gateway/commands/service.js';
import { migrate } from '../../gateway/store/migrations.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { MachineHost } from '../../hal-sim/host.js';
import { MQTT_SESSION_POLICY, RabbitCluster, type RabbitNode } from '../../bench/lib/rabbitmq.js';
import { connectMqtt } from '../lib/mqtt.js';
import { usMachine } from '../sim/fixtures.js';
import { eventually, synced } from '../gateway/backends.js';

const DEPLOY = fileURLToPath(new URL('../../../gateway/deploy/rabbitmq/', import.meta.url));
const TOOL = fileURLToPath(new URL('../../tools/rabbitmq-users.js', import.meta.url));

/** The shipped rabbitmq.conf with its two listener ports moved to free loopback ones; each line must be there exactly once. */
function shippedConf(ports: { amqpPort: number; mqttPort: number }): string {
  let conf = readFileSync(join(DEPLOY, 'rabbitmq.conf'), 'utf8');
  for (const [line, port] of [['listeners.tcp.default = 5672', ports.amqpPort], ['mqtt.listeners.tcp.default = 1883', ports.mqttPort]] as const) {
    const at = conf.split('\n').filter((l) => l === line).length;
    assert.equal(at, 1, `the shipped rabbitmq.conf has "${line}" once`);
    conf = conf.replace(`\n${line}\n`, `\n${line.replace(/= \d+$/, `= 127.0.0.1:${port}`)}\n`);
  }
  return conf;
}

function run(file: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 60000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    child.stdin!.end(input);
  });
}

/** The broker closes the client's connection within `ms` (what RabbitMQ does on a refused publication); rejects if it does not. */
function closedByBroker(c: mqtt.MqttClient, what: string, ms = 20000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!c.connected) return resolve();
    const timer = setTimeout(() => reject(new Error(`${what}: the connection is still open after ${ms / 1000} s (not refused)`)), ms);
    c.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('the shipped RabbitMQ configuration, booted', function () {
  this.timeout(600000);
  let cluster: RabbitCluster | undefined;
  let node: RabbitNode;
  let dir: string;
  let db: Db;
  let gw: Gateway | undefined;
  const pw: Record<string, string> = {};
  const keys: Record<string, { commandKey: string; commandKeyId: number }> = {};
  const gatewaySecret = 'gateway-secret-rabbitmq-test';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vf-rabbit-shipped-'));
    db = await openDb();
    await migrate(db);
    const svc = new CommandService(db, () => {});
    for (const id of ['vm-a', 'vm-b']) {
      const p = await svc.provision(id);
      pw[id] = p.mqttPassword!;
      keys[id] = { commandKey: p.commandKey, commandKeyId: p.commandKeyId };
    }
    svc.close();
    const started = Date.now();
    cluster = await RabbitCluster.start(1, { config: shippedConf, enabledPlugins: readFileSync(join(DEPLOY, 'enabled_plugins'), 'utf8'), sessionPolicy: false });
    const up = Date.now();
    node = cluster.nodes[0]!;
    // As docs/cluster.md says: the logins from the provisioned passwords (standard input), then both files imported.
    const logins = join(dir, 'logins.json');
    writeFileSync(logins, await run(process.execPath, [TOOL], `# provisioned\nmachine vm-a ${pw['vm-a']}\nmachine vm-b ${pw['vm-b']}\ngateway vendfleet-gateway ${gatewaySecret}\n`), { mode: 0o600 });
    assert.doesNotMatch(readFileSync(logins, 'utf8'), new RegExp(pw['vm-a']!), 'no password in the definitions');
    await cluster.ctl(node, ['import_definitions', join(DEPLOY, 'definitions.json')]);
    await cluster.ctl(node, ['import_definitions', logins]);
    await cluster.ctl(node, ['delete_user', 'guest']);
    console.log(`      (node from the shipped files up in ${((up - started) / 1000).toFixed(1)} s, set up in ${((Date.now() - up) / 1000).toFixed(1)} s more)`);
  });

  after(async () => {
    await gw?.close();
    await cluster?.close();
    await db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('takes the shipped policy: the machines’ MQTT sessions mirrored, as the test cluster sets it', async () => {
    const out = await cluster!.ctl(node, ['list_policies', '--formatter', 'json']);
    const policies = JSON.parse(out) as { name: string; pattern: string; 'apply-to': string; definition: unknown }[];
    const p = policies.find((x) => x.name === MQTT_SESSION_POLICY.name);
    assert.ok(p, out);
    assert.equal(p.pattern, MQTT_SESSION_POLICY.pattern);
    assert.equal(p['apply-to'], 'queues');
    assert.deepEqual(typeof p.definition === 'string' ? JSON.parse(p.definition) : p.definition, JSON.parse(MQTT_SESSION_POLICY.definition));
  });

  it('takes a gateway with its own login over AMQP and a machine with its own login over MQTT: sales stored, a command applied', async () => {
    // guest is gone: only the gateway's own login reads the queues.
    await assert.rejects(Gateway.start({ amqp: { urls: [node.amqpUrl] }, db, shareGroup: 'vfs' }), /ACCESS_REFUSED|403|could not connect/);
    gw = await Gateway.start({ amqp: { urls: [`amqp://vendfleet-gateway:${gatewaySecret}@127.0.0.1:${node.amqpPort}`] }, db, shareGroup: 'vfs', probeTimeoutMs: 15000 });
    const g = gw;
    await eventually('receiving', async () => (g.health().feed.connections.every((c) => c.subscription === 'receiving') ? true : undefined), 60000);
    assert.equal(g.health().feed.kind, 'amqp');
    const host = await MachineHost.start(usMachine(), {
      target: 'sim',
      machineId: 'vm-a',
      network: { url: node.mqttUrl },
      config: { ...keys['vm-a']!, uplink: { host: '127.0.0.1', port: node.mqttPort, user: 'vm-a', password: pw['vm-a']! } },
    });
    try {
      assert.ok((await synced(host, 120000)) > 0, 'the machine\'s journal acknowledged (its acks subscription works)');
      const c = await g.commands.issue('vm-a', 'set-prices', { prices: { A1: 140 } });
      for (const until = Date.now() + 60000; Date.now() < until; ) {
        await host.run(200);
        await g.ingester.flush();
        if ((await g.commands.get(c.id))?.status === 'applied') break;
      }
      assert.equal((await g.commands.get(c.id))?.status, 'applied', 'the command reached the machine and its outcome came back');
    } finally {
      await host.close();
    }
  });

  it('keeps each machine to its own topics: no anonymous or wrong login, no publishing as another machine or the gateway, no reading another machine’s topics', async () => {
    const g = gw!;
    const url = node.mqttUrl;
    await assert.rejects(connectMqtt(url, { clientId: 'anon' }), /Not authorized|Bad username|refused/i, 'anonymous');
    await assert.rejects(connectMqtt(url, { clientId: 'vm-a', username: 'vm-a', password: pw['vm-b']! }), /Not authorized|Bad username|refused/i, 'another machine\'s password');
    const login = (clientId = 'vm-a'): Promise<mqtt.MqttClient> => connectMqtt(url, { clientId, username: 'vm-a', password: pw['vm-a']!, clean: true });

    // Publishing as vm-b, or as the gateway (a probe), is refused: the broker closes the connection, and nothing is stored.
    for (const topic of ['fleet/vm-b/events', 'fleet/$gateway/status', 'fleet/vm-b/acks', 'fleet/vm-a/commands']) {
      const c = await login();
      const closed = closedByBroker(c, `publishing on ${topic}`);
      c.publish(topic, JSON.stringify({ v: 1, events: [{ seq: 1, t: 1, type: 'boot' }] }), { qos: 1 });
      await closed;
      c.end(true);
    }
    // Its own topic works, on a new connection: once it is stored, the forged one (sent before it) is known not to be.
    const own = await login();
    await own.publishAsync('fleet/vm-a/events', JSON.stringify({ v: 1, events: [{ seq: 900, t: 1, type: 'boot' }] }), { qos: 1 });
    await eventually('vm-a\'s own event stored', async () => ((await db.query('SELECT 1 FROM events WHERE machine_id = $1 AND seq = 900', ['vm-a'])).rows.length === 1 ? true : undefined), 30000);
    assert.equal((await db.query('SELECT 1 FROM events WHERE machine_id = $1', ['vm-b'])).rows.length, 0, 'nothing stored as vm-b');
    own.end(true);

    // Subscribing to another machine's commands or acks, or to every machine's, is refused.
    for (const filter of ['fleet/vm-b/commands', 'fleet/vm-b/acks', 'fleet/+/commands', 'fleet/#']) {
      const c = await login();
      // Refused either way RabbitMQ does it: a failure (128) in the SUBACK, or the connection closed (bounded: the SUBACK comes first otherwise).
      const closed = closedByBroker(c, `subscribing to ${filter}`);
      closed.catch(() => undefined);
      const granted = await new Promise<number | 'closed'>((resolve) => {
        c.subscribe(filter, { qos: 1 }, (err, g2) => resolve(err || !g2 ? 'closed' : g2[0]!.qos));
        void closed.then(() => resolve('closed'), () => undefined);
      });
      assert.ok(granted === 128 || granted === 'closed', `${filter}: refused (${granted})`);
      c.end(true);
    }
    // And nothing of vm-b's reaches vm-a: the gateway writes to vm-b, then to vm-a; vm-a gets its own only.
    const reader = await login();
    const got: string[] = [];
    reader.on('message', (topic) => got.push(topic));
    await reader.subscribeAsync('fleet/vm-a/commands', { qos: 1 });
    assert.ok(g.feed.publish('fleet/vm-b/commands', '{"v":1,"for":"vm-b"}', 1));
    assert.ok(g.feed.publish('fleet/vm-a/commands', '{"v":1,"for":"vm-a"}', 1));
    await eventually('vm-a\'s own command', async () => (got.includes('fleet/vm-a/commands') ? true : undefined), 30000);
    assert.deepEqual(got, ['fleet/vm-a/commands']);
    reader.end(true);
  });

  it('gives a machine that asks for another machine’s client id none of that machine’s session', async () => {
    const url = node.mqttUrl;
    const victim = await connectMqtt(url, { clientId: 'vm-b', username: 'vm-b', password: pw['vm-b']!, clean: false });
    await victim.subscribeAsync('fleet/vm-b/commands', { qos: 1 });
    // vm-a may not touch vm-b's session queue (mqtt-subscription-vm-bqos1), so the broker refuses the connection.
    // (RabbitMQ still closes vm-b's own connection first, which then reconnects: docs/security.md says so.)
    await assert.rejects(connectMqtt(url, { clientId: 'vm-b', username: 'vm-a', password: pw['vm-a']!, clean: false }), /Server unavailable|Not authorized|refused/i);
    victim.end(true);
  });
});
