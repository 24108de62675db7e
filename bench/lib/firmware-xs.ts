/**
 * The firmware under the XS engine, as counts that do not depend on the
 * machine running the bench: heap (XS slots) and compute (computrons) of a
 * complete cash vend, then the change-maker, the journal and the audit file
 * from their own bundles (bench/xs/*, built by rollup into dist/bundle/),
 * each also as a multiple of one vend's compute.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MachineHost } from '../../hal-sim/host.js';
import { codeSlots, emptyEngineSlots, splitHeap } from '../../hal-sim/xs/heap.js';
import { XsWorker } from '../../hal-sim/xs/xsnap.js';
import { BENCH_FLASH, BENCH_MACHINE, vend } from './bench-machine.js';
import type { Figures } from './figures.js';
import { CHANGE_CASES, hardest } from './change-cases.js';
import { SLICE_NODES } from '../../firmware/money/change.js';

export async function xsVend(f: Figures): Promise<number> {
  f.out('Firmware under XS: one complete cash vend (select, bill, coins, dispense, change)');
  // The same bundle loaded but not started: its code and constant tables. On the board these are
  // preloaded into flash by the build (manifests/), so what a change costs in RAM is the rest.
  const emptyHeap = await emptyEngineSlots();
  const codeHeap = await codeSlots(emptyHeap);

  const host = await MachineHost.start(BENCH_MACHINE, { target: 'xs' });
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
    const heap = splitHeap(rest.currentHeapCount, emptyHeap, codeHeap);
    f.record('xs.heapAtRestSlots', heap.total, 'firmware heap at rest, after GC (slots above an empty engine)');
    f.record('xs.codeHeapSlots', heap.code, '  of which code and tables, loaded, not started (flash on the board)');
    f.record('xs.stateHeapSlots', heap.state, '  of which the running firmware\'s state (RAM on the board)');
    f.record('xs.heapGrowthPerVendSlots', (after.currentHeapCount - rest.currentHeapCount) / n, 'heap growth per vend after GC (slots)');
    f.record('xs.computePerVend', Math.round(compute), 'compute per vend, as run behind the bridge (computrons)');
    f.record('xs.cranksPerVend', cranks, 'bridge messages per vend (firmware wake-ups)');
    f.record('xs.bridgeComputePerMessage', Math.round(bridge), 'compute of one empty bridge message (computrons)');
    const own = compute - cranks * bridge;
    f.record('xs.firmwareComputePerVend', Math.round(own), 'compute per vend, firmware alone (bridge subtracted)');
    return own;
  } finally {
    await host.close();
  }
}

/**
 * `bundle`: another build of bench/xs/change-bench.ts (the figures "before" in
 * docs/benchmarks.md come from one built on the previous planner).
 */
