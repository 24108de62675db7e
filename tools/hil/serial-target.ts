/**
 * Bench target `serial:<device>`: a board (or the host's serial bench,
 * serial-bench.ts) driven over a serial port with the bench protocol
 * (docs/bench-protocol.md), through npm serialport. The framing and the
 * message syntax are the firmware's own (firmware/bench), so both ends
 * agree byte for byte.
 *
 * One SerialLink per run (opening a port may reset a board); one
 * SerialBenchTarget per scenario on it.
 */
import { SerialPort } from 'serialport';
import { checkLine, frameLine, LineReader } from '../../firmware/bench/frame.js';
import { BENCH_PROTOCOL, parseAnswer, type BenchInfo, type BenchStatus, type ParsedAnswer } from '../../firmware/bench/protocol.js';
import type { BenchTarget, Observation, StepOutcome } from './runner.js';
import type { Scenario, Step } from './scenario.js';

export interface SerialLinkOptions {
  baudRate?: number;
  /** How long the board has to answer `hello` (it may be booting), ms. */
  helloTimeoutMs?: number;
  /** Lines on the port that are not protocol answers: the board's console. */
  onConsole?: (line: string) => void;
}

export type HelloInfo = BenchInfo & { protocol: number; maxLine: number };

/** An answer that says the request went wrong (not a scenario step that failed). */
export class BenchProtocolError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'BenchProtocolError';
  }
}

/** Longest answer line the runner reads (a status with a big planogram stays far below). */
const MAX_ANSWER = 1 << 20;
/** A request without an answer is sent again this often: the board ignores repeats of the request under way and answers a finished one again. */
const RESEND_MS = 2000;
const HELLO_EVERY_MS = 1000;
/** Real time allowed beyond what a step may take on the machine's clock. */
const MARGIN_MS = 30000;
const STATUS_MS = 15000;
const SETUP_MS = 120000;

/**
 * Works around the Linux and macOS poller of @serialport/bindings-cpp 13:
 * polling for "readable" replaces a pending poll for "writable"
 * (`uv_poll_start` is given only the new event), so a write that met a full
 * output buffer while data was being read can wait forever, and with it the
 * bench. While a write is under way, ask the poller for both events now and
 * then; an event nobody waits for is dropped. Returns a function that stops.
 */
