/**
 * The uplink event contract (docs/uplink.md, "Events"): what each journal
 * event a machine publishes on fleet/{machine}/events may carry, field by
 * field. Pure and table-driven: one entry per event type the firmware writes
 * (firmware/uplink/describe.ts), each field with its kind and bounds.
 *
 * Bounds are the journal's own: every figure is stored in a record as u8,
 * u16, u32 or i32 (firmware/journal/records.ts), so a real machine cannot
 * send more, and nothing narrower is assumed (a price limit the firmware
 * raises one day must not send its machines' sales to refused_events). Money is integer
 * minor units; the widest, 2^32-1, leaves sums far inside bigint. The
 * sales view (migration 8) reads prices and slots by the same rules.
 *
 * Unknown event types (a newer firmware) are accepted with the common checks
 * and bounded, flat fields: reports read only the types listed here, and
 * keeping a newer firmware's events whole beats filing them as refused.
 * Fields a known type does not list are accepted on the same terms; the
 * drift test (test/gateway/contract.test.ts) makes sure the firmware's own
 * fields are all listed.
 */

export const U8 = 0xff;
export const U16 = 0xffff;
export const U32 = 0xffffffff;
const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;

/** Longest text in a field the contract does not list, and most items in a list or map there. */
export const MAX_TEXT = 64;
export const MAX_ITEMS = 32;
/** Most fields in one event, seq, t and type included. */
export const MAX_FIELDS = 32;

/** The same syntax parseMessage requires of `type`. */
const EVENT_TYPE = /^[a-z][a-z0-9-]{0,31}$/;
/** Slot codes as machine configs allow them (firmware SLOT_CODE), or `#n` for a slot number with no code. */
const SLOT = /^(?:[A-Z0-9]{1,4}|#(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))$/;
/** Names of fields the contract does not list: the firmware's are camelCase. */
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9]{0,31}$/;
/** Keys inside such a field's map (the firmware's perType keys are coin types). */
const MAP_KEY = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
/** C0 and C1 controls and DEL (PostgreSQL's jsonb refuses NUL outright). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export type FieldKind =
  /** A whole number within min..max. */
  | { kind: 'integer'; min: number; max: number }
  /** An amount of money: a whole number of minor units within min..max. */
  | { kind: 'money'; min: number; max: number }
  /** A slot code (A1) or `#n`. */
  | { kind: 'slot' }
  /** One of `values`, or `<fallback>-<n>` (n 0..fallbackMax): how the firmware names a code it does not know. */
  | { kind: 'enum'; values: readonly string[]; fallback?: string; fallbackMax?: number }
  /** Printable text of at most maxLength characters. */
  | { kind: 'text'; maxLength: number }
  /** Text that matches `pattern` whole (`rule` says what it is, for the reason). */
  | { kind: 'match'; pattern: RegExp; rule: string }
  /** A list of at most maxItems counts of 0..max (tube counts by coin type). */
  | { kind: 'counts'; maxItems: number; max: number }
  /** A map from coin type ("0".."maxKey") to a count of 0..max. */
  | { kind: 'per-type'; maxKey: number; max: number };

export type FieldSpec = FieldKind & { optional?: true };

export type EventFields = Readonly<Record<string, FieldSpec>>;

export type CheckResult = { ok: true } | { ok: false; field: string; reason: string };

const integer = (min: number, max: number): FieldSpec => ({ kind: 'integer', min, max });
const money = (max: number, min = 0): FieldSpec => ({ kind: 'money', min, max });
const oneOf = (values: readonly string[], fallback?: string, fallbackMax = U8): FieldSpec =>
  fallback === undefined ? { kind: 'enum', values } : { kind: 'enum', values, fallback, fallbackMax };
const optional = (f: FieldSpec): FieldSpec => ({ ...f, optional: true });

const SLOT_FIELD: FieldSpec = { kind: 'slot' };
/** MDB coin types are 0..15 (the low nibble of a coin report). */
const COIN_TYPE = integer(0, 15);
const TUBES: FieldSpec = { kind: 'counts', maxItems: 16, max: U8 };

