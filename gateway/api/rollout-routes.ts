/**
 * Firmware rollouts over the operator API (docs/updates.md "Rollouts"):
 * start one (admins: it sends update commands), list them, read one with
 * its waves, counts per state and the machines that failed or rolled back,
 * a rollout's machines, and pause (operators), resume (admins) or cancel
 * (operators) one. The rollout engine in the gateway does the rest. A
 * rollout is one operator's, over its machines only (docs/tenants.md).
 */
import type { FastifyInstance } from 'fastify';
import { SHA256_PATTERN, VERSION_PATTERN } from '../firmware/image.js';
import { MAX_TARGETS, MAX_WAVES, ROLLOUT_ID_PATTERN, TAG_PATTERN, type Halt, type Target } from '../rollouts/plan.js';
import { MACHINE_STATES, type MachineState } from '../rollouts/progress.js';
import type { Rollouts } from '../rollouts/service.js';
import { MACHINE_ID, OPERATOR_PARAM, type RouteContext } from './http.js';

const ROLLOUT_PARAMS = { type: 'object', properties: { rollout: { type: 'string', pattern: ROLLOUT_ID_PATTERN } }, required: ['rollout'] } as const;

/** One of: every machine, a list, a tag, a share of the fleet. */
const TARGET = {
  type: 'object',
  description: 'exactly one of: {"all": true}, {"machines": [ids]}, {"tag": "t"}, {"percent": 5}',
  properties: {
    all: { type: 'boolean', enum: [true] },
    machines: { type: 'array', minItems: 1, maxItems: MAX_TARGETS, items: MACHINE_ID },
    tag: { type: 'string', pattern: TAG_PATTERN },
    percent: { type: 'integer', minimum: 1, maximum: 100 },
  },
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
} as const;

const HALT = {
  type: 'object',
  description: 'exactly one of: {"percent": 20} of a wave, {"count": 3} machines; failures and rollbacks in a wave that halt the rollout',
  properties: { percent: { type: 'integer', minimum: 1, maximum: 100 }, count: { type: 'integer', minimum: 1, maximum: 100000 } },
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
} as const;

interface CreateBody {
  sha256?: string;
  version?: string;
  target: { all?: true; machines?: string[]; tag?: string; percent?: number };
  waves?: number[];
  halt?: { percent?: number; count?: number };
  parallel?: number;
  timeoutS?: number;
  downgrade?: boolean;
  force?: boolean;
  operator?: string;
}

function targetOf(t: CreateBody['target']): Target {
  if (t.machines !== undefined) return { kind: 'machines', machines: t.machines };
  if (t.tag !== undefined) return { kind: 'tag', tag: t.tag };
  if (t.percent !== undefined) return { kind: 'percent', percent: t.percent };
  return { kind: 'all' };
}

export async function registerRolloutRoutes(app: FastifyInstance, ctx: RouteContext, rollouts: Rollouts): Promise<void> {
  const { need, scope, owner } = ctx;

  app.post<{ Body: CreateBody }>(
    '/rollouts',
    {
      preHandler: need('admin'),
      schema: {
        summary: "Roll an image out to the operator's machines in waves (its update commands go out as the waves come); a platform admin names the operator (default 'default')",
        tags: ['firmware'],
        body: {
          type: 'object',
          properties: {
            sha256: { type: 'string', pattern: SHA256_PATTERN },
            version: { type: 'string', pattern: VERSION_PATTERN },
            target: TARGET,
            waves: { type: 'array', minItems: 1, maxItems: MAX_WAVES, items: { type: 'integer', minimum: 1, maximum: 100 }, description: 'cumulative percentages of the targets, rising, the last 100 (default [1, 10, 100])' },
            halt: HALT,
            parallel: { type: 'integer', minimum: 1, maximum: 10000, description: 'machines updating at once, at most (default 50)' },
            timeoutS: { type: 'integer', minimum: 60, maximum: 2592000, description: 'a machine heard nothing of for this long has failed (default 3600)' },
            downgrade: { type: 'boolean' },
            force: { type: 'boolean', description: 'install inside the service hours too' },
            operator: OPERATOR_PARAM,
          },
          required: ['target'],
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const view = await rollouts.create({
        sha256: b.sha256,
        version: b.version,
        target: targetOf(b.target),
        waves: b.waves,
        halt: b.halt as Halt | undefined,
        parallel: b.parallel,
        timeoutS: b.timeoutS,
        downgrade: b.downgrade,
        force: b.force,
        createdBy: req.token?.name,
        operator: await owner(req, b.operator),
      });
      return reply.code(201).send(view);
    },
  );

  app.get<{ Querystring: { limit: number; state: 'unfinished' | 'all' } }>(
    '/rollouts',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'Rollouts, newest first, with their counts per state',
        tags: ['firmware'],
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, state: { type: 'string', enum: ['all', 'unfinished'], default: 'all' } },
          additionalProperties: false,
        },
      },
    },
    async (req) => ({ rollouts: await rollouts.list({ limit: req.query.limit, unfinished: req.query.state === 'unfinished', operator: scope(req) }) }),
  );

  app.get<{ Params: { rollout: string } }>(
    '/rollouts/:rollout',
    { preHandler: need('viewer'), schema: { summary: 'One rollout: its waves, counts per state, the machines that failed or rolled back (with why) and those under way', tags: ['firmware'], params: ROLLOUT_PARAMS } },
    async (req) => rollouts.get(req.params.rollout, scope(req)),
  );

  app.get<{ Params: { rollout: string }; Querystring: { state?: MachineState; limit: number } }>(
    '/rollouts/:rollout/machines',
    {
      preHandler: need('viewer'),
      schema: {
        summary: "A rollout's machines in the order they go, those in one state if asked",
        tags: ['firmware'],
        params: ROLLOUT_PARAMS,
        querystring: {
          type: 'object',
          properties: { state: { type: 'string', enum: [...MACHINE_STATES] }, limit: { type: 'integer', minimum: 1, maximum: 100000, default: 1000 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => ({ machines: await rollouts.machines(req.params.rollout, { limit: req.query.limit, operator: scope(req), ...(req.query.state ? { states: [req.query.state] } : {}) }) }),
  );

  const action = (verb: 'pause' | 'resume' | 'cancel', role: 'operator' | 'admin', summary: string): void => {
    app.post<{ Params: { rollout: string } }>(`/rollouts/:rollout/${verb}`, { preHandler: need(role), schema: { summary, tags: ['firmware'], params: ROLLOUT_PARAMS } }, async (req) => rollouts[verb](req.params.rollout, scope(req)));
  };
  action('pause', 'operator', 'Pause a rollout: no more machines start; those under way go on');
  action('resume', 'admin', 'Resume a paused or halted rollout (after a halt, the failures so far in its wave are accepted)');
  action('cancel', 'operator', 'Cancel a rollout: no machine starts again, update commands under way are called off and their offers withdrawn; machines that confirmed stay');
}
