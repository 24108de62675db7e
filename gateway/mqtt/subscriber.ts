/**
 * One MQTT connection of the gateway's, subscribed to a set of machine
 * topics, that makes sure it is really receiving.
 *
 * Two ways a gateway went deaf without an error, and what this does:
 * - mqtt.js does not subscribe again after a reconnect when the broker says
 *   the session is still there, and drops a subscribe to a topic it believes
 *   it has; Mosquitto restores a persistent session after a restart without
 *   its shared ($share/...) subscriptions. So the library's bookkeeping is
 *   off (`resubscribe: false`) and every connection subscribes afresh.
 * - Some brokers (RabbitMQ, NATS, aedes) grant a $share/... subscription and
 *   deliver nothing on it. So after every (re)subscription, and every minute,
 *   a probe message goes out on a topic the subscription covers
 *   (fleet/$gateway/{kind}: no machine can have that id) and must come back:
 *   to this gateway, or, in a share group, to any member, who records it in
 *   the store where the sender looks for it. A probe that does not come back
 *   is said loudly, the subscription is made again, and health() says deaf.
 */
import mqtt from 'mqtt';
import type { Feed, SubscriptionState } from '../feed/feed.js';
import type { Queryable } from '../store/db.js';
import { forgetOldProbes, probeRecorded, recordProbe } from '../store/probes.js';

export const PROBE_MACHINE = '$gateway';

export type { SubscriptionState };

export interface SubscriberOptions {
  url: string;
  /** For logs: what this connection carries. */
  name: string;
  /** Topic filters (fleet/+/events, ...), without the share prefix. */
  filters: string[];
  /** The kind level of the probe topic (fleet/$gateway/{probeKind}); one of the filters must cover it. */
  probeKind: string;
  shareGroup?: string | undefined;
  /** A fixed id gives a persistent session; none, a clean one. */
  clientId?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  ca?: string | Buffer | undefined;
  /** This gateway process (probes carry it, so it knows its own). */
  instance: string;
  /** Where share-group peers record the probes they receive. */
  db: Queryable;
  probeTimeoutMs?: number;
  probeEveryMs?: number;
  /**
   * True while this connection's messages are deliberately held (backpressure: a probe
   * cannot come back through a stream that is not being read): probes wait, and one
   * that times out then proves nothing.
   */
  paused?: () => boolean;
  /** A machine message; `done` acknowledges it to the broker (call it once the message is safe). */
  onMessage: (topic: string, payload: Buffer, done: () => void) => void;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /**
   * After a message arrives, what the connection writes for this long (its PUBACK, acks, commands)
   * goes out in one write (2 ms; 0: each at once). A write is a system call, and with machines that
   * each send one message now and then, one a message cost more CPU than storing it (issue 16).
   */
  writeCoalesceMs?: number;
}

interface Waiting {
  id: string;
  resolve: () => void;
}

export class Subscriber implements Feed {
  readonly client: mqtt.MqttClient;
  /** mqtt.js acknowledges on arrival; machines resend until the gateway's own ack after the commit. */
  readonly kind = 'mqtt';
  readonly ackAfterStore = false;
  state: SubscriptionState = 'connecting';
  /** When a probe last came back (ms since the epoch), and probes sent and lost. */
  lastReceivedAt: number | undefined;
  probesSent = 0;
  probesLost = 0;
  /** What this connection carries (ingest, audits, updates). */
  readonly name: string;
  private readonly o: SubscriberOptions;
  private readonly topics: string[];
  private readonly probeTopic: string;
  private waiting: Waiting | undefined;
  private probing: Promise<void> | undefined;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The next probe after one that did not come back. */
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private connection = 0;
  /** Writes held back to go out together (writeCoalesceMs), until this timer uncorks the socket. */
  private held: { stream: { uncork(): void }; timer: NodeJS.Timeout } | undefined;

