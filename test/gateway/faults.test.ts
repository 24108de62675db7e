/**
 * Faults between the machines and the store: the broker restarts, the
 * gateway dies mid-batch, PostgreSQL is unreachable (until both ends retry at their longest waits), a machine
 * is offline for a simulated week. Afterwards every sale is stored exactly
 * once and every machine's unsynced count is 0.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Gateway } from '../../gateway/gateway.js';
import { startEmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { visit } from '../../hal-sim/customers.js';
import { MachineHost } from '../../hal-sim/host.js';
import { Random } from '../../hal-sim/scheduler.js';
import { freePort, startMosquitto } from '../../bench/lib/mosquitto.js';
import { CuttableProxy } from '../../bench/lib/proxy.js';
import { usMachine } from '../sim/fixtures.js';
import { PRODUCTION_DB, synced, assertExactlyOnce } from './backends.js';

const GATEWAY_MAIN = fileURLToPath(new URL('../../gateway/main.js', import.meta.url));

/** The test's own Mosquitto on `port`, killed and started again by the test. */
async function mosquitto(port: number): Promise<ChildProcess> {
  return (await startMosquitto({ port })).process;
}

async function buyRandomly(host: MachineHost, rnd: Random, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await visit(host, rnd, { walkAway: 0.02, cancel: 0.05 });
}

