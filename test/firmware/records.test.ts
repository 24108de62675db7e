/**
 * Every journal record type, round trip: written through the journal's own
 * writers (the codec underneath), read back from flash through the codec,
 * the ledger (live and replayed after a reboot) and the uplink's describer,
 * and the fields come back as they went in. The table has one case per type
 * in RECORD_NAMES and, in each, a value for every field of the type's
 * layout: a type or a field added without a round trip fails here. Values
 * fill their fields' widths (u32 above 2^31, i32 at its minimum, counts at
 * their caps), so a field read narrower or signed comes back wrong.
 */
import { UPDATE_DOWNGRADE, UPDATE_FORCE, R_UPDATE, R_UPDATE_BEGIN, R_UPDATE_PROGRESS } from '../../firmware/journal/records.js';
import { UpdatePhase, UpdateReason } from '../../firmware/journal/vocabulary.js';
import { parseVersion } from '../../firmware/update/version.js';
import * as Checkpoint from '../../firmware/journal/checkpoint.js';
import { CMD_VEND, OUT_FAILED, REJ_REPLAY, SET_CHANGE_POLICY } from '../../firmware/command/vocabulary.js';
import { DISPENSE_SENSOR_FAULT } from '../../firmware/dispense/dispenser.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { FlashLog } from '../../firmware/journal/log.js';
import {
  COIN_COUNT,
  get,
  isMeta,
  layoutOf,
  R_AUDIT_READ,
  R_BILL_RETURNED,
  R_BILL_STACKED,
  R_BILL_STACKING,
  R_BOOT,
  R_CARD_APPROVED,
  R_CARD_RESULT,
  R_CHECKPOINT,
  R_COIN_IN,
  R_COINS_MANUAL,
  R_COMMAND,
  R_COMMAND_REJECTED,
  R_CREDIT_ADJUST,
  R_INIT,
  R_INTERIM_RESET,
  R_KEY,
  R_LOCK,
  R_PAYOUT_DONE,
  R_PAYOUT_START,
  R_PLANOGRAM,
  R_PRICE,
  R_REMOTE_VEND,
  R_SETTING,
  R_SYNC,
  R_TUBES,
  R_VEND_FAIL,
  R_VEND_OK,
  R_VEND_START,
  R_VEND_UNCERTAIN,
  RECORD_NAMES,
  run,
  size,
  type IntField,
  type RecordType,
  type Spec,
} from '../../firmware/journal/records.js';
import { CardOutcome, CardVend, CoinRouting, Counter } from '../../firmware/journal/vocabulary.js';
import { COIN_TYPES } from '../../firmware/money/coins.js';
import { describeRecord, type Described } from '../../firmware/uplink/describe.js';
import { FlashImage, type FlashGeometry } from '../../hal-sim/guest/flash-image.js';
import { deepEqual, equal, ok } from '../lib/assert.js';

const GEOMETRY: FlashGeometry = { size: 16 * 1024, blockLength: 1024, writeAlign: 4 };
const CODES = ['A1', 'A2', 'B1', 'B2'];
const LAYOUT = layoutHash(CODES);
/** Above 2^31: read as a signed 32-bit number it would come back negative. */
const BIG = 0xfedcba98;
const TUBES = Array.from({ length: COIN_TYPES }, (_, t) => 10 + t);
const KEY = Array.from({ length: 32 }, (_, i) => 0xa0 + i);

interface Rig {
  flash: FlashImage;
  journal: Journal;
  ledger: Ledger;
  clock: { t: number; now(): number };
  /** Power off and on: a new journal and ledger on the same flash. */
  reboot(): Rig;
}

function boot(flash = new FlashImage(GEOMETRY), t = 0): Rig {
  const clock = { t, now(): number { return this.t; } };
  const ledger = new Ledger(new Uint16Array(CODES.length).fill(5), new Uint8Array(CODES.length), LAYOUT);
  const journal = new Journal(flash, ledger, clock);
  journal.open();
  const rig: Rig = { flash, journal, ledger, clock, reboot: () => boot(new FlashImage(GEOMETRY, flash.bytes), clock.t + 1000) };
  return rig;
}

