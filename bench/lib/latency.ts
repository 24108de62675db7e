/**
 * The seeds' promise "under 3 s from payment confirmation to dispensing", on
 * the simulator's virtual clock: from the coin or bill that completes the
 * price (the moment the customer puts it in), and from the card reader's
 * VEND APPROVED (the moment it is ready for the next POLL), to the spiral
 * motor starting. Seeded customers over a day's worth of sales.
 */
import { visit } from '../../hal-sim/customers.js';
import { MachineHost } from '../../hal-sim/host.js';
import { usSnackMachine } from '../../hal-sim/machines.js';
import { Random } from '../../hal-sim/scheduler.js';
import type { Figures } from './figures.js';

/** Virtual µs at which each spiral motor started. */
function motorStarts(host: MachineHost): number[] {
  const starts: number[] = [];
  for (const m of host.rig.motors) {
    const set = m.setDuty.bind(m);
    m.setDuty = (duty: number): void => {
      if (duty > 0 && !m.running) starts.push(host.rig.scheduler.now);
      set(duty);
    };
  }
  return starts;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const SLOTS = [
  { code: 'A1', product: 'Chips', price: 125, qty: 400 },
  { code: 'B4', product: 'Coke', price: 175, qty: 400 },
  { code: 'C2', product: 'Water', price: 100, qty: 400 },
];

export async function latencyBench(f: Figures, customers = 300, seed = 2026): Promise<void> {
  f.out('');
  f.out(`Payment to dispensing on the simulator's clock: ${customers} cash customers and ${customers} card customers (seed ${seed})`);
  // Cash: the customers of hal-sim/customers.ts (coins and bills, change, cancels, walk-aways).
  const cash: number[] = [];
  {
    const host = await MachineHost.start(usSnackMachine({ slots: SLOTS.map((s) => ({ ...s })) }));
    try {
      const starts = motorStarts(host);
      let lastIn = -1;
      for (const kind of ['insertCoin', 'insertBill'] as const) {
        const put = host[kind].bind(host);
        host[kind] = (value: number): boolean => {
          const ok = put(value);
          if (ok) lastIn = host.rig.scheduler.now;
          return ok;
        };
      }
      const rnd = new Random(seed);
      for (let i = 0; i < customers; i++) {
        lastIn = -1;
        const before = starts.length;
        await visit(host, rnd);
        // The first motor start of a visit follows the money that completed the price.
        if (starts.length > before && lastIn >= 0 && lastIn <= starts[before]!) cash.push((starts[before]! - lastIn) / 1000);
        await host.run(rnd.int(5, 120) * 1000);
      }
    } finally {
      await host.close();
    }
  }
  const card: number[] = [];
  {
    const host = await MachineHost.start(usSnackMachine({ slots: SLOTS.map((s) => ({ ...s })), cashless: { funds: 10_000_000 } }));
    try {
      const starts = motorStarts(host);
      const reader = host.rig.reader!;
      const rnd = new Random(seed + 1);
      for (let i = 0; i < customers; i++) {
        const before = starts.length;
        if (!host.tapCard()) throw new Error('the reader did not take the card');
        await host.runUntilIdle();
        await host.run(rnd.int(300, 3000));
        host.select(SLOTS[rnd.int(0, SLOTS.length - 1)]!.code);
        await host.runUntilIdle();
        if (starts.length > before && reader.lastApprovedUs >= 0 && reader.lastApprovedUs <= starts[before]!) card.push((starts[before]! - reader.lastApprovedUs) / 1000);
        await host.run(rnd.int(5, 120) * 1000);
      }
    } finally {
      await host.close();
    }
  }
  for (const [name, v] of [['cash', cash], ['card', card]] as const) {
    const sorted = [...v].sort((a, b) => a - b);
    if (sorted.length === 0) throw new Error(`no ${name} vends measured`);
    f.record(`latency.${name}.vends`, sorted.length, `${name}: vends measured`);
    f.record(`latency.${name}.p50Ms`, percentile(sorted, 50), `${name}: payment to motor start, p50 (virtual ms)`);
    f.record(`latency.${name}.p99Ms`, percentile(sorted, 99), `${name}: p99 (virtual ms)`);
    f.record(`latency.${name}.maxMs`, sorted[sorted.length - 1]!, `${name}: max (virtual ms)`);
  }
}
