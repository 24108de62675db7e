/**
 * npm run hil -- [--target sim|xs|serial:<device>] [--json] [--seed N] [--verbose]
 *                [--peripheral changer|bill|cashless=exec:<command>]... [--peripheral-timeout ms] <files or folders>
 *
 * Runs bench scenarios (../shared/bench-scenarios.md). One line per scenario;
 * exit status 0 only if every scenario passed. A --peripheral program plays
 * that device on the simulated bus (docs/bench-peripheral.md).
 */
import { relative } from 'node:path';
import { runScenario, type ScenarioResult } from './hil/runner.js';
import { ScenarioError, loadScenario, scenarioFiles } from './hil/scenario.js';
import { closeBenchGateway } from './hil/bench-gateway.js';
import { SimBenchTarget, type PeripheralPrograms } from './hil/sim-target.js';
import { DEVICE_NAMES, type DeviceName } from '../hal-sim/rig.js';
import { SerialBenchTarget, SerialLink } from './hil/serial-target.js';

interface Options {
  target: string;
  json: boolean;
  seed: number;
  verbose: boolean;
  paths: string[];
  peripherals: Partial<Record<DeviceName, string>>;
  peripheralTimeoutMs: number | undefined;
}

function usage(message?: string): never {
  if (message) process.stderr.write(`hil: ${message}\n`);
  process.stderr.write(
    'usage: npm run hil -- [--target sim|xs|serial:<device>] [--json] [--seed N] [--verbose] [--peripheral changer|bill|cashless=exec:<command>]... [--peripheral-timeout ms] <scenario files or folders>\n',
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { target: 'sim', json: false, seed: 1, verbose: false, paths: [], peripherals: {}, peripheralTimeoutMs: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') o.json = true;
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '--target' || a === '-t') o.target = argv[++i] ?? usage('--target needs a value');
    else if (a.startsWith('--target=')) o.target = a.slice(9);
    else if (a === '--seed') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) usage('--seed needs a non-negative integer');
      o.seed = n;
    } else if (a === '--peripheral' || a.startsWith('--peripheral=')) {
      const v = a === '--peripheral' ? (argv[++i] ?? usage('--peripheral needs <device>=exec:<command>')) : a.slice('--peripheral='.length);
      const m = /^([a-z]+)=exec:(.+)$/s.exec(v);
      if (!m) usage(`--peripheral ${v}: expected <device>=exec:<command>, e.g. cashless=exec:./reader`);
      const device = m[1] as DeviceName;
      if (!DEVICE_NAMES.includes(device)) usage(`--peripheral: unknown device "${m[1]!}" (${DEVICE_NAMES.join(', ')})`);
      if (o.peripherals[device] !== undefined) usage(`--peripheral ${device} given twice`);
      o.peripherals[device] = m[2]!;
    } else if (a === '--peripheral-timeout') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) usage('--peripheral-timeout needs a positive integer (ms of real time)');
      o.peripheralTimeoutMs = n;
    } else if (a === '--help' || a === '-h') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else o.paths.push(a);
  }
  if (o.paths.length === 0) usage('name at least one scenario file or folder');
  if (o.target !== 'sim' && o.target !== 'xs' && !o.target.startsWith('serial:')) usage(`unknown target "${o.target}" (sim, xs or serial:<device>)`);
  if (Object.keys(o.peripherals).length > 0 && o.target.startsWith('serial:')) usage('--peripheral plays a device on the simulated bus: targets sim and xs only (a board has its own bus)');
  return o;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const results: ScenarioResult[] = [];
  let files: string[];
  try {
    files = scenarioFiles(o.paths);
  } catch (e) {
    usage((e as Error).message);
  }
  // A board is opened once for the run (opening a port may reset it): a missing device or a board that does not answer ends the run here.
  let link: SerialLink | undefined;
  if (o.target.startsWith('serial:')) {
    try {
      const onConsole = o.verbose ? (text: string) => process.stderr.write(`  [board] ${text}\n`) : undefined;
      link = await SerialLink.open(o.target.slice('serial:'.length), onConsole ? { onConsole } : {});
    } catch (e) {
      process.stderr.write(`hil: ${(e as Error).message}\n`);
      process.exit(2);
    }
  }
  for (const file of files) {
    let result: ScenarioResult;
    try {
      const scenario = loadScenario(file);
      if (link) {
        const serial = link;
        result = await runScenario(scenario, (s) => SerialBenchTarget.open(serial, s, { seed: o.seed }));
      } else {
        const target = o.target as 'sim' | 'xs';
        const onLog = o.verbose ? (level: string, message: string, at: number) => process.stderr.write(`  [${(at / 1000).toFixed(3)} s] ${level}: ${message}\n`) : undefined;
        const peripherals = programs(o);
        result = await runScenario(scenario, (s) => SimBenchTarget.open(target, s, { seed: o.seed, ...(onLog ? { onLog } : {}), ...(peripherals ? { peripherals } : {}) }));
      }
    } catch (e) {
      const err = e as Error;
      const failure = err instanceof ScenarioError ? { step: err.step !== undefined ? err.step + 1 : 0, action: 'load', message: err.detail } : { step: 0, action: 'load', message: err.message };
      result = { name: file, file, target: o.target, passed: false, machineMs: 0, failures: [failure] };
    }
    results.push(result);
    if (!o.json) process.stdout.write(line(result) + '\n');
  }
  const passed = results.filter((r) => r.passed).length;
  if (o.json) {
    process.stdout.write(JSON.stringify({ scenarios: results.map((r) => ({ name: r.name, file: r.file, target: r.target, passed: r.passed, failures: r.failures })) }, null, 2) + '\n');
  } else {
    process.stdout.write(`${passed} passed, ${results.length - passed} failed\n`);
  }
  process.exitCode = passed === results.length ? 0 : 1;
  await link?.close();
  await closeBenchGateway();
}

function programs(o: Options): PeripheralPrograms | undefined {
  if (Object.keys(o.peripherals).length === 0) return undefined;
  const p: PeripheralPrograms = { commands: o.peripherals };
  if (o.peripheralTimeoutMs !== undefined) p.answerMs = o.peripheralTimeoutMs;
  if (o.verbose) p.trace = (device, dir, text) => process.stderr.write(`  [${device} ${dir === 'in' ? '<-' : dir === 'out' ? '->' : 'stderr'}] ${text}\n`);
  return p;
}

function line(r: ScenarioResult): string {
  const where = relative(process.cwd(), r.file) || r.file;
  if (r.passed) return `PASS  ${r.name}  (${where}, ${r.target}, ${(r.machineMs / 1000).toFixed(1)} s machine time)`;
  const f = r.failures[0]!;
  const at = f.step > 0 ? `step ${f.step}: ` : '';
  const more = r.failures.length > 1 ? `; ${r.failures.slice(1).map((x) => x.message).join('; ')}` : '';
  return `FAIL  ${r.name === r.file ? where : `${r.name}  (${where}, ${r.target})`}: ${at}${f.message}${more}`;
}

main().catch((e) => {
  process.stderr.write(`hil: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(2);
});
