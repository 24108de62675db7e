/** Simulated customers for the tests that keep a fleet selling while something else happens to it. */
import { visit } from '../../hal-sim/customers.js';
import type { MachineHost } from '../../hal-sim/host.js';
import { Random } from '../../hal-sim/scheduler.js';

/** Customers on every machine (seeded `seed + index`), one every 2 s of machine time, until stopped. */
export function sell(hosts: MachineHost[], seed: number): { stop(): Promise<void> } {
  let stopping = false;
  const loops = hosts.map(async (h, i) => {
    const r = new Random(seed + i);
    while (!stopping) {
      await visit(h, r, { walkAway: 0.02, cancel: 0.05 });
      await h.run(2000);
    }
  });
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}
