/**
 * The journal seen from outside the machine: a partition that fills with
 * history the gateway has not acknowledged stops sales (and says so) instead
 * of losing records, and damaged flash is never taken for data.
 */
import { strict as assert } from 'node:assert';
import { MachineHost } from '../../hal-sim/host.js';
import { Random } from '../../hal-sim/scheduler.js';
import { checkInvariants } from '../../hal-sim/invariants.js';
import { usMachine } from './fixtures.js';

const TINY = { size: 16 * 1024, blockLength: 1024, writeAlign: 4 };

async function buyChips(host: MachineHost): Promise<void> {
  host.select('A1');
  await host.runUntilIdle();
  for (const coin of [100, 25]) {
    host.insertCoin(coin);
    await host.runUntilIdle();
  }
}

describe('journal on the simulated machine', () => {
  it('stops selling when unacknowledged history fills the partition, says so, loses nothing, and resumes once acknowledged', async () => {
    const spec = usMachine({ slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 300, capacity: 300 }] });
    const host = await MachineHost.start(spec, { flash: TINY });
    try {
      let sales = 0;
      for (let i = 0; i < 300; i++) {
        const st = await host.status();
        if (st.state === 'ERROR') break;
        await buyChips(host);
        sales = (await checkInvariants(host, `sale ${i + 1}`)).counters.sales;
      }
      const st = await host.status();
      assert.equal(st.state, 'ERROR', 'the machine took itself out of service');
      assert.equal(st.journal.level, 'full');
      assert.equal(st.journal.dropped, 0, 'every record of every sale was written');
      assert.equal(st.journal.unsynced, st.journal.lastSeq, 'nothing was acknowledged, nothing was erased');
      assert.ok(sales > 40, `${sales} sales fit`);
      await host.run(4000);
      assert.match(host.rig.display.text(), /Out of service\nStorage full/);
      assert.equal(host.rig.lamps['out-of-service'], 1);
      // Money is refused at the slot, selections are ignored.
      assert.equal(host.insertCoin(25), false, 'the changer is not accepting coins');
      host.select('A1');
      await host.runUntilIdle();
      assert.equal((await host.status()).counters.sales, sales);
      // The gateway catches up: the oldest blocks can be erased and sales resume.
      host.acknowledge();
      await host.run(1000);
      await host.runUntilIdle();
      assert.equal((await host.status()).state, 'IDLE');
      await buyChips(host);
      const after = await checkInvariants(host, 'after the acknowledgement');
      assert.equal(after.counters.sales, sales + 1);
      assert.equal(after.journal.unsynced, after.journal.lastSeq - after.journal.synced);
    } finally {
      await host.close();
    }
  });

  it('erases flash blocks between MDB exchanges, not inside the appends coins wait for', async () => {
    const spec = usMachine({ slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 300, capacity: 300 }] });
    const host = await MachineHost.start(spec, { flash: TINY });
    try {
      // Acknowledged as it goes, so the ring turns over and acknowledged blocks are reclaimed too.
      for (let i = 0; i < 250; i++) {
        await buyChips(host);
        if (i % 5 === 4) host.acknowledge();
      }
      const st = await checkInvariants(host, 'after 250 sales');
      assert.equal(st.counters.sales, 250);
      assert.ok(st.journal.erasesAhead > TINY.size / TINY.blockLength, `the ring turned over by erases ahead (${st.journal.erasesAhead})`);
      // The new journal's first block is erased as it opens (recovery had just read the partition); none after it.
      assert.equal(st.journal.erasesInline, 1, 'only the first block of a new journal was erased inside an append');
      await host.powerCut();
      const again = await checkInvariants(host, 'after a power cut');
      assert.equal(again.counters.sales, 250);
      assert.ok(again.journal.erasesInline <= 1, `after the reboot: ${again.journal.erasesInline} inline (the erase-ahead flags are RAM only)`);
    } finally {
      await host.close();
    }
  });

  it('boots after bit flips anywhere in the journal without crashing or inventing sales', async () => {
    const rnd = new Random(21);
    const spec = usMachine({ slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 100 }] });
    for (let trial = 0; trial < 8; trial++) {
      const host = await MachineHost.start(spec, { flash: TINY, seed: trial + 1 });
      try {
        for (let i = 0; i < 6; i++) await buyChips(host);
        const before = await host.status();
        let used = 0;
        host.flash.bytes.forEach((b, i) => {
          if (b !== 0xff) used = i;
        });
        const at = rnd.int(0, used);
        host.flash.flipBit(at, rnd.int(0, 7));
        await host.powerCut();
        const after = await host.status();
        assert.ok(after.counters.sales <= before.counters.sales, `flip at ${at}: ${after.counters.sales} sales, ${before.counters.sales} made`);
        assert.ok(after.counters.revenue <= before.counters.revenue, `flip at ${at}: revenue grew`);
        assert.ok(after.journal.lastSeq >= 1);
        // It still sells.
        await buyChips(host);
        assert.equal((await host.status()).counters.sales, after.counters.sales + 1, `flip at ${at}: the machine kept selling`);
      } finally {
        await host.close();
      }
    }
  });
});
