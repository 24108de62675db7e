/**
 * Gateway load: publisher connections stand in for machines and publish
 * event messages (QoS 1, about 200 bytes) as fast as the broker takes them;
 * the gateway ingests into PostgreSQL or PGlite. Measured: events persisted
 * per second, receive-to-commit p99, and what a connected machine costs the
 * broker in memory, up to 10,000 connections.
 */
import mqttPacket from 'mqtt-packet';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { startMosquitto } from '../test/lib/mosquitto.js';
import { Gateway } from '../gateway/gateway.js';
import { openDb, type Db } from '../gateway/store/db.js';

const PAD = 'x'.repeat(60);

/** The bench's own Mosquitto with the shipped queue settings that matter here. */
export function startBenchMosquitto(): ReturnType<typeof startMosquitto> {
  return startMosquitto({ conf: ['max_queued_messages 1000000', 'max_queued_bytes 0', 'max_inflight_messages 1000', 'max_connections -1'] });
}

/** A bare MQTT connection (mqtt-packet): light enough to open thousands in one process. */
class RawClient {
  readonly socket: Socket;
  private nextId = 1;
  inflight = 0;
  onAck: (() => void) | undefined;
  connected: Promise<void>;

  constructor(port: number, id: string, will?: { topic: string; payload: string }) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let resolveConnected: () => void = () => {};
    let rejectConnected: (e: Error) => void = () => {};
    this.connected = new Promise((resolve, reject) => {
      resolveConnected = resolve;
      rejectConnected = reject;
    });
    parser.on('packet', (p: mqttPacket.Packet) => {
      if (p.cmd === 'connack') resolveConnected();
      else if (p.cmd === 'puback') {
        this.inflight--;
        this.onAck?.();
      }
    });
    this.socket.on('data', (d) => parser.parse(d));
    this.socket.on('error', (e) => rejectConnected(e));
    this.socket.on('connect', () => {
      const packet: mqttPacket.IConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: id, keepalive: 600 };
      if (will) packet.will = { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true };
      this.socket.write(mqttPacket.generate(packet));
    });
  }

  publish(topic: string, payload: string, retain = false): void {
    this.inflight++;
    const messageId = this.nextId;
    this.nextId = (this.nextId % 65535) + 1;
    this.socket.write(mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId, retain, dup: false }));
  }

  subscribe(topic: string): void {
    this.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 65535, subscriptions: [{ topic, qos: 1 }] }));
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface LoadResult {
  persistedPerSecond: number;
  p99Ms: number;
  p50Ms: number;
  duplicates: number;
  rejected: number;
}

/** Messages persisted per second with `machines` publishers each keeping `window` messages in flight. */
export async function ingestLoad(options: { mqttUrl: string; db: Db; machines: number; window: number; seconds: number; kind?: 'events' | 'telemetry' }): Promise<LoadResult> {
  const telemetry = options.kind === 'telemetry';
  // A clean session per run: nothing queued from an earlier run reaches this one.
  const gateway = await Gateway.start({ mqttUrl: options.mqttUrl, db: options.db });
  const ids = Array.from({ length: options.machines }, (_, i) => `load-${i}`);
  await gateway.addMachines(ids);
  const port = Number(new URL(options.mqttUrl).port);
  const clients = ids.map((id) => new RawClient(port, `pub-${id}`));
  await Promise.all(clients.map((c) => c.connected));
  let running = true;
  const seqs = new Array<number>(clients.length).fill(0);
  const send = (i: number): void => {
    const c = clients[i]!;
    while (running && c.inflight < options.window) {
      const seq = ++seqs[i]!;
      if (telemetry) c.publish(`fleet/${ids[i]}/telemetry`, `{"v":1,"t":${seq},"state":"IDLE","slots":[{"code":"A1","qty":7},{"code":"A2","qty":3}],"tubes":[{"value":25,"count":41}],"temperature":4.5,"errors":[]}`);
      else c.publish(`fleet/${ids[i]}/events`, `{"v":1,"events":[{"seq":${seq},"t":${seq},"type":"vend-ok","slot":"A1","price":125,"note":"${PAD}"}]}`);
    }
  };
  clients.forEach((c, i) => {
    c.onAck = () => send(i);
    send(i);
  });
  const stats = gateway.ingester.stats;
  await new Promise((r) => setTimeout(r, 3000));
  gateway.ingester.resetLatency();
  const persisted = (): number => (telemetry ? stats.telemetry : stats.events);
  const e0 = persisted();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, options.seconds * 1000));
  const e1 = persisted();
  const t1 = performance.now();
  const result: LoadResult = {
    persistedPerSecond: ((e1 - e0) * 1000) / (t1 - t0),
    p99Ms: gateway.ingester.latency(99),
    p50Ms: gateway.ingester.latency(50),
    duplicates: stats.duplicates,
    rejected: Object.values(stats.rejected).reduce((a, b) => a + (b ?? 0), 0),
  };
  running = false;
  for (const c of clients) c.close();
  await gateway.close();
  return result;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/**
 * `n` machines at the protocol level, connected at once to a broker process: each
 * connects with its last will, subscribes to its acknowledgements and publishes its
 * retained online status, as the firmware does. Returns broker memory per connection.
 */
export async function connectionsLoad(broker: { port: number; process: ChildProcess }, n: number): Promise<{ connected: number; brokerBytesPerConnection: number }> {
  const before = rssKiB(broker.process.pid!);
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = Array.from({ length: Math.min(500, n - i) }, (_, k) => new RawClient(broker.port, `conn-${i + k}`, { topic: `fleet/conn-${i + k}/status`, payload: '{"v":1,"online":false}' }));
    await Promise.all(batch.map((c) => c.connected));
    for (const [k, c] of batch.entries()) {
      c.subscribe(`fleet/conn-${i + k}/acks`);
      c.publish(`fleet/conn-${i + k}/status`, '{"v":1,"online":true,"fw":"0.1.0"}', true);
    }
    clients.push(...batch);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssKiB(broker.process.pid!);
  const connected = clients.filter((c) => !c.socket.destroyed).length;
  for (const c of clients) c.close();
  return { connected, brokerBytesPerConnection: ((after - before) * 1024) / n };
}

export { openDb };
