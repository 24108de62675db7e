/**
 * What every group of operator API routes shares: the error type the error
 * handler turns into `{ error, message }`, the JSON schema pieces, and the
 * route context (the store, the command service, the role check, a
 * machine's stored state).
 */
import type { FastifyRequest } from 'fastify';
import type { CommandService } from '../commands/service.js';
import type { Db } from '../store/db.js';
import type { Role } from './tokens.js';
import { MACHINE_ID_PATTERN } from '../machine-id.js';

export const MACHINE_ID = { type: 'string', pattern: MACHINE_ID_PATTERN } as const;
export const SLOT_CODE = { type: 'string', pattern: '^[A-Z0-9]{1,4}$' } as const;
export const ERROR = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;

export interface Slot {
  code: string;
  product?: string;
  category?: string;
  qty: number;
  capacity?: number;
  price: number;
  sku?: number;
  fault?: boolean;
}

/** The last telemetry a machine sent, as stored (docs/uplink.md). */
export interface Telemetry {
  slots?: Slot[];
  tubes?: { value: number; count: number }[];
  [key: string]: unknown;
}

export interface MachineState {
  online: boolean;
  last_seen: Date | null;
  telemetry: Telemetry | null;
  telemetry_at: Date | null;
  status: unknown;
}

/** An answer other than 200: the error handler sends `{ error: code, message }` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RouteContext {
  readonly db: Db;
  readonly commands: CommandService;
  /** A preHandler: the request needs a token with at least this role. */
  need(role: Role): (req: FastifyRequest) => Promise<void>;
  /** A machine's stored state; HttpError 404 when there is no such machine. */
  machineState(id: string): Promise<MachineState>;
}

export function slotsOf(t: Telemetry | null): Slot[] {
  return Array.isArray(t?.slots) ? t.slots : [];
}
