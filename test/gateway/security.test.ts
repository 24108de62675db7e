/**
 * Logins and topic ACLs in the embedded broker: no anonymous connections,
 * each machine only with its own password and as itself, publishing only
 * its own uplink topics and reading only its own acks and commands; the
 * gateway by its own secret. Tried with real MQTT clients.
 */
import { strict as assert } from 'node:assert';
import { connectMqtt } from '../lib/mqtt.js';
import { Gateway } from '../../gateway/gateway.js';
import { mayPublish, maySubscribe } from '../../gateway/mqtt/acl.js';
import { GATEWAY_USER, storeCredentials } from '../../gateway/mqtt/credentials.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { MachineHost } from '../../hal-sim/host.js';
import { usMachine } from '../sim/fixtures.js';
import { count, synced } from './backends.js';


describe('MQTT logins and topic ACLs (embedded broker)', function () {
  this.timeout(120000);
  let db: Db;
  let broker: EmbeddedBroker;
  let gw: Gateway;
  const secret = 'gateway-secret-for-this-test';
  let a: { mqttPassword?: string };
  let bee: { mqttPassword?: string };

  before(async () => {
    db = await openDb();
    broker = await startEmbeddedBroker({ port: 0, credentials: storeCredentials(db, secret) });
    gw = await Gateway.start({ mqttUrl: broker.url, db, username: GATEWAY_USER, password: secret });
    a = await gw.commands.provision('vm-a');
    bee = await gw.commands.provision('vm-b');
  });
  after(async () => {
    await gw?.close();
    await broker?.close();
    await db?.close();
  });

  it('says who may publish and subscribe where', () => {
    const m = { kind: 'machine', id: 'vm-a' } as const;
    const g = { kind: 'gateway' } as const;
    assert.ok(mayPublish(m, 'fleet/vm-a/events'));
    assert.ok(mayPublish(m, 'fleet/vm-a/status'));
    assert.ok(!mayPublish(m, 'fleet/vm-b/events'), 'not for another machine');
    assert.ok(!mayPublish(m, 'fleet/vm-a/acks'), 'not the gateway\'s topics');
    assert.ok(!mayPublish(m, 'fleet/+/events'));
    assert.ok(!mayPublish(m, 'fleet/vm-a/events/extra'));
    assert.ok(maySubscribe(m, 'fleet/vm-a/commands'));
    assert.ok(!maySubscribe(m, 'fleet/vm-b/commands'));
    assert.ok(!maySubscribe(m, 'fleet/+/commands'));
    assert.ok(!maySubscribe(m, 'fleet/#'));
    assert.ok(mayPublish(g, 'fleet/vm-a/commands'));
    assert.ok(!mayPublish(g, 'fleet/vm-a/events'), 'the gateway does not speak for machines');
    assert.ok(maySubscribe(g, '$share/vendfleet/fleet/+/events'));
    assert.ok(!maySubscribe(g, 'fleet/+/commands'));
  });

  it('refuses anonymous connections, wrong passwords, and a machine taking another\'s client id', async () => {
    await assert.rejects(connectMqtt(broker.url, { clientId: 'vm-a' }), /Bad username or password|Not authorized|credentials/i);
    await assert.rejects(connectMqtt(broker.url, { clientId: 'vm-a', username: 'vm-a', password: 'guess' }), /Bad username or password/i);
    await assert.rejects(connectMqtt(broker.url, { clientId: 'vm-b', username: 'vm-a', password: a.mqttPassword! }), /Identifier rejected|client id/i);
    await assert.rejects(connectMqtt(broker.url, { clientId: 'x', username: GATEWAY_USER, password: 'guess' }), /Bad username or password/i);
    const ok = await connectMqtt(broker.url, { clientId: 'vm-a', username: 'vm-a', password: a.mqttPassword! });
    await ok.endAsync();
  });

  it('keeps one machine from publishing as another or reading its commands', async () => {
    const spy = await connectMqtt(broker.url, { clientId: 'vm-a', username: 'vm-a', password: a.mqttPassword!, reconnectPeriod: 0 });
    // The broker answers the subscription with a failure code (0x80) for the other machine's topic.
    const refused = await spy.subscribeAsync(['fleet/vm-b/commands', 'fleet/vm-a/commands'], { qos: 1 }).then(
      () => undefined,
      (e: { packet?: { granted?: number[] } }) => e.packet?.granted,
    );
    assert.deepEqual(refused, [128, 1]);
    // Publishing as vm-b: the broker drops it (and the connection); nothing reaches the store.
    const dropped = new Promise<void>((resolve) => spy.once('close', () => resolve()));
    spy.publish('fleet/vm-b/events', JSON.stringify({ v: 1, events: [{ seq: 1, t: 1, type: 'vend-ok', slot: 'A1', price: 1 }] }), { qos: 0 });
    // The broker has refused it once it closes the connection (bounded), not after some time.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([dropped, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the broker kept the connection of a machine publishing as another')), 10000)))]).finally(() => clearTimeout(timer));
    spy.end(true);
    // B's real machine, with its own password, gets through.
    const real = await connectMqtt(broker.url, { clientId: 'vm-b', username: 'vm-b', password: bee.mqttPassword! });
    await real.publishAsync('fleet/vm-b/events', JSON.stringify({ v: 1, events: [{ seq: 1, t: 1, type: 'boot' }] }), { qos: 1 });
    await real.endAsync();
    for (let i = 0; i < 50 && (await count(db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', ['vm-b'])) === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      await gw.ingester.flush();
    }
    // Had the forged one got through, it would have come first and seq 1 would be a sale.
    assert.deepEqual((await db.query<{ type: string }>('SELECT type FROM events WHERE machine_id = $1', ['vm-b'])).rows.map((r) => r.type), ['boot']);
  });

  it('lets a simulated machine with its provisioned login sync its journal and take commands', async () => {
    const p = await gw.commands.provision('vm-c');
    const host = await MachineHost.start(usMachine(), {
      target: 'sim',
      machineId: 'vm-c',
      network: { url: broker.url },
      config: { commandKey: p.commandKey, commandKeyId: p.commandKeyId, uplink: { host: '127.0.0.1', port: broker.port, user: 'vm-c', password: p.mqttPassword! } },
    });
    try {
      const last = await synced(host, 120000);
      assert.ok(last > 0);
      const c = await gw.commands.issue('vm-c', 'lock');
      for (const until = Date.now() + 20000; Date.now() < until; ) {
        await host.run(200);
        await gw.ingester.flush();
        if ((await gw.commands.get(c.id))?.status === 'applied') break;
      }
      assert.equal((await gw.commands.get(c.id))?.status, 'applied');
    } finally {
      await host.close();
    }
  });
});
