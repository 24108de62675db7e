import { UpdatePhase } from '../../firmware/journal/vocabulary.js';
import * as Checkpoint from '../../firmware/journal/checkpoint.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { R_VEND_FAIL, R_VEND_OK } from '../../firmware/journal/records.js';
import { Counter, COUNTERS } from '../../firmware/journal/vocabulary.js';
import { FlashImage, type FlashGeometry } from '../../hal-sim/guest/flash-image.js';
import { deepEqual, equal, ok, prng, throws } from '../lib/assert.js';

const SMALL: FlashGeometry = { size: 16 * 1024, blockLength: 1024, writeAlign: 4 };
/** Small blocks, so a short run turns the ring over. */
const TINY: FlashGeometry = { size: 12 * 1024, blockLength: 1024, writeAlign: 4 };
const CODES = ['A1', 'A2', 'B1', 'B2'];

interface Rig {
  flash: FlashImage;
  journal: Journal;
  ledger: Ledger;
  clock: { t: number; now(): number };
}

function boot(flash: FlashImage, codes = CODES, stock = 50): Rig & { report: ReturnType<Journal['open']> } {
  const clock = { t: 0, now(): number { return this.t; } };
  const qty = new Uint16Array(codes.length).fill(stock);
  const ledger = new Ledger(qty, new Uint8Array(codes.length), layoutHash(codes));
  const journal = new Journal(flash, ledger, clock);
  const report = journal.open();
  return { flash, journal, ledger, clock, report };
}

/** The books as plain numbers, without the boot counter (every recovery adds a boot). */
function books(l: Ledger): number[] {
  const out: number[] = [l.credit, l.openVend, l.openPayout, l.openStack];
  for (let i = 0; i < COUNTERS; i++) if (i !== Counter.BOOTS) out.push(l.total[i]!);
  for (let s = 0; s < l.slots; s++) out.push(l.qty[s]!, l.fault[s]!, l.slotSales[s]!);
  for (let t = 0; t < 16; t++) out.push(l.tubes[t]!);
  return out;
}

/**
 * A busy, seeded stream of purchases: coins, bills, vends that succeed or
 * fail, payouts, and (when `ackEvery` is set) gateway acknowledgements so the
 * log turns over and old blocks are erased.
 */
function workload(r: Rig, steps: number, seed: number, ackEvery: number, after?: () => void): void {
  const rnd = prng(seed);
  const tubes = new Uint8Array(16);
  tubes[0] = 40;
  tubes[1] = 30;
  for (let i = 0; i < steps; i++) {
    r.clock.t += 1000 + Math.floor(rnd() * 60000);
    const j = r.journal;
    const slot = Math.floor(rnd() * CODES.length);
    const price = 75 + 25 * Math.floor(rnd() * 6);
    while (r.ledger.credit < price) {
      if (rnd() < 0.3) {
        j.billStacking(100, i);
        j.billStacked(100);
      } else {
        j.coinIn(rnd() < 0.5 ? 0 : 1, 1, rnd() < 0.5 ? 25 : 100);
      }
    }
    j.vendStart(slot, price);
    if (rnd() < 0.9 && r.ledger.qty[slot]! > 0) j.vendOk(slot, price);
    else j.vendFailed(slot, 1);
    const credit = r.ledger.credit;
    if (credit > 0) {
      j.payoutStart(credit, tubes);
      j.payoutDone(credit, 1, [0, 1]);
    }
    if (ackEvery > 0 && i % ackEvery === ackEvery - 1) j.acknowledge(r.journal.log.lastSeq);
    after?.();
  }
}

