/**
 * Remote commands over the operator API (docs/commands.md): send one
 * (queued until the machine is online; rotating a key and updating the
 * firmware need an admin), list a machine's, read one's status and
 * outcome, and call off an update sent by hand.
 */
import type { FastifyInstance } from 'fastify';
import { COMMAND_TYPES } from '../commands/service.js';
import { HttpError } from './errors.js';
import { MACHINE_PARAMS, type RouteContext } from './http.js';
import { allows } from './tokens.js';

const COMMAND_PARAMS = { type: 'object', properties: { command: { type: 'string', format: 'uuid' } }, required: ['command'] } as const;

export async function registerCommandRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { commands, need, machineState, scope } = ctx;

  app.post<{ Params: { id: string }; Body: { type: string; args?: Record<string, unknown>; ttlS?: number } }>(
    '/machines/:id/commands',
    {
      preHandler: need('operator'),
      schema: {
        summary: 'Send a command (queued until the machine is online)',
        tags: ['commands'],
        params: MACHINE_PARAMS,
        body: {
          type: 'object',
          properties: { type: { type: 'string', enum: [...COMMAND_TYPES] }, args: { type: 'object' }, ttlS: { type: 'integer', minimum: 1, maximum: 2592000 } },
          required: ['type'],
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      // Another operator's machine is not found, whatever the command (before the role checks: they would say it exists).
      await machineState(req, req.params.id);
      if (req.body.type === 'rotate-key' && !allows(req.token!.role, 'admin')) throw new HttpError('forbidden', 'rotating a key needs the admin role');
      // Firmware on a machine is the admin's (docs/updates.md "The command"): the image is named, the gateway fills in its facts.
      if (req.body.type === 'update' && !allows(req.token!.role, 'admin')) throw new HttpError('forbidden', 'an update needs the admin role');
      if (req.body.type === 'rotate-key' && req.body.args && Object.keys(req.body.args).length > 0) throw new HttpError('bad-command', 'rotate-key takes no arguments: the gateway makes the key');
      const c = await commands.issue(req.params.id, req.body.type, req.body.args ?? {}, req.body.ttlS !== undefined ? { ttlS: req.body.ttlS } : {});
      return reply.code(202).send(c);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number } }>(
    '/machines/:id/commands',
    {
      preHandler: need('viewer'),
      schema: {
        summary: "A machine's commands, newest first",
        tags: ['commands'],
        params: MACHINE_PARAMS,
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } }, additionalProperties: false },
      },
    },
    async (req) => {
      await machineState(req, req.params.id);
      return { commands: await commands.list(req.params.id, req.query.limit) };
    },
  );

  app.post<{ Params: { command: string } }>(
    '/commands/:command/cancel',
    {
      preHandler: need('operator'),
      schema: {
        summary: 'Call off an update command sent by hand: cancelled, its image no longer offered (a machine that has the image already may still install it)',
        tags: ['commands'],
        params: COMMAND_PARAMS,
      },
    },
    async (req) => {
      // Another operator's command is not found, like one that does not exist.
      if (!(await commands.get(req.params.command, scope(req)))) throw new HttpError('unknown-command', `no command ${req.params.command}`);
      const c = await commands.cancelUpdate(req.params.command);
      if (!c) throw new HttpError('unknown-command', `no command ${req.params.command}`);
      return c;
    },
  );

  app.get<{ Params: { command: string } }>(
    '/commands/:command',
    { preHandler: need('viewer'), schema: { summary: "A command's status and outcome", tags: ['commands'], params: COMMAND_PARAMS } },
    async (req) => {
      const c = await commands.get(req.params.command, scope(req));
      if (!c) throw new HttpError('unknown-command', `no command ${req.params.command}`);
      return c;
    },
  );
}
