/**
 * npm run gateway
 *
 * Production: MQTT_URL=mqtt://broker:1883 DATABASE_URL=postgres://… npm run gateway
 * On a RabbitMQ cluster (docs/cluster.md): AMQP_URL=amqp://user:pass@node1:5672,amqp://user:pass@node2:5672,…
 * (a comma-separated list of the nodes; the gateway reads from the first that
 * answers and moves on to the next when it goes) instead of MQTT_URL.
 * Embedded default (no MQTT_URL / DATABASE_URL): an in-process broker (aedes)
 * and PGlite keeping its data in ./data/pglite.
 *
 * Settings (environment): MQTT_URL, MQTT_USERNAME, MQTT_PASSWORD, AMQP_URL,
 * AMQP_PREFETCH (deliveries a gateway holds unacknowledged, 1000),
 * DATABASE_URL, DATABASE_READ_URL (a streaming replica of DATABASE_URL:
 * the API's routes that only read are served from it, docs/store.md),
 * GATEWAY_SHARE_GROUP (default "vendfleet" with an external
 * broker), GATEWAY_CLIENT_ID (a fixed id gives a persistent session; default
 * vendfleet-gateway-<host>), TELEMETRY_RETENTION_DAYS (30),
 * EVENTS_RETENTION_MONTHS (13: a month of events leaves the store once it
 * ended 13 months ago; 0 keeps every month), EVENTS_ARCHIVE_DIR (where those
 * months are written first, as gzip CSV: DATA_DIR/archive; "none" drops them
 * without a file; docs/architecture.md "The event store"), DATA_DIR,
 * MQTT_CA_FILE (the CA of an mqtts:// broker), API_HOST (127.0.0.1) and
 * API_PORT (8080) for the operator API, ALERT_WEBHOOK_URL (opened, updated
 * and closed alerts are POSTed there, docs/alerts.md) and
 * ALERT_WEBHOOK_SECRET (their HMAC-SHA-256 signature key; the platform's
 * webhook, which gets every operator's alerts: each operator sets its own
 * over the API, PUT /alert-webhook),
 * VENDFLEET_RELEASE_KEYS (a file of the Ed25519 release PUBLIC keys firmware
 * uploads must be signed with; DATA_DIR/release-keys.pem is read too, when
 * it exists; both are read again at each upload), FIRMWARE_MAX_BYTES (the
 * largest image taken, 4 MiB), UPDATE_BYTES_PER_SECOND and
 * UPDATE_BURST_BYTES (what the chunk server sends one machine, 65,536 a
 * second on average, 32,768 at once; docs/updates.md). On the
 * first start (no API tokens in the store) an admin token is written to
 * DATA_DIR/admin-token (readable by this user only), never to the log.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { firstAdminToken, listen } from './api/listen.js';
import { buildApi } from './api/server.js';
import { FirmwareRegistry } from './firmware/registry.js';
import { ReleaseKeyError, loadReleaseKeys, type KeyFile } from './firmware/signature.js';
import { Gateway } from './gateway.js';
import { GATEWAY_USER, storeCredentials } from './mqtt/credentials.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './mqtt/embedded-broker.js';
import { openDb, type Db } from './store/db.js';
import { closeSalesDays, pruneSalesHours } from './store/rollup.js';
import { dropOldTelemetry } from './store/migrations.js';

const env = process.env;
const log = (level: string, message: string): void => void process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${message}\n`);

function positive(name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    log('error', `${name} must be a positive integer, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

function whole(name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    log('error', `${name} must be a whole number, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

/** The alert webhook from the environment; the URL and the secret are never echoed (either may be a credential). */
function alertWebhook(): { webhookUrl?: string; webhookSecret?: string } {
  const url = env['ALERT_WEBHOOK_URL'];
  const secret = env['ALERT_WEBHOOK_SECRET'];
  if (!url) {
    if (secret) log('warn', 'ALERT_WEBHOOK_SECRET is set but ALERT_WEBHOOK_URL is not: no alert notifications');
    return {};
  }
  const protocol = protocolOf(url);
  if (protocol !== 'http:' && protocol !== 'https:') {
    log('error', 'ALERT_WEBHOOK_URL must be an http:// or https:// URL');
    process.exit(2);
  }
  if (!secret) log('warn', 'alerts: ALERT_WEBHOOK_SECRET is not set: webhook notifications go unsigned');
  return { webhookUrl: url, ...(secret ? { webhookSecret: secret } : {}) };
}

