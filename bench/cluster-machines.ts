/**
 * The cluster bench's machines (bench/lib/rabbitmq-bench.ts), a process of
 * their own: bare MQTT 3.1.1 connections (mqtt-packet over sockets), machine
 * i on node i mod 3's MQTT port. Each subscribes to its acknowledgements
 * (fleet/{id}/acks, QoS 1) and publishes one event a message (QoS 1, about
 * 200 bytes, numbered from 1) when the shared rate says so. A connection
 * that drops (its node died) moves to the next node's port, as firmware
 * with every node in `uplink.brokers` does, and sends again what the broker
 * had not acknowledged (the same numbers: the store counts each once).
 *
 *   node dist/bench/cluster-machines.js <port,port,port> <machines> <prefix>
 *
 * Commands on standard input, one a line: `rate N` (messages a second, all
 * machines together), `mark` (latency samples from now on), `report` (prints
 * one JSON line: publish-to-acknowledgement percentiles since the mark,
 * and publish-to-PUBACK percentiles since the mark, counts, reconnections), `final` (prints one JSON line: every message the
 * broker acknowledged whose gateway acknowledgement never came, to be looked
 * up in the store). Prints "ready" once every machine is connected and
 * subscribed.
 */
import mqttPacket from 'mqtt-packet';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

const PAD = 'x'.repeat(60);
/** Messages in flight to the broker per machine, at most (the firmware's window is smaller). */
const WINDOW = 20;

class Machine {
  socket: Socket | undefined;
  ready = false;
  next = 0;
  seq = 0;
  /** Message id to sequence number, sent and not yet acknowledged by the broker. */
  readonly inflight = new Map<number, number>();
  /** Sequence number to publish time (performance.now()), acknowledged by the broker, not yet by the gateway. */
  readonly confirmed = new Map<number, number>();
  /** Sent, not acknowledged by the broker when the connection went: sent again on the next one. */
  readonly unsent: number[] = [];
  readonly sentAt = new Map<number, number>();
  private nextId = 1;
  connects = 0;

  constructor(readonly id: string, readonly ports: number[], public portIndex: number, readonly stats: Stats) {}

  open(): Promise<void> {
    return new Promise((resolve) => {
      const port = this.ports[this.portIndex % this.ports.length]!;
      const s = connect(port, '127.0.0.1');
      this.socket = s;
      s.setNoDelay(true);
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      let settled = false;
      const fail = (): void => {
        if (this.socket !== s) return;
        this.socket = undefined;
        this.ready = false;
        s.destroy();
        for (const seq of this.inflight.values()) this.unsent.push(seq);
        this.inflight.clear();
        if (!settled) {
          settled = true;
          resolve();
        }
        if (!stopping) {
          this.stats.drops++;
          // The next node, after a moment (the firmware backs off too).
          this.portIndex++;
          setTimeout(() => void this.open(), 500 + Math.random() * 1000);
        }
      };
      parser.on('packet', (p: mqttPacket.Packet) => {
        if (p.cmd === 'connack') {
          if (p.returnCode !== 0) return fail();
          s.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 65535, subscriptions: [{ topic: `fleet/${this.id}/acks`, qos: 1 }] }));
        } else if (p.cmd === 'suback') {
          this.ready = true;
          this.connects++;
          if (this.connects > 1) this.stats.reconnects++;
          const again = this.unsent.splice(0);
          for (const seq of again) this.send(seq);
          if (!settled) {
            settled = true;
            resolve();
          }
        } else if (p.cmd === 'puback') {
          const seq = this.inflight.get(p.messageId!);
          if (seq === undefined) return;
          this.inflight.delete(p.messageId!);
          const at = this.sentAt.get(seq);
          if (at !== undefined && !this.confirmed.has(seq)) {
            this.confirmed.set(seq, at);
            if (at >= this.stats.markAt) this.stats.pubacks.push(performance.now() - at);
          }
        } else if (p.cmd === 'publish') {
          if (p.qos > 0 && p.messageId !== undefined) s.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }));
          this.acked(p.payload as Buffer);
        }
      });
      s.on('data', (d) => parser.parse(d));
      s.on('error', fail);
      s.on('close', fail);
      s.on('connect', () => {
        s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: this.id, keepalive: 30 }));
      });
    });
  }

  /** The gateway's acknowledgement {from, to}: those messages are committed. */
  private acked(payload: Buffer): void {
    let m: { from?: number; to?: number };
    try {
      m = JSON.parse(payload.toString()) as { from?: number; to?: number };
    } catch {
      return;
    }
    if (typeof m.from !== 'number' || typeof m.to !== 'number') return;
    const now = performance.now();
    for (let seq = m.from; seq <= m.to; seq++) {
      const at = this.sentAt.get(seq);
      if (at === undefined) continue;
      this.sentAt.delete(seq);
      this.confirmed.delete(seq);
      this.stats.committed++;
      if (at >= this.stats.markAt) this.stats.latencies.push(now - at);
    }
  }

  send(seq: number): void {
    const s = this.socket;
    if (!s || !this.ready) {
      this.unsent.push(seq);
      return;
    }
    const messageId = this.nextId;
    this.nextId = (this.nextId % 65534) + 1;
    this.inflight.set(messageId, seq);
    if (!this.sentAt.has(seq)) this.sentAt.set(seq, performance.now());
    s.write(mqttPacket.generate({ cmd: 'publish', topic: `fleet/${this.id}/events`, payload: Buffer.from(`{"v":1,"events":[{"seq":${seq},"t":${seq},"type":"vend-ok","slot":"A1","price":125,"note":"${PAD}"}]}`), qos: 1, messageId, retain: false, dup: false }));
  }

  /** A new message, if the window allows. */
  publish(): boolean {
    if (!this.ready || this.inflight.size >= WINDOW) return false;
    this.send(++this.seq);
    this.stats.published++;
    return true;
  }
}

