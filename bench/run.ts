/**
 * npm run bench [-- --json]
 *
 * Under the XS engine: heap (slots) and compute (XS computrons, a
 * deterministic count) per complete cash vend, and the change-maker's worst
 * case for 16 coin types up to 10,000 minor units. In Node: vends per second
 * of wall time on the simulator. Figures are counts and ratios.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MachineHost } from '../hal-sim/host.js';
import type { MachineSpec } from '../hal-sim/rig.js';
import type { TargetName } from '../hal-sim/transport.js';
import { XsWorker } from '../hal-sim/xs/xsnap.js';

const json = process.argv.includes('--json');
const figures: Record<string, number> = {};
const out = (line: string): void => {
  if (!json) process.stdout.write(line + '\n');
};
const record = (key: string, value: number, label: string, unit = ''): void => {
  figures[key] = value;
  out(`  ${label.padEnd(58)} ${Number.isInteger(value) ? value : value.toFixed(2)}${unit ? ' ' + unit : ''}`);
};

const machine: MachineSpec = {
  currency: 'USD',
  slots: [{ code: 'B4', product: 'Coke', price: 175, qty: 999, capacity: 999 }],
  changer: { coins: [{ value: 5, tube: 100 }, { value: 10, tube: 100 }, { value: 25, tube: 100 }, { value: 100, tube: null }] },
  bills: [100, 500],
};

/**
 * One complete cash vend, alternating between two customers so the tubes
 * stay level: a dollar bill and a dollar coin (a quarter back), or a dollar
 * bill and three quarters (exact).
 */
async function vend(host: MachineHost, i: number): Promise<void> {
  const before = host.rig.delivered.length;
  host.select('B4');
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

async function xsVend(): Promise<number> {
  out('Firmware under XS: one complete cash vend (select, bill, coins, dispense, change)');
  const empty = new XsWorker();
  const emptyHeap = (await empty.evaluate('gc()')).meter.currentHeapCount;
  await empty.close();

  const host = await MachineHost.start(machine, { target: 'xs' });
  const t = host.transport;
  try {
    for (let i = 0; i < 4; i++) await vend(host, i);
    const rest = await t.evaluate!('gc()');
    const m0 = t.meter!();
    const n = 40;
    for (let i = 0; i < n; i++) await vend(host, i);
    const m1 = t.meter!();
    const after = await t.evaluate!('gc()');
    const compute = (m1.totalCompute - m0.totalCompute) / n;
    // What one bridge message costs with nothing for the firmware to do:
    // JSON in and out, the timer scan. On the board there is no bridge.
    const e0 = t.meter!();
    for (let i = 0; i < 50; i++) {
      const reply = await t.deliver({ t: host.nowMs });
      if (reply.ops.length > 0) throw new Error('an empty delivery produced output');
    }
    const e1 = t.meter!();
    const bridge = (e1.totalCompute - e0.totalCompute) / (e1.cranks - e0.cranks);
    const cranks = (m1.cranks - m0.cranks) / n;
    record('xs.heapAtRestSlots', rest.currentHeapCount - emptyHeap, 'firmware heap at rest, after GC (slots above an empty engine)');
    record('xs.heapGrowthPerVendSlots', (after.currentHeapCount - rest.currentHeapCount) / n, 'heap growth per vend after GC (slots)');
    record('xs.computePerVend', Math.round(compute), 'compute per vend, as run behind the bridge (computrons)');
    record('xs.cranksPerVend', cranks, 'bridge messages per vend (firmware wake-ups)');
    record('xs.bridgeComputePerMessage', Math.round(bridge), 'compute of one empty bridge message (computrons)');
    const own = compute - cranks * bridge;
    record('xs.firmwareComputePerVend', Math.round(own), 'compute per vend, firmware alone (bridge subtracted)');
    return own;
  } finally {
    await host.close();
  }
}

async function xsChange(vendCompute: number): Promise<void> {
  out('');
  out('Change-making under XS: 16 coin types (gcd 1), 255 coins per tube');
  const w = new XsWorker({ meteringLimit: 2_000_000_000 });
  try {
    await w.evaluate(readFileSync(fileURLToPath(new URL('../bundle/bench-change.js', import.meta.url)), 'utf8'));
    const base = (await w.evaluate('0')).meter.compute;
    // Only an ArrayBuffer crosses back from XS, so the footprint comes back as text.
    const fp = await w.evaluate('new TextEncoder().encode(String(benchChangeSetup(10000))).buffer');
    record('change.footprintBytes', Number(new TextDecoder().decode(fp.reply)), 'planner buffers for amounts up to 10,000 (bytes)');
    for (const amount of [100, 1000, 5000, 9999, 10000]) {
      const r = await w.evaluate(`benchChangeSolve(${amount})`);
      const c = r.meter.compute - base;
      record(`change.compute.${amount}`, c, `plan ${String(amount).padStart(5)} minor units (computrons; ${(c / vendCompute).toFixed(2)} vends)`);
    }
    out('Change-making under XS, typical: USD tubes 5/10/25 (gcd 5), credit up to 50.00');
    const tfp = await w.evaluate('new TextEncoder().encode(String(benchChangeSetup(5000, [5, 10, 25, 0]))).buffer');
    record('change.typical.footprintBytes', Number(new TextDecoder().decode(tfp.reply)), 'planner buffers (bytes)');
    for (const amount of [25, 375, 4825]) {
      const r = await w.evaluate(`benchChangeSolve(${amount})`);
      const c = r.meter.compute - base;
      record(`change.typical.compute.${amount}`, c, `plan ${String(amount).padStart(5)} minor units (computrons; ${(c / vendCompute).toFixed(2)} vends)`);
    }
  } finally {
    await w.close();
  }
}

async function throughput(target: TargetName, n: number): Promise<void> {
  const host = await MachineHost.start(machine, { target });
  try {
    await vend(host, 0);
    const wall0 = performance.now();
    const machine0 = host.rig.scheduler.now;
    for (let i = 1; i <= n; i++) await vend(host, i);
    const wall = (performance.now() - wall0) / 1000;
    const machineSeconds = (host.rig.scheduler.now - machine0) / 1e6;
    record(`${target}.vendsPerSecond`, n / wall, `vends per second of wall time (${n} vends, target ${target})`);
    record(`${target}.speedup`, machineSeconds / wall, `machine time / wall time (target ${target})`, 'x');
  } finally {
    await host.close();
  }
}

async function main(): Promise<void> {
  const vendCompute = await xsVend();
  await xsChange(vendCompute);
  out('');
  out('Simulator throughput');
  await throughput('sim', 300);
  await throughput('xs', 60);
  if (json) process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
