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
import { loadScenario, parseScenario, scenarioFiles, ScenarioError, UPDATE_SETTLE_MS } from '../../tools/hil/scenario.js';
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

describe('update steps in scenario files (the project\'s extension, docs/bench-scenarios-extensions.md)', () => {
  const machine = { currency: 'USD', slots: [{ code: 'A1', product: 'Chips', price: 100, qty: 2 }], changer: { coins: [{ value: 25, tube: 10 }] } };
  const parse = (steps: unknown[]): ReturnType<typeof parseScenario> => parseScenario({ name: 'x', machine, steps }, 'u.json');
  const update = { update: { version: '0.2.0' } };

  it('takes an update step with its defaults, its options and the expectations on updates', () => {
    const s = parse([
      update,
      { update: { version: '0.0.9', image: 'no-broker', downgrade: true, force: true, journal: 1, until: 'waiting' }, wait: 900000 },
      { update: { version: '1.0.0', image: 'wrong-hash' }, wait: 1000 },
      { expect: { firmware: '0.2.0', update: 'none', updateReports: ['downloaded', 'rolled-back probation: broker'], updateCommands: ['refused downgrade', 'applied'] } },
    ]);
    assert.deepEqual(s.steps, [
      { action: 'update', version: '0.2.0', image: 'good', downgrade: false, force: false, until: 'end', settleMs: UPDATE_SETTLE_MS },
      { action: 'update', version: '0.0.9', image: 'no-broker', downgrade: true, force: true, journal: 1, until: 'waiting', settleMs: 900000 },
      // A `wait` below the default does not shorten an update's settling.
      { action: 'update', version: '1.0.0', image: 'wrong-hash', downgrade: false, force: false, until: 'end', settleMs: UPDATE_SETTLE_MS },
      { action: 'expect', expect: { firmware: '0.2.0', update: 'none', updateReports: ['downloaded', 'rolled-back probation: broker'], updateCommands: ['refused downgrade', 'applied'] } },
    ]);
  });

  it('fails an update step that cannot be carried out as asked, saying where the machine was', async () => {
    const bills = { ...machine, bills: [100] };
    const offline = parseScenario({ name: 'offline', machine: bills, steps: [{ network: 'down' }, update] }, 'offline.json');
    const r1 = await runScenario(offline, (sc) => SimBenchTarget.open('sim', sc));
    assert.deepEqual(
      r1.failures.map((f) => [f.step, f.message]),
      [[2, 'update: the network is down: a machine takes an update over its link ({ "network": "up" } first)']],
    );
    // A downgrade is refused at once: it never downloads.
    const refused = parseScenario({ name: 'refused', machine: bills, steps: [{ update: { version: '0.0.1', until: 'downloading' } }, { expect: { firmware: '0.1.0' } }] }, 'refused.json');
    const r2 = await runScenario(refused, (sc) => SimBenchTarget.open('sim', sc));
    assert.deepEqual(
      r2.failures.map((f) => [f.step, f.message]),
      [[1, 'update: the update came to an end before it could reach downloading (command refused downgrade; reports [])']],
    );
  });

  it('refuses a bad update step or expectation with the file, the step and the reason', () => {
    const cases: [unknown[], RegExp][] = [
      [[{ cancel: true }, { update: '0.2.0' }], /^u\.json: step 2: update must be an object such as \{ "version": "0\.2\.0" \}$/],
      [[{ update: {} }], /^u\.json: step 1: update\.version must be a version MAJOR\.MINOR\.PATCH such as "0\.2\.0", not nothing$/],
      [[{ update: { version: 2 } }], /step 1: update\.version must be a version MAJOR\.MINOR\.PATCH such as "0\.2\.0", not 2$/],
      [[{ update: { version: '0.2' } }], /step 1: update\.version must be a version .*, not "0\.2"$/],
      [[{ update: { version: '0.02.0' } }], /step 1: update\.version must be a version .*, not "0\.02\.0"$/],
      [[{ update: { version: '0.2.0', image: 'broken' } }], /step 1: update\.image must be one of good, no-broker, throws-at-start, short, wrong-hash, not "broken"$/],
      [[{ update: { version: '0.2.0', image: true } }], /step 1: update\.image must be one of .*, not true$/],
      [[{ update: { version: '0.2.0', downgrade: 'yes' } }], /step 1: update\.downgrade must be true or false$/],
      [[{ update: { version: '0.2.0', force: 1 } }], /step 1: update\.force must be true or false$/],
      [[{ update: { version: '0.2.0', journal: 0 } }], /step 1: update\.journal must be a journal format, an integer from 1 to 65535$/],
      [[{ update: { version: '0.2.0', journal: 1.5 } }], /step 1: update\.journal must be a journal format/],
      [[{ update: { version: '0.2.0', until: 'probation' } }], /step 1: update\.until must be one of downloading, waiting, end, not "probation"$/],
      [[{ update: { version: '0.2.0', sha256: 'abc' } }], /step 1: update: unknown key "sha256" \(keys: version, image, journal, downgrade, force, until\)$/],
      [[{ update: { version: '0.2.0' }, wait: -1 }], /step 1: "wait" must be a non-negative integer \(ms\)$/],
      [[{ update: { version: '0.2.0' }, cancel: true }], /step 1: one action per step, found update, cancel$/],
      [[{ updates: { version: '0.2.0' } }], /step 1: unknown key "updates" \(actions: .*update, expect\)$/],
      [[{ cancel: true }, { expect: { firmware: 'new' } }], /step 2: expect\.firmware must be a version MAJOR\.MINOR\.PATCH/],
      [[{ cancel: true }, { expect: { update: 'installing' } }], /step 2: expect\.update must be one of none, downloading, waiting, probation$/],
      [[update, { expect: { updateReports: ['done'] } }], /step 2: expect\.updateReports must be a list of strings, each one of downloaded, failed, installing, confirmed, rolled-back, then optionally/],
      [[update, { expect: { updateReports: 'confirmed' } }], /step 2: expect\.updateReports must be a list/],
      [[update, { expect: { updateCommands: ['refused '] } }], /step 2: expect\.updateCommands must be a list of strings, each one of applied, stale, refused/],
      [[update, { expect: { updateCommands: [1] } }], /step 2: expect\.updateCommands must be a list/],
      [[{ cancel: true }, { expect: { updateReports: [] } }], /step 2: expect\.updateReports and expect\.updateCommands need an update step in the scenario$/],
    ];
    for (const [steps, pattern] of cases) {
      let said = 'no error';
      try {
        parse(steps);
      } catch (e) {
        said = e instanceof ScenarioError ? e.message : `not a ScenarioError: ${String(e)}`;
      }
      assert.match(said, pattern, JSON.stringify(steps));
    }
  });
});

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
      ['update.json', { name: 'x', machine, steps: [{ cancel: true }, { update: { version: '0.2.0', image: 'bad' } }] }, /update\.json: step 2: update\.image must be one of good, no-broker, throws-at-start, short, wrong-hash, not "bad"/],
      ['devcur.json', { name: 'x', machine: { ...machine, changer: { ...machine.changer, currency: 'euro' } }, steps: [{ cancel: true }] }, /devcur\.json: machine\.changer\.currency must be an ISO 4217 code/],
      ['billcur.json', { name: 'x', machine: { ...machine, bills: { values: [100], currncy: 'EUR' } }, steps: [{ cancel: true }] }, /billcur\.json: machine\.bills: unknown key "currncy"/],
    ];
    // One broken file alone fails the run; then all of them in one run (one process start, not 13: hil goes
    // on after a file it cannot load), each named on its own line with its reason.
    const [first, ...rest] = cases;
    const alone = run(write(first![0], first![1]));
    assert.equal(alone.status, 1, first![0]);
    assert.match(alone.stdout, first![2], alone.stdout);
    const r = run(...rest.map(([name, content]) => write(name, content)));
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    for (const [name, , pattern] of rest) {
      const mine = lines.filter((l) => l.includes(`/${name}:`));
      assert.equal(mine.length, 1, `${name}: ${r.stdout}`);
      assert.match(mine[0]!, pattern, `${name}: ${r.stdout}`);
    }
    assert.equal(lines.at(-1), `0 passed, ${rest.length} failed`);
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