// The firmware's vocabularies (firmware/command/vocabulary.ts, journal/vocabulary.ts), written out: the gateway
// does not import firmware code, and the drift test checks every name the firmware has is here.
const COMMANDS = ['set-prices', 'restock', 'lock', 'unlock', 'reboot', 'set-config', 'report', 'audit', 'vend', 'rotate-key', 'update', 'unknown'];
const OUTCOMES = ['applied', 'stale', 'refused', 'failed', 'interrupted', 'unsupported'];
// The last five: an update command's own refusals (docs/updates.md "What the machine reports").
const REFUSALS = ['busy', 'sold-out', 'unknown-slot', 'locked', 'bad-args', 'out-of-service', 'storage-full', 'downgrade', 'too-large', 'journal-format', 'no-slots', 'on-probation'];
/** An update's steps after update-begin, and why one ended without a new image running (docs/updates.md). */
const UPDATE_PHASES = ['downloaded', 'failed', 'installing', 'confirmed', 'rolled-back'];
/** A firmware version as a machine journals it (the registry's rule, gateway/firmware/image.ts). */
const VERSION: FieldSpec = { kind: 'match', pattern: /^(?:0|[1-9][0-9]{0,3})\.(?:0|[1-9][0-9]{0,3})\.(?:0|[1-9][0-9]{0,3})$/, rule: 'a version MAJOR.MINOR.PATCH' };
const SHA256: FieldSpec = { kind: 'match', pattern: /^[0-9a-f]{64}$/, rule: 'a SHA-256, 64 lower-case hex digits' };
const REJECTIONS = ['bad-signature', 'unknown-key', 'expired', 'replay', 'malformed', 'wrong-machine', 'oversized'];
const SETTINGS = ['telemetryIntervalMs', 'sessionTimeoutMs', 'dropTimeoutMs', 'changePolicy'];
const CARD_OUTCOMES = ['success', 'refunded', 'sold-reader-reset', 'unrefunded', 'uncertain', 'not-dispensed'];

/** Every event type the firmware publishes and its fields (besides seq, t and type). */
export const EVENT_FIELDS: ReadonlyMap<string, EventFields> = new Map<string, EventFields>([
  ['init', { slots: integer(0, U8), layout: integer(0, U32) }],
  ['boot', {}],
  ['coin-in', { coinType: COIN_TYPE, routing: oneOf(['tubes', 'cashbox']), value: money(U16) }],
  ['bill-stacking', { value: money(U32), stackerBefore: integer(0, U16) }],
  ['bill-stacked', { value: money(U32) }],
  ['bill-returned', { value: money(U32) }],
  ['vend-start', { slot: SLOT_FIELD, price: money(U32) }],
  ['vend-ok', { slot: SLOT_FIELD, price: money(U32) }],
  ['vend-fail', { slot: SLOT_FIELD, reason: oneOf(['jam', 'sensor']) }],
  ['vend-uncertain', { slot: SLOT_FIELD }],
  ['payout-start', { asked: money(U32), tubes: TUBES }],
  ['payout-done', { paid: money(U32), coins: integer(0, U16), perType: { kind: 'per-type', maxKey: 15, max: U8 } }],
  ['coins-manual', { coinType: COIN_TYPE, count: integer(0, U8), value: money(U32) }],
  ['interim-reset', {}],
  // The one signed amount: a correction of the customer's credit after journal damage.
  ['credit-adjust', { delta: money(I32_MAX, I32_MIN) }],
  ['tubes', { tubes: TUBES }],
  [
    'command',
    {
      n: integer(0, U32),
      issued: integer(0, U32),
      command: oneOf(COMMANDS),
      outcome: oneOf(OUTCOMES, 'outcome'),
      // A refused command says why; any other says what it counted (items dispensed).
      reason: optional(oneOf(REFUSALS, 'reason', U16)),
      value: optional(integer(0, U16)),
      // A vend's stock left in the slot (0xffff in the record means none, and is left out).
      remaining: optional(integer(0, U16 - 1)),
    },
  ],
  ['command-rejected', { n: integer(0, U32), reason: oneOf(REJECTIONS, 'reason'), suppressed: integer(0, U16) }],
  ['price', { slot: SLOT_FIELD, price: money(U32), n: integer(0, U32) }],
  ['planogram', { slot: SLOT_FIELD, price: money(U32), qty: integer(0, U16), capacity: integer(0, U16), sku: integer(0, U32), n: integer(0, U32) }],
  ['lock', { locked: integer(0, 1), n: integer(0, U32) }],
  ['setting', { setting: oneOf(SETTINGS, 'setting'), value: integer(0, U32), n: integer(0, U32) }],
  ['remote-vend', { n: integer(0, U32), slot: SLOT_FIELD, quantity: integer(0, U8), price: money(U32) }],
  ['audit-read', { read: integer(0, U32), wall: integer(0, U32) }],
  ['card-approved', { slot: SLOT_FIELD, amount: money(U32) }],
  ['card-result', { outcome: oneOf(CARD_OUTCOMES, 'outcome'), slot: SLOT_FIELD, amount: money(U32) }],
  // Firmware updates (docs/updates.md "What the machine reports"): the machine took an update command, then each step after.
  ['update-begin', { n: integer(0, U32), version: VERSION, size: integer(1, U32), sha256: SHA256, journal: integer(0, U16) }],
  // A rollback's reason is the slot's (cut to 120 characters there): crash, watchdog, power, restart or "probation: <what failed>".
  ['update', { n: integer(0, U32), phase: oneOf(UPDATE_PHASES, 'phase'), version: VERSION, reason: optional({ kind: 'text', maxLength: 120 }) }],
]);