export async function xsChange(f: Figures, vendCompute: number | undefined, bundle?: string): Promise<void> {
  const vends = (c: number): string => (vendCompute ? `; ${(c / vendCompute).toFixed(2)} vends` : '');
  f.out('');
  f.out('Change-making under XS: per coin set, the planner\'s buffers, then full tubes at the largest amount and the hardest amount and tubes found');
  const w = new XsWorker({ meteringLimit: 2_000_000_000 });
  const text = (r: { reply: Uint8Array }): string => new TextDecoder().decode(r.reply);
  try {
    await w.evaluate(readFileSync(bundle ?? fileURLToPath(new URL('../../bundle/bench-change.js', import.meta.url)), 'utf8'));
    const base = (await w.evaluate('0')).meter.compute;
    const solve = async (amount: number, counts: number[]): Promise<number> => {
      await w.evaluate(`benchChangeCounts(${JSON.stringify(counts)})`);
      return (await w.evaluate(`benchChangeSolve(${amount})`)).meter.compute - base;
    };
    for (let i = 0; i < CHANGE_CASES.length; i++) {
      const c = CHANGE_CASES[i]!;
      // Only an ArrayBuffer crosses back from XS, so the footprint comes back as text.
      const fp = Number(text(await w.evaluate(`new TextEncoder().encode(String(benchChangeSetup(${c.maxAmount}, ${JSON.stringify(c.values)}))).buffer`)));
      const key = `change.case${i}`;
      f.out(`  ${c.name}, amounts up to ${c.maxAmount}`);
      f.record(`${key}.footprintBytes`, fp, '  planner buffers (bytes)');
      const full = new Array<number>(c.values.length).fill(255);
      const top = await solve(c.maxAmount, full);
      f.record(`${key}.compute.fullTop`, top, `  ${c.maxAmount}, full tubes (computrons${vends(top)})`);
      const hard = hardest(c);
      const worst = await solve(hard.amount, hard.counts);
      f.record(`${key}.compute.hardest`, worst, `  ${hard.amount}, tubes ${hard.counts.join('/')} (${hard.nodes} nodes; computrons${vends(worst)})`);
    }
    // Pathological sets, held to what an MDB changer can report (a coin's credit is one byte: at most 255 units of
    // the set's common divisor; the constructor refuses more). Values all 1 more than a multiple of 7 (the coin
    // count is fixed modulo 7), where the residue bound, built after RESIDUE_AFTER nodes, may be needed.
    const odd = [15, 29, 64, 78, 85, 92, 106, 127, 190, 204, 211];
    await w.evaluate(`benchChangeSetup(12000, ${JSON.stringify(odd)})`);
    const proven = await solve(11993, new Array<number>(16).fill(255));
    f.record('change.pathological.compute', proven, `pathological set (values 7k+1), 11993, full tubes (computrons${vends(proven)})`);
    // Values all 1 more than a multiple of 37, a divisor above the residue bound's largest modulus (32); with 16
    // such values up to 815 the search stopped at its node budget, the six up to 223 a changer can report do not.
    const odd37 = [38, 75, 112, 149, 186, 223];
    await w.evaluate(`benchChangeSetup(12000, ${JSON.stringify(odd37)})`);
    const capped = await solve(11999, new Array<number>(16).fill(255));
    f.record('change.budget.compute', capped, `values 37k+1 (up to 223), 11999, full tubes (computrons${vends(capped)})`);
    // The same set with tubes partly full (with the 16 values up to 815 the search took 1.37 million nodes to find
    // any plan for 6,964 before the guided first plan).
    const mixed = [15, 10, 14, 13, 47, 55];
    const first = await solve(6964, mixed);
    f.record('change.firstPlan.compute', first, `values 37k+1, 6964, tubes ${mixed.join('/')} (computrons${vends(first)})`);
    // Issue 17's last gap: sets mixing two moduli (values 1 mod 37 and 2 mod 41), where the search reaches its
    // budget and the exact fallback settles the plan (before it, paid unproven).
    const last = async (): Promise<string> => {
      // A bundle from before benchChangeLast (--change-bundle) cannot say.
      const [count, proven, nodes, lastNodes] = text(await w.evaluate("typeof benchChangeLast === 'function' ? benchChangeLast() : new TextEncoder().encode('? ? ?').buffer")).split(' ');
      // A bundle from before the last stage sends no fourth field.
      const stage = lastNodes !== undefined && lastNodes !== '0' ? ` (${lastNodes} in the last stage)` : '';
      return `${count} coins, ${proven === '1' ? 'proven' : proven === '0' ? 'unproven' : 'proven?'}, ${nodes} nodes${stage}`;
    };
    const mix = [38, 75, 112, 149, 186, 223, 43, 84, 125, 166, 207, 248];
    const mixTubes = [255, 42, 255, 255, 8, 58, 255, 255, 255, 16, 9, 28];
    await w.evaluate(`benchChangeSetup(12000, ${JSON.stringify(mix)})`);
    const mixed1 = await solve(8509, mixTubes);
    f.record('change.mixed.compute', mixed1, `values 37k+1 and 41k+2, 8509, tubes ${mixTubes.join('/')} (${await last()}; computrons${vends(mixed1)})`);
    const mixFull = [43, 125, 84, 248, 207, 38, 75, 166, 112, 149, 186, 223];
    await w.evaluate(`benchChangeSetup(12000, ${JSON.stringify(mixFull)})`);
    const mixed2 = await solve(10164, new Array<number>(16).fill(255));
    f.record('change.mixedFull.compute', mixed2, `values 37k+1 and 41k+2 (38 ... 248), 10164, full tubes (${await last()}; computrons${vends(mixed2)})`);
    const mixLarge = [223, 248, 186, 207, 149, 166, 112, 125, 75, 84, 38, 43];
    const fp = Number(text(await w.evaluate(`new TextEncoder().encode(String(benchChangeSetup(30000, ${JSON.stringify(mixLarge)}))).buffer`)));
    f.record('change.mixedLarge.footprintBytes', fp, 'values 37k+1 and 41k+2 up to 248, amounts up to 30000: planner buffers (bytes)');
    const mixed3 = await solve(27780, new Array<number>(16).fill(255));
    f.record('change.mixedLarge.compute', mixed3, `  27780, full tubes (${await last()}; computrons${vends(mixed3)})`);
    // The fallback alone at the largest amount: a node budget of 1, so it starts from the guided first plan.
    await w.evaluate(`benchChangeSetup(30000, ${JSON.stringify(mixLarge)}, 1)`);
    const alone = await solve(29999, new Array<number>(16).fill(255));
    f.record('change.fallbackAlone.compute', alone, `  29999, full tubes, node budget 1 (${await last()}; computrons${vends(alone)})`);
    // Some tubes low: the search reaches its budget, the fallback enumerates those tubes.
    await w.evaluate(`benchChangeSetup(30000, ${JSON.stringify(mixLarge)})`);
    const lowTubes = [255, 40, 255, 7, 255, 255, 30, 255, 255, 12, 255, 5];
    const low = await solve(29999, lowTubes);
    f.record('change.mixedLargeLow.compute', low, `  29999, tubes ${lowTubes.join('/')} (${await last()}; computrons${vends(low)})`);
    // The deficit programmes alone (node budget 1; docs/architecture.md), on the largest tables a seeded hunt found
    // among 16 random values up to 255: the least-coins table at 4,086 of its 4,096 byte entries (low tubes), and
    // the counted table at all of its 1,024 words (the largest tube binds).
    const defValues = [236, 192, 221, 90, 207, 72, 2, 189, 222, 148, 77, 225, 205, 127, 210, 254];
    const defTubes = [255, 2, 255, 1, 255, 1, 255, 3, 255, 2, 255, 3, 255, 1, 255, 2];
    await w.evaluate(`benchChangeSetup(30000, ${JSON.stringify(defValues)}, 1)`);
    const def = await solve(28991, defTubes);
    f.record('change.deficitAlone.compute', def, `random 16 (2 ... 254), 28991, tubes ${defTubes.join('/')}, node budget 1 (${await last()}; computrons${vends(def)})`);
    const cntValues = [38, 62, 130, 243, 148, 17, 66, 236, 220, 42, 211, 247, 9, 41, 197, 67];
    const cntTubes = [23, 48, 19, 34, 44, 56, 53, 25, 14, 18, 11, 48, 15, 59, 52, 53];
    await w.evaluate(`benchChangeSetup(30000, ${JSON.stringify(cntValues)}, 1)`);
    const cnt = await solve(15061, cntTubes);
    f.record('change.countedAlone.compute', cnt, `random 16 (9 ... 247), 15061, tubes ${cntTubes.join('/')}, node budget 1 (${await last()}; computrons${vends(cnt)})`);
    // The last stage (the search run again to exhaustion where no table settles the plan) at its most nodes found:
    // the hill-climb's case (bench/change-sweep.ts --climb) at the default node budget, 20,000 search nodes first.
    const lastValues = [136, 1, 194, 66, 175, 64, 72, 137, 178, 69, 65, 138, 133, 112, 63, 223];
    const lastTubes = [147, 138, 53, 133, 0, 2, 1, 240, 45, 68, 106, 122, 1, 0, 3, 3];
    await w.evaluate(`benchChangeSetup(30000, ${JSON.stringify(lastValues)})`);
    const lastStage = await solve(26008, lastTubes);
    f.record('change.lastStage.compute', lastStage, `random 16 (1 ... 223), 26008, tubes ${lastTubes.join('/')}, default node budget (${await last()}; computrons${vends(lastStage)})`);
    // The climb continued from that case (--from, rounds of 300 steps): the most computrons (second round) and the
    // most last-stage nodes (third round) found.
    const worstValues = [136, 1, 194, 66, 68, 64, 72, 137, 178, 69, 65, 138, 133, 2, 134, 223];
    const worstTubes = [225, 2, 53, 231, 163, 1, 1, 43, 45, 183, 3, 111, 1, 0, 2, 3];
    await w.evaluate(`benchChangeSetup(30000, ${JSON.stringify(worstValues)})`);
    const worstStage = await solve(27454, worstTubes);
    f.record('change.lastStageWorst.compute', worstStage, `random 16 (1 ... 223), 27454, tubes ${worstTubes.join('/')}, default node budget (${await last()}; computrons${vends(worstStage)})`);
    const mostValues = [136, 1, 194, 66, 68, 64, 72, 137, 178, 69, 65, 138, 133, 168, 134, 223];
    const mostTubes = [204, 2, 53, 125, 233, 3, 1, 45, 45, 64, 3, 223, 1, 0, 2, 3];
    await w.evaluate(`benchChangeSetup(30000, ${JSON.stringify(mostValues)})`);
    const mostStage = await solve(27316, mostTubes);
    f.record('change.lastStageMostNodes.compute', mostStage, `random 16 (1 ... 223), 27316, tubes ${mostTubes.join('/')}, default node budget (${await last()}; computrons${vends(mostStage)})`);
    // The same plans in slices (as the payout path runs them, one a timer turn): computrons of each slice, the
    // largest (the slice where the search reaches its budget and the exact fallback and the deficit programmes run,
    // not sliced) and the largest of the others.
    const sliced = async (key: string, values: number[], tubes: number[], amount: number): Promise<void> => {
      await w.evaluate(`benchChangeSetup(30000, ${JSON.stringify(values)})`);
      await w.evaluate(`benchChangeCounts(${JSON.stringify(tubes)})`);
      // A bundle from before planning in slices (--change-bundle) cannot say.
      if (text(await w.evaluate('new TextEncoder().encode(typeof benchChangeStart).buffer')) !== 'function') return;
      const each: number[] = [];
      let r = await w.evaluate(`new TextEncoder().encode(String(benchChangeStart(${amount}))).buffer`);
      each.push(r.meter.compute - base);
      while (text(r) === '0') {
        r = await w.evaluate('new TextEncoder().encode(String(benchChangeResume())).buffer');
        each.push(r.meter.compute - base);
      }
      const sorted = each.slice().sort((a, b) => b - a);
      const total = each.reduce((a, b) => a + b, 0);
      f.record(`${key}.slices`, each.length, `  ${amount} in slices of ${SLICE_NODES} nodes (${await last()}): slices`);
      f.record(`${key}.sliceMost`, sorted[0]!, '    the largest slice, with the tables (computrons)');
      f.record(`${key}.sliceOther`, sorted[1] ?? 0, '    the largest of the others (computrons)');
      const at = each.indexOf(sorted[0]!);
      const after = each.slice(at + 1).sort((a, b) => b - a);
      f.record(`${key}.sliceLastStage`, after[0] ?? 0, `    the largest after it (${after.length} slices: the rest of the search, then the last stage; computrons)`);
      f.record(`${key}.sliceMedian`, sorted[sorted.length >> 1]!, '    the median slice (computrons)');
      f.record(`${key}.sliceTotal`, total, '    all slices (computrons)');
    };
    f.out(`Change-making under XS in slices of ${SLICE_NODES} search nodes (the payout path)`);
    await sliced('change.lastStage.sliced', lastValues, lastTubes, 26008);
    await sliced('change.lastStageWorst.sliced', worstValues, worstTubes, 27454);
    f.out('Change-making under XS, typical: USD tubes 5/10/25 (gcd 5), credit up to 50.00, full tubes');
    const tfp = await w.evaluate('new TextEncoder().encode(String(benchChangeSetup(5000, [5, 10, 25, 0]))).buffer');
    f.record('change.typical.footprintBytes', Number(text(tfp)), 'planner buffers (bytes)');
    for (const amount of [25, 375, 4825]) {
      const c = await solve(amount, [255, 255, 255, 255]);
      f.record(`change.typical.compute.${amount}`, c, `plan ${String(amount).padStart(5)} minor units (computrons${vends(c)})`);
    }
  } finally {
    await w.close();
  }
}

