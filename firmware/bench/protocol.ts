/**
 * The bench protocol's messages (docs/bench-protocol.md): what a request
 * says, what an answer says, and the types the bench speaks in. Requests
 *
 *     <id> <verb>[ <json object>]
 *
 * are answered by
 *
 *     <id> ok[ <json>]          or     <id> err <code> <message>
 *
 * and a line the board could not take (bad checksum, too long, no id) by
 * `! err <code> <message>`. Every line is framed by frame.ts. Pure code:
 * runs under XS on the board and in Node on the runner.
 */

/** Bumped whenever a request or an answer changes meaning. */
export const BENCH_PROTOCOL = 1;
/** Longest request line a board accepts (payload and checksum, without the newline). */
export const MAX_REQUEST_BYTES = 4096;
/** How long a step that starts hardware activity may take to settle unless it says otherwise. */
export const DEFAULT_SETTLE_MS = 60000;
/** Longest error message sent (a console line, not a log). */
const MAX_MESSAGE = 400;

export type BenchErrorCode =
  /** The request is malformed: unknown verb, bad JSON, a missing or mistyped argument. */
  | 'badrequest'
  /** The line's checksum is missing or wrong (sent with id `!`). */
  | 'checksum'
  /** The line was longer than the board accepts (sent with id `!`). */
  | 'toolong'
  /** `hello` asked for a protocol version this board does not speak. */
  | 'version'
  /** Another request is still being carried out. */
  | 'busy'
  /** A step or `status` before `setup`. */
  | 'nomachine'
  /** This bench cannot do that (yet): the scenario step is reported as not supported. */
  | 'unsupported'
  /** The step could not be carried out as asked (a coin came back): the scenario step fails. */
  | 'refused'
  /** The bench itself failed (an exception, the firmware did not come up). */
  | 'failed';

export interface BenchSlot {
  code: string;
  product: string;
  price: number;
  qty: number;
  category?: string;
  capacity?: number;
}

/** A bench scenario's `machine` (../shared/bench-scenarios.md), as `setup` carries it. */
export interface BenchMachine {
  currency: string;
  slots: BenchSlot[];
  /** `currency` on a device: the ISO 4217 code it reports (default: the machine's); one in other money must not be enabled. */
  changer?: { coins: { value: number; tube: number | null }[]; currency?: string };
  bills?: number[];
  billsCurrency?: string;
  cashless?: { funds: number; approve?: boolean; currency?: string };
  changePolicy?: 'refuse' | 'overpay';
}

/** A scenario step other than `expect`; `settleMs` bounds the run until the machine is idle. */
export type BenchAction =
  | { action: 'select'; code: string; quantity: number; settleMs: number }
  | { action: 'insertCoin'; value: number; settleMs: number }
  | { action: 'insertBill'; value: number; settleMs: number }
  | { action: 'tapCard'; settleMs: number }
  | { action: 'cancel'; settleMs: number }
  | { action: 'wait'; ms: number }
  | { action: 'jam'; code: string }
  | { action: 'powerCut'; settleMs: number }
  | { action: 'network'; up: boolean; settleMs: number };

export type BenchVerb = 'hello' | 'setup' | 'status' | 'end' | BenchAction['action'];
export const VERBS: readonly BenchVerb[] = Object.freeze(['hello', 'setup', 'status', 'end', 'select', 'insertCoin', 'insertBill', 'tapCard', 'cancel', 'wait', 'jam', 'powerCut', 'network']);

/** What `status` answers: everything a scenario's `expect` can check. */
export interface BenchStatus {
  state: string;
  credit: number;
  /** Slot codes dispensed since `setup`, in order. */
  dispensed: string[];
  /** Value and number of coins paid out since `setup` (change and refunds). */
  changePaid: number;
  changeCoins: number;
  billsReturned: number;
  slots: Record<string, number>;
  /** Coins per tube, keyed by coin value. */
  tubes: Record<string, number>;
  sales: number;
  revenue: number;
  /** Absent while the machine cannot tell. */
  unsynced?: number;
  display: string[];
  /** Machine time since `setup` (virtual on the host, real on a board), ms. */
  elapsedMs: number;
  /** With a cashless reader: card sales and their value in the journal (counted in `sales` and `revenue` too). */
  cardSales?: number;
  cardRevenue?: number;
  /** With a cashless reader: value charged to cards since `setup`, as the reader (or the bench's card simulator) tells. */
  cardCharged?: number;
}

/** What `hello` answers besides the protocol version. */
export interface BenchInfo {
  /** What is behind the port: "host-sim", "host-xs", "esp32", ... */
  bench: string;
  /** `virtual`: waits cost no real time (the host simulator); `real`: a board in real time. */
  clock: 'virtual' | 'real';
  firmware: string;
}

