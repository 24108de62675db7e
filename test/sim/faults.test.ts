/**
 * Faults injected into the simulated peripherals during whole purchases.
 * Whatever happens on the bus, the books balance against the physical coins,
 * bills and products: nothing credited twice, nothing lost.
 */
import { strict as assert } from 'node:assert';
import { MachineHost } from '../../hal-sim/host.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { checkInvariants } from '../../hal-sim/invariants.js';
import { usMachine } from './fixtures.js';

async function pay(host: MachineHost, coins: number[]): Promise<void> {
  for (const c of coins) {
    assert.ok(host.insertCoin(c), `coin ${c} accepted`);
    await host.runUntilIdle();
  }
}

for (const target of ['sim', 'xs'] as TargetName[]) {
  describe(`fault injection on target ${target}`, () => {
    let host: MachineHost;
    afterEach(async () => {
      await host?.close();
    });

    it('garbled POLL answers are retransmitted and each coin is credited once', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.rig.changer!.injectFault({ kind: 'garble', command: 3, count: 4 });
      host.select('B4');
      await host.runUntilIdle();
      await pay(host, [100, 25, 25, 25]);
      const st = await checkInvariants(host);
      assert.deepEqual(host.rig.delivered, ['B4']);
      assert.equal(st.counters.coinsToTubes + st.counters.coinsToCashbox, 175);
      // Every deposit report was garbled once and retransmitted on RET.
      assert.equal(host.rig.changer!.stats.faultsApplied, 4);
      assert.equal(st.link.retransmits, 4);
    });

    it('a POLL answer that stays corrupt is NAKed and comes again at the next POLL', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.select('A1');
      await host.runUntilIdle();
      host.rig.changer!.injectFault({ kind: 'garble-all', command: 3, count: 3 });
      await pay(host, [100, 25]);
      const st = await checkInvariants(host);
      assert.equal(st.counters.sales, 1);
      assert.equal(host.rig.changer!.stats.faultsApplied, 3);
      assert.equal(st.link.corrupt, 3, 'gave up on each corrupt answer');
    });

    it('NAKed and unanswered commands are retried without losing the customer', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.rig.changer!.injectFault({ kind: 'nak', count: 4 });
      host.rig.validator!.injectFault({ kind: 'silence', count: 6 });
      host.select('B4');
      await host.runUntilIdle();
      host.insertBill(100);
      await host.runUntilIdle();
      await pay(host, [100]);
      const st = await checkInvariants(host);
      assert.deepEqual(host.rig.delivered, ['B4']);
      assert.equal(host.rig.changer!.paidValue, 25);
      assert.equal(st.state, 'IDLE');
      assert.equal(host.rig.changer!.stats.faultsApplied, 4);
      assert.equal(host.rig.validator!.stats.faultsApplied, 6);
    });

    it('a lost answer to DISPENSE is not repeated blindly: change is paid exactly once', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.rig.changer!.injectFault({ kind: 'drop-reply', command: 5, count: 1 });
      host.select('A1');
      await host.runUntilIdle();
      await pay(host, [100, 100]);
      const st = await checkInvariants(host);
      assert.equal(host.rig.changer!.paidValue, 75);
      assert.equal(st.credit, 0);
      assert.equal(host.rig.changer!.stats.faultsApplied, 1);
    });

    it('a tube jam in the middle of the change: the rest is planned again and paid', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.rig.changer!.jamPayoutAfter = 1;
      host.select('A1');
      await host.runUntilIdle();
      await pay(host, [100, 100]);
      const st = await checkInvariants(host);
      assert.equal(host.rig.changer!.jamPayoutAfter, undefined, 'the jam happened');
      assert.ok(host.logs.some((l) => l.message.startsWith('payout short')), 'the firmware saw a short payout');
      assert.equal(host.rig.changer!.paidValue, 75);
      assert.equal(st.credit, 0);
      assert.equal(st.state, 'IDLE');
    });

    it('the changer resets itself while paying out: what left is counted, the rest is paid', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.select('A1');
      await host.runUntilIdle();
      host.insertCoin(100);
      await host.runUntilIdle();
      host.insertCoin(100);
      // Let the vend finish and the first change coin leave, then reset the changer.
      for (let i = 0; i < 400 && host.rig.changer!.paidOut.length === 0; i++) await host.run(10);
      assert.ok(host.rig.changer!.paidOut.length > 0, 'payout started');
      host.rig.changer!.spontaneousReset();
      const st = await host.runUntilIdle();
      await checkInvariants(host);
      assert.equal(host.rig.changer!.paidValue, 75);
      assert.equal(st.credit, 0);
    });

    it('the changer goes silent with credit inside: the credit survives until it returns', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.select('B4');
      await host.runUntilIdle();
      await pay(host, [100]);
      host.rig.changer!.powered = false;
      await host.run(5000);
      let st = await host.status();
      assert.equal(st.devices.changer, false);
      assert.equal(st.credit, 100);
      assert.equal(host.rig.lamps['out-of-service'], 0, 'a customer with credit is still being served');
      host.rig.changer!.powered = true;
      host.rig.changer!.spontaneousReset();
      await host.run(12000);
      st = await host.status();
      assert.equal(st.devices.changer, true);
      await pay(host, [25, 25, 25]);
      st = await checkInvariants(host);
      assert.deepEqual(host.rig.delivered, ['B4']);
    });

    it('the coin-return lever cancels and refunds; other status reports are logged', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.select('B4');
      await host.runUntilIdle();
      await pay(host, [25, 10]);
      host.rig.changer!.reportStatus(0x0c);
      host.rig.changer!.pressReturnLever();
      const st = await host.runUntilIdle();
      assert.equal(st.state, 'IDLE');
      assert.equal(host.rig.changer!.paidValue, 35);
      assert.ok(host.logs.some((l) => l.message === 'changer status 0xc'), 'coin jam logged');
      await checkInvariants(host);
    });

    it('with every payment device silent the machine is out of service, and recovers', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.rig.changer!.powered = false;
      host.rig.validator!.powered = false;
      await host.run(12000);
      let st = await host.status();
      assert.equal(st.state, 'ERROR');
      assert.equal(host.rig.lamps['out-of-service'], 1);
      assert.equal(host.rig.display.lines[0], 'Out of service');
      host.select('A1');
      st = await host.runUntilIdle();
      assert.equal(st.state, 'ERROR', 'selections are ignored while out of service');
      for (const p of [host.rig.changer!, host.rig.validator!]) {
        p.powered = true;
        p.spontaneousReset();
      }
      await host.run(12000);
      st = await host.status();
      assert.equal(st.state, 'IDLE');
      assert.equal(host.rig.lamps['out-of-service'], 0);
    });

    it('the bill validator resets with a bill in escrow: the bill goes back, no credit', async () => {
      host = await MachineHost.start(
        usMachine({ changer: { coins: [{ value: 5, tube: 0 }, { value: 10, tube: 0 }, { value: 25, tube: 1 }, { value: 100, tube: null }] } }),
        { target },
      );
      host.select('B4');
      await host.runUntilIdle();
      host.insertBill(500);
      let st = await host.runUntilIdle();
      assert.equal(st.escrow, 500);
      host.rig.validator!.spontaneousReset();
      st = await host.runUntilIdle();
      assert.equal(st.escrow, 0);
      assert.equal(st.credit, 0);
      assert.equal(host.rig.validator!.billsReturned, 1);
      await checkInvariants(host);
    });

    it('a product stuck in the chute (sensor blocked) takes the slot out of service and refunds', async () => {
      host = await MachineHost.start(usMachine(), { target });
      host.rig.sensor.block(true);
      host.select('A1');
      await host.runUntilIdle();
      await pay(host, [100, 25]);
      const st = await host.status();
      assert.equal(host.rig.changer!.paidValue, 125);
      assert.equal(st.slots.find((s) => s.code === 'A1')!.outOfService, true);
      host.rig.sensor.block(false);
      await checkInvariants(host);
      host.select('A1');
      await host.runUntilIdle();
      assert.match(host.rig.display.lines[0]!, /A1 OUT OF SERVICE/);
    });
  });
}