  private constructor(o: SubscriberOptions) {
    this.o = o;
    this.name = o.name;
    const prefix = o.shareGroup ? `$share/${o.shareGroup}/` : '';
    this.topics = o.filters.map((f) => prefix + f);
    this.probeTopic = `fleet/${PROBE_MACHINE}/${o.probeKind}`;
    this.client = mqtt.connect(o.url, {
      clientId: o.clientId ?? `vendfleet-gateway-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      clean: o.clientId === undefined,
      protocolVersion: 4,
      reconnectPeriod: 1000,
      connectTimeout: 10000,
      // Subscriptions are made on every connection by this class, never left to the library's memory.
      resubscribe: false,
      // mqtt.js logs every packet through `debug` (a call, its arguments and a check of DEBUG each time, on
      // every message): silent unless DEBUG asks for something, when the library's own logger stays.
      ...(process.env['DEBUG'] ? {} : { log: () => {} }),
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
    });
    this.client.handleMessage = (packet, callback) => {
      if (packet.cmd !== 'publish') return callback();
      if (packet.topic === this.probeTopic) {
        this.probeArrived(packet.payload);
        return callback();
      }
      this.holdWrites();
      o.onMessage(packet.topic, packet.payload as Buffer, () => callback());
    };
  }

  /** Connect and subscribe (rejects if the broker cannot be reached in time); the first probe is awaited, not required. */
  static async open(o: SubscriberOptions): Promise<Subscriber> {
    const s = new Subscriber(o);
    const c = s.client;
    let first: ((err: Error | null) => void) | undefined;
    const subscribed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`could not connect to the MQTT broker at ${o.url}`)), 15000);
      first = (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
    });
    c.on('error', (e) => o.log('warn', `mqtt (${o.name}): ${e.message}`));
    c.on('offline', () => {
      if (!s.closed) o.log('warn', `mqtt (${o.name}): broker at ${o.url} unreachable; reconnecting`);
    });
    c.on('connect', () => {
      const gen = ++s.connection;
      s.state = 'connecting';
      // Acks and commands are small and wanted now: no Nagle delay on our side of the socket.
      (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      c.subscribe(s.topics, { qos: 1 }, (err, granted) => {
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        const failure = err ?? (refused.length > 0 ? new Error(`the broker refused the subscription to ${refused.join(', ')}`) : null);
        if (failure) o.log('error', `mqtt (${o.name}): subscribe failed: ${failure.message}`);
        first?.(failure);
        first = undefined;
        if (!failure && gen === s.connection) void s.probe();
      });
    });
    try {
      await subscribed;
    } catch (e) {
      c.end(true);
      throw e;
    }
    await s.probing;
    s.timer = setInterval(() => {
      if (c.connected && !s.probing && !o.paused?.()) void s.probe();
    }, o.probeEveryMs ?? 60000);
    s.timer.unref();
    return s;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  publish(topic: string, payload: string | Buffer, qos: 0 | 1): boolean {
    // QoS 1 is queued by mqtt.js while disconnected; QoS 0 (chunks) only goes out while connected.
    if (qos === 0 && !this.client.connected) return false;
    this.client.publish(topic, payload, { qos });
    return true;
  }

  /** Cork the socket for writeCoalesceMs, unless it is already: the writes meanwhile leave in one. */
  private holdWrites(): void {
    const ms = this.o.writeCoalesceMs ?? 2;
    if (this.held || ms <= 0) return;
    const stream = this.client.stream as { cork?: () => void; uncork(): void } | undefined;
    if (!stream?.cork) return;
    stream.cork();
    this.held = { stream, timer: setTimeout(() => this.releaseWrites(), ms) };
  }

  private releaseWrites(): void {
    const h = this.held;
    if (!h) return;
    this.held = undefined;
    clearTimeout(h.timer);
    h.stream.uncork();
  }

  /** Send a probe through the subscription and wait for it to come back (bounded); joins one under way. */
  probe(): Promise<void> {
    this.probing ??= this.runProbe().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private async runProbe(): Promise<void> {
    const o = this.o;
    const id = `${o.instance}:${o.name}:${++this.probesSent}`;
    const timeoutMs = o.probeTimeoutMs ?? 5000;
    let back = false;
    let storeAnswered = !o.shareGroup;
    const arrived = new Promise<void>((resolve) => {
      this.waiting = { id, resolve };
    });
    try {
      await this.client.publishAsync(this.probeTopic, JSON.stringify({ v: 1, probe: id }), { qos: 1 });
      const end = Date.now() + timeoutMs;
      while (!back && Date.now() < end && !this.closed) {
        let tick: NodeJS.Timeout | undefined;
        await Promise.race([arrived.then(() => (back = true)), new Promise((r) => (tick = setTimeout(r, 200)))]);
        clearTimeout(tick);
        if (!back && o.shareGroup) {
          // Another member of the share group may have had it.
          try {
            back = await probeRecorded(o.db, id);
            storeAnswered = true;
          } catch {
            // The store is away: this probe cannot be judged through it.
          }
        }
      }
    } catch (e) {
      if (!this.closed) o.log('warn', `mqtt (${o.name}): probe not sent (${(e as Error).message})`);
      return;
    } finally {
      this.waiting = undefined;
    }
    if (this.closed) return;
    if (back) {
      if (this.state === 'deaf' || this.failures > 0) o.log('info', `mqtt (${o.name}): receiving again on ${this.topics.join(', ')}`);
      this.state = 'receiving';
      this.failures = 0;
      this.lastReceivedAt = Date.now();
      if (this.probesSent % 30 === 0 && o.shareGroup) void forgetOldProbes(o.db).catch(() => undefined);
      return;
    }
    if (!storeAnswered || o.paused?.()) {
      this.state = 'unverified';
      o.log('warn', `mqtt (${o.name}): a probe could not be checked (${storeAnswered ? 'messages are held back while the store catches up' : 'the store is unavailable'}); trying again later`);
      return;
    }
    this.probesLost++;
    this.failures++;
    const what = `subscribed to ${this.topics.join(', ')} on ${o.url}, but a probe sent through it did not come back within ${timeoutMs / 1000} s`;
    if (this.failures === 1) {
      // Once may be a share group's member going away: subscribe again and look once more.
      o.log('warn', `mqtt (${o.name}): ${what}; subscribing again`);
    } else {
      this.state = 'deaf';
      o.log(
        'error',
        `mqtt (${o.name}): NOTHING IS BEING RECEIVED: ${what} (${this.failures} probes in a row). The broker accepts the subscription and delivers nothing` +
          `${o.shareGroup ? ' (some brokers, such as RabbitMQ and NATS, grant $share/... subscriptions without supporting them: unset GATEWAY_SHARE_GROUP or use Mosquitto)' : ''}; subscribing again`,
      );
    }
    await this.resubscribe();
    const wait = this.failures === 1 ? 0 : Math.min(60000, timeoutMs * 2 ** Math.min(this.failures - 2, 4));
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.closed && this.client.connected) void this.probe();
    }, wait);
    this.retry.unref();
  }

  private async resubscribe(): Promise<void> {
    try {
      await this.client.unsubscribeAsync(this.topics);
      await this.client.subscribeAsync(this.topics, { qos: 1 });
    } catch (e) {
      this.o.log('warn', `mqtt (${this.o.name}): subscribing again failed: ${(e as Error).message}`);
    }
  }

  private probeArrived(payload: Buffer | Uint8Array | string): void {
    let id: unknown;
    try {
      id = (JSON.parse(Buffer.from(payload).toString('utf8')) as { probe?: unknown }).probe;
    } catch {
      return;
    }
    if (typeof id !== 'string' || id.length > 200 || !/^[A-Za-z0-9:_.-]+$/.test(id)) return;
    if (this.waiting?.id === id) {
      this.waiting.resolve();
      return;
    }
    // Another gateway's (a share group hands it to one member): tell it through the store.
    if (this.o.shareGroup) {
      void recordProbe(this.o.db, id, this.o.instance).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.releaseWrites();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.retry);
    this.waiting?.resolve();
    // A clean session sharing a subscription: a message the broker routes to it while it goes away
    // is lost to the whole group (no other member gets it). Leave the group first, while still
    // taking what was already routed here; a persistent session keeps its subscriptions, so the
    // broker queues for it across a restart.
    if (this.o.clientId === undefined && this.o.shareGroup && this.client.connected) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.client.unsubscribeAsync(this.topics).catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
    }
  }

  /** Close the connection (after close() and after the work it fed is done). */
  end(): Promise<void> {
    this.releaseWrites();
    return new Promise<void>((resolve) => this.client.end(true, {}, () => resolve()));
  }
}
