/**
 * The simulated machine's slow link (hal-sim/link.ts), on the virtual clock:
 * a packet arrives no earlier than its bytes take at the link's rate after
 * the packets before it, in the order sent; a drop loses what is on the
 * link; the drop schedule is a function of the machine's time. Then the
 * same through the machine's network (hal-sim/network.ts) to a real broker:
 * the firmware's messages reach the broker when their last byte has left,
 * the broker's reach the firmware when theirs has arrived, and a message
 * still on the link when it drops never reaches the broker.
 */
import { strict as assert } from 'node:assert';
import mqttPacket from 'mqtt-packet';
import type mqtt from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import type { GuestEvent } from '../../hal-sim/guest/protocol.js';
import { LinkQueue, dropState, mqttPacketBytes } from '../../hal-sim/link.js';
import { SimNetwork } from '../../hal-sim/network.js';
import { Scheduler } from '../../hal-sim/scheduler.js';
import { connectMqtt } from '../lib/mqtt.js';

/** Microseconds `bytes` take at 64 kbit/s. */
const at64k = (bytes: number): number => (bytes * 8 * 1e6) / 64000;

/** Run every event due up to `us`, then stand the clock there. */
function runTo(s: Scheduler, us: number): void {
  while (s.step(us) !== Infinity);
  s.advanceTo(us);
}

describe('the simulated link', () => {
  it('serialises packets at its rate, one after another, in the order sent', () => {
    const s = new Scheduler();
    const q = new LinkQueue(s, 64000);
    const arrived: [string, number][] = [];
    const sizes: [string, number][] = [
      ['a', 100],
      ['b', 1000],
      ['c', 50],
    ];
    for (const [name, n] of sizes) q.send(n, () => arrived.push([name, s.now]));
    runTo(s, 10_000_000);
    assert.deepEqual(
      arrived.map(([n]) => n),
      ['a', 'b', 'c'],
    );
    // Each arrives when its own bytes and those before it have crossed, not earlier.
    let cumulative = 0;
    for (const [i, [, n]] of sizes.entries()) {
      cumulative += n;
      assert.equal(arrived[i]![1], Math.round(at64k(cumulative)), `${sizes[i]![0]} after ${cumulative} bytes`);
    }
    assert.deepEqual([q.stats.packets, q.stats.bytes, q.stats.lostPackets, q.pending], [3, 1150, 0, 0]);
    // A packet sent on an idle link takes its own time only, from when it is sent.
    s.advanceTo(20_000_000);
    let when = 0;
    q.send(8000, () => (when = s.now));
    runTo(s, 30_000_000);
    assert.equal(when, 20_000_000 + at64k(8000));
  });

  it('adds its propagation delay to every packet, which does not hold the next one back', () => {
    const s = new Scheduler();
    const q = new LinkQueue(s, 64000, 250);
    const times: number[] = [];
    q.send(800, () => times.push(s.now));
    q.send(800, () => times.push(s.now));
    runTo(s, 10_000_000);
    assert.deepEqual(times, [at64k(800) + 250_000, at64k(1600) + 250_000]);
  });

  it('loses what is queued when it drops, and is free again at once', () => {
    const s = new Scheduler();
    const q = new LinkQueue(s, 64000);
    const arrived: string[] = [];
    q.send(100, () => arrived.push('first'), 't/1');
    q.send(8000, () => arrived.push('second'), 't/2');
    q.send(10, () => arrived.push('third'), 't/2');
    runTo(s, 500_000);
    q.drop();
    runTo(s, 10_000_000);
    assert.deepEqual(arrived, ['first'], 'only what had crossed before the drop');
    assert.deepEqual([q.stats.packets, q.stats.bytes, q.stats.lostPackets, q.stats.lostBytes, q.pending], [3, 8110, 2, 8010, 0]);
    assert.deepEqual(Object.fromEntries(q.stats.topics), { 't/1': { packets: 1, bytes: 100 }, 't/2': { packets: 2, bytes: 8010 } });
    let when = 0;
    q.send(100, () => (when = s.now));
    runTo(s, 20_000_000);
    assert.equal(when, 10_000_000 + at64k(100), 'nothing lost stands in the way');
  });

  it('drops on a schedule of the machine clock: down at every multiple of everyMs for forMs', () => {
    const d = { everyMs: 180_000, forMs: 20_000 };
    assert.deepEqual(dropState(d, 0), { up: true, nextUs: 180_000_000 });
    assert.deepEqual(dropState(d, 179_999_999), { up: true, nextUs: 180_000_000 });
    assert.deepEqual(dropState(d, 180_000_000), { up: false, nextUs: 200_000_000 });
    assert.deepEqual(dropState(d, 199_999_999), { up: false, nextUs: 200_000_000 });
    assert.deepEqual(dropState(d, 200_000_000), { up: true, nextUs: 360_000_000 });
    assert.deepEqual(dropState(d, 365_000_000), { up: false, nextUs: 380_000_000 });
  });

  it('the machine\'s network follows the drop schedule, across a new clock after a power cut', () => {
    const s = new Scheduler();
    const net = new SimNetwork({ url: 'mqtt://127.0.0.1:1', link: { bitsPerSecond: 64000, drops: { everyMs: 1000, forMs: 200 } } }, s, () => {});
    const states: [number, boolean][] = [];
    for (const t of [0, 999_999, 1_000_000, 1_199_999, 1_200_000, 2_100_000]) {
      runTo(s, t);
      states.push([t, net.up]);
    }
    assert.deepEqual(states, [
      [0, true],
      [999_999, true],
      [1_000_000, false],
      [1_199_999, false],
      [1_200_000, true],
      [2_100_000, false],
    ]);
    // The power comes back inside a drop: the new clock takes the schedule on from where it is.
    const again = new Scheduler();
    again.now = 3_050_000;
    runTo(s, 2_500_000);
    assert.equal(net.up, true);
    net.rewire(again, () => {});
    assert.equal(net.up, false);
    runTo(again, 3_200_000);
    assert.equal(net.up, true);
    runTo(s, 3_000_000);
    assert.equal(net.up, true, 'the old clock drives nothing any more');
  });

  it('counts an MQTT packet as its fixed header, its length and the rest', () => {
    for (const payload of [0, 100, 200, 20000]) {
      const bytes = mqttPacket.generate({ cmd: 'publish', topic: 'fleet/vm-1/update/chunk', payload: Buffer.alloc(payload), qos: 0, retain: false, dup: false });
      const parsed: mqttPacket.Packet[] = [];
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      parser.on('packet', (p: mqttPacket.Packet) => parsed.push(p));
      parser.parse(bytes);
      assert.equal(mqttPacketBytes(parsed[0]!.length!), bytes.length, `payload ${payload}`);
    }
  });
});

