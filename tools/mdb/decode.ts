/**
 * MDB trace decoder for bench engineers: reads a wire capture in the format
 * of docs/mdb-trace.md, pairs each peripheral answer with the VMC command it
 * answers, decodes device, command and fields, and flags protocol
 * violations. Pure: text in, data out; the CLI (tools/mdb.ts) does the I/O.
 *
 * Facts from /work/shared/reference/mdb.md (MDB/ICP 4.2).
 */
import { CURRENCIES } from '../../hal-sim/currency.js';

// ---- the capture -----------------------------------------------------------------------

export type Direction = 'vmc' | 'periph';

export interface Word {
  byte: number;
  /** The 9th (mode) bit. */
  mode: boolean;
}

export interface Frame {
  /** Line of the capture (1-based; 0 for frames not read from text). */
  line: number;
  /** When the frame's first byte was seen, in microseconds (if the capture says). */
  timeUs: number | undefined;
  dir: Direction;
  words: Word[];
}

export interface LineError {
  line: number;
  message: string;
}

/** The capture has lines that cannot be read; all of them are listed. */
export class CaptureError extends Error {
  readonly errors: LineError[];
  constructor(errors: LineError[]) {
    super(errors.map((e) => `line ${e.line}: ${e.message}`).join('\n'));
    this.name = 'CaptureError';
    this.errors = errors;
  }
}

export const MODE_BIT = 0x100;
export const ACK = 0x00;
export const RET = 0xaa;
export const NAK = 0xff;
/** A block is at most 36 bytes including the checksum. */
export const MAX_BLOCK = 36;
/** 11 bits per character at 9600 baud. */
export const CHAR_US = 11_000_000 / 9600;
export const T_RESPONSE_US = 5000;
export const MAX_INTER_BYTE_US = 1000;

const DIRECTIONS: Record<string, Direction> = { '>': 'vmc', vmc: 'vmc', '<': 'periph', per: 'periph' };

/** Read one capture line; undefined for blank and comment-only lines. Throws a message string. */
function parseLine(text: string, line: number): Frame | undefined {
  const hash = text.indexOf('#');
  const body = (hash >= 0 ? text.slice(0, hash) : text).trim();
  if (body === '') return undefined;
  const tokens = body.split(/\s+/);
  let i = 0;
  let timeUs: number | undefined;
  if (!(tokens[0]!.toLowerCase() in DIRECTIONS)) {
    timeUs = parseTime(tokens[0]!);
    i = 1;
  }
  const dirToken = tokens[i];
  if (dirToken === undefined) throw 'a direction (> or VMC, < or PER) must follow the time';
  const dir = DIRECTIONS[dirToken.toLowerCase()];
  if (!dir) throw `"${dirToken}" is not a direction (> or VMC, < or PER)`;
  const words: Word[] = [];
  for (const t of tokens.slice(i + 1)) words.push(parseWord(t));
  if (words.length === 0) throw 'no bytes after the direction';
  return { line, timeUs, dir, words };
}

function parseTime(t: string): number {
  // Integer: microseconds. With a decimal point: seconds.
  if (/^\d+$/.test(t)) return Number(t);
  if (/^\d*\.\d+$/.test(t)) return Math.round(Number(t) * 1e6);
  throw `"${t}" is neither a time (microseconds, or seconds with a decimal point) nor a direction`;
}

function parseWord(t: string): Word {
  let m = /^([0-9a-f]{2})(!?)$/i.exec(t);
  if (m) return { byte: parseInt(m[1]!, 16), mode: m[2] === '!' };
  m = /^([01])([0-9a-f]{2})$/i.exec(t);
  if (m) return { byte: parseInt(m[2]!, 16), mode: m[1] === '1' };
  throw `"${t}" is not a byte (two hex digits, "!" for the mode bit, or a 9-bit value 000..1FF)`;
}

/** Read a whole capture. Throws CaptureError listing every unreadable line. */
export function parseCapture(text: string): Frame[] {
  const frames: Frame[] = [];
  const errors: LineError[] = [];
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    try {
      const f = parseLine(lines[n]!, n + 1);
      if (f) frames.push(f);
    } catch (e) {
      if (typeof e !== 'string') throw e;
      errors.push({ line: n + 1, message: e });
    }
  }
  if (errors.length > 0) throw new CaptureError(errors);
  return frames;
}

