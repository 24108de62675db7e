/**
 * The uplink over AMQP from RabbitMQ (docs/cluster.md). Machines speak MQTT
 * to RabbitMQ's MQTT plugin, which publishes what they send to the amq.topic
 * exchange (MQTT topic fleet/x/events is routing key fleet.x.events). Each
 * feed consumes a quorum queue (replicated on the cluster's nodes) bound to
 * amq.topic, `{group}.{name}`: the gateways of a group are competing
 * consumers of it, each message goes to one of them. A message is
 * acknowledged to the broker only when the gateway says so (after the
 * database commit that stores it): until then the queue keeps it, and hands
 * it to another gateway if this one's connection goes. Acks, commands and
 * chunks go back through amq.topic to the machines' MQTT subscriptions.
 *
 * Given several node addresses, a lost connection moves on to the next node.
 * Probes prove the queue delivers, as on MQTT (mqtt/subscriber.ts): a probe
 * is published on fleet.$gateway.{kind} and must come back, to this gateway
 * or to any other consumer of the queue, who records it in the store.
 */
import amqp from 'amqplib';
import type { Feed, FeedOptions, SubscriptionState } from '../feed/feed.js';
import { PROBE_MACHINE } from '../mqtt/subscriber.js';
import type { Queryable } from '../store/db.js';
import { forgetOldProbes, probeRecorded, recordProbe } from '../store/probes.js';

export const EXCHANGE = 'amq.topic';

