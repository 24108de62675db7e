/**
 * Runs bench scenarios against a target (the host simulator, the firmware
 * under XS, later a real board) and checks their expectations.
 */
import type { Expectation, Scenario, Step } from './scenario.js';

/** What the bench can see of a machine at one moment. */
export interface Observation {
  state: string;
  credit: number;
  dispensed: string[];
  changePaid: number;
  changeCoins: number;
  billsReturned: number;
  slots: Record<string, number>;
  /** Coins per tube, keyed by coin value. */
  tubes: Record<string, number>;
  sales: number;
  revenue: number;
  /** Undefined while the target cannot tell (no journal yet). */
  unsynced?: number;
  display: string[];
  /** Virtual (or real) time since the scenario began, ms. */
  elapsedMs: number;
  /** Cashless: value the reader charged to cards since the scenario began (undefined: the target cannot tell). */
  cardCharged?: number;
  /** Card sales in the journal (included in `sales` and `revenue`). */
  cardSales?: number;
  cardRevenue?: number;
  /** The version the firmware says it runs (undefined: the target cannot tell). */
  firmware?: string;
  /** The update open on the machine (`none`), as its status says. */
  update?: string;
  /** With `update` steps: the machine's update reports and its update commands' outcomes, as the gateway stored them. */
  updateReports?: string[];
  updateCommands?: string[];
}

export interface StepOutcome {
  /** The step could not be carried out as the scenario says. */
  failure?: string;
  /** The target cannot do this yet. */
  unsupported?: string;
}

export interface BenchTarget {
  readonly name: string;
  apply(step: Exclude<Step, { action: 'expect' }>): Promise<StepOutcome>;
  observe(): Promise<Observation>;
  close(): Promise<void>;
}

export interface Failure {
  step: number;
  action: string;
  message: string;
  key?: string;
  expected?: unknown;
  actual?: unknown;
}

export interface ScenarioResult {
  name: string;
  file: string;
  target: string;
  passed: boolean;
  failures: Failure[];
  /** Machine time the scenario took, ms. */
  machineMs: number;
}

export type TargetFactory = (scenario: Scenario) => Promise<BenchTarget>;

const show = (v: unknown): string => JSON.stringify(v);

/** Every key of `expect` that does not hold in `obs`. */
export function compare(expect: Expectation, obs: Observation): { key: string; expected: unknown; actual: unknown }[] {
  const out: { key: string; expected: unknown; actual: unknown }[] = [];
  const check = (key: string, expected: unknown, actual: unknown, ok: boolean): void => {
    if (!ok) out.push({ key, expected, actual });
  };
  if (expect.state !== undefined) check('state', expect.state, obs.state, expect.state === obs.state);
  for (const key of ['credit', 'changePaid', 'changeCoins', 'billsReturned', 'sales', 'revenue'] as const) {
    const e = expect[key];
    if (e !== undefined) check(key, e, obs[key], e === obs[key]);
  }
  if (expect.unsynced !== undefined) check('unsynced', expect.unsynced, obs.unsynced, expect.unsynced === obs.unsynced);
  for (const key of ['cardCharged', 'cardSales', 'cardRevenue'] as const) {
    const e = expect[key];
    if (e !== undefined) check(key, e, obs[key], e === obs[key]);
  }
  if (expect.dispensed !== undefined) check('dispensed', expect.dispensed, obs.dispensed, show(expect.dispensed) === show(obs.dispensed));
  if (expect.slots !== undefined) {
    for (const [code, qty] of Object.entries(expect.slots)) check(`slots.${code}`, qty, obs.slots[code], obs.slots[code] === qty);
  }
  if (expect.tubes !== undefined) {
    for (const [value, n] of Object.entries(expect.tubes)) check(`tubes.${value}`, n, obs.tubes[value], obs.tubes[value] === n);
  }
  if (expect.firmware !== undefined) check('firmware', expect.firmware, obs.firmware, expect.firmware === obs.firmware);
  if (expect.update !== undefined) check('update', expect.update, obs.update, expect.update === obs.update);
  for (const key of ['updateReports', 'updateCommands'] as const) {
    const e = expect[key];
    if (e !== undefined) check(key, e, obs[key], show(e) === show(obs[key]));
  }
  if (expect.display !== undefined) {
    const text = obs.display.join('\n');
    const found = obs.display.some((l) => l.includes(expect.display!)) || obs.display.join(' ').includes(expect.display) || text.includes(expect.display);
    check('display', expect.display, obs.display, found);
  }
  return out;
}

export async function runScenario(scenario: Scenario, open: TargetFactory): Promise<ScenarioResult> {
  const failures: Failure[] = [];
  let target: BenchTarget | undefined;
  let machineMs = 0;
  let targetName = '?';
  try {
    target = await open(scenario);
    targetName = target.name;
    for (let i = 0; i < scenario.steps.length && failures.length === 0; i++) {
      const step = scenario.steps[i]!;
      if (step.action === 'expect') {
        const obs = await target.observe();
        machineMs = obs.elapsedMs;
        for (const m of compare(step.expect, obs)) {
          failures.push({ step: i + 1, action: 'expect', key: m.key, expected: m.expected, actual: m.actual, message: `expect.${m.key}: expected ${show(m.expected)}, got ${show(m.actual)}` });
        }
        continue;
      }
      const outcome = await target.apply(step);
      if (outcome.unsupported) failures.push({ step: i + 1, action: step.action, message: `${step.action} is not supported yet on target ${target.name}: ${outcome.unsupported}` });
      else if (outcome.failure) failures.push({ step: i + 1, action: step.action, message: `${step.action}: ${outcome.failure}` });
    }
    if (failures.length === 0) machineMs = (await target.observe()).elapsedMs;
  } catch (e) {
    failures.push({ step: 0, action: 'run', message: `the run failed: ${(e as Error).message}` });
  } finally {
    await target?.close();
  }
  return { name: scenario.name, file: scenario.file, target: targetName, passed: failures.length === 0, failures, machineMs };
}
