/**
 * What machines publish, parsed and checked. Pure: a message is either
 * understood completely or refused with a reason; nothing half-parsed goes on.
 *
 * Topics: fleet/{machine}/events, fleet/{machine}/telemetry, fleet/{machine}/status
 * (the machine's identity is the topic's, never a field in the body).
 *
 * Everything is bounded before it can reach SQL: size, nesting depth, keys
 * per object, list lengths, string lengths, and the characters and numbers
 * PostgreSQL's jsonb refuses (NUL, lone surrogates, numbers it cannot
 * hold). What goes to the store is the parsed value serialised again, never
 * the machine's bytes: the store parses only what was checked.
 *
 * Two levels of refusal: a message whose frame is wrong (not JSON, wrong
 * version, sequence numbers missing or not consecutive) is refused whole; an
 * event inside a well-framed message that breaks its contract is refused on
 * its own and recorded under its sequence number, and the others are taken
 * (docs/uplink.md, "Refused events").
 */
import { isMachineId } from '../machine-id.js';
import { unstorable } from '../store/json.js';

export const MAX_PAYLOAD = 64 * 1024;
export const MAX_EVENTS_PER_MESSAGE = 500;
const EVENT_TYPE = /^[a-z][a-z0-9-]{0,31}$/;
const KINDS: ReadonlySet<string> = new Set(['events', 'telemetry', 'status']);
/** One decoder for every message (decoding without `stream` keeps no state between calls); making one is dearer than decoding a small message. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Shape bounds for anything a machine sends (generous for what the firmware writes: see docs/uplink.md). */
export const JSON_LIMITS = {
  /** Nesting: message, list, event or slot, a field's object, one more to spare. */
  depth: 6,
  keys: 256,
  arrayLength: MAX_EVENTS_PER_MESSAGE,
  stringLength: 1024,
  /** Values in the whole message. */
  nodes: 50000,
} as const;

/** An event: its fields, one object or list inside a field, one more level to spare. */
const EVENT_LIMITS = { ...JSON_LIMITS, depth: 4 } as const;

export type Rejection =
  | 'wrong-topic'
  | 'oversized'
  | 'malformed-json'
  | 'bad-message'
  | 'bad-event'
  | 'bad-audit'
  | 'unknown-machine'
  | 'db-error'
  | 'seq-conflict';

export interface MachineEvent {
  seq: number;
  /** Machine journal time, seconds. */
  t: number;
  type: string;
  body: Record<string, unknown>;
}

/** An event of a well-framed message refused for its content: recorded under its number, then acknowledged. */
export interface RefusedEvent {
  seq: number;
  /** Its journal time and type when those were readable. */
  t: number | null;
  type: string | null;
  reason: string;
  /** The event as received, serialised (truncated), for the operator. */
  raw: string;
}

export type Parsed =
  | { ok: true; kind: 'events'; machine: string; from: number; to: number; events: MachineEvent[]; refused: RefusedEvent[] }
  | { ok: true; kind: 'telemetry'; machine: string; body: Record<string, unknown>; text: string }
  | { ok: true; kind: 'status'; machine: string; online: boolean; body: Record<string, unknown>; text: string }
  | { ok: false; reason: Rejection; detail: string; machine?: string };

/** A per-event contract check: undefined when the event is acceptable, else why not. */
export type EventCheck = (e: Record<string, unknown>) => string | undefined;

const refuse = (reason: Rejection, detail: string, machine?: string): Parsed => (machine === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, machine });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

type ShapeLimits = { depth: number; keys: number; arrayLength: number; stringLength: number; nodes: number };

/** Where a value sits: list indexes and field names from the innermost out (the path is written only for a refusal). */
type Steps = (number | string)[];
/** A value beyond the bounds: where (innermost step first), and what is wrong; `whole`: said of the message, with no place. */
type ShapeFault = { steps: Steps; what: string; whole?: true };

/**
 * Why a parsed JSON value is beyond the bounds (a path and what is wrong),
 * or undefined. Recursive only into objects and lists within `limits.depth`
 * (a deeper one is refused before its contents are looked at), so a value
 * nested as deep as its bytes allow cannot exhaust the stack. Values are
 * visited in document order and the path is built only for a refusal: this
 * runs on every message, and a path string per value cost more than the
 * check itself.
 */
export function checkJsonShape(value: unknown, limits: ShapeLimits = JSON_LIMITS): string | undefined {
  const counter = { nodes: 0 };
  const fault = shapeFault(value, 1, limits, counter);
  if (fault === undefined) return undefined;
  if (fault.whole) return fault.what;
  let path = '';
  for (let i = fault.steps.length - 1; i >= 0; i--) {
    const step = fault.steps[i]!;
    path += typeof step === 'number' ? `[${step}]` : `.${step.slice(0, 32)}`;
  }
  return `${path || 'the message'}: ${fault.what}`;
}

function textFault(s: string, limits: ShapeLimits, what: string): ShapeFault | undefined {
  if (s.length > limits.stringLength) return { steps: [], what: `${what} of ${s.length} characters (at most ${limits.stringLength})` };
  if (unstorable(s)) return { steps: [], what: `${what} with a NUL or unpaired surrogate character` };
  return undefined;
}