export async function xsJournal(f: Figures, vendCompute: number): Promise<void> {
  f.out('');
  f.out('Journal under XS: 64 KiB partition (16 blocks of 4 KiB), filled with unacknowledged sales');
  const w = new XsWorker({ meteringLimit: 2_000_000_000 });
  const text = (r: { reply: Uint8Array }): string => new TextDecoder().decode(r.reply);
  try {
    await w.evaluate(readFileSync(fileURLToPath(new URL('../../bundle/bench-journal.js', import.meta.url)), 'utf8'));
    const fill = JSON.parse(text(await w.evaluate('new TextEncoder().encode(benchJournalFill(64)).buffer'))) as { sales: number; events: number; dropped: number };
    if (fill.dropped !== 0) throw new Error(`${fill.dropped} records dropped while filling the partition`);
    f.record('journal.fullPartitionSales', fill.sales, 'sales held unacknowledged before the partition is full');
    const base = (await w.evaluate('0')).meter.compute;
    const recover = async (): Promise<{ compute: number; records: number; sales: number }> => {
      const rec = await w.evaluate('new TextEncoder().encode(benchJournalRecover()).buffer');
      return { compute: rec.meter.compute - base, ...(JSON.parse(text(rec)) as { records: number; sales: number }) };
    };
    const full = await recover();
    if (full.sales !== fill.sales) throw new Error(`recovery found ${full.sales} sales, ${fill.sales} were made`);
    f.record('journal.recoveryCompute', full.compute, 'recovery of the full partition (computrons)');
    // Replay runs from the newest checkpoint, so the cost peaks just before the next one:
    // measure after each sale over more than a block's worth of sales.
    let worst = full;
    let sellCompute = 0;
    for (let i = 0; i < 40; i++) {
      sellCompute += (await w.evaluate('benchJournalSell()')).meter.compute - base;
      const r = await recover();
      if (r.compute > worst.compute) worst = r;
    }
    f.record('journal.computePerSale', Math.round(sellCompute / 40), 'journaling one cash sale: 7 events and a sync record (computrons)');
    f.record('journal.recoveryWorstCompute', worst.compute, `worst recovery over the next 40 sales (${worst.records} records replayed; computrons)`);
    f.record('journal.recoveryInVends', worst.compute / vendCompute, 'worst recovery compute / firmware compute of one vend', 'vends');
    // The simulated board's 1 MiB partition: recovery reads every header, so it grows with the block count.
    const big = JSON.parse(text(await w.evaluate('new TextEncoder().encode(benchJournalFill(1024)).buffer'))) as { sales: number };
    const bigRecovery = await recover();
    if (bigRecovery.sales !== big.sales) throw new Error(`1 MiB recovery found ${bigRecovery.sales} sales, ${big.sales} were made`);
    f.record('journal.mib.fullPartitionSales', big.sales, '1 MiB partition: sales held unacknowledged when full');
    f.record('journal.mib.recoveryInVends', bigRecovery.compute / vendCompute, '1 MiB partition: recovery compute / one vend', 'vends');
    const h0 = (await w.evaluate('gc()')).meter.currentHeapCount;
    await w.evaluate('benchJournalHold()');
    const h1 = (await w.evaluate('gc()')).meter.currentHeapCount;
    f.record('journal.heapSlots', h1 - h0, 'heap held by an open journal and its ledger, 12 slots (XS slots)');
    f.record('journal.bufferBytes', BENCH_FLASH.blockLength + 1024 + 32, 'its buffers: one block of scratch, CRC table, payload (bytes)');
  } finally {
    await w.close();
  }
}

