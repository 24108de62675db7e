/**
 * The firmware on the host behind a serial line, speaking the bench
 * protocol the way a board built with the bench manifest does:
 *
 *     node dist/tools/hil/serial-bench.js <device> [--target sim|xs] [--baud N] [--console] [--noise] [--trace]
 *
 * `<device>` is a serial device, in CI one end of a pseudo-terminal pair
 * made by socat; `npm run hil -- --target serial:<other end>` drives it.
 * The bytes go through firmware/bench (the framing, the parser, the server)
 * exactly as on the board; only the BenchTarget differs: here it is the
 * simulator (a MachineHost, via the sim target's logic), on a board the
 * hardware bench. Virtual time: `wait` and the settling after a step cost no
 * real time (docs/bench-protocol.md).
 *
 * --console  also send the firmware's log lines, as a board's console does (the runner skips them)
 * --noise    put a line of random bytes before every answer (the runner must resynchronise)
 * --trace    print requests and answers on stderr
 */
import { pathToFileURL } from 'node:url';
import { SerialPort } from 'serialport';
import { FIRMWARE_VERSION } from '../../firmware/main.js';
import { BenchServer } from '../../firmware/bench/server.js';
import { benchErr, benchOk, type BenchAnswer, type BenchDone, type BenchTarget, type StepData } from '../../firmware/bench/target.js';
import type { BenchAction, BenchInfo, BenchMachine, BenchStatus } from '../../firmware/bench/protocol.js';
import type { BenchBoard, ByteSerial, ByteSerialOptions } from '../../firmware/bench/serial.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { closeBenchGateway } from './bench-gateway.js';
import type { Step } from './scenario.js';
import { keepWritesMoving } from './serial-target.js';
import { SimBenchTarget } from './sim-target.js';

export interface HostBenchOptions {
  target?: TargetName;
  /** Firmware log lines (what a board prints on its console). */
  onLog?: (level: string, message: string, atMs: number) => void;
}

/** A scenario step as the runner's sim target takes it: the bench protocol's actions are the same steps. */
function toStep(action: BenchAction): Exclude<Step, { action: 'expect' }> {
  return action;
}

/**
 * The bench target on the host: each `setup` starts a MachineHost through
 * the sim target (sim-target.ts), so a step over the serial line
 * does exactly what the same step does on target sim.
 */
export class HostBench implements BenchTarget {
  readonly info: BenchInfo;
  private sim: SimBenchTarget | undefined;
  private readonly target: TargetName;
  private readonly onLog: HostBenchOptions['onLog'];

  constructor(options: HostBenchOptions = {}) {
    this.target = options.target ?? 'sim';
    this.onLog = options.onLog;
    this.info = { bench: `host-${this.target}`, clock: 'virtual', firmware: FIRMWARE_VERSION };
  }

  setup(machine: BenchMachine, options: { network: boolean; seed: number }, done: BenchDone): void {
    this.run(done, async () => {
      await this.release();
      // The sim target starts the bench gateway for a scenario with network steps; say so with one.
      const steps: Step[] = options.network ? [{ action: 'network', up: true, settleMs: 0 }] : [];
      const onLog = this.onLog;
      this.sim = await SimBenchTarget.open(this.target, { name: 'serial bench', file: '(serial)', machine, steps }, onLog ? { seed: options.seed, onLog } : { seed: options.seed });
      return benchOk();
    });
  }

  apply(action: BenchAction, done: BenchDone<StepData>): void {
    this.run(done, async () => {
      const sim = this.sim;
      if (!sim) return benchErr('nomachine', 'no machine: send setup first');
      const outcome = await sim.apply(toStep(action));
      if (outcome.unsupported) return benchErr('unsupported', outcome.unsupported);
      if (outcome.failure) return benchErr('refused', outcome.failure);
      return benchOk<StepData>();
    });
  }

  status(done: BenchDone<BenchStatus>): void {
    this.run(done, async () => {
      const sim = this.sim;
      if (!sim) return benchErr('nomachine', 'no machine: send setup first');
      const status: BenchStatus = await sim.observe();
      return benchOk(status);
    });
  }

  end(done: BenchDone): void {
    this.run(done, async () => {
      await this.release();
      return benchOk();
    });
  }

  async close(): Promise<void> {
    await this.release();
  }

  private async release(): Promise<void> {
    const sim = this.sim;
    this.sim = undefined;
    await sim?.close();
  }

  private run<T extends object>(done: BenchDone<T>, work: () => Promise<BenchAnswer<T>>): void {
    work().then(done, (e: unknown) => done(benchErr('failed', e instanceof Error ? e.message : String(e))));
  }
}