function hex2(b: number): string {
  return (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
}

/** One frame as a capture line. */
export function formatCaptureLine(f: Frame): string {
  const bytes = f.words.map((w) => hex2(w.byte) + (w.mode ? '!' : '')).join(' ');
  const time = f.timeUs === undefined ? '' : `${formatSeconds(f.timeUs)} `;
  return `${time}${f.dir === 'vmc' ? '>' : '<'} ${bytes}`;
}

export function formatSeconds(us: number): string {
  return (us / 1e6).toFixed(6);
}

/**
 * Groups the 9-bit words seen on the wire into frames, as a logic analyser
 * would: a VMC word with the mode bit starts a block, a peripheral's block
 * ends with its mode bit, and a gap longer than a character plus the
 * allowed inter-byte gap ends whatever was open.
 */
export class WireCapture {
  private readonly list: Frame[] = [];
  private open: Frame | undefined;
  private lastUs = -Infinity;

  add(dir: Direction, word: number, atUs: number): void {
    const w: Word = { byte: word & 0xff, mode: (word & MODE_BIT) !== 0 };
    const cur = this.open;
    const close = atUs - this.lastUs <= CHAR_US + MAX_INTER_BYTE_US + 300;
    this.lastUs = atUs;
    if (cur && cur.dir === dir && close && !(dir === 'vmc' && w.mode)) {
      cur.words.push(w);
    } else {
      const f: Frame = { line: 0, timeUs: Math.round(atUs), dir, words: [w] };
      this.list.push(f);
      this.open = f;
    }
    if (dir === 'periph' && w.mode) this.open = undefined;
  }

  get frames(): readonly Frame[] {
    return this.list;
  }

  /** The capture text; `header` lines become comments. */
  toText(header: readonly string[] = []): string {
    const out = header.map((h) => `# ${h}`);
    for (const f of this.list) out.push(formatCaptureLine(f));
    return out.join('\n') + '\n';
  }
}

// ---- decoded frames -----------------------------------------------------------------------

export type FlagKind =
  | 'checksum'
  | 'mode-bit'
  | 'unsolicited'
  | 'misplaced-control'
  | 'not-acknowledged'
  | 'retransmit'
  | 'unknown-address'
  | 'unknown-command'
  | 'too-long'
  | 'non-response'
  | 'command-length'
  | 'answer'
  | 'field'
  | 'level'
  | 'timing';

export interface Flag {
  /** Violations break the protocol; warnings are worth a look (a silent device, an unknown command). */
  severity: 'violation' | 'warning';
  kind: FlagKind;
  text: string;
}

export type FrameKind = 'command' | 'data' | 'ack' | 'nak' | 'ret' | 'bytes';

export interface Decoded {
  frame: Frame;
  kind: FrameKind;
  /** Device name ('changer', 'bill validator', 'cashless #1', ...), '?' if unknown. */
  device: string;
  /** What the frame is: the command's name, '<command> data', 'ACK', ... */
  what: string;
  fields: string[];
  flags: Flag[];
  checksum: 'ok' | 'bad' | 'none';
  /** For answers and the VMC's ACK/NAK/RET: the line they belong to. */
  replyTo: number | undefined;
}

export interface DeviceCounts {
  commands: number;
  data: number;
  acks: number;
  naks: number;
  nonResponses: number;
}

export interface Summary {
  frames: number;
  vmc: number;
  periph: number;
  devices: Record<string, DeviceCounts>;
  violations: number;
  warnings: number;
  badChecksums: number;
  nonResponses: number;
}

export interface DecodeResult {
  frames: Decoded[];
  summary: Summary;
}

// ---- device knowledge (learned from SETUP answers, used to show values) --------------------

interface DeviceState {
  level: number | undefined;
  scale: number | undefined;
  decimals: number | undefined;
  /** Credit per coin/bill type in scale units. */
  credits: number[] | undefined;
  /** The answer being decoded has a good checksum: what it says may be learned. */
  trusted: boolean;
}

function newState(): DeviceState {
  return { level: undefined, scale: undefined, decimals: undefined, credits: undefined, trusted: true };
}

function money(units: number, decimals: number): string {
  if (decimals <= 0) return String(units);
  const s = String(Math.abs(units)).padStart(decimals + 1, '0');
  return `${units < 0 ? '-' : ''}${s.slice(0, -decimals)}.${s.slice(-decimals)}`;
}

/** A scaled amount in money once SETUP told the scale and decimals. */
function amount(scaled: number, s: DeviceState): string {
  if (s.scale === undefined || s.decimals === undefined) return `${scaled} (scaled)`;
  return money(scaled * s.scale, s.decimals);
}

/** "type 2 (0.25)" once SETUP told the credits. */
function typeLabel(type: number, s: DeviceState): string {
  const credit = s.credits?.[type];
  if (credit === undefined || s.scale === undefined || s.decimals === undefined) return `type ${type}`;
  if (credit === 0) return `type ${type} (unused)`;
  if (credit === 0xff) return `type ${type} (token)`;
  return `type ${type} (${money(credit * s.scale, s.decimals)})`;
}

function currency(hi: number, lo: number): string {
  const code = (hi << 8) | lo;
  const digits = [hi >> 4, hi & 15, lo >> 4, lo & 15];
  if (digits.some((d) => d > 9)) return `currency 0x${code.toString(16).padStart(4, '0')} (not BCD)`;
  const numeric = digits[1]! * 100 + digits[2]! * 10 + digits[3]!;
  // A leading 1 marks an ISO 4217 numeric code.
  const name = digits[0] === 1 ? Object.keys(CURRENCIES).find((k) => CURRENCIES[k]!.numeric === numeric) : undefined;
  const iso = digits[0] === 1 ? `ISO ${String(numeric).padStart(3, '0')}` : 'not ISO 4217';
  return `currency ${hex2(hi)}${hex2(lo)} (${name ? `${name}, ` : ''}${iso})`;
}

function types(mask: number): string {
  if (mask === 0) return 'none';
  const list: number[] = [];
  for (let t = 0; t < 16; t++) if (mask & (1 << t)) list.push(t);
  return list.join(',');
}

function mask16(hi: number, lo: number): number {
  return (hi << 8) | lo;
}

function ascii(d: readonly number[], from: number, n: number): string {
  let s = '';
  for (let i = from; i < from + n && i < d.length; i++) {
    const c = d[i]!;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
  }
  return `"${s.trimEnd()}"`;
}

function bcdVersion(hi: number, lo: number): string {
  return `${hex2(hi)}${hex2(lo)}`;
}

// ---- the command tables --------------------------------------------------------------------

type Len = number | { min: number; max: number; even?: boolean };

interface DataAnswer {
  label: string;
  len: Len;
  decode: (d: readonly number[], s: DeviceState) => string[];
}

interface CommandSpec {
  name: string;
  /** Data bytes the VMC sends after the address byte (after the sub-command for sub-commands). */
  len: number;
  /** The device may answer ACK. */
  ack: boolean;
  /** The device may answer data. */
  data: DataAnswer | undefined;
  fields?: (d: readonly number[], s: DeviceState) => string[];
  /** Lowest device level (from SETUP) this command exists at. */
  minLevel?: number;
}

interface SubTable {
  name: string;
  subs: Record<number, CommandSpec>;
}

interface DeviceSpec {
  name: string;
  /** By the low 3 bits of the address byte. */
  commands: Record<number, CommandSpec | SubTable>;
}

const ackOnly = (name: string, len = 0, fields?: CommandSpec['fields'], minLevel?: number): CommandSpec => ({
  name,
  len,
  ack: true,
  data: undefined,
  ...(fields ? { fields } : {}),
  ...(minLevel !== undefined ? { minLevel } : {}),
});

const dataOnly = (name: string, label: string, len: Len, decode: DataAnswer['decode'], minLevel?: number): CommandSpec => ({
  name,
  len: 0,
  ack: false,
  data: { label, len, decode },
  ...(minLevel !== undefined ? { minLevel } : {}),
});

// -- coin changer (0x08) --

const CHANGER_STATUS: Record<number, string> = {
  0x01: 'escrow lever pressed',
  0x02: 'payout busy',
  0x03: 'no credit',
  0x04: 'defective tube sensor',
  0x05: 'double arrival',
  0x06: 'acceptor unplugged',
  0x07: 'tube jam',
  0x08: 'ROM checksum error',
  0x09: 'coin routing error',
  0x0a: 'changer busy',
  0x0b: 'changer was reset (just reset)',
  0x0c: 'coin jam',
  0x0d: 'possible credited-coin removal',
};

const ROUTING = ['cash box', 'tubes', 'routing 2 (undefined)', 'reject'];

function changerSetup(d: readonly number[], s: DeviceState): string[] {
  const f = [`level ${d[0]}`, currency(d[1]!, d[2]!), `scale ${d[3]}`, `${d[4]} decimals`, `tube coins ${types(mask16(d[5]!, d[6]!))}`];
  const credits = d.slice(7, 23);
  const scale = d[3]! || 1;
  const coins = credits.map((c, t) => (c === 0 ? '' : c === 0xff ? `${t}:token` : `${t}:${money(c * scale, d[4]!)}`)).filter((x) => x);
  f.push(`coins ${coins.join(' ') || 'none'}`);
  if (s.trusted) {
    s.level = d[0];
    s.scale = scale;
    s.decimals = d[4];
    s.credits = credits;
  }
  return f;
}

function changerTubes(d: readonly number[]): string[] {
  const full = mask16(d[0]!, d[1]!);
  const f = [`full ${types(full)}`];
  const counts: string[] = [];
  for (let t = 0; t < 16 && 2 + t < d.length; t++) {
    const n = d[2 + t]!;
    const isFull = (full & (1 << t)) !== 0;
    if (n > 0 || isFull) counts.push(`${t}:${n}${isFull && n === 0 ? ' (faulty tube)' : ''}`);
  }
  f.push(`counts ${counts.join(' ') || 'all empty'}`);
  return f;
}

function changerPoll(d: readonly number[], s: DeviceState): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < d.length) {
    const b = d[i]!;
    if (b & 0x80) {
      const z = d[i + 1];
      out.push(`dispensed manually ${(b >> 4) & 7} x ${typeLabel(b & 15, s)}${z === undefined ? ' (tube count missing)' : `, ${z} left in tube`}`);
      i += 2;
    } else if ((b & 0xc0) === 0x40) {
      const z = d[i + 1];
      const routing = (b >> 4) & 3;
      const what = routing === 3 ? 'coin rejected' : 'coin deposited';
      out.push(`${what} ${typeLabel(b & 15, s)}${routing === 3 ? '' : ` to ${ROUTING[routing]}`}${z === undefined ? ' (tube count missing)' : `, ${z} in tube`}`);
      i += 2;
    } else if ((b & 0xe0) === 0x20) {
      out.push(`${b & 0x1f} slugs`);
      i++;
    } else {
      out.push(CHANGER_STATUS[b] ?? `status 0x${hex2(b)} (unknown)`);
      i++;
    }
  }
  return out;
}

