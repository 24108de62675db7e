/**
 * Bench target serial:<device> for real: a pseudo-terminal pair from
 * Debian's socat, the firmware on the host behind one end
 * (tools/hil/serial-bench.ts, speaking the bench protocol through
 * firmware/bench), and `npm run hil -- --target serial:<other end>` on the
 * other. The scenarios must come out as they do on target sim; a failing
 * one must name its step; noise on the line, a missing device, a silent
 * device and another protocol version must each be handled and said.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SerialPort } from 'serialport';
import { checkLine, frameLine, LineReader } from '../../firmware/bench/frame.js';
import { parseRequest } from '../../firmware/bench/protocol.js';
import { runScenario } from '../../tools/hil/runner.js';
import { loadScenario, scenarioFiles } from '../../tools/hil/scenario.js';
import { SerialBenchTarget, SerialLink, keepWritesMoving } from '../../tools/hil/serial-target.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const shared = join(root, '../shared/scenarios');
const own = join(root, 'test/scenarios');
const hil = join(root, 'dist/tools/hil.js');
const serialBench = join(root, 'dist/tools/hil/serial-bench.js');

interface Report {
  scenarios: { name: string; file: string; target: string; passed: boolean; failures: { step: number; message: string }[] }[];
}

/** Run a command to its end without blocking this process (the bench may live in it). */
function run(command: string, args: string[], timeoutMs = 170000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs / 1000} s\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function until(what: string, ok: () => boolean, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const stopChild = async (child: ChildProcess | undefined): Promise<void> => {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
};

/** A pseudo-terminal pair: `a` for the board's side, `b` for the runner's. */
class PtyPair {
  readonly a: string;
  readonly b: string;
  private readonly socat: ChildProcess;
  private log = '';

  private constructor(dir: string, name: string) {
    this.a = join(dir, `${name}-a`);
    this.b = join(dir, `${name}-b`);
    this.socat = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`]);
    this.socat.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
  }

  static async open(dir: string, name: string): Promise<PtyPair> {
    const pair = new PtyPair(dir, name);
    await until(`socat's pty pair (${pair.log.trim()})`, () => /starting data transfer loop/.test(pair.log) && existsSync(pair.a) && existsSync(pair.b));
    return pair;
  }

  close(): Promise<void> {
    return stopChild(this.socat);
  }
}

/** What each host bench printed (its trace), shown when a test fails. */
const benchOutput = new Map<ChildProcess, { device: string; text: string }>();

/** The host's serial bench on `device`, started and ready (tracing requests and answers on stderr). */
async function startBench(device: string, ...flags: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [serialBench, device, '--trace', ...flags], { cwd: root });
  let out = '';
  let err = '';
  const record = { device, text: '' };
  benchOutput.set(child, record);
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    // Keep the tail only: a trace of every request of a run is long.
    record.text = (record.text + d.toString()).slice(-4000);
  });
  await until(`serial-bench on ${device} (${out}${err})`, () => {
    if (child.exitCode !== null) throw new Error(`serial-bench exited with ${child.exitCode}: ${err}`);
    return out.includes('serving bench protocol');
  });
  return child;
}

const summary = (r: Report): [string, boolean][] => r.scenarios.map((s) => [s.name, s.passed]);

