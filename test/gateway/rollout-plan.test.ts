/**
 * A rollout's plan and a machine's progress, pure (gateway/rollouts/plan.ts,
 * progress.ts): a percentage selects the same machines every time and about
 * that share of them, the order and the waves, the halt threshold, the
 * checks of waves and halts as operators write them; a machine's state from
 * what was heard of it, never moving back, and telemetry read defensively.
 */
import { strict as assert } from 'node:assert';
import { haltAt, order, parseHalt, selectPercent, waveSizes, wavesProblem } from '../../gateway/rollouts/plan.js';
import { progressOf, telemetryUpdate, type Entry } from '../../gateway/rollouts/progress.js';

const fleet = Array.from({ length: 10000 }, (_, i) => `vm-${i}`);

describe('rollout plan', () => {
  it('selects a percentage by hashing each machine with the rollout: the same every time, about that share, and stable as the fleet grows', () => {
    const a = selectPercent('r000000000001', fleet, 5);
    assert.deepEqual(selectPercent('r000000000001', fleet, 5), a, 'deterministic');
    assert.ok(a.length > 400 && a.length < 600, `${a.length} of 10,000 for 5 %`);
    const grown = selectPercent('r000000000001', [...fleet, ...Array.from({ length: 500 }, (_, i) => `new-${i}`)], 5);
    assert.deepEqual(grown.filter((m) => m.startsWith('vm-')), a, 'new machines change nobody else');
    const b = selectPercent('r000000000002', fleet, 5);
    assert.ok(a.filter((m) => b.includes(m)).length < 100, 'another rollout, other machines');
    assert.equal(selectPercent('r1', fleet, 100).length, 10000);
    const twenty = new Set(selectPercent('r1', fleet, 20));
    assert.ok(selectPercent('r1', fleet, 10).every((m) => twenty.has(m)), 'a larger share contains the smaller');
  });

  it('orders machines by the rollout, and splits them into waves of cumulative shares', () => {
    const o = order('r1', fleet.slice(0, 100));
    assert.deepEqual([...o].sort(), [...fleet.slice(0, 100)].sort());
    assert.deepEqual(order('r1', [...fleet.slice(0, 100)].reverse()), o, 'the order given does not matter');
    assert.notDeepEqual(order('r2', fleet.slice(0, 100)), o);
    assert.deepEqual(waveSizes(1000, [1, 10, 100]), [10, 90, 900]);
    assert.deepEqual(waveSizes(20, [10, 50, 100]), [2, 8, 10]);
    assert.deepEqual(waveSizes(1, [1, 10, 100]), [1, 0, 0], 'a first wave of at least one; later ones may be empty');
    assert.deepEqual(waveSizes(3, [1, 2, 100]), [1, 0, 2]);
    assert.deepEqual(waveSizes(7, [100]), [7]);
  });

  it('halts a wave at its share of failures (at least one) or at a count', () => {
    assert.equal(haltAt({ percent: 20 }, 5), 1);
    assert.equal(haltAt({ percent: 20 }, 10), 2);
    assert.equal(haltAt({ percent: 2 }, 900), 18);
    assert.equal(haltAt({ percent: 50 }, 0), 1);
    assert.equal(haltAt({ count: 3 }, 1000), 3);
  });

  it('checks waves and halts as operators write them', () => {
    assert.equal(wavesProblem([1, 10, 100]), undefined);
    assert.equal(wavesProblem([100]), undefined);
    for (const bad of [[], [10, 5, 100], [1, 10], [0, 100], [1.5, 100], [1, 1, 100], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100], [50, 101]]) assert.ok(wavesProblem(bad), JSON.stringify(bad));
    assert.deepEqual(parseHalt('20%'), { percent: 20 });
    assert.deepEqual(parseHalt('100%'), { percent: 100 });
    assert.deepEqual(parseHalt('3'), { count: 3 });
    for (const bad of ['0', '0%', '101%', '-1', '1.5', '%', '', ' 3', '3 ', '1e3', '05%', '1000000']) assert.equal(parseHalt(bad), undefined, bad);
  });
});