export async function xsDex(f: Figures, vendCompute: number): Promise<void> {
  f.out('');
  f.out('EVA-DTS audit file under XS: every slot sold from, wall clock known (every PA5 present)');
  const w = new XsWorker({ meteringLimit: 2_000_000_000 });
  try {
    await w.evaluate(readFileSync(fileURLToPath(new URL('../../bundle/bench-dex.js', import.meta.url)), 'utf8'));
    for (const slots of [12, 40, 100]) {
      await w.evaluate(`benchDexSetup(${slots})`);
      const h0 = (await w.evaluate('gc()')).meter.currentHeapCount;
      const base = (await w.evaluate('0')).meter.compute;
      const r = await w.evaluate('new TextEncoder().encode(String(benchDexBuild())).buffer');
      const bytes = Number(new TextDecoder().decode(r.reply));
      const compute = r.meter.compute - base;
      const peak = r.meter.currentHeapCount - h0;
      f.record(`dex.${slots}.bytes`, bytes, `${slots} slots: file size (bytes)`);
      f.record(`dex.${slots}.compute`, compute, `${slots} slots: compute to write it (computrons; ${(compute / vendCompute).toFixed(1)} vends)`);
      f.record(`dex.${slots}.heapSlots`, peak, `${slots} slots: heap in use right after, before GC (XS slots; garbage once sent)`);
    }
  } finally {
    await w.close();
  }
}