function changerId(d: readonly number[]): string[] {
  const opts = d.length >= 33 ? ((d[29]! << 24) | (d[30]! << 16) | (d[31]! << 8) | d[32]!) >>> 0 : 0;
  const names = ['alternative payout', 'extended diagnostics', 'controlled manual fill/payout', 'file transport'];
  const on = names.filter((_, b) => opts & (1 << b));
  return [`manufacturer ${ascii(d, 0, 3)}`, `serial ${ascii(d, 3, 12)}`, `model ${ascii(d, 15, 12)}`, `software ${bcdVersion(d[27] ?? 0, d[28] ?? 0)}`, `options ${on.join(', ') || 'none'}`];
}

function changerDiag(d: readonly number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < d.length; i += 2) {
    const code = mask16(d[i]!, d[i + 1]!);
    const text = code === 0x0300 ? 'OK' : code === 0x0600 ? 'inhibited by VMC' : (code & 0xf000) === 0x1000 ? 'error' : 'status';
    out.push(`${hex2(d[i]!)}${hex2(d[i + 1]!)} ${text}`);
  }
  return out;
}

const CHANGER: DeviceSpec = {
  name: 'changer',
  commands: {
    0: ackOnly('RESET'),
    1: dataOnly('SETUP', 'setup data', 23, changerSetup),
    2: dataOnly('TUBE STATUS', 'tube status', 18, changerTubes),
    3: { name: 'POLL', len: 0, ack: true, data: { label: 'poll data', len: { min: 1, max: 16 }, decode: changerPoll } },
    4: ackOnly('COIN TYPE', 4, (d, s) => {
      const accept = mask16(d[0]!, d[1]!);
      const manual = mask16(d[2]!, d[3]!);
      const label = (m: number): string => (s.credits && m ? types(m).split(',').map((t) => typeLabel(Number(t), s)).join(', ') : types(m));
      return [accept === 0 ? 'accept none (acceptance disabled)' : `accept ${label(accept)}`, `manual dispense ${types(manual)}`];
    }),
    5: ackOnly('DISPENSE', 1, (d, s) => [`${d[0]! >> 4} x ${typeLabel(d[0]! & 15, s)}`]),
    7: {
      name: 'EXPANSION',
      subs: {
        0x00: dataOnly('EXPANSION IDENTIFICATION', 'identification', 33, changerId, 3),
        0x01: ackOnly('EXPANSION FEATURE ENABLE', 4, (d) => [`features 0x${d.map(hex2).join('')}`], 3),
        0x02: ackOnly('EXPANSION PAYOUT', 1, (d, s) => [`value ${amount(d[0]!, s)}`], 3),
        0x03: {
          name: 'EXPANSION PAYOUT STATUS',
          len: 0,
          ack: true,
          data: { label: 'payout status', len: 16, decode: (d, s) => [`paid ${d.map((n, t) => (n ? `${n} x ${typeLabel(t, s)}` : '')).filter((x) => x).join(', ') || 'nothing'}`] },
          minLevel: 3,
        },
        0x04: {
          name: 'EXPANSION PAYOUT VALUE POLL',
          len: 0,
          ack: true,
          data: { label: 'payout value', len: 1, decode: (d, s) => [`paid so far ${amount(d[0]!, s)}`] },
          minLevel: 3,
        },
        0x05: dataOnly('EXPANSION DIAGNOSTIC STATUS', 'diagnostic status', { min: 2, max: 16, even: true }, changerDiag, 3),
      },
    },
  },
};

