/**
 * Journal record types and the one codec for their payloads
 * (docs/journal-format.md). Each type is defined once, here: its type byte,
 * its name and its fields in payload order (`record`). The journal writes
 * fields with `put`, the ledger and the uplink's describer read them with
 * `get`; no other file knows an offset or a width. (littlefs builds and
 * reads its tags only through LFS_MKTAG and the lfs_tag_* accessors: the
 * same idea.)
 *
 * A field is named where it is used, `get(d, o, R_COIN_IN, 'value')`, and
 * the compiler checks the name against the type's layout, which rides along
 * in the type of R_COIN_IN (at run time the type byte alone). The layouts
 * themselves are a few flat tables: no object per field or per record on
 * the device's heap, and reading or writing allocates nothing (fields are
 * read out of the flash buffer at the record's offset and written into the
 * journal's payload buffer). Each field follows the one before it without a
 * gap; the payload's size is their sum. Little-endian.
 *
 * Events carry consecutive sequence numbers and go to the gateway; meta
 * records (checkpoint, sync, key) carry the sequence number of the event
 * before them and never leave the machine.
 *
 * The two vend outcomes have type bytes of their own shape (0x7F, 0xBF) and
 * every other type is 0xC0..0xFE: when power fails while an outcome is being
 * written, its first byte alone says which outcome it was.
 */
import { SETTINGS } from '../command/vocabulary.js';
import { COIN_TYPES } from '../money/coins.js';

// ---- the codec ----------------------------------------------------------------------------

/** Field kinds: unsigned integers and a signed one (a run of bytes is RUN | its length << 3). */
const U8 = 0;
const U16 = 1;
const U32 = 2;
const I32 = 3;
const RUN = 4;

/** A run of `n` bytes: read as a view, written from an array. */
type Run = number & { readonly run: true };
const bytes = (n: number): Run => (RUN | (n << 3)) as Run;
const widthOf = (kind: number): number => (kind === U8 ? 1 : kind === U16 ? 2 : kind === U32 || kind === I32 ? 4 : kind >> 3);

export type Spec = { readonly [field: string]: number };
/** A record type at run time is its type byte; its layout rides along in its type, for the compiler only. */
export type RecordType<S extends Spec = Spec> = number & { readonly layout?: S };
/** Names of a layout's integer fields, and of its byte runs. */
export type IntField<S extends Spec> = { [K in keyof S]: S[K] extends Run ? never : K }[keyof S] & string;
export type RunField<S extends Spec> = { [K in keyof S]: S[K] extends Run ? K : never }[keyof S] & string;

/** Layout ids: a record's type byte, or (256 up) a layout inside a payload. */
const IDS = 272;
/** Every field of every layout, in order: its name, and its kind << 8 | offset. */
const NAMES: string[] = [];
const CODES: number[] = [];
/** Per layout id: where its fields start and end in NAMES and CODES, and the payload's size. */
const FIRST: number[] = new Array<number>(IDS).fill(0);
const END: number[] = new Array<number>(IDS).fill(0);
const SIZE: number[] = new Array<number>(IDS).fill(0);
/** Record type names by type byte. */
const NAME_OF: string[] = [];

/** Lay out `spec`'s fields in order under `id`, each at the offset after the one before. */
function layout<const S extends Spec>(id: number, spec: S): RecordType<S> {
  FIRST[id] = NAMES.length;
  let offset = 0;
  for (const name of Object.keys(spec)) {
    const kind = spec[name]!;
    NAMES.push(name);
    CODES.push((kind << 8) | offset);
    offset += widthOf(kind);
  }
  END[id] = NAMES.length;
  SIZE[id] = offset;
  return id as RecordType<S>;
}

/** A record type: its type byte, its name and its payload's layout. */
function record<const S extends Spec>(type: number, name: string, spec: S): RecordType<S> {
  NAME_OF[type] = name;
  return layout(type, spec);
}

/** The code (kind << 8 | offset) of field `name` of layout `t` (the compiler has checked that `t` has it). */
function code(t: number, name: string): number {
  // One native search from the layout's first field: its names are unique, so the first match is the field.
  const i = NAMES.indexOf(name, FIRST[t]!);
  if (i < 0 || i >= END[t]!) throw new RangeError(`record type ${t} has no field ${name}`);
  return CODES[i]!;
}

/** Where field `name` of layout `t` starts in its payload (a byte run's first byte, for writing entries into it). */
export function offsetOf<S extends Spec>(t: RecordType<S>, name: keyof S & string): number {
  return code(t, name) & 0xff;
}