interface Stats {
  published: number;
  committed: number;
  drops: number;
  reconnects: number;
  skipped: number;
  markAt: number;
  /** Publish to the gateway's acknowledgement, ms, of messages published since the mark. */
  latencies: number[];
  /** Publish to the broker's PUBACK (the queue has it: RabbitMQ confirms a QoS 1 message once its quorum queue does), ms. */
  pubacks: number[];
}

let stopping = false;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const [portsArg, machinesArg, prefix] = process.argv.slice(2);
  const ports = (portsArg ?? '').split(',').map(Number);
  const n = Number(machinesArg);
  if (ports.length === 0 || ports.some((p) => !(p > 0)) || !(n > 0) || !prefix) {
    process.stderr.write('usage: cluster-machines <port,port,port> <machines> <prefix>\n');
    process.exit(2);
  }
  const stats: Stats = { published: 0, committed: 0, drops: 0, reconnects: 0, skipped: 0, markAt: Infinity, latencies: [], pubacks: [] };
  const machines = Array.from({ length: n }, (_, i) => new Machine(`${prefix}-${i}`, ports, i % ports.length, stats));
  // In batches: thousands of simultaneous logins would only queue up in the nodes.
  for (let i = 0; i < n; i += 200) await Promise.all(machines.slice(i, i + 200).map((m) => m.open()));
  let rate = 0;
  let next = 0;
  let owed = 0;
  setInterval(() => {
    owed += rate / 100;
    let tries = 0;
    for (; owed >= 1 && tries < n; tries++) {
      const m = machines[next++ % n]!;
      if (m.publish()) owed--;
    }
    // Nobody could take it (all disconnected or full): not owed later, counted.
    if (owed >= 1) {
      stats.skipped += Math.floor(owed);
      owed -= Math.floor(owed);
    }
  }, 10);
  process.stdout.write(`ready ${machines.filter((m) => m.ready).length}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, arg] = line.trim().split(' ');
    if (cmd === 'rate') rate = Number(arg);
    else if (cmd === 'mark') {
      stats.markAt = performance.now();
      stats.latencies = [];
      stats.pubacks = [];
    } else if (cmd === 'report') {
      const sorted = [...stats.latencies].sort((a, b) => a - b);
      const pubacks = [...stats.pubacks].sort((a, b) => a - b);
      const connected = machines.filter((m) => m.ready).length;
      const unconfirmed = machines.reduce((a, m) => a + m.inflight.size + m.unsent.length, 0);
      process.stdout.write(JSON.stringify({ p50: percentile(sorted, 50), p99: percentile(sorted, 99), pubackP50: percentile(pubacks, 50), pubackP99: percentile(pubacks, 99), max: sorted.at(-1) ?? 0, samples: sorted.length, published: stats.published, committed: stats.committed, drops: stats.drops, reconnects: stats.reconnects, skipped: stats.skipped, connected, unconfirmed }) + '\n');
    } else if (cmd === 'final') {
      // Acknowledged by the broker, never by the gateway: the store says whether they arrived.
      const open: Record<string, number[]> = {};
      let unconfirmed = 0;
      for (const m of machines) {
        if (m.confirmed.size > 0) open[m.id] = [...m.confirmed.keys()];
        unconfirmed += m.inflight.size + m.unsent.length;
      }
      process.stdout.write(JSON.stringify({ open, unconfirmed, published: stats.published }) + '\n');
    } else if (cmd === 'stop') {
      stopping = true;
      for (const m of machines) m.socket?.destroy();
      process.exit(0);
    }
  }
}

main().catch((e) => {
  process.stderr.write(`cluster-machines: ${(e as Error).message}\n`);
  process.exit(1);
});
