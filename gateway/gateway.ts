/**
 * The gateway: subscribes to every machine's events, telemetry and status,
 * ingests them into the fleet store, and acknowledges committed events to
 * each machine on fleet/{machine}/acks.
 *
 * Production runs several gateways against one broker: with a share group
 * they receive each message once between them ($share/{group}/...), and a
 * persistent session (fixed client id, clean: false) keeps QoS 1 messages
 * queued at the broker while a gateway restarts. On a RabbitMQ cluster
 * (`amqp`), they consume replicated queues instead (amqp/feed.ts,
 * docs/cluster.md). Either way through a feed (feed/feed.ts).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { AlertEngine } from './alerts/engine.js';
import { OperatorWebhooks } from './alerts/operator-webhooks.js';
import { WebhookSender } from './alerts/webhook.js';
import { CommandService } from './commands/service.js';
import type { FirmwareRegistry } from './firmware/registry.js';
import { ChunkServer, REQUEST_FILTER, type ChunkServerOptions, type ImageSource } from './firmware/serve.js';
import { AuditIntake, auditMachine } from './ingest/audits.js';
import { AmqpFeed } from './amqp/feed.js';
import type { Feed, FeedKind, FeedOptions, SubscriptionState } from './feed/feed.js';
import { Ingester, type IngestHealth, type IngestOptions } from './ingest/ingester.js';
import { ackPayload } from './ingest/messages.js';
import { ingestStore } from './ingest/store.js';
import { Subscriber } from './mqtt/subscriber.js';
import { RolloutEngine, type RolloutEngineOptions } from './rollouts/engine.js';
import type { Db } from './store/db.js';
import { EventUpkeep, type EventUpkeepOptions } from './store/event-upkeep.js';
import { addMachines } from './store/machines.js';
import type { Timers } from './time.js';
import { migrate } from './store/migrations.js';

export interface GatewayOptions {
  /** The MQTT broker (Mosquitto, the embedded one); exactly one of mqttUrl and amqp. */
  mqttUrl?: string;
  /** A RabbitMQ cluster over AMQP (docs/cluster.md): its nodes' URLs, a lost connection tries the next. */
  amqp?: { urls: string[]; prefetch?: number };
  db: Db;
  /**
   * Shared-subscription group (brokers that support $share), or none. Over AMQP, the queues'
   * prefix ({group}.ingest ...; "vendfleet" unless given): gateways of one group compete for them.
   */
  shareGroup?: string | undefined;
  clientId?: string;
  username?: string;
  password?: string;
  /** For mqtts:// brokers with a private CA: its certificate (PEM). */
  ca?: string | Buffer;
  ingest?: IngestOptions;
  /** How long a subscription probe may take to come back (5 s), and how often one goes out (60 s). */
  probeTimeoutMs?: number;
  probeEveryMs?: number;
  /** The alert engine (docs/alerts.md): on unless false. */
  alerts?: AlertOptions | false;
  /**
   * The firmware chunk server (docs/updates.md), on a connection of its own so that chunks never
   * wait behind ingest or hold it up: serves the images `source` (the registry) offers. Off unless given.
   */
  updates?: ChunkServerOptions & { source: ImageSource };
  /** The firmware registry whose memory of offers update commands keep current (the chunk server's source, usually). */
  firmware?: FirmwareRegistry | undefined;
  /** The rollout engine (docs/updates.md "Rollouts"): on unless false. */
  rollouts?: RolloutEngineOptions | false;
  /** The events months' upkeep (store/event-upkeep.ts); default: months made ahead, none dropped. */
  events?: EventUpkeepOptions;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export interface AlertOptions {
  /** Opened, updated and closed alerts are POSTed here (ALERT_WEBHOOK_URL). */
  webhookUrl?: string | undefined;
  /** HMAC-SHA-256 key for the X-Vendfleet-Signature header (ALERT_WEBHOOK_SECRET). */
  webhookSecret?: string | undefined;
  /** Webhook retry backoff, first delay (500 ms) and cap (60 s): the global webhook's and each operator's. */
  webhookRetryMs?: number;
  webhookMaxRetryMs?: number;
  /** The webhooks' retry waits and timeouts run on these (tests: a virtual clock). */
  webhookTimers?: Timers;
  /** How often silent machines and rejected commands are looked at (10,000 ms; 0: never, tests call sweep). */
  sweepMs?: number;
}

