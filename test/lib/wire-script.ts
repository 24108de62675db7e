/**
 * Scripted MDB peripherals for byte-exact tests: a test writes the exchange
 * on the wire as a transcript of 9-bit words (what the VMC must send, what
 * the peripheral answers) and this harness plays the peripheral's side at
 * the firmware's MDB port (the WordSerialPort a board hands the link, the
 * boundary hal-sim's peripherals use too), on a virtual clock. Any word the
 * VMC sends that the transcript does not expect next fails the test, and so
 * does a transcript not played to its end. Portable (no Node), so the same
 * transcripts run under XS.
 *
 * A transcript is a list of lines:
 *   '> 10B 0B'      the VMC must send these words, in this order
 *   '< 0B 10B'      the peripheral sends these words
 *   '< silence'     the peripheral says nothing
 * A word of two hex digits has the mode bit clear; three digits starting with
 * 1 set it (10B: address byte 0B with the mode bit). Other tokens:
 *   CHK      (peripheral lines) the checksum of the words before it, mode bit set
 *   +4.9ms   (peripheral lines) start answering this long after the line went
 *            quiet (default 1 ms; t-response is 5 ms)
 *   @name    remember when the line began (`timeOf('name')`)
 *   # ...    a comment
 * A VMC line beginning with an address byte must end with its checksum; the
 * harness checks the transcript's own sums when it reads it, so a transcript
 * that passes shows the firmware's checksums are right too.
 */
import type { Clock, TimerId, Timers, WordSerial, WordSerialIO, WordSerialOptions, WordSerialPort } from '../../firmware/board.js';
import { AssertionError } from './assert.js';

/** One character on the line: 11 bits at 9600 baud (kept apart from the firmware's constant on purpose). */
export const WIRE_CHAR_MS = 11 / 9.6;
/** t-response (MDB 4.2): the longest either side may take to start answering. */
export const WIRE_T_RESPONSE_MS = 5;

const MODE = 0x100;

interface Step {
  vmc: boolean;
  words: number[];
  delayMs: number;
  label: string | undefined;
  text: string;
}

/** One-shot timers on a clock that moves only when the harness runs it; callbacks run one at a time, in time order. */
export class WireClock implements Clock, Timers {
  private t = 0;
  private nextId = 1;
  private readonly due = new Map<TimerId, { at: number; fn: () => void }>();
  /** Whatever a callback threw (the firmware's or the harness's), in order. */
  readonly thrown: unknown[] = [];

  now(): number {
    return this.t;
  }

  set(fn: () => void, ms: number): TimerId {
    return this.at(this.t + (ms > 0 ? ms : 0), fn);
  }

  /** Run `fn` at time `t` (not before now). */
  at(t: number, fn: () => void): TimerId {
    const id = this.nextId++;
    this.due.set(id, { at: t > this.t ? t : this.t, fn });
    return id;
  }

  clear(id: TimerId): void {
    this.due.delete(id);
  }

  /** Move the clock on to `t` (nothing may be due before it). */
  advanceTo(t: number): void {
    if (t > this.t) this.t = t;
  }

  /** Run the earliest callback due no later than `limit`; false when there is none (time stays). */
  step(limit: number): boolean {
    let first: TimerId | undefined;
    let at = Infinity;
    for (const [id, e] of this.due) if (e.at < at) [first, at] = [id, e.at];
    if (first === undefined || at > limit) return false;
    const e = this.due.get(first)!;
    this.due.delete(first);
    if (at > this.t) this.t = at;
    try {
      e.fn();
    } catch (err) {
      this.thrown.push(err);
    }
    return true;
  }
}

function word(token: string, line: string): number {
  if (/^[0-9A-Fa-f]{2}$/.test(token)) return parseInt(token, 16);
  if (/^1[0-9A-Fa-f]{2}$/.test(token)) return parseInt(token, 16);
  throw new Error(`transcript: cannot read "${token}" in "${line}"`);
}

function show(w: number): string {
  const s = w.toString(16).toUpperCase();
  return w & MODE ? s : s.length < 2 ? '0' + s : s;
}

