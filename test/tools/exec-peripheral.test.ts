/**
 * A foreign peripheral on the bench (docs/bench-peripheral.md): our own C
 * cashless reader (tools/peripherals/cashless.c, compiled here with cc)
 * plays the reader on the simulated bus through `npm run hil --
 * --peripheral cashless=exec:...` and a card sale happens; the clock holds
 * while the program thinks, so a slowed program gives the same run word
 * for word; a program that exits, writes garbage or falls silent fails
 * the step it did it in, with a message that says so, and nothing hangs.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MachineHost } from '../../hal-sim/host.js';
import { ExecPeripheral } from '../../hal-sim/mdb/exec.js';
import type { MachineSpec } from '../../hal-sim/rig.js';
import { runScenario, type ScenarioResult } from '../../tools/hil/runner.js';
import { loadScenario, parseScenario } from '../../tools/hil/scenario.js';
import { SimBenchTarget } from '../../tools/hil/sim-target.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const hil = join(root, 'dist/tools/hil.js');
const saleScenario = join(root, 'test/scenarios/card-sale-by-program.json');

/** Run a command to its end without blocking this process. */
function run(command: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A shell peripheral that answers every word with silence (`.`) and does `onTap` at the first `# tapCard`. */
const atTap = (onTap: string): string => `while IFS= read -r l; do case "$l" in "# tapCard"*) ${onTap};; *) echo .;; esac; done`;

describe('a foreign peripheral on the bench (--peripheral <device>=exec:<command>)', function () {
  let dir: string;
  let reader: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vf-exec-'));
    reader = join(dir, 'cashless');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', reader, join(root, 'tools/peripherals/cashless.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc failed: ${cc.stderr}`);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('our C reader runs card sales through npm run hil, on the simulator and under XS', async () => {
    for (const target of ['sim', 'xs']) {
      const r = await run(process.execPath, [hil, '--target', target, '--json', '--peripheral', `cashless=exec:${reader}`, saleScenario]);
      const report = JSON.parse(r.stdout) as { scenarios: { passed: boolean; failures: { step: number; message: string }[] }[] };
      assert.equal(r.status, 0, `${target}: ${r.stdout}\n${r.stderr}`);
      assert.equal(report.scenarios.length, 1);
      assert.ok(report.scenarios[0]!.passed, JSON.stringify(report.scenarios[0]!.failures));
    }
  });

  it('the clock holds while the program thinks: a program slowed down gives the same run, word for word', async () => {
    const spec: MachineSpec = { currency: 'USD', slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 5 }], changer: { coins: [{ value: 25, tube: 20 }] }, cashless: { funds: 300 } };
    const sale = async (command: string): Promise<{ wire: string[]; sales: number; display: string[]; atMs: number }> => {
      const wire: string[] = [];
      const failures: string[] = [];
      const host = await MachineHost.start(spec, {
        onWire: (dir, word, atUs) => wire.push(`${atUs} ${dir} ${word.toString(16)}`),
        peripherals: { cashless: (bus) => new ExecPeripheral(bus, { device: 'cashless', command, onFailure: (m) => failures.push(m) }) },
      });
      try {
        host.tapCard();
        await host.runUntilIdle();
        host.select('A1');
        const st = await host.runUntilIdle();
        assert.deepEqual(failures, []);
        return { wire, sales: st.counters.cashlessSales, display: host.rig.display.lines.slice(), atMs: host.nowMs };
      } finally {
        await host.close();
      }
    };
    const fast = await sale(reader);
    // Every line reaches the reader a few real milliseconds late (a sleep per line, in a shell in front of it).
    const slow = await sale(`while IFS= read -r l; do sleep 0.002; printf '%s\\n' "$l"; done | ${reader}`);
    assert.equal(fast.sales, 1, 'the card sale happened');
    assert.ok(fast.wire.length > 100, `the reader spoke (${fast.wire.length} words on the wire)`);
    assert.equal(slow.sales, 1);
    assert.equal(slow.atMs, fast.atMs);
    assert.deepEqual(slow.wire, fast.wire);
    assert.deepEqual(slow.display, fast.display);
  });

  const scenario = loadScenario(saleScenario);
  const withProgram = (command: string, answerMs?: number): Promise<ScenarioResult> =>
    runScenario(scenario, (s) => SimBenchTarget.open('sim', s, { peripherals: { commands: { cashless: command }, ...(answerMs !== undefined ? { answerMs } : {}) } }));
  const failedAt = (r: ScenarioResult): string => {
    assert.equal(r.passed, false, 'the scenario must fail');
    const f = r.failures[0]!;
    return `${f.step}: ${f.message}`;
  };

  it('a program that exits fails the step it exited in, with its status and the end of its stderr', async () => {
    const r = await withProgram(atTap('echo "reader on fire" >&2; exit 3'));
    assert.match(failedAt(r), /^1: tapCard: cashless=exec:.*: exited \(status 3\); its stderr ends: reader on fire$/);
  });

  it('a program that does not start (no such command) fails the run at once, saying why', async () => {
    const r = await withProgram(join(dir, 'no-such-reader'));
    assert.match(failedAt(r), /^0: the run failed: while the machine started: cashless=exec:.*no-such-reader: exited \(status 127\); its stderr ends: .*not found/);
  });

  for (const [answer, says] of [
    ['hello', /wrote "hello" answering "# tapCard 300": neither a word \(three hex digits\) nor the end of an answer/],
    ['200; echo .', /wrote "200" answering "# tapCard 300": a word has 9 bits/],
    ['100; echo .', /wrote the word 100 answering the bench event "# tapCard 300": a peripheral speaks only when the VMC addresses it/],
  ] as const) {
    it(`a program that writes garbage (${answer.split(';')[0]!} to a bench event) is stopped and fails the step`, async () => {
      const r = await withProgram(atTap(`echo ${answer}`));
      assert.match(failedAt(r), new RegExp(`^1: tapCard: cashless=exec:.*: ${says.source}`));
    });
  }

  it('a word from a program nobody asked is garbage too', async () => {
    // It answers the first word twice: the second end of answer comes when none is due.
    const r = await withProgram('read -r l; echo .; echo .; while read -r l; do echo .; done');
    assert.match(failedAt(r), /^0: the run failed: while the machine started: cashless=exec:.*: wrote "\." when no answer was due/);
  });

  it('a program that falls silent is taken as silent after its real-time limit, reported, and stopped', async () => {
    // It stops answering at the tap, but goes on reading: only the limit ends the wait. The limit is
    // shorter than the default to keep the test quick, yet long enough for the shell's answers before
    // the tap on a loaded machine.
    const r = await withProgram(atTap('while read -r x; do :; done'), 3000);
    assert.match(failedAt(r), /^1: tapCard: cashless=exec:.*: did not answer "# tapCard 300" within 3000 ms of real time \(taken as silence; the program is stopped\)$/);
  });

  it('a power cut ends the program and starts a fresh one with the machine (its account is gone with its RAM)', async () => {
    const machine = { currency: 'USD', slots: [{ code: 'A1', product: 'Chips', price: 125, qty: 5 }], changer: { coins: [{ value: 25, tube: 20 }] }, cashless: { funds: 300 } };
    const steps = [
      { tapCard: true },
      { select: 'A1' },
      { expect: { sales: 1, cardSales: 1 } },
      { powerCut: true },
      { tapCard: true },
      // Our reader keeps what it charged in memory only: the new one presents the card's full funds.
      { expect: { display: 'Card 3.00' } },
      { select: 'A1' },
      { expect: { state: 'IDLE', sales: 2, cardSales: 2, cardRevenue: 250, dispensed: ['A1', 'A1'] } },
    ];
    const r = await runScenario(parseScenario({ name: 'cut', machine, steps }, 'cut.json'), (s) => SimBenchTarget.open('sim', s, { peripherals: { commands: { cashless: reader } } }));
    assert.ok(r.passed, JSON.stringify(r.failures));
  });

  it('a changer and a bill validator program hear their own address only, and the coin and the bill as bench events', async () => {
    const logs = { changer: join(dir, 'changer.log'), bill: join(dir, 'bill.log') };
    // Each notes every line it is given and answers nothing (silence on the bus).
    const listener = (log: string): string => `while IFS= read -r l; do printf '%s\\n' "$l" >> ${log}; echo .; done`;
    const s = {
      name: 'cash to programs',
      file: 'cash.json',
      machine: { currency: 'USD', slots: [{ code: 'A1', product: 'Chips', price: 100, qty: 1 }], changer: { coins: [{ value: 25, tube: 4 }] }, bills: [100] },
      steps: [
        { action: 'insertCoin' as const, value: 25, settleMs: 1000 },
        { action: 'insertBill' as const, value: 100, settleMs: 1000 },
      ],
    };
    const r = await runScenario(s, (sc) => SimBenchTarget.open('sim', sc, { peripherals: { commands: { changer: listener(logs.changer), bill: listener(logs.bill) } } }));
    assert.ok(r.passed, JSON.stringify(r.failures));
    for (const [device, address, event] of [
      ['changer', 0x08, '# insertCoin 25'],
      ['bill', 0x30, '# insertBill 100'],
    ] as const) {
      const lines = readFileSync(logs[device], 'utf8').trim().split('\n');
      assert.deepEqual(
        lines.filter((l) => l.startsWith('#')),
        [event],
      );
      const words = lines.filter((l) => !l.startsWith('#')).map((l) => parseInt(l, 16));
      assert.ok(words.length > 0 && (words[0]! & 0x1f8) === (0x100 | address), `${device}: first word ${words[0]?.toString(16)}`);
      for (const w of words) if (w & 0x100) assert.equal(w & 0xf8, address, `${device} heard the address byte ${w.toString(16)}`);
    }
  });

  it('the command line: an unknown device, a malformed value, a serial target and a scenario without the device are refused', async () => {
    const bad = (args: string[]): { status: number | null; stderr: string } => spawnSync(process.execPath, [hil, ...args], { cwd: root, encoding: 'utf8' });
    let r = bad(['--peripheral', 'cash=exec:x', saleScenario]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown device "cash" \(changer, bill, cashless\)/);
    r = bad(['--peripheral', 'cashless=./reader', saleScenario]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /expected <device>=exec:<command>/);
    r = bad(['--target', 'serial:/dev/null', '--peripheral', `cashless=exec:${reader}`, saleScenario]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /targets sim and xs only/);
    const noBills = join(dir, 'no-bills.json');
    writeFileSync(noBills, JSON.stringify({ name: 'coins only', machine: { currency: 'USD', slots: [{ code: 'A1', product: 'Chips', price: 100, qty: 1 }], changer: { coins: [{ value: 25, tube: 4 }] } }, steps: [{ wait: 10 }] }));
    const out = await run(process.execPath, [hil, '--peripheral', `bill=exec:${reader}`, noBills]);
    assert.equal(out.status, 1);
    assert.match(out.stdout, /--peripheral bill: the scenario's machine has no bill \(machine\.bills\) for the program to play/);
  });
});
