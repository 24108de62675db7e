/** Machine descriptions shared by the tools and the tests. */
import type { MachineSpec } from './rig.js';

/** A typical US snack machine: three slots (one empty), four coin types (the dollar to the cash box), two bills. */
export function usSnackMachine(overrides: Partial<MachineSpec> = {}): MachineSpec {
  return {
    currency: 'USD',
    slots: [
      { code: 'A1', product: 'Chips', price: 125, qty: 5 },
      { code: 'B4', product: 'Coke', price: 175, qty: 3 },
      { code: 'C2', product: 'Water', price: 100, qty: 0 },
    ],
    changer: {
      coins: [
        { value: 5, tube: 20 },
        { value: 10, tube: 20 },
        { value: 25, tube: 20 },
        { value: 100, tube: null },
      ],
    },
    bills: [100, 500],
    ...overrides,
  };
}