export function keepWritesMoving(port: SerialPort, everyMs = 200): () => void {
  const timer = setInterval(() => {
    if (!port.isOpen || port.writableLength === 0) return;
    const poller = (port.port as { poller?: { poll(events: number): void } } | undefined)?.poller;
    try {
      poller?.poll(0b0011); // UV_READABLE | UV_WRITABLE
    } catch {
      // A port closing under us: its own error says so.
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

interface Pending {
  id: number;
  line: Uint8Array;
  sentAt: number;
  /** Resends prompted by the board's "!" reports. */
  quickResends: number;
  resolve(answer: ParsedAnswer): void;
  reject(e: Error): void;
}

export class SerialLink {
  readonly target: string;
  info!: HelloInfo;
  /** Lines on the port that were not answers (console output, noise). */
  ignoredLines = 0;
  /** Requests sent again (a garbled line, no answer yet, the board busy). */
  resends = 0;
  private readonly reader: LineReader;
  private readonly recent: string[] = [];
  /** Ids start at random: a board still finishing a request of an earlier run must not answer one of ours. */
  private nextId = 1 + Math.floor(Math.random() * 900000000);
  private pending: Pending | undefined;
  private closed = false;
  private lost: string | undefined;
  private readonly unstick: () => void;
  private readonly textDecoder = new TextDecoder('utf-8', { fatal: false });

  private constructor(
    readonly device: string,
    private readonly port: SerialPort,
    private readonly options: SerialLinkOptions,
  ) {
    this.target = `serial:${device}`;
    this.reader = new LineReader(MAX_ANSWER, (line, length) => this.line(line, length), () => this.ignoredLines++);
    port.on('data', (data: Buffer) => this.reader.push(data));
    this.unstick = keepWritesMoving(port);
    port.on('close', () => this.lose(`${this.target}: the port closed`));
    port.on('error', (e: Error) => this.lose(`${this.target}: ${e.message}`));
  }

  /** Open the device and shake hands; every failure says what to check. */
  static async open(device: string, options: SerialLinkOptions = {}): Promise<SerialLink> {
    const port = new SerialPort({ path: device, baudRate: options.baudRate ?? 115200, autoOpen: false, hupcl: false });
    await new Promise<void>((resolve, reject) =>
      port.open((e) => (e ? reject(new BenchProtocolError(`serial:${device}: cannot open the device (${e.message}): is the board connected, or the pseudo-terminal pair (socat) running?`)) : resolve())),
    );
    const link = new SerialLink(device, port, options);
    try {
      await link.hello(options.helloTimeoutMs ?? 10000);
    } catch (e) {
      await link.close();
      throw e;
    }
    return link;
  }

  /** Handshake: `hello` until the board answers (it may still be booting), then check the protocol version. */
  async hello(timeoutMs: number): Promise<HelloInfo> {
    const end = Date.now() + timeoutMs;
    let answer: ParsedAnswer | undefined;
    while (!answer) {
      const left = end - Date.now();
      if (left <= 0) {
        const heard = this.recent.length > 0 ? `; last lines on the port: ${this.recent.map((l) => JSON.stringify(l)).join(', ')}` : '; nothing at all came back';
        throw new BenchProtocolError(`${this.target}: no answer to hello within ${(timeoutMs / 1000).toFixed(1)} s: is the firmware built with the bench manifest, and the baud rate ${this.port.baudRate}?${heard}`);
      }
      try {
        // A fresh id each attempt (the board answers hello at once, even while busy).
        answer = await this.exchange('hello', { version: BENCH_PROTOCOL }, Math.min(HELLO_EVERY_MS, left), false);
      } catch (e) {
        if (!(e instanceof TimeoutError)) throw e;
      }
    }
    if (answer.kind === 'err') {
      if (answer.code === 'version') throw new BenchProtocolError(`${this.target}: protocol version mismatch: the runner speaks bench protocol ${BENCH_PROTOCOL}, the board says: ${answer.message}`, 'version');
      throw new BenchProtocolError(`${this.target}: hello refused: ${answer.code} ${answer.message}`, answer.code);
    }
    const d = answer.data as Partial<HelloInfo>;
    if (typeof d !== 'object' || d === null || d.protocol !== BENCH_PROTOCOL) {
      throw new BenchProtocolError(`${this.target}: protocol version mismatch: the runner speaks bench protocol ${BENCH_PROTOCOL}, the board answered protocol ${JSON.stringify((d as { protocol?: unknown } | null)?.protocol)}`, 'version');
    }
    this.info = { protocol: d.protocol, bench: String(d.bench ?? '?'), clock: d.clock === 'virtual' ? 'virtual' : 'real', firmware: String(d.firmware ?? '?'), maxLine: typeof d.maxLine === 'number' ? d.maxLine : 0 };
    return this.info;
  }

  /**
   * One request and its answer. `busy` (the board still finishing an earlier
   * request) is waited out; an `err` answer is returned, not thrown.
   */
  async request(verb: string, args: object | undefined, timeoutMs: number): Promise<ParsedAnswer> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const answer = await this.exchange(verb, args, Math.max(1, end - Date.now()), true);
      if (answer.kind === 'err' && answer.code === 'busy' && Date.now() + 500 < end) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      return answer;
    }
  }

  /** Bytes straight onto the line (tests: garbage, hand-made frames). */
  writeRaw(bytes: Uint8Array | string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.port.write(typeof bytes === 'string' ? bytes : Buffer.from(bytes), (e) => (e ? reject(e) : resolve()));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending?.reject(new BenchProtocolError(`${this.target}: closed`));
    this.pending = undefined;
    this.unstick();
    if (this.port.isOpen) await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }

  private exchange(verb: string, args: object | undefined, timeoutMs: number, resend: boolean): Promise<ParsedAnswer> {
    if (this.closed || this.lost) return Promise.reject(new BenchProtocolError(this.lost ?? `${this.target}: closed`));
    if (this.pending) return Promise.reject(new Error(`${this.target}: one request at a time (request ${this.pending.id} is under way)`));
    const id = this.nextId;
    this.nextId = (this.nextId % 999999999) + 1;
    const line = frameLine(args === undefined ? `${id} ${verb}` : `${id} ${verb} ${JSON.stringify(args)}`);
    return new Promise<ParsedAnswer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let again: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        clearInterval(again);
        this.pending = undefined;
      };
      const pending: Pending = {
        id,
        line,
        sentAt: 0,
        quickResends: 0,
        resolve: (a) => {
          finish();
          resolve(a);
        },
        reject: (e) => {
          finish();
          reject(e);
        },
      };
      this.pending = pending;
      timer = setTimeout(() => pending.reject(new TimeoutError(`${this.target}: no answer to ${verb} within ${(timeoutMs / 1000).toFixed(1)} s`)), timeoutMs);
      if (resend) again = setInterval(() => this.send(pending), RESEND_MS);
      this.send(pending);
    });
  }

  private send(p: Pending): void {
    if (this.closed || this.lost) return;
    if (p.sentAt !== 0 && this.pending === p) this.resends++;
    p.sentAt = Date.now();
    this.port.write(Buffer.from(p.line));
  }

  private line(bytes: Uint8Array, length: number): void {
    const checked = checkLine(bytes, length);
    const answer = checked.ok ? parseAnswer(checked.payload) : undefined;
    const pending = this.pending;
    if (!answer) {
      // Shown as text: bytes that are no characters as a middle dot.
      const text = this.textDecoder.decode(bytes.subarray(0, length)).replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]/g, '\u00b7');
      // Our answer, garbled on the way: ask again (the board answers a finished request from memory).
      if (!checked.ok && pending && text.startsWith(`${pending.id} `) && pending.quickResends++ < 5) this.send(pending);
      else {
        this.ignoredLines++;
        this.recent.push(text.length > 120 ? text.slice(0, 117) + '...' : text);
        if (this.recent.length > 3) this.recent.shift();
        this.options.onConsole?.(text);
      }
      return;
    }
    if (!pending) return;
    if (answer.id === undefined) {
      // The board dropped a line (bad checksum, too long): perhaps ours. A few at once; a line that
      // keeps arriving garbled (a wrong baud rate) is left to the periodic resend and the timeout.
      if (pending.quickResends++ < 5) this.send(pending);
      return;
    }
    if (answer.id === pending.id) pending.resolve(answer);
  }

  /** The port is gone (a board unplugged): this request and every later one fail with the reason. */
  private lose(reason: string): void {
    this.lost ??= reason;
    this.pending?.reject(new BenchProtocolError(reason));
  }
}