describe('bench target serial:<device> over a socat pseudo-terminal pair', function () {
  this.timeout(180000);
  let dir = '';
  const pairs: PtyPair[] = [];
  const children: ChildProcess[] = [];
  let main: PtyPair;

  before(async () => {
    const v = spawnSync('socat', ['-V'], { encoding: 'utf8' });
    if (v.error || v.status !== 0) throw new Error('socat is missing: install socat (apt-get install socat; .ci/run installs it) to test the serial bench target');
    dir = mkdtempSync(join(tmpdir(), 'vendfleet-serial-'));
    main = await PtyPair.open(dir, 'main');
    pairs.push(main);
    children.push(await startBench(main.a));
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const { device, text } of benchOutput.values()) process.stderr.write(`--- serial-bench on ${device}, last lines:\n${text}\n`);
  });

  after(async () => {
    for (const c of children) await stopChild(c);
    for (const p of pairs) await p.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('passes the shared and the project scenarios through the serial path as on target sim, and refuses update steps', async function () {
    const files = [...scenarioFiles([shared]), ...scenarioFiles([own])];
    // The bench protocol has no update (the project's extension): a scenario with one fails there, at that step, saying why.
    // On target sim those run in test/sim/scenarios.test.ts; here only the others are compared.
    const firstUpdate = new Map(files.map((f) => loadScenario(f)).map((sc) => [sc.name, sc.steps.findIndex((st) => st.action === 'update')]));
    const updating = new Set(files.filter((f) => firstUpdate.get(loadScenario(f).name)! >= 0));
    assert.ok(updating.size > 0, 'the project has update scenarios');
    const [sim, serial] = await Promise.all([
      run(process.execPath, [hil, '--json', '--target', 'sim', ...files.filter((f) => !updating.has(f))]),
      run(process.execPath, [hil, '--json', '--target', `serial:${main.b}`, shared, own]),
    ]);
    const simReport = JSON.parse(sim.stdout) as Report;
    const serialReport = JSON.parse(serial.stdout) as Report;
    assert.equal(serialReport.scenarios.length, files.length);
    assert.deepEqual(
      summary(serialReport).filter(([name]) => firstUpdate.get(name)! < 0),
      summary(simReport),
    );
    for (const s of serialReport.scenarios) {
      assert.equal(s.target, `serial:${main.b}`);
      const at = firstUpdate.get(s.name)!;
      if (at < 0) {
        assert.ok(s.passed, `${s.name}: ${s.failures.map((f) => `step ${f.step}: ${f.message}`).join('; ')}`);
      } else {
        assert.deepEqual(s.failures.map((f) => f.step), [at + 1], s.name);
        assert.match(s.failures[0]!.message, /^update is not supported yet on target serial:\S+: the bench protocol has no update; a board takes its updates from its gateway/);
      }
    }
    assert.equal(serial.status, 1, serial.stderr);
    this.test!.title += ` (${serialReport.scenarios.length} scenarios)`;
  });

  it('reports a failing scenario with its step, expected and actual, through the serial path', async () => {
    const machine = { currency: 'USD', slots: [{ code: 'A1', product: 'Chips', price: 100, qty: 2 }], changer: { coins: [{ value: 25, tube: 10 }] } };
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ name: 'wrong credit', machine, steps: [{ select: 'A1' }, { insertCoin: 25 }, { expect: { credit: 50 } }] }));
    const card = join(dir, 'card.json');
    writeFileSync(card, JSON.stringify({ name: 'card', machine: { ...machine, cashless: { funds: 1000 } }, steps: [{ tapCard: true }, { expect: { state: 'IDLE' } }] }));
    const r = await run(process.execPath, [hil, '--target', `serial:${main.b}`, wrong]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL {2}wrong credit {2}\(.*wrong\.json, serial:.*main-b\): step 3: expect\.credit: expected 50, got 25/);
    // A step the bench cannot do says so exactly as on target sim (tapCard until the cashless reader lands).
    const [viaSim, viaSerial] = [await run(process.execPath, [hil, '--json', card]), await run(process.execPath, [hil, '--json', '--target', `serial:${main.b}`, card])];
    const strip = (r: Report): unknown => r.scenarios.map((s) => [s.passed, s.failures.map((f) => [f.step, f.message.replace(/on target \S+/, 'on target X')])]);
    assert.deepEqual(strip(JSON.parse(viaSerial.stdout) as Report), strip(JSON.parse(viaSim.stdout) as Report));
    assert.equal(viaSerial.status, viaSim.status);
  });

  it('skips garbage on the line in both directions and resynchronises', async () => {
    // The board side sends its console (firmware log lines) and a line of random bytes before every answer;
    // the firmware runs inside XS this time.
    const noisy = await PtyPair.open(dir, 'noisy');
    pairs.push(noisy);
    children.push(await startBench(noisy.a, '--console', '--noise', '--target', 'xs'));
    const consoleLines: string[] = [];
    const link = await SerialLink.open(noisy.b, { onConsole: (l) => consoleLines.push(l) });
    try {
      assert.equal(link.info.protocol, 1);
      assert.equal(link.info.bench, 'host-xs');
      assert.equal(link.info.clock, 'virtual');
      // Runner to board: random bytes, a line far over the board's limit, an unframed request,
      // and noise glued to the front of the next request (its checksum fails; the runner sends it again).
      const junk = Buffer.alloc(300);
      for (let i = 0; i < junk.length; i++) junk[i] = (i * 97 + 13) & 0xff || 1;
      await link.writeRaw(Buffer.concat([junk.filter((b) => b !== 0x0a), Buffer.from('\n')]));
      await link.writeRaw('x'.repeat(20000) + '\n');
      await link.writeRaw('5 status\n');
      await link.writeRaw(Buffer.from([0x00, 0xff, 0x13, 0x37]));
      const before = link.resends;
      const answer = await link.request('status', undefined, 10000);
      assert.deepEqual(answer.kind === 'err' ? [answer.code, answer.message] : answer, ['nomachine', 'no machine: send setup first']);
      assert.ok(link.resends > before, 'the garbled request was sent again');
      for (const file of scenarioFiles([shared])) {
        const result = await runScenario(loadScenario(file), (s) => SerialBenchTarget.open(link, s));
        assert.ok(result.passed, `${file}: ${result.failures.map((f) => `step ${f.step}: ${f.message}`).join('; ')}`);
      }
      assert.ok(consoleLines.some((l) => /^# \[[\d.]+ s\] info: vendfleet .* starting/.test(l)), 'the firmware log came through as console lines');
      assert.ok(link.ignoredLines >= 10, `non-protocol lines were skipped (${link.ignoredLines})`);
    } finally {
      await link.close();
    }
  });

  it('finishes a write held up by a full line while it reads (the serialport poller workaround)', async () => {
    // @serialport/bindings-cpp 13 forgets a write waiting for room once it polls for input: without
    // keepWritesMoving the write below waits forever in about one run of five.
    const pair = await PtyPair.open(dir, 'stuck');
    pairs.push(pair);
    const open = async (path: string): Promise<SerialPort> => {
      const p = new SerialPort({ path, baudRate: 115200, autoOpen: false });
      await new Promise<void>((resolve, reject) => p.open((e) => (e ? reject(e) : resolve())));
      return p;
    };
    const board = await open(pair.a);
    const runner = await open(pair.b);
    const stop = keepWritesMoving(runner);
    try {
      runner.on('data', () => undefined);
      board.pause();
      const written = new Promise<void>((resolve, reject) => runner.write(Buffer.alloc(300000, 0x78), (e) => (e ? reject(e) : resolve())));
      await new Promise((r) => setTimeout(r, 300));
      board.write('# a console line while the runner is stuck\n');
      await new Promise((r) => setTimeout(r, 700));
      let received = 0;
      board.on('data', (d: Buffer) => (received += d.length));
      board.resume();
      await Promise.race([written, new Promise((_, reject) => setTimeout(() => reject(new Error('the write never finished')), 10000))]);
      await until('the board to get every byte', () => received === 300000);
    } finally {
      stop();
      for (const p of [board, runner]) await new Promise<void>((resolve) => p.close(() => resolve()));
    }
  });

  it('says clearly when the device is missing', async () => {
    const missing = join(dir, 'no-such-tty');
    const r = await run(process.execPath, [hil, '--target', `serial:${missing}`, shared]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`hil: serial:${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot open the device \\(.*\\): is the board connected, or the pseudo-terminal pair \\(socat\\) running\\?`));
    await assert.rejects(SerialLink.open(missing), /cannot open the device/);
  });

  it('says clearly when nothing answers hello, and when the board speaks another protocol version', async () => {
    const silent = await PtyPair.open(dir, 'silent');
    pairs.push(silent);
    await assert.rejects(SerialLink.open(silent.b, { helloTimeoutMs: 1500 }), /serial:.*silent-b: no answer to hello within 1\.5 s: is the firmware built with the bench manifest, and the baud rate 115200\?; nothing at all came back/);

    // Boards of another generation: one refuses version 1, one says it speaks 2.
    for (const [name, answer, pattern] of [
      ['old', (id: number) => `${id} err version this board speaks bench protocol 2, not 1`, /protocol version mismatch: the runner speaks bench protocol 1, the board says: this board speaks bench protocol 2, not 1/],
      ['new', (id: number) => `${id} ok {"protocol":2,"bench":"esp32","clock":"real","firmware":"9.0.0"}`, /protocol version mismatch: the runner speaks bench protocol 1, the board answered protocol 2/],
    ] as const) {
      const pair = await PtyPair.open(dir, name);
      pairs.push(pair);
      const board = new SerialPort({ path: pair.a, baudRate: 115200, autoOpen: false });
      await new Promise<void>((resolve, reject) => board.open((e) => (e ? reject(e) : resolve())));
      const reader = new LineReader(4096, (line, length) => {
        const c = checkLine(line, length);
        const req = c.ok ? parseRequest(c.payload) : undefined;
        if (req?.ok) board.write(Buffer.from(frameLine(answer(req.id))));
      }, () => undefined);
      board.on('data', (d: Buffer) => reader.push(d));
      try {
        await assert.rejects(SerialLink.open(pair.b, { helloTimeoutMs: 5000 }), pattern);
      } finally {
        await new Promise<void>((resolve) => board.close(() => resolve()));
      }
    }
  });
});