export const TOPICS = ['fleet/+/events', 'fleet/+/telemetry', 'fleet/+/status', 'fleet/+/audit'];

export interface FeedConnectionHealth {
  name: string;
  connected: boolean;
  subscription: SubscriptionState;
  lastProbeAgoMs: number | undefined;
  probesLost: number;
}

export interface GatewayHealth {
  /** ok: receiving and storing; degraded: something below says why. */
  status: 'ok' | 'degraded';
  problems: string[];
  /** The broker feed: its protocol, and per connection (ingest, audits, updates) its state; probesLost counts probes that did not come back. */
  feed: { kind: FeedKind; connections: FeedConnectionHealth[] };
  /**
   * The same connections under their old name, whatever the protocol (an AMQP feed too): kept for
   * monitors written before `feed`. Deprecated: read `feed.connections`.
   */
  mqtt: FeedConnectionHealth[];
  ingest: IngestHealth;
  audits: { waitingMs: number; lastError: string | undefined };
}

export class Gateway {
  readonly db: Db;
  readonly ingester: Ingester;
  /** The feed that carries events, telemetry and status (its connection carries acks and commands back). */
  readonly feed: Feed;
  readonly commands: CommandService;
  readonly audits: AuditIntake;
  /** Undefined when started with alerts: false. */
  readonly alerts: AlertEngine | undefined;
  /** The firmware chunk server; undefined unless started with `updates`. */
  readonly chunks: ChunkServer | undefined;
  /** Undefined when started with rollouts: false. */
  readonly rollouts: RolloutEngine | undefined;
  /** Makes events months ahead and takes old ones out (archive, drop). */
  readonly events: EventUpkeep;
  acksSent = 0;
  private readonly subscribers: Feed[];

  private constructor(
    db: Db,
    subscribers: Feed[],
    ingester: Ingester,
    commands: CommandService,
    audits: AuditIntake,
    alerts: AlertEngine | undefined,
    chunks: ChunkServer | undefined,
    rollouts: RolloutEngine | undefined,
    events: EventUpkeep,
  ) {
    this.db = db;
    this.subscribers = subscribers;
    this.feed = subscribers[0]!;
    this.ingester = ingester;
    this.commands = commands;
    this.audits = audits;
    this.alerts = alerts;
    this.chunks = chunks;
    this.rollouts = rollouts;
    this.events = events;
  }