describe('flash journal', () => {
  it('rebuilds the books after a reboot exactly as they were', () => {
    const flash = new FlashImage(SMALL);
    const a = boot(flash);
    ok(a.report.fresh, 'a blank partition is a new journal');
    workload(a, 30, 1, 0);
    const before = books(a.ledger);
    const lastSeq = a.journal.log.lastSeq;
    const b = boot(new FlashImage(SMALL, flash.bytes));
    ok(!b.report.fresh);
    equal(b.report.corrupt, 0);
    equal(b.report.missing, 0);
    equal(JSON.stringify(books(b.ledger)), JSON.stringify(before));
    equal(b.journal.log.lastSeq, lastSeq + 1, 'the boot is the next event');
    equal(b.ledger.total[Counter.BOOTS], 1);
    ok(b.ledger.balanced(), 'money in = sales + paid out + credit');
    equal(b.report.blocks, flash.eraseCounts.filter((n) => n > 0).length, 'the blocks in use, and no free ones');
    ok(Math.abs(b.journal.log.fill() - a.journal.log.fill()) <= 1, `fill ${b.journal.log.fill()}% after the reboot, ${a.journal.log.fill()}% before`);
    ok(b.journal.log.fill() >= 0);
  });

  it('turns over the ring once events are acknowledged, with even wear', () => {
    const flash = new FlashImage(SMALL);
    const r = boot(flash);
    workload(r, 1500, 2, 5);
    const counts = Array.from(flash.eraseCounts);
    const max = Math.max(...counts);
    const min = Math.min(...counts);
    ok(max >= 10, `the ring turned over many times (max erases ${max})`);
    ok(max - min <= 1, `erase counts within one of each other: ${counts.join(',')}`);
    const again = boot(new FlashImage(SMALL, flash.bytes));
    equal(JSON.stringify(books(again.ledger)), JSON.stringify(books(r.ledger)), 'recovered from the newest checkpoint');
    ok(again.ledger.total[Counter.SALES]! > 150, `${again.ledger.total[Counter.SALES]} sales`);
  });

  it('erases ahead at quiet moments, so that appends only write; wear and books as without', () => {
    const flash = new FlashImage(SMALL);
    const r = boot(flash);
    let quiet = false;
    let inAppend = 0;
    let ahead = 0;
    flash.onOp = (op) => {
      if (op.kind !== 'erase') return;
      if (quiet) ahead++;
      else inAppend++;
    };
    workload(r, 1500, 2, 5, () => {
      quiet = true;
      r.journal.prepare();
      quiet = false;
    });
    equal(inAppend, 0, 'no append erased a block');
    ok(ahead >= 10 * (SMALL.size / SMALL.blockLength), `the ring turned over by erases ahead (${ahead})`);
    equal(r.journal.prepare(), false, 'nothing more to erase until the head moves on');
    const counts = Array.from(flash.eraseCounts);
    ok(Math.max(...counts) - Math.min(...counts) <= 1, `erase counts within one of each other: ${counts.join(',')}`);
    const again = boot(new FlashImage(SMALL, flash.bytes));
    equal(JSON.stringify(books(again.ledger)), JSON.stringify(books(r.ledger)), 'recovered from the newest checkpoint');
    // Unacknowledged history is never erased ahead: with nothing acknowledged, the ring fills and stops.
    const full = boot(new FlashImage(SMALL));
    for (let i = 0; i < 3000 && full.journal.level !== 'full'; i++) workload(full, 1, 500 + i, 0, () => full.journal.prepare());
    equal(full.journal.level, 'full');
    const kept = boot(new FlashImage(SMALL, full.flash.bytes));
    equal(JSON.stringify(books(kept.ledger)), JSON.stringify(books(full.ledger)));
    equal(kept.journal.status().unsynced, full.journal.status().unsynced + 1, 'every unacknowledged event is still there (and the boot)');
  });

  it('erases nothing ahead before the journal has been read', () => {
    const flash = new FlashImage(SMALL);
    const r = boot(flash);
    workload(r, 20, 4, 0);
    const clock = { t: 0, now(): number { return this.t; } };
    const ledger = new Ledger(new Uint16Array(CODES.length).fill(50), new Uint8Array(CODES.length), layoutHash(CODES));
    const early = new Journal(new FlashImage(SMALL, flash.bytes), ledger, clock);
    equal(early.prepare(), false);
    early.open();
    equal(JSON.stringify(books(ledger)), JSON.stringify(books(r.ledger)));
  });

  it('stops taking new events only when the unacknowledged history fills the partition, and says so first', () => {
    const flash = new FlashImage(SMALL);
    const r = boot(flash);
    let sawLow = false;
    let steps = 0;
    while (r.journal.level !== 'full' && steps < 5000) {
      workload(r, 1, 100 + steps, 0);
      if (r.journal.level === 'low') sawLow = true;
      steps++;
    }
    equal(r.journal.level, 'full');
    ok(sawLow, 'the journal reported itself nearly full before it was full');
    equal(r.journal.dropped, 0, 'the reserve took every record of the purchases under way');
    const unsynced = r.journal.status().unsynced;
    ok(unsynced > 300, `history kept: ${unsynced} events`);
    // A purchase under way when the level turned still fits in the reserve.
    workload(r, 3, 7, 0);
    equal(r.journal.dropped, 0);
    // Once the gateway acknowledges, the oldest blocks can go and sales resume.
    r.journal.acknowledge(r.journal.log.lastSeq);
    workload(r, 40, 8, 0);
    equal(r.journal.dropped, 0);
    ok(r.journal.level !== 'full', `level after acknowledgement: ${r.journal.level}`);
    // Nothing acknowledged was needed: the books still come back whole.
    const again = boot(new FlashImage(SMALL, flash.bytes));
    equal(JSON.stringify(books(again.ledger)), JSON.stringify(books(r.ledger)));
  });

  it('never takes a torn write for data: a power cut at every flash operation, at several points within it', () => {
    const STEPS = 70;
    // Reference run: the books after every event, and the length of every flash operation.
    const ref = new FlashImage(TINY);
    const lengths: number[] = [];
    ref.onOp = (op, index) => {
      lengths[index] = op.kind === 'write' ? op.data.length : (op.last - op.first + 1) * TINY.blockLength;
    };
    const r = boot(ref);
    const states: string[] = [];
    const apply = r.ledger.apply.bind(r.ledger);
    r.ledger.apply = (type, d, o, len) => {
      apply(type, d, o, len);
      states[r.journal.log.lastSeq] = JSON.stringify(books(r.ledger));
    };
    states[r.journal.log.lastSeq] = JSON.stringify(books(r.ledger));
    // Every other step erases ahead (as the firmware does between MDB exchanges), so cuts land in those erases too.
    const quietly = (j: Journal): (() => void) => {
      let step = 0;
      return () => {
        if (step++ % 2 === 1) j.prepare();
      };
    };
    workload(r, STEPS, 3, 4, quietly(r.journal));
    const total = ref.ops;
    ok(ref.eraseCounts.some((n) => n > 1), 'the run turned the ring over, so cuts land in erases and checkpoints too');
    equal(r.journal.dropped, 0, 'the reference run never ran out of room');
    let checked = 0;
    for (let op = 0; op < total; op++) {
      const len = lengths[op]!;
      for (const bytes of new Set([0, 1, len >> 1, len - 1, len])) {
        const flash = new FlashImage(TINY);
        const c = boot(flash);
        if (op < flash.ops) continue;
        flash.cutAt(op, bytes);
        throws(() => workload(c, STEPS, 3, 4, quietly(c.journal)), /power cut/);
        const done = c.journal.log.lastSeq;
        const after = boot(new FlashImage(TINY, flash.bytes));
        const recovered = after.journal.log.lastSeq - 1;
        const where = `cut at op ${op} after ${bytes} of ${len} bytes`;
        // Either the event being written made it whole, or it does not count at all.
        ok(recovered === done || recovered === done + 1, `${where}: recovered to event ${recovered}, ${done} were complete`);
        equal(after.report.missing, 0, `${where}: no event missing`);
        equal(JSON.stringify(books(after.ledger)), states[recovered], `${where}: books as after event ${recovered}`);
        checked++;
      }
    }
    ok(checked > 1500, `${checked} cuts checked`);
  });

  it('keeps the first byte of a torn vend outcome so recovery knows which it was', () => {
    for (const [type, write] of [
      [R_VEND_OK, (j: Journal) => j.vendOk(1, 150)],
      [R_VEND_FAIL, (j: Journal) => j.vendFailed(1, 1)],
    ] as const) {
      const flash = new FlashImage(SMALL);
      const r = boot(flash);
      r.journal.coinIn(0, 1, 25);
      r.journal.vendStart(1, 150);
      flash.cutAt(flash.ops, 1);
      throws(() => write(r.journal), /power cut/);
      const after = boot(new FlashImage(SMALL, flash.bytes));
      equal(after.report.tornType, type);
      equal(after.ledger.openVend, 1, 'the vend is open: its outcome was not recorded');
    }
  });

  it('repairs a record or header with one flipped bit, and never misreads a damaged one', () => {
    const rnd = prng(9);
    let repaired = 0;
    for (let trial = 0; trial < 40; trial++) {
      const flash = new FlashImage(SMALL);
      const r = boot(flash);
      workload(r, 20, 11, 0);
      const good = books(r.ledger);
      const used = flash.bytes.findLastIndex((b) => b !== 0xff);
      const at = Math.floor(rnd() * used);
      flash.flipBit(at, Math.floor(rnd() * 8));
      const after = boot(new FlashImage(SMALL, flash.bytes));
      const got = books(after.ledger);
      if (after.report.tornType < 0) {
        // In padding or erased space, or repaired: nothing may change.
        equal(after.report.corrupt + after.report.missing, 0, `flip at ${at}: one flipped bit is always repaired`);
        equal(JSON.stringify(got), JSON.stringify(good), `flip at ${at} changed the books`);
        if (after.report.repaired > 0) repaired++;
      } else {
        // The newest record damaged looks like a torn write: it is dropped, never misread.
        // A lost record can only take away: never more sales or revenue than were made.
        ok(after.ledger.total[Counter.SALES]! <= r.ledger.total[Counter.SALES]!, `flip at ${at}: sales ${after.ledger.total[Counter.SALES]} > ${r.ledger.total[Counter.SALES]}`);
        ok(after.ledger.total[Counter.REVENUE]! <= r.ledger.total[Counter.REVENUE]!, `flip at ${at}: revenue grew`);
        ok(after.ledger.total[Counter.PAID_VALUE]! <= r.ledger.total[Counter.PAID_VALUE]!, `flip at ${at}: payouts grew`);
      }
    }
    // The rest land in checkpoints (a damaged one gives way to an older one and a longer replay), padding or older blocks.
    ok(repaired >= 10, `${repaired} of 40 flips repaired`);
  });

  it("repairs one flipped bit in an older block's last record, and ignores one in its erased rest", () => {
    const flash = new FlashImage(SMALL);
    const r = boot(flash);
    workload(r, 12, 11, 0);
    const good = books(r.ledger);
    // No wrap yet: the blocks fill in order, and every used block but the last is older than the head.
    const bl = SMALL.blockLength;
    const used = Array.from({ length: SMALL.size / bl }, (_, b) => b).filter((b) => flash.bytes[b * bl] !== 0xff);
    ok(used.length >= 3 && used[used.length - 1] === used.length - 1, `blocks 0..${used.length - 1} in use, no wrap`);
    // An older block with erased space after its last record.
    const ends = used.slice(0, -1).map((b) => {
      let data = (b + 1) * bl;
      while (flash.bytes[data - 1] === 0xff) data--;
      return { b, data };
    });
    const older = ends.find((e) => e.data < (e.b + 1) * bl - 8);
    ok(older, 'an older block has erased space after its last record');
    const data = older!.data;
    for (const [at, what] of [
      [data - 6, 'the last record'],
      [data + 4, 'the erased rest'],
    ] as const) {
      const copy = new FlashImage(SMALL, flash.bytes);
      copy.flipBit(at, 3);
      const after = boot(new FlashImage(SMALL, copy.bytes));
      equal(after.report.corrupt + after.report.missing, 0, `a flip in ${what} loses nothing`);
      equal(after.report.repaired, what === 'the last record' ? 1 : 0, `a flip in ${what}: repairs`);
      equal(JSON.stringify(books(after.ledger)), JSON.stringify(good), `a flip in ${what} changes no books`);
    }
  });

  it('keeps an open firmware update in checkpoints (version 7), with and without a reader, and drops it once closed', () => {
    for (const cashless of [false, true]) {
      const ledger = new Ledger(new Uint16Array(3), new Uint8Array(3), layoutHash(CODES), { cashless });
      const journal = new Journal(new FlashImage(SMALL), ledger, { now: () => 0 });
      journal.open();
      const closed = ledger.checkpointLength;
      const sha = new Uint8Array(32).fill(0x5a);
      journal.updateBegin(9, 0x0002000, 300_000, 1, 1, sha);
      journal.updateProgress(9, 0x10000, new Uint8Array(32).fill(7));
      journal.update(9, UpdatePhase.DOWNLOADED, 0, 0x0002000);
      equal(ledger.checkpointLength, closed + Checkpoint.UPDATE_STATE, 'an open update adds its section');
      const cp = new Uint8Array(ledger.checkpointLength);
      equal(ledger.save(cp), cp.length);
      const copy = new Ledger(new Uint16Array(3), new Uint8Array(3), layoutHash(CODES), { cashless });
      ok(copy.load(cp, 0, cp.length));
      deepEqual([copy.update.n, copy.update.size, copy.update.flags, copy.update.phase, copy.update.offset], [9, 300_000, 1, UpdatePhase.DOWNLOADED, 0x10000]);
      deepEqual(copy.update.sha256, sha);
      deepEqual(copy.update.state, new Uint8Array(32).fill(7));
      journal.update(9, UpdatePhase.CONFIRMED, 0, 0x0002000);
      equal(ledger.checkpointLength, closed, 'closed: the section is gone');
      const after = new Uint8Array(ledger.checkpointLength);
      ledger.save(after);
      const again = new Ledger(new Uint16Array(3), new Uint8Array(3), layoutHash(CODES), { cashless });
      ok(again.load(after, 0, after.length));
      equal(again.update.n, 0);
    }
  });

  it('reads a checkpoint of the firmware before remote commands (version 2), keeping the configured prices', () => {
    const codes = ['A1', 'A2'];
    const layout = layoutHash(codes);
    // The books as this firmware checkpoints them, cut down to what version 2 wrote: the same
    // head, 16 counters, each slot's stock, fault and sales only, nothing after the slots.
    const now = new Ledger(new Uint16Array([3, 8]), new Uint8Array(2), layout, { prices: new Int32Array([90, 95]) });
    now.credit = 150;
    now.synced = 7;
    now.tubes[0] = 12;
    now.total[Counter.SALES] = 9;
    now.interim[Counter.SALES] = 4;
    now.slotSales[0] = 5;
    now.total[Counter.REMOTE_SALES] = 2; // a counter version 2 did not have
    now.commandHigh = 40; // command state version 2 did not have
    const v6 = new Uint8Array(now.checkpointLength);
    now.save(v6);
    const counters = Checkpoint.FIXED + Checkpoint.COUNTERS_V2 * Checkpoint.COUNTER;
    const slots = Checkpoint.FIXED + Checkpoint.SECTION_COUNTERS * Checkpoint.COUNTER;
    const v2 = new Uint8Array(counters + 2 * Checkpoint.PER_SLOT_V2);
    v2.set(v6.subarray(0, counters));
    v2[0] = 2; // the version opens the checkpoint
    for (let s = 0; s < 2; s++) {
      const slot = slots + s * Checkpoint.PER_SLOT;
      v2.set(v6.subarray(slot, slot + Checkpoint.PER_SLOT_V2), counters + s * Checkpoint.PER_SLOT_V2);
    }
    const prices = new Int32Array([125, 175]);
    const ledger = new Ledger(new Uint16Array(2), new Uint8Array(2), layout, { prices });
    ok(ledger.load(v2, 0, v2.length), 'a version 2 checkpoint loads');
    equal(ledger.credit, 150);
    equal(ledger.synced, 7);
    equal(ledger.openVend, -1);
    equal(ledger.tubes[0], 12);
    equal(ledger.total[Counter.SALES], 9);
    equal(ledger.interim[Counter.SALES], 4);
    equal(ledger.total[Counter.REMOTE_SALES], 0);
    equal(Array.from(ledger.qty).join(','), '3,8');
    equal(ledger.slotSales[0], 5);
    equal(Array.from(prices).join(','), '125,175', 'prices stay as configured');
    equal(ledger.commandHigh, 0);
    ok(!ledger.load(v2, 0, v2.length - 1), 'a short one is refused');
  });

  it('carries the money over but not the stock when the slot layout changed', () => {
    const flash = new FlashImage(SMALL);
    const r = boot(flash);
    workload(r, 10, 4, 0);
    const after = boot(new FlashImage(SMALL, flash.bytes), ['A1', 'A2', 'C1'], 7);
    ok(after.report.layoutChanged);
    equal(after.ledger.total[Counter.SALES], r.ledger.total[Counter.SALES]);
    equal(after.ledger.credit, r.ledger.credit);
    equal(Array.from(after.ledger.qty).join(','), '7,7,7');
  });

  it('refuses partitions too small for its checkpoints, with the reason', () => {
    throws(() => boot(new FlashImage({ size: 2048, blockLength: 1024, writeAlign: 4 })), /too small/);
  });
});
