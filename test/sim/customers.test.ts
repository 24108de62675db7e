/**
 * The simulated customers (hal-sim/customers.ts) behave like people with
 * their money: whatever credit the machine kept (change it could not pay)
 * they ask back or spend, so the machine is never left holding a customer's
 * credit, which would keep it busy for remote vends until the next customer.
 */
import { strict as assert } from 'node:assert';
import { visit } from '../../hal-sim/customers.js';
import { MachineHost } from '../../hal-sim/host.js';
import { Random } from '../../hal-sim/scheduler.js';
import { usMachine } from './fixtures.js';

describe('simulated customers', function () {
  this.timeout(300000);

  it('never leave credit on the machine, also once it runs short of change', async () => {
    // As customers pay with dollar coins (to the cash box) and bills, the tubes run down: change the machine cannot pay.
    const spec = usMachine({
      slots: [
        { code: 'A1', product: 'Chips', price: 125, qty: 30, capacity: 30 },
        { code: 'B4', product: 'Coke', price: 175, qty: 30, capacity: 30 },
        { code: 'C2', product: 'Water', price: 100, qty: 30, capacity: 30 },
      ],
    });
    const host = await MachineHost.start(spec, { seed: 5, autoAckMs: 60000 });
    try {
      const rnd = new Random(11);
      let asked = 0;
      let sold = 0;
      for (let i = 0; i < 60; i++) {
        await host.run(rnd.int(30, 120) * 1000);
        const lines: string[] = [];
        const r = await visit(host, rnd, { walkAway: 0.05, cancel: 0.1, twoItems: 0.15, say: (t) => lines.push(t) });
        const st = await host.status();
        assert.equal(st.credit, 0, `customer ${i + 1} (${r.ending}) left credit on the machine:\n  ${lines.join('\n  ')}`);
        assert.equal(st.escrow, 0);
        assert.equal(st.state, 'IDLE', `customer ${i + 1}`);
        assert.equal(st.busy, false);
        if (lines.some((l) => l.startsWith('presses the coin return'))) asked++;
        sold += r.got.length;
      }
      assert.ok(asked > 0, 'some customers had credit to get back');
      assert.ok(sold >= 20, `${sold} products sold`);
    } finally {
      await host.close();
    }
  });
});
