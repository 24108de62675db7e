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
import { MachineHost } from '../host.js';
import type { MachineSpec } from '../rig.js';
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

type Json = { [key: string]: unknown };
const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const SAMPLE_CHANGER: NonNullable<MachineSpec['changer']> = {
  coins: [
    { value: 5, tube: 60 },
    { value: 10, tube: 60 },
    { value: 25, tube: 60 },
    { value: 100, tube: null },
  ],
};

/**
 * The manifest's sample machine (`machine`: manifests/esp32/machine.json) at rest, as
 * tools/check-manifests.ts holds it to the budgets. The bench's steps
 * (bench/lib/firmware-xs.ts xsVend) on the sample machine: an empty
 * engine's heap after GC as the baseline; the bundle loaded, not started, for the
 * code; the firmware booted under XS; four complete cash vends; GC; the split.
 * `Host` and `bundle`: another tree's simulator host and bundle (bench/lib/heap-split.ts).
 */
export async function sampleHeapAtRest(machine: Json, Host: typeof MachineHost = MachineHost, bundle?: string): Promise<HeapSplit> {
  const slots = (machine['slots'] as { code: string; product: string; price: number; qty?: number; capacity?: number }[]).map((s) => ({ ...s, qty: Math.max(s.qty ?? 0, 20), capacity: Math.max(s.capacity ?? 0, 20) }));
  const vendable = slots.find((s) => s.price > 100 && s.price % 5 === 0);
  if (!vendable) throw new Error('the sample machine needs a slot priced above 1.00 in multiples of 0.05 to vend');
  const spec: MachineSpec = { currency: String(machine['currency'] ?? 'USD'), slots, changer: SAMPLE_CHANGER, bills: [100, 500] };
  const uplink = isJson(machine['uplink']) ? { uplink: { ...machine['uplink'], host: 'broker.invalid' } } : {};
  const baseline = await emptyEngineSlots();
  const code = await codeSlots(baseline, bundle);
  const host = await Host.start(spec, { target: 'xs', config: { ...uplink, ...(machine['maxCredit'] !== undefined ? { maxCredit: machine['maxCredit'] } : {}) } });
  try {
    for (let i = 0; i < 4; i++) {
      const before = host.rig.delivered.length;
      host.select(vendable.code);
      await host.runUntilIdle();
      let due = vendable.price;
      while (due >= 100) {
        host.insertBill(100);
        await host.runUntilIdle();
        due -= 100;
      }
      for (const coin of [25, 10, 5]) {
        while (due >= coin) {
          if (!host.insertCoin(coin)) throw new Error('a coin was refused while measuring');
          await host.runUntilIdle();
          due -= coin;
        }
      }
      const st = await host.runUntilIdle();
      if (host.rig.delivered.length !== before + 1 || st.state !== 'IDLE') throw new Error(`vend ${i} of ${vendable.code} did not complete: ${st.state}`);
    }
    const rest = await host.transport.evaluate!('gc()');
    return splitHeap(rest.currentHeapCount, baseline, code);
  } finally {
    await host.close();
  }
}
