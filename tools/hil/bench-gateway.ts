/**
 * The gateway a bench scenario's machine talks to when the scenario has
 * `network` steps: the embedded default (aedes and PGlite in this process),
 * started once per run and shared by its scenarios.
 */
import { Gateway } from '../../gateway/gateway.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db } from '../../gateway/store/db.js';

let running: Promise<{ broker: EmbeddedBroker; db: Db; gateway: Gateway }> | undefined;

export async function benchGateway(): Promise<{ url: string; gateway: Gateway }> {
  running ??= (async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    const db = await openDb();
    const gateway = await Gateway.start({ mqttUrl: broker.url, db });
    return { broker, db, gateway };
  })();
  const r = await running;
  return { url: r.broker.url, gateway: r.gateway };
}

export async function closeBenchGateway(): Promise<void> {
  if (!running) return;
  const r = await running;
  running = undefined;
  await r.gateway.close();
  await r.db.close();
  await r.broker.close();
}