export interface AmqpSettings {
  /** The cluster's nodes (amqp://user:password@host:port/vhost); a lost connection tries the next. */
  urls: string[];
  /** Queue names start with this ({group}.ingest ...): gateways of one group share the queues. */
  group: string;
  /** This gateway process (probes carry it). */
  instance: string;
  /** Where other consumers record the probes they receive. */
  db: Queryable;
  /** Deliveries handed over and not yet acknowledged, at most (1000). */
  prefetch?: number;
  probeTimeoutMs?: number;
  probeEveryMs?: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** An MQTT topic (or filter) as RabbitMQ's MQTT plugin routes it: levels joined by dots, + as *, and a dot inside a level as a slash. */
export function routingKey(topic: string): string {
  return topic
    .split('/')
    .map((level) => (level === '+' ? '*' : level.replace(/\./g, '/')))
    .join('.');
}

/** The MQTT topic of a routing key (the inverse of routingKey for topics without wildcards). */
export function topicOf(key: string): string {
  return key
    .split('.')
    .map((word) => word.replace(/\//g, '.'))
    .join('/');
}

/** The URL with a 5 s heartbeat unless it names one (amqplib takes it from the URL only). */
function withHeartbeat(url: string): string {
  try {
    const u = new URL(url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', '5');
    return u.toString();
  } catch {
    return url;
  }
}

/** At most `ms` for a broker's answer: a half-dead node must not hold a shutdown. */
function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

/** A URL as logs may show it: without its password. */
function shown(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'an invalid AMQP URL';
  }
}

export class AmqpFeed implements Feed {
  readonly name: string;
  readonly kind = 'amqp';
  readonly ackAfterStore = true;
  state: SubscriptionState = 'connecting';
  lastReceivedAt: number | undefined;
  probesSent = 0;
  probesLost = 0;
  /** Connections made (the first one and every reconnection). */
  connects = 0;
  private readonly s: AmqpSettings;
  private readonly o: FeedOptions;
  private readonly queue: string;
  private readonly probeKey: string;
  private connection: amqp.ChannelModel | undefined;
  private channel: amqp.Channel | undefined;
  private consumerTag: string | undefined;
  /** The node to try next (an index into urls). */
  private next = 0;
  private closed = false;
  private reconnecting: Promise<void> | undefined;
  private waiting: { id: string; resolve: () => void } | undefined;
  private probing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;

  private constructor(s: AmqpSettings, o: FeedOptions) {
    if (s.urls.length === 0) throw new Error('AMQP: no broker address');
    this.s = s;
    this.o = o;
    this.name = o.name;
    this.queue = `${s.group}.${o.name}`;
    this.probeKey = routingKey(`fleet/${PROBE_MACHINE}/${o.probeKind}`);
  }

  /** Connect (to the first node that answers) and consume; rejects if none does. The first probe is awaited, not required. */
  static async open(s: AmqpSettings, o: FeedOptions): Promise<AmqpFeed> {
    const f = new AmqpFeed(s, o);
    const errors: string[] = [];
    for (let i = 0; i < s.urls.length && !f.connection; i++) {
      try {
        await f.connect();
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (!f.connection) throw new Error(`could not connect to the AMQP broker at ${s.urls.map(shown).join(', ')}: ${errors.join('; ')}`);
    await f.probing;
    f.timer = setInterval(() => {
      if (f.channel && !f.probing && !o.paused?.()) void f.probe();
    }, s.probeEveryMs ?? 60000);
    f.timer.unref();
    return f;
  }

  get connected(): boolean {
    return this.channel !== undefined;
  }

  /** Which node this feed reads from now (its AMQP URL, without a password), if connected. */
  url: string | undefined;

  private async connect(): Promise<void> {
    const url = this.s.urls[this.next % this.s.urls.length]!;
    this.next++;
    this.state = 'connecting';
    let connection: amqp.ChannelModel | undefined;
    try {
      // A short heartbeat: a node that stops answering is noticed in seconds, not minutes.
      connection = await amqp.connect(withHeartbeat(url), { timeout: 5000 });
      const c = connection;
      c.on('error', (e: Error) => this.s.log('warn', `amqp (${this.name}): ${e.message}`));
      c.on('close', () => this.lost(c));
      const ch = await c.createChannel();
      ch.on('error', (e: Error) => this.s.log('warn', `amqp (${this.name}): channel: ${e.message}`));
      await ch.prefetch(this.s.prefetch ?? 1000);
      // Quorum: replicated on the cluster's nodes, so a node's death loses nothing acknowledged to a machine's publisher.
      await ch.assertQueue(this.queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      for (const f of this.o.filters) await ch.bindQueue(this.queue, EXCHANGE, routingKey(f));
      const consumer = await ch.consume(this.queue, (m) => this.deliver(ch, m), { noAck: false });
      this.connection = c;
      this.channel = ch;
      this.consumerTag = consumer.consumerTag;
      this.url = shown(url);
      this.connects++;
      this.s.log('info', `amqp (${this.name}): consuming ${this.queue} on ${this.url}`);
    } catch (e) {
      await connection?.close().catch(() => undefined);
      throw new Error(`${shown(url)}: ${(e as Error).message}`);
    }
    void this.probe();
  }

  /** The connection went (a node died, a network cut): the next node, until one answers. */
  private lost(c: amqp.ChannelModel): void {
    if (c !== this.connection) return;
    this.connection = undefined;
    this.channel = undefined;
    this.consumerTag = undefined;
    this.url = undefined;
    this.waiting?.resolve();
    if (this.closed) return;
    this.state = 'connecting';
    this.s.log('warn', `amqp (${this.name}): connection lost; trying the next node`);
    this.reconnecting ??= (async () => {
      let tries = 0;
      while (!this.closed && !this.connection) {
        try {
          await this.connect();
        } catch (e) {
          tries++;
          if (tries <= this.s.urls.length || tries % 10 === 0) this.s.log('warn', `amqp (${this.name}): ${(e as Error).message}`);
          // Through the whole list at once, then a pause between rounds.
          if (tries % this.s.urls.length === 0) await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })().finally(() => {
      this.reconnecting = undefined;
    });
  }

  private deliver(ch: amqp.Channel, m: amqp.ConsumeMessage | null): void {
    if (m === null) {
      // The broker cancelled the consumer (the queue was deleted): start over on a new connection.
      this.s.log('warn', `amqp (${this.name}): the broker cancelled the consumer of ${this.queue}; reconnecting`);
      void this.connection?.close().catch(() => undefined);
      return;
    }
    let settled = false;
    const done = (requeue?: boolean): void => {
      if (settled) return;
      settled = true;
      // On a channel that is gone, the broker has handed the message to another consumer already.
      if (ch === this.channel) {
        try {
          // Let go unstored (shutting down, too much waiting): back to the queue, for whoever takes it next.
          if (requeue) ch.nack(m, false, true);
          else ch.ack(m);
        } catch {
          // Closed meanwhile: the same.
        }
      }
    };
    const topic = topicOf(m.fields.routingKey);
    if (m.fields.routingKey === this.probeKey) {
      this.probeArrived(m.content);
      return done();
    }
    this.o.onMessage(topic, m.content, done);
  }

  publish(topic: string, payload: string | Buffer, qos: 0 | 1): boolean {
    const ch = this.channel;
    if (!ch) return false;
    try {
      // Persistent for QoS 1: the MQTT plugin delivers a persistent message at QoS 1, a transient one at QoS 0.
      ch.publish(EXCHANGE, routingKey(topic), typeof payload === 'string' ? Buffer.from(payload) : payload, { persistent: qos === 1 });
      return true;
    } catch {
      return false;
    }
  }

  /** Send a probe through the queue and wait for it to come back (bounded); joins one under way. */
  probe(): Promise<void> {
    this.probing ??= this.runProbe().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private async runProbe(): Promise<void> {
    const ch = this.channel;
    if (!ch) return;
    const id = `${this.s.instance}:${this.name}:${++this.probesSent}`;
    const timeoutMs = this.s.probeTimeoutMs ?? 5000;
    let back = false;
    let storeAnswered = false;
    const arrived = new Promise<void>((resolve) => {
      this.waiting = { id, resolve };
    });
    try {
      ch.publish(EXCHANGE, this.probeKey, Buffer.from(JSON.stringify({ v: 1, probe: id })), { persistent: true });
      const end = Date.now() + timeoutMs;
      while (!back && Date.now() < end && !this.closed && ch === this.channel) {
        let tick: NodeJS.Timeout | undefined;
        await Promise.race([arrived.then(() => (back = ch === this.channel)), new Promise((r) => (tick = setTimeout(r, 200)))]);
        clearTimeout(tick);
        if (!back) {
          // Another consumer of the queue may have had it.
          try {
            back = await probeRecorded(this.s.db, id);
            storeAnswered = true;
          } catch {
            // The store is away: this probe cannot be judged through it.
          }
        }
      }
    } catch (e) {
      if (!this.closed) this.s.log('warn', `amqp (${this.name}): probe not sent (${(e as Error).message})`);
      return;
    } finally {
      this.waiting = undefined;
    }
    if (this.closed || ch !== this.channel) return;
    if (back) {
      if (this.state === 'deaf') this.s.log('info', `amqp (${this.name}): receiving again from ${this.queue}`);
      this.state = 'receiving';
      this.lastReceivedAt = Date.now();
      if (this.probesSent % 30 === 0) void forgetOldProbes(this.s.db).catch(() => undefined);
      return;
    }
    if (!storeAnswered || this.o.paused?.()) {
      this.state = 'unverified';
      this.s.log('warn', `amqp (${this.name}): a probe could not be checked (${storeAnswered ? 'messages are held back' : 'the store is unavailable'}); trying again later`);
      return;
    }
    this.probesLost++;
    this.state = 'deaf';
    this.s.log(
      'error',
      `amqp (${this.name}): NOTHING IS BEING RECEIVED: consuming ${this.queue} on ${this.url ?? 'the broker'}, but a probe published on ${EXCHANGE} ` +
        `with routing key ${this.probeKey} did not come back within ${timeoutMs / 1000} s; probing again`,
    );
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.closed && this.channel) void this.probe();
    }, Math.min(60000, timeoutMs * 2 ** Math.min(this.probesLost, 4)));
    this.retry.unref();
  }

  private probeArrived(payload: Buffer): void {
    let id: unknown;
    try {
      id = (JSON.parse(payload.toString('utf8')) as { probe?: unknown }).probe;
    } catch {
      return;
    }
    if (typeof id !== 'string' || id.length > 200 || !/^[A-Za-z0-9:_.-]+$/.test(id)) return;
    if (this.waiting?.id === id) return this.waiting.resolve();
    // Another gateway's (competing consumers: any of them may get it): tell it through the store.
    void recordProbe(this.s.db, id, this.s.instance).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.retry);
    this.waiting?.resolve();
    // Take no more; what was handed over is still acknowledged as the gateway stores it (end() comes after).
    const ch = this.channel;
    if (ch && this.consumerTag !== undefined) await bounded(ch.cancel(this.consumerTag), 5000);
  }

  /** Close the connection: deliveries not acknowledged by now go back to the queue, for another gateway. */
  async end(): Promise<void> {
    this.closed = true;
    const c = this.connection;
    this.connection = undefined;
    this.channel = undefined;
    if (c) await bounded(c.close(), 5000);
  }
}