export type BenchRequest =
  | { verb: 'hello'; version: number }
  | { verb: 'setup'; machine: BenchMachine; network: boolean; seed: number }
  | { verb: 'status' }
  | { verb: 'end' }
  | { verb: 'step'; action: BenchAction };

export type ParsedRequest = { ok: true; id: number; request: BenchRequest } | { ok: false; id: number | undefined; message: string };

type Obj = { [key: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

class BadRequest extends Error {}
const bad = (message: string): never => {
  throw new BadRequest(message);
};

const REQUEST = /^([0-9]{1,9}) ([A-Za-z]{1,32})(?: (.*))?$/;

/** Parse a request payload (checksum already checked). */
export function parseRequest(payload: string): ParsedRequest {
  const m = REQUEST.exec(payload);
  if (!m) return { ok: false, id: undefined, message: 'expected "<id> <verb> [<json object>]"' };
  const id = Number(m[1]);
  const verb = m[2]!;
  try {
    if (!(VERBS as readonly string[]).includes(verb)) bad(`unknown verb "${verb}" (verbs: ${VERBS.join(', ')})`);
    let args: Obj = {};
    if (m[3] !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(m[3]);
      } catch {
        bad(`${verb}: the arguments are not valid JSON`);
      }
      if (!isObj(parsed)) return bad(`${verb}: the arguments must be a JSON object`);
      args = parsed;
    }
    return { ok: true, id, request: toRequest(verb as BenchVerb, args) };
  } catch (e) {
    if (e instanceof BadRequest) return { ok: false, id, message: e.message };
    throw e;
  }
}

function settle(verb: string, args: Obj): number {
  const s = args['settleMs'];
  if (s === undefined) return DEFAULT_SETTLE_MS;
  if (!isInt(s) || s < 0) bad(`${verb}: settleMs must be a non-negative integer`);
  return s as number;
}

function str(verb: string, args: Obj, key: string): string {
  const v = args[key];
  if (typeof v !== 'string' || v === '') bad(`${verb}: "${key}" must be a non-empty string`);
  return v as string;
}

function positive(verb: string, args: Obj, key: string): number {
  const v = args[key];
  if (!isInt(v) || v <= 0) bad(`${verb}: "${key}" must be a positive integer`);
  return v as number;
}

function toRequest(verb: BenchVerb, args: Obj): BenchRequest {
  switch (verb) {
    case 'hello': {
      const v = args['version'];
      if (!isInt(v) || v < 1) return bad('hello: "version" must be a positive integer');
      return { verb, version: v };
    }
    case 'setup': {
      const seed = args['seed'] ?? 1;
      if (!isInt(seed) || seed < 0) bad('setup: "seed" must be a non-negative integer');
      const network = args['network'] ?? false;
      if (typeof network !== 'boolean') bad('setup: "network" must be true or false');
      return { verb, machine: parseMachine(args['machine']), network: network as boolean, seed: seed as number };
    }
    case 'status':
    case 'end':
      return { verb };
    case 'select': {
      const q = args['quantity'] ?? 1;
      if (!isInt(q) || q < 1) bad('select: "quantity" must be a positive integer');
      return { verb: 'step', action: { action: verb, code: str(verb, args, 'code'), quantity: q as number, settleMs: settle(verb, args) } };
    }
    case 'insertCoin':
    case 'insertBill':
      return { verb: 'step', action: { action: verb, value: positive(verb, args, 'value'), settleMs: settle(verb, args) } };
    case 'tapCard':
    case 'cancel':
    case 'powerCut':
      return { verb: 'step', action: { action: verb, settleMs: settle(verb, args) } };
    case 'wait': {
      const ms = args['ms'];
      if (!isInt(ms) || ms < 0) bad('wait: "ms" must be a non-negative integer');
      return { verb: 'step', action: { action: verb, ms: ms as number } };
    }
    case 'jam':
      return { verb: 'step', action: { action: verb, code: str(verb, args, 'code') } };
    case 'network': {
      const up = args['up'];
      if (typeof up !== 'boolean') bad('network: "up" must be true or false');
      return { verb: 'step', action: { action: verb, up: up as boolean, settleMs: settle(verb, args) } };
    }
  }
}

/** Check a `setup` machine's shape; the firmware's own configuration check has the last word. */
export function parseMachine(m: unknown): BenchMachine {
  if (!isObj(m)) return bad('setup: "machine" must be an object');
  const currency = m['currency'];
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) bad('setup: machine.currency must be an ISO 4217 code');
  const slotsIn = m['slots'];
  if (!Array.isArray(slotsIn) || slotsIn.length === 0 || slotsIn.length > 100) bad('setup: machine.slots must be a list of 1 to 100 slots');
  const slots = (slotsIn as unknown[]).map((s, i): BenchSlot => {
    const at = `setup: machine.slots[${i}]`;
    if (!isObj(s)) return bad(`${at} must be an object`);
    if (typeof s['code'] !== 'string' || typeof s['product'] !== 'string') bad(`${at}: code and product must be strings`);
    if (!isInt(s['price']) || !isInt(s['qty'])) bad(`${at}: price and qty must be integers`);
    const slot: BenchSlot = { code: s['code'] as string, product: s['product'] as string, price: s['price'] as number, qty: s['qty'] as number };
    if (s['category'] !== undefined) slot.category = typeof s['category'] === 'string' ? s['category'] : bad(`${at}.category must be a string`);
    if (s['capacity'] !== undefined) slot.capacity = isInt(s['capacity']) ? s['capacity'] : bad(`${at}.capacity must be an integer`);
    return slot;
  });
  const machine: BenchMachine = { currency: currency as string, slots };
  const changer = m['changer'];
  if (changer !== undefined) {
    if (!isObj(changer) || !Array.isArray(changer['coins'])) return bad('setup: machine.changer must be { "coins": [...] }');
    const coins = (changer['coins'] as unknown[]).map((c, i) => {
      if (!isObj(c) || !isInt(c['value']) || (c['tube'] !== null && !isInt(c['tube']))) return bad(`setup: machine.changer.coins[${i}] must be { "value": <int>, "tube": <int or null> }`);
      return { value: c['value'], tube: c['tube'] as number | null };
    });
    machine.changer = { coins };
    const cc = changer['currency'];
    if (cc !== undefined) machine.changer.currency = typeof cc === 'string' && /^[A-Z]{3}$/.test(cc) ? cc : bad('setup: machine.changer.currency must be an ISO 4217 code');
  }
  const bills = m['bills'];
  if (bills !== undefined) {
    if (!Array.isArray(bills) || !bills.every(isInt)) bad('setup: machine.bills must be a list of integers');
    machine.bills = (bills as number[]).slice();
  }
  const bc = m['billsCurrency'];
  if (bc !== undefined) machine.billsCurrency = typeof bc === 'string' && /^[A-Z]{3}$/.test(bc) ? bc : bad('setup: machine.billsCurrency must be an ISO 4217 code');
  const cashless = m['cashless'];
  if (cashless !== undefined) {
    if (!isObj(cashless) || !isInt(cashless['funds']) || (cashless['approve'] !== undefined && typeof cashless['approve'] !== 'boolean')) {
      bad('setup: machine.cashless must be { "funds": <int>, "approve"?: <boolean> }');
    }
    // Kept whole: keys a newer reader understands pass through to the bench that knows them.
    machine.cashless = cashless as { funds: number; approve?: boolean };
  }
  const policy = m['changePolicy'];
  if (policy !== undefined) {
    if (policy !== 'refuse' && policy !== 'overpay') bad('setup: machine.changePolicy must be "refuse" or "overpay"');
    machine.changePolicy = policy as 'refuse' | 'overpay';
  }
  return machine;
}

