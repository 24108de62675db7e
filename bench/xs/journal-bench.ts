/**
 * Runs inside XS for `npm run bench`: the journal on a RAM flash partition.
 * Fills a partition with unacknowledged sales (the worst case: nothing may be
 * erased), then measures what recovery costs and what a journal holds in RAM.
 */
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';

const g = globalThis as unknown as Record<string, unknown>;
const CODES = ['A1', 'A2', 'A3', 'A4', 'B1', 'B2', 'B3', 'B4', 'C1', 'C2', 'C3', 'C4'];
let flash: FlashImage | undefined;
let held: Journal | undefined;
const clock = { t: 0, now(): number { return this.t; } };

function journal(image: FlashImage): Journal {
  const ledger = new Ledger(new Uint16Array(CODES.length).fill(500), new Uint8Array(CODES.length), layoutHash(CODES));
  return new Journal(image, ledger, clock);
}

/** One cash sale as the controller journals it: coins and a bill in, vend, change out. */
function sale(j: Journal, i: number): void {
  const slot = i % CODES.length;
  j.coinIn(2, 1, 25);
  j.billStacking(100, i & 0x7fff);
  j.billStacked(100);
  j.vendStart(slot, 115);
  j.vendOk(slot, 115);
  j.payoutStart(10, [20, 20, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  j.payoutDone(10, 1, [0, 1]);
}

let live: Journal | undefined;
let sold = 0;

g['benchJournalFill'] = (sizeKiB: number): string => {
  flash = new FlashImage({ size: sizeKiB * 1024, blockLength: 4096, writeAlign: 4 });
  const j = (live = journal(flash));
  j.open();
  sold = 0;
  while (j.level !== 'full') {
    clock.t += 45000;
    sale(j, sold++);
  }
  return JSON.stringify({ sales: sold, events: j.log.lastSeq, dropped: j.dropped, fill: j.log.fill() });
};

/** One more sale, acknowledged at once, so the ring keeps turning with every block in use. */
g['benchJournalSell'] = (): number => {
  const j = live!;
  clock.t += 45000;
  sale(j, sold++);
  j.acknowledge(j.log.lastSeq);
  return j.dropped;
};

g['benchJournalRecover'] = (): string => {
  const j = journal(flash!);
  const report = j.open();
  // A reboot: the recovered journal sells on, so the partition keeps one writer (the old one's next write would land on this boot record).
  live = j;
  return JSON.stringify({ records: report.records, blocks: report.blocks, sales: j.ledger.total[0] });
};

/** Keep one open journal alive so the heap it holds can be measured. */
g['benchJournalHold'] = (): number => {
  held = journal(new FlashImage({ size: 64 * 1024, blockLength: 4096, writeAlign: 4 }));
  held.open();
  return held.log.lastSeq;
};
