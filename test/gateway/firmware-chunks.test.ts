/**
 * The chunk server through real brokers (aedes and Mosquitto, with the
 * store each goes with), a test client acting as the machine: a whole
 * image fetched in chunks and put back together, served only while
 * offered, refusals for unknown images, images not offered and every kind
 * of hostile request, nothing for topics that are not a machine's, and
 * each machine's byte allowance on a virtual clock. Then the embedded
 * broker's ACLs: a machine asks and reads only for itself.
 */
import { strict as assert } from 'node:assert';
import type mqtt from 'mqtt';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { ByteBuckets } from '../../gateway/firmware/rate.js';
import { ChunkServer, REFUSAL_OFFSET } from '../../gateway/firmware/serve.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { Gateway } from '../../gateway/gateway.js';
import { GATEWAY_USER, storeCredentials } from '../../gateway/mqtt/credentials.js';
import { startEmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import { connectMqtt } from '../lib/mqtt.js';
import { VirtualTime } from '../lib/virtual-time.js';
import { BACKENDS, eventually, type Backend } from './backends.js';
import { keysFile, signed, simImage, testKey } from './firmware-fixtures.js';

const CHUNK = 4096;
/** What one full request costs a machine: the header and the bytes asked for. */
const COST = CHUNK + 12;

interface Frame {
  prefix: string;
  offset: number;
  data: Buffer;
}

function frame(payload: Buffer): Frame {
  return { prefix: payload.subarray(0, 8).toString('hex'), offset: payload.readUInt32LE(8), data: payload.subarray(12) };
}

/** A test client acting as machine `id`: asks on its update/get, collects what comes on its update/chunk. */
class FakeMachine {
  readonly got: Frame[] = [];
  private constructor(
    readonly id: string,
    readonly client: mqtt.MqttClient,
  ) {}

  private static made = 0;

  static async connect(url: string, id: string, options: mqtt.IClientOptions = {}): Promise<FakeMachine> {
    const client = await connectMqtt(url, { clientId: `${id}-${process.pid}-${++FakeMachine.made}`, ...options });
    const m = new FakeMachine(id, client);
    client.on('message', (topic, payload) => {
      if (topic === `fleet/${id}/update/chunk`) m.got.push(frame(payload));
    });
    await client.subscribeAsync(`fleet/${id}/update/chunk`, { qos: 0 });
    return m;
  }

  send(request: unknown): void {
    const payload = Buffer.isBuffer(request) ? request : Buffer.from(typeof request === 'string' ? request : JSON.stringify(request));
    this.client.publish(`fleet/${this.id}/update/get`, payload, { qos: 0 });
  }

  /** The next answer (bounded wait). */
  async next(): Promise<Frame> {
    const n = this.got.length;
    await eventually(`an answer on fleet/${this.id}/update/chunk`, async () => (this.got.length > n ? true : undefined), 10000);
    return this.got[n]!;
  }

  async ask(request: unknown): Promise<Frame> {
    const answer = this.next();
    this.send(request);
    return answer;
  }

  end(): Promise<void> {
    return this.client.endAsync();
  }
}

function isRefusal(f: Frame, reason: string, prefix: string): void {
  assert.equal(f.offset, REFUSAL_OFFSET, `a refusal, not a chunk at ${f.offset}`);
  assert.equal(f.data.toString('utf8'), reason);
  assert.equal(f.prefix, prefix);
}

describe('chunk server: the byte allowance (token bucket) on a virtual clock', () => {
  it('gives a burst, then the rate, never more; a clock stepping back refills nothing', async () => {
    const t = new VirtualTime();
    const b = new ByteBuckets({ bytesPerSecond: 1000, burst: 3000, clock: t });
    assert.ok(b.take('a', 3000));
    assert.ok(!b.take('a', 1));
    assert.ok(b.take('b', 3000), 'each machine its own bucket');
    await t.advance(500);
    assert.ok(!b.take('a', 501));
    assert.ok(b.take('a', 500));
    await t.advance(60000);
    assert.ok(b.take('a', 3000) && !b.take('a', 1), 'full again at the burst, not beyond');
    let now = 1_000_000;
    const c = new ByteBuckets({ bytesPerSecond: 1000, burst: 1000, clock: { now: () => now } });
    assert.ok(c.take('m', 1000));
    now -= 5000;
    assert.ok(!c.take('m', 1), 'a clock that went back 5 s gave nothing');
    now += 5000;
    assert.ok(!c.take('m', 1), 'nor going forward again to where it was');
  });

  it('forgets machines whose buckets are full again, so hostile ids cannot grow it without end', async () => {
    const t = new VirtualTime();
    const b = new ByteBuckets({ bytesPerSecond: 1000, burst: 1000, clock: t, maxMachines: 100 });
    for (let i = 0; i < 100; i++) b.take(`m${i}`, 1000);
    await t.advance(1000);
    b.take('late', 1);
    assert.equal(b.size, 1, 'the full ones forgotten');
    for (let i = 0; i < 500; i++) b.take(`x${i}`, 1000);
    assert.ok(b.size <= 100);
  });
});

for (const backend of BACKENDS) {
  describe(`chunk server over MQTT: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let gw: Gateway;
    let registry: FirmwareRegistry;
    let server: ChunkServer;
    const clock = new VirtualTime();
    const key = testKey();
    // Its own ids: the production broker is shared with other tests.
    const tag = `f${process.pid % 10000}${Math.floor(Math.random() * 1e5)}`;
    const ids = { full: `${tag}-full`, hostile: `${tag}-host`, flood: `${tag}-flood`, rate: `${tag}-rate`, other: `${tag}-other`, none: `${tag}-none` };
    const image = simImage('1.2.3', { size: 10000 });
    const sha = sha256Hex(image);
    const prefix = sha.slice(0, 16);
    const machines: FakeMachine[] = [];
    const machine = async (id: string): Promise<FakeMachine> => {
      const m = await FakeMachine.connect(b.mqttUrl, id);
      machines.push(m);
      return m;
    };

    before(async () => {
      b = await backend.open();
      await migrate(b.db);
      await addMachines(b.db, Object.values(ids));
      registry = new FirmwareRegistry(b.db, { keyFiles: [{ path: keysFile(key), optional: false }] });
      await registry.upload(signed(image, '1.2.3', key));
      for (const id of [ids.full, ids.hostile, ids.flood, ids.rate, ids.other]) await registry.offer(id, sha);
      gw = await Gateway.start({
        mqttUrl: b.mqttUrl,
        db: b.db,
        shareGroup: b.shareGroup,
        alerts: false,
        updates: { source: registry, clock, bytesPerSecond: 8192, burstBytes: 3 * COST },
      });
      server = gw.chunks!;
    });
    after(async () => {
      for (const m of machines) await m.end();
      await gw?.close();
      await b?.close();
    });

    it('serves an offered image chunk by chunk, the last one short, and stops the moment it is withdrawn', async () => {
      assert.deepEqual(gw.health().mqtt.map((m) => m.name), ['ingest', 'audits', 'updates']);
      const m = await machine(ids.full);
      const parts: Buffer[] = [];
      for (let offset = 0; offset < image.length; offset += CHUNK) {
        const f = await m.ask({ image: sha, offset, length: CHUNK });
        assert.deepEqual([f.prefix, f.offset], [prefix, offset]);
        parts.push(f.data);
      }
      assert.deepEqual(parts.map((p) => p.length), [4096, 4096, 1808]);
      assert.equal(sha256Hex(Buffer.concat(parts)), sha, 'the image, byte for byte');
      await registry.withdraw(ids.full, sha);
      // The three took the whole burst: a virtual second pays for the next answer.
      await clock.advance(1000);
      isRefusal(await m.ask({ image: sha, offset: 0, length: 16 }), 'not-offered', prefix);
    });

    it('refuses an image it does not have, and one not offered to this machine (without saying its size)', async () => {
      const m = await machine(ids.none);
      isRefusal(await m.ask({ image: 'ab'.repeat(32), offset: 0, length: 100 }), 'unknown-image', 'ab'.repeat(8));
      isRefusal(await m.ask({ image: sha, offset: 0, length: 100 }), 'not-offered', prefix);
      isRefusal(await m.ask({ image: sha, offset: 999999, length: 100 }), 'not-offered', prefix);
    });

    it('answers every hostile request with bad-request, naming the image only when the request named one validly', async () => {
      const m = await machine(ids.hostile);
      const zeros = '0'.repeat(16);
      const hostile: [unknown, string][] = [
        ['not json', zeros],
        ['{"image":', zeros],
        [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), zeros],
        ['', zeros],
        ['null', zeros],
        ['[1,2,3]', zeros],
        ['"a string"', zeros],
        ['NaN', zeros],
        [{ image: sha.toUpperCase(), offset: 0, length: 10 }, zeros],
        [{ image: sha.slice(0, 63), offset: 0, length: 10 }, zeros],
        [{ image: 12, offset: 0, length: 10 }, zeros],
        [{ image: sha, length: 10 }, prefix],
        [{ image: sha, offset: -1, length: 10 }, prefix],
        [{ image: sha, offset: 1.5, length: 10 }, prefix],
        [{ image: sha, offset: '0', length: 10 }, prefix],
        [{ image: sha, offset: 1e20, length: 10 }, prefix],
        [{ image: sha, offset: REFUSAL_OFFSET, length: 10 }, prefix],
        ['{"image":"' + sha + '","offset":0,"length":1e999}', prefix],
        [{ image: sha, offset: 0 }, prefix],
        [{ image: sha, offset: 0, length: 0 }, prefix],
        [{ image: sha, offset: 0, length: -5 }, prefix],
        [{ image: sha, offset: 0, length: 4097 }, prefix],
        [{ image: sha, offset: 0, length: 1e9 }, prefix],
        [{ image: sha, offset: 0, length: null }, prefix],
        // Too long to be a request, whatever it holds.
        [{ image: sha, offset: 0, length: 10, pad: 'x'.repeat(600) }, zeros],
        [Buffer.alloc(100000, 0x20), zeros],
      ];
      for (const [request, named] of hostile) {
        const f = await m.ask(request);
        isRefusal(f, 'bad-request', named);
      }
      // Offsets at and past the end of the image: past-end (the machine takes it for an image shorter than its command said).
      for (const offset of [image.length, image.length + 4096]) isRefusal(await m.ask({ image: sha, offset, length: 10 }), 'past-end', prefix);
      // Unknown fields beside good ones are left alone; the machine is still served.
      const ok = await m.ask(`{"image":"${sha}","offset":100,"length":5,"n":7,"__proto__":{"x":1}}`);
      assert.deepEqual([ok.offset, ok.data], [100, image.subarray(100, 105)]);
    });

    it('answers nothing on topics that are not a machine\'s request topic', async () => {
      const spy = await connectMqtt(b.mqttUrl, { clientId: `${tag}-spy` });
      const seen: string[] = [];
      spy.on('message', (t) => seen.push(t));
      await spy.subscribeAsync('fleet/+/update/chunk', { qos: 0 });
      const before = server.stats.ignored;
      for (const id of ['bad.id', 'gateway', '-lead', 'x'.repeat(65)]) spy.publish(`fleet/${id}/update/get`, JSON.stringify({ image: sha, offset: 0, length: 10 }), { qos: 0 });
      await eventually('the four ignored', async () => (server.stats.ignored - before >= 4 ? true : undefined));
      // A request of a real machine after them: its answer is the only one (the broker keeps order from one client).
      const m = await machine(ids.other);
      spy.publish(`fleet/${ids.other}/update/get`, JSON.stringify({ image: sha, offset: 0, length: 10 }), { qos: 0 });
      await m.next();
      await eventually('the spy sees the answer', async () => (seen.length > 0 ? true : undefined));
      assert.deepEqual(seen, [`fleet/${ids.other}/update/chunk`]);
      await spy.endAsync();
    });

    it('holds each machine to its allowance: a burst, then the rate; a machine over it costs the others nothing', async () => {
      const m = await machine(ids.rate);
      for (let i = 0; i < 3; i++) assert.equal((await m.ask({ image: sha, offset: 0, length: CHUNK })).data.length, CHUNK);
      const limited = server.stats.limited;
      const got = m.got.length;
      m.send({ image: sha, offset: 0, length: CHUNK });
      await eventually('the fourth dropped', async () => (server.stats.limited > limited ? true : undefined));
      // Another machine is served meanwhile.
      const o = await machine(`${ids.other}`);
      assert.equal((await o.ask({ image: sha, offset: 0, length: 64 })).data.length, 64);
      assert.equal(m.got.length, got, 'no answer to the request over the allowance');
      // One virtual second at 8,192 bytes a second: one chunk more, not two.
      await clock.advance(1000);
      assert.equal((await m.ask({ image: sha, offset: 4096, length: CHUNK })).offset, 4096);
      const l2 = server.stats.limited;
      m.send({ image: sha, offset: 0, length: CHUNK });
      await eventually('dropped again', async () => (server.stats.limited > l2 ? true : undefined));
      // Small requests cost little: the 4,084 bytes left pay for 300-byte chunks.
      assert.equal((await m.ask({ image: sha, offset: 0, length: 300 })).data.length, 300);
    });

    it('charges refusals too: a flood of nonsense is answered up to the allowance, the rest dropped', async () => {
      const m = await machine(ids.flood);
      const requests = server.stats.requests;
      const refused = server.stats.refused['bad-request'];
      const limited = server.stats.limited;
      for (let i = 0; i < 300; i++) m.send('nonsense');
      await eventually('all 300 taken', async () => (server.stats.requests - requests >= 300 ? true : undefined));
      const answered = server.stats.refused['bad-request'] - refused;
      assert.equal(answered, Math.floor((3 * COST) / 64), 'the burst pays for 64 bytes a refusal');
      assert.equal(server.stats.limited - limited, 300 - answered);
      await eventually('every refusal arrives', async () => (m.got.length === answered ? true : undefined));
    });
  });
}

/** A migrated store that knows `machine` and offers it a signed image of `size` bytes: what a chunk server serves from. */
async function servedImage(db: Db, machine: string, size: number): Promise<{ registry: FirmwareRegistry; sha: string }> {
  await migrate(db);
  await addMachines(db, [machine]);
  const key = testKey();
  const registry = new FirmwareRegistry(db, { keyFiles: [{ path: keysFile(key), optional: false }] });
  const image = simImage('1.2.3', { size });
  const sha = sha256Hex(image);
  await registry.upload(signed(image, '1.2.3', key));
  await registry.offer(machine, sha);
  return { registry, sha };
}

describe('chunk server: a store that fails, the order of answers, and the embedded broker\'s ACLs', function () {
  this.timeout(60000);

  it('drops a request it cannot look up (the machine asks again), and says so once', async () => {
    const db = await openDb();
    await migrate(db);
    const registry = new FirmwareRegistry(db);
    await db.close();
    const sent: string[] = [];
    const logs: string[] = [];
    const server = new ChunkServer(registry, (t) => sent.push(t), { onLog: (_l, m) => logs.push(m) });
    for (let i = 0; i < 3; i++) await server.request('fleet/vm-1/update/get', Buffer.from(JSON.stringify({ image: 'a'.repeat(64), offset: 0, length: 10 })));
    assert.equal(server.stats.dropped, 3);
    assert.deepEqual(sent, []);
    assert.equal(logs.length, 1);
  });

  it("answers no machine this store does not know, not even a refusal (on a shared broker it is another gateway's)", async () => {
    const db = await openDb();
    try {
      const { registry, sha } = await servedImage(db, 'vm-1', 4096);
      const sent: string[] = [];
      const server = new ChunkServer(registry, (t) => sent.push(t), { bytesPerSecond: 1 << 20, burstBytes: 1 << 18 });
      const ask = (machine: string, body: string): Promise<void> => server.request(`fleet/${machine}/update/get`, Buffer.from(body));
      // Another fleet's machine: its image, an unknown one, and nonsense get nothing.
      await ask('vm-2', JSON.stringify({ image: sha, offset: 0, length: 16 }));
      await ask('vm-2', JSON.stringify({ image: 'b'.repeat(64), offset: 0, length: 16 }));
      await ask('vm-2', '{"image":');
      assert.deepEqual(sent, []);
      assert.equal(server.stats.ignored, 3);
      // This store's machine is answered as before: a chunk, and a refusal for nonsense.
      await ask('vm-1', JSON.stringify({ image: sha, offset: 0, length: 16 }));
      await ask('vm-1', '{"image":');
      assert.deepEqual(sent, ['fleet/vm-1/update/chunk', 'fleet/vm-1/update/chunk']);
      assert.deepEqual([server.stats.chunks, server.stats.refused['bad-request']], [1, 1]);
    } finally {
      await db.close();
    }
  });

  it("answers a machine's requests in the order it asked them: a refusal past the end never overtakes the last chunk", async () => {
    const db = await openDb();
    try {
      const { registry, sha } = await servedImage(db, 'vm-1', 10000);
      const sent: Frame[] = [];
      const server = new ChunkServer(registry, (_t, p) => sent.push(frame(p)), { bytesPerSecond: 1 << 20, burstBytes: 1 << 18 });
      const ask = (offset: number, length: number): Promise<void> => server.request('fleet/vm-1/update/get', Buffer.from(JSON.stringify({ image: sha, offset, length })));
      // As a machine with requests in flight sends them, and the broker hands them over in one read: the last chunk
      // (short), one past the end (the command said a larger size), another; once with nothing looked up yet, once with all of it remembered.
      for (const round of ['cold', 'warm']) {
        sent.length = 0;
        await Promise.all([ask(8192, CHUNK), ask(12288, 100), ask(0, 16)]);
        assert.deepEqual(sent.map((f) => [f.offset, f.offset === REFUSAL_OFFSET ? f.data.toString('utf8') : f.data.length]), [[8192, 1808], [REFUSAL_OFFSET, 'past-end'], [0, 16]], round);
      }
    } finally {
      await db.close();
    }
  });

  it('lets a machine ask and read only for itself', async () => {
    const db = await openDb();
    const secret = 'gateway-secret-chunks';
    const broker = await startEmbeddedBroker({ port: 0, credentials: storeCredentials(db, secret) });
    await migrate(db);
    const key = testKey();
    const registry = new FirmwareRegistry(db, { keyFiles: [{ path: keysFile(key), optional: false }] });
    const gw = await Gateway.start({ mqttUrl: broker.url, db, username: GATEWAY_USER, password: secret, alerts: false, updates: { source: registry } });
    try {
      const a = await gw.commands.provision('vm-a');
      await gw.commands.provision('vm-b');
      const image = simImage('2.0.0', { size: 5000 });
      const sha = sha256Hex(image);
      await registry.upload(signed(image, '2.0.0', key));
      await registry.offer('vm-a', sha);
      await registry.offer('vm-b', sha);
      assert.equal(gw.health().mqtt.find((m) => m.name === 'updates')?.subscription, 'receiving', 'the gateway may subscribe to requests and publish its probe');
      const login = { clientId: 'vm-a', username: 'vm-a', password: a.mqttPassword! };
      const client = await connectMqtt(broker.url, login);
      const granted = await client.subscribeAsync(['fleet/vm-a/update/chunk', 'fleet/vm-b/update/chunk', 'fleet/vm-a/update/get', 'fleet/+/update/chunk', 'fleet/vm-a/update/#'], { qos: 0 }).then(
        (g) => g.map((x) => x.qos),
        (e: { packet?: { granted?: number[] } }) => e.packet?.granted,
      );
      assert.deepEqual(granted, [0, 128, 128, 128, 128]);
      const got: Buffer[] = [];
      client.on('message', (_t, p) => got.push(p));
      client.publish('fleet/vm-a/update/get', JSON.stringify({ image: sha, offset: 0, length: 4096 }), { qos: 0 });
      await eventually('vm-a\'s chunk', async () => (got.length > 0 ? true : undefined));
      assert.deepEqual(frame(got[0]!).data, image.subarray(0, 4096));
      // Asking as vm-b: the broker drops the connection; no chunk goes to vm-b.
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      const requests = gw.chunks!.stats.requests;
      client.publish('fleet/vm-b/update/get', JSON.stringify({ image: sha, offset: 0, length: 10 }), { qos: 0 });
      await closed;
      assert.equal(gw.chunks!.stats.requests, requests, 'the forged request never reached the gateway');
      client.end(true);
    } finally {
      await gw.close();
      await broker.close();
      await db.close();
    }
  });
});
