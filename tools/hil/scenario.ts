/**
 * Bench scenarios (../shared/bench-scenarios.md): parsing and validation.
 * Every error names the file and, where it applies, the step, so a typo in a
 * scenario is found in seconds.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OUTCOMES } from '../../firmware/command/vocabulary.js';
import { isVersion } from '../../firmware/image.js';
import { UPDATE_PHASES } from '../../firmware/journal/vocabulary.js';
import { CURRENCIES } from '../../hal-sim/currency.js';
import { CASHLESS_FAULTS, type CashlessFaultName, type MachineSpec } from '../../hal-sim/rig.js';
import { jsonErrorPosition } from './json-position.js';

export const STATES = ['IDLE', 'PRODUCT_SELECTED', 'ACCEPTING_PAYMENT', 'DISPENSING', 'RETURNING_CHANGE', 'ERROR'] as const;
export type StateName = (typeof STATES)[number];

export interface Expectation {
  state?: StateName;
  credit?: number;
  dispensed?: string[];
  changePaid?: number;
  changeCoins?: number;
  billsReturned?: number;
  slots?: Record<string, number>;
  tubes?: Record<string, number>;
  sales?: number;
  revenue?: number;
  unsynced?: number;
  display?: string;
  /** Cashless (extensions): value the reader charged to the card, from the reader itself. */
  cardCharged?: number;
  /** Card sales recorded in the journal (also counted in `sales`), and their value (in `revenue`). */
  cardSales?: number;
  cardRevenue?: number;
  /** Updates (extensions, docs/bench-scenarios-extensions.md): the version the machine says it runs. */
  firmware?: string;
  /** The update open on the machine, as its status says (`none` when there is none). */
  update?: UpdateState;
  /** The machine's `update` reports the gateway stored, in order: the phase, and the reason after a space. */
  updateReports?: string[];
  /** The outcomes of the scenario's update commands the gateway stored, in order: the outcome, and the reason after a space. */
  updateCommands?: string[];
}

/** What an `update` step builds (docs/bench-scenarios-extensions.md). */
export const UPDATE_IMAGES = ['good', 'no-broker', 'throws-at-start', 'short', 'wrong-hash'] as const;
export type UpdateImage = (typeof UPDATE_IMAGES)[number];
/** Where an `update` step stops running the machine. */
export const UPDATE_UNTIL = ['downloading', 'waiting', 'end'] as const;
export type UpdateUntil = (typeof UPDATE_UNTIL)[number];
/** The update open on a machine, as `expect.update` names it. */
export const UPDATE_STATES = ['none', 'downloading', 'waiting', 'probation'] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

export interface UpdateStep {
  action: 'update';
  version: string;
  image: UpdateImage;
  /** The journal format the image declares (default: the bundle's). */
  journal?: number;
  downgrade: boolean;
  force: boolean;
  until: UpdateUntil;
  settleMs: number;
}

export type Step =
  | { action: 'select'; code: string; quantity: number; settleMs: number }
  | { action: 'insertCoin'; value: number; settleMs: number }
  | { action: 'insertBill'; value: number; settleMs: number }
  | { action: 'tapCard'; settleMs: number }
  | { action: 'cancel'; settleMs: number }
  | { action: 'wait'; ms: number }
  | { action: 'jam'; code: string }
  | { action: 'powerCut'; settleMs: number }
  | { action: 'network'; up: boolean; settleMs: number }
  | UpdateStep
  | { action: 'expect'; expect: Expectation };

export interface Scenario {
  name: string;
  file: string;
  machine: MachineSpec;
  steps: Step[];
}

export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly detail: string,
    readonly step?: number,
  ) {
    super(`${file}: ${step !== undefined ? `step ${step + 1}: ` : ''}${detail}`);
    this.name = 'ScenarioError';
  }
}

/** Default and longest time a step that starts hardware activity may take to settle. */
export const SETTLE_MS = 60000;
/** How long an `update` step may run the machine by default: a download, a safe moment and a probation. */
export const UPDATE_SETTLE_MS = 600000;

type Obj = { [key: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

const ACTIONS = ['select', 'insertCoin', 'insertBill', 'tapCard', 'cancel', 'wait', 'jam', 'powerCut', 'network', 'update', 'expect'] as const;

/** Expand files and folders (their *.json, sorted) into a list of scenario files. */
export function scenarioFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new ScenarioError(p, 'no such file or folder');
    }
    if (st.isDirectory()) {
      const files = readdirSync(p)
        .filter((f) => f.endsWith('.json'))
        .sort();
      if (files.length === 0) throw new ScenarioError(p, 'folder has no .json scenario files');
      for (const f of files) out.push(join(p, f));
    } else {
      out.push(p);
    }
  }
  return out;
}

