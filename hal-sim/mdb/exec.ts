/**
 * A peripheral played by a program of the user's (`npm run hil -- --peripheral
 * cashless=exec:<command>`), on the simulated bus in place of the simulated
 * device. The contract is docs/bench-peripheral.md: one line in, one answer
 * out (zero or more words, then `.` or `+`); the virtual clock holds still
 * while the program thinks, so a run replays identically however slow the
 * program or the machine is. A program that exits, writes what the contract
 * does not allow, or misses its real-time limit is stopped, stays silent, and
 * the failure is reported.
 *
 * Node only (child processes): the host's, never the firmware's.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { DeviceName } from '../rig.js';
import type { ExternalPeripheral, SimMdbBus } from './bus.js';
import { MODE } from './peripheral.js';

/** The address of each device on the bus (MDB: changer 08H, cashless #1 10H, bill validator 30H). */
export const DEVICE_ADDRESS: Readonly<Record<DeviceName, number>> = { changer: 0x08, cashless: 0x10, bill: 0x30 };
/** Machine time from the end of the word answered to the start of the answer (MDB allows 5 ms). */
export const ANSWER_US = 1500;
/** Real time a program may take for one answer by default; more counts as silence and is reported. */
export const ANSWER_REAL_MS = 5000;
/** Real time a program has to exit once its input ends (a power cut, the end of the scenario) before it is killed. */
const EXIT_REAL_MS = 2000;
/** Lines of the program's standard error kept for the report. */
const STDERR_LINES = 5;

export interface ExecPeripheralOptions {
  device: DeviceName;
  /** A shell command line (run with /bin/sh -c). */
  command: string;
  /** Real time allowed per answer, ms (default ANSWER_REAL_MS). */
  answerMs?: number;
  /** The first thing that went wrong (once). */
  onFailure?: (message: string) => void;
  /** Every line to and from the program, and its standard error (the bench's --verbose). */
  trace?: (direction: 'in' | 'out' | 'err', line: string) => void;
}

const WORD = /^[0-9a-fA-F]{3}$/;

const hex3 = (w: number): string => w.toString(16).padStart(3, '0');

export class ExecPeripheral implements ExternalPeripheral {
  readonly address: number;
  private readonly bus: SimMdbBus;
  private readonly options: ExecPeripheralOptions;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly exited: Promise<void>;
  private readonly answerMs: number;
  /** The last address byte on the line was ours: the words that follow are for us. */
  private selected = false;
  private partial = '';
  /** The line whose answer is awaited, the words of it so far, and how to let the clock go on. */
  private asked: { line: string; event: boolean; words: number[]; release: () => void; timer: NodeJS.Timeout } | undefined;
  /** Lines to send once the answer awaited is in (only if the clock was run without waiting). */
  private queue: { line: string; event: boolean }[] = [];
  private stderrTail: string[] = [];
  private closing = false;
  pending = false;
  failure: string | undefined;

