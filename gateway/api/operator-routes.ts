/**
 * Operators over the API (docs/tenants.md): who the token is (its role and
 * operator), the operators it can see (a platform admin: all; any other
 * token: its own), adding an operator (platform admins), and making tokens
 * (an admin for its operator; a platform admin for any, or the platform).
 */
import type { FastifyInstance } from 'fastify';
import { createOperator, listOperators, OPERATOR_ID_PATTERN } from '../store/operators.js';
import { HttpError } from './errors.js';
import { ERROR, OPERATOR_PARAM, type RouteContext } from './http.js';
import { createToken, listTokens, revokeToken, ROLES, type Role } from './tokens.js';

const TOKEN = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: [...ROLES] },
    operator: { type: ['string', 'null'], description: "null: a platform admin's" },
    createdAt: { type: 'string', format: 'date-time' },
    lastUsedAt: { type: ['string', 'null'], format: 'date-time', description: 'last used on the API, to the minute; null: not since the gateway kept track' },
  },
} as const;
/** Token ids: UUIDs from createToken; older stores may have others, so any short plain id is looked up. */
const TOKEN_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const;

const OPERATOR = {
  type: 'object',
  properties: { id: { type: 'string' }, name: { type: 'string' }, machines: { type: 'integer' }, createdAt: { type: 'string', format: 'date-time' } },
} as const;

export async function registerOperatorRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, need, needPlatform, scope } = ctx;

  app.get(
    '/me',
    {
      preHandler: need('viewer'),
      schema: {
        summary: "The token's name, role and operator (null: a platform admin, who sees every operator)",
        tags: ['operators'],
        response: { 200: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string' }, operator: { type: ['string', 'null'] } } }, 401: ERROR },
      },
    },
    async (req) => ({ name: req.token!.name, role: req.token!.role, operator: req.token!.operator }),
  );

  app.get(
    '/operators',
    {
      preHandler: need('viewer'),
      schema: { summary: "The operators the token sees, with their machine counts (a platform admin: all; else its own)", tags: ['operators'], response: { 200: { type: 'object', properties: { operators: { type: 'array', items: OPERATOR } } }, 401: ERROR } },
    },
    async (req) => ({ operators: await listOperators(db, scope(req)) }),
  );

  app.post<{ Body: { name: string; role: Role; operator?: string; platform?: boolean } }>(
    '/tokens',
    {
      preHandler: need('admin'),
      schema: {
        summary: "Make an API token (shown once): the token's operator's (an admin's of that operator may), or a platform admin's (platform: true; platform admins only). A platform admin names the operator; naming none makes an admin token a platform admin's and any other the default operator's, as vendctl token create does",
        tags: ['operators'],
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', pattern: '^[\\w .@-]{1,64}$' },
            role: { type: 'string', enum: [...ROLES] },
            operator: OPERATOR_PARAM,
            platform: { type: 'boolean', enum: [true] },
          },
          required: ['name', 'role'],
          additionalProperties: false,
        },
        response: { 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR },
      },
    },
    async (req, reply) => {
      const { name, role, operator, platform } = req.body;
      if (platform && operator !== undefined) throw new HttpError('bad-request', 'a token is one operator\'s or a platform admin\'s, not both');
      if (platform && scope(req) !== null) throw new HttpError('forbidden', "only a platform admin makes a platform admin's token");
      if (platform && role !== 'admin') throw new HttpError('bad-request', "a platform admin's token has the admin role");
      // An operator's admin makes its own operator's tokens; a platform admin any operator's (or, naming none, as vendctl does).
      const owner = platform ? null : scope(req) !== null || operator !== undefined ? await ctx.owner(req, operator) : undefined;
      const made = await createToken(db, name, role, owner);
      return reply.code(201).send({ token: made.token, id: made.info.id, name: made.info.name, role: made.info.role, operator: made.info.operator });
    },
  );

  app.get<{ Querystring: { operator?: string } }>(
    '/tokens',
    {
      preHandler: need('admin'),
      schema: {
        summary: "The live API tokens the admin token sees (its operator's; a platform admin: every operator's and the platform admins', or one operator's with ?operator=), oldest first. Never their secrets",
        tags: ['operators'],
        querystring: { type: 'object', properties: { operator: OPERATOR_PARAM }, additionalProperties: false },
        response: { 200: { type: 'object', properties: { tokens: { type: 'array', items: TOKEN } } }, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR },
      },
    },
    async (req) => {
      const mine = scope(req);
      // Naming an operator: its own for an operator's admin (another's is not found), any existing one for a platform admin.
      const operator = req.query.operator === undefined ? undefined : await ctx.owner(req, req.query.operator);
      return { tokens: await listTokens(db, mine, operator) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/tokens/:id',
    {
      preHandler: need('admin'),
      schema: {
        summary: "Revoke an API token: refused from the next request on, its open live streams ended. An operator's admin revokes its operator's tokens (another's, or a platform admin's, is not found); a platform admin any",
        tags: ['operators'],
        params: { type: 'object', properties: { id: TOKEN_ID }, required: ['id'] },
        response: { 204: { type: 'null' }, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      if (!(await revokeToken(db, id, scope(req)))) throw new HttpError('unknown-token', `no live token "${id}"`);
      ctx.tokens.revoked(id);
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { id: string; name: string } }>(
    '/operators',
    {
      preHandler: needPlatform,
      schema: {
        summary: 'Add an operator (platform admins); then make its tokens (vendctl token create NAME ROLE --operator ID) and provision its machines',
        tags: ['operators'],
        body: {
          type: 'object',
          properties: { id: { type: 'string', pattern: OPERATOR_ID_PATTERN }, name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\x00-\\x1f\\x7f]+$' } },
          required: ['id', 'name'],
          additionalProperties: false,
        },
        response: { 201: OPERATOR, 400: ERROR, 401: ERROR, 403: ERROR, 409: ERROR },
      },
    },
    async (req, reply) => {
      if (!(await createOperator(db, req.body.id, req.body.name))) throw new HttpError('operator-exists', `operator "${req.body.id}" exists`);
      const made = (await listOperators(db, req.body.id))[0]!;
      return reply.code(201).header('location', '/operators').send(made);
    },
  );
}