// -- bill validator (0x30) --

const BILL_ROUTING = [
  'stacked',
  'in escrow',
  'returned',
  'to recycler',
  'disabled bill rejected',
  'to recycler (manual fill)',
  'manual dispense',
  'recycler to cash box',
];

const BILL_STATUS: Record<number, string> = {
  0x01: 'defective motor',
  0x02: 'sensor problem',
  0x03: 'validator busy',
  0x04: 'ROM checksum error',
  0x05: 'validator jammed',
  0x06: 'validator was reset (just reset)',
  0x07: 'bill removed',
  0x08: 'cash box out of position',
  0x09: 'validator disabled',
  0x0a: 'invalid escrow request',
  0x0b: 'bill rejected',
  0x0c: 'possible credited-bill removal',
};

function billSetup(d: readonly number[], s: DeviceState): string[] {
  const scale = mask16(d[3]!, d[4]!) || 1;
  const credits = d.slice(11, 27);
  const bills = credits.map((c, t) => (c === 0 ? '' : c === 0xff ? `${t}:token` : `${t}:${money(c * scale, d[5]!)}`)).filter((x) => x);
  if (s.trusted) {
    s.level = d[0];
    s.scale = scale;
    s.decimals = d[5];
    s.credits = credits;
  }
  return [
    `level ${d[0]}`,
    currency(d[1]!, d[2]!),
    `scale ${scale}`,
    `${d[5]} decimals`,
    `stacker capacity ${mask16(d[6]!, d[7]!)}`,
    `high security ${types(mask16(d[8]!, d[9]!))}`,
    `escrow ${d[10] === 0xff ? 'yes' : d[10] === 0 ? 'no' : `0x${hex2(d[10]!)} (should be FF or 00)`}`,
    `bills ${bills.join(' ') || 'none'}`,
  ];
}

function billPoll(d: readonly number[], s: DeviceState): string[] {
  return d.map((b) => {
    if (b & 0x80) return `bill ${typeLabel(b & 15, s)} ${BILL_ROUTING[(b >> 4) & 7]}`;
    if ((b & 0xe0) === 0x40) return `${b & 0x1f} insert attempts while disabled`;
    return BILL_STATUS[b] ?? `status 0x${hex2(b)} (unknown)`;
  });
}

function billId(d: readonly number[]): string[] {
  const f = [`manufacturer ${ascii(d, 0, 3)}`, `serial ${ascii(d, 3, 12)}`, `model ${ascii(d, 15, 12)}`, `software ${bcdVersion(d[27] ?? 0, d[28] ?? 0)}`];
  if (d.length >= 33) f.push(`options 0x${d.slice(29, 33).map(hex2).join('')}`);
  return f;
}

const BILL: DeviceSpec = {
  name: 'bill validator',
  commands: {
    0: ackOnly('RESET'),
    1: dataOnly('SETUP', 'setup data', 27, billSetup),
    2: ackOnly('SECURITY', 2, (d) => [`high security ${types(mask16(d[0]!, d[1]!))}`]),
    3: { name: 'POLL', len: 0, ack: true, data: { label: 'poll data', len: { min: 1, max: 16 }, decode: billPoll } },
    4: ackOnly('BILL TYPE', 4, (d, s) => {
      const enable = mask16(d[0]!, d[1]!);
      const label = (m: number): string => (s.credits && m ? types(m).split(',').map((t) => typeLabel(Number(t), s)).join(', ') : types(m));
      return [enable === 0 ? 'enable none (acceptance disabled)' : `enable ${label(enable)}`, `escrow ${types(mask16(d[2]!, d[3]!))}`];
    }),
    5: ackOnly('ESCROW', 1, (d) => [d[0] === 1 ? 'stack the bill' : d[0] === 0 ? 'return the bill' : `0x${hex2(d[0]!)} (should be 00 return or 01 stack)`]),
    6: dataOnly('STACKER', 'stacker', 2, (d) => [`${mask16(d[0]! & 0x7f, d[1]!)} bills`, d[0]! & 0x80 ? 'full' : 'not full']),
    7: {
      name: 'EXPANSION',
      subs: {
        0x00: dataOnly('EXPANSION IDENTIFICATION', 'identification', 29, billId),
        0x01: ackOnly('EXPANSION FEATURE ENABLE', 4, (d) => [`features 0x${d.map(hex2).join('')}`]),
        0x02: dataOnly('EXPANSION IDENTIFICATION WITH OPTIONS', 'identification', 33, billId, 2),
      },
    },
  },
};

// -- cashless (0x10, 0x60) --

