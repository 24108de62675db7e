/**
 * A rollout to 1,000 machines at protocol level (issue 15's figure): no
 * firmware, machines as small state machines (update-fleet.ts) on one MQTT
 * connection, through the real gateway path: the embedded broker (aedes),
 * the gateway's ingest, command service, chunk server and rollout engine,
 * and the fleet store (PGlite), all in this process. Three waves (1 %,
 * 10 %, 100 %), 5 % of the last wave scripted to roll back (the new image
 * fails its probation there, the old one boots again), a halt at 2 % of a
 * wave, 50 machines updating at once. Printed as counts: the halt came
 * within the wave that failed, how many of that wave were spared, and that
 * no machine ends on a bad image (running the new image without having
 * confirmed it).
 */
import { sha256Hex, signRelease, generateReleaseKey } from '../../gateway/firmware/signature.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { Gateway } from '../../gateway/gateway.js';
import { startEmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { Rollouts } from '../../gateway/rollouts/service.js';
import { openDb } from '../../gateway/store/db.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Figures } from './figures.js';
import { UpdateFleet } from './update-fleet.js';

export interface RolloutBenchOptions {
  machines?: number;
  /** The share of the last wave scripted to roll back (5 %). */
  badPercent?: number;
  /** The halt threshold, a share of a wave (2 %). */
  haltPercent?: number;
  parallel?: number;
}

/** An image of `size` bytes with a simulator bundle's description line. */
function image(version: string, size: number): Buffer {
  const line = Buffer.from(`/*VFIMG {"version":"${version}","journal":1}*/\n`);
  const body = Buffer.alloc(size - line.length, 0x20);
  for (let i = 0; i < body.length; i++) body[i] = 97 + ((i * 7919) % 26);
  return Buffer.concat([line, body]);
}

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) throw new Error(`rollout bench: ${what} not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return performance.now() - start;
}

export async function rolloutBench(f: Figures, options: RolloutBenchOptions = {}): Promise<void> {
  const n = options.machines ?? 1000;
  const badPercent = options.badPercent ?? 5;
  const haltPercent = options.haltPercent ?? 2;
  const parallel = options.parallel ?? 50;
  f.out('');
  f.out(`Rollout: ${n} machines at protocol level through the gateway (aedes, PGlite, ingest, commands, chunk server, rollout engine; one process)`);
  f.out(`  waves 1 %, 10 %, 100 %; ${badPercent} % of the last wave roll back; halt at ${haltPercent} % of a wave; ${parallel} at once`);
  const broker = await startEmbeddedBroker({ port: 0 });
  const db = await openDb();
  const key = generateReleaseKey();
  const keys = join(mkdtempSync(join(tmpdir(), 'vf-rollout-bench-')), 'release-keys.pem');
  writeFileSync(keys, key.publicPem);
  const registry = new FirmwareRegistry(db, { keyFiles: [{ path: keys, optional: false }] });
  const gw = await Gateway.start({
    mqttUrl: broker.url,
    db,
    alerts: false,
    firmware: registry,
    updates: { source: registry, bytesPerSecond: 1 << 20, burstBytes: 1 << 16 },
    rollouts: { tickMs: 1000, pokeMs: 50 },
  });
  let fleet: UpdateFleet | undefined;
  try {
    const bytes = image('2.0.0', 8192);
    const s = signRelease(bytes, '2.0.0', key.privatePem);
    await registry.upload({ bytes, version: '2.0.0', signature: s.signature, keyId: s.keyId });
    const ids = Array.from({ length: n }, (_, i) => `bm-${String(i + 1).padStart(4, '0')}`);
    const made: { id: string; key: string; running: string }[] = [];
    for (const id of ids) made.push({ id, key: (await gw.commands.provision(id)).commandKey, running: '1.0.0' });
    gw.ingester.known(ids);
    fleet = await UpdateFleet.connect(broker.url, made);
    await fleet.hello();
    await until(
      'every machine online',
      async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM machine_state WHERE online')).rows[0]!.n) === n,
      120000,
    );

    const rollouts = new Rollouts(db, gw.commands, () => gw.rollouts!.poke());
    const r = await rollouts.create({ sha256: sha256Hex(bytes), target: { kind: 'all' }, waves: [1, 10, 100], halt: { percent: haltPercent }, parallel });
    const plan = await rollouts.machines(r.id);
    const last = plan.filter((m) => m.wave === 3).map((m) => m.machine);
    // Spread through the last wave's order: every twentieth machine for 5 %.
    const step = Math.round(100 / badPercent);
    const bad = new Set(last.filter((_, i) => i % step === step - 1));
    for (const m of bad) fleet.machine(m).script = 'rollback';

    let end = await rollouts.get(r.id);
    const toEnd = await until('the rollout halts or ends', async () => {
      end = await rollouts.get(r.id);
      return end.state === 'halted' || end.state === 'done';
    }, 600000);
    const haltedWave = end.state === 'halted' ? end.wave : 0;
    const badAtHalt = end.counts.failed + end.counts['rolled-back'];
    // What was under way at the halt finishes; nothing more starts.
    await until('the machines under way finish', async () => {
      const v = await rollouts.get(r.id);
      return v.counts.downloading + v.counts.waiting + v.counts.rebooting === 0 && v.counts.failed + v.counts['rolled-back'] + v.counts.confirmed + v.counts.pending === v.total;
    }, 120000);
    await new Promise((res) => setTimeout(res, 1000));
    const final = await rollouts.get(r.id);
    const started = (w: number): number => final.waves[w - 1]!.size - final.waves[w - 1]!.counts.pending;
    const sims = [...fleet.machines.values()];
    const onBadImage = sims.filter((m) => m.running === '2.0.0' && !m.valid).length;
    const badRunning = sims.filter((m) => bad.has(m.id) && m.running === '2.0.0').length;
    const confirmedSims = sims.filter((m) => m.running === '2.0.0' && m.valid).length;

    f.record('rollout.machines', n, 'machines in the rollout');
    f.record('rollout.waves', final.waves.length, `waves (${final.waves.map((w) => w.size).join(' + ')} machines)`);
    f.record('rollout.scriptedBad', bad.size, `machines of wave 3 scripted to roll back (${badPercent} %)`);
    f.record('rollout.haltedInWave', haltedWave, 'halted in wave (0: never; the failures are in wave 3)');
    f.record('rollout.haltThreshold', final.waves[2]!.haltAt, `wave 3 halts at (${haltPercent} % of ${final.waves[2]!.size}, failed or rolled back)`);
    f.record('rollout.badAtHalt', badAtHalt, 'failed or rolled back when it halted');
    f.record('rollout.secondsToHalt', Math.round(toEnd / 100) / 10, 'time from the rollout created to the halt (wall)', 's');
    for (const w of [1, 2, 3]) f.record(`rollout.wave${w}.started`, started(w), `wave ${w}: machines started, of ${final.waves[w - 1]!.size}`);
    f.record('rollout.wave3.spared', final.waves[2]!.counts.pending, 'wave 3: machines never started (spared by the halt)');
    f.record('rollout.confirmed', final.counts.confirmed, 'machines confirmed on the new image (gateway)');
    f.record('rollout.confirmedMachines', confirmedSims, 'machines on the new image, confirmed (their own count)');
    f.record('rollout.rolledBack', final.counts['rolled-back'], 'machines rolled back, on their old image');
    f.record('rollout.scriptedBadOnNewImage', badRunning, 'machines scripted to roll back that run the new image');
    f.record('rollout.onBadImage', onBadImage, 'machines left on a bad image (new, unconfirmed)');
    if (haltedWave !== 3 || onBadImage !== 0 || badRunning !== 0 || started(3) >= final.waves[2]!.size) {
      throw new Error(`rollout bench: expected a halt within wave 3 and no machine on a bad image; got ${JSON.stringify({ haltedWave, onBadImage, badRunning, started3: started(3) })}`);
    }
  } finally {
    await fleet?.close();
    await gw.close();
    await db.close();
    await broker.close();
  }
}
