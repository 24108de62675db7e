/**
 * A firmware update end to end, on both targets, with nothing played by the
 * test but the operator: a signed image in the gateway's registry, offered
 * to the machine, a signed `update` command on the machine's commands
 * topic. The firmware's updater fetches the image over MQTT from the
 * gateway's chunk server, checks it, switches when the machine is idle, and
 * the new image confirms itself once it sees its devices, the broker and
 * the gateway's acknowledgements; the gateway stores every step as the
 * machine's events. A bad image rolls itself back and the previous image
 * says why; an update the gateway calls off mid-download is given up; an
 * image shorter than the command said and a downgrade are refused, and
 * nothing half-written boots.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import type mqtt from 'mqtt';
import { signCommand } from '../../gateway/commands/envelope.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { Gateway } from '../../gateway/gateway.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import { MachineHost } from '../../hal-sim/host.js';
import { buildImage } from '../../hal-sim/images.js';
import { assertExactlyOnce, synced } from '../gateway/backends.js';
import { keysFile, signed, testKey } from '../gateway/firmware-fixtures.js';
import { connectMqtt } from '../lib/mqtt.js';
import { usMachine } from './fixtures.js';

interface Running {
  version: string;
  probation: boolean;
  rolledBack?: { version: string; reason: string };
}

const running = async (host: MachineHost): Promise<Running> => (await host.runInGuest('return vendfleetGuest.board.firmware.running;')) as Running;

for (const target of ['sim', 'xs'] as const) {
  describe(`a firmware update through the gateway (${target})`, function () {
    this.timeout(600000);
    const release = testKey();
    const machineKey = randomBytes(32);
    let broker: EmbeddedBroker;
    let db: Db;
    let gw: Gateway;
    let registry: FirmwareRegistry;
    let client: mqtt.MqttClient;
    let made = 0;
    const hosts: MachineHost[] = [];
    /** Images uploaded, by version: the registry never holds two under one version. */
    const uploaded = new Map<string, { sha: string; size: number }>();

    before(async () => {
      broker = await startEmbeddedBroker({ port: 0 });
      db = await openDb();
      await migrate(db);
      registry = new FirmwareRegistry(db, { keyFiles: [{ path: keysFile(release), optional: false }] });
      gw = await Gateway.start({ mqttUrl: broker.url, db, alerts: false, updates: { source: registry, bytesPerSecond: 1 << 20, burstBytes: 1 << 18 }, firmware: registry });
      client = await connectMqtt(broker.url);
    });
    after(async () => {
      for (const h of hosts) await h.close();
      await client?.endAsync();
      await gw?.close();
      await db?.close();
      await broker?.close();
    });

    /** A machine online: with the test's command key, or (`provisioned`) with one the gateway made, for commands it sends itself. */
    async function machine(provisioned = false): Promise<{ host: MachineHost; id: string }> {
      const id = `vm-upd-${target}-${process.pid}-${made++}`;
      let key = machineKey.toString('hex');
      if (provisioned) key = (await gw.commands.provision(id)).commandKey;
      else await addMachines(db, [id]);
      const host = await MachineHost.start(usMachine(), {
        target,
        machineId: id,
        // Ten times real time while connected: a request's 30 s timeout (virtual) is 3 s of the real broker's and gateway's time.
        network: { url: broker.url, speed: 10 },
        config: {
          commandKey: key,
          commandKeyId: 1,
          update: { bytesPerSecond: 65536, chunkBytes: 4096, inFlight: 4, requestTimeoutMs: 30000, probationMs: 60000 },
        },
      });
      hosts.push(host);
      await until(host, 'online', async () => (await host.status()).uplink?.state === 'online');
      return { host, id };
    }

    /** Run the machine until `check` holds: bounded in machine time and in real time. */
    async function until(host: MachineHost, what: string, check: () => Promise<boolean>, machineMs = 900_000): Promise<void> {
      const realEnd = Date.now() + 240_000;
      for (let t = 0; t < machineMs && Date.now() < realEnd; t += 500) {
        if (await check()) return;
        await host.run(500);
      }
      assert.ok(await check(), `${what} (machine time ${host.nowMs} ms)`);
    }

    async function upload(version: string, bad?: 'no-broker'): Promise<{ sha: string; size: number }> {
      const known = uploaded.get(version);
      if (known) return known;
      const image = buildImage(bad ? { version, bad } : { version });
      const bytes = Buffer.from(image.bytes);
      await registry.upload(signed(bytes, version, release));
      const got = { sha: sha256Hex(bytes), size: bytes.length };
      uploaded.set(version, got);
      return got;
    }

    function update(host: MachineHost, id: string, n: number, args: Record<string, unknown>): Promise<unknown> {
      const issued = Math.floor(host.wallMs / 1000);
      const payload = signCommand({ machine: id, n, type: 'update', issued, expires: issued + 3600, args: { journal: 1, source: 'mqtt', ...args } }, 1, machineKey);
      return client.publishAsync(`fleet/${id}/commands`, payload, { qos: 1 });
    }

    /** The machine's events the gateway stored, as type and body. */
    async function events(id: string, type?: string): Promise<Record<string, unknown>[]> {
      const r = await db.query<{ type: string; body: Record<string, unknown> }>('SELECT type, body FROM events WHERE machine_id = $1 ORDER BY seq', [id]);
      return r.rows.filter((e) => type === undefined || e.type === type).map((e) => e.body);
    }

    const phases = async (id: string): Promise<string[]> => (await events(id, 'update')).map((e) => `${String(e['phase'])}${e['reason'] ? ` ${String(e['reason'])}` : ''}`);

    it('0.1.0 to 0.2.0: fetched over MQTT and checked, switched while idle, confirmed after probation, each step stored by the gateway', async () => {
      const { host, id } = await machine();
      const image = await upload('0.2.0');
      await registry.offer(id, image.sha);
      await update(host, id, 1, { version: '0.2.0', size: image.size, sha256: image.sha });
      await until(host, 'the machine runs 0.2.0', async () => host.image.version === '0.2.0');
      assert.ok(host.logs.some((l) => l.message.startsWith('vendfleet 0.2.0 starting')), 'the new code runs');
      await until(host, '0.2.0 confirms itself', async () => (await running(host)).probation === false);
      await until(host, 'the gateway stores the confirmation', async () => (await phases(id)).includes('confirmed'));
      assert.deepEqual(await phases(id), ['downloaded', 'installing', 'confirmed']);
      const begin = (await events(id, 'update-begin'))[0]!;
      assert.deepEqual([begin['n'], begin['version'], begin['size'], begin['sha256']], [1, '0.2.0', image.size, image.sha]);
      const outcome = (await events(id, 'command')).find((e) => e['n'] === 1)!;
      assert.equal(outcome['outcome'], 'applied');
      // A power cut now comes back to 0.2.0, and the machine sells.
      await host.powerCut();
      assert.equal(host.image.version, '0.2.0');
      assert.equal((await host.runUntilIdle()).state, 'IDLE');
    });

    it('power cuts mid-download, between complete() and the restart, and during the probation: a good image boots every time and every sale is stored once', async () => {
      const { host, id } = await machine();
      const image = await upload('0.2.0');
      await registry.offer(id, image.sha);
      const sell = async (): Promise<void> => {
        const before = host.rig.delivered.length;
        host.select('A1');
        await host.runUntilIdle();
        host.insertBill(100);
        await host.runUntilIdle();
        host.insertCoin(25);
        await host.runUntilIdle();
        assert.equal(host.rig.delivered.length, before + 1, 'the chips came out');
      };
      await sell();
      await update(host, id, 1, { version: '0.2.0', size: image.size, sha256: image.sha });
      // Mid-download, once the first 64 KiB are journaled: the download resumes from there.
      await until(host, 'the first 64 KiB are in', async () => ((await host.status()).update?.offset ?? 0) >= 65536);
      await host.powerCut();
      assert.equal(host.image.version, '0.1.0');
      await until(host, 'the download carries on', async () => (await host.status()).update?.state === 'downloading');
      await sell();
      // Credit held: no safe moment, so the complete image waits; the power fails then.
      host.select('A1');
      host.insertBill(100);
      await until(host, 'downloaded, waiting for a safe moment', async () => (await host.status()).update?.state === 'waiting');
      await host.powerCut();
      assert.equal(host.image.version, '0.2.0', 'complete() selected the new image: it boots, on probation');
      assert.equal((await running(host)).probation, true);
      // And the power fails again before it could confirm: the bootloader brings 0.1.0 back.
      await host.powerCut();
      assert.equal(host.image.version, '0.1.0');
      assert.equal((await running(host)).rolledBack?.reason, 'power');
      // The customer's credit survived all of it (the selection did not: it was in RAM): the sale completes.
      assert.equal((await host.status()).credit, 100, 'the credit is kept');
      const before = host.rig.delivered.length;
      host.insertCoin(25);
      await host.runUntilIdle();
      host.select('A1');
      await host.runUntilIdle();
      assert.equal(host.rig.delivered.length, before + 1, 'the held credit bought the chips');
      await until(host, 'the rollback is stored', async () => (await phases(id)).some((p) => p.startsWith('rolled-back')));
      // The operator tries again: this time it takes.
      await update(host, id, 2, { version: '0.2.0', size: image.size, sha256: image.sha });
      await until(host, '0.2.0 confirmed', async () => host.image.version === '0.2.0' && (await running(host)).probation === false && (await phases(id)).filter((p) => p === 'confirmed').length === 1);
      await sell();
      assert.deepEqual(await phases(id), ['downloaded', 'rolled-back power', 'downloaded', 'installing', 'confirmed']);
      await synced(host);
      await assertExactlyOnce(db, host, id);
      assert.equal((await host.status()).counters.sales, 4);
    });

    it('an image that never reaches the broker fails its probation, and 0.1.0 comes back and says why', async () => {
      const { host, id } = await machine();
      const image = await upload('0.3.0', 'no-broker');
      await registry.offer(id, image.sha);
      await update(host, id, 1, { version: '0.3.0', size: image.size, sha256: image.sha });
      await until(host, 'the bad image boots', async () => host.image.version === '0.3.0');
      await until(host, '0.1.0 is back', async () => host.image.version === '0.1.0');
      assert.deepEqual((await running(host)).rolledBack, { version: '0.3.0', reason: 'probation: broker' });
      await until(host, 'the gateway stores the rollback', async () => (await phases(id)).some((p) => p.startsWith('rolled-back')));
      assert.deepEqual(await phases(id), ['downloaded', 'installing', 'rolled-back probation: broker']);
    });

    it('an update called off mid-download: the gateway serves no more of it, the machine gives it up and stays on 0.1.0', async () => {
      const { host, id } = await machine(true);
      await upload('0.2.0');
      const sent = await gw.commands.issue(id, 'update', { version: '0.2.0' });
      await until(host, 'the first 64 KiB are in', async () => ((await host.status()).update?.offset ?? 0) >= 65536);
      const off = await gw.commands.cancelUpdate(sent.id);
      assert.equal(off?.status, 'cancelled');
      assert.deepEqual(await registry.offersTo(id), []);
      await until(host, 'the gateway stores the failure', async () => (await phases(id)).length > 0);
      assert.deepEqual(await phases(id), ['failed source-refused']);
      assert.equal((await host.status()).update, undefined, 'nothing under way');
      assert.equal((await gw.commands.get(sent.id))?.status, 'cancelled', 'what the machine said after moves the command no more');
      await host.powerCut();
      assert.equal(host.image.version, '0.1.0');
      assert.equal((await running(host)).probation, false);
    });

    it('an image shorter than the command said and a downgrade are refused; nothing half-written boots', async () => {
      const { host, id } = await machine();
      const image = await upload('0.2.0');
      await registry.offer(id, image.sha);
      await update(host, id, 1, { version: '0.0.9', size: image.size, sha256: image.sha });
      await update(host, id, 2, { version: '0.2.0', size: image.size + 5000, sha256: image.sha });
      await until(host, 'the gateway stores the failure', async () => (await phases(id)).length > 0);
      assert.deepEqual(await phases(id), ['failed short-image']);
      const outcomes = (await events(id, 'command')).map((e) => [e['n'], e['outcome'], e['reason'] ?? '']);
      assert.deepEqual(outcomes, [
        [1, 'refused', 'downgrade'],
        [2, 'applied', ''],
      ]);
      await host.powerCut();
      assert.equal(host.image.version, '0.1.0');
      assert.equal((await running(host)).probation, false);
    });
  });
}