/** Read one transcript line (exported for the harness's own tests). */
export function parseLine(line: string, defaultDelayMs: number): Step {
  const hash = line.indexOf('#');
  const tokens = (hash >= 0 ? line.slice(0, hash) : line).trim().split(/\s+/);
  const dir = tokens.shift();
  if (dir !== '>' && dir !== '<') throw new Error(`transcript: a line starts with > or <: "${line}"`);
  const vmc = dir === '>';
  const step: Step = { vmc, words: [], delayMs: defaultDelayMs, label: undefined, text: line.trim() };
  let silence = false;
  for (const token of tokens) {
    if (token.startsWith('@')) step.label = token.slice(1);
    else if (!vmc && token === 'silence') silence = true;
    else if (!vmc && /^\+\d+(\.\d+)?ms$/.test(token)) step.delayMs = parseFloat(token.slice(1));
    else if (!vmc && token === 'CHK') {
      let sum = 0;
      for (const w of step.words) sum += w;
      step.words.push((sum & 0xff) | MODE);
    } else step.words.push(word(token, line));
  }
  if (silence !== (step.words.length === 0)) throw new Error(`transcript: "silence" or words, one of them: "${line}"`);
  if (vmc) checkVmcLine(step.words, line);
  return step;
}

/** What the VMC may put on the wire: a block (address with the mode bit, data, checksum) or a lone ACK/RET/NAK. */
function checkVmcLine(words: readonly number[], line: string): void {
  if (words.length === 1 && (words[0] === 0x00 || words[0] === 0xaa || words[0] === 0xff)) return;
  if (words.length < 2 || !(words[0]! & MODE)) throw new Error(`transcript: a VMC block starts with its address byte and ends with its checksum: "${line}"`);
  if (words.length > 36) throw new Error(`transcript: a block is at most 36 bytes: "${line}"`);
  let sum = 0;
  for (let i = 0; i < words.length - 1; i++) {
    if (i > 0 && words[i]! & MODE) throw new Error(`transcript: only the address byte carries the mode bit: "${line}"`);
    sum += words[i]! & 0xff;
  }
  const chk = words[words.length - 1]!;
  if (chk !== (sum & 0xff)) throw new Error(`transcript: the checksum of "${line}" is ${show(sum & 0xff)}`);
}

export interface RunOptions {
  /** Give up this long (virtual ms) after the run starts. */
  limitMs?: number;
  /** Exceptions the firmware is expected to throw out of its callbacks during the run. */
  throws?: number;
}

export class WireScript {
  readonly clock = new WireClock();
  /** The VMC's MDB port as a board describes it: the link under test opens it. */
  readonly port: WordSerialPort;
  /** Peripheral answers start this long after the VMC's last word left (ms). */
  defaultDelayMs = 1;
  private readonly steps: Step[] = [];
  private at = 0;
  private matched = 0;
  private failure: string | undefined;
  private onReadable: ((count: number) => void) | undefined;
  private readonly rx: number[] = [];
  /** When the VMC's last word written has left the UART, and the peripheral's last word has arrived. */
  private vmcFreeAt = 0;
  private periphFreeAt = 0;
  /** When the last data answer finished arriving (-1: the last answer was not data). */
  private dataEndAt = -1;
  private readonly times = new Map<string, number>();
  private thrownSeen = 0;
  /** The wire as it went, one entry a line (for failure messages). */
  readonly wire: string[] = [];

  constructor() {
    this.port = Object.freeze({ io: this.portClass() });
  }

  private portClass(): WordSerialIO {
    const script = this;
    return class ScriptPort implements WordSerial {
      constructor(options: WordSerialOptions) {
        script.onReadable = (count) => options.onReadable(count);
      }
      read(): number | undefined {
        return script.rx.shift();
      }
      write(w: number): void {
        script.fromVmc(w);
      }
      close(): void {
        script.onReadable = undefined;
      }
    };
  }

  /** Append transcript lines; they are played by the next `run`. */
  expect(lines: readonly string[]): this {
    for (const line of lines) this.steps.push(parseLine(line, this.defaultDelayMs));
    return this;
  }

  /** When the line labelled `@name` began (virtual ms). */
  timeOf(name: string): number {
    const t = this.times.get(name);
    if (t === undefined) throw new AssertionError(`no line labelled @${name} was played`);
    return t;
  }

  get now(): number {
    return this.clock.now();
  }

  /**
   * Play the transcript (lines given here are appended first) until its last
   * line, and until the peripheral's last words have arrived. Throws on an
   * unexpected word, a transcript left unfinished, or an exception.
   */
  run(lines: readonly string[] = [], options: RunOptions = {}): void {
    this.expect(lines);
    this.play(this.clock.now() + (options.limitMs ?? 60000));
    this.check(options.throws ?? 0);
  }

  /**
   * Play the transcript, then let `ms` more of virtual time pass: the
   * firmware's timers run, and any word the VMC sends fails the test.
   */
  idle(ms: number, options: { throws?: number } = {}): void {
    this.play(this.clock.now() + 60000);
    const end = this.clock.now() + ms;
    while (this.failure === undefined && this.clock.step(end));
    if (this.failure === undefined) this.clock.advanceTo(end);
    this.check(options.throws ?? 0);
  }

