/**
 * The fleet on a 3-node RabbitMQ cluster of the test's own (bench/lib/rabbitmq.ts;
 * the machine's node is never touched): simulated machines (the real
 * firmware) speak MQTT to the nodes' MQTT plugin, configured with all three
 * addresses; two gateways consume the uplink over AMQP from quorum queues.
 * Under load, the node the gateways read from is killed (SIGKILL), then,
 * with that one back, the node a machine is connected to. Every sale is
 * stored once, and the test says how long ingest paused each time.
 *
 * Also: RabbitMQ's MQTT plugin grants a $share subscription and delivers
 * nothing on it; a gateway on MQTT with a share group says so loudly and
 * in /health, never silently. And `npm run gateway` takes the cluster from
 * AMQP_URL.
 *
 * Run on its own (npm run test:cluster; a step of .ci/run): it starts Erlang
 * VMs and takes minutes, not seconds.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApi } from '../../gateway/api/server.js';
import { Gateway } from '../../gateway/gateway.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { MachineHost } from '../../hal-sim/host.js';
import { sell } from '../lib/customers.js';
import { freePort } from '../../bench/lib/mosquitto.js';
import { RabbitCluster, type RabbitNode } from '../../bench/lib/rabbitmq.js';
import { usMachine } from '../sim/fixtures.js';
import { PRODUCTION_DB, assertExactlyOnce, eventually, synced } from '../gateway/backends.js';

const spec = usMachine({ slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 500, capacity: 500 }, { code: 'B4', product: 'Coke', price: 175, qty: 500, capacity: 500 }] });


describe('a RabbitMQ cluster: nodes dying under load', function () {
  this.timeout(600000);
  let cluster: RabbitCluster | undefined;

  before(async function () {
    const started = Date.now();
    cluster = await RabbitCluster.start(3);
    console.log(`      (3-node cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  });

  after(async () => {
    await cluster?.close();
  });

  it('stores every sale once while the node the gateways read from dies, then the node a machine is connected to; ingest pauses briefly each time', async () => {
    const c = cluster!;
    const [n1, n2, n3] = c.nodes as [RabbitNode, RabbitNode, RabbitNode];
    const schema = `cluster_${process.pid}`;
    const dbs: Db[] = [await openDb({ url: PRODUCTION_DB, schema }), await openDb({ url: PRODUCTION_DB, schema })];
    const gws: Gateway[] = [];
    const ids = Array.from({ length: 4 }, (_, i) => `vm-cluster${i}`);
    let hosts: MachineHost[] = [];
    const logs: string[] = [];
    try {
      // Both gateways read from n1 first; machines are spread over n2 and n3 (each knows all three).
      for (const [i, db] of dbs.entries()) {
        gws.push(
          await Gateway.start({
            amqp: { urls: [n1.amqpUrl, n2.amqpUrl, n3.amqpUrl] },
            db,
            shareGroup: `vfc${process.pid}`,
            probeTimeoutMs: 15000,
            onLog: (level, m) => logs.push(`gw${i} ${level} ${m}`),
          }),
        );
      }
      for (const g of gws) await eventually('the probe back', async () => (g.health().mqtt.every((m) => m.subscription === 'receiving') ? true : undefined), 60000);
      await gws[0]!.addMachines(ids);
      gws[1]!.ingester.known(ids);
      hosts = await Promise.all(
        ids.map((id, i) =>
          MachineHost.start(spec, { machineId: id, seed: 60 + i, network: { url: i % 2 === 0 ? [n2.mqttUrl, n3.mqttUrl, n1.mqttUrl] : [n3.mqttUrl, n2.mqttUrl, n1.mqttUrl], speed: 20 } }),
        ),
      );
      const stored = (): number => gws.reduce((a, g) => a + g.ingester.stats.events, 0);
      let killedAt = 0;
      /** From a node's death until ingest stores a new event, ms. */
      const paused = async (what: string, kill: () => Promise<void>): Promise<number> => {
        logs.push(`test: ${new Date().toISOString()} ${what}`);
        await eventually('sales stored', async () => (stored() > 0 ? true : undefined), 120000);
        killedAt = Date.now();
        await kill();
        const base = stored();
        await eventually(`ingest resuming after ${what}`, async () => (stored() > base ? true : undefined), 180000);
        return Date.now() - killedAt;
      };
      const load = sell(hosts, 900);
      await eventually('sales stored', async () => (stored() >= 20 ? true : undefined), 180000);

      // 1. The node both gateways read from.
      assert.ok(gws.every((g) => (g.feed as { url?: string }).url?.includes(`:${n1.amqpPort}`)), 'the gateways read from n1');
      const first = await paused('the gateways’ node died', () => c.kill(n1));
      await eventually('the gateways on another node', async () => (gws.every((g) => g.connected && !(g.feed as { url?: string }).url?.includes(`:${n1.amqpPort}`)) ? true : undefined), 60000);
      // Nodes come back: with n1 down and another node killed, the queues would have lost their majority.
      await c.restart(n1);
      logs.push(`test: ${new Date().toISOString()} n1 back`);

      // 2. The node a machine is connected to (n2 or n3, whichever machine 0 is on).
      const on = hosts[0]!.network!.connectedTo;
      const victim = on ? c.byMqttPort(on.port) : undefined;
      assert.ok(victim && victim !== n1, `machine 0 is on n2 or n3 (${JSON.stringify(on)})`);
      const second = await paused('a machine’s node died', () => c.kill(victim));
      // Machine 0 sells again through another node.
      await eventually(
        'machine 0 online through another node',
        async () => ((await hosts[0]!.status()).uplink?.state === 'online' && hosts[0]!.network!.connectedTo?.port !== victim.mqttPort ? true : undefined),
        120000,
      );
      const moved = Date.now() - killedAt;
      const before0 = (await hosts[0]!.status()).journal.lastSeq;
      await eventually('machine 0 selling and synced past the kill', async () => {
        const st = await hosts[0]!.status();
        return st.journal.lastSeq > before0 && st.journal.unsynced === 0 ? true : undefined;
      }, 180000);

      await load.stop();
      await Promise.all(hosts.map((h) => synced(h)));
      for (const g of gws) await g.ingester.flush();
      for (const [i, h] of hosts.entries()) await assertExactlyOnce(dbs[0]!, h, ids[i]!);
      const sales = (await Promise.all(hosts.map((h) => h.status()))).reduce((a, s) => a + s.counters.sales, 0);
      console.log(
        `      (ingest paused ${(first / 1000).toFixed(1)} s when the gateways' node died, ${(second / 1000).toFixed(1)} s when a machine's node died` +
          ` (that machine online through another node after ${(moved / 1000).toFixed(1)} s); ${sales} sales stored once)`,
      );
      assert.ok(sales > 0);
    } catch (e) {
      console.log(logs.slice(-40).join('\n'));
      throw e;
    } finally {
      await Promise.all(hosts.map((h) => h.close()));
      for (const g of gws) await g.close();
      await dbs[0]!.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
      for (const d of dbs) await d.close();
    }
  });

  it('a gateway on the MQTT plugin with a share group (granted, delivers nothing) says so loudly and in /health', async () => {
    const node = cluster!.nodes.find((n) => n.process !== undefined)!;
    const db = await openDb();
    const logs: string[] = [];
    const gw = await Gateway.start({ mqttUrl: node.mqttUrl, db, shareGroup: 'vf-share', probeTimeoutMs: 1000, onLog: (level, m) => logs.push(`${level} ${m}`) });
    const api = await buildApi({ db, commands: gw.commands, health: () => gw.health() });
    try {
      await eventually('deaf', async () => (gw.health().mqtt[0]!.subscription === 'deaf' ? true : undefined), 60000);
      assert.ok(logs.some((l) => l.startsWith('error') && /NOTHING IS BEING RECEIVED/.test(l) && /RabbitMQ/.test(l)), logs.join('\n'));
      const r = await api.inject({ method: 'GET', url: '/health' });
      assert.equal(r.statusCode, 503);
      assert.ok((r.json() as { problems: string[] }).problems.some((p) => /accepts the subscription but delivers nothing/.test(p)));
    } finally {
      await api.close();
      await gw.close();
      await db.close();
    }
  });

  it('npm run gateway with AMQP_URL (the nodes, comma-separated) consumes the quorum queues and says it is receiving in /health', async () => {
    const up = cluster!.nodes.filter((n) => n.process !== undefined);
    const dir = mkdtempSync(join(tmpdir(), 'vf-cluster-gw-'));
    const main = fileURLToPath(new URL('../../gateway/main.js', import.meta.url));
    // A dead address first: the gateway moves on to the next.
    const urls = ['amqp://guest:guest@127.0.0.1:1', ...up.map((n) => n.amqpUrl)].join(',');
    const child = spawn(process.execPath, [main], { env: { ...process.env, DATA_DIR: dir, API_PORT: String(await freePort()), DATABASE_URL: '', MQTT_URL: '', AMQP_URL: urls, GATEWAY_SHARE_GROUP: 'vf-main' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const api = await eventually('the operator API', async () => /operator API on (http:\/\/[\d.:]+)/.exec(out)?.[1], 120000);
      assert.match(out, /consuming vf-main\.ingest, vf-main\.audits, vf-main\.updates \(quorum queues bound to amq\.topic\)/, out);
      assert.doesNotMatch(out, /embedded MQTT broker/);
      assert.doesNotMatch(out, /guest:guest/, 'no password in the log');
      const health = await eventually(
        'receiving',
        async () => {
          const r = await fetch(`${api}/health`);
          const h = (await r.json()) as { feed: { kind: string; connections: { name: string; subscription: string }[] }; mqtt: unknown[] };
          return r.status === 200 && h.feed.connections.every((m) => m.subscription === 'receiving') ? h : undefined;
        },
        60000,
      );
      // Named for what it is: an AMQP feed, not an MQTT subscription (the old `mqtt` list stays, the same connections).
      assert.equal(health.feed.kind, 'amqp');
      assert.deepEqual(health.feed.connections.map((c) => c.name), ['ingest', 'audits', 'updates']);
      assert.deepEqual(health.mqtt, health.feed.connections);
    } finally {
      child.kill('SIGTERM');
      await closed;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