  constructor(bus: SimMdbBus, options: ExecPeripheralOptions) {
    this.bus = bus;
    this.options = options;
    this.address = DEVICE_ADDRESS[options.device];
    this.answerMs = options.answerMs ?? ANSWER_REAL_MS;
    bus.attach(this);
    // A process group of its own: a command that is a pipeline is stopped whole.
    this.child = spawn('/bin/sh', ['-c', options.command], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.output(chunk));
    let errPartial = '';
    this.child.stderr.on('data', (chunk: string) => {
      const lines = (errPartial + chunk).split('\n');
      errPartial = lines.pop()!;
      for (const l of lines) this.noteStderr(l);
    });
    // A program that exits has closed its stdin: writing to it fails, and the exit is what gets reported.
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => {
      // 'close' comes after the program's output has all been read: what it wrote before it exited is judged first.
      this.child.on('close', (code, signal) => {
        if (errPartial) this.noteStderr(errPartial);
        if (!this.closing) this.fail(`exited (${signal ? `signal ${signal}` : `status ${code}`})${this.stderrNote()}`);
        resolve();
      });
      this.child.on('error', (e) => {
        this.fail(`could not be started: ${e.message}`);
        resolve();
      });
    });
  }

  receive(word: number): void {
    if (word & MODE) this.selected = (word & 0xf8) === this.address;
    if (this.selected) this.send(hex3(word), false);
  }

  event(name: string, args: readonly number[]): void {
    this.send(`# ${[name, ...args].join(' ')}`, true);
  }

  private send(line: string, event: boolean): void {
    if (this.failure !== undefined || this.closing) return;
    if (this.asked) {
      this.queue.push({ line, event });
      return;
    }
    let release!: () => void;
    this.bus.hold(new Promise<void>((r) => (release = r)));
    const timer = setTimeout(() => this.fail(`did not answer "${line}" within ${this.answerMs} ms of real time (taken as silence; the program is stopped)`), this.answerMs);
    this.asked = { line, event, words: [], release, timer };
    this.options.trace?.('in', line);
    this.child.stdin.write(line + '\n');
  }

  private output(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop()!;
    for (const raw of lines) {
      if (this.failure !== undefined) return;
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      this.options.trace?.('out', line);
      // A program's own notes (the bench shows them with --verbose).
      if (line.startsWith('#')) continue;
      const asked = this.asked;
      if (!asked) {
        this.fail(`wrote "${shorten(line)}" when no answer was due`);
        return;
      }
      if (WORD.test(line)) {
        const word = parseInt(line, 16);
        if (word > 0x1ff) this.fail(`wrote "${line}" answering "${asked.line}": a word has 9 bits (000 to 1ff)`);
        else if (asked.event) this.fail(`wrote the word ${line} answering the bench event "${asked.line}": a peripheral speaks only when the VMC addresses it`);
        else asked.words.push(word);
        continue;
      }
      if (line === '.' || line === '+') {
        this.answered(asked, line === '+');
        continue;
      }
      this.fail(`wrote "${shorten(line)}" answering "${asked.line}": neither a word (three hex digits) nor the end of an answer ("." or "+")`);
    }
  }

  private answered(asked: NonNullable<ExecPeripheral['asked']>, pending: boolean): void {
    clearTimeout(asked.timer);
    this.asked = undefined;
    this.pending = pending;
    // The clock stood still since the line was sent: the answer starts ANSWER_US after the word it answers.
    if (asked.words.length > 0) this.bus.peripheralWrite(asked.words, ANSWER_US);
    asked.release();
    const next = this.queue.shift();
    if (next) this.send(next.line, next.event);
  }

  private fail(message: string): void {
    if (this.failure !== undefined) return;
    this.failure = `${this.options.device}=exec:${this.options.command}: ${message}`;
    this.pending = false;
    this.queue = [];
    const asked = this.asked;
    this.asked = undefined;
    if (asked) {
      clearTimeout(asked.timer);
      asked.release();
    }
    this.kill();
    this.options.onFailure?.(this.failure);
  }

  private kill(): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }

  private noteStderr(line: string): void {
    this.options.trace?.('err', line);
    this.stderrTail.push(line);
    if (this.stderrTail.length > STDERR_LINES) this.stderrTail.shift();
  }

  private stderrNote(): string {
    const lines = this.stderrTail.filter((l) => l.trim() !== '');
    return lines.length > 0 ? `; its stderr ends: ${lines.join(' | ')}` : '';
  }

  /** The input ends (a power cut, the end of the run): the program should exit; it is killed if it does not. */
  async close(): Promise<void> {
    this.closing = true;
    const asked = this.asked;
    this.asked = undefined;
    if (asked) {
      clearTimeout(asked.timer);
      asked.release();
    }
    this.child.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), EXIT_REAL_MS)));
    if (await Promise.race([this.exited.then(() => false), late])) this.kill();
    clearTimeout(timer);
    await this.exited;
  }
}

function shorten(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