export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ScenarioError(file, `cannot read: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const at = jsonErrorPosition(text);
    throw new ScenarioError(file, `not valid JSON${at ? ` at line ${at.line}, column ${at.column}` : ''}: ${(e as Error).message}`);
  }
  return parseScenario(data, file);
}

export function parseScenario(data: unknown, file: string): Scenario {
  const fail = (detail: string, step?: number): never => {
    throw new ScenarioError(file, detail, step);
  };
  if (!isObj(data)) return fail('a scenario must be a JSON object with "name", "machine" and "steps"');
  for (const key of Object.keys(data)) if (!['name', 'machine', 'steps', 'description'].includes(key)) fail(`unknown top-level key "${key}"`);
  if (typeof data['name'] !== 'string' || data['name'].trim() === '') fail('"name" must be a non-empty string');
  const machine = parseMachine(data['machine'], fail);
  const stepsIn = data['steps'];
  if (!Array.isArray(stepsIn) || stepsIn.length === 0) return fail('"steps" must be a non-empty array');
  const steps = stepsIn.map((s: unknown, i: number) => parseStep(s, i, machine, fail));
  // What the gateway stored of updates is read only where the scenario sends one.
  if (!steps.some((s) => s.action === 'update')) {
    const at = steps.findIndex((s) => s.action === 'expect' && (s.expect.updateReports !== undefined || s.expect.updateCommands !== undefined));
    if (at >= 0) fail('expect.updateReports and expect.updateCommands need an update step in the scenario', at);
  }
  return { name: data['name'] as string, file, machine, steps };
}

function parseMachine(m: unknown, fail: (detail: string, step?: number) => never): MachineSpec {
  if (!isObj(m)) return fail('"machine" must be an object');
  for (const key of Object.keys(m)) {
    if (!['currency', 'slots', 'changer', 'bills', 'cashless', 'changePolicy'].includes(key)) fail(`machine: unknown key "${key}"`);
  }
  const currency = m['currency'];
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) fail('machine.currency must be an ISO 4217 code such as "USD"');
  if (!CURRENCIES[currency as string]) fail(`machine.currency "${currency as string}" is not supported (known: ${Object.keys(CURRENCIES).join(', ')})`);
  const slotsIn = m['slots'];
  if (!Array.isArray(slotsIn) || slotsIn.length === 0) fail('machine.slots must be a non-empty array');
  const codes = new Set<string>();
  const slots = (slotsIn as unknown[]).map((s, i) => {
    const at = `machine.slots[${i}]`;
    if (!isObj(s)) return fail(`${at} must be an object`);
    for (const key of Object.keys(s)) if (!['code', 'product', 'price', 'qty', 'category', 'capacity'].includes(key)) fail(`${at}: unknown key "${key}"`);
    const code = s['code'];
    if (typeof code !== 'string' || !/^[A-Z0-9]{1,4}$/.test(code)) fail(`${at}.code must be 1-4 capital letters or digits, such as "A1"`);
    if (codes.has(code as string)) fail(`${at}.code "${code as string}" appears twice`);
    codes.add(code as string);
    if (typeof s['product'] !== 'string' || s['product'] === '') fail(`${at}.product must be a non-empty string`);
    if (!isInt(s['price']) || s['price'] <= 0) fail(`${at}.price must be a positive integer (minor units)`);
    if (!isInt(s['qty']) || s['qty'] < 0) fail(`${at}.qty must be a non-negative integer`);
    if (s['category'] !== undefined && typeof s['category'] !== 'string') fail(`${at}.category must be a string`);
    if (s['capacity'] !== undefined && (!isInt(s['capacity']) || s['capacity'] < (s['qty'] as number))) fail(`${at}.capacity must be an integer at least qty`);
    const slot: MachineSpec['slots'][number] = { code: code as string, product: s['product'] as string, price: s['price'] as number, qty: s['qty'] as number };
    if (typeof s['category'] === 'string') slot.category = s['category'];
    if (isInt(s['capacity'])) slot.capacity = s['capacity'];
    return slot;
  });
  const spec: MachineSpec = { currency: currency as string, slots };
  // A device's own currency (what it reports in its SETUP); a device in other money must not be enabled.
  const deviceCurrency = (at: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !CURRENCIES[v]) fail(`${at}.currency must be an ISO 4217 code the simulator knows (${Object.keys(CURRENCIES).join(', ')})`);
    return v as string;
  };
  const changer = m['changer'];
  if (changer !== undefined) {
    if (!isObj(changer) || !Array.isArray(changer['coins']) || changer['coins'].length === 0 || changer['coins'].length > 16) {
      fail('machine.changer must be { "coins": [...] } with 1 to 16 coin types');
    }
    for (const key of Object.keys(changer as Obj)) if (!['coins', 'currency'].includes(key)) fail(`machine.changer: unknown key "${key}"`);
    const coins = ((changer as Obj)['coins'] as unknown[]).map((c, i) => {
      const at = `machine.changer.coins[${i}]`;
      if (!isObj(c)) return fail(`${at} must be an object { "value", "tube" }`);
      if (!isInt(c['value']) || c['value'] <= 0) fail(`${at}.value must be a positive integer (minor units)`);
      const tube = c['tube'];
      if (tube !== null && (!isInt(tube) || tube < 0 || tube > 255)) fail(`${at}.tube must be a coin count from 0 to 255, or null for a coin without a tube`);
      return { value: c['value'] as number, tube: tube as number | null };
    });
    spec.changer = { coins };
    const cc = deviceCurrency('machine.changer', (changer as Obj)['currency']);
    if (cc !== undefined) spec.changer.currency = cc;
  }
  let bills = m['bills'];
  if (bills !== undefined) {
    // With its own currency the validator is written { "values": [...], "currency": "EUR" }.
    if (isObj(bills)) {
      for (const key of Object.keys(bills)) if (!['values', 'currency'].includes(key)) fail(`machine.bills: unknown key "${key}"`);
      const bc = deviceCurrency('machine.bills', bills['currency']);
      if (bc !== undefined) spec.billsCurrency = bc;
      bills = bills['values'];
    }
    if (!Array.isArray(bills) || bills.length === 0 || bills.length > 16 || !bills.every((b) => isInt(b) && b > 0)) {
      fail('machine.bills must be a list of 1 to 16 positive bill values (minor units), or { "values": [...], "currency": "EUR" }');
    }
    spec.bills = bills as number[];
  }
  const cashless = m['cashless'];
  if (cashless !== undefined) {
    if (!isObj(cashless) || !isInt(cashless['funds']) || cashless['funds'] < 0) fail('machine.cashless must be { "funds": <minor units>, "approve"?: boolean }');
    const c = cashless as Obj;
    for (const key of Object.keys(c)) if (!['funds', 'approve', 'approveMs', 'fault', 'currency', 'endSession'].includes(key)) fail(`machine.cashless: unknown key "${key}"`);
    if (c['approve'] !== undefined && typeof c['approve'] !== 'boolean') fail('machine.cashless.approve must be true or false');
    spec.cashless = { funds: c['funds'] as number };
    if (typeof c['approve'] === 'boolean') spec.cashless.approve = c['approve'];
    // Simulator extensions: how long the reader takes to answer a vend request, and a fault for the first vend.
    if (c['approveMs'] !== undefined) {
      if (!isInt(c['approveMs']) || c['approveMs'] < 0 || c['approveMs'] > 60000) fail('machine.cashless.approveMs must be an integer from 0 to 60000');
      spec.cashless.approveMs = c['approveMs'] as number;
    }
    if (c['fault'] !== undefined) {
      if (!(CASHLESS_FAULTS as readonly unknown[]).includes(c['fault'])) fail(`machine.cashless.fault must be one of ${CASHLESS_FAULTS.join(', ')}`);
      spec.cashless.fault = c['fault'] as CashlessFaultName;
    }
    const rc = deviceCurrency('machine.cashless', c['currency']);
    if (rc !== undefined) spec.cashless.currency = rc;
    // Simulator extension: a reader that never sends END SESSION after SESSION COMPLETE.
    if (c['endSession'] !== undefined) {
      if (typeof c['endSession'] !== 'boolean') fail('machine.cashless.endSession must be true or false');
      spec.cashless.endSession = c['endSession'] as boolean;
    }
  }
  const policy = m['changePolicy'];
  if (policy !== undefined) {
    if (policy !== 'refuse' && policy !== 'overpay') fail('machine.changePolicy must be "refuse" or "overpay"');
    spec.changePolicy = policy as 'refuse' | 'overpay';
  }
  if (!spec.changer && !spec.bills && !spec.cashless) fail('machine needs at least one payment device: changer, bills or cashless');
  return spec;
}

function parseStep(s: unknown, i: number, machine: MachineSpec, fail: (detail: string, step?: number) => never): Step {
  if (!isObj(s)) return fail('a step must be an object with one action key', i);
  const keys = Object.keys(s);
  const actions = keys.filter((k) => (ACTIONS as readonly string[]).includes(k) && !(k === 'wait' && keys.length > 1));
  for (const k of keys) {
    if (!(ACTIONS as readonly string[]).includes(k) && !(k === 'quantity' && 'select' in s)) fail(`unknown key "${k}" (actions: ${ACTIONS.join(', ')})`, i);
  }
  if (actions.length !== 1) return fail(actions.length === 0 ? 'no action key' : `one action per step, found ${actions.join(', ')}`, i);
  const action = actions[0]!;
  const least = action === 'update' ? UPDATE_SETTLE_MS : SETTLE_MS;
  let settleMs = least;
  if (action !== 'wait' && 'wait' in s) {
    if (!isInt(s['wait']) || s['wait'] < 0) fail('"wait" must be a non-negative integer (ms)', i);
    settleMs = Math.max(least, s['wait'] as number);
  }
  const codes = machine.slots.map((x) => x.code);
  const v = s[action];
  switch (action) {
    case 'select': {
      if (typeof v !== 'string' || !codes.includes(v)) fail(`select: "${String(v)}" is not a slot of this machine (${codes.join(', ')})`, i);
      const q = s['quantity'] ?? 1;
      if (!isInt(q) || q < 1) fail('select: "quantity" must be a positive integer', i);
      return { action, code: v as string, quantity: q as number, settleMs };
    }
    case 'insertCoin': {
      if (!machine.changer) fail('insertCoin: this machine has no coin changer', i);
      const values = machine.changer!.coins.map((c) => c.value);
      if (!isInt(v) || !values.includes(v)) fail(`insertCoin: ${String(v)} is not a coin of this changer (${values.join(', ')})`, i);
      return { action, value: v as number, settleMs };
    }
    case 'insertBill': {
      if (!machine.bills) fail('insertBill: this machine has no bill validator', i);
      if (!isInt(v) || v <= 0) fail('insertBill: the bill value must be a positive integer (minor units)', i);
      // A bill the validator does not know is legitimate input: it is refused at the slot.
      return { action, value: v as number, settleMs };
    }
    case 'tapCard':
      if (v !== true) fail('tapCard must be true', i);
      if (!machine.cashless) fail('tapCard: this machine has no cashless reader', i);
      return { action, settleMs };
    case 'cancel':
      if (v !== true) fail('cancel must be true', i);
      return { action, settleMs };
    case 'wait':
      if (!isInt(v) || v < 0) fail('wait must be a non-negative integer (ms)', i);
      return { action, ms: v as number };
    case 'jam':
      if (typeof v !== 'string' || !codes.includes(v)) fail(`jam: "${String(v)}" is not a slot of this machine (${codes.join(', ')})`, i);
      return { action, code: v as string };
    case 'powerCut':
      if (v !== true) fail('powerCut must be true', i);
      return { action, settleMs };
    case 'network':
      if (v !== 'up' && v !== 'down') fail('network must be "up" or "down"', i);
      return { action, up: v === 'up', settleMs };
    case 'update':
      return parseUpdate(v, i, settleMs, fail);
    default:
      return { action: 'expect', expect: parseExpect(v, i, machine, fail) };
  }
}

function parseUpdate(v: unknown, i: number, settleMs: number, fail: (detail: string, step?: number) => never): UpdateStep {
  if (!isObj(v)) return fail('update must be an object such as { "version": "0.2.0" }', i);
  for (const key of Object.keys(v)) {
    if (!['version', 'image', 'journal', 'downgrade', 'force', 'until'].includes(key)) fail(`update: unknown key "${key}" (keys: version, image, journal, downgrade, force, until)`, i);
  }
  const version = v['version'];
  if (!isVersion(version)) fail(`update.version must be a version MAJOR.MINOR.PATCH such as "0.2.0", not ${JSON.stringify(version) ?? 'nothing'}`, i);
  const image = v['image'] ?? 'good';
  if (!(UPDATE_IMAGES as readonly unknown[]).includes(image)) fail(`update.image must be one of ${UPDATE_IMAGES.join(', ')}, not ${JSON.stringify(image)}`, i);
  const until = v['until'] ?? 'end';
  if (!(UPDATE_UNTIL as readonly unknown[]).includes(until)) fail(`update.until must be one of ${UPDATE_UNTIL.join(', ')}, not ${JSON.stringify(until)}`, i);
  for (const key of ['downgrade', 'force']) if (v[key] !== undefined && typeof v[key] !== 'boolean') fail(`update.${key} must be true or false`, i);
  const step: UpdateStep = { action: 'update', version: version as string, image: image as UpdateImage, downgrade: v['downgrade'] === true, force: v['force'] === true, until: until as UpdateUntil, settleMs };
  if (v['journal'] !== undefined) {
    if (!isInt(v['journal']) || v['journal'] < 1 || v['journal'] > 65535) fail('update.journal must be a journal format, an integer from 1 to 65535', i);
    step.journal = v['journal'] as number;
  }
  return step;
}

/** A list of report words: each a known first word (`phase`, `outcome`), then optionally a space and a reason. */
function reportList(v: unknown, key: string, words: readonly string[], i: number, fail: (detail: string, step?: number) => never): string[] {
  const ok = (x: unknown): boolean => typeof x === 'string' && words.includes(x.split(' ')[0]!) && !x.endsWith(' ');
  if (!Array.isArray(v) || !v.every(ok)) fail(`expect.${key} must be a list of strings, each one of ${words.join(', ')}, then optionally a space and the reason (such as "${words[0]}")`, i);
  return v as string[];
}

function parseExpect(v: unknown, i: number, machine: MachineSpec, fail: (detail: string, step?: number) => never): Expectation {
  if (!isObj(v) || Object.keys(v).length === 0) return fail('expect must be an object with at least one key', i);
  const codes = machine.slots.map((x) => x.code);
  const out: Expectation = {};
  const count = (key: string): number => {
    const x = v[key];
    if (!isInt(x) || x < 0) fail(`expect.${key} must be a non-negative integer`, i);
    return x as number;
  };
  for (const key of Object.keys(v)) {
    switch (key) {
      case 'state': {
        const st = v[key];
        if (typeof st !== 'string' || !(STATES as readonly string[]).includes(st)) fail(`expect.state must be one of ${STATES.join(', ')}`, i);
        out.state = st as StateName;
        break;
      }
      case 'credit':
      case 'changePaid':
      case 'changeCoins':
      case 'billsReturned':
      case 'sales':
      case 'revenue':
      case 'unsynced':
        out[key] = count(key);
        break;
      case 'cardCharged':
      case 'cardSales':
      case 'cardRevenue':
        if (!machine.cashless) fail(`expect.${key}: this machine has no cashless reader`, i);
        out[key] = count(key);
        break;
      case 'dispensed': {
        const d = v[key];
        if (!Array.isArray(d) || !d.every((c) => typeof c === 'string' && codes.includes(c))) fail(`expect.dispensed must be a list of slot codes (${codes.join(', ')})`, i);
        out.dispensed = d as string[];
        break;
      }
      case 'slots': {
        const sl = v[key];
        if (!isObj(sl)) return fail('expect.slots must be an object { "A1": 4 }', i);
        for (const [code, q] of Object.entries(sl)) {
          if (!codes.includes(code)) fail(`expect.slots: "${code}" is not a slot of this machine`, i);
          if (!isInt(q) || q < 0) fail(`expect.slots.${code} must be a non-negative integer`, i);
        }
        out.slots = sl as Record<string, number>;
        break;
      }
      case 'tubes': {
        const tb = v[key];
        if (!isObj(tb)) return fail('expect.tubes must be an object { "25": 9 }', i);
        const values = machine.changer?.coins.filter((c) => c.tube !== null).map((c) => String(c.value)) ?? [];
        for (const [value, n] of Object.entries(tb)) {
          if (!values.includes(value)) fail(`expect.tubes: no tube holds coins of ${value} (tubes: ${values.join(', ') || 'none'})`, i);
          if (!isInt(n) || n < 0) fail(`expect.tubes.${value} must be a non-negative integer`, i);
        }
        out.tubes = tb as Record<string, number>;
        break;
      }
      case 'display':
        if (typeof v[key] !== 'string') fail('expect.display must be a string', i);
        out.display = v[key] as string;
        break;
      case 'firmware':
        if (!isVersion(v[key])) fail('expect.firmware must be a version MAJOR.MINOR.PATCH such as "0.2.0"', i);
        out.firmware = v[key] as string;
        break;
      case 'update': {
        const st = v[key];
        if (!(UPDATE_STATES as readonly unknown[]).includes(st)) fail(`expect.update must be one of ${UPDATE_STATES.join(', ')}`, i);
        out.update = st as UpdateState;
        break;
      }
      case 'updateReports':
        out.updateReports = reportList(v[key], key, UPDATE_PHASES.filter((p) => p !== ''), i, fail);
        break;
      case 'updateCommands':
        out.updateCommands = reportList(v[key], key, OUTCOMES, i, fail);
        break;
      default:
        fail(`expect: unknown key "${key}"`, i);
    }
  }
  return out;
}
