/**
 * The firmware's heap at rest split as the ESP32 holds it (hal-sim/xs/heap.ts):
 * code and tables (the bundle loaded, nothing started; flash on the board)
 * and the running state (RAM), for the bench's machine and the manifest's
 * sample machine, of this tree or of another worktree built beside it
 * (`npm run bench -- --heap-only [--heap-root DIR]`; docs/benchmarks.md
 * compares the trees before and after a change this way).
 *
 * Another tree is measured with its own bundle, simulator host and sample
 * machine. A tree from before the guest was made at the first message
 * (hal-sim/guest/entry.ts) counts the simulator's board as code: give it that
 * change before building it.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { MachineHost } from '../../hal-sim/host.js';
import { codeSlots, emptyEngineSlots, sampleHeapAtRest, splitHeap, type HeapSplit } from '../../hal-sim/xs/heap.js';
import { XsWorker } from '../../hal-sim/xs/xsnap.js';
import { BENCH_MACHINE, vend } from './bench-machine.js';
import type { Figures } from './figures.js';

/** This tree: the repository root above dist/bench/lib. */
export const THIS_TREE = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** The bench's machine after four vends (xsVend's steps up to its rest figure). */
async function benchSplit(Host: typeof MachineHost, bundle: string): Promise<HeapSplit> {
  const empty = await emptyEngineSlots();
  const code = await codeSlots(empty, bundle);
  const host = await Host.start(BENCH_MACHINE, { target: 'xs' });
  try {
    for (let i = 0; i < 4; i++) await vend(host, i);
    return splitHeap((await host.transport.evaluate!('gc()')).currentHeapCount, empty, code);
  } finally {
    await host.close();
  }
}

/** What making the guest (at a first, empty message) adds to the loaded bundle, after GC: the simulator's board, the device board's stand-in. */
async function guestSlots(bundle: string): Promise<number> {
  const w = new XsWorker();
  try {
    await w.evaluate(bundle);
    const loaded = (await w.evaluate('gc()')).meter.currentHeapCount;
    await w.evaluate(`vendfleetGuest.deliverJson('{"t":0}')`);
    return (await w.evaluate('gc()')).meter.currentHeapCount - loaded;
  } finally {
    await w.close();
  }
}

export async function heapSplitBench(f: Figures, root: string = THIS_TREE): Promise<void> {
  f.out(`Heap at rest under XS, split as the board holds it (slots above an empty engine): ${root}`);
  const Host = ((await import(pathToFileURL(join(root, 'dist/hal-sim/host.js')).href)) as { MachineHost: typeof MachineHost }).MachineHost;
  const bundle = readFileSync(join(root, 'dist/bundle/firmware.js'), 'utf8');
  const machine = JSON.parse(readFileSync(join(root, 'manifests/esp32/machine.json'), 'utf8')) as { [key: string]: unknown };
  const bench = await benchSplit(Host, bundle);
  const sample = await sampleHeapAtRest(machine, Host, bundle);
  f.record('heap.codeSlots', bench.code, 'code and tables, loaded, not started (flash on the board)');
  f.record('heap.bench.stateSlots', bench.state, 'bench machine: running state (RAM on the board)');
  f.record('heap.bench.totalSlots', bench.total, 'bench machine: both (xs.heapAtRestSlots)');
  f.record('heap.sample.stateSlots', sample.state, 'sample machine with its uplink: running state (RAM)');
  f.record('heap.sample.totalSlots', sample.total, 'sample machine with its uplink: both');
  f.record('heap.guestSlots', await guestSlots(bundle), 'of the state, the simulator\'s guest and board');
}
