/**
 * The update path's power-cut recording (hal-sim/update-cuts.ts), for the
 * tests and `npm run bench`: a machine on the embedded broker and a gateway
 * with a firmware registry sells while it takes an `update` command,
 * downloads the next version over MQTT, switches when idle, runs on
 * probation and confirms, and sells on. The gateway stays up after the
 * recording so a cut machine can be booted online again and resume.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { signCommand } from '../../gateway/commands/envelope.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { generateReleaseKey, signRelease } from '../../gateway/firmware/signature.js';
import { Gateway } from '../../gateway/gateway.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import { checkCut } from '../../hal-sim/cut-check.js';
import { visit } from '../../hal-sim/customers.js';
import { CUT_FLASH, cutMachine } from '../../hal-sim/cut-workload.js';
import type { SlotGeometry } from '../../hal-sim/firmware-slots.js';
import type { MachineHost } from '../../hal-sim/host.js';
import { buildImage, type Image } from '../../hal-sim/images.js';
import { Random } from '../../hal-sim/scheduler.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { UpdateCutCampaign } from '../../hal-sim/update-cuts.js';
import type { Figures } from './figures.js';

/**
 * Slots just big enough for the images, in 64 KiB steps: a cut rebuilds both, so they stay small,
 * and they follow the bundle as it grows (a fixed 512 KiB stopped fitting it at 525,040 bytes).
 */
export function updateCutSlots(...images: Uint8Array[]): SlotGeometry {
  const step = 0x10000;
  const largest = Math.max(...images.map((i) => i.length));
  return { slotSize: Math.ceil(largest / step) * step, blockLength: 4096 };
}

export interface RunningImage {
  version: string;
  probation: boolean;
  rolledBack?: { version: string; reason: string };
}

export const runningImage = async (host: MachineHost): Promise<RunningImage> => (await host.runInGuest('return vendfleetGuest.board.firmware.running;')) as RunningImage;

export interface UpdateCutRun {
  campaign: UpdateCutCampaign;
  from: Image;
  to: Image;
  /** Where the recorded machine sent its events; online boots after a cut talk to it too. */
  broker: EmbeddedBroker;
  db: Db;
  registry: FirmwareRegistry;
  machineKey: Buffer;
  close(): Promise<void>;
}

/** Run the machine until `check` holds, bounded in machine time and real time. */
export async function runUntil(host: MachineHost, what: string, check: () => Promise<boolean>, machineMs = 900_000, realMs = 300_000): Promise<void> {
  const realEnd = Date.now() + realMs;
  for (let t = 0; t < machineMs && Date.now() < realEnd; t += 500) {
    if (await check()) return;
    await host.run(500);
  }
  if (!(await check())) throw new Error(`${what}: not so after ${host.nowMs} ms of machine time`);
}