/**
 * The downloader under XS (docs/updates.md): a 1.5 MB image in 1 KiB chunks
 * through firmware/update/download.ts, hash included. Compute and heap per
 * chunk, and the heap the download holds while it runs.
 */
export async function xsUpdate(f: Figures, vendCompute: number): Promise<void> {
  f.out('');
  f.out('Firmware download under XS: a 1.5 MB image in 1 KiB chunks, SHA-256 checked as it goes');
  const w = new XsWorker({ meteringLimit: 2_000_000_000 });
  try {
    await w.evaluate(readFileSync(fileURLToPath(new URL('../../bundle/bench-update.js', import.meta.url)), 'utf8'));
    const size = 1_500_000;
    const empty = (await w.evaluate('gc()')).meter.currentHeapCount;
    await w.evaluate(`benchUpdateSetup(${size})`);
    // The setup holds the image itself (a typed array: its bytes are not slots) and the download.
    const held = (await w.evaluate('gc()')).meter.currentHeapCount - empty;
    const base = (await w.evaluate('0')).meter.compute;
    const batch = 100;
    const r = await w.evaluate(`benchUpdateChunks(${batch})`);
    const perChunk = (r.meter.compute - base) / batch;
    const garbage = (r.meter.currentHeapCount - (held + empty)) / batch;
    // What the download keeps while it runs: the heap after a collection, every 100 chunks, at most.
    let kept = held;
    let chunks = batch;
    for (;;) {
      await w.evaluate(`benchUpdateChunks(${batch})`);
      kept = Math.max(kept, (await w.evaluate('gc()')).meter.currentHeapCount - empty);
      chunks += batch;
      if (new TextDecoder().decode((await w.evaluate('new TextEncoder().encode(String(benchUpdateComplete())).buffer')).reply) === '1') break;
      if (chunks > size / 1024 + batch) throw new Error('the download did not complete');
    }
    f.record('update.computePerKiB', Math.round(perChunk), `compute per 1 KiB chunk, hash included (computrons; ${(perChunk / vendCompute).toFixed(3)} vends)`);
    f.record('update.garbagePerKiB', Math.round(garbage * 10) / 10, 'heap allocated per chunk before GC (XS slots)');
    f.record('update.heldSlots', held, 'heap held by a download and its bench image, after GC (XS slots)');
    f.record('update.keptSlots', kept, `heap kept while downloading, after collections (XS slots; most over ${chunks} chunks)`);
  } finally {
    await w.close();
  }
}
