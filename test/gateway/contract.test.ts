/**
 * The uplink event contract (gateway/ingest/contract.ts). First against the
 * firmware itself: every event record the journal can write, written by the
 * firmware's own writers with ordinary and extreme values and described by
 * its describer as the uplink sends it, is accepted, and every field it has
 * is one the contract lists (a firmware change to an event fails here until
 * the contract follows). Then hostile variants of every listed field, which
 * must be refused with a reason that names the field.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AHEAD_OF_FIRMWARE, checkEvent, EVENT_FIELDS, MAX_FIELDS, U16, U32, U8, type FieldSpec } from '../../gateway/ingest/contract.js';
import { COMMAND_TYPES, CMD_UNKNOWN, OUT_APPLIED, OUT_REFUSED, OUTCOMES, REFUSALS, REJECTIONS, SETTING_NAMES } from '../../firmware/command/vocabulary.js';
import { describeRecord, type Described } from '../../firmware/uplink/describe.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { CARD_OUTCOMES, isMeta, RECORD_NAMES } from '../../firmware/journal/records.js';
import { UPDATE_PHASES, UPDATE_REASONS } from '../../firmware/journal/vocabulary.js';
import { parseVersion } from '../../firmware/update/version.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Slot codes of every shape the configs allow; slots 4 and up have none and are sent as #n. */
const CODES = ['A1', 'B12', 'ZZZZ', '9'];
const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;

function journalOn(flash: FlashImage, codes: readonly string[]): Journal {
  const n = codes.length;
  const ledger = new Ledger(new Uint16Array(n), new Uint8Array(n), layoutHash(codes));
  const journal = new Journal(flash, ledger, { now: () => 0 });
  journal.open();
  return journal;
}

/** The events in a journal, as the uplink publishes them. */
function described(journal: Journal, codes: readonly string[]): Described[] {
  const out: Described[] = [];
  journal.log.readEvents(1, 100000, (type, seq, time, d, o, len) => {
    out.push(describeRecord(type, seq, time, d, o, len, codes));
  });
  return out;
}

