/**
 * The application slots' model (hal-sim/firmware-slots.ts): ESP-IDF's
 * bootloader with rollback enabled, flash written in order and erased block
 * by block, and power cuts at every operation of an update. Small slots and
 * small images, so every cut point of a whole update is checked.
 */
import { strict as assert } from 'node:assert';
import { formatImageDescription } from '../../firmware/image.js';
import { AppSlots, type ResetCause, type SlotGeometry, type SlotOp } from '../../hal-sim/firmware-slots.js';
import { PowerCut } from '../../hal-sim/guest/flash-image.js';
import { Random } from '../../hal-sim/scheduler.js';

const GEOMETRY: SlotGeometry = { slotSize: 64 * 1024, blockLength: 4096 };

/** An image of `length` bytes: its description, then bytes that say which version they belong to. */
function image(version: string, length = 10_000): Uint8Array {
  const head = new TextEncoder().encode(formatImageDescription({ version, journal: 1 }));
  const out = new Uint8Array(length);
  out.set(head);
  const seed = version.split('.').reduce((a, v) => a * 31 + Number(v), 7);
  for (let i = head.length; i < length; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

/** Write `img` into the inactive slot in chunks of `chunk` bytes from `offset`, and complete it. */
function update(slots: AppSlots, img: Uint8Array, chunk = 1000, offset = 0): void {
  slots.open(img.length, offset);
  for (let at = offset; at < img.length; at += chunk) slots.write(img.subarray(at, Math.min(img.length, at + chunk)));
  slots.complete();
}

function fresh(): AppSlots {
  const slots = new AppSlots(image('0.1.0'), GEOMETRY);
  slots.boot();
  return slots;
}

const version = (slots: AppSlots): string => slots.info().running.version;

describe('application slots (the bootloader and its rollback rule)', () => {
  it('boots the first image from slot 0, valid, with nothing to roll back to', () => {
    const slots = fresh();
    assert.equal(slots.running, 0);
    assert.deepEqual(slots.info().running, { version: '0.1.0', probation: false });
    assert.equal(slots.info().canRollback, false);
    assert.throws(() => slots.rollback('why not'), /no previous image/);
    assert.equal(slots.state(1), 'empty');
  });

  it('a completed image boots on probation; a reset before markValid boots the previous one, which hears why', () => {
    for (const cause of ['crash', 'watchdog', 'power', 'restart'] as ResetCause[]) {
      const slots = fresh();
      update(slots, image('0.2.0'));
      assert.equal(slots.state(1), 'new');
      assert.equal(slots.running, 0, 'nothing changes until the controller resets');
      slots.boot('restart');
      assert.equal(slots.running, 1);
      assert.deepEqual(slots.info().running, { version: '0.2.0', probation: true });
      assert.equal(slots.info().canRollback, true);
      slots.boot(cause);
      assert.equal(slots.running, 0, `a ${cause} on probation goes back`);
      assert.equal(slots.state(1), 'invalid');
      assert.deepEqual(slots.info().running, { version: '0.1.0', probation: false, rolledBack: { version: '0.2.0', reason: cause } });
      // It stays reported (and the abandoned image never boots again) until the next update starts.
      slots.boot('power');
      slots.boot('restart');
      assert.equal(version(slots), '0.1.0');
      assert.deepEqual(slots.info().running.rolledBack, { version: '0.2.0', reason: cause });
      slots.open(100, 0);
      assert.equal(slots.info().running.rolledBack, undefined);
    }
  });

  it('markValid sticks: the new image boots through any reset, and rollback(reason) still goes back', () => {
    const slots = fresh();
    update(slots, image('0.2.0'));
    slots.boot('restart');
    slots.markValid();
    assert.equal(slots.state(1), 'valid');
    for (const cause of ['crash', 'watchdog', 'power', 'restart'] as ResetCause[]) {
      slots.boot(cause);
      assert.equal(version(slots), '0.2.0');
      assert.equal(slots.info().running.probation, false);
    }
    slots.markValid();
    assert.equal(slots.info().canRollback, true, 'the previous image is still there');
    slots.rollback('probation: no sale in a day');
    slots.boot('restart');
    assert.deepEqual(slots.info().running, { version: '0.1.0', probation: false, rolledBack: { version: '0.2.0', reason: 'probation: no sale in a day' } });
    assert.equal(slots.info().canRollback, false, 'the abandoned image is not a rollback target');
  });

  it('refuses to write the other slot while the running image is on probation', () => {
    const slots = fresh();
    update(slots, image('0.2.0'));
    slots.boot('restart');
    assert.throws(() => slots.open(100, 0), /probation/);
    slots.markValid();
    slots.open(100, 0);
  });

  it('a second update overwrites the previous image: no rollback to it any more, and updates alternate slots', () => {
    const slots = fresh();
    update(slots, image('0.2.0'));
    slots.boot('restart');
    slots.markValid();
    update(slots, image('0.3.0'));
    assert.equal(slots.state(0), 'new');
    slots.boot('restart');
    assert.equal(slots.running, 0);
    assert.equal(version(slots), '0.3.0');
    slots.boot('crash');
    assert.equal(version(slots), '0.2.0');
    assert.deepEqual(slots.info().running.rolledBack, { version: '0.3.0', reason: 'crash' });
  });

  it('opening at an offset keeps the bytes before it and erases each block only as writing reaches it', () => {
    const slots = fresh();
    const old = image('0.2.0', 20_000);
    update(slots, old);
    slots.boot('restart');
    slots.markValid();
    slots.rollback('test');
    slots.boot('restart');
    // Slot 1 holds 0.2.0; resume a 0.3.0 there at 8 KiB.
    const next = image('0.3.0', 20_000);
    const ops: SlotOp[] = [];
    slots.onOp = (op) => ops.push(op);
    slots.open(next.length, 8192);
    slots.write(next.subarray(8192, 8292));
    assert.deepEqual(ops.slice(0, 3).map((o) => (o.kind === 'erase' ? `erase ${o.block}` : o.kind === 'write' ? `write ${o.offset}+${o.data.length}` : o.what)), ['open', 'erase 2', 'write 8192+100']);
    assert.deepEqual(slots.read(1, 8192), old.subarray(0, 8192), 'the bytes before the offset are untouched');
    assert.deepEqual(slots.read(1, 100, 8192), next.subarray(8192, 8292));
    assert.ok(slots.read(1, 12288 - 8292, 8292).every((b) => b === 0xff), 'the rest of the block is erased');
    assert.deepEqual(slots.read(1, 20_000 - 12288, 12288), old.subarray(12288), 'later blocks wait for their turn');
    slots.write(next.subarray(8292, 14000));
    assert.equal(ops.filter((o) => o.kind === 'erase').length, 2, 'one erase per block entered');
    assert.ok(slots.read(1, 16384 - 14000, 14000).every((b) => b === 0xff));
    slots.write(next.subarray(14000));
    // The first 8 KiB are 0.2.0's description and bytes, not 0.3.0's: a resume trusts what is there.
    slots.complete();
    assert.equal(slots.image(1)!.description.version, '0.2.0');
  });

  it('refuses incomplete images and bytes that are not an image; the running image stays selected', () => {
    const slots = fresh();
    const img = image('0.2.0');
    slots.open(img.length, 0);
    slots.write(img.subarray(0, 5000));
    assert.throws(() => slots.complete(), /incomplete: 5000 of 10000/);
    assert.throws(() => slots.write(img.subarray(5000)), /no image is open/, 'complete ends the writer either way');
    const junk = new Uint8Array(3000).fill(0x41);
    slots.open(junk.length, 0);
    slots.write(junk);
    assert.throws(() => slots.complete(), /no description/);
    assert.equal(slots.state(1), 'written');
    slots.boot('restart');
    assert.equal(slots.running, 0);
  });

  it('refuses hostile sizes and offsets, and writes past the end', () => {
    const slots = fresh();
    for (const [len, off] of [
      [0, 0],
      [-1, 0],
      [GEOMETRY.slotSize + 1, 0],
      [1.5, 0],
      [Number.NaN, 0],
      [10_000, 100],
      [10_000, -4096],
      [10_000, 12288],
      [10_000, Number.POSITIVE_INFINITY],
    ]) {
      assert.throws(() => slots.open(len!, off!), RangeError, `open(${len}, ${off})`);
    }
    assert.throws(() => slots.write(new Uint8Array(1)), /no image is open/);
    slots.open(100, 0);
    assert.throws(() => slots.open(100, 0), /being written/);
    assert.throws(() => slots.write(new Uint8Array(101)), RangeError);
  });

  it('the bootloader skips an image whose bytes no longer check out', () => {
    const slots = fresh();
    update(slots, image('0.2.0'));
    slots.flipBit(1, 5000, 3);
    slots.boot('restart');
    assert.equal(slots.running, 0);
    assert.equal(slots.state(1), 'invalid');
  });

  it('a power cut at any operation of an update, at any byte, leaves the old image booting; one after complete() the new one, on probation', () => {
    // Record one update's operations.
    const img = image('0.2.0', 13_000);
    const recorder = fresh();
    const ops: SlotOp[] = [];
    recorder.onOp = (op) => ops.push(op);
    const first = recorder.ops;
    update(recorder, img, 3000);
    assert.equal(ops.at(-1)?.kind, 'state');
    assert.ok(ops.filter((o) => o.kind === 'erase').length === 4 && ops.filter((o) => o.kind === 'write').length > 4);
    const rnd = new Random(3);
    let cuts = 0;
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k]!;
      const length = op.kind === 'write' ? op.data.length : op.kind === 'erase' ? GEOMETRY.blockLength : 0;
      for (const bytes of new Set([0, 1 + rnd.int(0, Math.max(0, length - 2)), length])) {
        const slots = fresh();
        slots.cutAt(first + k, bytes);
        assert.throws(() => update(slots, img, 3000), PowerCut, `the cut at op ${k}`);
        slots.boot('power');
        assert.equal(slots.running, 0, `cut at op ${k} (${op.kind}) after ${bytes} bytes`);
        assert.deepEqual(slots.info().running, { version: '0.1.0', probation: false }, 'the old image, and no rollback to report');
        cuts++;
      }
    }
    assert.ok(cuts > 20, `${cuts} cuts`);
    // Completed, and the power fails before the restart that would switch: the new image boots.
    recorder.boot('power');
    assert.deepEqual(recorder.info().running, { version: '0.2.0', probation: true });
    // It fails again before it proved itself: back to the old one, which says why.
    recorder.boot('power');
    assert.deepEqual(recorder.info().running, { version: '0.1.0', probation: false, rolledBack: { version: '0.2.0', reason: 'power' } });
  });

  it('a power cut at markValid or rollback leaves the state before it', () => {
    const a = fresh();
    update(a, image('0.2.0'));
    a.boot('restart');
    a.cutAt(a.ops, 0);
    assert.throws(() => a.markValid(), PowerCut);
    a.boot('power');
    assert.equal(version(a), '0.1.0', 'not confirmed: it was still on probation when the power went');
    const b = fresh();
    update(b, image('0.2.0'));
    b.boot('restart');
    b.markValid();
    b.cutAt(b.ops, 0);
    assert.throws(() => b.rollback('x'), PowerCut);
    b.boot('power');
    assert.deepEqual(b.info().running, { version: '0.2.0', probation: false });
  });
});