/** Bytes of `t`'s payload (of PAYOUT DONE, before its entries). */
export function size(t: RecordType): number {
  return SIZE[t]!;
}

/** The integer field `name` of the `t` payload at `o` in `d`. */
export function get<S extends Spec>(d: Uint8Array, o: number, t: RecordType<S>, name: IntField<S>): number {
  const c = code(t, name);
  const p = o + (c & 0xff);
  switch (c >> 8) {
    case U8:
      return d[p]!;
    case U16:
      return d[p]! | (d[p + 1]! << 8);
    case U32:
      return (d[p]! | (d[p + 1]! << 8) | (d[p + 2]! << 16) | (d[p + 3]! << 24)) >>> 0;
    default:
      return d[p]! | (d[p + 1]! << 8) | (d[p + 2]! << 16) | (d[p + 3]! << 24);
  }
}

/** Write the integer field `name` of a `t` payload that starts `o` bytes into `v` (modulo its width, as typed arrays store). */
export function put<S extends Spec>(v: DataView, t: RecordType<S>, name: IntField<S>, x: number, o = 0): void {
  const c = code(t, name);
  const p = o + (c & 0xff);
  switch (c >> 8) {
    case U8:
      v.setUint8(p, x);
      return;
    case U16:
      v.setUint16(p, x, true);
      return;
    case U32:
      v.setUint32(p, x, true);
      return;
    default:
      v.setInt32(p, x, true);
  }
}

/** The byte run `name` of the `t` payload at `o` in `d` (a view, not a copy). */
export function run<S extends Spec>(d: Uint8Array, o: number, t: RecordType<S>, name: RunField<S>): Uint8Array {
  const c = code(t, name);
  const p = o + (c & 0xff);
  return d.subarray(p, p + (c >> 11));
}

/** Write the byte run `name` of a `t` payload that starts `o` bytes into `payload`, from `src` (missing entries 0). */
export function putRun<S extends Spec>(payload: Uint8Array, t: RecordType<S>, name: RunField<S>, src: ArrayLike<number>, o = 0): void {
  const c = code(t, name);
  const p = o + (c & 0xff);
  const n = c >> 11;
  for (let i = 0; i < n; i++) payload[p + i] = src[i] ?? 0;
}

/** Fields of layout `t` in payload order: name, offset, kind (u8, u16, u32, i32, or bytes and their count). For tests and tools; allocates. */
export function layoutOf(t: RecordType): { name: string; offset: number; kind: string; width: number }[] {
  const out: { name: string; offset: number; kind: string; width: number }[] = [];
  for (let i = FIRST[t]!; i < END[t]!; i++) {
    const kind = CODES[i]! >> 8;
    out.push({ name: NAMES[i]!, offset: CODES[i]! & 0xff, kind: ['u8', 'u16', 'u32', 'i32'][kind] ?? 'bytes', width: widthOf(kind) });
  }
  return out;
}

// ---- record types ------------------------------------------------------------------------------
// Each: its type byte, its name (the uplink's `type`), its fields in payload order.
// A writer caps a count at its field's width.

/** A product was confirmed in the chute: the slot and the price charged. */
export const R_VEND_OK = record(0x7f, 'vend-ok', { slot: U8, price: U32 });
/** A dispense failed: `reason` is the dispenser's (dispense/dispenser.ts: 1 jam, 2 sensor fault). */
export const R_VEND_FAIL = record(0xbf, 'vend-fail', { slot: U8, reason: U8 });
/** The journal was started on this machine, or its slot layout changed: the slot count and the slot-layout hash the books belong to. */
export const R_INIT = record(0xc0, 'init', { slots: U8, layout: U32 });
/** The whole ledger (meta): its payload is Ledger.save's, laid out in checkpoint.ts. */
export const R_CHECKPOINT = record(0xc1, 'checkpoint', {});
/** The firmware started (a power outage or reset happened before it). */
export const R_BOOT = record(0xc2, 'boot', {});
/** A coin was accepted: its MDB coin type, where it went (CoinRouting, vocabulary.ts), its value. */
export const R_COIN_IN = record(0xc3, 'coin-in', { coinType: U8, routing: U8, value: U16 });
/** About to send ESCROW stack: the bill's value and the stacker's bill count before it. */
export const R_BILL_STACKING = record(0xc4, 'bill-stacking', { value: U32, stackerBefore: U16 });
/** A bill reached the stacker. */
export const R_BILL_STACKED = record(0xc5, 'bill-stacked', { value: U32 });
/** A bill was handed back from escrow. */
export const R_BILL_RETURNED = record(0xc6, 'bill-returned', { value: U32 });
/** About to run a spiral: the slot and its price. */
export const R_VEND_START = record(0xc7, 'vend-start', { slot: U8, price: U32 });
/** A vend interrupted by a power cut whose outcome was not recorded. */
export const R_VEND_UNCERTAIN = record(0xc8, 'vend-uncertain', { slot: U8 });
/** About to send DISPENSE: the amount asked, then every tube's count read just before. */
export const R_PAYOUT_START = record(0xc9, 'payout-start', { asked: U32, tubes: bytes(COIN_TYPES) });
/**
 * A payout verified against the tubes: the value paid and the coins
 * counted, then one COIN_COUNT per coin type paid, to the payload's end.
 */