describe('a machine in a rollout', () => {
  const started: Entry = { state: 'pending', bytes: null, size: null, reason: null, n: 41, baseSeq: 100 };
  const report = (seq: number, phase: string, extra: Partial<{ n: number; version: string; reason: string; size: number }> = {}) => ({ seq, n: 41, version: '0.2.0', phase, size: null, reason: null, ...extra });

  it('follows its reports and telemetry, and a final command status', () => {
    assert.equal(progressOf(started, {}, '0.2.0').state, 'pending');
    assert.deepEqual(progressOf(started, { report: report(101, 'begin', { size: 1000 }) }, '0.2.0').state, 'downloading');
    const dl = progressOf(started, { report: report(101, 'begin'), telemetry: { n: 41, version: '0.2.0', state: 'downloading', offset: 655360, size: 1503232 }, telemetryAt: 5 }, '0.2.0');
    assert.deepEqual([dl.state, dl.bytes, dl.size], ['downloading', 655360, 1503232]);
    assert.equal(progressOf(started, { report: report(102, 'downloaded') }, '0.2.0').state, 'waiting');
    assert.equal(progressOf(started, { report: report(103, 'installing') }, '0.2.0').state, 'rebooting');
    assert.equal(progressOf(started, { telemetry: { n: 41, version: '0.2.0', state: 'probation' } }, '0.2.0').state, 'rebooting');
    assert.deepEqual(progressOf(started, { report: report(104, 'rolled-back', { reason: 'probation: broker' }) }, '0.2.0'), { state: 'rolled-back', bytes: null, size: null, reason: 'probation: broker', seen: '104/-/-' });
    assert.deepEqual(progressOf(started, { report: report(104, 'failed', { reason: 'bad-hash' }) }, '0.2.0').reason, 'bad-hash');
    assert.equal(progressOf(started, { report: report(104, 'confirmed') }, '0.2.0').state, 'confirmed');
    assert.deepEqual(progressOf(started, { command: { status: 'refused', outcome: { reason: 'downgrade' } } }, '0.2.0').reason, 'refused: downgrade');
    assert.deepEqual(progressOf(started, { command: { status: 'expired', outcome: null } }, '0.2.0').reason, 'expired');
    assert.deepEqual(progressOf(started, { command: { status: 'unsupported', outcome: { outcome: 'unsupported' } } }, '0.2.0').reason, 'unsupported');
    assert.equal(progressOf(started, { command: { status: 'running', outcome: null } }, '0.2.0').state, 'pending');
  });

  it('ignores reports of an earlier update, and of other images', () => {
    assert.equal(progressOf(started, { report: report(100, 'confirmed') }, '0.2.0').state, 'pending', 'from before it started');
    assert.equal(progressOf(started, { report: report(101, 'confirmed', { n: 7, version: '0.3.0' }) }, '0.2.0').state, 'pending', 'another command and image');
    assert.equal(progressOf(started, { report: report(101, 'confirmed', { n: 7 }) }, '0.2.0').state, 'confirmed', 'this image under another command (resumed)');
    assert.equal(progressOf(started, { telemetry: { n: 7, version: '0.3.0', state: 'waiting' } }, '0.2.0').state, 'pending');
  });

  it('never moves back: older telemetry, and an end once reached, hold', () => {
    const waiting: Entry = { ...started, state: 'waiting' };
    assert.equal(progressOf(waiting, { telemetry: { n: 41, version: '0.2.0', state: 'downloading', offset: 5, size: 10 } }, '0.2.0').state, 'waiting');
    assert.equal(progressOf({ ...started, state: 'rebooting' }, { report: report(102, 'downloaded') }, '0.2.0').state, 'rebooting');
    const done: Entry = { ...started, state: 'confirmed' };
    assert.equal(progressOf(done, { report: report(105, 'rolled-back'), command: { status: 'failed', outcome: null } }, '0.2.0').state, 'confirmed');
    const cancelled: Entry = { ...started, state: 'failed', reason: 'cancelled' };
    assert.equal(progressOf(cancelled, { report: report(105, 'confirmed') }, '0.2.0').state, 'failed');
    // A timeout gives way to what the machine says at last, but not to the cancel the timeout caused.
    const late: Entry = { ...started, state: 'failed', reason: 'timeout' };
    assert.equal(progressOf(late, { report: report(105, 'confirmed'), command: { status: 'cancelled', outcome: null } }, '0.2.0').state, 'confirmed');
    assert.deepEqual(progressOf(late, { command: { status: 'cancelled', outcome: null } }, '0.2.0').reason, 'timeout');
    assert.equal(progressOf(late, { report: report(105, 'installing') }, '0.2.0').reason, 'timeout');
  });

  it("reads a telemetry's update object defensively", () => {
    const good = { n: 41, version: '0.2.0', state: 'downloading', offset: 10, size: 100 };
    assert.deepEqual(telemetryUpdate(good), good);
    assert.deepEqual(telemetryUpdate({ ...good, offset: 500 })?.offset, 100, 'clipped to the size');
    for (const bad of [null, 7, 'x', [], {}, { ...good, n: -1 }, { ...good, n: 1.5 }, { ...good, n: '41' }, { ...good, state: 'exploded' }, { ...good, version: 5 }, { ...good, state: 'Downloading' }]) {
      assert.equal(telemetryUpdate(bad), undefined, JSON.stringify(bad));
    }
    assert.deepEqual([telemetryUpdate({ ...good, offset: -5 })?.offset, telemetryUpdate({ ...good, size: 1e20 })?.size, telemetryUpdate({ ...good, offset: 'x' })?.offset], [null, null, null]);
    assert.equal(telemetryUpdate({ ...good, version: 'v'.repeat(5000) })?.version.length, 20, 'bounded');
  });
});