  private play(end: number): void {
    this.advance();
    while (this.failure === undefined && (this.at < this.steps.length || this.periphFreeAt > this.clock.now())) {
      if (!this.clock.step(end)) break;
    }
  }

  private check(throws: number): void {
    const thrown = this.clock.thrown.length - this.thrownSeen;
    this.thrownSeen = this.clock.thrown.length;
    if (this.failure !== undefined) this.fail(this.failure);
    if (this.at < this.steps.length) this.fail(`transcript not finished by ${round(this.clock.now())} ms: the VMC has not sent "${this.steps[this.at]!.text}"`);
    if (thrown !== throws) {
      const last = this.clock.thrown[this.clock.thrown.length - 1];
      this.fail(`${thrown} exception(s) thrown, ${throws} expected${last instanceof Error ? `: ${last.message}` : ''}`);
    }
  }

  /** Exceptions caught so far (from the firmware's callbacks). */
  get thrown(): readonly unknown[] {
    return this.clock.thrown;
  }

  private fail(message: string): never {
    throw new AssertionError(`${message}\nwire (last lines):\n  ${this.wire.slice(-12).join('\n  ')}`);
  }

  private record(prefix: string, w: number, newLine: boolean): void {
    if (newLine || this.wire.length === 0 || !this.wire[this.wire.length - 1]!.startsWith(prefix)) this.wire.push(`${round(this.clock.now())} ms ${prefix} ${show(w)}`);
    else this.wire[this.wire.length - 1] += ' ' + show(w);
  }

  private fromVmc(w: number): void {
    const now = this.clock.now();
    const start = this.vmcFreeAt > now ? this.vmcFreeAt : now;
    this.vmcFreeAt = start + WIRE_CHAR_MS;
    this.record('>', w, this.matched === 0);
    if (this.failure !== undefined) return;
    if (this.periphFreeAt > now) {
      this.failure = `the VMC sent ${show(w)} while the peripheral was still answering`;
      return;
    }
    const step = this.steps[this.at];
    if (!step || !step.vmc) {
      this.failure = `unexpected word ${show(w)} from the VMC; the transcript expects ${step ? `"${step.text}"` : 'nothing more'}`;
      return;
    }
    if (this.matched === 0) {
      if (step.label !== undefined) this.times.set(step.label, now);
      // The VMC's ACK, RET or NAK to a data answer is due within t-response.
      if (this.dataEndAt >= 0 && step.words.length === 1 && now - this.dataEndAt > WIRE_T_RESPONSE_MS) {
        this.failure = `the VMC answered ${round(now - this.dataEndAt)} ms after the data ended (t-response ${WIRE_T_RESPONSE_MS} ms)`;
        return;
      }
      this.dataEndAt = -1;
    }
    const expected = step.words[this.matched]!;
    if (w !== expected) {
      this.failure = `the VMC sent ${show(w)} where the transcript has ${show(expected)} (word ${this.matched + 1} of "${step.text}")`;
      return;
    }
    if (++this.matched < step.words.length) return;
    this.matched = 0;
    this.at++;
    this.advance();
  }

  /** Put the peripheral's lines that come next on the wire. */
  private advance(): void {
    for (let step = this.steps[this.at]; step && !step.vmc; step = this.steps[++this.at]) {
      const now = this.clock.now();
      if (step.label !== undefined) this.times.set(step.label, now);
      if (step.words.length === 0) {
        this.dataEndAt = -1;
        continue;
      }
      let t = (this.vmcFreeAt > this.periphFreeAt ? this.vmcFreeAt : this.periphFreeAt) + step.delayMs;
      if (t < now) t = now;
      for (let i = 0; i < step.words.length; i++) {
        const w = step.words[i]!;
        t += WIRE_CHAR_MS;
        this.clock.at(t, () => {
          this.record('<', w, i === 0);
          this.rx.push(w);
          this.onReadable?.(this.rx.length);
        });
      }
      this.periphFreeAt = t;
      // A lone ACK or NAK needs no answer; a whole data block (more than one word, the last with the mode bit) does.
      this.dataEndAt = step.words.length > 1 && step.words[step.words.length - 1]! & MODE ? t : -1;
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** `lines` `n` times over (a stretch of identical polls). */
export function times(n: number, lines: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(...lines);
  return out;
}

/** `text` as `n` bytes of ASCII padded with spaces, in transcript notation (for identification fields). */
export function asciiWords(text: string, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((i < text.length ? text.charCodeAt(i) : 0x20).toString(16).toUpperCase().padStart(2, '0'));
  return out.join(' ');
}

/** `n` zero bytes in transcript notation. */
export function zeros(n: number): string {
  return times(n, ['00']).join(' ');
}
