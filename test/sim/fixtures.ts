import type { MachineSpec } from '../../hal-sim/rig.js';
import { usSnackMachine } from '../../hal-sim/machines.js';

/** A typical US snack machine: three slots (one empty), four coin types, two bills. */
export function usMachine(overrides: Partial<MachineSpec> = {}): MachineSpec {
  return usSnackMachine(overrides);
}
