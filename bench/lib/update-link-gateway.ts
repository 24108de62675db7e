/**
 * The gateway side of the update-over-a-slow-link bench (update-link.ts), in
 * a worker thread of its own: the embedded broker (aedes), the store
 * (PGlite), the firmware registry and the gateway with its chunk server.
 *
 * Why a thread: PGlite runs in the thread that calls it and holds it for
 * tens of milliseconds at a commit. In the machine's thread that stalled
 * the simulated machine's clock and its socket reads together, so packets
 * that came in during a stall all reached the simulated link at the same
 * machine instant (at 20x, 30 ms of wall time is 600 ms of machine time):
 * chunks bunched on the downlink as no real gateway sends them. Here the
 * store holds up only the gateway, as it would on a server of its own.
 *
 * Messages in: {id, op, ...}; out: {id, result} or {id, error}.
 */
import { parentPort } from 'node:worker_threads';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { Gateway } from '../../gateway/gateway.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { addMachines } from '../../gateway/store/machines.js';

export type GatewayRequest =
  | { op: 'start'; releasePublicPem: string; speed: number }
  | { op: 'machine'; machine: string }
  | { op: 'upload'; bytes: Uint8Array; version: string; signature: string; keyId: string }
  | { op: 'offer'; machine: string; sha256: string }
  | { op: 'chunkStats' }
  | { op: 'close' };

let broker: EmbeddedBroker | undefined;
let db: Db | undefined;
let registry: FirmwareRegistry | undefined;
let gw: Gateway | undefined;

async function handle(m: GatewayRequest): Promise<unknown> {
  switch (m.op) {
    case 'start': {
      broker = await startEmbeddedBroker({ port: 0 });
      db = await openDb();
      const keys = join(mkdtempSync(join(tmpdir(), 'vf-update-link-')), 'release-keys.pem');
      writeFileSync(keys, m.releasePublicPem);
      // The store's answers remembered for an hour, not 2 s: 2 s of wall time is 40 s of machine time
      // at 20x, and each lookup after it (tens of ms of wall time, about a second of the machine's) held
      // the requests that waited on it and answered them in a bunch, which a gateway answering in 5 to
      // 50 ms, 250 ms apart, never does. Between lookups the gateway answers from memory.
      registry = new FirmwareRegistry(db, { keyFiles: [{ path: keys, optional: false }], rememberMs: 3_600_000 });
      gw = await Gateway.start({
        mqttUrl: broker.url,
        db,
        alerts: false,
        rollouts: false,
        // The default allowance per machine (64 KiB/s) is of wall time; the machine's clock runs `speed` times
        // faster, so it is scaled to stay 64 KiB/s of machine time. The burst is bytes, not time.
        updates: { source: registry, bytesPerSecond: 65536 * m.speed, burstBytes: 32768 },
      });
      return { url: broker.url };
    }
    case 'machine':
      await addMachines(db!, [m.machine]);
      return null;
    case 'upload': {
      const { image } = await registry!.upload({ bytes: m.bytes, version: m.version, signature: m.signature, keyId: m.keyId });
      // Loaded into the gateway's memory now, as after the first chunk any machine asked for: reading 1.5 MB out
      // of PGlite took over a second of wall time, 20 s of the machine's, and the first requests timed out.
      await registry!.size(image.sha256);
      await registry!.bytes(image.sha256);
      return null;
    }
    case 'offer':
      await registry!.offer(m.machine, m.sha256);
      return null;
    case 'chunkStats':
      return { ...gw!.chunks!.stats };
    case 'close':
      await gw?.close();
      await db?.close();
      await broker?.close();
      return null;
  }
}

parentPort!.on('message', (msg: { id: number } & GatewayRequest) => {
  handle(msg).then(
    (result) => parentPort!.postMessage({ id: msg.id, result }),
    (e: unknown) => parentPort!.postMessage({ id: msg.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
});
