/**
 * The gateway: subscribes to every machine's events, telemetry and status,
 * ingests them into the fleet store, and acknowledges committed events to
 * each machine on fleet/{machine}/acks.
 *
 * Production runs several gateways against one broker: with a share group
 * they receive each message once between them ($share/{group}/...), and a
 * persistent session (fixed client id, clean: false) keeps QoS 1 messages
 * queued at the broker while a gateway restarts.
 */
import mqtt from 'mqtt';
import { AlertEngine } from './alerts/engine.js';
import { WebhookSender } from './alerts/webhook.js';
import { CommandService } from './commands/service.js';
import { AuditIntake, auditMachine } from './ingest/audits.js';
import { Ingester, type IngestOptions } from './ingest/ingester.js';
import { ackPayload } from './ingest/messages.js';
import type { Db } from './store/db.js';
import { migrate } from './store/migrations.js';

export interface GatewayOptions {
  mqttUrl: string;
  db: Db;
  /** Shared-subscription group (brokers that support $share), or none. */
  shareGroup?: string | undefined;
  clientId?: string;
  username?: string;
  password?: string;
  /** For mqtts:// brokers with a private CA: its certificate (PEM). */
  ca?: string | Buffer;
  ingest?: IngestOptions;
  /** The alert engine (docs/alerts.md): on unless false. */
  alerts?: AlertOptions | false;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export interface AlertOptions {
  /** Opened, updated and closed alerts are POSTed here (ALERT_WEBHOOK_URL). */
  webhookUrl?: string | undefined;
  /** HMAC-SHA-256 key for the X-Vendfleet-Signature header (ALERT_WEBHOOK_SECRET). */
  webhookSecret?: string | undefined;
  /** Webhook retry backoff, first delay (500 ms) and cap (60 s). */
  webhookRetryMs?: number;
  webhookMaxRetryMs?: number;
  /** How often silent machines and rejected commands are looked at (10,000 ms; 0: never, tests call sweep). */
  sweepMs?: number;
}

export const TOPICS = ['fleet/+/events', 'fleet/+/telemetry', 'fleet/+/status', 'fleet/+/audit'];

export class Gateway {
  readonly db: Db;
  readonly ingester: Ingester;
  readonly client: mqtt.MqttClient;
  readonly commands: CommandService;
  readonly audits: AuditIntake;
  /** Undefined when started with alerts: false. */
  readonly alerts: AlertEngine | undefined;
  acksSent = 0;

  private constructor(db: Db, client: mqtt.MqttClient, ingester: Ingester, commands: CommandService, audits: AuditIntake, alerts: AlertEngine | undefined) {
    this.db = db;
    this.client = client;
    this.ingester = ingester;
    this.commands = commands;
    this.audits = audits;
    this.alerts = alerts;
  }