export async function recordUpdateCuts(target: TargetName = 'sim'): Promise<UpdateCutRun> {
  const broker = await startEmbeddedBroker({ port: 0 });
  const db = await openDb();
  let gw: Gateway | undefined;
  let client: mqtt.MqttClient | undefined;
  const close = async (): Promise<void> => {
    await client?.endAsync();
    await gw?.close();
    await db.close();
    await broker.close();
  };
  try {
    await migrate(db);
    const release = generateReleaseKey();
    const keys = join(mkdtempSync(join(tmpdir(), 'vf-cut-keys-')), 'release-keys.pem');
    writeFileSync(keys, release.publicPem);
    const registry = new FirmwareRegistry(db, { keyFiles: [{ path: keys, optional: false }] });
    gw = await Gateway.start({ mqttUrl: broker.url, db, alerts: false, updates: { source: registry, bytesPerSecond: 1 << 20, burstBytes: 1 << 18 } });
    client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    const from = buildImage({ version: '0.1.0' });
    const to = buildImage({ version: '0.2.0' });
    const s = signRelease(Buffer.from(to.bytes), to.description.version, release.privatePem);
    await registry.upload({ bytes: Buffer.from(to.bytes), version: to.description.version, signature: s.signature, keyId: s.keyId });
    const id = `vm-cuts-${process.pid}`;
    await addMachines(db, [id]);
    await registry.offer(id, to.sha256);
    const machineKey = randomBytes(32);
    const rnd = new Random(41);
    const c = client;
    const campaign = await UpdateCutCampaign.record(
      cutMachine(),
      {
        target,
        seed: 7,
        machineId: id,
        flash: CUT_FLASH,
        first: from.bytes,
        slotGeometry: updateCutSlots(from.bytes, to.bytes),
        // Ten times real time while connected: round trips to the gateway keep their proportion.
        network: { url: broker.url, speed: 10 },
        config: {
          commandKey: machineKey.toString('hex'),
          commandKeyId: 1,
          update: { bytesPerSecond: 65536, chunkBytes: 4096, inFlight: 4, requestTimeoutMs: 30000, probationMs: 60000 },
        },
      },
      async (host) => {
        await runUntil(host, 'online', async () => (await host.status()).uplink?.state === 'online');
        for (let i = 0; i < 3; i++) await visit(host, rnd);
        const issued = Math.floor(host.wallMs / 1000);
        const args = { version: to.description.version, size: to.bytes.length, sha256: to.sha256, journal: to.description.journal, source: 'mqtt' };
        await c.publishAsync(`fleet/${id}/commands`, signCommand({ machine: id, n: 1, type: 'update', issued, expires: issued + 3600, args }, 1, machineKey), { qos: 1 });
        // Customers keep coming while it downloads, waits for a moment between them, switches and proves itself.
        const confirmed = async (): Promise<boolean> => host.image.version === to.description.version && !(await runningImage(host)).probation;
        for (let i = 0; i < 200 && !(await confirmed()); i++) {
          await visit(host, rnd);
          await host.run(1500);
        }
        await runUntil(host, `${to.description.version} confirmed`, confirmed);
        for (let i = 0; i < 3; i++) await visit(host, rnd);
        await runUntil(host, 'every event acknowledged', async () => (await host.status()).journal.unsynced === 0);
      },
    );
    return { campaign, from, to, broker, db, registry, machineKey, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * What must boot after a cut at step k, by the rule the bootloader keeps
 * (docs/updates.md): before `complete()` took, the old image; after it and
 * before the new image first booted, the new one on probation; while it
 * was on probation, the old one again, told it was a power cut; once it
 * marked itself valid, the new one.
 */
export function bootAfterCut(run: UpdateCutRun, k: number): RunningImage {
  const c = run.campaign;
  const stateAt = (what: string): number => c.steps.findIndex((s) => s.where === 'slots' && s.op.kind === 'state' && s.op.what === what);
  const complete = stateAt('complete');
  const valid = stateAt('valid');
  if (complete < 0 || valid < complete) throw new Error('the recording has no complete update');
  const from = run.from.description.version;
  const to = run.to.description.version;
  if (k <= complete) return { version: from, probation: false };
  if (k > valid) return { version: to, probation: false };
  const newSlot = c.slotsBefore(complete + 1).selected;
  if (c.slotsBefore(k).running !== newSlot) return { version: to, probation: true };
  return { version: from, probation: false, rolledBack: { version: to, reason: 'power' } };
}

/** `npm run bench`: a cut at every step of the update's window (mid-way and just before), on sim; every 7th under XS. */
export async function updateCutBench(f: Figures): Promise<void> {
  f.out('');
  f.out('Power cut at every journal and slot operation of a firmware update among sales (download, switch, probation, confirm)');
  const run = await recordUpdateCuts('sim');
  try {
    const c = run.campaign;
    const kinds = c.steps.map((_, k) => c.describe(k));
    const from = kinds.indexOf('slot open');
    const to = kinds.indexOf('slot valid') + 1;
    const rnd = new Random(13);
    const failures: string[] = [];
    let checked = 0;
    const check = async (cuts: typeof c, k: number, bytes: number, label: string): Promise<void> => {
      try {
        await checkCut(cuts, k, bytes, rnd, 1, async (host, where) => {
          const want = bootAfterCut(run, k);
          const got = await runningImage(host);
          if (host.image.version !== want.version || got.probation !== want.probation || (want.rolledBack && got.rolledBack?.reason !== want.rolledBack.reason)) {
            throw new Error(`${where}: booted ${host.image.version}${got.probation ? ' on probation' : ''}, the rule says ${want.version}${want.probation ? ' on probation' : ''}`);
          }
        });
      } catch (e) {
        failures.push(`${label}${(e as Error).message.split('\n')[0]!}`);
      }
    };
    for (let k = from; k <= to; k++) {
      const len = c.length(k);
      for (const bytes of len > 1 ? [len >> 1, 0] : [0]) {
        await check(c, k, bytes, '');
        checked++;
      }
    }
    const xs = c.withTarget('xs');
    let xsChecked = 0;
    for (let k = from; k <= to; k += 7) {
      await check(xs, k, c.length(k) >> 1, 'xs: ');
      xsChecked++;
    }
    const slotOps = c.steps.slice(from, to + 1).filter((s) => s.where === 'slots').length;
    f.record('updateCuts.steps', to - from + 1, `update ops, open to valid (${slotOps} on the slots)`);
    f.record('updateCuts.checked', checked, 'cuts checked on sim (each op: mid-way and just before)');
    f.record('updateCuts.xsChecked', xsChecked, 'cuts checked with the firmware under XS (every 7th op, mid-way)');
    f.record('updateCuts.failed', failures.length, 'cuts after which the wrong image booted or an invariant failed');
    for (const failure of failures.slice(0, 5)) f.out(`    ${failure}`);
    if (failures.length > 0) process.exitCode = 1;
  } finally {
    await run.close();
  }
}
