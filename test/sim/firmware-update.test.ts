/**
 * Firmware images end to end, on both targets: a machine connected to a
 * real broker gets a newer image written into its inactive slot through its
 * board (a script in the guest plays the updater, which is not built yet:
 * the same `board.firmware` calls, from inside the firmware's world), a
 * power cut tears the write and the write resumes at a block boundary, the
 * machine restarts into the new version and says so in its status and
 * telemetry, and keeps it once marked valid. Bad images (one that throws at
 * start, one that never reaches the broker) boot, fail, and the previous
 * image comes back and knows why.
 */
import { strict as assert } from 'node:assert';
import type { MqttClient } from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { MachineHost } from '../../hal-sim/host.js';
import { buildImage } from '../../hal-sim/images.js';
import { connectMqtt } from '../lib/mqtt.js';
import { usMachine } from './fixtures.js';

interface Running {
  version: string;
  probation: boolean;
  rolledBack?: { version: string; reason: string };
}

const running = async (host: MachineHost): Promise<Running> => (await host.runInGuest('return vendfleetGuest.board.firmware.running;')) as Running;

/**
 * Write `bytes` into the inactive slot through the board, from `offset`, in chunks; stops early
 * if the power fails. Then, unless told otherwise, complete and restart as the updater will.
 */
async function writeImage(host: MachineHost, bytes: Uint8Array, options: { offset?: number; until?: number; finish?: boolean } = {}): Promise<void> {
  const offset = options.offset ?? 0;
  await host.runInGuest(`globalThis.writer = vendfleetGuest.board.firmware.open({ byteLength: ${bytes.length}, offset: ${offset} });`);
  const end = options.until ?? bytes.length;
  for (let at = offset; at < end && !host.dead; at += 32768) {
    // An array literal: quick for XS to read (decoding hex text in XS takes seconds).
    await host.runInGuest(`globalThis.writer.write(new Uint8Array([${bytes.subarray(at, Math.min(end, at + 32768)).join(',')}]));`);
  }
  if (options.finish !== false && !host.dead) await host.runInGuest('globalThis.writer.complete(); vendfleetGuest.board.restart();');
}

