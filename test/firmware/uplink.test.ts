/**
 * The uplink against a stand-in MQTT client on a virtual clock: what it
 * publishes, and when, while the gateway acknowledges nothing (its store is
 * down) and once acknowledgements flow again. Runs in Node and under XS.
 */
import type { Board, MqttClient, MqttClientOptions } from '../../firmware/board.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { Uplink } from '../../firmware/uplink/uplink.js';
import { decodeUtf8, encodeUtf8 } from '../../firmware/text/utf8.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';
import { equal, ok } from '../lib/assert.js';
import { VirtualTimers } from '../lib/virtual-timers.js';

const CODES = ['A1', 'A2', 'B1'];

interface Sent {
  at: number;
  from: number;
  to: number;
}

interface Bench {
  timers: VirtualTimers;
  journal: Journal;
  uplink: Uplink;
  /** Event messages published, in order. */
  sent: Sent[];
  options(): MqttClientOptions;
  /** The gateway acknowledges events from..to. */
  ack(from: number, to: number): void;
}

function boot(events: number, machineId = 'vm-1'): Bench {
  const timers = new VirtualTimers();
  const clock = { now: (): number => timers.now };
  const ledger = new Ledger(new Uint16Array([5, 5, 5]), new Uint8Array(3), layoutHash(CODES), { prices: new Int32Array([100, 150, 200]), capacity: new Uint16Array([10, 10, 10]) });
  const journal = new Journal(new FlashImage({ size: 64 * 1024, blockLength: 4096, writeAlign: 4 }), ledger, clock);
  journal.open();
  for (let i = 0; i < events; i++) journal.coinIn(2, 1, 25);
  const sent: Sent[] = [];
  let opened: MqttClientOptions | undefined;
  let incoming: ArrayBuffer | undefined;
  const client: MqttClient = {
    read: () => {
      const data = incoming;
      incoming = undefined;
      return data;
    },
    write: (data, o) => {
      if (o.topic.endsWith('/events')) {
        const body = JSON.parse(decodeUtf8(data)) as { events: { seq: number }[] };
        sent.push({ at: timers.now, from: body.events[0]!.seq, to: body.events[body.events.length - 1]!.seq });
      }
      return data.byteLength;
    },
    subscribe: () => 0,
    close: () => {},
  };
  const board = {
    clock,
    timers,
    openMqtt(o: MqttClientOptions): MqttClient {
      opened = o;
      return client;
    },
    log: () => {},
  } as unknown as Board;
  const uplink = new Uplink(board, { host: 'gateway', port: 1883, keepaliveS: 60, telemetryIntervalMs: 300000 }, { machineId, firmware: 'test', journal, codes: CODES, telemetry: () => ({}) });
  const options = (): MqttClientOptions => {
    if (!opened) throw new Error('the uplink opened no connection');
    return opened;
  };
  uplink.start();
  options().onWritable?.(1);
  return {
    timers,
    journal,
    uplink,
    sent,
    options,
    ack(from, to) {
      incoming = encodeUtf8(JSON.stringify({ v: 1, from, to }));
      options().onReadable?.(incoming.byteLength, { topic: `fleet/${machineId}/acks`, QoS: 1, retain: false });
    },
  };
}