// ---- answers ------------------------------------------------------------------------------

/** One line of text: no line breaks (they would end the frame), bounded length. */
export function oneLine(message: string): string {
  const flat = message.replace(/[\r\n]+/g, ' ');
  return flat.length > MAX_MESSAGE ? flat.slice(0, MAX_MESSAGE - 3) + '...' : flat;
}

export function okPayload(id: number, data?: object): string {
  return data === undefined ? `${id} ok` : `${id} ok ${JSON.stringify(data)}`;
}

/** `id` undefined: a line the board could not attribute to a request. */
export function errPayload(id: number | undefined, code: BenchErrorCode, message: string): string {
  return `${id === undefined ? '!' : id} err ${code} ${oneLine(message)}`;
}

export type ParsedAnswer =
  | { kind: 'ok'; id: number; data: unknown }
  | { kind: 'err'; id: number | undefined; code: string; message: string };

const ANSWER = /^([0-9]{1,9}|!) (ok|err)(?: ([\s\S]*))?$/;

/** Parse an answer payload (the runner's side); undefined for anything else on the console. */
export function parseAnswer(payload: string): ParsedAnswer | undefined {
  const m = ANSWER.exec(payload);
  if (!m) return undefined;
  const id = m[1] === '!' ? undefined : Number(m[1]);
  if (m[2] === 'ok') {
    if (id === undefined) return undefined;
    if (m[3] === undefined) return { kind: 'ok', id, data: {} };
    try {
      return { kind: 'ok', id, data: JSON.parse(m[3]) as unknown };
    } catch {
      return undefined;
    }
  }
  const rest = m[3] ?? '';
  const sp = rest.indexOf(' ');
  return { kind: 'err', id, code: sp < 0 ? rest : rest.slice(0, sp), message: sp < 0 ? '' : rest.slice(sp + 1) };
}
