/**
 * EVA-DTS (DEX/UCS) audit files: the segments, line by line, and the
 * figures operators use (docs/dex.md). Pure: no I/O.
 *
 * Strict about what makes a file unreadable (a DexError naming the line),
 * lenient about what real machines do: LF or CRLF, vendor lines before DXS,
 * extra or missing trailing elements, truncated files. Those become
 * warnings, as do a wrong G85 check value or SE segment count.
 */

/** Larger files are refused: real audits are a few kilobytes. */
export const MAX_DEX_BYTES = 2 * 1024 * 1024;

export type DexErrorCode = 'empty' | 'too-large' | 'bad-character' | 'bad-segment-id' | 'bad-number' | 'no-st';

export class DexError extends Error {
  constructor(
    /** 1-based line number. */
    readonly line: number,
    readonly code: DexErrorCode,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'DexError';
  }
}

export interface DexSegment {
  /** 1-based line number in the file. */
  line: number;
  /** Segment ID, e.g. VA1. */
  id: string;
  /** Elements after the ID, as written (elements[0] is element 01). */
  elements: string[];
}

export interface ValueCount {
  value: number | null;
  count: number | null;
}

/** "Since initialisation" counters never reset; "since reset" ones are cleared by reads (SD1). */
export interface Totals {
  init: ValueCount;
  reset: ValueCount;
}

export interface CashIn {
  total: number | null;
  toBox: number | null;
  toTubes: number | null;
  bills: number | null;
}

export interface CashOut {
  dispensed: number | null;
  manual: number | null;
}

export interface CoinTube {
  type: number;
  value: number | null;
  count: number | null;
}

export interface DexProduct {
  /** Line of the product's PA1. */
  line: number;
  /** PA101, as written (selection numbers are not always numbers). */
  selection: string;
  price: number | null;
  /** PA103: a product ID or, on many machines, its name. */
  product: string | null;
  /** PA2: vends (count) and paid value. */
  sales: Totals | null;
  /** PA5: machine local time, YYYY-MM-DDTHH:MM:SS (or the date alone). */
  lastSale: string | null;
}

export type CheckStatus = 'ok' | 'mismatch' | 'absent';

export interface DexSummary {
  /** DXS01: maker code and number of the device that wrote the file. */
  sender: string | null;
  /** DXS03, e.g. V0/6. */
  version: string | null;
  machine: { serial: string | null; model: string | null; build: string | null; location: string | null; asset: string | null } | null;
  controlBoard: { serial: string | null; model: string | null; software: string | null } | null;
  /** Implied decimal places of every money figure (ID401, default 2); money is in minor units. */
  decimals: number;
  /** ISO 4217 numeric code (ID402), e.g. 1978 for EUR. */
  currency: number | null;
  /** ID403 where the file has it. */
  currencyCode: string | null;
  /** The machine's local time of the read (no zone): YYYY-MM-DDTHH:MM:SS, or the date alone. */
  readAt: string | null;
  readAtFrom: 'EA3' | 'ID5' | null;
  /** EA3. */
  reads: { withReset: number | null; total: number | null; resets: number | null; lastReadAt: string | null } | null;
  paidVends: Totals | null;
  testVends: Totals | null;
  freeVends: Totals | null;
  cashSales: Totals | null;
  /** CA3: since reset first in the file. */
  cashIn: { init: CashIn; reset: CashIn } | null;
  /** CA4: since reset first in the file. */
  cashDispensed: { init: CashOut; reset: CashOut } | null;
  /** CA8: money kept because change could not be paid. */
  overpay: { init: number | null; reset: number | null } | null;
  /** CA15: value of the coins in the tubes. */
  tubeValue: number | null;
  /** CA17, one per coin type. */
  coins: CoinTube[];
  /** DA2 (cashless device 1). */
  cashlessSales: Totals | null;
  products: DexProduct[];
  /** Sums over the products' PA2 (missing figures count as 0). */
  productTotals: { init: { count: number; value: number }; reset: { count: number; value: number } };
  /** G85 against the CRC-16/ARC of the lines from ST to just before G85 (each ended CRLF). */
  crc: { status: CheckStatus; expected: string | null; found: string | null };
  /** SE01 against the segments from ST to SE inclusive (found: up to the end when there is no SE). */
  segmentCount: { status: CheckStatus; expected: number | null; found: number };
  warnings: string[];
}

