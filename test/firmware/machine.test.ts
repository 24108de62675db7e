import type { SlotConfig } from '../../firmware/config.js';
import { DISPENSE_JAM, DISPENSE_OK } from '../../firmware/dispense/dispenser.js';
import { Inventory } from '../../firmware/vend/inventory.js';
import { VendMachine } from '../../firmware/vend/machine.js';
import { deepEqual, equal, ok } from '../lib/assert.js';
import { Recorder } from '../lib/recorder.js';

const slots: SlotConfig[] = [
  { code: 'A1', product: 'Chips', price: 125, qty: 5, capacity: 10, category: 'Snacks' },
  { code: 'B4', product: 'Coke', price: 175, qty: 1, capacity: 10, category: 'Drinks' },
  { code: 'C2', product: 'Water', price: 100, qty: 0, capacity: 10, category: 'Drinks' },
];

function setup(policy: 'refuse' | 'overpay' = 'refuse'): { m: VendMachine; p: Recorder; inv: Inventory } {
  const inv = new Inventory(slots);
  const p = new Recorder();
  const m = new VendMachine(inv, { policy, sessionTimeoutMs: 30000, maxCredit: 2000, maxQuantity: 5 }, p);
  m.setReady(true);
  return { m, p, inv };
}

describe('purchase state machine', () => {
  it('starts out of service and becomes IDLE when payment devices are ready', () => {
    const inv = new Inventory(slots);
    const m = new VendMachine(inv, { policy: 'refuse', sessionTimeoutMs: 30000, maxCredit: 2000, maxQuantity: 5 }, new Recorder());
    equal(m.state, 'ERROR');
    m.setReady(true);
    equal(m.state, 'IDLE');
    m.setReady(false);
    equal(m.state, 'ERROR');
  });

  it('gives credit restored after a power cut back to the customer: usable, then refunded on timeout', () => {
    const inv = new Inventory(slots);
    const p = new Recorder();
    const m = new VendMachine(inv, { policy: 'refuse', sessionTimeoutMs: 30000, maxCredit: 2000, maxQuantity: 5 }, p);
    m.restoreCredit(150);
    equal(m.state, 'ERROR', 'nothing happens before the payment devices are up');
    m.setReady(true);
    equal(m.state, 'ACCEPTING_PAYMENT');
    equal(m.credit, 150);
    equal(p.timerMs, 30000, 'the inactivity timer runs');
    m.timeout();
    equal(m.state, 'RETURNING_CHANGE');
    deepEqual(p.log, ['payout 150']);
    m.paidOut(150, 150);
    equal(m.state, 'IDLE');
    equal(m.credit, 0);
  });

  it('sells with coins: select, pay, dispense, change', () => {
    const { m, p } = setup();
    p.payable.add(25);
    m.select(0, 1);
    equal(m.state, 'PRODUCT_SELECTED');
    equal(p.timerMs, 30000);
    m.coin(100);
    equal(m.state, 'ACCEPTING_PAYMENT');
    equal(m.credit, 100);
    m.coin(25);
    m.coin(25);
    equal(m.state, 'DISPENSING');
    deepEqual(p.log, ['dispense 0']);
    m.dispensed(DISPENSE_OK);
    equal(m.state, 'RETURNING_CHANGE');
    deepEqual(p.log, ['dispense 0', 'sold 0 125', 'payout 25']);
    m.paidOut(25, 25);
    equal(m.state, 'IDLE');
    equal(m.credit, 0);
  });

  it('lets the customer pay first and select afterwards', () => {
    const { m, p } = setup();
    m.coin(100);
    m.coin(25);
    equal(m.state, 'ACCEPTING_PAYMENT');
    m.select(0, 1);
    equal(m.state, 'DISPENSING');
    deepEqual(p.log, ['dispense 0']);
  });

  it('refuses an empty slot and says so', () => {
    const { m, p } = setup();
    m.select(2, 1);
    equal(m.state, 'IDLE');
    deepEqual(p.notices, ['sold-out']);
  });

  it('refuses more than the slot holds, and unknown slots', () => {
    const { m, p } = setup();
    m.select(1, 2);
    m.select(-1, 1);
    m.select(0, 9);
    equal(m.state, 'IDLE');
    deepEqual(p.notices, ['only-left', 'unknown-slot', 'bad-quantity']);
  });

  it('allows re-selection, keeping the credit', () => {
    const { m, p } = setup();
    m.select(1, 1);
    m.coin(100);
    m.select(0, 1);
    equal(m.selection, 0);
    equal(m.credit, 100);
    m.coin(25);
    equal(m.state, 'DISPENSING');
    deepEqual(p.log, ['dispense 0']);
  });

  it('cancel returns the credit; cancel with only a selection just clears it', () => {
    const { m, p } = setup();
    m.select(0, 1);
    m.cancel();
    equal(m.state, 'IDLE');
    equal(p.timerMs, 0);
    m.coin(50);
    m.cancel();
    equal(m.state, 'RETURNING_CHANGE');
    deepEqual(p.log, ['payout 50']);
    m.paidOut(50, 50);
    equal(m.state, 'IDLE');
  });

  it('times out after inactivity and refunds', () => {
    const { m, p } = setup();
    m.select(0, 1);
    m.coin(25);
    m.coin(25);
    m.timeout();
    deepEqual(p.log, ['payout 50']);
    m.paidOut(50, 50);
    equal(m.state, 'IDLE');
    equal(m.credit, 0);
  });

  it('vends several of one selection, charging per delivered item', () => {
    const { m, p, inv } = setup();
    m.select(0, 2);
    m.coin(250);
    equal(m.state, 'DISPENSING');
    m.dispensed(DISPENSE_OK);
    inv.qty[0] = inv.qty[0]! - 1;
    equal(m.state, 'DISPENSING');
    m.dispensed(DISPENSE_OK);
    equal(m.state, 'IDLE');
    deepEqual(p.log, ['dispense 0', 'sold 0 125', 'dispense 0', 'sold 0 125']);
  });

  it('a jam refunds the undelivered part and takes the slot out of service', () => {
    const { m, p } = setup();
    m.select(0, 2);
    m.coin(250);
    m.dispensed(DISPENSE_OK);
    m.dispensed(DISPENSE_JAM);
    deepEqual(p.log, ['dispense 0', 'sold 0 125', 'dispense 0', 'failed 0', 'payout 125']);
    ok(p.notices.includes('jam'));
    m.paidOut(125, 125);
    equal(m.state, 'IDLE');
  });

  it('refuse policy: no vend while the change cannot be paid; cancel still refunds', () => {
    const { m, p } = setup('refuse');
    p.payable.add(200);
    m.select(0, 1);
    m.coin(200);
    equal(m.state, 'ACCEPTING_PAYMENT');
    ok(p.notices.includes('no-change'));
    deepEqual(p.log, []);
    m.cancel();
    deepEqual(p.log, ['payout 200']);
  });

  it('overpay policy: vends and keeps what cannot be paid back as credit', () => {
    const { m, p } = setup('overpay');
    m.select(0, 1);
    m.coin(200);
    equal(m.state, 'DISPENSING');
    m.dispensed(DISPENSE_OK);
    deepEqual(p.log, ['dispense 0', 'sold 0 125', 'payout 75']);
    m.paidOut(75, 50);
    equal(m.state, 'ACCEPTING_PAYMENT');
    equal(m.credit, 25);
    ok(p.notices.includes('credit-kept'));
  });

  it('stacks a bill only when its refund (or the change) could be paid, else holds it', () => {
    const { m, p } = setup('refuse');
    m.select(1, 1);
    m.billEscrowed(500);
    equal(m.state, 'ACCEPTING_PAYMENT');
    equal(m.escrow, 500);
    deepEqual(p.log, []);
    ok(p.notices.includes('no-change'));
    // Cancel hands the held bill back; nothing to pay in coins.
    m.cancel();
    deepEqual(p.log, ['return']);
    m.billReturned(500);
    equal(m.state, 'IDLE');
    equal(m.escrow, 0);
  });

  it('holds a bill in escrow until a selection is made; cancel hands the same bill back', () => {
    const { m, p } = setup('refuse');
    p.payAll = true;
    m.billEscrowed(100);
    equal(m.state, 'ACCEPTING_PAYMENT');
    deepEqual(p.log, []);
    m.cancel();
    deepEqual(p.log, ['return']);
    m.billReturned(100);
    equal(m.state, 'IDLE');
    // Selecting afterwards takes the bill and vends.
    m.billEscrowed(500);
    m.select(1, 1);
    deepEqual(p.log, ['return', 'stack']);
    m.billStacked(500);
    equal(m.state, 'DISPENSING');
  });

  it('credits a bill only once it is stacked, then vends', () => {
    const { m, p } = setup('refuse');
    p.payable.add(100);
    p.payable.add(25);
    m.select(1, 1);
    m.billEscrowed(100);
    deepEqual(p.log, ['stack']);
    equal(m.credit, 0);
    m.billStacked(100);
    equal(m.credit, 100);
    m.coin(100);
    equal(m.state, 'DISPENSING');
  });

  it('returns a bill that would exceed the credit limit', () => {
    const { m, p } = setup();
    m.coin(1900);
    m.billEscrowed(500);
    deepEqual(p.log, ['return']);
    ok(p.notices.includes('max-credit'));
  });

  it('takes money that arrives while dispensing into account', () => {
    const { m, p } = setup();
    m.select(0, 1);
    m.coin(125);
    m.coin(25);
    equal(m.state, 'DISPENSING');
    m.dispensed(DISPENSE_OK);
    deepEqual(p.log, ['dispense 0', 'sold 0 125', 'payout 25']);
  });

  it('ignores and reports events that make no sense in the state, without crashing', () => {
    const { m, p } = setup();
    m.dispensed(DISPENSE_OK);
    m.paidOut(10, 10);
    m.cancel();
    m.timeout();
    m.select(0, 1);
    m.coin(125);
    m.select(1, 1);
    m.cancel();
    equal(m.state, 'DISPENSING');
    deepEqual(p.ignoredEvents, ['dispensed@IDLE', 'paidOut@IDLE', 'cancel@IDLE', 'timeout@IDLE', 'select@DISPENSING', 'cancel@DISPENSING']);
  });

  it('keeps an unpayable remainder as credit instead of looping', () => {
    const { m, p } = setup();
    m.coin(50);
    m.cancel();
    m.paidOut(50, 40);
    equal(m.state, 'ACCEPTING_PAYMENT');
    equal(m.credit, 10);
    equal(p.timerMs, 0);
    deepEqual(p.log, ['payout 50']);
  });

  it('holds the credit out of service when a payout cannot be verified, and gives back what the changer did not pay', () => {
    const { m, p } = setup();
    m.coin(100);
    m.coin(100);
    m.cancel();
    equal(m.state, 'RETURNING_CHANGE');
    m.payoutUnsettled(50);
    equal(m.state, 'ERROR', 'held: nothing sells while the payout is unknown');
    equal(m.credit, 150);
    equal(p.timerMs, 0);
    m.select(0, 1);
    m.coin(25);
    equal(m.state, 'ERROR', 'a coin that slips in waits with the held credit');
    equal(m.credit, 175);
    deepEqual(p.log, ['payout 200']);
    m.paidOut(150, 150);
    equal(m.credit, 175, 'a stray payout report changes nothing');
    // The changer is back and says the round paid 100 of it (the journal's credit counts the coin).
    m.setReady(false);
    m.restoreCredit(75);
    m.setReady(true);
    equal(m.state, 'ACCEPTING_PAYMENT');
    equal(m.credit, 75);
    equal(p.timerMs, 30000);
  });
});
