/**
 * MDB recovery on the whole simulated machine (the firmware bundle behind
 * the HAL bridge, in Node and inside XS): devices that fall silent or reset
 * in the middle of a payout or with a bill in escrow, RESET pacing measured
 * on the wire, and a level 3 changer in service. Whatever happens, money is
 * neither lost nor doubled: the books balance against the coins and bills
 * the simulator physically moved.
 */
import { strict as assert } from 'node:assert';
import { MachineHost } from '../../hal-sim/host.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { checkInvariants } from '../../hal-sim/invariants.js';
import { usMachine } from './fixtures.js';

interface WireWord {
  dir: 'vmc' | 'periph';
  word: number;
  ms: number;
}

async function pay(host: MachineHost, coins: number[]): Promise<void> {
  for (const c of coins) {
    assert.ok(host.insertCoin(c), `coin ${c} accepted`);
    await host.runUntilIdle();
  }
}

/** A purchase of A1 (1.25) with two dollars, stopped as the first change coin leaves the changer. */
async function payoutUnderWay(host: MachineHost): Promise<void> {
  host.select('A1');
  await host.runUntilIdle();
  host.insertCoin(100);
  await host.runUntilIdle();
  host.insertCoin(100);
  for (let i = 0; i < 400 && host.rig.changer!.paidOut.length === 0; i++) await host.run(10);
  assert.equal(host.rig.changer!.paidOut.length, 1, 'payout under way');
}

/**
 * The machine of `payoutUnderWay` on `target`, whose changer then goes
 * silent for `awayMs`: unplugged (it finishes paying on its own), or losing
 * power (`reset`: the payout stops with its RAM).
 */
async function changerAwayMidChange(target: TargetName, reset: boolean, awayMs: number): Promise<MachineHost> {
  const host = await MachineHost.start(usMachine(), { target });
  await payoutUnderWay(host);
  if (reset) host.rig.changer!.spontaneousReset();
  host.rig.changer!.powered = false;
  await host.run(awayMs);
  return host;
}

/** The changer answers again; give it time to be reset and re-initialised. */
async function changerBack(host: MachineHost): Promise<void> {
  host.rig.changer!.powered = true;
  await host.run(12000);
}

/** Times (ms) at which the VMC sent `address`'s command `command` (the address byte). */
function sent(wire: WireWord[], address: number, command: number): number[] {
  return wire.filter((x) => x.dir === 'vmc' && x.word === (0x100 | address | command)).map((x) => x.ms);
}

function gaps(times: number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < times.length; i++) out.push(times[i]! - times[i - 1]!);
  return out;
}