export const R_PAYOUT_DONE = record(0xca, 'payout-done', { paid: U32, coins: U16 });
/** Coins paid with the changer's manual buttons. */
export const R_COINS_MANUAL = record(0xcb, 'coins-manual', { coinType: U8, count: U8, value: U32 });
/** The gateway acknowledged every event up to `seq` (meta). */
export const R_SYNC = record(0xcc, 'sync', { seq: U32 });
/** The interim (since last reset) audit counters were reset. */
export const R_INTERIM_RESET = record(0xcd, 'interim-reset', {});
/** Credit corrected after journal damage made it impossible (negative). */
export const R_CREDIT_ADJUST = record(0xce, 'credit-adjust', { delta: I32 });
/** The changer's tube counts differ from what the journal expected (a cut, an operator): every tube's count. */
export const R_TUBES = record(0xcf, 'tubes', { tubes: bytes(COIN_TYPES) });
/**
 * A remote command was dealt with: the gateway's number for it, when it was
 * issued (Unix s), its type and outcome (command/vocabulary.ts), what the
 * outcome counts (items dispensed, or the reason it was refused), and a
 * vend's slot stock afterwards (0xffff otherwise; firmware before it wrote
 * the 12 bytes up to `remaining`).
 */
export const R_COMMAND = record(0xd0, 'command', { n: U32, issued: U32, command: U8, outcome: U8, value: U16, remaining: U16 });
/** A command was turned away before it was applied: its number as claimed, why, and the rejections not recorded since the last one. */
export const R_COMMAND_REJECTED = record(0xd1, 'command-rejected', { n: U32, reason: U8, suppressed: U16 });
/** A slot's price set by command (`version`: the command's number). */
export const R_PRICE = record(0xd2, 'price', { slot: U8, price: U32, version: U32 });
/** A slot's planogram set by command (`sku`: the product's catalogue number). */
export const R_PLANOGRAM = record(0xd3, 'planogram', { slot: U8, price: U32, qty: U16, capacity: U16, sku: U32, version: U32 });
/** Sales locked (1) or unlocked (0) by command. */
export const R_LOCK = record(0xd4, 'lock', { locked: U8, version: U32 });
/** A setting changed by command (`key`: a SET_* of command/vocabulary.ts). */
export const R_SETTING = record(0xd5, 'setting', { key: U8, value: U32, version: U32 });
/** The command key was replaced (meta, never sent): its id and its 32 bytes. */
export const R_KEY = record(0xd6, 'key', { kid: U8, key: bytes(32) });
/** A remote vend (paid elsewhere) begins: the command's number, the slot, how many, the price of each. */
export const R_REMOTE_VEND = record(0xd7, 'remote-vend', { n: U32, slot: U8, quantity: U8, price: U32 });
/**
 * The audit data was read (EVA-DTS, by command or at the DEX port): the
 * read's number since initialisation, the wall time (Unix s, 0: not known).
 * Clears the interim counters, as the standard's default (SD1 AUTO).
 */
export const R_AUDIT_READ = record(0xd8, 'audit-read', { read: U32, wall: U32 });
/**
 * The cashless reader approved a vend of `slot` for `amount` (written when
 * the approval is heard, before the POLL is acknowledged and before the
 * motor turns). The dispense outcome follows as VEND START / VEND OK or VEND
 * FAIL like any vend; a card VEND OK is a cashless sale.
 */
export const R_CARD_APPROVED = record(0xd9, 'card-approved', { slot: U8, amount: U32 });
/** How a card vend was settled with the reader (`outcome`: a CardOutcome, vocabulary.ts): closes the card vend the approval opened. */
export const R_CARD_RESULT = record(0xda, 'card-result', { outcome: U8, slot: U8, amount: U32 });