export interface DexParse {
  segments: DexSegment[];
  summary: DexSummary;
  /** The same list as summary.warnings. */
  warnings: string[];
}

// ---- CRC-16/ARC ----------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC-16/ARC (reflected polynomial 0xA001, initial 0, no final XOR); `crc` continues an earlier result. */
export function crc16Arc(bytes: ArrayLike<number>, crc = 0): number {
  for (let i = 0; i < bytes.length; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** The same over a string's character codes (the parser's lines are ASCII by then). */
function crcText(text: string, crc: number): number {
  for (let i = 0; i < text.length; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]!;
  return crc;
}

const hex4 = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');

// ---- elements ------------------------------------------------------------------------------

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** Element `i` (1-based) as an unsigned integer; empty or missing is null. */
function num(seg: DexSegment, i: number): number | null {
  const raw = seg.elements[i - 1];
  if (raw === undefined || raw === '') return null;
  if (!/^[0-9]{1,15}$/.test(raw)) throw new DexError(seg.line, 'bad-number', `${seg.id}${pad2(i)} "${clip(raw)}" is not an unsigned integer`);
  return Number(raw);
}

/** Element `i` as an identifier or name: trimmed (machines pad them), empty is null. */
function str(seg: DexSegment, i: number): string | null {
  const v = seg.elements[i - 1]?.trim();
  return v ? v : null;
}

function clip(s: string): string {
  return s.length > 20 ? `${s.slice(0, 20)}...` : s;
}

/** Audit dates outside these years are a clock that was never set (00000101) or a damaged file. */
export const MIN_YEAR = 1970;
export const MAX_YEAR = 2199;

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Why year-month-day is not a date the store can hold, or undefined. */
function dateFault(year: number, month: number, day: number): string | undefined {
  if (year < MIN_YEAR || year > MAX_YEAR) return `year ${year} is not from ${MIN_YEAR} to ${MAX_YEAR}`;
  if (month < 1 || month > 12) return `month ${month} is not from 1 to 12`;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const last = month === 2 && leap ? 29 : DAYS[month - 1]!;
  if (day < 1 || day > last) return `day ${day} is not from 1 to ${last}`;
  return undefined;
}

/**
 * Date (YYMMDD or YYYYMMDD) and time (HHMM or HHMMSS) elements as local ISO
 * text. The reference makes no date mandatory, and a machine whose clock was
 * never set writes 00000101: a date that is not a real one is left out with a
 * warning (the figures stand), a bad time leaves the date alone.
 */
function when(seg: DexSegment, di: number, ti: number, warnings: string[]): string | null {
  const d = seg.elements[di - 1]?.trim() ?? '';
  if (d === '') return null;
  const where = `line ${seg.line}: ${seg.id}${pad2(di)} "${clip(d)}" is not a date`;
  const m = /^(\d{2}|\d{4})(\d{2})(\d{2})$/.exec(d);
  if (!m) {
    warnings.push(`${where} (YYMMDD or YYYYMMDD); left out`);
    return null;
  }
  // Two-digit years: 70..99 are 1970..1999, 00..69 are 2000..2069.
  const year = m[1]!.length === 2 ? (Number(m[1]) < 70 ? 2000 : 1900) + Number(m[1]) : Number(m[1]);
  const fault = dateFault(year, Number(m[2]), Number(m[3]));
  if (fault) {
    warnings.push(`${where}: ${fault}; left out`);
    return null;
  }
  const date = `${year}-${m[2]}-${m[3]}`;
  const t = seg.elements[ti - 1]?.trim() ?? '';
  if (t === '') return date;
  const tm = /^(\d{2})(\d{2})(\d{2})?$/.exec(t);
  const timeFault = !tm
    ? 'not HHMM or HHMMSS'
    : Number(tm[1]) > 23
      ? `hour ${Number(tm[1])} is not from 0 to 23`
      : Number(tm[2]) > 59
        ? `minute ${Number(tm[2])} is not from 0 to 59`
        : Number(tm[3] ?? 0) > 59
          ? `second ${Number(tm[3])} is not from 0 to 59`
          : undefined;
  if (!tm || timeFault) {
    warnings.push(`line ${seg.line}: ${seg.id}${pad2(ti)} "${clip(t)}" is not a time: ${timeFault}; the date alone is kept`);
    return date;
  }
  return `${date}T${tm[1]}:${tm[2]}:${tm[3] ?? '00'}`;
}

/** Value and count pairs: `first` is the element number of the first of four. */
function totals(seg: DexSegment, first: number, order: 'value-count' | 'count-value'): Totals {
  const pair = (i: number): ValueCount => (order === 'value-count' ? { value: num(seg, i), count: num(seg, i + 1) } : { count: num(seg, i), value: num(seg, i + 1) });
  return { init: pair(first), reset: pair(first + 2) };
}

/**
 * Add a selection's PA2 to the sums over all selections. Each figure is at
 * most 15 digits, but enough of them pass 2^53-1, where a double no longer
 * counts exactly: such a file is refused rather than summed wrongly.
 */
function addTotals(sum: DexSummary['productTotals'], t: Totals, seg: DexSegment): void {
  const add = (into: { count: number; value: number }, vc: ValueCount, countAt: number, valueAt: number): void => {
    for (const [key, v, at] of [['count', vc.count, countAt], ['value', vc.value, valueAt]] as const) {
      const next = into[key] + (v ?? 0);
      if (next > Number.MAX_SAFE_INTEGER) {
        throw new DexError(seg.line, 'bad-number', `${seg.id}${pad2(at)} "${v}" takes the sum over the selections past 2^53-1 (${Number.MAX_SAFE_INTEGER}): the totals cannot be exact`);
      }
      into[key] = next;
    }
  };
  add(sum.init, t.init, 1, 2);
  add(sum.reset, t.reset, 3, 4);
}

// ---- the file ------------------------------------------------------------------------------

function describeChar(code: number): string {
  return code <= 0xff ? `byte 0x${code.toString(16).toUpperCase().padStart(2, '0')}` : `character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The line that holds character offset `at`. */
function lineAt(text: string, at: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

export function parseDex(text: string): DexParse {
  if (text.length > MAX_DEX_BYTES) throw new DexError(lineAt(text, MAX_DEX_BYTES), 'too-large', `the file is larger than ${MAX_DEX_BYTES} bytes`);
  if (/^\s*$/.test(text)) throw new DexError(1, 'empty', 'the file is empty');

  // LF, CRLF or both: one trailing CR per line is the line ending. Empty
  // lines at the end (a final line ending, padding) are not worth a warning.
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (lines[lines.length - 1] === '') lines.pop();

  const warnings: string[] = [];
  const segments: DexSegment[] = [];
  let contentSeen = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const n = i + 1;
    for (let c = 0; c < line.length; c++) {
      const code = line.charCodeAt(c);
      if (code < 0x20 || code > 0x7e) throw new DexError(n, 'bad-character', `column ${c + 1}: ${describeChar(code)} is not printable ASCII (0x20 to 0x7E)`);
    }
    if (line === '') {
      if (contentSeen) warnings.push(`line ${n} is empty`);
      continue;
    }
    contentSeen = true;
    const parts = line.split('*');
    const id = parts[0]!;
    if (!/^[A-Z0-9]{2,4}$/.test(id)) throw new DexError(n, 'bad-segment-id', `"${clip(id)}" is not a segment ID (2 to 4 upper-case letters or digits)`);
    segments.push({ line: n, id, elements: parts.slice(1) });
  }

  const st = segments.findIndex((s) => s.id === 'ST');
  if (st < 0) {
    // Name the segment expected where it was expected, and what stood there.
    const d = segments.findIndex((s) => s.id === 'DXS');
    if (d < 0) {
      const first = segments[0]!;
      throw new DexError(first.line, 'no-st', `no DXS or ST segment: found ${first.id} first, and no ST anywhere: it is not an EVA-DTS audit file`);
    }
    const next = segments[d + 1];
    if (!next) throw new DexError(segments[d]!.line, 'no-st', 'no ST segment after DXS: the file ends there');
    throw new DexError(next.line, 'no-st', `no ST segment after DXS (line ${segments[d]!.line}): found ${next.id} instead, and no ST further on`);
  }
  const dxs = segments.slice(0, st).find((s) => s.id === 'DXS');
  if (!dxs) warnings.push('no DXS segment before ST: the file has no transmission header');

  let se = -1;
  let g85 = -1;
  for (let i = st + 1; i < segments.length; i++) {
    const id = segments[i]!.id;
    if (id === 'G85' && g85 < 0) g85 = i;
    if (id === 'SE') {
      se = i;
      break;
    }
  }
  const bodyEnd = se < 0 ? segments.length : se;

  const s: DexSummary = {
    sender: dxs ? str(dxs, 1) : null,
    version: dxs ? str(dxs, 3) : null,
    machine: null,
    controlBoard: null,
    decimals: 2,
    currency: null,
    currencyCode: null,
    readAt: null,
    readAtFrom: null,
    reads: null,
    paidVends: null,
    testVends: null,
    freeVends: null,
    cashSales: null,
    cashIn: null,
    cashDispensed: null,
    overpay: null,
    tubeValue: null,
    coins: [],
    cashlessSales: null,
    products: [],
    productTotals: { init: { count: 0, value: 0 }, reset: { count: 0, value: 0 } },
    crc: { status: 'absent', expected: null, found: null },
    segmentCount: { status: 'absent', expected: null, found: bodyEnd - st + (se < 0 ? 0 : 1) },
    warnings,
  };

  let id4 = false;
  let id5At: string | null = null;
  let product: DexProduct | null = null;
  for (let i = st + 1; i < bodyEnd; i++) {
    const seg = segments[i]!;
    switch (seg.id) {
      case 'ID1':
        s.machine ??= { serial: str(seg, 1), model: str(seg, 2), build: str(seg, 3), location: str(seg, 4), asset: str(seg, 6) };
        break;
      case 'CB1':
        s.controlBoard ??= { serial: str(seg, 1), model: str(seg, 2), software: str(seg, 3) };
        break;
      case 'ID4': {
        if (id4) break;
        id4 = true;
        s.decimals = num(seg, 1) ?? 2;
        // Currency codes are not counts: an odd one is reported, not refused.
        const cur = str(seg, 2);
        if (cur !== null && /^\d{1,4}$/.test(cur)) s.currency = Number(cur);
        else if (cur !== null) warnings.push(`line ${seg.line}: ID402 "${clip(cur)}" is not a numeric currency code`);
        s.currencyCode = str(seg, 3);
        break;
      }
      case 'ID5':
        id5At ??= when(seg, 1, 2, warnings);
        break;
      case 'EA3':
        if (s.reads) break;
        s.reads = { withReset: num(seg, 1), total: num(seg, 9), resets: num(seg, 10), lastReadAt: when(seg, 5, 6, warnings) };
        s.readAt = when(seg, 2, 3, warnings);
        if (s.readAt) s.readAtFrom = 'EA3';
        break;
      case 'VA1':
        s.paidVends ??= totals(seg, 1, 'value-count');
        break;
      case 'VA2':
        s.testVends ??= totals(seg, 1, 'value-count');
        break;
      case 'VA3':
        s.freeVends ??= totals(seg, 1, 'value-count');
        break;
      case 'CA2':
        s.cashSales ??= totals(seg, 1, 'value-count');
        break;
      case 'CA3':
        // Some machines leave CA308 empty and put bills since initialisation in CA310 (CA309 repeats CA304).
        s.cashIn ??= {
          reset: { total: num(seg, 1), toBox: num(seg, 2), toTubes: num(seg, 3), bills: num(seg, 4) ?? num(seg, 9) },
          init: { total: num(seg, 5), toBox: num(seg, 6), toTubes: num(seg, 7), bills: num(seg, 8) ?? num(seg, 10) },
        };
        break;
      case 'CA4':
        s.cashDispensed ??= { reset: { dispensed: num(seg, 1), manual: num(seg, 2) }, init: { dispensed: num(seg, 3), manual: num(seg, 4) } };
        break;
      case 'CA8':
        s.overpay ??= { reset: num(seg, 1), init: num(seg, 2) };
        break;
      case 'CA15':
        s.tubeValue ??= num(seg, 1);
        break;
      case 'CA17': {
        const type = num(seg, 1);
        if (type === null) warnings.push(`line ${seg.line}: CA17 without a coin type ignored`);
        else s.coins.push({ type, value: num(seg, 2), count: num(seg, 3) });
        break;
      }
      case 'DA2':
        s.cashlessSales ??= totals(seg, 1, 'value-count');
        break;
      case 'PA1': {
        const selection = str(seg, 1);
        if (selection === null) warnings.push(`line ${seg.line}: PA1 without a selection number`);
        product = { line: seg.line, selection: selection ?? '', price: num(seg, 2), product: str(seg, 3), sales: null, lastSale: null };
        s.products.push(product);
        break;
      }
      case 'PA2':
        if (!product) warnings.push(`line ${seg.line}: PA2 before any PA1 ignored`);
        else if (product.sales) warnings.push(`line ${seg.line}: a second PA2 for selection ${product.selection} ignored`);
        else {
          product.sales = totals(seg, 1, 'count-value');
          addTotals(s.productTotals, product.sales, seg);
        }
        break;
      case 'PA5':
        if (!product) warnings.push(`line ${seg.line}: PA5 before any PA1 ignored`);
        else product.lastSale ??= when(seg, 1, 2, warnings);
        break;
      default:
        break;
    }
  }
  if (!s.readAt && id5At) {
    s.readAt = id5At;
    s.readAtFrom = 'ID5';
  }
  if (!s.machine) warnings.push('no ID1 segment: the machine is not identified');
  if (!id4) warnings.push('no ID4 segment: money is read with 2 decimal places');

  // G85: CRC-16/ARC over the lines from ST to just before G85, each ended CRLF whatever the file used.
  if (g85 >= 0) {
    let crc = 0;
    for (let l = segments[st]!.line; l < segments[g85]!.line; l++) crc = crcText(`${lines[l - 1]!}\r\n`, crc);
    const expected = (segments[g85]!.elements[0] ?? '').trim().toUpperCase();
    const found = hex4(crc);
    s.crc = { status: expected === found ? 'ok' : 'mismatch', expected: expected || null, found };
    if (expected !== found) warnings.push(`G85 check value ${expected ? `"${clip(expected)}"` : '(empty)'} does not match the file (${found}): it was changed or damaged after the machine wrote it`);
  } else {
    warnings.push('no G85 check value: the file cannot be checked for damage');
  }

  if (se >= 0) {
    const seg = segments[se]!;
    const expected = num(seg, 1);
    s.segmentCount = { status: expected === s.segmentCount.found ? 'ok' : 'mismatch', expected, found: s.segmentCount.found };
    if (expected !== s.segmentCount.found) warnings.push(`line ${seg.line}: SE says ${expected ?? '(nothing)'} segments but there are ${s.segmentCount.found} from ST to SE`);
    const after = segments.slice(se + 1);
    if (dxs && !after.some((x) => x.id === 'DXE')) warnings.push('no DXE segment after SE: the file may be truncated');
    for (const x of after) if (x.id !== 'DXE') warnings.push(`line ${x.line}: ${x.id} after SE ignored`);
  } else {
    warnings.push('no SE segment: the file may be truncated');
  }

  return { segments, summary: s, warnings };
}