  static async start(options: GatewayOptions): Promise<Gateway> {
    const log = options.onLog ?? (() => {});
    if ((options.mqttUrl === undefined) === (options.amqp === undefined)) throw new Error('the gateway needs a broker: mqttUrl or amqp, not both');
    const applied = await migrate(options.db);
    if (applied.length > 0) log('info', `store: applied migrations ${applied.join(', ')}`);
    const instance = `${hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-${process.pid}-${randomBytes(3).toString('hex')}`;
    let gateway: Gateway | undefined;
    // Backpressure: while too much waits for the store, mqtt.js is not told a message is
    // handled, so it stops parsing (and acknowledging) and the broker queues the rest.
    let high = false;
    let held: (() => void)[] = [];
    const alertOptions = options.alerts === false ? undefined : (options.alerts ?? {});
    const delivery = {
      onLog: log,
      ...(alertOptions?.webhookRetryMs !== undefined ? { retryMs: alertOptions.webhookRetryMs } : {}),
      ...(alertOptions?.webhookMaxRetryMs !== undefined ? { maxRetryMs: alertOptions.webhookMaxRetryMs } : {}),
      ...(alertOptions?.webhookTimers ? { timers: alertOptions.webhookTimers } : {}),
    };
    const alerts = alertOptions
      ? new AlertEngine(options.db, {
          onLog: log,
          webhook: alertOptions.webhookUrl ? new WebhookSender({ url: alertOptions.webhookUrl, secret: alertOptions.webhookSecret, ...delivery }) : undefined,
          operatorWebhooks: new OperatorWebhooks(delivery),
        })
      : undefined;
    let publisher: Feed | undefined;
    const commands = new CommandService(options.db, (topic, payload) => publisher?.publish(topic, payload, 1), { onLog: log, offers: options.firmware });
    const rollouts = options.rollouts === false ? undefined : new RolloutEngine(options.db, commands, { onLog: log, ...options.rollouts });
    const ingester = new Ingester(
      ingestStore(options.db),
      (machine, from, to) => {
        publisher?.publish(`fleet/${machine}/acks`, ackPayload(from, to), 1);
        if (gateway) gateway.acksSent++;
      },
      {
        ...options.ingest,
        onLog: log,
        onCommandEvents: async (tx, events) => {
          const settled = await commands.recordOutcomes(tx, events);
          return () => {
            commands.settled(settled);
            // An update moved on: rollouts step, and a rollback opens its alert.
            if (settled.reported.length > 0 || settled.changed.some((c) => c.type === 'update')) rollouts?.poke();
            if (settled.reported.length > 0) alerts?.telemetry(settled.reported.map((machine) => ({ machine })));
          };
        },
        // Alerts are evaluated after the commit, off the ingest path: a slow evaluation never delays an ack.
        onTelemetry: (list: { machine: string; update: boolean }[]) => {
          alerts?.telemetry(list);
          // A machine's download progress is in its telemetry.
          if (rollouts && list.some((t) => t.update)) rollouts.poke();
        },
        onOnline: (machines) => {
          for (const m of machines) void commands.machineOnline(m).catch((e: Error) => log('warn', `commands: sending to ${m} failed: ${e.message}`));
        },
        onPressure: (pressed) => {
          high = pressed;
          if (!pressed) {
            const go = held;
            held = [];
            for (const f of go) f();
          }
        },
      },
    );
    const audits = new AuditIntake(options.db, log);
    const probing = {
      ...(options.probeTimeoutMs !== undefined ? { probeTimeoutMs: options.probeTimeoutMs } : {}),
      ...(options.probeEveryMs !== undefined ? { probeEveryMs: options.probeEveryMs } : {}),
    };
    const amqpSettings = options.amqp;
    const mqttUrl = options.mqttUrl ?? '';
    const open = (o: FeedOptions): Promise<Feed> =>
      amqpSettings
        ? AmqpFeed.open({ urls: amqpSettings.urls, group: options.shareGroup ?? 'vendfleet', instance, db: options.db, log, ...probing, ...(amqpSettings.prefetch !== undefined ? { prefetch: amqpSettings.prefetch } : {}) }, o)
        : Subscriber.open({ ...o, url: mqttUrl, shareGroup: options.shareGroup, username: options.username, password: options.password, ca: options.ca, instance, db: options.db, log, ...probing });
    const subscribers: Feed[] = [];
    let chunks: ChunkServer | undefined;
    try {
      subscribers.push(
        await open({
          name: 'ingest',
          filters: TOPICS.filter((t) => !t.endsWith('/audit')),
          probeKind: 'status',
          clientId: options.clientId,
          paused: () => high,
          onMessage: amqpSettings
            ? // The broker keeps each message until it is stored (its prefetch bounds what waits here).
              (topic, payload, done) => ingester.submit(topic, payload, (outcome) => done(outcome === 'dropped'))
            : (topic, payload, done) => {
                ingester.submit(topic, payload);
                if (high) held.push(done);
                else done();
              },
        }),
      );
      publisher = subscribers[0];
      // Audit files on a connection of their own: one that waits for the store holds back only audits.
      subscribers.push(
        await open({
          name: 'audits',
          filters: TOPICS.filter((t) => t.endsWith('/audit')),
          probeKind: 'audit',
          clientId: options.clientId === undefined ? undefined : `${options.clientId}-audit`,
          paused: () => audits.busy,
          onMessage: (topic, payload, done) => {
            const machine = auditMachine(topic);
            if (machine === undefined) return done();
            void audits.take(machine, payload).then((outcome) => {
              // Held (closing): not acknowledged, so the broker hands it over again.
              if (outcome !== 'held') done();
            });
          },
        }),
      );
      if (options.updates) {
        const { source, ...chunkOptions } = options.updates;
        let updates: Feed | undefined;
        // QoS 0 both ways, and only while connected: a chunk queued for later is one the machine has asked for again by then.
        chunks = new ChunkServer(source, (topic, payload) => updates?.publish(topic, payload, 0), { onLog: log, ...chunkOptions });
        const server = chunks;
        updates = await open({
          name: 'updates',
          filters: [REQUEST_FILTER],
          probeKind: 'update/get',
          // A clean session: requests are QoS 0, nothing is worth keeping across a restart.
          clientId: undefined,
          onMessage: (topic, payload, done) => {
            done();
            void server.request(topic, payload);
          },
        });
        subscribers.push(updates);
      }
    } catch (e) {
      for (const s of subscribers) await s.end();
      await rollouts?.close();
      commands.close();
      await ingester.close();
      await alerts?.close();
      throw e;
    }
    const events = new EventUpkeep(options.db, { ...(options.events ?? { archiveDir: null }), onLog: options.events?.onLog ?? log });
    gateway = new Gateway(options.db, subscribers, ingester, commands, audits, alerts, chunks, rollouts, events);
    rollouts?.start();
    events.start();
    if (amqpSettings) {
      log('info', `gateway: consuming ${subscribers.map((f) => `${options.shareGroup ?? 'vendfleet'}.${f.name}`).join(', ')} (quorum queues bound to amq.topic) on a RabbitMQ cluster of ${amqpSettings.urls.length} node address(es)`);
    } else {
      const prefix = options.shareGroup ? `$share/${options.shareGroup}/` : '';
      log('info', `gateway: subscribed to ${[...TOPICS, ...(chunks ? [REQUEST_FILTER] : [])].map((t) => prefix + t).join(', ')} on ${mqttUrl}`);
    }
    if (alerts) {
      alerts.startSweeper(alertOptions?.sweepMs ?? 10000);
      if (alerts.webhook) log('info', `alerts: notifications to ${alerts.webhook.target}`);
    }
    return gateway;
  }

