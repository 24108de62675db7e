/**
 * Remote commands as they arrive: `VF1 <kid> <signature>\n<command JSON>`.
 *
 * The signature (HMAC-SHA-256 with the machine's key, hex) covers the exact
 * bytes after the first newline, so nothing has to be re-serialised to check
 * it, and a forgery is turned away before its JSON is even parsed.
 * docs/commands.md has the whole contract.
 */
import { commandCode, CMD_UNKNOWN } from './vocabulary.js';

export const MAX_COMMAND_BYTES = 4096;
const HEADER_MAX = 80;

export interface Envelope {
  kid: number;
  /** The signature's hex text. */
  signature: string;
  /** Where the signed body starts in the payload. */
  bodyStart: number;
}

/** The header line, or undefined when the payload does not have the shape. */
export function parseEnvelope(payload: Uint8Array): Envelope | undefined {
  let nl = -1;
  for (let i = 0; i < payload.length && i < HEADER_MAX; i++) {
    if (payload[i] === 10) {
      nl = i;
      break;
    }
  }
  if (nl < 0) return undefined;
  let header = '';
  for (let i = 0; i < nl; i++) header += String.fromCharCode(payload[i]!);
  const m = /^VF1 ([0-9]{1,3}) ([0-9a-f]{64})$/.exec(header);
  if (!m) return undefined;
  const kid = Number(m[1]);
  if (kid < 1 || kid > 255) return undefined;
  return { kid, signature: m[2]!, bodyStart: nl + 1 };
}

export interface CommandBody {
  machine: string;
  n: number;
  type: number;
  typeName: string;
  issued: number;
  expires: number;
  args: { [key: string]: unknown };
}

function isObject(v: unknown): v is { [key: string]: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function u32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** The signed body, checked field by field; a string says what is wrong. */
export function parseBody(text: string): CommandBody | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!isObject(raw)) return 'not an object';
  const { machine, n, type, issued, expires } = raw;
  const args = raw['args'] ?? {};
  if (typeof machine !== 'string' || machine.length === 0 || machine.length > 64) return 'machine must be a string';
  if (!u32(n) || n === 0) return 'n must be an integer from 1 to 2^32-1';
  if (typeof type !== 'string' || type.length === 0 || type.length > 32) return 'type must be a string';
  if (!u32(issued)) return 'issued must be Unix seconds';
  if (!u32(expires) || expires < issued) return 'expires must be Unix seconds, not before issued';
  if (!isObject(args)) return 'args must be an object';
  const code = commandCode(type);
  return { machine, n, type: code === CMD_UNKNOWN ? CMD_UNKNOWN : code, typeName: type, issued, expires, args };
}

/** An integer argument within bounds, or undefined. */
export function intArg(v: unknown, min: number, max: number): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined;
}