/** Every event record the firmware writes, through its own writers, with ordinary and extreme values. */
function firmwareEvents(): Described[] {
  const flash = new FlashImage({ size: 128 * 1024, blockLength: 4096, writeAlign: 4 });
  const j = journalOn(flash, CODES);
  const slots = [0, 1, 2, 3, 4, U8];
  const amounts = [0, 1, 125, 1000000, U32];
  for (const type of [0, 7, 15]) {
    for (const routing of [0, 1]) for (const value of [0, 5, U16]) j.coinIn(type, routing, value);
    j.coinsManual(type, 0, 0);
    j.coinsManual(type, U8, U32);
  }
  for (const value of amounts) {
    j.billStacking(value, 0);
    j.billStacking(value, U16);
    j.billStacked(value);
    j.billReturned(value);
    j.payoutStart(value, new Uint8Array(16));
    j.payoutStart(value, new Uint8Array(16).fill(U8));
    j.payoutStart(value, Uint8Array.of(3, 0, 9));
    j.payoutDone(value, 0, []);
    j.payoutDone(value, U16, new Array<number>(16).fill(1000));
    j.payoutDone(value, 3, [0, 2, 0, 1]);
  }
  j.tubes(new Uint8Array(16));
  j.tubes(new Uint8Array(16).fill(U8));
  for (const slot of slots) {
    for (const price of amounts) {
      j.vendStart(slot, price);
      j.vendOk(slot, price);
      j.price(slot, price, U32);
      j.planogram(slot, price, 0, 1, 0, 1);
      j.planogram(slot, price, U16, U16, U32, U32);
      j.remoteVend(U32, slot, 1, price);
      j.remoteVend(1, slot, U8, price);
      j.cardApproved(slot, price);
    }
    j.vendFailed(slot, 1);
    j.vendFailed(slot, 2);
    j.vendUncertain(slot);
    // Every card outcome the firmware names, and one it does not.
    for (let outcome = 1; outcome < CARD_OUTCOMES.length; outcome++) j.cardResult(outcome, slot, U32);
    j.cardResult(U8, slot, 0);
  }
  for (const delta of [I32_MIN, -1, 0, 1, I32_MAX]) j.creditAdjust(delta);
  j.interimReset();
  // Every command, outcome, refusal, rejection and setting the firmware names, and codes it does not.
  const commands = [...COMMAND_TYPES.keys()].slice(1).concat([CMD_UNKNOWN, 77]);
  for (const type of commands) {
    for (let outcome = 0; outcome <= OUTCOMES.length; outcome++) {
      if (outcome === OUT_REFUSED) for (let reason = 1; reason <= REFUSALS.length; reason++) j.command(U32, U32, type, outcome, reason === REFUSALS.length ? U16 : reason);
      else j.command(1, 0, type, outcome, outcome === OUT_APPLIED ? U16 : 0, outcome === OUT_APPLIED ? U16 - 1 : U16);
    }
    j.command(0, 0, type, U8, 0, 0);
  }
  for (let reason = 1; reason <= REJECTIONS.length; reason++) {
    j.commandRejected(0, reason, 0);
    j.commandRejected(U32, reason === REJECTIONS.length ? U8 : reason, U16);
  }
  for (let key = 1; key <= SETTING_NAMES.length; key++) {
    j.setting(key, 0, 1);
    j.setting(key === SETTING_NAMES.length ? U8 : key, U32, U32);
  }
  j.lock(true, 1);
  j.lock(false, U32);
  j.auditRead(1, 0);
  j.auditRead(U32, U32);
  // Firmware updates: the image taken, every step and reason the firmware names, and codes it does not.
  j.updateBegin(1, 0, 1, 0, 0, new Uint8Array(32));
  j.updateBegin(U32, parseVersion('255.4095.4095'), U32, U16, U8, new Uint8Array(32).fill(0xff));
  for (let phase = 1; phase <= UPDATE_PHASES.length; phase++) {
    for (let reason = 0; reason <= UPDATE_REASONS.length; reason++) j.update(U32, phase === UPDATE_PHASES.length ? U8 : phase, reason === UPDATE_REASONS.length ? U8 : reason, U32 % 0x100000000);
  }
  // A power cut and a restart: BOOT; a machine with the most slots a config allows: INIT.
  const again = journalOn(flash, CODES);
  const big = Array.from({ length: 100 }, (_, i) => `S${i}`);
  const bigJournal = journalOn(new FlashImage({ size: 64 * 1024, blockLength: 4096, writeAlign: 4 }), big);
  return [...described(again, CODES), ...described(bigJournal, big)];
}

describe('uplink event contract: the firmware', () => {
  let events: Described[] = [];
  before(() => {
    events = firmwareEvents();
  });

  it('accepts every event the firmware writes, with ordinary and extreme values', () => {
    assert.ok(events.length > 500, `${events.length} events`);
    for (const e of events) {
      const r = checkEvent(e);
      assert.deepEqual(r, { ok: true }, JSON.stringify(e));
    }
  });

  it('lists every field the firmware sends, and the firmware sends every field it lists', () => {
    const seen = new Map<string, Set<string>>();
    for (const e of events) {
      const type = String(e['type']);
      const fields = EVENT_FIELDS.get(type);
      assert.ok(fields, `the firmware sends ${type} events: add them to the contract`);
      const names = Object.keys(e).filter((k) => k !== 'seq' && k !== 't' && k !== 'type');
      for (const k of names) assert.ok(Object.hasOwn(fields, k), `${type}.${k} is sent but not in the contract`);
      for (const [k, spec] of Object.entries(fields)) if (!spec.optional) assert.ok(names.includes(k), `${type}.${k} is required but missing from ${JSON.stringify(e)}`);
      const s = seen.get(type) ?? new Set<string>();
      for (const k of names) s.add(k);
      seen.set(type, s);
    }
    // Both ways: every event record type is written above, and the contract lists no type or field the firmware lost.
    const names = Object.entries(RECORD_NAMES).filter(([code]) => !isMeta(Number(code))).map(([, name]) => name);
    assert.deepEqual([...seen.keys()].sort(), names.sort(), 'every event record type the firmware has is produced by this test');
    // Types the gateway takes before the firmware writes them (docs/updates.md): listed as such, and only while the firmware lacks them.
    const ahead = [...AHEAD_OF_FIRMWARE].filter((t) => !names.includes(t));
    assert.deepEqual([...EVENT_FIELDS.keys()].sort(), [...names, ...ahead].sort(), 'the contract lists exactly the firmware event types (and those ahead of it)');
    for (const [type, fields] of EVENT_FIELDS) if (!ahead.includes(type)) assert.deepEqual([...seen.get(type)!].sort(), Object.keys(fields).sort(), `${type}: fields sent`);
  });

  it('documents every event type and field in docs/uplink.md', () => {
    const doc = readFileSync(`${root}docs/uplink.md`, 'utf8');
    for (const [type, fields] of EVENT_FIELDS) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${type}\` |`));
      assert.ok(row, `docs/uplink.md has a row for ${type}`);
      for (const f of Object.keys(fields)) assert.ok(row.includes(`\`${f}\``), `docs/uplink.md: ${type} lists ${f}`);
    }
  });
});