/**
 * The machine took an `update` command (docs/updates.md): the command's
 * number, the image's version (update/version.ts), size, the journal format
 * it writes, the command's flags (UPDATE_FORCE, UPDATE_DOWNGRADE) and its
 * SHA-256. Opens the update the ledger holds until a closing UPDATE.
 */
export const R_UPDATE_BEGIN = record(0xdb, 'update-begin', { n: U32, version: U32, size: U32, journal: U16, flags: U8, sha256: bytes(32) });
/** A step of the open update (`phase`: an UpdatePhase, `reason`: an UpdateReason, vocabulary.ts). */
export const R_UPDATE = record(0xdc, 'update', { n: U32, phase: U8, reason: U8, version: U32 });
/** The open update's download reached `offset` with the SHA-256 state `state` there (meta): where it resumes after a power cut. */
export const R_UPDATE_PROGRESS = record(0xdd, 'update-progress', { n: U32, offset: U32, state: bytes(32) });

/** UPDATE BEGIN's flags. */
export const UPDATE_FORCE = 1;
export const UPDATE_DOWNGRADE = 2;

/** An entry after PAYOUT DONE's fields, one per coin type paid: the coin type and how many of it left the tubes. */
export const COIN_COUNT = layout(0x100, { coinType: U8, count: U8 });

// ---- the checkpoint's sections (checkpoint.ts says which versions have which) ----

/** The head: what is open, the credit, the sync cursor, the tubes as a payout started and now. */
export const CP_HEAD = layout(0x101, {
  version: U8,
  slots: U8,
  layout: U32,
  credit: I32,
  synced: U32,
  openVend: U8,
  openVendPrice: U32,
  openPayout: U32,
  openStack: U32,
  openStackBefore: U16,
  payoutTubes: bytes(COIN_TYPES),
  tubes: bytes(COIN_TYPES),
});
/** A counter, by `Counter` index: since initialisation and since the interim reset. */
export const CP_COUNTER = layout(0x102, { total: U32, interim: U32 });
/** A slot's books; version 2 wrote the fields up to `price`, version 3 up to `lastSale`. */
export const CP_SLOT = layout(0x103, {
  qty: U16,
  fault: U8,
  sales: U32,
  revenue: U32,
  salesInterim: U32,
  revenueInterim: U32,
  price: I32,
  capacity: U16,
  sku: U32,
  version: U32,
  lastSale: U32,
});
/** A setting (by SET_* key, 0 unused) and the command that set it. */
export const CP_SETTING = layout(0x104, { value: U32, version: U32 });
/** What commands left: the lock, the settings (CP_SETTING entries), the command window, the clock offset, the key, a remote vend. */
export const CP_COMMANDS = layout(0x105, {
  locked: U8,
  lockVersion: U32,
  settings: bytes(SETTINGS * 8),
  highest: U32,
  seenBelow: U32,
  wallOffset: I32,
  keyId: U8,
  key: bytes(32),
  remoteOpen: U32,
  remoteSlot: U8,
  remoteQty: U8,
  remoteDone: U8,
  remotePrice: U32,
});
/** Audit reads since initialisation and the wall time of the last. */
export const CP_AUDIT = layout(0x106, { reads: U32, lastReadWall: U32 });
/** The newest signed command's time. */
export const CP_CLOCK = layout(0x107, { wallFloor: U32 });
/** The open firmware update (from version 7): UPDATE BEGIN's fields, the phase reached and the download's progress. */
export const CP_UPDATE = layout(0x109, {
  n: U32,
  version: U32,
  size: U32,
  journal: U16,
  flags: U8,
  phase: U8,
  offset: U32,
  sha256: bytes(32),
  state: bytes(32),
});
/** The card vend, after the cashless counters (CP_COUNTER entries) in the cashless block. */
export const CP_CARD = layout(0x108, { vend: U8, slot: U8, amount: U32 });

/** Meta records stay on the machine and take no sequence number of their own. */
export function isMeta(type: number): boolean {
  return type === R_CHECKPOINT || type === R_SYNC || type === R_KEY || type === R_UPDATE_PROGRESS;
}

/** Record type names by type byte: what the uplink calls each (docs/uplink.md). */
export const RECORD_NAMES: { readonly [type: number]: string } = Object.freeze(NAME_OF);

export { CARD_OUTCOMES } from './vocabulary.js';
