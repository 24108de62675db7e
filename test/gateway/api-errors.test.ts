/**
 * The operator API's one table of error codes and statuses (gateway/api/errors.ts):
 * what each kind of failure below the routes becomes, as the error handler
 * sends it. The routes' answers themselves are tried through HTTP in
 * api.test.ts, api-input.test.ts, dex.test.ts, restock.test.ts and the rest.
 */
import { strict as assert } from 'node:assert';
import { ERROR_STATUS, errorAnswer, HttpError, refusalStatus } from '../../gateway/api/errors.js';
import { CommandError } from '../../gateway/commands/service.js';
import { DexError } from '../../gateway/dex/parse.js';
import { AuditError } from '../../gateway/dex/store.js';
import { FirmwareError } from '../../gateway/firmware/registry.js';
import { RestockError } from '../../gateway/restock/store.js';
import { RolloutError } from '../../gateway/rollouts/service.js';

const pg = (message: string, code: string): Error => Object.assign(new Error(message), { code });

describe('operator API errors: one table of codes and statuses', () => {
  it('gives every code a client (4xx) or server (5xx) status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) assert.ok(status >= 400 && status <= 599, `${code}: ${status}`);
  });

  it("answers an HttpError with its code's status", () => {
    for (const code of Object.keys(ERROR_STATUS) as (keyof typeof ERROR_STATUS)[]) {
      assert.deepEqual(errorAnswer(new HttpError(code, 'why')), { status: ERROR_STATUS[code], body: { error: code, message: 'why' } });
    }
  });

  it('translates the errors of the parts below the routes', () => {
    const cases: [Error, number, Record<string, unknown>][] = [
      [new DexError(3, 'too-large', 'over 2 MiB'), 413, { error: 'too-large', line: 3, message: 'line 3: over 2 MiB' }],
      [new DexError(7, 'bad-segment-id', 'what is XX1?'), 400, { error: 'malformed-dex', line: 7, message: 'line 7: what is XX1?' }],
      [new AuditError('unknown-machine', 'no machine'), 404, { error: 'unknown-machine', message: 'no machine' }],
      [new AuditError('bad-read-number', 'not a read'), 400, { error: 'bad-read-number', message: 'not a read' }],
      [new AuditError('refused-by-store', 'refused'), 400, { error: 'refused-by-store', message: 'refused' }],
      [new CommandError('no machine', 'unknown-machine'), 404, { error: 'unknown-machine', message: 'no machine' }],
      [new CommandError('no key', 'no-key'), 422, { error: 'no-key', message: 'no key' }],
      [new CommandError('bad', 'bad-command'), 422, { error: 'bad-command', message: 'bad' }],
      // Arguments too big for a machine are the request's fault, not a body too large for the server.
      [new CommandError('too big', 'too-large'), 400, { error: 'bad-request', message: 'too big' }],
      // An update command: its arguments, its image, a machine running something newer, a machine in a rollout.
      [new CommandError('size is ours', 'bad-args'), 422, { error: 'bad-args', message: 'size is ours' }],
      [new CommandError('no image', 'unknown-image'), 404, { error: 'unknown-image', message: 'no image' }],
      [new CommandError('runs 1.2.0', 'downgrade'), 409, { error: 'downgrade', message: 'runs 1.2.0' }],
      [new CommandError('in r1', 'in-rollout'), 409, { error: 'in-rollout', message: 'in r1' }],
      // A cancel of a command already final.
      [new CommandError('applied already', 'command-state'), 409, { error: 'command-state', message: 'applied already' }],
      [new RolloutError('bad-rollout', 'waves'), 400, { error: 'bad-rollout', message: 'waves' }],
      [new RolloutError('unknown-rollout', 'no rollout'), 404, { error: 'unknown-rollout', message: 'no rollout' }],
      [new RolloutError('in-rollout', 'busy'), 409, { error: 'in-rollout', message: 'busy' }],
      [new RolloutError('rollout-state', 'done'), 409, { error: 'rollout-state', message: 'done' }],
      [new RolloutError('no-machines', 'none'), 422, { error: 'no-machines', message: 'none' }],
      [new RestockError('unknown-machine', 'no machine'), 404, { error: 'unknown-machine', message: 'no machine' }],
      [new RestockError('bad-location', 'lat'), 400, { error: 'bad-location', message: 'lat' }],
      [new FirmwareError('unsigned', 'sign it'), 422, { error: 'unsigned', message: 'sign it' }],
      [new FirmwareError('version-taken', 'taken'), 409, { error: 'version-taken', message: 'taken' }],
      [new FirmwareError('too-large', 'big'), 413, { error: 'too-large', message: 'big' }],
      [new FirmwareError('release-keys-unavailable', 'unreadable'), 503, { error: 'release-keys-unavailable', message: 'unreadable' }],
      [Object.assign(new Error('body/x must be integer'), { validation: [] }), 400, { error: 'bad-request', message: 'body/x must be integer' }],
      // fastify's own refusals keep their status and code.
      [Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), 415, { error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', message: 'Unsupported Media Type' }],
      // A store error: the input's fault is a 400, the store being away a 503.
      [pg('invalid input syntax for type bigint', '22P02'), 400, { error: 'bad-request', message: 'the store refused the input: invalid input syntax for type bigint (SQLSTATE 22P02)' }],
      [pg('the database system is shutting down', '57P03'), 503, { error: 'store-unavailable', message: 'the fleet store is unavailable; try again' }],
      [pg('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'), 503, { error: 'store-unavailable', message: 'the fleet store is unavailable; try again' }],
    ];
    for (const [err, status, body] of cases) assert.deepEqual(errorAnswer(err), { status, body }, err.message);
  });

  it("leaves the API's own faults to the handler's 500", () => {
    assert.equal(errorAnswer(new TypeError('x is undefined')), undefined);
    assert.equal(errorAnswer(Object.assign(new Error('oops'), { statusCode: 500 })), undefined);
  });

  it("answers a machine's refusal of a purchase 404 for a slot it lacks, 422 for bad arguments, else 409", () => {
    assert.equal(refusalStatus('unknown-slot'), 404);
    assert.equal(refusalStatus('bad-args'), 422);
    for (const reason of ['busy', 'sold-out', 'locked', 'out-of-service', 'refused', 'forbidden', 'too-large']) assert.equal(refusalStatus(reason), 409, reason);
  });
});
