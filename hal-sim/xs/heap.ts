/**
 * The firmware's heap at rest under XS, split the way the ESP32 keeps it.
 *
 * The build preloads every firmware module (manifests/esp32, "preload"): XS
 * runs the module bodies at build time and keeps what they made (functions,
 * classes, module-level tables) in flash. What the firmware makes when it
 * starts and runs is in RAM. Under xsnap both are in the one heap, so:
 *
 * - code: the bundle loaded into a fresh engine, nothing started (the bundle's
 *   entry makes its guest at the first message), after GC, above an empty
 *   engine: what the device holds in flash;
 * - state: a started machine at rest after GC, above an empty engine, minus
 *   the code: what the device holds in its RAM slot heap.
 */
import { firmwareBundle } from '../transport.js';
import { XsWorker } from './xsnap.js';

export interface HeapSplit {
  /** Slots above an empty engine, code and state together (the figure kept before the split). */
  total: number;
  /** The bundle's modules loaded, not started (flash on the board). */
  code: number;
  /** The running firmware's objects (RAM on the board). */
  state: number;
}

/** Slots of an engine with nothing loaded, after GC. */
export async function emptyEngineSlots(): Promise<number> {
  const empty = new XsWorker();
  try {
    return (await empty.evaluate('gc()')).meter.currentHeapCount;
  } finally {
    await empty.close();
  }
}

/** Slots the image's modules take once loaded, not started, after GC, above `empty`. */
export async function codeSlots(empty: number, source: string = firmwareBundle()): Promise<number> {
  const loaded = new XsWorker();
  try {
    await loaded.evaluate(source);
    return (await loaded.evaluate('gc()')).meter.currentHeapCount - empty;
  } finally {
    await loaded.close();
  }
}

/** The split for a machine at rest whose engine held `restSlots` after GC. */
export function splitHeap(restSlots: number, empty: number, code: number): HeapSplit {
  const total = restSlots - empty;
  return { total, code, state: total - code };
}