for (const target of ['sim', 'xs'] as TargetName[]) {
  describe(`MDB recovery on target ${target}`, () => {
    let host: MachineHost;
    afterEach(async () => {
      await host?.close();
    });

    it('changer unplugged in the middle of the change: settled from the tubes when it is back, nothing paid twice', async () => {
      // The cable comes loose; the changer finishes paying on its own.
      host = await changerAwayMidChange(target, false, 15000);
      let st = await host.status();
      assert.equal(st.devices.changer, false);
      assert.equal(st.state, 'RETURNING_CHANGE', 'waits for the changer to account for the payout');
      assert.equal(st.credit, 75, 'the change is still the customer\u2019s until verified');
      assert.equal(host.rig.changer!.paidValue, 75);
      await changerBack(host);
      st = await host.runUntilIdle();
      assert.equal(st.devices.changer, true);
      assert.equal(st.state, 'IDLE');
      assert.equal(st.credit, 0);
      assert.equal(host.rig.changer!.paidValue, 75, 'paid once');
      assert.deepEqual(host.rig.delivered, ['A1']);
      // Also: the journal's tube counts match the changer's (the interrupted payout is not subtracted twice).
      await checkInvariants(host);
    });

    it('changer loses power in the middle of the change: what left is counted, the rest paid when it is back', async () => {
      // Power loss: the payout stops with the changer's RAM, and it is silent until power returns.
      host = await changerAwayMidChange(target, true, 15000);
      assert.equal(host.rig.changer!.paidValue, 25);
      await changerBack(host);
      const st = await host.runUntilIdle();
      assert.equal(st.state, 'IDLE');
      assert.equal(st.credit, 0);
      assert.equal(host.rig.changer!.paidValue, 75);
      assert.ok(host.logs.some((l) => l.message === 'payout short: planned 75, paid 25'), 'the interrupted round was settled as paid 25');
      await checkInvariants(host);
    });

    it('changer gone for good in the middle of the change: the machine is handed back after a minute, the credit held until the changer says what it paid', async () => {
      host = await changerAwayMidChange(target, false, 70000);
      let st = await host.status();
      assert.equal(st.devices.changer, false);
      assert.equal(st.state, 'ERROR', 'out of service, not stuck returning change');
      assert.equal(st.busy, false, 'commands and a reboot can go through');
      assert.equal(st.credit, 75, 'held: the changer has not said what it paid');
      // Nothing can spend the held credit.
      host.select('A1');
      await host.run(2000);
      assert.deepEqual(host.rig.delivered, ['A1']);
      assert.equal((await host.status()).credit, 75);
      // It had paid the change on its own before the cable came loose; an hour later it is back.
      await host.run(3_600_000);
      await changerBack(host);
      st = await host.runUntilIdle();
      assert.equal(st.devices.changer, true);
      assert.equal(st.state, 'IDLE');
      assert.equal(st.credit, 0);
      assert.equal(host.rig.changer!.paidValue, 75, 'paid once');
      assert.ok(host.logs.some((l) => l.message === 'changer back: the held payout round had paid 75'));
      await checkInvariants(host);
    });

    it('changer loses power for good in the middle of the change: held, then what it did not pay is paid when it is back', async () => {
      host = await changerAwayMidChange(target, true, 70000);
      let st = await host.status();
      assert.equal(st.state, 'ERROR');
      assert.equal(st.credit, 75);
      assert.equal(host.rig.changer!.paidValue, 25);
      await changerBack(host);
      st = await host.status();
      assert.equal(st.credit, 50, 'the round paid 25: the rest is the customer\u2019s again');
      assert.equal(st.state, 'ACCEPTING_PAYMENT');
      await host.run(35000);
      st = await host.runUntilIdle(120000);
      assert.equal(st.state, 'IDLE', 'the session timed out and the credit was paid');
      assert.equal(st.credit, 0);
      assert.equal(host.rig.changer!.paidValue, 75);
      await checkInvariants(host);
    });

    it('a held payout survives a power cut of the controller and settles from the tubes after the reboot', async () => {
      host = await changerAwayMidChange(target, true, 70000);
      assert.equal((await host.status()).state, 'ERROR');
      await host.powerCut();
      host.rig.changer!.powered = true;
      await host.run(15000);
      let st = await host.status();
      assert.equal(st.credit, 50, 'settled from the tubes: 25 had left');
      await host.run(35000);
      st = await host.runUntilIdle(120000);
      assert.equal(st.state, 'IDLE');
      assert.equal(st.credit, 0);
      assert.equal(host.rig.changer!.paidValue, 75, 'the 25 paid before are counted, the other 50 paid after');
      await checkInvariants(host);
    });

    it('validator falls silent with a bill in escrow: the bill comes back, no credit, the customer carries on', async () => {
      host = await MachineHost.start(usMachine(), { target });
      const v = host.rig.validator!;
      host.insertBill(500);
      let st = await host.runUntilIdle();
      assert.equal(st.escrow, 500, 'no selection: the bill waits in escrow');
      v.powered = false;
      await host.run(8000);
      st = await host.status();
      assert.equal(st.devices.bill, false);
      assert.equal(st.credit, 0);
      v.powered = true;
      await host.run(12000);
      st = await host.runUntilIdle();
      assert.equal(st.devices.bill, true);
      assert.equal(st.escrow, 0);
      assert.equal(st.credit, 0);
      assert.deepEqual(v.returnedBills, [500], 'handed back by the RESET');
      assert.deepEqual(v.stackedBills, []);
      host.select('B4');
      await host.runUntilIdle();
      await pay(host, [100, 25, 25, 25]);
      assert.deepEqual(host.rig.delivered, ['B4']);
      await checkInvariants(host);
    });

    it('the answer to STACK is lost and the validator falls silent: the stacker count credits the bill, the sale completes', async () => {
      host = await MachineHost.start(usMachine(), { target });
      const v = host.rig.validator!;
      host.select('B4');
      await host.runUntilIdle();
      v.injectFault({ kind: 'drop-reply', command: 5, count: 1 });
      host.insertBill(500);
      for (let i = 0; i < 2000 && v.stacking < 0; i++) await host.run(2);
      assert.ok(v.stacking >= 0, 'the validator took the STACK');
      v.powered = false;
      await host.run(8000);
      assert.deepEqual(v.stackedBills, [500], 'stacked while nobody listened');
      v.powered = true;
      await host.run(12000);
      const st = await host.runUntilIdle();
      assert.ok(host.logs.some((l) => l.message.includes('the bill was stacked, crediting it')));
      assert.deepEqual(v.returnedBills, []);
      assert.deepEqual(host.rig.delivered, ['B4']);
      assert.equal(host.rig.changer!.paidValue, 325);
      assert.equal(st.credit, 0);
      await checkInvariants(host);
    });

    it('the validator resets while stacking and hands the bill back: no credit for a bill the customer holds', async () => {
      host = await MachineHost.start(usMachine(), { target });
      const v = host.rig.validator!;
      host.select('B4');
      await host.runUntilIdle();
      host.insertBill(500);
      for (let i = 0; i < 2000 && v.stacking < 0; i++) await host.run(2);
      await host.run(300);
      assert.ok(v.stacking >= 0, 'on its way to the stacker');
      v.spontaneousReset();
      const st = await host.runUntilIdle();
      assert.deepEqual(v.returnedBills, [500]);
      assert.deepEqual(v.stackedBills, []);
      assert.equal(st.credit, 0);
      assert.equal(st.escrow, 0);
      assert.deepEqual(host.rig.delivered, []);
      assert.ok(host.logs.some((l) => l.message.includes('the bill was returned')));
      await checkInvariants(host);
    });

    it('RESET pacing on the wire: silent devices are reset at most every 10 s, and one that stays silent does not starve the other', async () => {
      const wire: WireWord[] = [];
      host = await MachineHost.start(usMachine(), { target, onWire: (dir, word, atUs) => wire.push({ dir, word, ms: atUs / 1000 }) });
      await host.run(2000);
      const from = host.nowMs;
      host.rig.changer!.powered = false;
      host.rig.validator!.powered = false;
      await host.run(45000);
      const changerResets = sent(wire, 0x08, 0).filter((t) => t > from);
      const billResets = sent(wire, 0x30, 0).filter((t) => t > from);
      assert.ok(changerResets.length >= 4 && billResets.length >= 3, `resets: changer ${changerResets.length}, validator ${billResets.length}`);
      assert.ok(changerResets[0]! - from >= 1900, 'not before the changer\u2019s 2 s');
      assert.ok(billResets[0]! - from >= 4900, 'not before the validator\u2019s 5 s');
      for (const g of [...gaps(changerResets), ...gaps(billResets)]) assert.ok(g >= 10000 && g <= 10300, `RESETs ${g.toFixed(1)} ms apart`);
      // Only the changer comes back; the validator stays away.
      host.rig.changer!.powered = true;
      const back = host.nowMs;
      await host.run(30000);
      const st = await host.status();
      assert.equal(st.devices.changer, true);
      assert.equal(st.devices.bill, false);
      // While the validator is being reset every 10 s, the changer is polled every 100 ms or so.
      const polls = sent(wire, 0x08, 3).filter((t) => t > back + 11000);
      assert.ok(Math.max(...gaps(polls)) < 250, `changer POLL gaps up to ${Math.max(...gaps(polls)).toFixed(1)} ms`);
      for (const g of gaps(sent(wire, 0x30, 0).filter((t) => t > from))) assert.ok(g >= 10000, `validator RESETs ${g.toFixed(1)} ms apart`);
    });

    it('a level 3 changer comes up with its identification, options and diagnostic, and pays change', async () => {
      const wire: WireWord[] = [];
      host = await MachineHost.start(usMachine(), { target, onWire: (dir, word, atUs) => wire.push({ dir, word, ms: atUs / 1000 }) });
      const c = host.rig.changer!;
      // The changer is swapped for a level 3 one.
      c.level = 3;
      c.spontaneousReset();
      await host.run(2000);
      let st = await host.status();
      assert.equal(st.devices.changer, true);
      assert.ok(host.logs.some((l) => l.message === 'changer: level 3, currency 840, scale 5, 2 decimals, tube mask 0x0007'));
      assert.ok(host.logs.some((l) => l.message === 'changer: VFL model SIM-CHANGER3 serial 000000012345 software 0142, options 0x3'));
      assert.equal(c.enabledFeatures, 0b11);
      assert.ok(sent(wire, 0x08, 7).length >= 3, 'expansion commands on the wire');
      host.select('A1');
      await host.runUntilIdle();
      await pay(host, [100, 100]);
      st = await checkInvariants(host);
      assert.deepEqual(host.rig.delivered, ['A1']);
      assert.equal(c.paidValue, 75);
      assert.equal(st.credit, 0);
    });
  });
}
