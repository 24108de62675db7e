/**
 * The bench scenarios: the shared ones (every one must pass on every target)
 * and the project's own, on the simulator and under XS; and the runner's
 * command line, including what it says about broken scenario files.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScenario } from '../../tools/hil/runner.js';
import { loadScenario, scenarioFiles } from '../../tools/hil/scenario.js';
import { closeBenchGateway } from '../../tools/hil/bench-gateway.js';
import { SimBenchTarget } from '../../tools/hil/sim-target.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const shared = join(root, '../shared/scenarios');
const own = join(root, 'test/scenarios');
const hil = join(root, 'dist/tools/hil.js');

for (const target of ['sim', 'xs'] as const) {
  describe(`bench scenarios on target ${target}`, () => {
    for (const file of [...scenarioFiles([shared]), ...scenarioFiles([own])]) {
      const scenario = loadScenario(file);
      it(`${scenario.name} (${file.startsWith(shared) ? 'shared' : 'own'})`, async () => {
        const result = await runScenario(scenario, (s) => SimBenchTarget.open(target, s));
        assert.ok(result.passed, result.failures.map((f) => `step ${f.step}: ${f.message}`).join('\n'));
      });
    }
  });
}

// Scenarios with network steps started the embedded bench gateway.
after(() => closeBenchGateway());

describe('npm run hil (command line)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vendfleet-hil-'));
  const write = (name: string, content: unknown): string => {
    const p = join(dir, name);
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };
  const machine = { currency: 'USD', slots: [{ code: 'A1', product: 'Chips', price: 100, qty: 2 }], changer: { coins: [{ value: 25, tube: 10 }] } };
  const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [hil, ...args], { encoding: 'utf8', cwd: root });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('passes the shared scenarios with one line each and exit status 0', () => {
    const r = run('--target', 'sim', shared);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('PASS')).length, scenarioFiles([shared]).length);
    assert.match(lines[lines.length - 1]!, /^\d+ passed, 0 failed$/);
  });

  it('names the file, the step, what was expected and what happened when a scenario fails', () => {
    const f = write('wrong.json', { name: 'wrong credit', machine, steps: [{ select: 'A1' }, { insertCoin: 25 }, { expect: { credit: 50 } }] });
    const r = run(f);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /FAIL {2}wrong credit {2}\(.*wrong\.json, sim\): step 3: expect\.credit: expected 50, got 25/);
  });

  it('rejects broken scenario files with the file, the step and the reason', () => {
    const cases: [string, unknown, RegExp][] = [
      ['syntax.json', '{ "name": "x",\n  "machine": }', /syntax\.json: not valid JSON at line 2, column \d+/],
      ['nosteps.json', { name: 'x', machine, steps: [] }, /nosteps\.json: "steps" must be a non-empty array/],
      ['slot.json', { name: 'x', machine, steps: [{ select: 'Z9' }] }, /slot\.json: step 1: select: "Z9" is not a slot of this machine \(A1\)/],
      ['coin.json', { name: 'x', machine, steps: [{ select: 'A1' }, { insertCoin: 30 }] }, /coin\.json: step 2: insertCoin: 30 is not a coin of this changer \(25\)/],
      ['action.json', { name: 'x', machine, steps: [{ insertcoin: 25 }] }, /action\.json: step 1: unknown key "insertcoin"/],
      ['two.json', { name: 'x', machine, steps: [{ select: 'A1', cancel: true }] }, /two\.json: step 1: one action per step, found select, cancel/],
      ['expect.json', { name: 'x', machine, steps: [{ expect: { state: 'SLEEPING' } }] }, /expect\.json: step 1: expect\.state must be one of IDLE/],
      ['tubes.json', { name: 'x', machine, steps: [{ expect: { tubes: { '10': 1 } } }] }, /tubes\.json: step 1: expect\.tubes: no tube holds coins of 10/],
      ['currency.json', { name: 'x', machine: { ...machine, currency: 'XXX' }, steps: [{ cancel: true }] }, /currency\.json: machine\.currency "XXX" is not supported/],
      ['price.json', { name: 'x', machine: { ...machine, slots: [{ code: 'A1', product: 'Chips', price: -5, qty: 1 }] }, steps: [{ cancel: true }] }, /price\.json: machine\.slots\[0\]\.price must be a positive integer/],
      ['devcur.json', { name: 'x', machine: { ...machine, changer: { ...machine.changer, currency: 'euro' } }, steps: [{ cancel: true }] }, /devcur\.json: machine\.changer\.currency must be an ISO 4217 code/],
      ['billcur.json', { name: 'x', machine: { ...machine, bills: { values: [100], currncy: 'EUR' } }, steps: [{ cancel: true }] }, /billcur\.json: machine\.bills: unknown key "currncy"/],
    ];
    for (const [name, content, pattern] of cases) {
      const r = run(write(name, content));
      assert.equal(r.status, 1, name);
      assert.match(r.stdout, pattern, `${name}: ${r.stdout}`);
    }
  });

  it('writes a JSON report with --json', () => {
    const f = write('ok.json', { name: 'one sale', machine, steps: [{ select: 'A1' }, { insertCoin: 25 }, { insertCoin: 25 }, { insertCoin: 25 }, { insertCoin: 25 }, { expect: { dispensed: ['A1'], sales: 1 } }] });
    const r = run('--json', '--target', 'xs', f);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { scenarios: { name: string; file: string; passed: boolean; failures: unknown[] }[] };
    assert.deepEqual(report.scenarios.map((s) => [s.name, s.passed, s.failures.length]), [['one sale', true, 0]]);
  });

  it('taps a card: the reader opens a session and pays for the selection', () => {
    const f = write('card.json', {
      name: 'card',
      machine: { ...machine, cashless: { funds: 1000 } },
      steps: [{ tapCard: true }, { select: 'A1' }, { expect: { dispensed: ['A1'], sales: 1, cardSales: 1, cardCharged: 100, credit: 0 } }],
    });
    const r = run(f);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^PASS {2}card/m);
  });

  it('refuses bad usage with status 2', () => {
    assert.equal(run().status, 2);
    assert.equal(run('--target', 'moon', shared).status, 2);
    assert.equal(run(join(dir, 'missing.json')).status, 2);
  });
});