  static async start(options: GatewayOptions): Promise<Gateway> {
    const log = options.onLog ?? (() => {});
    const applied = await migrate(options.db);
    if (applied.length > 0) log('info', `store: applied migrations ${applied.join(', ')}`);
    const client = mqtt.connect(options.mqttUrl, {
      clientId: options.clientId ?? `vendfleet-gateway-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      clean: options.clientId === undefined,
      protocolVersion: 4,
      reconnectPeriod: 1000,
      connectTimeout: 10000,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
    });
    let gateway: Gateway | undefined;
    // Backpressure: while too much waits for the store, mqtt.js is not told a message is
    // handled, so it stops parsing (and acknowledging) and the broker queues the rest.
    let high = false;
    let held: (() => void)[] = [];
    const audits = new AuditIntake(options.db, log);
    client.handleMessage = (packet, callback) => {
      const release = (): void => {
        if (high) held.push(() => callback());
        else callback();
      };
      // An audit file is acknowledged to the broker only once it is stored (or refused for good).
      const auditOf = packet.cmd === 'publish' ? auditMachine(packet.topic) : undefined;
      if (auditOf !== undefined && packet.cmd === 'publish') void audits.take(auditOf, packet.payload as Uint8Array).then(release);
      else release();
    };
    const alertOptions = options.alerts === false ? undefined : (options.alerts ?? {});
    const alerts = alertOptions
      ? new AlertEngine(options.db, {
          onLog: log,
          webhook: alertOptions.webhookUrl
            ? new WebhookSender({
                url: alertOptions.webhookUrl,
                secret: alertOptions.webhookSecret,
                onLog: log,
                ...(alertOptions.webhookRetryMs !== undefined ? { retryMs: alertOptions.webhookRetryMs } : {}),
                ...(alertOptions.webhookMaxRetryMs !== undefined ? { maxRetryMs: alertOptions.webhookMaxRetryMs } : {}),
              })
            : undefined,
        })
      : undefined;
    const commands = new CommandService(options.db, (topic, payload) => client.publish(topic, payload, { qos: 1 }), { onLog: log });
    const ingester = new Ingester(
      options.db,
      (machine, from, to) => {
        client.publish(`fleet/${machine}/acks`, ackPayload(from, to), { qos: 1 });
        if (gateway) gateway.acksSent++;
      },
      {
        ...options.ingest,
        onLog: log,
        onCommandEvents: async (tx, events) => {
          const changed = await commands.recordOutcomes(tx, events);
          return () => commands.settled(changed);
        },
        // Alerts are evaluated after the commit, off the ingest path: a slow evaluation never delays an ack.
        ...(alerts ? { onTelemetry: (list: { machine: string }[]) => alerts.telemetry(list) } : {}),
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
    gateway = new Gateway(options.db, client, ingester, commands, audits, alerts);
    const prefix = options.shareGroup ? `$share/${options.shareGroup}/` : '';
    const topics = TOPICS.map((t) => prefix + t);
    // A clean session's messages die with it: on close it leaves its subscriptions first (see close()).
    if (options.clientId === undefined) gateway.leaveFirst = topics;
    client.on('message', (topic, payload) => {
      if (auditMachine(topic) === undefined) ingester.submit(topic, payload);
    });
    client.on('error', (e) => log('warn', `mqtt: ${e.message}`));
    client.on('offline', () => log('warn', `mqtt: broker at ${options.mqttUrl} unreachable; reconnecting`));
    let first: ((err: Error | null) => void) | undefined;
    const subscribed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`could not connect to the MQTT broker at ${options.mqttUrl}`)), 15000);
      first = (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
    });
    // (Re)subscribe on every connection: a broker that lost our session must not leave us deaf.
    client.on('connect', () => {
      // Acks and commands are small and wanted now: no Nagle delay on our side of the socket.
      const stream = client.stream as { setNoDelay?: (on: boolean) => void };
      stream.setNoDelay?.(true);
      client.subscribe(topics, { qos: 1 }, (err) => {
        if (err) log('error', `mqtt: subscribe failed: ${err.message}`);
        first?.(err ?? null);
        first = undefined;
      });
    });
    try {
      await subscribed;
    } catch (e) {
      client.end(true);
      throw e;
    }
    log('info', `gateway: subscribed to ${TOPICS.map((t) => prefix + t).join(', ')} on ${options.mqttUrl}`);
    if (alerts) {
      alerts.startSweeper(alertOptions?.sweepMs ?? 10000);
      if (alerts.webhook) log('info', `alerts: notifications to ${alerts.webhook.target}`);
    }
    return gateway;
  }

  /** Register machines (provisioning proper comes with per-machine credentials). */
  async addMachines(ids: readonly string[]): Promise<void> {
    await this.db.query('INSERT INTO machines (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [ids]);
    this.ingester.known(ids);
  }

  /** Topics to unsubscribe from before closing (clean sessions only). */
  private leaveFirst: string[] | undefined;

  async close(): Promise<void> {
    // A clean session sharing a subscription: a message the broker routes to it while it goes away
    // is lost to the whole group (no other member gets it). Leave the group first, while still
    // taking what was already routed here; a persistent session keeps its subscriptions, so the
    // broker queues for it across a restart.
    if (this.leaveFirst && this.client.connected) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.client.unsubscribeAsync(this.leaveFirst).catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
    }
    this.commands.close();
    this.audits.close();
    await this.ingester.close();
    // After the ingester: its last commits may still hand telemetry over.
    await this.alerts?.close();
    // Messages still held back are neither stored nor acknowledged: the broker or the machines send them again.
    await new Promise<void>((resolve) => this.client.end(true, {}, () => resolve()));
  }
}
