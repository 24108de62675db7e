/**
 * Flash that fails (issue 17): writes the chip refuses, erases it refuses,
 * stuck bits and blocks that wear out. The journal reads every write back,
 * seals or skips the block and goes on; nothing written before is lost, and
 * a partition with too few working blocks stops the journal ('fault').
 * Runs in Node and under XS.
 */
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { FlashLog } from '../../firmware/journal/log.js';
import { isMeta } from '../../firmware/journal/records.js';
import { Counter, COUNTERS } from '../../firmware/journal/vocabulary.js';
import { FlashImage, type FlashFaults, type FlashGeometry } from '../../hal-sim/guest/flash-image.js';
import { equal, ok, prng } from '../lib/assert.js';

const TINY: FlashGeometry = { size: 12 * 1024, blockLength: 1024, writeAlign: 4 };
const CODES = ['A1', 'A2', 'B1', 'B2'];

interface Rig {
  journal: Journal;
  ledger: Ledger;
  clock: { t: number; now(): number };
}

function boot(flash: FlashImage): Rig {
  const clock = { t: 0, now(): number { return this.t; } };
  const ledger = new Ledger(new Uint16Array(CODES.length).fill(50), new Uint8Array(CODES.length), layoutHash(CODES));
  const journal = new Journal(flash, ledger, clock);
  journal.open();
  return { journal, ledger, clock };
}

function books(l: Ledger): string {
  const out: number[] = [l.credit, l.openVend, l.openPayout, l.openStack];
  for (let i = 0; i < COUNTERS; i++) if (i !== Counter.BOOTS) out.push(l.total[i]!);
  for (let s = 0; s < l.slots; s++) out.push(l.qty[s]!, l.slotSales[s]!);
  return JSON.stringify(out);
}

/** Seeded purchases, acknowledged every few so the ring turns over; stops early once the journal stops. */
function workload(r: Rig, steps: number, seed: number, ackEvery = 4): void {
  const rnd = prng(seed);
  for (let i = 0; i < steps && !r.journal.stopped; i++) {
    r.clock.t += 1000 + Math.floor(rnd() * 60000);
    const j = r.journal;
    const slot = Math.floor(rnd() * CODES.length);
    const price = 75 + 25 * Math.floor(rnd() * 6);
    while (r.ledger.credit < price) j.coinIn(rnd() < 0.5 ? 0 : 1, 1, rnd() < 0.5 ? 25 : 100);
    j.vendStart(slot, price);
    j.vendOk(slot, price);
    const credit = r.ledger.credit;
    if (credit > 0) {
      j.payoutStart(credit, [40, 30]);
      j.payoutDone(credit, 1, [0, 1]);
    }
    if (i % ackEvery === ackEvery - 1) j.acknowledge(j.log.lastSeq);
    if (i % 2 === 1) j.prepare();
  }
}

/** Run with `faults`, reboot on the same partition: every event and the books come back, as the run left them. */
function survives(faults: FlashFaults, steps: number, seed: number): { r: Rig; after: Rig; flash: FlashImage } {
  const flash = new FlashImage(TINY, undefined, faults);
  const r = boot(flash);
  workload(r, steps, seed);
  equal(r.journal.dropped, 0, 'no record was lost to the faults');
  const after = boot(flash.copy());
  equal(after.journal.log.lastSeq, r.journal.log.lastSeq + 1, 'the boot follows the last event: none lost, none reused');
  equal(books(after.ledger), books(r.ledger), 'the books come back as they were');
  ok(after.ledger.balanced(), 'money in = sales + paid out + credit');
  // Every event still in flash, consecutive from the oldest kept to the newest.
  let last = -1;
  let missing = 0;
  new FlashLog(flash.copy(), () => 0).recover((type, seq) => {
    if (isMeta(type)) return;
    if (last >= 0 && seq !== last + 1) missing++;
    last = seq;
  }, true);
  equal(missing, 0, 'no gap in the events kept');
  equal(last, r.journal.log.lastSeq);
  return { r, after, flash };
}

describe('flash that fails', () => {
  it('goes on in the next block when the chip refuses a write, and counts it', () => {
    // Block 2 refuses every write on its first use: its header, so the head skips it.
    // Block 5 refuses writes on its second use, when the ring comes back to it.
    const { r, flash } = survives({ failWrites: [[2, 1], [5, 2]] }, 120, 1);
    ok(flash.eraseCounts[5]! >= 2, 'the ring came back to block 5');
    ok(r.journal.status().faults >= 2, `${r.journal.status().faults} faults counted`);
    equal(r.journal.level === 'fault', false, 'two bad blocks of twelve: the journal goes on');
  });

  it('skips a block whose erase fails, before and after a reboot', () => {
    const { r, after } = survives({ failErases: [[3, -1], [7, 1]] }, 120, 2);
    ok(r.journal.status().faults >= 2, `${r.journal.status().faults} faults counted`);
    ok(r.journal.log.badBlocks >= 2, `${r.journal.log.badBlocks} bad blocks`);
    // After the reboot the journal still writes past the bad block.
    workload(after, 40, 3);
    equal(after.journal.dropped, 0);
  });

  it('rewrites a record a stuck bit spoiled (bits stuck at 1 and at 0)', () => {
    const stuck: [number, number, 0 | 1][] = [];
    // Bit 0 stuck at 1 over 8 bytes of block 1, bit 7 stuck at 0 over 8 bytes of block 4: more than one bit of a record, beyond repair.
    for (let i = 0; i < 8; i++) stuck.push([1 * 1024 + 300 + i, 0, 1], [4 * 1024 + 500 + i, 7, 0]);
    const { r } = survives({ stuck }, 120, 4);
    ok(r.journal.status().faults >= 2, `${r.journal.status().faults} faults counted: both stuck spans spoiled a write`);
  });

  it('stops with a storage fault once blocks wear out, keeping every event written', () => {
    const flash = new FlashImage(TINY, undefined, { wearLimit: 4 });
    const r = boot(flash);
    const states: string[] = [];
    const apply = r.ledger.apply.bind(r.ledger);
    let written = r.journal.log.lastSeq;
    r.ledger.apply = (type, d, o, len) => {
      apply(type, d, o, len);
      // Books as of each event that reached flash (a record the worn journal could not write does not count).
      if (r.journal.log.lastSeq > written) states[(written = r.journal.log.lastSeq)] = books(r.ledger);
    };
    let steps = 0;
    while (!r.journal.stopped && steps < 2000) {
      workload(r, 1, 10 + steps, 1);
      steps++;
    }
    equal(r.journal.level, 'fault', `the journal stopped after ${steps} purchases`);
    ok(r.journal.status().faults > 0);
    // What was written stays: a reboot on the worn partition finds every event and the books as after the last one.
    const after = boot(flash.copy());
    ok(after.journal.log.lastSeq >= r.journal.log.lastSeq, `recovered to ${after.journal.log.lastSeq}, ${r.journal.log.lastSeq} written`);
    equal(books(after.ledger), states[r.journal.log.lastSeq], 'books as after the last event written');
    equal(after.journal.level, 'fault', 'after the reboot too');
  });
});