class TimeoutError extends BenchProtocolError {}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The board's `status` answer, checked key by key: a wrong board must not look like a wrong machine. */
function toObservation(target: string, data: unknown): Observation {
  if (!isObj(data)) throw new BenchProtocolError(`${target}: status answer is not an object`);
  const num = (k: keyof BenchStatus): number => {
    const v = data[k];
    if (typeof v !== 'number') throw new BenchProtocolError(`${target}: status answer: "${k}" is not a number`);
    return v;
  };
  const counts = (k: 'slots' | 'tubes'): Record<string, number> => {
    const v = data[k];
    if (!isObj(v) || !Object.values(v).every((x) => typeof x === 'number')) throw new BenchProtocolError(`${target}: status answer: "${k}" is not a map of numbers`);
    return v as Record<string, number>;
  };
  const strings = (k: 'dispensed' | 'display'): string[] => {
    const v = data[k];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new BenchProtocolError(`${target}: status answer: "${k}" is not a list of strings`);
    return v as string[];
  };
  if (typeof data['state'] !== 'string') throw new BenchProtocolError(`${target}: status answer: "state" is not a string`);
  const obs: Observation = {
    state: data['state'],
    credit: num('credit'),
    dispensed: strings('dispensed'),
    changePaid: num('changePaid'),
    changeCoins: num('changeCoins'),
    billsReturned: num('billsReturned'),
    slots: counts('slots'),
    tubes: counts('tubes'),
    sales: num('sales'),
    revenue: num('revenue'),
    display: strings('display'),
    elapsedMs: num('elapsedMs'),
  };
  if (data['unsynced'] !== undefined) obs.unsynced = num('unsynced');
  // Keys beyond these (cardSales, cardRevenue, cardCharged with a cashless reader, and what later
  // benches add) go to the expectations unchanged, as the sim target reports them.
  const extras: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) if (!(k in obs) && k !== 'unsynced') extras[k] = v;
  return Object.assign(obs, extras);
}

