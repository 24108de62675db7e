/**
 * What machines publish, parsed and checked. Pure: a message is either
 * understood completely or refused with a reason; nothing half-parsed goes on.
 *
 * Topics: fleet/{machine}/events, fleet/{machine}/telemetry, fleet/{machine}/status
 * (the machine's identity is the topic's, never a field in the body).
 */

import { MACHINE_ID } from '../machine-id.js';

export const MAX_PAYLOAD = 64 * 1024;
export const MAX_EVENTS_PER_MESSAGE = 500;
const EVENT_TYPE = /^[a-z][a-z0-9-]{0,31}$/;

export type Rejection = 'wrong-topic' | 'oversized' | 'malformed-json' | 'bad-message' | 'unknown-machine' | 'db-error' | 'seq-conflict';

export interface MachineEvent {
  seq: number;
  /** Machine journal time, seconds. */
  t: number;
  type: string;
  body: Record<string, unknown>;
}

export type Parsed =
  | { ok: true; kind: 'events'; machine: string; events: MachineEvent[]; text: string }
  | { ok: true; kind: 'telemetry'; machine: string; body: Record<string, unknown>; text: string }
  | { ok: true; kind: 'status'; machine: string; online: boolean; body: Record<string, unknown> }
  | { ok: false; reason: Rejection; detail: string; machine?: string };

const refuse = (reason: Rejection, detail: string, machine?: string): Parsed => (machine === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, machine });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

export function parseMessage(topic: string, payload: Uint8Array): Parsed {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== 'fleet' || !MACHINE_ID.test(parts[1]!) || !['events', 'telemetry', 'status'].includes(parts[2]!)) {
    return refuse('wrong-topic', topic.slice(0, 200));
  }
  const machine = parts[1]!;
  const kind = parts[2]!;
  if (payload.length > MAX_PAYLOAD) return refuse('oversized', `${payload.length} bytes on ${topic}`, machine);
  let body: unknown;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
    body = JSON.parse(text);
  } catch (e) {
    return refuse('malformed-json', `${topic}: ${(e as Error).message.slice(0, 120)}`, machine);
  }
  if (!isRecord(body) || body['v'] !== 1) return refuse('bad-message', `${topic}: not a version 1 message object`, machine);
  if (kind === 'telemetry') {
    if (!isCount(body['t'], 0xffffffff)) return refuse('bad-message', `${topic}: t must be a non-negative integer`, machine);
    return { ok: true, kind: 'telemetry', machine, body, text };
  }
  if (kind === 'status') {
    if (typeof body['online'] !== 'boolean') return refuse('bad-message', `${topic}: online must be true or false`, machine);
    return { ok: true, kind: 'status', machine, online: body['online'], body };
  }
  const list = body['events'];
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_EVENTS_PER_MESSAGE) {
    return refuse('bad-message', `${topic}: events must be a list of 1 to ${MAX_EVENTS_PER_MESSAGE}`, machine);
  }
  const events: MachineEvent[] = [];
  let last = 0;
  for (let i = 0; i < list.length; i++) {
    const e: unknown = list[i];
    if (!isRecord(e)) return refuse('bad-message', `${topic}: events[${i}] is not an object`, machine);
    const { seq, t, type } = e;
    if (!isCount(seq, 0xffffffff) || seq === 0) return refuse('bad-message', `${topic}: events[${i}].seq must be an integer from 1 to 2^32-1`, machine);
    // A message carries consecutive events, so its acknowledgement can name a range.
    if (i > 0 && seq !== last + 1) return refuse('bad-message', `${topic}: events[${i}].seq ${seq} does not follow ${last}`, machine);
    if (!isCount(t, 0xffffffff)) return refuse('bad-message', `${topic}: events[${i}].t must be a non-negative integer`, machine);
    if (typeof type !== 'string' || !EVENT_TYPE.test(type)) return refuse('bad-message', `${topic}: events[${i}].type is not an event type`, machine);
    last = seq;
    events.push({ seq, t, type, body: e });
  }
  // The checked text goes to the store as it is: PostgreSQL parses it into jsonb once.
  return { ok: true, kind: 'events', machine, events, text };
}

/** The acknowledgement a machine gets once events are committed: every event from..to is stored. */
export function ackPayload(from: number, to: number): string {
  return JSON.stringify({ v: 1, from, to });
}