/** Event types written before the firmware that writes them (the drift test knows them as such until it does): none now. */
export const AHEAD_OF_FIRMWARE: ReadonlySet<string> = new Set();

/** The fields every event has besides `type`: the journal's sequence number and time (seconds). */
const SEQ = integer(1, U32);
const TIME = integer(0, U32);

// ---- checking --------------------------------------------------------------------------------

/** A value for a log line: short, and with controls escaped. */
function show(v: unknown): string {
  if (typeof v === 'string') {
    const head = JSON.stringify(v.length > 24 ? v.slice(0, 24) : v);
    return v.length > 24 ? `text of ${v.length} characters ${head.slice(0, -1)}..."` : `text ${head}`;
  }
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : `the number ${String(v)}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const isWhole = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** Why text is not printable text of at most `max` characters, or undefined. */
function badText(v: string, max: number): string | undefined {
  if (v.length > max) return `is ${v.length} characters long; at most ${max}`;
  if (CONTROL.test(v)) return `holds a control character (${show(v)})`;
  // A lone surrogate: jsonb refuses its escape.
  if (!v.isWellFormed()) return `is not well-formed Unicode (${show(v)})`;
  return undefined;
}

/** `<prefix>-<n>` with n a plain decimal 0..max. */
function isFallback(v: string, prefix: string, max: number): boolean {
  if (!v.startsWith(`${prefix}-`)) return false;
  const digits = v.slice(prefix.length + 1);
  return /^(?:0|[1-9][0-9]{0,9})$/.test(digits) && Number(digits) <= max;
}

type Failure = { field: string; reason: string };
const fail = (field: string, reason: string): Failure => ({ field, reason: `${field} ${reason}` });

/** Check one value against its kind; a failure names `field` (or the item inside it). */
function checkField(field: string, spec: FieldKind, v: unknown): Failure | undefined {
  switch (spec.kind) {
    case 'integer':
      return isWhole(v, spec.min, spec.max) ? undefined : fail(field, `must be an integer from ${spec.min} to ${spec.max}; got ${show(v)}`);
    case 'money':
      return isWhole(v, spec.min, spec.max) ? undefined : fail(field, `must be an integer amount of minor units from ${spec.min} to ${spec.max}; got ${show(v)}`);
    case 'slot':
      return typeof v === 'string' && SLOT.test(v) ? undefined : fail(field, `must be a slot code (1 to 4 of A-Z and 0-9, or #0 to #255); got ${show(v)}`);
    case 'enum': {
      if (typeof v === 'string' && (spec.values.includes(v) || (spec.fallback !== undefined && isFallback(v, spec.fallback, spec.fallbackMax ?? U8)))) return undefined;
      const also = spec.fallback === undefined ? '' : ` or ${spec.fallback}-<number>`;
      return fail(field, `must be one of ${spec.values.join(', ')}${also}; got ${show(v)}`);
    }
    case 'text': {
      if (typeof v !== 'string') return fail(field, `must be text; got ${show(v)}`);
      const why = badText(v, spec.maxLength);
      return why === undefined ? undefined : fail(field, why);
    }
    case 'match':
      return typeof v === 'string' && spec.pattern.test(v) ? undefined : fail(field, `must be ${spec.rule}; got ${show(v)}`);
    case 'counts': {
      if (!Array.isArray(v) || v.length > spec.maxItems) return fail(field, `must be a list of at most ${spec.maxItems} counts; got ${show(v)}`);
      const list: readonly unknown[] = v;
      for (let i = 0; i < list.length; i++) {
        if (!isWhole(list[i], 0, spec.max)) return fail(`${field}[${i}]`, `must be an integer from 0 to ${spec.max}; got ${show(list[i])}`);
      }
      return undefined;
    }
    case 'per-type': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(field, `must be an object of coin type to count; got ${show(v)}`);
      const keys = Object.keys(v);
      if (keys.length > spec.maxKey + 1) return fail(field, `has ${keys.length} coin types; at most ${spec.maxKey + 1}`);
      const map = v as Record<string, unknown>;
      for (const k of keys) {
        if (!/^(?:0|[1-9][0-9]?)$/.test(k) || Number(k) > spec.maxKey) return fail(`${field}.${clipName(k)}`, `is not a coin type (0 to ${spec.maxKey})`);
        if (!isWhole(map[k], 0, spec.max)) return fail(`${field}.${k}`, `must be an integer from 0 to ${spec.max}; got ${show(map[k])}`);
      }
      return undefined;
    }
  }
}