  /** Is the ingest feed connected to its broker? */
  get connected(): boolean {
    return this.feed.connected;
  }

  /** Register machines (provisioning proper comes with per-machine credentials). */
  async addMachines(ids: readonly string[]): Promise<void> {
    await addMachines(this.db, ids);
    this.ingester.known(ids);
  }

  /** Is this gateway receiving and storing? (GET /health) */
  health(): GatewayHealth {
    const now = Date.now();
    const ingest = this.ingester.health();
    const audits = this.audits.health();
    const connections: FeedConnectionHealth[] = this.subscribers.map((s) => ({
      name: s.name,
      connected: s.connected,
      subscription: s.state,
      lastProbeAgoMs: s.lastReceivedAt === undefined ? undefined : now - s.lastReceivedAt,
      probesLost: s.probesLost,
    }));
    const problems: string[] = [];
    const kind = this.feed.kind;
    for (const m of connections) {
      if (!m.connected) problems.push(`${kind} (${m.name}): not connected to the broker`);
      else if (m.subscription === 'deaf') problems.push(`${kind} (${m.name}): the broker ${kind === 'amqp' ? 'takes the consumer' : 'accepts the subscription'} but delivers nothing`);
    }
    if (!ingest.storeAvailable) problems.push(`store unavailable: ${ingest.lastError ?? ''}`);
    if (ingest.stalledMs > 0) problems.push(`ingest: no progress for ${Math.round(ingest.stalledMs / 1000)} s while ${ingest.waiting} messages wait`);
    if (audits.waitingMs > 10000) problems.push(`audits: a file has waited ${Math.round(audits.waitingMs / 1000)} s for the store`);
    return { status: problems.length === 0 ? 'ok' : 'degraded', problems, feed: { kind, connections }, mqtt: connections, ingest, audits };
  }

  async close(): Promise<void> {
    for (const s of this.subscribers) await s.close();
    await this.rollouts?.close();
    await this.events.close();
    this.commands.close();
    this.audits.close();
    await this.ingester.close();
    // After the ingester: its last commits may still hand telemetry over.
    await this.alerts?.close();
    // Messages still held back are neither stored nor acknowledged: the broker or the machines send them again.
    for (const s of this.subscribers) await s.end();
  }
}
