/**
 * The machine the firmware benches measure and the vend they repeat: one
 * slot, a USD changer with 5/10/25 tubes and a $1/$5 validator
 * (docs/benchmarks.md describes the figures in these terms, so change them
 * together), and the journal partition the journal figures assume.
 */
import type { MachineHost } from '../../hal-sim/host.js';
import type { MachineSpec } from '../../hal-sim/rig.js';

export const BENCH_MACHINE: MachineSpec = {
  currency: 'USD',
  slots: [{ code: 'B4', product: 'Coke', price: 175, qty: 999, capacity: 999 }],
  changer: { coins: [{ value: 5, tube: 100 }, { value: 10, tube: 100 }, { value: 25, tube: 100 }, { value: 100, tube: null }] },
  bills: [100, 500],
};

/** 64 KiB in 16 blocks of 4 KiB. */
export const BENCH_FLASH = { size: 64 * 1024, blockLength: 4096, writeAlign: 4 };

/**
 * One complete cash vend, alternating between two customers so the tubes
 * stay level: a dollar bill and a dollar coin (a quarter back), or a dollar
 * bill and three quarters (exact).
 */
export async function vend(host: MachineHost, i: number, code = 'B4'): Promise<void> {
  const before = host.rig.delivered.length;
  host.select(code);
  await host.runUntilIdle();
  host.insertBill(100);
  await host.runUntilIdle();
  for (const coin of i % 2 === 0 ? [100] : [25, 25, 25]) {
    if (!host.insertCoin(coin)) throw new Error('coin refused during the benchmark');
    await host.runUntilIdle();
  }
  const st = await host.runUntilIdle();
  if (host.rig.delivered.length !== before + 1 || st.state !== 'IDLE') throw new Error(`vend ${i} did not complete: ${st.state}`);
}