/** Decode reader messages (POLL data, and data answers to other commands), chained. */
function cashlessMessages(d: readonly number[], s: DeviceState): string[] {
  const out: string[] = [];
  let i = 0;
  const word = (at: number): number => mask16(d[at] ?? 0, d[at + 1] ?? 0);
  const need = (n: number, what: string): boolean => {
    if (i + n <= d.length) return true;
    out.push(`${what} (truncated: ${d.length - i} of ${n} bytes)`);
    i = d.length;
    return false;
  };
  while (i < d.length) {
    const code = d[i]!;
    switch (code) {
      case 0x00:
        out.push('just reset');
        i += 1;
        break;
      case 0x01:
        if (!need(8, 'reader config')) break;
        if (s.trusted) {
          s.level = d[i + 1];
          s.scale = d[i + 4];
          s.decimals = d[i + 5];
        }
        out.push(`reader config: level ${d[i + 1]}`, currency(d[i + 2]!, d[i + 3]!), `scale ${d[i + 4]}`, `${d[i + 5]} decimals`, `max response ${d[i + 6]} s`, `options ${readerOptions(d[i + 7]!)}`);
        i += 8;
        break;
      case 0x02:
        // Display request: time, then the text for the whole display (its size came with SETUP).
        out.push(`display request ${(d[i + 1] ?? 0) / 10} s ${ascii(d, i + 2, d.length - i - 2)}`);
        i = d.length;
        break;
      case 0x03: {
        // Level 1: funds only; level 2+: media id, payment type and data follow.
        const long = s.level !== undefined ? s.level >= 2 : d.length - i >= 10;
        if (!need(long ? 10 : 3, 'begin session')) break;
        const funds = word(i + 1);
        const f = `begin session: funds ${funds === 0xffff ? 'unknown' : amount(funds, s)}`;
        if (long) {
          const media = d.slice(i + 3, i + 7).map(hex2).join('');
          out.push(`${f}, media id ${media}, payment type 0x${hex2(d[i + 7]!)}, payment data ${hex2(d[i + 8]!)}${hex2(d[i + 9]!)}`);
          i += 10;
        } else {
          out.push(f);
          i += 3;
        }
        break;
      }
      case 0x04:
        out.push('session cancel request');
        i += 1;
        break;
      case 0x05:
        if (!need(3, 'vend approved')) break;
        out.push(`vend approved: ${amount(word(i + 1), s)}`);
        i += 3;
        break;
      case 0x06:
        out.push('vend denied');
        i += 1;
        break;
      case 0x07:
        out.push('end session');
        i += 1;
        break;
      case 0x08:
        out.push('cancelled');
        i += 1;
        break;
      case 0x09: {
        const n = s.level !== undefined && s.level >= 3 ? 34 : d.length - i >= 34 ? 34 : 30;
        if (!need(n, 'peripheral ID')) break;
        out.push(`peripheral ID: ${billId(d.slice(i + 1, i + n)).join(', ')}`);
        i += n;
        break;
      }
      case 0x0a:
        if (!need(2, 'malfunction')) break;
        out.push(`malfunction: error 0x${hex2(d[i + 1]!)}`);
        i += 2;
        break;
      case 0x0b:
        out.push('command out of sequence (reset the reader)');
        // Level 2+ adds a status byte; take it if it is not the start of another message.
        i += s.level !== undefined && s.level >= 2 && i + 1 < d.length ? 2 : 1;
        break;
      case 0x0d:
        out.push('revalue approved');
        i += 1;
        break;
      case 0x0e:
        out.push('revalue denied');
        i += 1;
        break;
      default:
        out.push(`message 0x${hex2(code)} (not decoded): ${d.slice(i).map(hex2).join(' ')}`);
        i = d.length;
    }
  }
  return out;
}

function readerOptions(b: number): string {
  const names = ['refunds', 'multivend', 'own display', 'cash sale'];
  const on = names.filter((_, k) => b & (1 << k));
  return on.join(', ') || 'none';
}

const readerData = (label: string): DataAnswer => ({ label, len: { min: 1, max: 35 }, decode: cashlessMessages });

const priceItem = (d: readonly number[], s: DeviceState): string[] => [`price ${amount(mask16(d[0]!, d[1]!), s)}`, `item ${mask16(d[2]!, d[3]!)}`];

const CASHLESS = (name: string): DeviceSpec => ({
  name,
  commands: {
    0: ackOnly('RESET'),
    1: {
      name: 'SETUP',
      subs: {
        0x00: {
          name: 'SETUP CONFIG DATA',
          len: 4,
          ack: false,
          data: { label: 'reader config', len: 8, decode: cashlessMessages },
          fields: (d) => [`VMC level ${d[0]}`, d[1] ? `display ${d[1]}x${d[2]}, type ${d[3]}` : 'no display'],
        },
        0x01: ackOnly('SETUP MAX/MIN PRICES', 4, (d, s) => [`max ${amount(mask16(d[0]!, d[1]!), s)}`, `min ${amount(mask16(d[2]!, d[3]!), s)}`]),
      },
    },
    2: { name: 'POLL', len: 0, ack: true, data: readerData('poll data') },
    3: {
      name: 'VEND',
      subs: {
        0x00: { name: 'VEND REQUEST', len: 4, ack: true, data: readerData('vend result'), fields: priceItem },
        0x01: { name: 'VEND CANCEL', len: 0, ack: true, data: readerData('vend result') },
        0x02: ackOnly('VEND SUCCESS', 2, (d) => [`item ${mask16(d[0]!, d[1]!)}`]),
        0x03: ackOnly('VEND FAILURE'),
        0x04: { name: 'VEND SESSION COMPLETE', len: 0, ack: true, data: readerData('session end') },
        0x05: ackOnly('VEND CASH SALE', 4, priceItem),
      },
    },
    4: {
      name: 'READER',
      subs: {
        0x00: ackOnly('READER DISABLE'),
        0x01: ackOnly('READER ENABLE'),
        0x02: { name: 'READER CANCEL', len: 0, ack: true, data: readerData('cancel result') },
      },
    },
    7: {
      name: 'EXPANSION',
      subs: {
        0x00: {
          name: 'EXPANSION REQUEST ID',
          len: 29,
          ack: false,
          data: { label: 'peripheral ID', len: { min: 30, max: 34 }, decode: cashlessMessages },
          fields: (d) => [`VMC ${billId(d).join(', ')}`],
        },
        0x04: ackOnly('EXPANSION ENABLE OPTIONS', 4, (d) => [`options 0x${d.map(hex2).join('')}`], 3),
      },
    },
  },
});

/** Devices the reference names but this decoder does not know the commands of. */
const OTHER_DEVICES: Record<number, string> = {
  0x18: 'comms gateway',
  0x20: 'display',
  0x40: 'universal satellite 1',
  0x48: 'universal satellite 2',
  0x50: 'universal satellite 3',
  0x58: 'coin hopper 1',
  0x68: 'age verification',
  0x70: 'coin hopper 2',
};

const DEVICES: Record<number, DeviceSpec> = {
  0x08: CHANGER,
  0x10: CASHLESS('cashless #1'),
  0x30: BILL,
  0x60: CASHLESS('cashless #2'),
};

function lenText(len: Len): string {
  if (typeof len === 'number') return `${len} bytes`;
  return `${len.min} to ${len.max}${len.even ? ' (even)' : ''} bytes`;
}

function lenOk(len: Len, n: number): boolean {
  if (typeof len === 'number') return n === len;
  return n >= len.min && n <= len.max && (!len.even || n % 2 === 0);
}

/** Non-response times (reference, Timing): past them the VMC should take the device for offline. */
const NON_RESPONSE_S: Record<string, number> = { changer: 2, 'bill validator': 5, 'cashless #1': 5, 'cashless #2': 5 };