interface Written {
  type: number;
  seq: number;
  time: number;
  payload: Uint8Array;
}

/** Every record on the flash, meta records too, oldest first, as the log's recovery finds them. */
function records(flash: FlashImage): Written[] {
  const out: Written[] = [];
  new FlashLog(new FlashImage(GEOMETRY, flash.bytes), () => 0).recover((type, seq, time, d, o, length) => {
    out.push({ type, seq, time, payload: d.slice(o, o + length) });
  }, true);
  return out;
}

interface Case {
  /** Write the record (and what has to come before it) through the journal; returns the rig it ends on. */
  write(r: Rig): Rig;
  /** Every field of the type's layout, as the codec must read it back. */
  fields: { [field: string]: number | number[] };
  /** What follows the fields (PAYOUT DONE's entries: coin type, count). */
  entries?: [number, number][];
  /** The event's fields on the wire (besides seq, t and type); meta records are never sent. */
  described?: Described;
  /** What the record did to the books (`replayed`: rebuilt from flash after a reboot, which journals a boot). */
  books?(l: Ledger, replayed: boolean): void;
  /** Further checks of the payload (the checkpoint's, which is the ledger's own). */
  payload?(d: Uint8Array, r: Rig): void;
}

/** An image's SHA-256 and a hash state, as update records carry them. */
const SHA = Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
const SHA_HEX = Array.from(SHA, (b) => b.toString(16).padStart(2, '0')).join('');
const STATE = Array.from({ length: 32 }, (_, i) => 0xff - i);