/** How long a step may take in real time: what it may take on the machine's clock, and a margin. */
function budgetMs(step: Exclude<Step, { action: 'expect' }>): number {
  switch (step.action) {
    case 'wait':
      return step.ms + MARGIN_MS;
    case 'jam':
      return STATUS_MS;
    case 'network':
      // The uplink's reconnect backs off up to 5 minutes (as the sim target allows).
      return (step.up ? Math.max(step.settleMs, 360000) : step.settleMs) + MARGIN_MS;
    case 'powerCut':
      return step.settleMs + 2 * MARGIN_MS;
    default:
      return step.settleMs + MARGIN_MS;
  }
}

/** A step's request arguments: the step itself without its action name. */
function stepArgs(step: Exclude<Step, { action: 'expect' }>): object {
  const { action: _action, ...args } = step;
  return args;
}

export class SerialBenchTarget implements BenchTarget {
  readonly name: string;

  private constructor(private readonly link: SerialLink) {
    this.name = link.target;
  }

  /** Load the scenario's machine on the board behind `link`. */
  static async open(link: SerialLink, scenario: Scenario, options: { seed?: number } = {}): Promise<SerialBenchTarget> {
    const network = scenario.steps.some((s) => s.action === 'network');
    const answer = await link.request('setup', { machine: scenario.machine, network, seed: options.seed ?? 1 }, SETUP_MS);
    if (answer.kind === 'err') throw new BenchProtocolError(`setup: the board answered ${answer.code}: ${answer.message}`, answer.code);
    return new SerialBenchTarget(link);
  }

  async apply(step: Exclude<Step, { action: 'expect' }>): Promise<StepOutcome> {
    // Not a bench verb: a board takes an update from its gateway, and the bench has none to give it one.
    if (step.action === 'update') return { unsupported: 'the bench protocol has no update; a board takes its updates from its gateway (docs/updates.md): run update scenarios on targets sim and xs' };
    const answer = await this.link.request(step.action, stepArgs(step), budgetMs(step));
    if (answer.kind === 'err') {
      if (answer.code === 'unsupported') return { unsupported: answer.message };
      if (answer.code === 'refused') return { failure: answer.message };
      throw new BenchProtocolError(`${step.action}: the board answered ${answer.code}: ${answer.message}`, answer.code);
    }
    if (isObj(answer.data) && answer.data['rebooting'] === true) {
      // The board resets itself (a powerCut by watchdog): it is back when it answers hello again.
      await this.link.hello(60000);
    }
    return {};
  }

  async observe(): Promise<Observation> {
    const answer = await this.link.request('status', undefined, STATUS_MS);
    if (answer.kind === 'err') throw new BenchProtocolError(`status: the board answered ${answer.code}: ${answer.message}`, answer.code);
    return toObservation(this.name, answer.data);
  }

  async close(): Promise<void> {
    // Release the machine; a board that cannot answer any more has already said why.
    await this.link.request('end', undefined, STATUS_MS).catch(() => undefined);
  }
}