/** The release public key files, checked once now (an unreadable one stops the start; none at all is said). */
function releaseKeyFiles(dataDir: string): KeyFile[] {
  const named = env['VENDFLEET_RELEASE_KEYS'];
  const files: KeyFile[] = [...(named ? [{ path: named, optional: false }] : []), { path: join(dataDir, 'release-keys.pem'), optional: true }];
  try {
    const keys = loadReleaseKeys(files);
    if (keys.length === 0) log('warn', `firmware: no release keys (VENDFLEET_RELEASE_KEYS, ${join(dataDir, 'release-keys.pem')}): uploads are refused until there are`);
    else log('info', `firmware: release keys ${keys.map((k) => `${k.id} (${k.source})`).join(', ')}`);
  } catch (e) {
    if (!(e instanceof ReleaseKeyError)) throw e;
    log('error', `firmware: ${e.message}`);
    process.exit(2);
  }
  return files;
}

async function main(): Promise<void> {
  const retentionDays = positive('TELEMETRY_RETENTION_DAYS', 30);
  const alerts = alertWebhook();
  const dataDir = env['DATA_DIR'] ?? 'data';
  const eventsRetention = whole('EVENTS_RETENTION_MONTHS', 13);
  const archiveDir = env['EVENTS_ARCHIVE_DIR'] === 'none' ? null : (env['EVENTS_ARCHIVE_DIR'] || join(dataDir, 'archive'));
  const keyFiles = releaseKeyFiles(dataDir);
  const maxImageBytes = positive('FIRMWARE_MAX_BYTES', 4 * 1024 * 1024);
  const updateRate = { bytesPerSecond: positive('UPDATE_BYTES_PER_SECOND', 65536), burstBytes: positive('UPDATE_BURST_BYTES', 32768) };
  const db = await openDb(env['DATABASE_URL'] ? { url: env['DATABASE_URL'] } : { dataDir: join(dataDir, 'pglite') });
  log('info', db.kind === 'postgres' ? 'store: PostgreSQL' : `store: PGlite in ${join(dataDir, 'pglite')}`);
  let readDb: Db | undefined;
  if (env['DATABASE_READ_URL']) {
    if (db.kind !== 'postgres') {
      log('error', 'DATABASE_READ_URL is a replica of DATABASE_URL: give both');
      process.exit(2);
    }
    readDb = await openDb({ url: env['DATABASE_READ_URL'], readOnly: true });
    log('info', 'API reads: the replica at DATABASE_READ_URL');
  }
  let firmware: FirmwareRegistry;
  try {
    firmware = new FirmwareRegistry(db, { keyFiles, maxImageBytes });
  } catch (e) {
    log('error', `FIRMWARE_MAX_BYTES: ${(e as Error).message}`);
    process.exit(2);
  }
  let broker: EmbeddedBroker | undefined;
  let mqttUrl = env['MQTT_URL'];
  let username = env['MQTT_USERNAME'];
  let password = env['MQTT_PASSWORD'];
  const amqpUrls = (env['AMQP_URL'] ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (amqpUrls.length > 0 && mqttUrl) {
    log('error', 'set MQTT_URL (Mosquitto) or AMQP_URL (a RabbitMQ cluster), not both');
    process.exit(2);
  }
  for (const u of amqpUrls) {
    const protocol = protocolOf(u);
    if (protocol !== 'amqp:' && protocol !== 'amqps:') {
      log('error', 'AMQP_URL must be a comma-separated list of amqp:// or amqps:// URLs');
      process.exit(2);
    }
  }
  if (!mqttUrl && amqpUrls.length === 0) {
    // The embedded broker checks machines' logins against the store and enforces the topic ACLs.
    username = GATEWAY_USER;
    password = env['GATEWAY_MQTT_PASSWORD'] ?? randomBytes(24).toString('base64url');
    broker = await startEmbeddedBroker({ credentials: storeCredentials(db, password) });
    mqttUrl = broker.url;
    log('info', `embedded MQTT broker on ${mqttUrl} (logins and topic ACLs on)`);
  }
  const gateway = await Gateway.start({
    ...(amqpUrls.length > 0 ? { amqp: { urls: amqpUrls, prefetch: positive('AMQP_PREFETCH', 1000) } } : { mqttUrl: mqttUrl ?? '' }),
    db,
    shareGroup: env['GATEWAY_SHARE_GROUP'] ?? (broker ? undefined : 'vendfleet'),
    clientId: env['GATEWAY_CLIENT_ID'] ?? `vendfleet-gateway-${hostname()}`,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(env['MQTT_CA_FILE'] ? { ca: readFileSync(env['MQTT_CA_FILE']) } : {}),
    alerts,
    updates: { source: firmware, ...updateRate },
    firmware,
    events: { retentionMonths: eventsRetention, archiveDir },
    onLog: log,
  });
  log('info', eventsRetention === 0 ? 'events: kept for ever' : `events: months kept ${eventsRetention}, then ${archiveDir ? `archived to ${archiveDir} and ` : ''}dropped`);

  const api = await buildApi({ db, readDb, commands: gateway.commands, alerts: gateway.alerts, firmware, rolloutEngine: gateway.rollouts, health: () => gateway.health() });
  const apiPort = positive('API_PORT', 8080);
  const served = await listen(api, env['API_HOST'] ?? '127.0.0.1', apiPort);
  log('info', `operator API on ${served.url} (docs at /docs)${served.fellBack ? `; ${apiPort} was taken` : ''}`);
  const token = await firstAdminToken(db);
  if (token) {
    // Logs get collected and shipped: the secret goes to a file only its owner can read.
    const file = join(dataDir, 'admin-token');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, token + '\n', { mode: 0o600 });
    log('info', `first start: an admin API token is in ${file} (readable by this user only; make more with vendctl token create)`);
  }

  const retention = async (): Promise<void> => {
    try {
      const dropped = await dropOldTelemetry(db, retentionDays);
      if (dropped.length > 0) log('info', `retention: dropped ${dropped.join(', ')}`);
      // The fleet's totals of days that are over (the fleet's sales series reads a row a day for them).
      await closeSalesDays(db);
      // The hourly rollup keeps the forecasts' recent weeks only.
      await pruneSalesHours(db);
    } catch (e) {
      log('warn', `retention: ${(e as Error).message}`);
    }
  };
  await retention();
  const retentionTimer = setInterval(() => void retention(), 3600_000);

  let last = { messages: 0, at: performance.now() };
  const summary = setInterval(() => {
    const s = gateway.ingester.stats;
    const now = performance.now();
    const rate = ((s.messages - last.messages) * 1000) / (now - last.at);
    last = { messages: s.messages, at: now };
    const rejected = Object.entries(s.rejected).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    const health = gateway.health();
    log(
      health.status === 'ok' ? 'info' : 'warn',
      `${rate.toFixed(0)} msg/s; events stored ${s.events}, duplicates ${s.duplicates}, refused ${s.refusedEvents}, telemetry ${s.telemetry}; rejected: ${rejected}; p99 receive-to-commit ${gateway.ingester.latency(99).toFixed(1)} ms; waiting ${health.ingest.waiting}${health.status === 'ok' ? '' : `; DEGRADED: ${health.problems.join('; ')}`}`,
    );
  }, 10000);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log('info', 'stopping: writing what is waiting, then closing');
    clearInterval(summary);
    clearInterval(retentionTimer);
    await api.close();
    await gateway.close();
    await readDb?.close();
    await db.close();
    await broker?.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((e) => {
  log('error', (e as Error).stack ?? String(e));
  process.exit(1);
});

/** A URL's scheme with its colon ("amqp:"), or '' when it is not a URL (the caller says what it should be). */
function protocolOf(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return '';
  }
}
