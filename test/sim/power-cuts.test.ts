/**
 * The power fails at every kind of instant: a busy machine (sales with
 * change, bills, refunds, walk-aways, jams) is recorded once, then booted
 * again from the partition as a cut at a flash write or erase leaves it,
 * at the start, middle or end of that operation. CI checks a spread sample
 * of cut points on both targets; `npm run bench` runs every one.
 */
import { strict as assert } from 'node:assert';
import { RECORD_NAMES } from '../../firmware/journal/records.js';
import { CutCampaign } from '../../hal-sim/power-cuts.js';
import { Random } from '../../hal-sim/scheduler.js';
import { checkCut } from '../../hal-sim/cut-check.js';
import { busyWorkload, cutMachine, CUT_FLASH } from '../../hal-sim/cut-workload.js';

describe('power cuts at flash operations', () => {
  let campaign: CutCampaign;

  before(async () => {
    campaign = await CutCampaign.record(cutMachine(), { target: 'sim', seed: 7, flash: CUT_FLASH, autoAckMs: 120000 }, (host) => busyWorkload(host, 230, 31));
  });

  it('records a busy workload that turns the journal over', () => {
    const erases = campaign.ops.filter((o) => o.kind === 'erase').length;
    assert.ok(campaign.total > 1200, `${campaign.total} flash operations`);
    assert.ok(erases > CUT_FLASH.size / CUT_FLASH.blockLength, `${erases} erases: the ring turned over`);
  });

  it('recovers correctly from cuts spread over the whole run (sim)', async () => {
    const rnd = new Random(5);
    const n = 48;
    let uncertain = 0;
    let restored = 0;
    for (let i = 0; i < n; i++) {
      const k = Math.floor(((i + rnd.next()) * campaign.total) / n);
      const len = campaign.length(k);
      const bytes = [0, 1 + rnd.int(0, Math.max(0, len - 2)), len][i % 3]!;
      const out = await checkCut(campaign, k, bytes, rnd);
      uncertain += out.uncertainVends;
      if (out.creditRestored > 0) restored++;
    }
    process.stdout.write(`      ${n} cuts: credit restored in ${restored}, uncertain vends ${uncertain}\n`);
  });

  it('recovers from cuts in the middle of vend outcomes, payouts and erases (sim)', async () => {
    // The riskiest instants, found in the recording: each kind's first few ops.
    const rnd = new Random(6);
    const picks: number[] = [];
    const want = new Map<string, number>([
      ['vend-ok', 3],
      ['payout-start', 3],
      ['bill-stacking', 2],
      ['coin-in', 2],
      ['erase', 3],
    ]);
    for (let k = 0; k < campaign.total; k++) {
      const op = campaign.ops[k]!;
      const kind = op.kind === 'erase' ? 'erase' : (RECORD_NAMES[op.data[0]!] ?? '');
      const left = want.get(kind) ?? 0;
      if (left > 0 && k > campaign.total / 4) {
        want.set(kind, left - 1);
        picks.push(k);
      }
    }
    assert.ok(picks.length >= 10, `found ${picks.length} interesting ops`);
    for (const k of picks) {
      const len = campaign.length(k);
      for (const bytes of [0, 1, len >> 1, len]) await checkCut(campaign, k, bytes, rnd, 1);
    }
  });

  it('recovers from cuts with the firmware under XS', async () => {
    const rnd = new Random(8);
    for (let i = 0; i < 6; i++) {
      const k = Math.floor(((i + 0.5) * campaign.total) / 6);
      await checkCut(campaign.withTarget('xs'), k, i % 2 === 0 ? 0 : campaign.length(k) >> 1, rnd, 1);
    }
  });
});