/** The bench board's port on a serial device opened with npm serialport. */
export class DevicePort implements BenchBoard {
  private chunks: Buffer[] = [];
  private options: ByteSerialOptions | undefined;
  /** Junk before each line written (--noise). */
  noise = false;

  private readonly unstick: () => void;

  constructor(readonly port: SerialPort) {
    port.on('data', (data: Buffer) => {
      this.chunks.push(data);
      this.options?.onReadable(data.length);
    });
    this.unstick = keepWritesMoving(port);
  }

  static open(path: string, baudRate: number): Promise<DevicePort> {
    return new Promise((resolve, reject) => {
      const port = new SerialPort({ path, baudRate, autoOpen: false });
      port.open((e) => (e ? reject(new Error(`cannot open ${path}: ${e.message}`)) : resolve(new DevicePort(port))));
    });
  }

  openBenchSerial(options: ByteSerialOptions): ByteSerial {
    this.options = options;
    return {
      read: () => {
        if (this.chunks.length === 0) return undefined;
        const all = Buffer.concat(this.chunks);
        this.chunks = [];
        return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
      },
      write: (data) => {
        if (this.noise) this.port.write(junkLine());
        this.port.write(Buffer.from(data instanceof Uint8Array ? data : new Uint8Array(data)));
      },
      close: () => {
        this.options = undefined;
      },
    };
  }

  /** A console line that is not part of the protocol. */
  console(text: string): void {
    this.port.write(`# ${text.replace(/[\r\n]+/g, ' ')}\n`);
  }

  close(): Promise<void> {
    this.unstick();
    return new Promise((resolve) => (this.port.isOpen ? this.port.close(() => resolve()) : resolve()));
  }
}

/** Random bytes without a newline, then one: what a noisy line or a boot ROM puts on a console. */
function junkLine(): Buffer {
  const n = 1 + Math.floor(Math.random() * 40);
  const b = Buffer.alloc(n + 1);
  for (let i = 0; i < n; i++) {
    let x = Math.floor(Math.random() * 256);
    if (x === 0x0a) x = 0x0b;
    b[i] = x;
  }
  b[n] = 0x0a;
  return b;
}

interface Options {
  device: string;
  target: TargetName;
  baud: number;
  console: boolean;
  noise: boolean;
  trace: boolean;
}

function usage(message?: string): never {
  if (message) process.stderr.write(`serial-bench: ${message}\n`);
  process.stderr.write('usage: node dist/tools/hil/serial-bench.js <device> [--target sim|xs] [--baud N] [--console] [--noise] [--trace]\n');
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Partial<Options> & Omit<Options, 'device'> = { target: 'sim', baud: 115200, console: false, noise: false, trace: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--target') {
      const t = argv[++i];
      if (t !== 'sim' && t !== 'xs') usage('--target is sim or xs');
      o.target = t;
    } else if (a === '--baud') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) usage('--baud needs a positive integer');
      o.baud = n;
    } else if (a === '--console') o.console = true;
    else if (a === '--noise') o.noise = true;
    else if (a === '--trace') o.trace = true;
    else if (a === '--help' || a === '-h') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (o.device === undefined) o.device = a;
    else usage(`one device only (got ${o.device} and ${a})`);
  }
  if (o.device === undefined) usage('name the serial device');
  return o as Options;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  let board: DevicePort;
  try {
    board = await DevicePort.open(o.device, o.baud);
  } catch (e) {
    process.stderr.write(`serial-bench: ${(e as Error).message}\n`);
    process.exit(2);
  }
  board.noise = o.noise;
  const bench = new HostBench({
    target: o.target,
    ...(o.console ? { onLog: (level: string, message: string, atMs: number) => board.console(`[${(atMs / 1000).toFixed(3)} s] ${level}: ${message}`) } : {}),
  });
  const server = BenchServer.open(board, bench, o.trace ? { onTrace: (dir, payload) => process.stderr.write(`${dir === 'in' ? '>' : '<'} ${payload}\n`) } : {});
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    server.close();
    await bench.close().catch(() => undefined);
    await closeBenchGateway().catch(() => undefined);
    await board.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  board.port.on('close', () => {
    process.stderr.write(`serial-bench: ${o.device} closed\n`);
    void stop(1);
  });
  board.port.on('error', (e: Error) => process.stderr.write(`serial-bench: ${o.device}: ${e.message}\n`));
  if (o.console) board.console(`vendfleet ${FIRMWARE_VERSION} bench (host, target ${o.target}) ready`);
  process.stdout.write(`serial-bench: serving bench protocol on ${o.device} (firmware ${FIRMWARE_VERSION}, target ${o.target})\n`);
}

// Run as a program; imported (tests, tools), it only provides HostBench and DevicePort.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`serial-bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  });
}
