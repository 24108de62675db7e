/**
 * An MDB wire capture (docs/mdb-trace.md): the text format read line by
 * line into frames, frames written back as lines, and the grouping of the
 * 9-bit words seen on the wire into frames (WireCapture), as a logic
 * analyser would. Pure: text in, data out.
 *
 * The framing facts below are this tool's own reading of the MDB/ICP 4.2
 * reference (/work/shared/reference/mdb.md, "Line and blocks", "Timing"),
 * deliberately not imported from firmware/mdb/frame.ts: the decoder is how
 * a bench checks the bytes the firmware (or any other VMC) puts on the wire,
 * so it must not share the firmware's mistakes. test/tools/mdb-decode.test.ts
 * checks that the two readings agree.
 */
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


/** A byte as two upper-case hex digits. */
export function hex2(b: number): string {
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
