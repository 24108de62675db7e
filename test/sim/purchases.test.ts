/**
 * Whole purchases on a simulated machine: the firmware bundle behind the HAL
 * bridge, talking real MDB bytes to simulated peripherals. Each test runs on
 * both targets (the bundle in Node, and inside the XS engine).
 */
import { strict as assert } from 'node:assert';
import { MachineHost } from '../../hal-sim/host.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { checkInvariants } from '../../hal-sim/invariants.js';
import { usMachine } from './fixtures.js';

for (const target of ['sim', 'xs'] as TargetName[]) {
  describe(`purchases on target ${target}`, () => {
    let host: MachineHost;
    afterEach(async () => {
      await host?.close();
    });

    it('shows the welcome text once the changer and validator are up', async () => {
      host = await MachineHost.start(usMachine(), { target });
      const st = await host.status();
      assert.equal(st.state, 'IDLE');
      assert.deepEqual(st.devices, { changer: true, bill: true });
      assert.deepEqual(host.rig.display.lines, ['Make a selection', '']);
      assert.deepEqual(host.rig.lamps, { 'exact-change': 0, 'out-of-service': 0 });
    });

    it('refuses an empty slot and says SOLD OUT', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.select('C2');
      const st = await host.runUntilIdle();
      assert.equal(st.state, 'IDLE');
      assert.match(host.rig.display.lines[0]!, /C2 SOLD OUT/);
      await host.run(4000);
      assert.deepEqual(host.rig.display.lines, ['Make a selection', '']);
    });

    it('vends two of one selection and pays the change with the fewest coins', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.select('A1', 2);
      await host.runUntilIdle();
      assert.equal(host.rig.display.lines[1], '2 x 1.25 = 2.50');
      host.insertBill(100);
      await host.runUntilIdle();
      host.insertBill(100);
      await host.runUntilIdle();
      host.insertCoin(100);
      const st = await host.runUntilIdle();
      assert.deepEqual(host.rig.delivered, ['A1', 'A1']);
      assert.deepEqual(host.rig.changer!.paidOut, [25, 25]);
      assert.equal(st.state, 'IDLE');
      assert.equal(st.counters.sales, 2);
      await checkInvariants(host);
    });

    it('lets the customer change the selection and keeps the credit', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.select('B4');
      await host.runUntilIdle();
      host.insertCoin(100);
      await host.runUntilIdle();
      host.select('A1');
      await host.runUntilIdle();
      host.insertCoin(25);
      const st = await host.runUntilIdle();
      assert.deepEqual(host.rig.delivered, ['A1']);
      assert.equal(st.counters.revenue, 125);
      assert.equal(host.rig.changer!.paidValue, 0);
      await checkInvariants(host);
    });

    it('cancel returns coins, and a bill still in escrow comes back as the bill', async () => {
      // Tubes too empty to refund a $5 bill in coins: the bill is held in escrow.
      host = await MachineHost.start(
        usMachine({ changer: { coins: [{ value: 5, tube: 2 }, { value: 10, tube: 1 }, { value: 25, tube: 3 }, { value: 100, tube: null }] } }),
        { target },
      );
      host.select('B4');
      await host.runUntilIdle();
      host.insertCoin(25);
      await host.runUntilIdle();
      host.insertBill(500);
      let st = await host.runUntilIdle();
      assert.equal(st.state, 'ACCEPTING_PAYMENT');
      assert.equal(st.credit, 25);
      assert.equal(st.escrow, 500);
      assert.equal(host.rig.display.lines[0], 'Cannot make change');
      host.cancel();
      st = await host.runUntilIdle();
      assert.equal(st.state, 'IDLE');
      assert.equal(host.rig.validator!.billsReturned, 1);
      assert.equal(host.rig.validator!.stacked, 0);
      assert.deepEqual(host.rig.changer!.paidOut, [25]);
      await checkInvariants(host);
    });

    it('overpay policy vends and keeps what it cannot pay back as credit', async () => {
      host = await MachineHost.start(
        usMachine({ changePolicy: 'overpay', changer: { coins: [{ value: 5, tube: 0 }, { value: 10, tube: 0 }, { value: 25, tube: 1 }, { value: 100, tube: null }] } }),
        { target },
      );
      host.select('A1');
      await host.runUntilIdle();
      host.insertCoin(100);
      await host.runUntilIdle();
      host.insertCoin(100);
      const st = await host.runUntilIdle();
      assert.deepEqual(host.rig.delivered, ['A1']);
      // 75 owed: one 25 in the tubes; 50 stays as credit for the next purchase.
      assert.deepEqual(host.rig.changer!.paidOut, [25]);
      assert.equal(st.state, 'ACCEPTING_PAYMENT');
      assert.equal(st.credit, 50);
      await checkInvariants(host);
    });

    it('refuse policy will not vend without change, and exact money still sells', async () => {
      host = await MachineHost.start(
        usMachine({ changer: { coins: [{ value: 5, tube: 0 }, { value: 10, tube: 0 }, { value: 25, tube: 0 }, { value: 100, tube: null }] } }),
        { target },
      );
      assert.equal(host.rig.display.lines[1], 'Exact change only');
      assert.equal(host.rig.lamps['exact-change'], 1);
      host.select('A1');
      await host.runUntilIdle();
      host.insertCoin(100);
      await host.runUntilIdle();
      host.insertCoin(100);
      let st = await host.runUntilIdle();
      assert.equal(st.state, 'ACCEPTING_PAYMENT');
      assert.deepEqual(host.rig.delivered, []);
      host.cancel();
      st = await host.runUntilIdle();
      // The refund cannot be paid from empty tubes: the 200 stays the customer's credit.
      assert.equal(st.credit, 200);
      assert.equal(host.rig.display.lines[0], 'Change unavailable');
      await checkInvariants(host);

      await host.close();
      host = await MachineHost.start(
        usMachine({ changer: { coins: [{ value: 5, tube: 0 }, { value: 10, tube: 0 }, { value: 25, tube: 0 }, { value: 100, tube: null }] } }),
        { target },
      );
      host.select('A1');
      await host.runUntilIdle();
      for (const c of [100, 25]) {
        host.insertCoin(c);
        await host.runUntilIdle();
      }
      st = await host.runUntilIdle();
      assert.deepEqual(host.rig.delivered, ['A1']);
      assert.equal(st.credit, 0);
      await checkInvariants(host);
    });
  });
}
