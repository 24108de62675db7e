/**
 * Rollouts (docs/updates.md "Rollouts") on both setups, the engine on a
 * virtual clock, machines played at protocol level through the real broker
 * (bench/lib/update-fleet.ts): waves that move on only when every machine
 * of the last one is at an end, a halt within a wave at its threshold and a
 * resume past it, pause, resume and cancel, a machine heard nothing of
 * timing out, one unfinished rollout per machine, and a gateway restarted
 * in the middle of a rollout going on where the store says.
 */
import { strict as assert } from 'node:assert';
import { UpdateFleet, type Script } from '../../bench/lib/update-fleet.js';
import type { CommandError } from '../../gateway/commands/service.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { Gateway } from '../../gateway/gateway.js';
import type { RolloutEngine } from '../../gateway/rollouts/engine.js';
import { Rollouts, RolloutError, type RolloutView } from '../../gateway/rollouts/service.js';
import type { Db } from '../../gateway/store/db.js';
import { VirtualTime } from '../lib/virtual-time.js';
import { BACKENDS, eventually, type Backend } from './backends.js';
import { keysFile, signed, simImage, testKey } from './firmware-fixtures.js';

for (const backend of BACKENDS) {
  describe(`rollouts: ${backend.name}`, function () {
    this.timeout(120000);
    let b: Backend;
    let db: Db;
    let gw: Gateway;
    let engine: RolloutEngine;
    let rollouts: Rollouts;
    let registry: FirmwareRegistry;
    let fleet: UpdateFleet;
    const clock = new VirtualTime();
    const key = testKey();
    const tag = `ro${process.pid % 10000}${Math.floor(Math.random() * 1e5)}`;
    const group = (name: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${tag}-${name}${i}`);
    const ids = { waves: group('w', 20), halt: group('h', 10), pause: group('p', 6), timeout: group('t', 3), restart: group('r', 6) };
    const image = simImage('1.1.0', { size: 6000, seed: 4 });
    const sha = sha256Hex(image);

    const start = async (store: Db): Promise<void> => {
      gw = await Gateway.start({
        mqttUrl: b.mqttUrl,
        db: store,
        shareGroup: b.shareGroup,
        updates: { source: registry },
        firmware: registry,
        alerts: false,
        rollouts: { clock, timers: clock, tickMs: 5000, pokeMs: 50 },
      });
      engine = gw.rollouts!;
      rollouts = new Rollouts(store, gw.commands, () => engine.poke());
    };

    /** One step of every rollout, after what the machines said is stored. */
    const step = async (): Promise<void> => {
      await gw.ingester.flush();
      await engine.pass();
    };
    /** Step until `done` holds (the machines answer over a real broker: bounded in real time). */
    const until = async (what: string, done: (r: RolloutView) => boolean, id: string, ms = 30000): Promise<RolloutView> =>
      eventually(what, async () => {
        await step();
        const r = await rollouts.get(id);
        return done(r) ? r : undefined;
      }, ms);
    const script = (machines: readonly string[], s: Script): void => {
      for (const m of machines) fleet.machine(m).script = s;
    };
    /** The machines of a wave (from 1), in the order they go. */
    const wave = async (id: string, w: number): Promise<string[]> => (await rollouts.machines(id)).filter((m) => m.wave === w).map((m) => m.machine);
    const sent = (machines: readonly string[]): string[] => machines.filter((m) => fleet.machine(m).commands.some((c) => c.type === 'update'));
    /** Play a manual machine's update to its end: `confirmed` or `rolled-back`. */
    const finish = async (m: string, end: 'confirmed' | 'rolled-back' = 'confirmed'): Promise<void> => {
      const c = fleet.machine(m).commands.filter((x) => x.type === 'update').at(-1)!;
      await fleet.report(
        m,
        { type: 'update-begin', n: c.n, version: '1.1.0', size: image.length, sha256: sha, journal: 1 },
        { type: 'update', n: c.n, phase: 'downloaded', version: '1.1.0' },
        { type: 'update', n: c.n, phase: 'installing', version: '1.1.0' },
        { type: 'update', n: c.n, phase: end, version: '1.1.0', ...(end === 'rolled-back' ? { reason: 'watchdog' } : {}) },
      );
    };

    before(async () => {
      b = await backend.open();
      db = b.db;
      registry = new FirmwareRegistry(db, { keyFiles: [{ path: keysFile(key), optional: false }] });
      await start(db);
      await registry.upload(signed(image, '1.1.0', key));
      const all = Object.values(ids).flat();
      const keys = new Map<string, string>();
      for (const m of all) keys.set(m, (await gw.commands.provision(m)).commandKey);
      fleet = await UpdateFleet.connect(b.mqttUrl, all.map((m) => ({ id: m, key: keys.get(m)!, running: '1.0.0', script: 'manual' as const })));
      await fleet.hello();
      await eventually('every machine online', async () => {
        await gw.ingester.flush();
        const r = await db.query<{ n: string }>('SELECT count(*) AS n FROM machine_state WHERE online AND machine_id LIKE $1', [`${tag}-%`]);
        return Number(r.rows[0]!.n) === all.length ? true : undefined;
      });
    });
    after(async () => {
      await fleet?.close();
      await gw?.close();
      await b?.close();
    });

    it('moves to the next wave only when every machine of the last one is at an end, and shows each one on its way', async () => {
      const r = await rollouts.create({ version: '1.1.0', target: { kind: 'machines', machines: ids.waves }, waves: [10, 50, 100], parallel: 100 });
      assert.deepEqual(r.waves.map((w) => w.size), [2, 8, 10]);
      assert.deepEqual([r.state, r.wave, r.total, r.counts.pending], ['running', 1, 20, 20]);
      const [w1, w2, w3] = [await wave(r.id, 1), await wave(r.id, 2), await wave(r.id, 3)];
      await step();
      await eventually('wave 1 has its commands', async () => (sent(w1).length === 2 ? true : undefined));
      assert.deepEqual(sent([...w2, ...w3]), [], 'nobody beyond wave 1');
      assert.deepEqual(await registry.offersTo(w1[0]!), [sha]);

      // One machine on its way: downloading (bytes and %), waiting, rebooting, confirmed.
      const [a, bb] = w1 as [string, string];
      const c = fleet.machine(a).commands.at(-1)!;
      await fleet.report(a, { type: 'update-begin', n: c.n, version: '1.1.0', size: image.length, sha256: sha, journal: 1 });
      await fleet.telemetry(a, { n: c.n, version: '1.1.0', state: 'downloading', offset: 4096, size: image.length });
      let v = await until('downloading', (x) => x.active.some((m) => m.machine === a && m.bytes === 4096), r.id);
      assert.deepEqual(v.active.find((m) => m.machine === a), { machine: a, wave: 1, state: 'downloading', bytes: 4096, size: image.length, percent: 68, reason: null, command: v.active.find((m) => m.machine === a)!.command });
      await fleet.report(a, { type: 'update', n: c.n, phase: 'downloaded', version: '1.1.0' });
      await fleet.telemetry(a, { n: c.n, version: '1.1.0', state: 'waiting' });
      await until('waiting', (x) => x.counts.waiting === 1, r.id);
      await fleet.report(a, { type: 'update', n: c.n, phase: 'installing', version: '1.1.0' });
      await until('rebooting', (x) => x.counts.rebooting === 1, r.id);
      // Telemetry older than the event (still "downloading") moves nothing back.
      await fleet.telemetry(a, { n: c.n, version: '1.1.0', state: 'downloading', offset: 10, size: image.length });
      await fleet.report(a, { type: 'update', n: c.n, phase: 'confirmed', version: '1.1.0' });
      v = await until('one confirmed', (x) => x.counts.confirmed === 1, r.id);
      assert.equal(v.wave, 1, 'the other of wave 1 is still under way');
      await step();
      assert.deepEqual(sent(w2), [], 'so wave 2 waits');

      await finish(bb);
      v = await until('wave 2 under way', (x) => x.wave === 2, r.id);
      await step();
      await eventually('wave 2 has its commands', async () => (sent(w2).length === 8 ? true : undefined));
      assert.deepEqual(sent(w3), []);
      assert.deepEqual(v.waves.map((w) => w.state), ['done', 'current', 'waiting']);
      // The rest update by themselves, fetching the image from the chunk server.
      script([...w2, ...w3], 'confirm');
      for (const m of w2) await finish(m);
      v = await until('done', (x) => x.state === 'done', r.id);
      assert.deepEqual([v.counts.confirmed, v.total, v.problems.length], [20, 20, 0]);
      assert.ok(w3.every((m) => fleet.machine(m).outcomes.includes('confirmed') && fleet.machine(m).refusals.length === 0), 'wave 3 fetched and confirmed');
      for (const m of ids.waves) assert.deepEqual(await registry.offersTo(m), [], `${m}: nothing left offered`);
      assert.equal(v.endedAt !== null, true);
    });

    it('halts within a wave when its failures reach the threshold, starting nobody more; a resume accepts them and goes on', async () => {
      const r = await rollouts.create({ version: '1.1.0', target: { kind: 'machines', machines: ids.halt }, waves: [50, 100], halt: { count: 2 }, parallel: 2 });
      const [w1, w2] = [await wave(r.id, 1), await wave(r.id, 2)];
      await step();
      await eventually('two started', async () => (sent(w1).length === 2 ? true : undefined));
      // The first rolls back: one failure, below the threshold; the third starts in its place.
      await finish(w1[0]!, 'rolled-back');
      await until('one rolled back', (x) => x.counts['rolled-back'] === 1, r.id);
      await step();
      await eventually('the third started', async () => (sent(w1).length === 3 ? true : undefined));
      // The second rolls back: two, the threshold.
      await finish(w1[1]!, 'rolled-back');
      const v = await until('halted', (x) => x.state === 'halted', r.id);
      assert.match(v.reason ?? '', /^wave 1 of 2: 2 of 5 machines failed or rolled back \(halts at 2 failed or rolled back: 2\)$/);
      assert.deepEqual(v.problems.map((p) => [p.machine, p.state, p.reason]).sort(), w1.slice(0, 2).map((m) => [m, 'rolled-back', 'watchdog']).sort());
      for (let i = 0; i < 3; i++) await step();
      assert.deepEqual(sent(w1), w1.slice(0, 3), 'halted: the one under way goes on, nobody more starts');
      assert.deepEqual(sent(w2), [], 'no machine of wave 2');
      await finish(w1[2]!);
      await until('the one under way confirmed', (x) => x.counts.confirmed === 1 && x.state === 'halted', r.id);

      const resumed = await rollouts.resume(r.id);
      assert.equal(resumed.state, 'running');
      script([...w1.slice(3), ...w2], 'confirm');
      const done = await until('done', (x) => x.state === 'done', r.id);
      assert.deepEqual([done.counts.confirmed, done.counts['rolled-back']], [8, 2]);
      assert.ok([...w1.slice(3), ...w2].every((m) => fleet.machine(m).outcomes.includes('confirmed')), 'the rest fetched and confirmed');
    });

    it('pauses, resumes and cancels: nobody starts while paused, a cancel calls off the commands under way and keeps what confirmed', async () => {
      const r = await rollouts.create({ version: '1.1.0', target: { kind: 'machines', machines: ids.pause }, waves: [100], parallel: 2 });
      const order = await wave(r.id, 1);
      await step();
      await eventually('two started', async () => (sent(order).length === 2 ? true : undefined));
      assert.equal((await rollouts.pause(r.id)).state, 'paused');
      await assert.rejects(rollouts.pause(r.id), (e: RolloutError) => e.code === 'rollout-state' && /is paused: only a running rollout can pause/.test(e.message));
      for (const m of order.slice(0, 2)) await finish(m);
      let v = await until('the two confirmed', (x) => x.counts.confirmed === 2, r.id);
      await step();
      assert.deepEqual([v.state, sent(order).length], ['paused', 2], 'paused: nobody more');
      await rollouts.resume(r.id);
      await step();
      await eventually('two more started', async () => (sent(order).length === 4 ? true : undefined));
      await finish(order[2]!);
      await until('three confirmed', (x) => x.counts.confirmed === 3, r.id);
      // Two under way again: the fourth, and the fifth in the third's place.
      await step();
      await eventually('the fifth started', async () => (sent(order).length === 5 ? true : undefined));

      // A rollout's command is the rollout's: an operator calls it off by cancelling the rollout, not the command.
      const underWay = (await rollouts.machines(r.id)).find((m) => m.machine === order[3])!.command!;
      await assert.rejects(gw.commands.cancelUpdate(underWay), (e: CommandError) => e.code === 'in-rollout' && e.message.includes(r.id));
      v = await rollouts.cancel(r.id);
      assert.equal(v.state, 'cancelled');
      assert.deepEqual([v.counts.confirmed, v.counts.failed, v.counts.pending], [3, 2, 1]);
      assert.deepEqual(v.problems.map((p) => [p.machine, p.reason]), [[order[3], 'cancelled'], [order[4], 'cancelled']]);
      for (const m of order.slice(3, 5)) {
        const called = fleet.machine(m).commands.at(-1)!;
        assert.equal((await db.query<{ status: string }>('SELECT status FROM commands WHERE machine_id = $1 AND n = $2', [m, called.n])).rows[0]?.status, 'cancelled');
        assert.deepEqual(await registry.offersTo(m), [], `${m}: its offer withdrawn`);
      }
      await step();
      assert.equal(sent(order).length, 5, 'nobody starts after a cancel');
      await assert.rejects(rollouts.resume(r.id), (e: RolloutError) => e.code === 'rollout-state');
      // Finished: its machines may be in another rollout.
      const again = await rollouts.create({ version: '1.1.0', target: { kind: 'machines', machines: order.slice(3) }, waves: [100] });
      await rollouts.cancel(again.id);
    });

    it('counts a machine heard nothing of for the timeout as failed, and calls its command off; one still talking is not', async () => {
      const r = await rollouts.create({ version: '1.1.0', target: { kind: 'machines', machines: ids.timeout }, waves: [100], timeoutS: 60 });
      const [quiet, talking, away] = ids.timeout as [string, string, string];
      await step();
      await eventually('all three have it', async () => (sent([quiet, talking, away]).length === 3 ? true : undefined));
      const c = fleet.machine(talking).commands.at(-1)!;
      await fleet.report(talking, { type: 'update-begin', n: c.n, version: '1.1.0', size: image.length, sha256: sha, journal: 1 });
      await fleet.report(quiet, { type: 'update-begin', n: fleet.machine(quiet).commands.at(-1)!.n, version: '1.1.0', size: image.length, sha256: sha, journal: 1 });
      // The third says nothing at all.
      await until('two downloading', (x) => x.counts.downloading === 2, r.id);
      for (let s = 0; s < 50; s += 10) {
        await clock.advance(10000);
        await fleet.telemetry(talking, { n: c.n, version: '1.1.0', state: 'downloading', offset: 100 * (s + 1), size: image.length });
        await until('the progress stored', (x) => x.active.some((m) => m.machine === talking && m.bytes === 100 * (s + 1)), r.id);
      }
      let v = await rollouts.get(r.id);
      assert.equal(v.counts.failed, 0, '50 s: nobody yet');
      await clock.advance(11000);
      await fleet.telemetry(talking, { n: c.n, version: '1.1.0', state: 'downloading', offset: 5000, size: image.length });
      v = await until('the quiet ones timed out', (x) => x.counts.failed === 2, r.id);
      assert.deepEqual(v.problems.map((p) => [p.machine, p.reason]).sort(), [[away, 'timeout'], [quiet, 'timeout']].sort());
      assert.equal(v.counts.downloading, 1, 'the one that kept talking goes on');
      for (const m of [quiet, away]) assert.deepEqual(await registry.offersTo(m), [], `${m}: withdrawn`);
      // A late word from a timed-out machine that it confirmed is believed.
      await finish(quiet);
      v = await until('the late one confirmed', (x) => x.counts.confirmed === 1, r.id);
      assert.equal(v.counts.failed, 1);
      await rollouts.cancel(r.id);
    });

    it('goes on after a gateway restart, where the store says, and never has a machine in two unfinished rollouts', async () => {
      const r = await rollouts.create({ version: '1.1.0', target: { kind: 'machines', machines: ids.restart }, waves: [50, 100], parallel: 10 });
      const [w1, w2] = [await wave(r.id, 1), await wave(r.id, 2)];
      await assert.rejects(rollouts.create({ version: '1.1.0', target: { kind: 'machines', machines: [ids.restart[0]!] } }), (e: RolloutError) => e.code === 'in-rollout' && new RegExp(`${ids.restart[0]} \\(${r.id}\\)`).test(e.message));
      await assert.rejects(gw.commands.issue(ids.restart[0]!, 'update', { version: '1.1.0' }), (e: Error & { code?: string }) => e.code === 'in-rollout');
      await step();
      await eventually('wave 1 started', async () => (sent(w1).length === 3 ? true : undefined));
      await finish(w1[0]!);
      await until('one confirmed', (x) => x.counts.confirmed === 1, r.id);

      // The gateway stops; the machines carry on meanwhile; another gateway process starts on the store.
      await gw.close();
      for (const m of w1.slice(1)) await finish(m);
      script(w2, 'confirm');
      const store = await b.reopen();
      await start(store);
      // What the gateway missed while it was away: the machines send it again, as their journals do.
      await fleet.resend();
      const v = await until('done after the restart', (x) => x.state === 'done', r.id, 60000);
      assert.deepEqual([v.counts.confirmed, v.total], [6, 6]);
      assert.ok(w2.every((m) => fleet.machine(m).commands.filter((c) => c.type === 'update').length === 1), 'each machine of wave 2 got one command, from the new gateway');
      assert.ok(engine.stats.started >= 3);
    });
  });
}
