/**
 * Flash that fails, on the simulated machine (issue 17): a partition that
 * refuses writes and erases and holds stuck bits keeps the books and every
 * event, also when the power fails at any of its operations (sim and XS);
 * one that wears out stops selling with "Storage fault" and loses nothing.
 */
import { strict as assert } from 'node:assert';
import { checkCut } from '../../hal-sim/cut-check.js';
import { busyWorkload, cutMachine, CUT_FLASH } from '../../hal-sim/cut-workload.js';
import { FlashImage, type FlashFaults } from '../../hal-sim/guest/flash-image.js';
import { MachineHost } from '../../hal-sim/host.js';
import { checkInvariants } from '../../hal-sim/invariants.js';
import { CutCampaign } from '../../hal-sim/power-cuts.js';
import { Random } from '../../hal-sim/scheduler.js';
import { usMachine } from './fixtures.js';

const L = CUT_FLASH.blockLength;
/** Block 3 refuses its header on first use, block 9 its erase on the second, and two spans of stuck bits. */
const FAULTS: FlashFaults = {
  failWrites: [[3, 1]],
  failErases: [[9, 1]],
  stuck: [...Array.from({ length: 8 }, (_, i): [number, number, 0 | 1] => [5 * L + 700 + i, 0, 1]), ...Array.from({ length: 8 }, (_, i): [number, number, 0 | 1] => [12 * L + 900 + i, 7, 0])],
};

describe('flash that fails, on the simulated machine', () => {
  let campaign: CutCampaign;
  let faults = 0;

  before(async () => {
    campaign = await CutCampaign.record(cutMachine(), { target: 'sim', seed: 7, flash: CUT_FLASH, faults: FAULTS, autoAckMs: 120000 }, async (host) => {
      await busyWorkload(host, 200, 31);
      faults = (await checkInvariants(host, 'after the workload')).journal.faults;
    });
  });

  it('sells on through refused writes and erases and stuck bits, books balanced, and counts the faults', () => {
    assert.ok(faults >= 3, `${faults} faults counted`);
    const erases = campaign.ops.filter((o) => o.kind === 'erase').length;
    assert.ok(erases > CUT_FLASH.size / L + 2, `${erases} erases: the ring turned over`);
  });

  it('recovers from power cuts spread over the faulty run (sim), and at the faults themselves', async () => {
    const rnd = new Random(5);
    const n = 16;
    for (let i = 0; i < n; i++) {
      const k = Math.floor(((i + rnd.next()) * campaign.total) / n);
      const len = campaign.length(k);
      await checkCut(campaign, k, [0, len >> 1, len][i % 3]!, rnd, 1);
    }
    // The ops right after a failed one: the zeroing, the next block's erase and header, the record again.
    const ops = campaign.ops;
    let near = 0;
    for (let k = 1; k < ops.length && near < 6; k++) {
      const prev = ops[k - 1]!;
      const zeroing = ops[k]!.kind === 'write' && prev.kind === 'write' && (ops[k] as { data: Uint8Array }).data.every((x) => x === 0) && (ops[k] as { offset: number }).offset === prev.offset;
      if (!zeroing) continue;
      for (const d of [-1, 0, 1, 2]) await checkCut(campaign, k + d, campaign.length(k + d), rnd, 1);
      near++;
    }
    assert.ok(near >= 1, 'the run had a spoiled record to cut around');
  });

  it('recovers from cuts in the faulty run with the firmware under XS', async () => {
    const rnd = new Random(8);
    for (let i = 0; i < 3; i++) {
      const k = Math.floor(((i + 0.5) * campaign.total) / 3);
      await checkCut(campaign.withTarget('xs'), k, campaign.length(k) >> 1, rnd, 1);
    }
  });

  it('stops selling with "Storage fault" once the flash wears out, keeping the money and the books', async () => {
    const spec = usMachine({ slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 900, capacity: 900 }] });
    const flash = new FlashImage({ size: 16 * 1024, blockLength: 1024, writeAlign: 4 }, undefined, { wearLimit: 3 });
    const host = await MachineHost.start(spec, { flash, autoAckMs: 2000 });
    try {
      let sales = 0;
      for (let i = 0; i < 900; i++) {
        if ((await host.status()).state === 'ERROR') break;
        host.select('A1');
        await host.runUntilIdle();
        for (const coin of [100, 25]) {
          host.insertCoin(coin);
          await host.runUntilIdle();
        }
        await host.run(2500);
        sales = (await checkInvariants(host, `sale ${i + 1}`)).counters.sales;
      }
      const st = await checkInvariants(host, 'stopped');
      assert.equal(st.state, 'ERROR', 'the machine took itself out of service');
      assert.equal(st.journal.level, 'fault');
      assert.ok(st.journal.faults > 0);
      assert.ok(sales > 20, `${sales} sales before the flash wore out`);
      await host.run(4000);
      assert.match(host.rig.display.text(), /Storage fault/);
      assert.equal(host.insertCoin(25), false, 'the changer is not accepting coins');
      // A reboot on the worn partition finds every sale and stays out of service.
      await host.reboot();
      // The journal tries the blocks ahead at quiet moments and finds them worn.
      await host.run(5000);
      await host.runUntilIdle();
      assert.match(host.rig.display.text(), /Storage fault/);
      const again = await checkInvariants(host, 'after the reboot');
      assert.equal(again.counters.sales, sales);
      assert.equal(again.journal.level, 'fault');
    } finally {
      await host.close();
    }
  });
});
