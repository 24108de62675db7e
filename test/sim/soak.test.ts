/**
 * Many random customers, with faults sprinkled over the peripherals, on both
 * targets. After every visit the books must balance against the physical
 * coins, bills and products.
 */
import { strict as assert } from 'node:assert';
import { visit } from '../../hal-sim/customers.js';
import { MachineHost } from '../../hal-sim/host.js';
import { Random } from '../../hal-sim/scheduler.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { checkInvariants } from '../../hal-sim/invariants.js';
import { usMachine } from './fixtures.js';

function sprinkleFault(host: MachineHost, rnd: Random): string | undefined {
  const rig = host.rig;
  const r = rnd.next();
  if (r < 0.05) {
    rig.changer!.injectFault({ kind: 'garble', command: 3, count: rnd.int(1, 3) });
    return 'garbled changer polls';
  }
  if (r < 0.08) {
    rig.changer!.injectFault({ kind: 'garble-all', count: 1 });
    return 'corrupt changer answer';
  }
  if (r < 0.11) {
    rig.changer!.injectFault({ kind: 'drop-reply', command: 5, count: 1 });
    return 'lost DISPENSE answer';
  }
  if (r < 0.14) {
    rig.validator!.injectFault({ kind: rnd.next() < 0.5 ? 'nak' : 'silence', count: rnd.int(1, 4) });
    return 'validator NAK/silence';
  }
  if (r < 0.17) {
    rig.changer!.jamPayoutAfter = rnd.int(0, 2);
    return 'payout jam';
  }
  if (r < 0.18) {
    // Rare: a jammed slot stays out of service until an operator visits (no service mode yet).
    host.jam(rig.spec.slots[rnd.int(0, rig.spec.slots.length - 1)]!.code);
    return 'spiral jam';
  }
  return undefined;
}

for (const [target, customers] of [
  ['sim', 150],
  ['xs', 25],
] as [TargetName, number][]) {
  describe(`random customers on target ${target}`, () => {
    it(`${customers} customers with faults: the books balance after every visit`, async () => {
      const rnd = new Random(4242);
      const spec = usMachine({
        slots: [
          { code: 'A1', product: 'Chips', price: 125, qty: 60 },
          { code: 'B4', product: 'Coke', price: 175, qty: 60 },
          { code: 'C2', product: 'Water', price: 90, qty: 60 },
          { code: 'D1', product: 'Gum', price: 65, qty: 2 },
          { code: 'E5', product: 'Candy', price: 110, qty: 60 },
        ],
        changer: {
          coins: [
            { value: 5, tube: 80 },
            { value: 10, tube: 80 },
            { value: 25, tube: 80 },
            { value: 100, tube: null },
          ],
        },
        bills: [100, 200],
      });
      const host = await MachineHost.start(spec, { target, seed: 99 });
      const endings = new Map<string, number>();
      try {
        for (let i = 0; i < customers; i++) {
          const fault = sprinkleFault(host, rnd);
          const r = await visit(host, rnd, { walkAway: 0.05, cancel: 0.08, twoItems: 0.15 });
          endings.set(r.ending, (endings.get(r.ending) ?? 0) + 1);
          await checkInvariants(host, `customer ${i + 1}${fault ? ` (after ${fault})` : ''}`);
        }
      } finally {
        await host.close();
      }
      // The run exercised the paths it is meant to.
      assert.ok((endings.get('bought') ?? 0) > customers / 2, `endings: ${[...endings].join('; ')}`);
      this_title(endings);
    });
  });
}

function this_title(endings: Map<string, number>): void {
  // Visible in the test output: what the customers did.
  process.stdout.write(`      endings: ${[...endings].map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
}
