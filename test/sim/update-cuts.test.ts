/**
 * Power cuts on the update path (hal-sim/update-cuts.ts): a machine that
 * sells while it downloads, switches, proves and confirms a new image is
 * recorded once; then it is cut at slot erases and writes (torn half way),
 * at every change of the slots' boot state and just after it, and at
 * journal writes in the update's window, and booted again from what the cut
 * left. Each time the bootloader boots the image the rule says (never a
 * half-written one), the journal numbers its boot right after the last
 * whole event, the books balance against the coins and products, the
 * unacknowledged events are all there, and it sells on. CI checks a spread
 * on both targets; `npm run bench` checks every step.
 */
import { strict as assert } from 'node:assert';
import { bootAfterCut, recordUpdateCuts, runningImage, runUntil, type UpdateCutRun } from '../../bench/lib/update-cuts.js';
import { addMachines } from '../../gateway/store/machines.js';
import { checkCut } from '../../hal-sim/cut-check.js';
import type { MachineHost } from '../../hal-sim/host.js';
import { Random } from '../../hal-sim/scheduler.js';

describe('power cuts on the update path', function () {
  this.timeout(900000);
  let run: UpdateCutRun;

  before(async () => {
    run = await recordUpdateCuts('sim');
  });
  after(async () => {
    await run?.close();
  });

  const kinds = (): string[] => run.campaign.steps.map((_, k) => run.campaign.describe(k));
  const window = (): { from: number; to: number } => {
    const k = kinds();
    return { from: k.indexOf('slot open'), to: k.indexOf('slot valid') };
  };

  /** The controller came up on the image the rule says, with the right report. */
  const expectBoot = (k: number) => async (host: MachineHost, where: string): Promise<void> => {
    const want = bootAfterCut(run, k);
    const got = await runningImage(host);
    assert.equal(host.image.version, want.version, `${where}: booted ${host.image.version}`);
    assert.equal(got.probation, want.probation, `${where}: probation`);
    if (want.rolledBack) assert.deepEqual(got.rolledBack, want.rolledBack, `${where}: the rollback report`);
  };

  it('records a whole update among sales: slot erases and writes, complete, the switch, the probation, valid', () => {
    const k = kinds();
    for (const what of ['slot open', 'slot erase', 'slot write', 'slot complete', 'slot valid']) assert.ok(k.includes(what), `${what} recorded`);
    const { from, to } = window();
    assert.ok(k.slice(from, to).includes('write'), 'the journal was written during the update');
    const image = run.to.bytes.length;
    const written = run.campaign.steps.reduce((n, s) => n + (s.where === 'slots' && s.op.kind === 'write' ? s.op.data.length : 0), 0);
    assert.equal(written, image, 'every byte of the image written to the slot once');
  });

  /** Every state change (not taken, then taken), and a spread of torn slot and journal operations in the update's window. */
  function picks(spread: number): [number, number][] {
    const c = run.campaign;
    const { from, to } = window();
    const out: [number, number][] = [];
    for (let k = from; k <= to + 1; k++) {
      if (c.describe(k) === 'slot open' || c.describe(k) === 'slot complete' || c.describe(k) === 'slot valid') out.push([k, 0], [k + 1, 0]);
    }
    // The restart into the new image (between two steps): just before and just after it.
    const restart = c.steps.findIndex((_, k) => k > from && c.slotsBefore(k).running !== c.slotsBefore(from).running);
    if (restart > 0) out.push([restart - 1, 0], [restart, 0]);
    for (let i = 0; i < spread; i++) {
      const k = from + Math.floor(((i + 0.5) * (to - from)) / spread);
      out.push([k, c.length(k) >> 1]);
    }
    return out.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  }

  it('boots the right good image after cuts at state changes and torn writes, and balances its books (sim)', async () => {
    const rnd = new Random(3);
    const points = picks(18);
    for (const [k, bytes] of points) await checkCut(run.campaign, k, bytes, rnd, 1, expectBoot(k));
    process.stdout.write(`      ${points.length} cuts of ${run.campaign.total} steps\n`);
  });

  it('the same under XS, at each state change', async () => {
    const rnd = new Random(4);
    const xs = run.campaign.withTarget('xs');
    for (const [k, bytes] of picks(0).filter((_, i) => i % 2 === 1)) await checkCut(xs, k, bytes, rnd, 1, expectBoot(k));
  });

  it('a download torn by a cut resumes online from what the journal says, and the image confirms', async () => {
    const c = run.campaign;
    const { from } = window();
    const complete = kinds().indexOf('slot complete');
    // A torn slot write half way through the download.
    const k = c.steps.findIndex((s, i) => i > (from + complete) / 2 && s.where === 'slots' && s.op.kind === 'write');
    const id = `vm-cuts-resume-${process.pid}`;
    await addMachines(run.db, [id]);
    await run.registry.offer(id, run.to.sha256);
    const host = await c.boot(k, c.length(k) >> 1, { machineId: id, network: { url: run.broker.url, speed: 10 } });
    try {
      assert.equal(host.image.version, run.from.description.version);
      const offset = (await host.status()).update?.offset ?? 0;
      assert.ok(offset > 0 && offset < run.to.bytes.length, `it resumes part way (${offset} bytes kept)`);
      await runUntil(host, 'the new image confirmed', async () => host.image.version === run.to.description.version && !(await runningImage(host)).probation);
    } finally {
      await host.close();
    }
  });
});