function shapeFault(v: unknown, depth: number, limits: ShapeLimits, counter: { nodes: number }): ShapeFault | undefined {
  if (++counter.nodes > limits.nodes) return { steps: [], what: `more than ${limits.nodes} values`, whole: true };
  if (typeof v === 'string') return textFault(v, limits, 'a string');
  // JSON.parse turns 1e400 into Infinity; a store would turn it into something else again.
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : { steps: [], what: 'a number out of range' };
  if (typeof v !== 'object' || v === null) return undefined;
  if (depth > limits.depth) return { steps: [], what: `nested more than ${limits.depth} deep` };
  if (Array.isArray(v)) {
    const list: readonly unknown[] = v;
    if (list.length > limits.arrayLength) return { steps: [], what: `a list of ${list.length} (at most ${limits.arrayLength})` };
    for (let i = 0; i < list.length; i++) {
      const f = shapeFault(list[i], depth + 1, limits, counter);
      if (f) {
        if (!f.whole) f.steps.push(i);
        return f;
      }
    }
    return undefined;
  }
  const record = v as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length > limits.keys) return { steps: [], what: `an object of ${keys.length} fields (at most ${limits.keys})` };
  // Field names before any value, the last bad one first (the order refusals have always named them in).
  for (let i = keys.length - 1; i >= 0; i--) {
    const bad = textFault(keys[i]!, limits, 'a field name');
    if (bad) return bad;
  }
  for (const k of keys) {
    const f = shapeFault(record[k], depth + 1, limits, counter);
    if (f) {
      if (!f.whole) f.steps.push(k);
      return f;
    }
  }
  return undefined;
}

/** The event as received, for the refusal record (bounded). */
function rawOf(e: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(e) ?? 'null';
  } catch {
    s = '(not serialisable)';
  }
  return s.length > 2000 ? `${s.slice(0, 2000)}...` : s;
}

/**
 * Parse and check a machine's message. `checkEvent` is the per-type contract
 * (docs/uplink.md); without it, only the fields every event has are checked.
 */
export function parseMessage(topic: string, payload: Uint8Array, checkEvent?: EventCheck): Parsed {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== 'fleet' || !isMachineId(parts[1]!) || !KINDS.has(parts[2]!)) {
    return refuse('wrong-topic', topic.slice(0, 200));
  }
  const machine = parts[1]!;
  const kind = parts[2]!;
  if (payload.length > MAX_PAYLOAD) return refuse('oversized', `${payload.length} bytes on ${topic}`, machine);
  let body: unknown;
  try {
    body = JSON.parse(UTF8.decode(payload));
  } catch (e) {
    return refuse('malformed-json', `${topic}: ${(e as Error).message.slice(0, 120)}`, machine);
  }
  if (!isRecord(body) || body['v'] !== 1) return refuse('bad-message', `${topic}: not a version 1 message object`, machine);
  if (kind !== 'events') {
    const shape = checkJsonShape(body);
    if (shape !== undefined) return refuse('bad-message', `${topic}: ${shape}`, machine);
  }
  if (kind === 'telemetry') {
    if (!isCount(body['t'], 0xffffffff)) return refuse('bad-message', `${topic}: t must be a non-negative integer`, machine);
    return { ok: true, kind: 'telemetry', machine, body, text: JSON.stringify(body) };
  }
  if (kind === 'status') {
    if (typeof body['online'] !== 'boolean') return refuse('bad-message', `${topic}: online must be true or false`, machine);
    return { ok: true, kind: 'status', machine, online: body['online'], body, text: JSON.stringify(body) };
  }
  const list = body['events'];
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_EVENTS_PER_MESSAGE) {
    return refuse('bad-message', `${topic}: events must be a list of 1 to ${MAX_EVENTS_PER_MESSAGE}`, machine);
  }
  // The frame first: every event an object with a sequence number, consecutive, so the
  // acknowledgement can name the range and each refusal can be recorded under its number.
  let last = 0;
  for (let i = 0; i < list.length; i++) {
    const e: unknown = list[i];
    if (!isRecord(e)) return refuse('bad-message', `${topic}: events[${i}] is not an object`, machine);
    const seq = e['seq'];
    if (!isCount(seq, 0xffffffff) || seq === 0) return refuse('bad-message', `${topic}: events[${i}].seq must be an integer from 1 to 2^32-1`, machine);
    if (i > 0 && seq !== last + 1) return refuse('bad-message', `${topic}: events[${i}].seq ${seq} does not follow ${last}`, machine);
    last = seq;
  }
  const events: MachineEvent[] = [];
  const refused: RefusedEvent[] = [];
  for (const item of list) {
    const e = item as Record<string, unknown>;
    const seq = e['seq'] as number;
    const { t, type } = e;
    // Each event's own shape (depth counted from the event): a bad one is refused alone.
    const shape = checkJsonShape(e, EVENT_LIMITS);
    const why = shape !== undefined
      ? shape.replace(/^the message/, 'the event')
      : !isCount(t, 0xffffffff)
      ? 't must be a non-negative integer (the journal time, seconds)'
      : typeof type !== 'string' || !EVENT_TYPE.test(type)
        ? 'type is not an event type (a-z, digits, dashes; at most 32)'
        : checkEvent?.(e);
    if (why === undefined) events.push({ seq, t: t as number, type: type as string, body: e });
    else {
      refused.push({
        seq,
        t: isCount(t, 0xffffffff) ? t : null,
        type: typeof type === 'string' && EVENT_TYPE.test(type) ? type : null,
        reason: why,
        raw: rawOf(e),
      });
    }
  }
  return { ok: true, kind: 'events', machine, from: (list[0] as Record<string, unknown>)['seq'] as number, to: last, events, refused };
}

/** The acknowledgement a machine gets once events are committed: every event from..to is stored. */
export function ackPayload(from: number, to: number): string {
  return JSON.stringify({ v: 1, from, to });
}