const CASES: { [type: number]: Case } = {
  [R_VEND_OK]: {
    write: (r) => (r.journal.vendStart(1, BIG), r.journal.vendOk(1, BIG), r),
    fields: { slot: 1, price: BIG },
    described: { slot: 'A2', price: BIG },
    books: (l) => (equal(l.slotSales[1], 1), equal(l.qty[1], 4), equal(l.total[Counter.REVENUE], BIG), equal(l.openVend, -1)),
  },
  [R_VEND_FAIL]: {
    write: (r) => (r.journal.vendStart(2, 100), r.journal.vendFailed(2, DISPENSE_SENSOR_FAULT), r),
    fields: { slot: 2, reason: DISPENSE_SENSOR_FAULT },
    described: { slot: 'B1', reason: 'sensor' },
    books: (l) => (equal(l.fault[2], 1), equal(l.total[Counter.FAILED_VENDS], 1)),
  },
  [R_INIT]: {
    write: (r) => r,
    fields: { slots: CODES.length, layout: LAYOUT },
    described: { slots: CODES.length, layout: LAYOUT },
    books: (l) => ok(l.slotsValid),
  },
  [R_CHECKPOINT]: {
    // Enough coins that a block fills and the next opens with a checkpoint of the books by then.
    write: (r) => {
      r.journal.vendStart(3, 60);
      for (let i = 0; r.journal.log.stats.checkpoints < 2; i++) r.journal.coinIn(i % COIN_TYPES, CoinRouting.TUBES, 5);
      return r;
    },
    fields: {},
    payload: (d, r) => {
      const loaded = new Ledger(new Uint16Array(CODES.length), new Uint8Array(CODES.length), LAYOUT);
      ok(loaded.load(d, 0, d.length), 'the checkpoint loads');
      equal(d.length, r.ledger.checkpointLength);
      equal(d[0], Checkpoint.VERSION);
      // The coin whose record opened the block came after the checkpoint.
      equal(loaded.credit, r.ledger.credit - 5);
      equal(loaded.openVend, 3);
      equal(loaded.openVendPrice, 60);
      const again = new Uint8Array(d.length);
      loaded.save(again);
      deepEqual(again, d, 'saved again, the same bytes');
    },
  },
  [R_BOOT]: {
    write: (r) => r.reboot(),
    fields: {},
    described: {},
    books: (l, replayed) => equal(l.total[Counter.BOOTS], replayed ? 2 : 1),
  },
  [R_COIN_IN]: {
    write: (r) => (r.journal.coinIn(COIN_TYPES - 1, CoinRouting.TUBES, 0xfffe), r),
    fields: { coinType: COIN_TYPES - 1, routing: CoinRouting.TUBES, value: 0xfffe },
    described: { coinType: COIN_TYPES - 1, routing: 'tubes', value: 0xfffe },
    books: (l) => (equal(l.credit, 0xfffe), equal(l.tubes[COIN_TYPES - 1], 1), equal(l.total[Counter.COINS_TUBES], 0xfffe)),
  },
  [R_BILL_STACKING]: {
    write: (r) => (r.journal.billStacking(BIG, 0xfffe), r),
    fields: { value: BIG, stackerBefore: 0xfffe },
    described: { value: BIG, stackerBefore: 0xfffe },
    books: (l) => (equal(l.openStack, BIG), equal(l.openStackBefore, 0xfffe)),
  },
  [R_BILL_STACKED]: {
    write: (r) => (r.journal.billStacking(BIG, 1), r.journal.billStacked(BIG), r),
    fields: { value: BIG },
    described: { value: BIG },
    books: (l) => (equal(l.credit, BIG), equal(l.total[Counter.BILLS_VALUE], BIG), equal(l.openStack, 0)),
  },
  [R_BILL_RETURNED]: {
    write: (r) => (r.journal.billStacking(BIG, 1), r.journal.billReturned(BIG), r),
    fields: { value: BIG },
    described: { value: BIG },
    books: (l) => (equal(l.total[Counter.BILLS_RETURNED], 1), equal(l.openStack, 0), equal(l.credit, 0)),
  },
  [R_VEND_START]: {
    write: (r) => (r.journal.vendStart(3, BIG), r),
    fields: { slot: 3, price: BIG },
    described: { slot: 'B2', price: BIG },
    books: (l) => (equal(l.openVend, 3), equal(l.openVendPrice, BIG)),
  },
  [R_VEND_UNCERTAIN]: {
    write: (r) => (r.journal.vendStart(0, 100), r.journal.vendUncertain(0), r),
    fields: { slot: 0 },
    described: { slot: 'A1' },
    books: (l) => (equal(l.total[Counter.UNCERTAIN_VENDS], 1), equal(l.openVend, -1)),
  },
  [R_PAYOUT_START]: {
    write: (r) => (r.journal.payoutStart(BIG, TUBES), r),
    fields: { asked: BIG, tubes: TUBES },
    described: { asked: BIG, tubes: TUBES },
    books: (l) => (equal(l.openPayout, BIG), deepEqual(l.payoutTubes, TUBES), deepEqual(l.tubes, TUBES)),
  },
  [R_PAYOUT_DONE]: {
    write: (r) => {
      const perType = new Array<number>(COIN_TYPES).fill(0);
      perType[0] = 3;
      perType[7] = 300; // more than a count holds: capped at 255
      perType[COIN_TYPES - 1] = 1;
      r.journal.tubes(TUBES.map(() => 255));
      r.journal.payoutDone(BIG, 0xfffe, perType);
      return r;
    },
    fields: { paid: BIG, coins: 0xfffe },
    entries: [
      [0, 3],
      [7, 255],
      [COIN_TYPES - 1, 1],
    ],
    described: { paid: BIG, coins: 0xfffe, perType: { '0': 3, '7': 255, [String(COIN_TYPES - 1)]: 1 } },
    books: (l) => {
      equal(l.total[Counter.PAID_VALUE], BIG);
      equal(l.total[Counter.PAID_COUNT], 0xfffe);
      equal(l.tubes[0], 252);
      equal(l.tubes[7], 0);
      equal(l.tubes[COIN_TYPES - 1], 254);
      equal(l.openPayout, 0);
    },
  },
  [R_COINS_MANUAL]: {
    write: (r) => (r.journal.tubes(TUBES), r.journal.coinsManual(7, 200, BIG), r),
    fields: { coinType: 7, count: 200, value: BIG },
    described: { coinType: 7, count: 200, value: BIG },
    books: (l) => (equal(l.total[Counter.MANUAL_VALUE], BIG), equal(l.total[Counter.MANUAL_COUNT], 200), equal(l.tubes[7], 0)),
  },
  [R_SYNC]: {
    write: (r) => (r.journal.coinIn(0, CoinRouting.CASHBOX, 5), r.journal.acknowledge(r.journal.log.lastSeq), r),
    fields: { seq: 2 },
    books: (l) => equal(l.synced, 2),
  },
  [R_INTERIM_RESET]: {
    write: (r) => (r.journal.coinIn(0, CoinRouting.CASHBOX, 5), r.journal.interimReset(), r),
    fields: {},
    described: {},
    books: (l) => (equal(l.total[Counter.COINS_COUNT], 1), equal(l.interim[Counter.COINS_COUNT], 0)),
  },
  [R_CREDIT_ADJUST]: {
    write: (r) => (r.journal.creditAdjust(-0x80000000), r),
    fields: { delta: -0x80000000 },
    described: { delta: -0x80000000 },
    books: (l) => equal(l.credit, -0x80000000),
  },
  [R_TUBES]: {
    write: (r) => (r.journal.tubes(TUBES), r),
    fields: { tubes: TUBES },
    described: { tubes: TUBES },
    books: (l) => deepEqual(l.tubes, TUBES),
  },
  [R_COMMAND]: {
    write: (r) => (r.journal.command(BIG, BIG + 1, CMD_VEND, OUT_FAILED, 0xfffe, 0xfffd), r),
    fields: { n: BIG, issued: BIG + 1, command: CMD_VEND, outcome: OUT_FAILED, value: 0xfffe, remaining: 0xfffd },
    described: { n: BIG, issued: BIG + 1, command: 'vend', outcome: 'failed', value: 0xfffe, remaining: 0xfffd },
    books: (l) => (equal(l.commandHigh, BIG), equal(l.wallFloor, BIG + 1), ok(l.commandKnown(BIG))),
  },
  [R_COMMAND_REJECTED]: {
    write: (r) => (r.journal.commandRejected(BIG, REJ_REPLAY, 0xfffe), r),
    fields: { n: BIG, reason: REJ_REPLAY, suppressed: 0xfffe },
    described: { n: BIG, reason: 'replay', suppressed: 0xfffe },
    books: (l) => equal(l.total[Counter.COMMANDS_REJECTED], 1 + 0xfffe),
  },
  [R_PRICE]: {
    write: (r) => (r.journal.price(1, 0x7ffffffe, BIG), r),
    fields: { slot: 1, price: 0x7ffffffe, version: BIG },
    described: { slot: 'A2', price: 0x7ffffffe, n: BIG },
    books: (l) => (equal(l.prices[1], 0x7ffffffe), equal(l.slotVersion[1], BIG)),
  },
  [R_PLANOGRAM]: {
    write: (r) => (r.journal.planogram(2, 0x7ffffffe, 0xfffe, 0xfffd, BIG, BIG + 1), r),
    fields: { slot: 2, price: 0x7ffffffe, qty: 0xfffe, capacity: 0xfffd, sku: BIG, version: BIG + 1 },
    described: { slot: 'B1', price: 0x7ffffffe, qty: 0xfffe, capacity: 0xfffd, sku: BIG, n: BIG + 1 },
    books: (l) => {
      equal(l.prices[2], 0x7ffffffe);
      equal(l.qty[2], 0xfffe);
      equal(l.capacity[2], 0xfffd);
      equal(l.sku[2], BIG);
      equal(l.slotVersion[2], BIG + 1);
    },
  },
  [R_LOCK]: {
    write: (r) => (r.journal.lock(true, BIG), r),
    fields: { locked: 1, version: BIG },
    described: { locked: 1, n: BIG },
    books: (l) => (equal(l.locked, true), equal(l.lockVersion, BIG)),
  },
  [R_SETTING]: {
    write: (r) => (r.journal.setting(SET_CHANGE_POLICY, BIG, BIG + 1), r),
    fields: { key: SET_CHANGE_POLICY, value: BIG, version: BIG + 1 },
    described: { setting: 'changePolicy', value: BIG, n: BIG + 1 },
    books: (l) => (equal(l.settings[SET_CHANGE_POLICY], BIG), equal(l.settingVersion[SET_CHANGE_POLICY], BIG + 1)),
  },
  [R_KEY]: {
    write: (r) => (r.journal.key(0xfe, new Uint8Array(KEY)), r),
    fields: { kid: 0xfe, key: KEY },
    books: (l) => (equal(l.keyId, 0xfe), deepEqual(l.key, KEY)),
  },
  [R_REMOTE_VEND]: {
    write: (r) => (r.journal.remoteVend(BIG, 3, 0xff, BIG + 1), r),
    fields: { n: BIG, slot: 3, quantity: 0xff, price: BIG + 1 },
    described: { n: BIG, slot: 'B2', quantity: 0xff, price: BIG + 1 },
    books: (l) => (equal(l.remoteOpen, BIG), equal(l.remoteSlot, 3), equal(l.remoteQty, 0xff), equal(l.remotePrice, BIG + 1)),
  },
  [R_AUDIT_READ]: {
    write: (r) => (r.journal.coinIn(0, CoinRouting.CASHBOX, 5), r.journal.auditRead(BIG, BIG + 1), r),
    fields: { read: BIG, wall: BIG + 1 },
    described: { read: BIG, wall: BIG + 1 },
    books: (l) => (equal(l.auditReads, BIG), equal(l.lastReadWall, BIG + 1), equal(l.interim[Counter.COINS_COUNT], 0)),
  },
  [R_CARD_APPROVED]: {
    write: (r) => (r.journal.cardApproved(1, BIG), r),
    fields: { slot: 1, amount: BIG },
    described: { slot: 'A2', amount: BIG },
    books: (l) => (equal(l.cardVend, CardVend.APPROVED), equal(l.cardSlot, 1), equal(l.cardAmount, BIG)),
  },
  [R_UPDATE_BEGIN]: {
    write: (r) => (r.journal.updateBegin(BIG, parseVersion('255.4095.4094'), BIG + 1, 0xfffe, UPDATE_FORCE | UPDATE_DOWNGRADE, new Uint8Array(SHA)), r),
    fields: { n: BIG, version: parseVersion('255.4095.4094'), size: BIG + 1, journal: 0xfffe, flags: UPDATE_FORCE | UPDATE_DOWNGRADE, sha256: SHA },
    described: { n: BIG, version: '255.4095.4094', size: BIG + 1, sha256: SHA_HEX, journal: 0xfffe },
    books: (l) => (equal(l.update.n, BIG), equal(l.update.size, BIG + 1), equal(l.update.flags, UPDATE_FORCE | UPDATE_DOWNGRADE), deepEqual(l.update.sha256, SHA), equal(l.update.offset, 0)),
  },
  [R_UPDATE]: {
    write: (r) => (r.journal.updateBegin(7, parseVersion('0.2.0'), 5000, 1, 0, new Uint8Array(SHA)), r.journal.update(7, UpdatePhase.ROLLED_BACK, UpdateReason.PROBATION_BROKER, parseVersion('0.2.0')), r),
    fields: { n: 7, phase: UpdatePhase.ROLLED_BACK, reason: UpdateReason.PROBATION_BROKER, version: parseVersion('0.2.0') },
    described: { n: 7, phase: 'rolled-back', reason: 'probation: broker', version: '0.2.0' },
    books: (l) => equal(l.update.n, 0, 'a rollback closes the update'),
  },
  [R_UPDATE_PROGRESS]: {
    write: (r) => (r.journal.updateBegin(7, parseVersion('0.2.0'), 300_000, 1, 0, new Uint8Array(SHA)), r.journal.updateProgress(7, 0x20000, new Uint8Array(STATE)), r),
    fields: { n: 7, offset: 0x20000, state: STATE },
    books: (l) => (equal(l.update.n, 7), equal(l.update.offset, 0x20000), deepEqual(l.update.state, STATE)),
  },
  [R_CARD_RESULT]: {
    write: (r) => (r.journal.cardApproved(1, 100), r.journal.cardResult(CardOutcome.UNREFUNDED, 1, BIG), r),
    fields: { outcome: CardOutcome.UNREFUNDED, slot: 1, amount: BIG },
    described: { outcome: 'unrefunded', slot: 'A2', amount: BIG },
    books: (l) => (equal(l.total[Counter.CASHLESS_UNREFUNDED], BIG), equal(l.cardVend, CardVend.NONE)),
  },
};

