/**
 * What every group of operator API routes shares: the JSON schema pieces
 * and the route context (the store, the command service, the role check, the
 * token's operator, a machine's stored state as the token may see it).
 * Errors and their statuses: errors.ts.
 */
import type { FastifyRequest } from 'fastify';
import type { CommandService } from '../commands/service.js';
import type { Db } from '../store/db.js';
import type { MachineState } from '../store/machines.js';
import type { Role, TokenCheck } from './tokens.js';
import { MACHINE_ID_PATTERN } from '../machine-id.js';
import { OPERATOR_ID_PATTERN } from '../store/operators.js';

export const MACHINE_ID = { type: 'string', pattern: MACHINE_ID_PATTERN } as const;
export const SLOT_CODE = { type: 'string', pattern: '^[A-Z0-9]{1,4}$' } as const;
export const ERROR = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
/** The path parameters of a route under /machines/{id}. */
export const MACHINE_PARAMS = { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] } as const;

export interface RouteContext {
  /** The primary: everything that writes, and reads that must see a write just made (or that gate one). */
  readonly db: Db;
  /**
   * For routes that only read: a streaming replica when the gateway has one (DATABASE_READ_URL), else the
   * primary. It may lag the primary by a moment: what a route writes and then reads back is read from `db`.
   */
  readonly reads: Db;
  readonly commands: CommandService;
  /** The token lookups: a revocation through the API tells it (refused at once, open streams ended). */
  readonly tokens: TokenCheck;
  /** A preHandler: the request needs a token with at least this role. */
  need(role: Role): (req: FastifyRequest) => Promise<void>;
  /** A preHandler: the request needs a platform admin's token (an admin token of no operator). */
  needPlatform(req: FastifyRequest): Promise<void>;
  /** The operator whose machines the request's token reaches; null for a platform admin (every operator). */
  scope(req: FastifyRequest): string | null;
  /**
   * The operator something made by this request belongs to: the token's own
   * (`asked`, if given, must be it), or for a platform admin `asked` or the
   * default operator. An operator the token cannot see: HttpError unknown-operator (404).
   */
  owner(req: FastifyRequest, asked?: string): Promise<string>;
  /**
   * A machine's stored state, if the token's operator owns it (a platform
   * admin: any); HttpError unknown-machine (404) when there is no such
   * machine or it is another operator's: the answer does not say which.
   */
  machineState(req: FastifyRequest, id: string): Promise<MachineState>;
  /** The same, from `reads` (a replica when the gateway has one). */
  readMachineState(req: FastifyRequest, id: string): Promise<MachineState>;
}

/** The operator query parameter (platform admins name the operator they act for). */
export const OPERATOR_PARAM = { type: 'string', pattern: OPERATOR_ID_PATTERN, description: "The operator to act for (platform admins; default 'default'); an operator's token may name only its own" } as const;