// ---- hostile input ---------------------------------------------------------------------------

/** A valid event of each type, from the firmware's own. */
function samples(): Map<string, Described> {
  const out = new Map<string, Described>();
  for (const e of firmwareEvents()) if (!out.has(String(e['type']))) out.set(String(e['type']), e);
  // Types ahead of the firmware: as docs/updates.md writes them, until the firmware writes its own.
  const docs: Described[] = [
    { type: 'update-begin', seq: 812, t: 5120, n: 41, version: '0.2.0', size: 1503232, sha256: 'ab'.repeat(32), journal: 1 },
    { type: 'update', seq: 1290, t: 9000, n: 41, phase: 'rolled-back', version: '0.2.0', reason: 'probation: broker' },
  ];
  for (const e of docs) if (!out.has(String(e['type']))) out.set(String(e['type']), e);
  return out;
}

const HUGE = 'A'.repeat(100000);
/** What JSON.parse makes of numbers too large for a double. */
const INFINITY = JSON.parse('1e400') as number;

/** Values no field of this kind may hold. */
function hostile(spec: FieldSpec): unknown[] {
  const common: unknown[] = [null, true, HUGE, 'a\u0000b', '\u0000', INFINITY, -INFINITY, Number.NaN];
  switch (spec.kind) {
    case 'integer':
    case 'money':
      return [...common, {}, String(spec.max), '125', 'abc', '', spec.min - 1, spec.max + 1, 1e15, -1e15, 1.5, spec.max - 0.5, 2 ** 53, [], [1]];
    case 'slot':
      return [...common, {}, 7, '', 'a1', 'A 1', 'ABCDE', '#256', '#01', '#', 'A1\n', 'A1\u0000', ['A1']];
    case 'enum':
      return [...common, {}, 1, '', spec.values[0]!.toUpperCase(), `${spec.values[0]} `, 'nonsense', `${spec.fallback ?? 'x'}-`, `${spec.fallback ?? 'x'}-${(spec.fallbackMax ?? U8) + 1}`, `${spec.fallback ?? 'x'}-01`, [spec.values[0]]];
    case 'text':
      return [...common, {}, 1, 'x'.repeat(spec.maxLength + 1), 'tab\there', '\u007f', '\ud800'];
    case 'match':
      return [...common, {}, 1, '', ' ', 'x'.repeat(65), '1.2', '1.2.3.4', '01.2.3', 'A'.repeat(64), `${'a'.repeat(64)}\n`, ['1.2.3']];
    case 'counts':
      return [...common, {}, 1, 'abc', new Array<number>(spec.maxItems + 1).fill(0), [spec.max + 1], [-1], ['1'], [1.5], [null], [[1]]];
    case 'per-type':
      // {} is an empty map, which is fine.
      return [...common, 1, [], [1, 2], { [String(spec.maxKey + 1)]: 1 }, { a: 1 }, { '01': 1 }, { '-1': 1 }, { '0': spec.max + 1 }, { '0': '1' }, { '0': 1.5 }, { '0': { '0': 1 } }];
  }
}