describe('faults between machines and the fleet store', function () {
  this.timeout(240000);
  const spec = usMachine({ slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 500, capacity: 500 }, { code: 'B4', product: 'Coke', price: 175, qty: 500, capacity: 500 }] });

  it('shares the load between several gateways on one broker, each message stored once', async () => {
    const broker = await startMosquitto();
    const schema = `shared_${process.pid}`;
    const dbs = [await openDb({ url: PRODUCTION_DB, schema }), await openDb({ url: PRODUCTION_DB, schema })];
    const gws = [
      await Gateway.start({ mqttUrl: broker.url, db: dbs[0]!, shareGroup: 'vendfleet', clientId: 'vf-share-1' }),
      await Gateway.start({ mqttUrl: broker.url, db: dbs[1]!, shareGroup: 'vendfleet', clientId: 'vf-share-2' }),
    ];
    const ids = Array.from({ length: 8 }, (_, i) => `vm-s${i}`);
    await gws[0]!.addMachines(ids);
    gws[1]!.ingester.known(ids);
    const hosts = await Promise.all(ids.map((id, i) => MachineHost.start(spec, { machineId: id, seed: i + 1, network: { url: broker.url } })));
    try {
      await Promise.all(hosts.map((h, i) => buyRandomly(h, new Random(10 + i), 3)));
      await Promise.all(hosts.map((h) => synced(h)));
      for (const [i, h] of hosts.entries()) await assertExactlyOnce(dbs[0]!, h, ids[i]!);
      const [a, b] = gws.map((g) => g.ingester.stats.messages);
      assert.ok(a! > 0 && b! > 0, `both gateways took messages (${a} and ${b})`);
    } finally {
      await Promise.all(hosts.map((h) => h.close()));
      for (const g of gws) await g.close();
      await dbs[0]!.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
      for (const d of dbs) await d.close();
      broker.process.kill('SIGKILL');
    }
  });

  it('survives a broker restart (Mosquitto killed and started again)', async () => {
    const port = await freePort();
    let broker = await mosquitto(port);
    const db = await openDb();
    const gw = await Gateway.start({ mqttUrl: `mqtt://127.0.0.1:${port}`, db, clientId: 'vf-fault-gw' });
    await gw.addMachines(['vm-b']);
    const host = await MachineHost.start(spec, { machineId: 'vm-b', network: { url: `mqtt://127.0.0.1:${port}` } });
    const rnd = new Random(3);
    try {
      await buyRandomly(host, rnd, 3);
      broker.kill('SIGKILL');
      await buyRandomly(host, rnd, 3);
      await host.run(5000);
      broker = await mosquitto(port);
      await buyRandomly(host, rnd, 2);
      await synced(host);
      await gw.ingester.flush();
      await assertExactlyOnce(db, host, 'vm-b');
      assert.ok((await host.status()).uplink!.connects >= 2, 'the machine reconnected');
    } finally {
      await host.close();
      await gw.close();
      await db.close();
      broker.kill('SIGKILL');
    }
  });

  it('survives the gateway process being killed mid-batch and a new one taking over', async () => {
    // A real gateway process (npm run gateway) on PostgreSQL, SIGKILLed with a batch in hand.
    const schema = `killed_${process.pid}`;
    const db = await openDb({ url: PRODUCTION_DB, schema });
    const broker = await startEmbeddedBroker({ port: 0 });
    const url = new URL(PRODUCTION_DB);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const startGateway = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [GATEWAY_MAIN], {
        env: { ...process.env, MQTT_URL: broker.url, DATABASE_URL: url.toString(), GATEWAY_SHARE_GROUP: '', GATEWAY_CLIENT_ID: 'vf-killed' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      await new Promise<void>((resolve, reject) => {
        child.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          if (/gateway: subscribed/.test(err)) resolve();
        });
        child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${err}`)));
      });
      return child;
    };
    let gateway = await startGateway();
    await db.query('INSERT INTO machines (id) VALUES ($1) ON CONFLICT DO NOTHING', ['vm-g']);
    const host = await MachineHost.start(spec, { machineId: 'vm-g', network: { url: broker.url } });
    const rnd = new Random(4);
    try {
      await buyRandomly(host, rnd, 3);
      host.select('A1');
      await host.runUntilIdle();
      host.insertCoin(100);
      host.insertCoin(25);
      gateway.kill('SIGKILL');
      await host.runUntilIdle();
      await buyRandomly(host, rnd, 2);
      gateway = await startGateway();
      // Synced: the gateway acknowledged every event, which it does only once they are stored (the key (machine, seq) keeps a late resend from doubling one).
      await synced(host);
      await assertExactlyOnce(db, host, 'vm-g');
      assert.ok((await host.status()).uplink!.resends >= 1, 'the machine sent again what was never acknowledged');
    } finally {
      await host.close();
      gateway.kill('SIGKILL');
      await db.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
      await db.close();
      await broker.close();
    }
  });

  it('holds everything while PostgreSQL is unreachable until both ends wait their longest between tries, then stores it all once', async () => {
    const proxy = new CuttableProxy(await freePort(), { host: '127.0.0.1', port: 5432 });
    await proxy.start();
    const url = new URL(PRODUCTION_DB);
    url.port = String(proxy.port);
    url.hostname = '127.0.0.1';
    const schema = `fault_${process.pid}`;
    const db: Db = await openDb({ url: url.toString(), schema });
    const broker = await startEmbeddedBroker({ port: 0 });
    const gw = await Gateway.start({ mqttUrl: broker.url, db });
    await gw.addMachines(['vm-d']);
    const host = await MachineHost.start(spec, { machineId: 'vm-d', network: { url: broker.url } });
    const rnd = new Random(5);
    try {
      await buyRandomly(host, rnd, 2);
      await synced(host);
      await proxy.cut();
      const errorsBefore = gw.ingester.stats.storeErrors;
      const resendsBefore = (await host.status()).uplink!.resends;
      // The outage lasts until nothing new can happen in it, not for a fixed time (it was a minute of
      // real time, then about 1,100 s of machine time to catch up): the gateway has backed off to its
      // longest wait (250 ms doubling to 2 s: the 5th and 6th failed tries each come after 2 s) and the machine to its longest probe wait
      // (20 s doubling to 5 min: the 5th resend is the first after a 5-minute wait), and sales wait.
      // Both ends repeat from there on; at 100 times real time this is about 10 s, not 60.
      const longest = async (): Promise<boolean> =>
        gw.ingester.stats.storeErrors - errorsBefore >= 6 && (await host.status()).uplink!.resends - resendsBefore >= 5;
      for (const until = Date.now() + 180000; !(await longest()); ) {
        assert.ok(Date.now() < until, `the outage went on: ${gw.ingester.stats.storeErrors - errorsBefore} failed store tries, ${(await host.status()).uplink!.resends - resendsBefore} probes`);
        await buyRandomly(host, rnd, 1);
        await host.run(2000);
      }
      const during = await host.status();
      assert.ok(during.journal.unsynced > 0, 'sales made during the outage wait on the machine');
      assert.ok(gw.ingester.stats.storeErrors > errorsBefore, 'the gateway saw the store go');
      await proxy.start();
      // The machine probes again within its longest wait (5 min of its time) and then drains what it holds.
      await synced(host, 3600000);
      await gw.ingester.flush();
      await assertExactlyOnce(db, host, 'vm-d');
    } finally {
      await host.close();
      await gw.close();
      await proxy.start().catch(() => {});
      await db.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
      await db.close();
      await broker.close();
      await proxy.cut();
    }
  });

  it('catches up after a simulated week offline', async function () {
    this.timeout(600000);
    const broker = await startEmbeddedBroker({ port: 0 });
    const db = await openDb();
    const gw = await Gateway.start({ mqttUrl: broker.url, db });
    await gw.addMachines(['vm-w']);
    // Polling every 200 ms (MDB allows it) halves the cost of simulating a week of it, and a coin-only
    // machine (its customers pay in coins) has one device to poll, not two: the week is its journal's.
    const host = await MachineHost.start({ ...spec, bills: [] }, { machineId: 'vm-w', network: { url: broker.url }, config: { pollIntervalMs: 200 } });
    const rnd = new Random(6);
    try {
      await buyRandomly(host, rnd, 1);
      await synced(host);
      host.setNetwork(false);
      // A week: a customer paying exactly every half hour or so, nobody at the gateway end.
      const week = 7 * 24 * 3600 * 1000;
      const start = host.nowMs;
      let visits = 0;
      while (host.nowMs - start < week) {
        await host.run(rnd.int(20, 40) * 60000);
        host.select(visits % 2 === 0 ? 'A1' : 'B4');
        await host.runUntilIdle();
        for (const coin of visits % 2 === 0 ? [100, 25] : [100, 25, 25, 25]) {
          host.insertCoin(coin);
          await host.runUntilIdle();
        }
        visits++;
      }
      const offline = await host.status();
      assert.ok(offline.journal.unsynced > 1000, `${offline.journal.unsynced} events kept through the week (${visits} customers, ${offline.counters.sales} sales)`);
      assert.equal(offline.journal.level, 'ok', 'the journal has room for a week');
      host.setNetwork(true);
      await synced(host, 3600000);
      await gw.ingester.flush();
      await assertExactlyOnce(db, host, 'vm-w');
    } finally {
      await host.close();
      await gw.close();
      await db.close();
      await broker.close();
    }
  });
});