/** A field name for a reason: bounded, controls escaped. */
function clipName(k: string): string {
  const s = JSON.stringify(k.length > 32 ? `${k.slice(0, 32)}...` : k);
  return s.slice(1, -1);
}

/**
 * A field the contract does not list (any field of an unknown type): flat
 * and bounded, the shapes the firmware's describer writes: an integer
 * JavaScript holds exactly, short printable text, a list of integers, or a
 * map of integers.
 */
function checkLoose(field: string, v: unknown): Failure | undefined {
  const scalar = (f: string, x: unknown): Failure | undefined =>
    isWhole(x, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ? undefined : fail(f, `must be an integer from -(2^53-1) to 2^53-1; got ${show(x)}`);
  if (typeof v === 'string') {
    const why = badText(v, MAX_TEXT);
    return why === undefined ? undefined : fail(field, why);
  }
  if (Array.isArray(v)) {
    const list: readonly unknown[] = v;
    if (list.length > MAX_ITEMS) return fail(field, `is a list of ${list.length}; at most ${MAX_ITEMS}`);
    for (let i = 0; i < list.length; i++) {
      const f = scalar(`${field}[${i}]`, list[i]);
      if (f) return f;
    }
    return undefined;
  }
  if (typeof v === 'object' && v !== null) {
    const map = v as Record<string, unknown>;
    const keys = Object.keys(map);
    if (keys.length > MAX_ITEMS) return fail(field, `has ${keys.length} entries; at most ${MAX_ITEMS}`);
    for (const k of keys) {
      if (!MAP_KEY.test(k)) return fail(`${field}.${clipName(k)}`, 'is not a key (1 to 32 of A-Z a-z 0-9 _ -)');
      const f = scalar(`${field}.${k}`, map[k]);
      if (f) return f;
    }
    return undefined;
  }
  return scalar(field, v);
}

/**
 * Check one event against the contract before it is stored. The reason
 * names the field and what was wrong with it.
 */
export function checkEvent(e: Record<string, unknown>): CheckResult {
  const keys = Object.keys(e);
  if (keys.length > MAX_FIELDS) return { ok: false, ...fail(clipName(keys[MAX_FIELDS]!), `is one field too many: an event has at most ${MAX_FIELDS} fields (this one has ${keys.length})`) };
  const own = (k: string): unknown => (Object.hasOwn(e, k) ? e[k] : undefined);

  const seq = own('seq');
  const t = own('t');
  const type = own('type');
  if (seq === undefined) return { ok: false, ...fail('seq', 'is missing') };
  const bad = checkField('seq', SEQ, seq) ?? (t === undefined ? fail('t', 'is missing') : checkField('t', TIME, t));
  if (bad) return { ok: false, ...bad };
  if (type === undefined) return { ok: false, ...fail('type', 'is missing') };
  if (typeof type !== 'string' || !EVENT_TYPE.test(type)) return { ok: false, ...fail('type', `must be an event type (a-z, 0-9 and -, at most 32, starting with a letter); got ${show(type)}`) };

  // A Map, so that a type named like an Object property (constructor) is just unknown.
  const fields = EVENT_FIELDS.get(type) ?? {};
  for (const name of Object.keys(fields)) {
    const spec = fields[name]!;
    const v = own(name);
    if (v === undefined) {
      if (spec.optional) continue;
      return { ok: false, ...fail(name, `is missing (a ${type} event has it)`) };
    }
    const f = checkField(name, spec, v);
    if (f) return { ok: false, ...f };
  }
  for (const name of keys) {
    if (name === 'seq' || name === 't' || name === 'type' || Object.hasOwn(fields, name)) continue;
    if (!FIELD_NAME.test(name)) return { ok: false, ...fail(clipName(name), 'is not a field name (a letter, then letters and digits, at most 32)') };
    const f = checkLoose(name, e[name]);
    if (f) return { ok: false, ...f };
  }
  return { ok: true };
}