describe('journal records: one round trip per type', () => {
  it('has a case for every record type, and every case is a record type', () => {
    const types = Object.keys(RECORD_NAMES).map(Number);
    for (const type of types) ok(CASES[type], `no round trip for ${RECORD_NAMES[type]} (0x${type.toString(16)})`);
    for (const type of Object.keys(CASES).map(Number)) ok(RECORD_NAMES[type], `0x${type.toString(16)} is not a record type`);
    equal(types.length, Object.keys(CASES).length);
  });

  for (const type of Object.keys(CASES).map(Number)) {
    const name = RECORD_NAMES[type] ?? `0x${type.toString(16)}`;
    it(`${name}: written, read back through the codec, the ledger and the describer`, () => {
      const c = CASES[type]!;
      const t = type as RecordType<Spec>;
      const r = c.write(boot());
      const found = records(r.flash).filter((w) => w.type === type);
      ok(found.length > 0, `a ${name} record on flash`);
      const w = found[found.length - 1]!;
      const d = w.payload;

      // The codec: every field of the layout, and nothing after them but the entries.
      const layout = layoutOf(t);
      deepEqual(
        layout.map((f) => f.name),
        Object.keys(c.fields),
        'the case gives every field of the layout, in order',
      );
      for (const f of layout) {
        const expected = c.fields[f.name]!;
        // (`as never`: a layout known only at run time has no run names for the compiler.)
        if (f.kind === 'bytes') deepEqual(run(d, 0, t, f.name as never), expected, f.name);
        else equal(get(d, 0, t, f.name as IntField<Spec>), expected, f.name);
      }
      const entries: [number, number][] = [];
      for (let p = size(t); p + size(COIN_COUNT) <= d.length; p += size(COIN_COUNT)) {
        entries.push([get(d, p, COIN_COUNT, 'coinType'), get(d, p, COIN_COUNT, 'count')]);
      }
      if (type !== R_CHECKPOINT) {
        deepEqual(entries, c.entries ?? [], 'entries after the fields');
        equal(d.length, size(t) + entries.length * size(COIN_COUNT), 'payload length');
      }
      c.payload?.(d, r);

      // The describer: what the uplink sends of it (meta records stay on the machine).
      equal(c.described === undefined, isMeta(type), 'described exactly when it is an event');
      if (c.described) {
        deepEqual(describeRecord(type, w.seq, w.time, d, 0, d.length, CODES), { seq: w.seq, t: w.time, type: name, ...c.described });
      }

      // The ledger: as the record was written, and as the record is replayed after a reboot.
      if (c.books) {
        c.books(r.ledger, false);
        c.books(r.reboot().ledger, true);
      }
    });
  }
});