for (const target of ['sim', 'xs'] as const) {
  describe(`firmware updates end to end (${target})`, function () {
    this.timeout(300000);
    let broker: EmbeddedBroker;
    let client: MqttClient;
    let seen: { topic: string; body: { fw?: string; online?: boolean } }[] = [];
    let n = 0;

    before(async () => {
      broker = await startEmbeddedBroker({ port: 0 });
      client = await connectMqtt(broker.url);
      client.on('message', (topic, payload) => {
        try {
          seen.push({ topic, body: JSON.parse(payload.toString('utf8')) as { fw?: string; online?: boolean } });
        } catch {
          // Not JSON: not ours to read.
        }
      });
      await client.subscribeAsync(['fleet/+/status', 'fleet/+/telemetry']);
    });
    after(async () => {
      await client?.endAsync();
      await broker?.close();
    });

    async function machine(): Promise<{ host: MachineHost; id: string }> {
      const id = `vm-ota-${target}-${process.pid}-${n++}`;
      const host = await MachineHost.start(usMachine(), { target, machineId: id, network: { url: broker.url } });
      return { host, id };
    }

    /** Run the machine until the broker has its status (online) and telemetry with firmware `fw` since `from`. */
    async function reports(host: MachineHost, id: string, fw: string, from: number): Promise<void> {
      const has = (): boolean =>
        seen.slice(from).some((m) => m.topic === `fleet/${id}/status` && m.body.online === true && m.body.fw === fw) &&
        seen.slice(from).some((m) => m.topic === `fleet/${id}/telemetry` && m.body.fw === fw);
      for (let i = 0; i < 400 && !has(); i++) await host.run(250);
      assert.ok(has(), `the broker heard ${id} report firmware ${fw} (heard: ${JSON.stringify(seen.slice(from).filter((m) => m.topic.includes(id)))})`);
    }

    it('a newer image, written through the board across a power cut, boots on probation, reports its version and stays once valid', async () => {
      const { host, id } = await machine();
      try {
        await reports(host, id, '0.1.0', 0);
        assert.deepEqual(await running(host), { version: '0.1.0', probation: false });
        const image = buildImage({ version: '0.2.0' });
        assert.ok(image.bytes.length > 256 * 1024, `a realistic image: ${image.bytes.length} bytes`);

        // The power fails in the middle of a write, 100 KiB in (ops: open, then erase and write per block).
        host.slots.cutAt(host.slots.ops + 2 + 2 * 25, 1000);
        await writeImage(host, image.bytes, { finish: false });
        assert.ok(host.dead, 'the cut happened');
        await host.reboot();
        assert.equal(host.image.version, '0.1.0');
        assert.equal(host.slots.state(1), 'written');
        assert.deepEqual(await running(host), { version: '0.1.0', probation: false });

        // Resume from the last 64 KiB the updater journaled: only what follows is written again.
        const from = seen.length;
        await writeImage(host, image.bytes, { offset: 65536 });
        assert.equal(host.image.version, '0.2.0', 'the new image runs');
        assert.equal(host.restarts, 1);
        assert.deepEqual(await running(host), { version: '0.2.0', probation: true });
        assert.ok(host.logs.some((l) => l.message.startsWith('vendfleet 0.2.0 starting')), 'its own code says 0.2.0');
        await reports(host, id, '0.2.0', from);

        // Probation over: a power cut now comes back to 0.2.0.
        await host.runInGuest('vendfleetGuest.board.firmware.markValid();');
        assert.deepEqual(await running(host), { version: '0.2.0', probation: false });
        await host.powerCut();
        assert.equal(host.image.version, '0.2.0');
        assert.deepEqual(await running(host), { version: '0.2.0', probation: false });
        const st = await host.runUntilIdle();
        assert.equal(st.state, 'IDLE', 'and it sells');
      } finally {
        await host.close();
      }
    });

    it('an image that throws at start boots the previous one, which reads that it crashed', async () => {
      const { host, id } = await machine();
      try {
        await reports(host, id, '0.1.0', 0);
        const from = seen.length;
        await writeImage(host, buildImage({ version: '0.3.0', bad: 'throws-at-start' }).bytes);
        assert.equal(host.crashes, 1);
        assert.equal(host.image.version, '0.1.0');
        assert.deepEqual(await running(host), { version: '0.1.0', probation: false, rolledBack: { version: '0.3.0', reason: 'crash' } });
        assert.ok(host.logs.some((l) => /crash on probation \(0\.3\.0\).*this image is bad: it throws at start/.test(l.message)), 'the crash is logged');
        assert.equal(host.slots.state(1), 'invalid');
        await reports(host, id, '0.1.0', from);
        // The abandoned image never boots again.
        await host.powerCut();
        assert.equal(host.image.version, '0.1.0');
      } finally {
        await host.close();
      }
    });

    it('an image that never reaches the broker runs on probation until the firmware rolls it back, with its reason', async () => {
      const { host, id } = await machine();
      try {
        await reports(host, id, '0.1.0', 0);
        await writeImage(host, buildImage({ version: '0.4.0', bad: 'no-broker' }).bytes);
        assert.deepEqual(await running(host), { version: '0.4.0', probation: true });
        const connects = host.network!.stats.connects;
        const from = seen.length;
        await host.run(60000);
        assert.equal(host.network!.stats.connects, connects, 'it never connected');
        assert.ok(!seen.slice(from).some((m) => m.topic.includes(id) && m.body.fw === '0.4.0'), 'the broker never heard of 0.4.0');
        assert.notEqual((await host.status()).uplink?.state, 'online');
        // What the updater's probation check will do.
        await host.runInGuest("const f = vendfleetGuest.board.firmware; if (f.running.probation) f.rollback('probation: no broker in 60 s');");
        assert.equal(host.image.version, '0.1.0');
        assert.deepEqual(await running(host), { version: '0.1.0', probation: false, rolledBack: { version: '0.4.0', reason: 'probation: no broker in 60 s' } });
        await reports(host, id, '0.1.0', from);
      } finally {
        await host.close();
      }
    });

    it('a power cut between complete() and the restart boots the new image on probation; another before markValid brings the old one back', async () => {
      const { host } = await machine();
      try {
        await writeImage(host, buildImage({ version: '0.5.0' }).bytes, { finish: false });
        await host.runInGuest('globalThis.writer.complete();');
        assert.equal(host.image.version, '0.1.0', 'nothing switches before a reset');
        await host.powerCut();
        assert.deepEqual(await running(host), { version: '0.5.0', probation: true });
        assert.ok(host.logs.some((l) => l.message.startsWith('vendfleet 0.5.0 starting')));
        await host.powerCut();
        assert.deepEqual(await running(host), { version: '0.1.0', probation: false, rolledBack: { version: '0.5.0', reason: 'power' } });
        assert.equal((await host.runUntilIdle()).state, 'IDLE');
      } finally {
        await host.close();
      }
    });

    it("the board refuses misuse inside the firmware's world", async () => {
      const { host } = await machine();
      try {
        const tries = (body: string): Promise<unknown> => host.runInGuest(`const f = vendfleetGuest.board.firmware; ${body}`);
        await assert.rejects(tries('f.open({ byteLength: f.slotSize + 1 });'), /byteLength must be 1\.\.1507328/);
        await assert.rejects(tries('f.open({ byteLength: 10000, offset: 100 });'), /offset must be a multiple of 4096/);
        await assert.rejects(tries("f.rollback('no reason');"), /no previous image to boot/);
        await assert.rejects(tries('globalThis.w = f.open({ byteLength: 4 }); w.write(new Uint8Array(5));'), /runs past the image/);
        await assert.rejects(tries('f.open({ byteLength: 4 });'), /busy/);
        await assert.rejects(tries('w.write(new Uint8Array([1, 2, 3, 4])); w.complete();'), /not an image/);
        await assert.rejects(tries('w.write(new Uint8Array(1));'), /closed/);
        await assert.rejects(tries('const v = f.open({ byteLength: 8 }); v.write(new Uint8Array(4)); v.complete();'), /incomplete: 4 of 8/);
        assert.equal(await tries('return f.running.version;'), '0.1.0', 'the firmware goes on');
        assert.equal(host.slots.state(1), 'written');
        await host.reset('watchdog');
        assert.equal(host.image.version, '0.1.0', 'nothing was selected');
      } finally {
        await host.close();
      }
    });
  });
}
