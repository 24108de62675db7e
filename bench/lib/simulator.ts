/**
 * The firmware on the simulator: journal wear over many sales (flash bytes,
 * erases and their spread), a power cut at every flash write and erase of a
 * busy run checked against the books (hal-sim/cut-check.ts), and vends per
 * second of wall time on targets sim and xs.
 */
import { checkCut } from '../../hal-sim/cut-check.js';
import { busyWorkload, cutMachine, CUT_FLASH } from '../../hal-sim/cut-workload.js';
import { MachineHost } from '../../hal-sim/host.js';
import { CutCampaign, isEventRecord } from '../../hal-sim/power-cuts.js';
import { Random } from '../../hal-sim/scheduler.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { BENCH_FLASH, BENCH_MACHINE, vend } from './bench-machine.js';
import type { Figures } from './figures.js';

export async function journalWear(f: Figures, sales: number): Promise<void> {
  f.out('');
  f.out(`Journal on the simulator: ${sales} cash sales, 64 KiB partition, the gateway acknowledging every minute`);
  const slots = Array.from({ length: Math.ceil(sales / 900) + 1 }, (_, i) => ({ code: `S${i}`, product: `P${i}`, price: 175, qty: 900, capacity: 999 }));
  let logical = 0;
  const host = await MachineHost.start(
    { ...BENCH_MACHINE, slots },
    {
      target: 'sim',
      flash: BENCH_FLASH,
      autoAckMs: 60000,
      onFlashOp: (_h, op) => {
        if (op.kind === 'write' && isEventRecord(op.data)) logical += 9 + (op.data[1]! | (op.data[2]! << 8));
      },
    },
  );
  try {
    for (let i = 0; i < sales; i++) await vend(host, i, slots[Math.floor(i / 900)]!.code);
    const st = await host.status();
    if (st.counters.sales !== sales || st.journal.dropped !== 0) throw new Error(`sales ${st.counters.sales}, dropped ${st.journal.dropped}`);
    const written = host.flash.bytesWritten;
    const erases = Array.from(host.flash.eraseCounts);
    const total = erases.reduce((a, b) => a + b, 0);
    const max = Math.max(...erases);
    const min = Math.min(...erases);
    f.record('journal.flashBytesPerSale', written / sales, 'flash bytes written per sale (headers, checkpoints, sync, padding)');
    f.record('journal.eventBytesPerSale', logical / sales, 'event bytes per sale (type, sequence, time, payload)');
    f.record('journal.writeAmplification', written / logical, 'write amplification (flash bytes / event bytes)', 'x');
    f.record('journal.erasesPer10kSales', Math.round((total * 10000) / sales), 'block erases per 10,000 sales');
    f.record('journal.eraseSpreadPercent', ((max - min) * 100) / max, `erase spread across blocks ((max-min)/max; ${min}..${max})`, '%');
  } finally {
    await host.close();
  }
}

export async function powerCutCampaign(f: Figures): Promise<void> {
  f.out('');
  f.out('Power cut at every flash write and erase of a busy run (230 customers: change, bills, refunds, jams)');
  const campaign = await CutCampaign.record(cutMachine(), { target: 'sim', seed: 7, flash: CUT_FLASH, autoAckMs: 120000 }, (host) => busyWorkload(host, 230, 31));
  const rnd = new Random(11);
  const failures: string[] = [];
  let checked = 0;
  let uncertain = 0;
  const wall0 = performance.now();
  for (let k = 0; k < campaign.total; k++) {
    const len = campaign.length(k);
    // Mid-operation (a torn write or a half-erased block), and the instant before it starts.
    for (const bytes of [len >> 1, 0]) {
      try {
        uncertain += (await checkCut(campaign, k, bytes, rnd, 1)).uncertainVends;
      } catch (e) {
        failures.push((e as Error).message.split('\n')[0]!);
      }
      checked++;
    }
    if (!f.json && k % 250 === 249) process.stderr.write(`  ... ${k + 1}/${campaign.total} ops, ${failures.length} failures, ${((performance.now() - wall0) / 1000).toFixed(0)} s\n`);
  }
  f.record('cuts.flashOps', campaign.total, 'flash writes and erases in the run');
  f.record('cuts.checked', checked, 'cuts checked (each op: mid-way and just before)');
  f.record('cuts.failed', failures.length, 'cuts after which an invariant failed');
  f.record('cuts.uncertainVends', uncertain, 'vends left uncertain by a cut (not charged)');
  // The same recording, the firmware booting under XS: every 13th op, mid-way.
  const xs = campaign.withTarget('xs');
  let xsChecked = 0;
  let xsFailed = 0;
  for (let k = 0; k < campaign.total; k += 13) {
    try {
      await checkCut(xs, k, campaign.length(k) >> 1, rnd, 1);
    } catch (e) {
      xsFailed++;
      failures.push(`xs: ${(e as Error).message.split('\n')[0]!}`);
    }
    xsChecked++;
  }
  f.record('cuts.xsChecked', xsChecked, 'cuts checked with the firmware under XS (every 13th op)');
  f.record('cuts.xsFailed', xsFailed, 'of those, cuts after which an invariant failed');
  for (const failure of failures.slice(0, 5)) f.out(`    ${failure}`);
  if (failures.length > 0) process.exitCode = 1;
}

export async function throughput(f: Figures, target: TargetName, n: number): Promise<void> {
  const host = await MachineHost.start(BENCH_MACHINE, { target });
  try {
    await vend(host, 0);
    const wall0 = performance.now();
    const machine0 = host.rig.scheduler.now;
    for (let i = 1; i <= n; i++) await vend(host, i);
    const wall = (performance.now() - wall0) / 1000;
    const machineSeconds = (host.rig.scheduler.now - machine0) / 1e6;
    f.record(`${target}.vendsPerSecond`, n / wall, `vends per second of wall time (${n} vends, target ${target})`);
    f.record(`${target}.speedup`, machineSeconds / wall, `machine time / wall time (target ${target})`, 'x');
  } finally {
    await host.close();
  }
}

