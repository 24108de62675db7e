/**
 * A foreign peripheral on the bench (docs/bench-peripheral.md): what it
 * costs in wall time that the clock holds for a program's every answer.
 * Our C reader (tools/peripherals/cashless.c, compiled with cc) and the
 * simulated reader each run the same card sales and the same idle polling;
 * the figures are lines exchanged with the program per wall second and the
 * machine-to-wall time ratio of each.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MachineHost } from '../../hal-sim/host.js';
import { ExecPeripheral } from '../../hal-sim/mdb/exec.js';
import type { MachineSpec } from '../../hal-sim/rig.js';
import type { Figures } from './figures.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

const MACHINE: MachineSpec = {
  currency: 'USD',
  slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 200, capacity: 200 }],
  changer: { coins: [{ value: 25, tube: 20 }] },
  cashless: { funds: 60000 },
};

export async function peripheralBench(f: Figures, sales = 40, idleMs = 600000): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vf-bench-exec-'));
  try {
    const reader = join(dir, 'cashless');
    const cc = spawnSync('cc', ['-O2', '-o', reader, join(root, 'tools/peripherals/cashless.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`);
    f.out('');
    f.out(`A reader program on the simulated bus (${sales} card sales, then ${idleMs / 60000} min of idle polling; target sim)`);
    for (const which of ['simulated', 'program'] as const) {
      let lines = 0;
      const failures: string[] = [];
      const host = await MachineHost.start(MACHINE, {
        ...(which === 'program'
          ? { peripherals: { cashless: (bus) => new ExecPeripheral(bus, { device: 'cashless', command: reader, onFailure: (m) => failures.push(m), trace: (d) => void (d === 'in' && lines++) }) } }
          : {}),
      });
      try {
        lines = 0;
        let wall0 = performance.now();
        let machine0 = host.rig.scheduler.now;
        for (let i = 0; i < sales; i++) {
          host.tapCard();
          await host.runUntilIdle();
          host.select('A1');
          await host.runUntilIdle();
        }
        const st = await host.status();
        if (st.counters.cashlessSales !== sales || failures.length > 0) throw new Error(`${which}: ${st.counters.cashlessSales} card sales of ${sales}; ${failures.join('; ')}`);
        const saleWall = (performance.now() - wall0) / 1000;
        f.record(`peripheral.${which}.msPerSale`, (saleWall * 1000) / sales, `wall ms per card sale, ${which} reader`, 'ms', 1);
        const saleLines = lines;
        lines = 0;
        wall0 = performance.now();
        machine0 = host.rig.scheduler.now;
        await host.run(idleMs);
        const idleWall = (performance.now() - wall0) / 1000;
        f.record(`peripheral.${which}.idleSpeedup`, (host.rig.scheduler.now - machine0) / 1e6 / idleWall, `machine time / wall time while idle, ${which} reader`, 'x', 0);
        if (which === 'program') {
          f.record('peripheral.program.linesPerSale', saleLines / sales, 'lines to the program per card sale', '', 0);
          f.record('peripheral.program.linesPerSecond', lines / idleWall, 'lines answered per wall second while idle (round trips)', '', 0);
        }
      } finally {
        await host.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
