/**
 * The operator API's errors in one place: every error code it answers with
 * and that code's HTTP status (ERROR_STATUS, the only table of them), and
 * the one translation of whatever a route or a part below it throws
 * (HttpError, the DEX parser's, the audit store's, the command service's,
 * restocking's, the firmware registry's, rollouts', the catalog's, a store error, fastify's own) into a status and
 * `{ error, message }`. Routes throw codes; none picks a status for an error.
 */
import { CatalogError } from '../catalog/products.js';
import { CommandError } from '../commands/service.js';
import { DexError } from '../dex/parse.js';
import { AuditError } from '../dex/store.js';
import { FirmwareError } from '../firmware/registry.js';
import { RestockError } from '../restock/store.js';
import { RolloutError } from '../rollouts/service.js';
import { describeStoreError, faultOf, isStoreError } from '../store/errors.js';

export const ERROR_STATUS = {
  // The request is wrong, and would be wrong again.
  'bad-request': 400,
  'bad-cursor': 400,
  'bad-rules': 400,
  'bad-location': 400,
  'bad-read-number': 400,
  'malformed-dex': 400,
  'refused-by-store': 400,
  'bad-version': 400,
  'bad-notes': 400,
  'bad-rollout': 400,
  // The catalog: a product's fields, a planogram change's slot, SKU (none such for the operator) or price.
  'bad-product': 400,
  'bad-slot': 400,
  'unknown-sku': 400,
  'bad-price': 400,
  unauthorized: 401,
  forbidden: 403,
  'unknown-machine': 404,
  'unknown-slot': 404,
  'unknown-command': 404,
  'unknown-audit': 404,
  'unknown-image': 404,
  'unknown-file': 404,
  'unknown-rollout': 404,
  'unknown-token': 404,
  'unknown-product': 404,
  // Also what another operator's machines, commands, audits, rollouts and the operator itself are to a token: not found.
  'unknown-operator': 404,
  // The state of things says no: a machine's refusal of a purchase (its reason, or this), another request holding the key.
  refused: 409,
  'in-progress': 409,
  'operator-exists': 409,
  'product-exists': 409,
  // A firmware image: these bytes are stored under another version, the version names other bytes, a machine uses it.
  'image-exists': 409,
  'version-taken': 409,
  'in-use': 409,
  // An update: the machine runs this version or a newer one (say downgrade), or is in another rollout; a rollout that cannot do that now.
  downgrade: 409,
  'in-rollout': 409,
  'rollout-state': 409,
  // A command already final: there is nothing to call off.
  'command-state': 409,
  'too-large': 413,
  // Understood, and not something that can be done.
  'bad-command': 422,
  'bad-args': 422,
  'no-key': 422,
  'idempotency-key-reused': 422,
  // A rollout whose target selects no machine.
  'no-machines': 422,
  // A firmware image that is not one, or not signed by a release key this gateway knows.
  'bad-image': 422,
  unsigned: 422,
  'bad-signature': 422,
  'unknown-key': 422,
  internal: 500,
  'store-unavailable': 503,
  'release-keys-unavailable': 503,
  'machine-unreachable': 504,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** An answer other than 2xx: the error handler sends `{ error: code, message }` with the code's status. */
export class HttpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export interface ErrorAnswer {
  status: number;
  body: { error: string; message: string; line?: number };
}

const answer = (code: ErrorCode, message: string, extra: { line?: number } = {}): ErrorAnswer => ({ status: ERROR_STATUS[code], body: { error: code, ...extra, message } });

/**
 * A machine's refusal of a purchase, its reason the error code: a slot it
 * does not have is a 404 and arguments it found bad a 422, as the API's own;
 * any other reason (busy, sold-out, locked, out-of-service...) a 409.
 */
export function refusalStatus(reason: string): number {
  return reason === 'unknown-slot' || reason === 'bad-args' ? ERROR_STATUS[reason] : ERROR_STATUS.refused;
}

/** What the API answers for an error thrown while handling a request; undefined for its own fault (a 500, logged). */
export function errorAnswer(err: Error & { statusCode?: number; validation?: unknown; code?: string }): ErrorAnswer | undefined {
  if (err instanceof HttpError) return answer(err.code, err.message);
  if (err instanceof DexError) return answer(err.code === 'too-large' ? 'too-large' : 'malformed-dex', err.message, { line: err.line });
  if (err instanceof AuditError) return answer(err.code, err.message);
  // A command's arguments over the size limit are a bad request, not a body too large for the server.
  if (err instanceof CommandError) return answer(err.code === 'too-large' ? 'bad-request' : err.code, err.message);
  if (err instanceof RestockError) return answer(err.code, err.message);
  if (err instanceof FirmwareError) return answer(err.code, err.message);
  if (err instanceof RolloutError) return answer(err.code, err.message);
  if (err instanceof CatalogError) return answer(err.code, err.message);
  if (err.validation) return answer('bad-request', err.message);
  // fastify's own refusals (a body over the limit, a content type no parser takes) come with their status and code.
  if (err.statusCode && err.statusCode < 500) return { status: err.statusCode, body: { error: err.code ?? 'bad-request', message: err.message } };
  // A database error that slipped past the checks: the input's fault is a 400, the store's a 503, never a 500.
  const fault = isStoreError(err) ? faultOf(err) : undefined;
  if (fault === 'data') return answer('bad-request', `the store refused the input: ${describeStoreError(err)}`);
  if (fault !== undefined) return answer('store-unavailable', 'the fleet store is unavailable; try again');
  return undefined;
}