// ---- the decoder ---------------------------------------------------------------------------

interface Exchange {
  command: Decoded;
  spec: CommandSpec | undefined;
  state: DeviceState | undefined;
  /** await-answer: nothing heard yet; await-vmc: data heard, the VMC must ACK/NAK/RET; after-ret; done. */
  phase: 'await-answer' | 'await-vmc' | 'after-ret' | 'done';
  answer: Decoded | undefined;
  ret: Decoded | undefined;
}

function isControl(b: number): boolean {
  return b === ACK || b === RET || b === NAK;
}

function sum(words: readonly Word[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += words[i]!.byte;
  return s & 0xff;
}

export function decodeText(text: string): DecodeResult {
  return decodeCapture(parseCapture(text));
}

export function decodeCapture(frames: readonly Frame[]): DecodeResult {
  const out: Decoded[] = [];
  const states = new Map<number, DeviceState>();
  const summary: Summary = { frames: frames.length, vmc: 0, periph: 0, devices: {}, violations: 0, warnings: 0, badChecksums: 0, nonResponses: 0 };
  let ex: Exchange | undefined;
  /** Unanswered commands in a row, per device, and the last one. */
  const silent = new Map<string, { count: number; first: Decoded; last: Decoded }>();
  let lastTime: number | undefined;

  const counts = (device: string): DeviceCounts => {
    let c = summary.devices[device];
    if (!c) summary.devices[device] = c = { commands: 0, data: 0, acks: 0, naks: 0, nonResponses: 0 };
    return c;
  };
  const flag = (d: Decoded, kind: FlagKind, text: string, severity: Flag['severity'] = 'violation'): void => {
    d.flags.push({ severity, kind, text });
  };

  /** Close the exchange in flight before something new starts. */
  const closeExchange = (): void => {
    if (!ex) return;
    if (ex.phase === 'await-answer') {
      const device = ex.command.device;
      const s = silent.get(device);
      const n = s ? s.count + 1 : 1;
      const first = s ? s.first : ex.command;
      silent.set(device, { count: n, first, last: ex.command });
      counts(device).nonResponses++;
      summary.nonResponses++;
      let text = `no answer (non-response${n > 1 ? ` ${n} in a row` : ''}`;
      const t0 = first.frame.timeUs;
      const t1 = ex.command.frame.timeUs;
      if (n > 1 && t0 !== undefined && t1 !== undefined) {
        const limit = NON_RESPONSE_S[device];
        text += `, silent for ${((t1 - t0) / 1e6).toFixed(3)} s`;
        if (limit !== undefined && t1 - t0 > limit * 1e6) text += `, past the ${device}'s ${limit} s non-response time`;
      }
      flag(ex.command, 'non-response', `${text})`, 'warning');
    } else if (ex.phase === 'await-vmc' && ex.answer) {
      flag(ex.answer, 'not-acknowledged', 'data not acknowledged: the VMC must answer ACK, NAK or RET');
    } else if (ex.phase === 'after-ret' && ex.ret) {
      flag(ex.ret, 'retransmit', 'RET not followed by the answer again');
    }
    ex = undefined;
  };

  for (const frame of frames) {
    const words = frame.words;
    const d: Decoded = { frame, kind: 'bytes', device: '?', what: '', fields: [], flags: [], checksum: 'none', replyTo: undefined };
    out.push(d);
    if (frame.dir === 'vmc') summary.vmc++;
    else summary.periph++;
    if (frame.timeUs !== undefined) {
      if (lastTime !== undefined && frame.timeUs < lastTime) flag(d, 'timing', `time goes backwards (${formatSeconds(frame.timeUs)} after ${formatSeconds(lastTime)})`);
      lastTime = frame.timeUs;
    }
    if (words.length > MAX_BLOCK) flag(d, 'too-long', `${words.length} bytes: a block is at most ${MAX_BLOCK} bytes including CHK`, 'violation');

    if (frame.dir === 'vmc') {
      const first = words[0]!;
      const lone = words.length === 1 && isControl(first.byte);
      if (lone && (!first.mode || ex?.phase === 'await-vmc')) {
        vmcControl(d);
        continue;
      }
      closeExchange();
      vmcCommand(d);
    } else {
      periphFrame(d);
    }
  }

  function vmcControl(d: Decoded): void {
    const w = d.frame.words[0]!;
    d.kind = w.byte === ACK ? 'ack' : w.byte === NAK ? 'nak' : 'ret';
    d.what = w.byte === ACK ? 'ACK' : w.byte === NAK ? 'NAK' : 'RET';
    if (w.mode) flag(d, 'mode-bit', `mode bit set on the VMC's ${d.what} (only an address byte carries it)`);
    const e = ex;
    if (e && e.phase === 'await-vmc' && e.answer) {
      d.device = e.command.device;
      d.replyTo = e.answer.frame.line;
      timing(e.answer, d, 'the VMC answered');
      if (w.byte === ACK) {
        d.fields.push(`data on line ${e.answer.frame.line} accepted`);
        // A warning, not a violation: the capture tool may have misread the byte the VMC read right.
        if (e.answer.checksum === 'bad') flag(d, 'misplaced-control', `ACK of the answer on line ${e.answer.frame.line} whose CHK is bad: the VMC should send RET or NAK`, 'warning');
        e.phase = 'done';
      } else if (w.byte === NAK) {
        d.fields.push('data refused: it comes again at a later POLL');
        e.phase = 'done';
      } else {
        d.fields.push('retransmit now');
        e.phase = 'after-ret';
        e.ret = d;
      }
      return;
    }
    if (e && e.phase === 'after-ret' && e.ret) {
      d.device = e.command.device;
      flag(e.ret, 'retransmit', 'RET not followed by the answer again');
      flag(d, 'misplaced-control', `${d.what} from the VMC while waiting for the answer again after RET on line ${e.ret.frame.line}`);
      e.phase = 'done';
      return;
    }
    if (e && e.phase === 'done' && e.answer && (e.answer.kind === 'ack' || e.answer.kind === 'nak')) {
      d.device = e.command.device;
      flag(d, 'misplaced-control', `${d.what} from the VMC after the peripheral's ${e.answer.what} on line ${e.answer.frame.line}: only a data answer is acknowledged`);
      return;
    }
    if (e && e.phase === 'await-answer') {
      d.device = e.command.device;
      flag(d, 'misplaced-control', `${d.what} from the VMC before any answer to the command on line ${e.command.frame.line}`);
      return;
    }
    flag(d, 'misplaced-control', `${d.what} from the VMC with no data answer to ${w.byte === ACK ? 'acknowledge' : 'refer to'}`);
  }

  function vmcCommand(d: Decoded): void {
    const words = d.frame.words;
    d.kind = 'command';
    const addr = words[0]!.byte;
    if (!words[0]!.mode) flag(d, 'mode-bit', 'mode bit missing on the address byte');
    for (let i = 1; i < words.length; i++) {
      if (words[i]!.mode) flag(d, 'mode-bit', `mode bit set on byte ${i + 1} (from the VMC only the address byte carries it)`);
    }
    let data: number[] = [];
    if (words.length < 2) {
      flag(d, 'checksum', 'no CHK: a block ends with its checksum');
    } else {
      const chk = words[words.length - 1]!.byte;
      const want = sum(words, 0, words.length - 1);
      d.checksum = chk === want ? 'ok' : 'bad';
      if (chk !== want) {
        summary.badChecksums++;
        flag(d, 'checksum', `bad CHK ${hex2(chk)}, expected ${hex2(want)}`);
      }
      data = words.slice(1, -1).map((w) => w.byte);
    }
    const base = addr & 0xf8;
    const cmd = addr & 7;
    const dev = DEVICES[base];
    const e: Exchange = { command: d, spec: undefined, state: undefined, phase: 'await-answer', answer: undefined, ret: undefined };
    ex = e;
    if (!dev) {
      const other = OTHER_DEVICES[base];
      d.device = other ?? `0x${hex2(base)}`;
      d.what = `command ${cmd}`;
      if (data.length) d.fields.push(`data ${data.map(hex2).join(' ')}`);
      if (other) d.fields.push('(not decoded)');
      else flag(d, 'unknown-address', `command to address 0x${hex2(base)}: no known device there`);
      counts(d.device).commands++;
      noteRepeat(d);
      return;
    }
    d.device = dev.name;
    counts(dev.name).commands++;
    let state = states.get(base);
    if (!state) states.set(base, (state = newState()));
    e.state = state;
    const entry = dev.commands[cmd];
    let spec: CommandSpec | undefined;
    let args = data;
    let levelOf: number | undefined;
    if (entry && 'subs' in entry) {
      const sub = data[0];
      if (sub === undefined) {
        d.what = entry.name;
        flag(d, 'command-length', `${entry.name} needs a sub-command byte`);
      } else {
        spec = entry.subs[sub];
        args = data.slice(1);
        if (!spec) {
          d.what = `${entry.name} 0x${hex2(sub)}`;
          flag(d, 'unknown-command', `sub-command 0x${hex2(sub)} of ${entry.name} is not decoded`, 'warning');
        }
      }
    } else {
      spec = entry;
      if (!spec) {
        d.what = `command ${cmd}`;
        flag(d, 'unknown-command', `${dev.name} has no command ${cmd} (address byte 0x${hex2(addr)})`, 'warning');
      }
    }
    if (spec) {
      e.spec = spec;
      d.what = spec.name;
      if (args.length !== spec.len) {
        flag(d, 'command-length', `${spec.name} carries ${spec.len} data byte${spec.len === 1 ? '' : 's'}, got ${args.length}`);
      }
      if (spec.fields && args.length >= spec.len) d.fields.push(...spec.fields(args, state));
      else if (args.length > 0) d.fields.push(`data ${args.map(hex2).join(' ')}`);
      levelOf = spec.minLevel;
      if (levelOf !== undefined && state.level !== undefined && state.level < levelOf) {
        flag(d, 'level', `${spec.name} is a level ${levelOf} command; the ${dev.name} reported level ${state.level}`);
      }
      if (dev === CHANGER && spec.name === 'DISPENSE' && args.length === 1 && args[0]! >> 4 === 0) flag(d, 'field', 'DISPENSE of 0 coins (count is 1 to 15)');
    } else if (data.length > 0) {
      d.fields.push(`data ${data.map(hex2).join(' ')}`);
    }
    noteRepeat(d);
  }

  /** A command identical to the last unanswered one to that device is a retry after a non-response. */
  function noteRepeat(d: Decoded): void {
    const s = silent.get(d.device);
    if (!s) return;
    const a = s.last.frame.words;
    const b = d.frame.words;
    if (a.length === b.length && a.every((w, i) => w.byte === b[i]!.byte)) d.fields.push(`again after no answer (line ${s.last.frame.line})`);
  }

  function periphFrame(d: Decoded): void {
    const words = d.frame.words;
    const last = words.length - 1;
    if (!words[last]!.mode) flag(d, 'mode-bit', words.length === 1 ? 'mode bit missing on the lone ACK/NAK' : 'mode bit missing on the last byte (CHK)');
    for (let i = 0; i < last; i++) {
      if (words[i]!.mode) flag(d, 'mode-bit', `mode bit set on byte ${i + 1}, not on the last byte`);
    }
    let data: number[] = [];
    if (words.length === 1) {
      const b = words[0]!.byte;
      if (b === ACK) {
        d.kind = 'ack';
        d.what = 'ACK';
      } else if (b === NAK) {
        d.kind = 'nak';
        d.what = 'NAK';
      } else {
        d.kind = 'bytes';
        d.what = `byte ${hex2(b)}`;
        flag(d, 'answer', b === RET ? 'RET comes from the VMC only; a peripheral answers ACK, NAK or data with CHK' : 'a one-byte answer must be ACK (00) or NAK (FF); data ends with CHK');
      }
    } else {
      d.kind = 'data';
      data = words.slice(0, last).map((w) => w.byte);
      const chk = words[last]!.byte;
      const want = sum(words, 0, last);
      d.checksum = chk === want ? 'ok' : 'bad';
      if (chk !== want) {
        summary.badChecksums++;
        flag(d, 'checksum', `bad CHK ${hex2(chk)}, expected ${hex2(want)}`);
      }
    }

    const e = ex;
    let note: string | undefined;
    if (!e || e.phase === 'done') {
      flag(d, 'unsolicited', e?.answer ? `peripheral answer without a command (the command on line ${e.command.frame.line} was already answered)` : 'peripheral answer without a command');
      if (d.kind === 'data') d.what = 'data';
      if (data.length) d.fields.push(data.map(hex2).join(' '));
      return;
    }
    d.device = e.command.device;
    d.replyTo = e.command.frame.line;
    if (e.phase === 'await-vmc' && e.answer) {
      flag(d, 'unsolicited', `second answer before the VMC answered the data on line ${e.answer.frame.line}`);
      flag(e.answer, 'not-acknowledged', `data not acknowledged: the peripheral sent again on line ${d.frame.line}`);
    }
    if (e.phase === 'after-ret' && e.ret) {
      d.replyTo = e.ret.frame.line;
      const before = e.answer;
      if (d.kind !== 'data') flag(d, 'retransmit', `after RET on line ${e.ret.frame.line} the peripheral must send its data again, not ${d.what}`);
      else if (before && before.kind === 'data' && before.checksum === 'ok') {
        // A good copy must come back unchanged; after a corrupt one the data may legitimately differ.
        const a = before.frame.words.slice(0, -1);
        if (a.length !== data.length || a.some((w, i) => w.byte !== data[i])) flag(d, 'retransmit', `answer after RET differs from the one on line ${before.frame.line}`);
      }
      if (d.kind === 'data') note = `again after RET (line ${e.ret.frame.line})`;
      timing(e.ret, d, 'answer');
    } else {
      timing(e.command, d, 'answer');
    }
    silent.delete(e.command.device);
    const c = counts(e.command.device);
    if (d.kind === 'ack') c.acks++;
    else if (d.kind === 'nak') c.naks++;
    else if (d.kind === 'data') c.data++;
    e.answer = d;
    e.phase = d.kind === 'data' ? 'await-vmc' : 'done';
    answerFields(d, e, data);
    if (note) d.fields.push(note);
  }

  /** What the answer says, read in the light of the command it answers. */
  function answerFields(d: Decoded, e: Exchange, data: readonly number[]): void {
    const spec = e.spec;
    const name = e.command.what;
    if (d.kind === 'nak') {
      d.fields.push(`${name} refused`);
      return;
    }
    if (!spec) {
      if (d.kind === 'data') {
        d.what = `${name} data`;
        d.fields.push(data.map(hex2).join(' '));
      }
      return;
    }
    if (d.kind === 'ack') {
      if (!spec.ack && spec.data) flag(d, 'answer', `${spec.name} is answered with ${spec.data.label} (${lenText(spec.data.len)}), not ACK`);
      if (spec.name === 'POLL') d.fields.push('nothing to report');
      return;
    }
    if (d.kind !== 'data') return;
    if (!spec.data) {
      d.what = `${spec.name} data`;
      flag(d, 'answer', `${spec.name} is answered with ACK, not ${data.length} bytes of data`);
      d.fields.push(data.map(hex2).join(' '));
      return;
    }
    d.what = `${spec.name} data`;
    if (!lenOk(spec.data.len, data.length)) {
      flag(d, 'answer', `${spec.data.label} should be ${lenText(spec.data.len)}, got ${data.length}`);
    }
    const state = e.state ?? newState();
    state.trusted = d.checksum === 'ok';
    const min = typeof spec.data.len === 'number' ? spec.data.len : spec.data.len.min;
    if (data.length >= min || typeof spec.data.len !== 'number') d.fields.push(...spec.data.decode(data, state));
    else d.fields.push(data.map(hex2).join(' '));
    state.trusted = true;
  }

  /**
   * t-response: from the end of `before` to the start of `after`. Frame times
   * mark a fixed point of their first byte, so the gap is the time difference
   * less `before`'s characters; each of its inter-byte gaps may add 1 ms.
   */
  function timing(before: Decoded, after: Decoded, what: string): void {
    const t0 = before.frame.timeUs;
    const t1 = after.frame.timeUs;
    if (t0 === undefined || t1 === undefined) return;
    const n = before.frame.words.length;
    const gap = t1 - t0 - n * CHAR_US;
    const allowed = T_RESPONSE_US + (n - 1) * MAX_INTER_BYTE_US + 100;
    if (gap > allowed) flag(after, 'timing', `${what} ${(gap / 1000).toFixed(1)} ms after line ${before.frame.line} (t-response is at most 5 ms)`);
  }

  // Counted at the end: some flags land on earlier frames. An exchange cut off by the end of
  // the capture is left unflagged: that is the capture's doing, not the devices'.
  for (const d of out) {
    for (const f of d.flags) {
      if (f.severity === 'violation') summary.violations++;
      else summary.warnings++;
    }
  }
  return { frames: out, summary };
}

// ---- text output -------------------------------------------------------------------------

export interface FormatOptions {
  /** Append the frame's bytes. */
  hex?: boolean;
}

/** One decoded frame as one line: line, time, direction, device, what, fields, flags. */
export function formatDecoded(d: Decoded, options: FormatOptions = {}): string {
  const f = d.frame;
  const time = f.timeUs === undefined ? '-' : formatSeconds(f.timeUs);
  let s = `${String(f.line).padStart(5)}  ${time.padStart(12)}  ${f.dir === 'vmc' ? 'VMC' : 'PER'}  ${d.device.padEnd(14)} ${d.what.padEnd(26)}`;
  if (d.fields.length) s += ` ${d.fields.join('; ')}`;
  if (options.hex) s += `  [${f.words.map((w) => hex2(w.byte) + (w.mode ? '!' : '')).join(' ')}]`;
  for (const flag of d.flags) s += `  ! ${flag.severity === 'warning' ? 'warning: ' : ''}${flag.text}`;
  return s.trimEnd();
}

export function formatSummary(s: Summary): string[] {
  const out = [`frames ${s.frames}: ${s.vmc} from the VMC, ${s.periph} from peripherals`];
  for (const [name, c] of Object.entries(s.devices)) {
    out.push(`  ${name.padEnd(16)} ${c.commands} commands, ${c.data} data answers, ${c.acks} ACK, ${c.naks} NAK, ${c.nonResponses} non-responses`);
  }
  out.push(`violations ${s.violations}, bad checksums ${s.badChecksums}, non-responses ${s.nonResponses}, warnings ${s.warnings}`);
  return out;
}
