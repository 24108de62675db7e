/** The busy workload the power-cut campaigns record (tests and `npm run bench`). */
import { visit } from './customers.js';
import type { FlashGeometry } from './guest/flash-image.js';
import type { MachineHost } from './host.js';
import { usSnackMachine } from './machines.js';
import type { MachineSpec } from './rig.js';
import { Random } from './scheduler.js';

/** Small enough that the workload turns the ring over several times. */
export const CUT_FLASH: FlashGeometry = { size: 32 * 1024, blockLength: 2048, writeAlign: 4 };

export function cutMachine(): MachineSpec {
  return usSnackMachine({
    slots: [
      { code: 'A1', product: 'Chips', price: 125, qty: 80 },
      { code: 'B4', product: 'Coke', price: 175, qty: 80 },
      { code: 'C2', product: 'Water', price: 90, qty: 80 },
      { code: 'D1', product: 'Gum', price: 65, qty: 80 },
    ],
    changer: {
      coins: [
        { value: 5, tube: 150 },
        { value: 10, tube: 150 },
        { value: 25, tube: 150 },
        { value: 100, tube: null },
      ],
    },
    bills: [100, 200],
  });
}

/** Seeded customers buying, cancelling, walking away, paying with bills; a few spiral jams. */
export async function busyWorkload(host: MachineHost, customers: number, seed: number): Promise<void> {
  const rnd = new Random(seed);
  let jams = 0;
  for (let i = 0; i < customers; i++) {
    if (jams < 2 && rnd.next() < 0.02) {
      jams++;
      host.jam(host.rig.spec.slots[rnd.int(0, host.rig.spec.slots.length - 1)]!.code);
    }
    await visit(host, rnd, { walkAway: 0.05, cancel: 0.08, twoItems: 0.15 });
  }
}
