/**
 * The board side of the bench protocol: bytes from the bench port in,
 * requests dispatched to a BenchTarget one at a time, answers out.
 *
 * - A line with a missing or wrong checksum, or longer than the buffer, is
 *   dropped and reported with `! err ...`; reading resumes at the next
 *   newline. The runner then sends its request again.
 * - A request repeated with the same id and checksum (the runner did not get
 *   the answer) is answered again from the last answer, never carried out
 *   twice: a repeated `insertCoin` must not be a second coin.
 * - While a request is under way its repeats are ignored and any other
 *   request is answered `busy`.
 */
import { checkLine, frameLine, LineReader } from './frame.js';
import { BENCH_PROTOCOL, MAX_REQUEST_BYTES, errPayload, okPayload, parseRequest, type BenchRequest } from './protocol.js';
import type { BenchBoard, ByteSerial } from './serial.js';
import type { BenchAnswer, BenchTarget } from './target.js';

export interface BenchServerOptions {
  /** Longest request line (default MAX_REQUEST_BYTES). */
  maxLine?: number;
  /** Every request accepted and every answer sent, for a console log. */
  onTrace?(direction: 'in' | 'out', payload: string): void;
}

export class BenchServer {
  private readonly reader: LineReader;
  private inflight: number | undefined;
  private last: { id: number; crc: number; line: Uint8Array } | undefined;
  private closed = false;
  /** Lines dropped for a bad checksum or length, requests refused as malformed. */
  readonly errors = { checksum: 0, toolong: 0, badrequest: 0 };

  constructor(
    private readonly port: ByteSerial,
    private readonly target: BenchTarget,
    private readonly options: BenchServerOptions = {},
  ) {
    this.reader = new LineReader(
      options.maxLine ?? MAX_REQUEST_BYTES,
      (line, length) => this.line(line, length),
      (dropped) => {
        this.errors.toolong++;
        this.send(errPayload(undefined, 'toolong', `line of ${dropped} bytes dropped (at most ${this.reader.maxLine})`));
      },
    );
  }

  /** Open the board's bench port and serve it. */
  static open(board: BenchBoard, target: BenchTarget, options: BenchServerOptions & { baud?: number } = {}): BenchServer {
    let server: BenchServer | undefined;
    const port = board.openBenchSerial({ ...(options.baud !== undefined ? { baud: options.baud } : {}), onReadable: () => server?.poll() });
    server = new BenchServer(port, target, options);
    return server;
  }

  /** Read everything the port has. */
  poll(): void {
    for (;;) {
      const data = this.port.read();
      if (data === undefined || data.byteLength === 0) return;
      this.receive(new Uint8Array(data));
    }
  }

  /** Bytes received by other means (tests, a port that pushes). */
  receive(bytes: Uint8Array): void {
    if (!this.closed) this.reader.push(bytes);
  }

  /** Whether a request is being carried out. */
  get busy(): boolean {
    return this.inflight !== undefined;
  }

  close(): void {
    this.closed = true;
    this.port.close();
  }

  private line(line: Uint8Array, length: number): void {
    const checked = checkLine(line, length);
    if (!checked.ok) {
      this.errors.checksum++;
      this.send(errPayload(undefined, 'checksum', checked.reason === 'missing' ? 'no checksum: end the line with *CCCC, the CRC-16/ARC of the payload in hex' : 'checksum mismatch: line dropped'));
      return;
    }
    const parsed = parseRequest(checked.payload);
    if (!parsed.ok) {
      this.errors.badrequest++;
      this.send(errPayload(parsed.id, 'badrequest', parsed.message));
      return;
    }
    const id = parsed.id;
    const request = parsed.request;
    if (request.verb === 'hello') {
      // Answered at once, even while busy: a runner that starts again finds the board at once.
      this.options.onTrace?.('in', checked.payload);
      this.hello(id, checked.crc, request.version);
      return;
    }
    if (this.inflight !== undefined) {
      // A repeat of the request under way: its answer is coming.
      if (id !== this.inflight) this.send(errPayload(id, 'busy', `request ${this.inflight} is still under way`));
      return;
    }
    const last = this.last;
    if (last && last.id === id && last.crc === checked.crc) {
      this.port.write(last.line);
      return;
    }
    this.options.onTrace?.('in', checked.payload);
    this.dispatch(id, checked.crc, request);
  }

  private hello(id: number, crc: number, version: number): void {
    // A new session: what was answered before belongs to another runner (ids start again).
    this.last = undefined;
    if (version !== BENCH_PROTOCOL) {
      this.answer(id, crc, { ok: false, code: 'version', message: `this board speaks bench protocol ${BENCH_PROTOCOL}, not ${version}` }, false);
    } else {
      this.answer(id, crc, { ok: true, data: { protocol: BENCH_PROTOCOL, ...this.target.info, maxLine: this.reader.maxLine } }, false);
    }
  }

  private dispatch(id: number, crc: number, request: Exclude<BenchRequest, { verb: 'hello' }>): void {
    this.inflight = id;
    let answered = false;
    const done = (answer: BenchAnswer): void => {
      if (answered) return;
      answered = true;
      this.inflight = undefined;
      this.answer(id, crc, answer);
    };
    try {
      const target = this.target;
      switch (request.verb) {
        case 'setup':
          target.setup(request.machine, { network: request.network, seed: request.seed }, done);
          break;
        case 'status':
          target.status(done);
          break;
        case 'end':
          target.end(done);
          break;
        case 'step':
          target.apply(request.action, done);
          break;
      }
    } catch (e) {
      done({ ok: false, code: 'failed', message: e instanceof Error ? e.message : String(e) });
    }
  }

  /** `remember`: keep it to answer a repeat of the request (not for hello, which may overtake a request under way). */
  private answer(id: number, crc: number, answer: BenchAnswer, remember = true): void {
    const payload = answer.ok ? okPayload(id, answer.data ?? {}) : errPayload(id, answer.code, answer.message);
    const line = frameLine(payload);
    if (remember) this.last = { id, crc, line };
    this.options.onTrace?.('out', payload);
    if (!this.closed) this.port.write(line);
  }

  private send(payload: string): void {
    this.options.onTrace?.('out', payload);
    if (!this.closed) this.port.write(frameLine(payload));
  }
}