function refused(e: Record<string, unknown>, field: string | RegExp, why?: RegExp): void {
  const r = checkEvent(e);
  assert.equal(r.ok, false, `accepted ${JSON.stringify(e).slice(0, 200)}`);
  if (r.ok) return;
  if (typeof field === 'string') assert.equal(r.field, field, r.reason);
  else assert.match(r.field, field, r.reason);
  assert.ok(r.reason.startsWith(r.field), `the reason names the field: ${r.reason}`);
  assert.ok(r.reason.length < 300, `a reason for a log line: ${r.reason.length} characters`);
  if (why) assert.match(r.reason, why);
}

describe('uplink event contract: hostile events', () => {
  let sample = new Map<string, Described>();
  before(() => {
    sample = samples();
  });
  const vendOk = { seq: 200, t: 5000, type: 'vend-ok', slot: 'A1', price: 125 };

  it('refuses the price of issue 13 and its kin, naming the field', () => {
    assert.deepEqual(checkEvent(vendOk), { ok: true });
    refused({ ...vendOk, price: 'abc' }, 'price', /^price must be an integer amount of minor units from 0 to 4294967295; got text "abc"$/);
    refused({ ...vendOk, price: '125' }, 'price', /got text "125"/);
    refused({ ...vendOk, price: -1 }, 'price', /got -1$/);
    refused({ ...vendOk, price: 1e15 }, 'price', /got 1000000000000000$/);
    refused({ ...vendOk, price: 1.25 }, 'price', /got 1\.25$/);
    refused({ ...vendOk, price: INFINITY }, 'price', /got the number Infinity$/);
    refused({ ...vendOk, price: null }, 'price', /got null$/);
    refused({ seq: 200, t: 5000, type: 'vend-ok', slot: 'A1' }, 'price', /^price is missing/);
    refused({ ...vendOk, slot: HUGE }, 'slot', /got text of 100000 characters "AAAA/);
    refused({ ...vendOk, slot: 'A1\u0000' }, 'slot', /"A1\\u0000"/);
    // The message exactly as in the issue has no time either.
    refused({ seq: 200, type: 'vend-ok', slot: 'A1', price: 'abc' }, 't', /^t is missing$/);
  });

  it('refuses every hostile value in every field of every event type', () => {
    let tried = 0;
    for (const [type, fields] of EVENT_FIELDS) {
      const base = sample.get(type)!;
      assert.deepEqual(checkEvent(base), { ok: true }, type);
      for (const [name, spec] of Object.entries(fields)) {
        for (const v of hostile(spec)) {
          refused({ ...base, [name]: v }, new RegExp(`^${name}(\\[\\d+\\]|\\.\\S+)?$`));
          tried++;
        }
        if (!spec.optional) {
          const without: Record<string, unknown> = { ...base };
          delete without[name];
          refused(without, name, /is missing/);
        }
      }
    }
    assert.ok(tried > 500, `${tried} variants`);
  });

  it('checks seq, t and type on every event', () => {
    for (const seq of [0, -1, U32 + 1, 1.5, '1', null, INFINITY]) refused({ ...vendOk, seq }, 'seq', /^seq must be an integer from 1 to 4294967295/);
    for (const t of [-1, U32 + 1, 0.5, '5000', null]) refused({ ...vendOk, t }, 't', /^t must be an integer from 0 to 4294967295/);
    for (const type of ['', 'Vend-OK', '1x', 'vend ok', 'x'.repeat(33), 5, null, '__proto__']) refused({ ...vendOk, type }, 'type', /^type must be an event type/);
    refused({ seq: 1, t: 1 }, 'type', /^type is missing$/);
    refused({ t: 1, type: 'boot' }, 'seq', /^seq is missing$/);
  });

  it('takes an unknown event type (a newer firmware) with bounded, flat fields', () => {
    const door = { seq: 7, t: 9, type: 'door-open', door: 1, by: 'service key', codes: [1, 2, 3], perDoor: { '0': 1, front: 2 }, big: -(2 ** 53 - 1) };
    assert.deepEqual(checkEvent(door), { ok: true });
    assert.deepEqual(checkEvent({ seq: 7, t: 9, type: 'type-e0' }), { ok: true }, 'a record type the describer has no name for');
    // Names of Object's own properties are just unknown types here.
    for (const type of ['constructor', 'tostring', 'hasownproperty']) assert.deepEqual(checkEvent({ seq: 7, t: 9, type, x: 1 }), { ok: true }, type);
    refused({ ...door, by: HUGE }, 'by', /is 100000 characters long; at most 64/);
    refused({ ...door, by: 'x'.repeat(65) }, 'by', /at most 64/);
    refused({ ...door, by: 'a\u0000' }, 'by', /control character/);
    refused({ ...door, by: 'bell\u0007' }, 'by', /control character/);
    refused({ ...door, by: 'next\u0085line' }, 'by', /control character/);
    refused({ ...door, by: 'half \ud83d' }, 'by', /well-formed/);
    refused({ ...door, door: 1.5 }, 'door', /integer/);
    refused({ ...door, door: 2 ** 53 }, 'door', /integer/);
    refused({ ...door, door: null }, 'door', /got null/);
    refused({ ...door, door: true }, 'door', /got true/);
    refused({ ...door, door: INFINITY }, 'door', /Infinity/);
    refused({ ...door, codes: new Array<number>(33).fill(1) }, 'codes', /list of 33; at most 32/);
    refused({ ...door, codes: [1, 'two'] }, 'codes[1]', /got text "two"/);
    refused({ ...door, codes: [[1]] }, 'codes[0]', /got a list of 1/);
    refused({ ...door, perDoor: { a: { b: 1 } } }, 'perDoor.a', /got an object/);
    refused({ ...door, perDoor: { 'a b': 1 } }, 'perDoor.a b', /not a key/);
    refused({ ...door, perDoor: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) }, 'perDoor', /33 entries/);
    refused(JSON.parse('{"seq":7,"t":9,"type":"door-open","__proto__":{"x":1}}') as Record<string, unknown>, '__proto__', /not a field name/);
    refused({ ...door, 'a\u0000': 1 }, 'a\\u0000', /not a field name/);
    refused({ ...door, ['x'.repeat(33)]: 1 }, `${'x'.repeat(32)}...`, /not a field name/);
    const many: Record<string, unknown> = { seq: 7, t: 9, type: 'door-open' };
    for (let i = 0; Object.keys(many).length <= MAX_FIELDS; i++) many[`f${i}`] = i;
    refused(many, 'f29', /one field too many: an event has at most 32 fields \(this one has 33\)/);
  });

  it('takes fields a known type does not list on the same bounded terms', () => {
    assert.deepEqual(checkEvent({ ...vendOk, tray: 3, note: 'restocked' }), { ok: true });
    refused({ ...vendOk, note: HUGE }, 'note', /at most 64/);
    refused({ ...vendOk, note: { deep: { deeper: 1 } } }, 'note.deep', /got an object/);
  });

  it('takes the names the firmware gives codes it does not know, within their range', () => {
    const cmd = sample.get('command')!;
    assert.deepEqual(checkEvent({ ...cmd, outcome: 'outcome-255' }), { ok: true });
    refused({ ...cmd, outcome: 'outcome-256' }, 'outcome');
    const refusedCmd = { seq: 1, t: 1, type: 'command', n: 1, issued: 1, command: 'vend', outcome: 'refused', reason: 'reason-65535' };
    assert.deepEqual(checkEvent(refusedCmd), { ok: true });
    refused({ ...refusedCmd, reason: 'reason-65536' }, 'reason');
    refused({ ...refusedCmd, reason: 'reason-1e3' }, 'reason');
    refused({ ...sample.get('vend-fail')!, reason: 'reason-1' }, 'reason', /one of jam, sensor; got/);
  });
});