describe('uplink resends', () => {
  it('sends the window of unacknowledged events once, in batches', () => {
    const b = boot(149);
    equal(b.journal.log.lastSeq, 150);
    equal(b.sent.length, 5, 'a window of 100 events in batches of 20');
    equal(b.sent[0]!.from, 1);
    equal(b.sent[4]!.to, 100);
  });

  it('without acknowledgements, probes with one batch at growing, jittered intervals, not the whole window every 20 s', () => {
    const b = boot(149);
    const first = b.sent.length;
    b.timers.advance(60 * 60000);
    const resent = b.sent.slice(first);
    // Each timeout sends one message from the sync cursor (the gateway may have lost the lot).
    for (const s of resent) {
      equal(s.from, 1, 'resent from the cursor');
      ok(s.to <= 20, `one batch, not the window (${s.from}..${s.to})`);
    }
    equal(b.uplink.status.resends, resent.length);
    // 20 s, then each wait doubles (with up to a quarter off at random) up to 5 minutes.
    const waits = resent.map((s, i) => s.at - (i === 0 ? 0 : resent[i - 1]!.at));
    equal(waits[0], 20000);
    let step = 20000;
    for (let i = 1; i < waits.length; i++) {
      step = Math.min(300000, step * 2);
      ok(waits[i]! <= step && waits[i]! >= step * 0.75, `wait ${i} is ${waits[i]} ms, step ${step} ms`);
    }
    ok(resent.length >= 12 && resent.length <= 16, `${resent.length} probes in an hour`);
    const events = resent.reduce((a, s) => a + s.to - s.from + 1, 0);
    ok(events <= 16 * 20, `${events} events resent in an hour`);
  });

  it('opens the window again and restarts the backoff once acknowledgements make progress', () => {
    const b = boot(149);
    b.timers.advance(20000 + 40000 + 80000);
    const probes = b.sent.length - 5;
    ok(probes >= 2 && probes <= 3, `${probes} probes`);
    // The gateway's store is back: it commits what it held (events 1..100) and acknowledges.
    const before = b.sent.length;
    b.ack(1, 100);
    equal(b.journal.ledger.synced, 100);
    const after = b.sent.slice(before);
    equal(after.length, 3, 'the rest goes out at once, in batches');
    equal(after[0]!.from, 101);
    equal(after[2]!.to, 150);
    // Nothing acknowledged again: the first timeout is 20 s again, a probe from the new cursor.
    b.timers.advance(20000);
    equal(b.sent.length, before + 4);
    equal(b.sent[before + 3]!.from, 101);
    equal(b.sent[before + 3]!.at - after[0]!.at, 20000);
  });

  it('holds new events back while probing, and the probe resends only what was sent before (a gateway holding the rest can tell it is the same)', () => {
    const b = boot(9);
    equal(b.sent.length, 1);
    b.timers.advance(20000);
    equal(b.sent.length, 2);
    // Sales go on while the gateway's store is down.
    for (let i = 0; i < 5; i++) b.journal.coinIn(2, 1, 25);
    b.uplink.eventRecorded();
    equal(b.sent.length, 2, 'nothing new goes out while probing');
    b.timers.advance(40000);
    equal(b.sent.length, 3);
    equal(b.sent[2]!.from, 1);
    equal(b.sent[2]!.to, 10, 'the probe carries only events sent before');
    b.ack(1, 10);
    equal(b.sent.length, 4);
    equal(b.sent[3]!.from, 11);
    equal(b.sent[3]!.to, 15);
  });

  it('sends only a probe after reconnecting while the gateway is still not acknowledging', () => {
    const b = boot(149);
    b.timers.advance(20000);
    const before = b.sent.length;
    b.options().onClose?.();
    // Reconnecting after a backoff of at most a second and a half (jittered).
    b.timers.advance(1500);
    b.options().onWritable?.(1);
    equal(b.sent.length, before + 1, 'one batch on the new connection');
    equal(b.sent[before]!.from, 1);
  });

  it('jitters the probes of different machines apart', () => {
    const at = (id: string): number => {
      const b = boot(30, id);
      b.timers.advance(20000 + 40000);
      return b.sent[b.sent.length - 1]!.at;
    };
    const times = new Set(['vm-1', 'vm-2', 'vm-3', 'vm-4'].map(at));
    ok(times.size >= 3, `second probes at ${[...times].join(', ')} ms`);
  });
});

describe('uplink with several brokers', () => {
  it('moves on to the next address when a connection fails or drops, round the list', () => {
    const timers = new VirtualTimers();
    const clock = { now: (): number => timers.now };
    const ledger = new Ledger(new Uint16Array([5, 5, 5]), new Uint8Array(3), layoutHash(CODES), { prices: new Int32Array([100, 150, 200]), capacity: new Uint16Array([10, 10, 10]) });
    const journal = new Journal(new FlashImage({ size: 64 * 1024, blockLength: 4096, writeAlign: 4 }), ledger, clock);
    journal.open();
    const opened: MqttClientOptions[] = [];
    const client: MqttClient = { read: () => undefined, write: (data) => data.byteLength, subscribe: () => 0, close: () => {} };
    const board = {
      clock,
      timers,
      openMqtt(o: MqttClientOptions): MqttClient {
        opened.push(o);
        return client;
      },
      log: () => {},
    } as unknown as Board;
    const brokers = [
      { host: 'n1', port: 1883 },
      { host: 'n2', port: 1884 },
      { host: 'n3', port: 1885 },
    ];
    const uplink = new Uplink(board, { host: 'n1', port: 1883, brokers, keepaliveS: 60, telemetryIntervalMs: 300000 }, { machineId: 'vm-1', firmware: 'test', journal, codes: CODES, telemetry: () => ({}) });
    uplink.start();
    const last = (): MqttClientOptions => opened[opened.length - 1]!;
    const where = (): string => `${last().host}:${last().port}`;
    equal(where(), 'n1:1883');
    // Up, then the node dies under it.
    last().onWritable?.(1);
    equal(uplink.status.state, 'online');
    last().onClose?.();
    timers.advance(10 * 60000);
    equal(where(), 'n2:1884', 'after a drop: the next node');
    // That one does not answer: the third, then round to the first.
    last().onError?.();
    timers.advance(10 * 60000);
    equal(where(), 'n3:1885');
    last().onError?.();
    timers.advance(10 * 60000);
    equal(where(), 'n1:1883');
    last().onWritable?.(1);
    equal(uplink.status.state, 'online');
    equal(opened.length, 4, 'one attempt per failure');
    uplink.stop();
  });
});