describe('the simulated network over a slow link, to a real broker', function () {
  this.timeout(60000);
  let broker: EmbeddedBroker;
  let client: mqtt.MqttClient;
  const seen: { topic: string; bytes: number; atUs: number }[] = [];
  let scheduler: Scheduler;

  before(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
    client = await connectMqtt(broker.url);
    client.on('message', (topic, payload) => seen.push({ topic, bytes: payload.length, atUs: scheduler.now }));
    await client.subscribeAsync('test/up/#', { qos: 0 });
  });
  after(async () => {
    await client?.endAsync();
    await broker?.close();
  });

  /** Wait in real time (bounded) until `check` holds, running the machine's events as they fall due. */
  async function until(what: string, check: () => boolean, step = true): Promise<void> {
    const end = Date.now() + 15000;
    while (!check()) {
      assert.ok(Date.now() < end, `${what} (virtual ${scheduler.now} us)`);
      const next = scheduler.peek();
      if (step && next !== Infinity) scheduler.step(next);
      else await new Promise((r) => setTimeout(r, 2));
    }
  }

  it('the firmware\'s messages reach the broker when their last byte has left; the broker\'s reach the firmware when theirs has arrived; a drop loses what is on the link', async () => {
    scheduler = new Scheduler();
    const events: GuestEvent[] = [];
    const net = new SimNetwork({ url: broker.url, link: { bitsPerSecond: 64000 } }, scheduler, (ev) => events.push(ev));
    const link = net.link!;
    const left: { topic: string; atUs: number; leftUs: number }[] = [];
    const received: { topic: string; bytes: number; atUs: number; enteredUs: number }[] = [];
    net.watch.published = (topic, _p, atUs, leftUs) => left.push({ topic, atUs, leftUs });
    net.watch.received = (topic, payload, atUs, enteredUs) => received.push({ topic, bytes: payload.length, atUs, enteredUs });
    const up = (): number => events.filter((e) => e[0] === 'mq' && e[1] === 'up').length;
    try {
      net.open({ id: `link-test-${process.pid}`, keepalive: 60 });
      await until('connected', () => up() === 1);
      net.subscribe(['test/down']);
      // The SUBACK has come back across the link.
      await until('subscribed', () => link.down.stats.packets === 2 && link.down.pending === 0);

      // Up: 4,000 bytes of payload, then a small message queued behind it.
      const t0 = scheduler.now;
      net.publish('test/up/big', 'x'.repeat(4000), 0, false);
      net.publish('test/up/small', 'y', 0, false);
      const big = mqttPacket.generate({ cmd: 'publish', topic: 'test/up/big', payload: Buffer.alloc(4000), qos: 0, retain: false, dup: false }).length;
      const small = mqttPacket.generate({ cmd: 'publish', topic: 'test/up/small', payload: Buffer.alloc(1), qos: 0, retain: false, dup: false }).length;
      assert.deepEqual(
        left.map((l) => [l.topic, l.atUs, l.leftUs]),
        [
          ['test/up/big', t0, t0 + at64k(big)],
          ['test/up/small', t0, t0 + at64k(big + small)],
        ],
      );
      await until('the broker has both', () => seen.length === 2);
      assert.deepEqual(
        seen.map((m) => [m.topic, m.bytes]),
        [
          ['test/up/big', 4000],
          ['test/up/small', 1],
        ],
        'in order, whole',
      );
      assert.ok(seen[0]!.atUs >= t0 + at64k(big) && seen[1]!.atUs >= t0 + at64k(big + small), 'not before their last byte left');
      assert.deepEqual(link.up.stats.topics.get('test/up/big'), { packets: 1, bytes: big });

      // Down: the broker's message waits on the link (the clock stands still meanwhile), then takes its time.
      await client.publishAsync('test/down', Buffer.alloc(3000, 0x41), { qos: 0 });
      await until('the message is on the link', () => link.down.pending === 1, false);
      const t1 = scheduler.now;
      assert.equal(received.length, 0, 'not there yet');
      await until('the firmware has it', () => received.length === 1);
      const down = link.down.stats.topics.get('test/down')!.bytes;
      assert.equal(down, mqttPacket.generate({ cmd: 'publish', topic: 'test/down', payload: Buffer.alloc(3000), qos: 0, retain: false, dup: false }).length);
      assert.deepEqual(received[0], { topic: 'test/down', bytes: 3000, atUs: t1 + Math.round(at64k(down)), enteredUs: t1 });
      assert.ok(events.some((e) => e[0] === 'mq' && e[1] === 'msg' && e[2] === 'test/down' && e[3] === 'A'.repeat(3000)), 'the firmware got the bytes');

      // A drop half-way through 8,000 bytes: neither that message nor the one behind it reaches the broker.
      const t2 = scheduler.now;
      net.publish('test/up/lost', 'z'.repeat(8000), 0, false);
      net.publish('test/up/lost-too', 'w', 0, false);
      runTo(scheduler, t2 + 500_000);
      net.setLink(false);
      assert.deepEqual(events[events.length - 1], ['mq', 'down']);
      assert.deepEqual([link.up.stats.lostPackets, link.up.pending], [2, 0]);
      net.setLink(true);
      net.open({ id: `link-test-${process.pid}`, keepalive: 60 });
      await until('connected again', () => up() === 2);
      net.publish('test/up/after', 'v', 0, false);
      await until('the broker has the message sent after the drop', () => seen.some((m) => m.topic === 'test/up/after'));
      assert.deepEqual(
        seen.map((m) => m.topic),
        ['test/up/big', 'test/up/small', 'test/up/after'],
      );
    } finally {
      net.drop();
    }
  });
});
