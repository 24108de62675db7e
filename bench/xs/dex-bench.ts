/**
 * Runs inside XS for `npm run bench`: writing the EVA-DTS audit file of a
 * machine with many slots, every slot sold from and the wall clock known
 * (so every PA5 is there): the largest file the firmware makes.
 */
import { buildAudit } from '../../firmware/dex/audit.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';

const g = globalThis as unknown as Record<string, unknown>;
const clock = { t: 0, now(): number { return this.t; } };
let build: (() => Uint8Array) | undefined;

g['benchDexSetup'] = (slots: number): void => {
  const codes = Array.from({ length: slots }, (_, i) => `${String.fromCharCode(65 + Math.floor(i / 10))}${i % 10}`);
  const products = codes.map((c) => `Product ${c} 330ml`);
  const ledger = new Ledger(new Uint16Array(slots).fill(20), new Uint8Array(slots), layoutHash(codes), { prices: new Int32Array(slots).fill(175), capacity: new Uint16Array(slots).fill(20) });
  const j = new Journal(new FlashImage({ size: 256 * 1024, blockLength: 4096, writeAlign: 4 }), ledger, clock);
  j.open();
  ledger.wallOffset = 1764000000;
  for (let i = 0; i < slots * 3; i++) {
    clock.t += 60000;
    j.coinIn(3, 1, 100);
    j.coinIn(3, 1, 100);
    j.vendStart(i % slots, 175);
    j.vendOk(i % slots, 175);
    j.payoutStart(25, [10, 10, 10, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    j.payoutDone(25, 1, [0, 0, 1]);
  }
  const input = { ledger, machineId: 'vm-bench-0001', firmware: '0.1.0', currency: 'USD', decimals: 2, codes, products, coinValues: [5, 10, 25, 100], tubeTypes: 15, billValidator: true, read: 1, wall: 1764100000 };
  build = () => buildAudit(input);
};

g['benchDexBuild'] = (): number => build!().length;
