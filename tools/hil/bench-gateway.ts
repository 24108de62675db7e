/**
 * The gateway a bench scenario's machine talks to when the scenario has
 * `network` or `update` steps: the embedded default (aedes and PGlite in
 * this process), started once per run and shared by its scenarios, like a
 * fleet's. For `update` steps it also has a firmware registry with a
 * release key of the run's own (the public half in a temporary key file, as
 * the gateway reads keys), the chunk server, and an MQTT client that
 * publishes the signed commands an operator's tool would.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { generateReleaseKey } from '../../gateway/firmware/signature.js';
import { Gateway } from '../../gateway/gateway.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db } from '../../gateway/store/db.js';

export interface BenchGateway {
  url: string;
  gateway: Gateway;
  db: Db;
  /** Takes images signed with `releasePem`. */
  registry: FirmwareRegistry;
  /** The run's release private key (PEM). */
  releasePem: string;
  /** Publish at QoS 1 on the run's own client (a command, as vendctl or the API would send it). */
  publish(topic: string, payload: Buffer): Promise<void>;
}

interface Running extends BenchGateway {
  broker: EmbeddedBroker;
  client: mqtt.MqttClient;
  keyDir: string;
}

let running: Promise<Running> | undefined;

export async function benchGateway(): Promise<BenchGateway> {
  running ??= (async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    const db = await openDb();
    const key = generateReleaseKey();
    const keyDir = mkdtempSync(join(tmpdir(), 'vf-bench-keys-'));
    writeFileSync(join(keyDir, 'release-keys.pem'), key.publicPem);
    const registry = new FirmwareRegistry(db, { keyFiles: [{ path: join(keyDir, 'release-keys.pem'), optional: false }] });
    // Machines on the bench run faster than real time: their share of the link, 64 KiB a second of
    // machine time, is up to ten times that of the gateway's real clock (sim-target.ts).
    const gateway = await Gateway.start({ mqttUrl: broker.url, db, updates: { source: registry, bytesPerSecond: 1 << 20, burstBytes: 1 << 18 }, firmware: registry });
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clientId: `vf-bench-${process.pid}` });
    const publish = async (topic: string, payload: Buffer): Promise<void> => {
      await client.publishAsync(topic, payload, { qos: 1 });
    };
    return { url: broker.url, gateway, db, registry, releasePem: key.privatePem, publish, broker, client, keyDir };
  })();
  return running;
}

export async function closeBenchGateway(): Promise<void> {
  if (!running) return;
  const r = await running;
  running = undefined;
  await r.client.endAsync();
  await r.gateway.close();
  await r.db.close();
  await r.broker.close();
  rmSync(r.keyDir, { recursive: true, force: true });
}
