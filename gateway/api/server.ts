/**
 * The operator HTTP API (fastify): the fleet, one machine's slots, sales and
 * commands, the product API of the reference vending service, and remote
 * purchases with idempotency keys, DEX audit files. Every route but /health and the docs
 * needs an API token (`Authorization: Bearer vf_...`) with a role; request
 * bodies and parameters are checked against their JSON schemas, which are
 * also the OpenAPI description served at /docs.
 */
import { createHash } from 'node:crypto';
import fastifyHelmet from '@fastify/helmet';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import type { AlertEngine } from '../alerts/engine.js';
import { listAlerts, openAlertCounts } from '../alerts/store.js';
import { CommandError, COMMAND_TYPES, type CommandRecord, type CommandService } from '../commands/service.js';
import { DexError } from '../dex/parse.js';
import { AuditError } from '../dex/store.js';
import type { Db } from '../store/db.js';
import { registerAlertRoutes } from './alert-routes.js';
import { registerAuditRoutes } from './audit-routes.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { registerHealthRoutes } from './health-routes.js';
import type { GatewayHealth } from '../gateway.js';
import { ERROR, HttpError, MACHINE_ID, SLOT_CODE, slotsOf, type MachineState, type RouteContext } from './http.js';
import { registerRestockRoutes } from './restock-routes.js';
import { allows, TokenCheck, type Role, type TokenInfo } from './tokens.js';
import { describeStoreError, faultOf, isStoreError } from '../store/errors.js';
import { dateTime, refuseHostileInput, validatorCompiler } from './validation.js';

const BEARER = /^bearer +(\S+) *$/i;

/** What every answer about a purchase the machine has seen says, refusals included. */
const PURCHASE = {
  command: { type: 'string', format: 'uuid', description: 'The vend command (GET /commands/{command})' },
  slot: { type: 'string' },
  requested: { type: 'integer', description: 'The quantity asked for' },
  dispensed: { type: 'integer', description: 'How many came out (0 for a refusal)' },
} as const;
const PURCHASE_DONE = {
  type: 'object',
  description: 'The machine vended: all (dispensed), some (partial), none (failed), or lost power during the vend (interrupted: nothing more is ever dispensed for it)',
  properties: {
    ...PURCHASE,
    status: { type: 'string', enum: ['dispensed', 'partial', 'failed', 'interrupted'] },
    remaining: { type: ['integer', 'null'], description: 'Items left in the slot, as the machine said' },
    message: { type: 'string' },
  },
  required: ['command', 'slot', 'requested', 'status', 'dispensed'],
} as const;
const PURCHASE_PENDING = {
  type: 'object',
  description: 'No answer from the machine yet: ask again with the same Idempotency-Key',
  properties: { status: { type: 'string', enum: ['pending'] }, command: PURCHASE.command, message: { type: 'string' } },
  required: ['status', 'message'],
} as const;
const PURCHASE_REFUSED = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, ...PURCHASE },
  required: ['error', 'message'],
} as const;
const SWAGGER_LOGO_STYLE = `sha256-${createHash('sha256').update('.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}').digest('base64')}`;

export interface ApiOptions {
  db: Db;
  commands: CommandService;
  /** The gateway's alert engine: rules changes re-evaluate (and notify) through it. */
  alerts?: AlertEngine | undefined;
  /** How long POST /purchase waits for the machine before answering 202 (ms). */
  purchaseWaitMs?: number;
  /** The gateway's own account of whether it receives and stores (GET /health). */
  health?: (() => GatewayHealth) | undefined;
  logger?: boolean;
  /** Told of every route as it is registered, the docs' and the automatic HEAD routes included (the fuzz test covers them all). */
  onRoute?: (route: RouteOptions) => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    token?: TokenInfo;
  }
}

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const { db, commands } = options;
  const waitMs = options.purchaseWaitMs ?? 30000;
  const tokens = new TokenCheck(db);
  // Bodies over 64 KiB are refused by fastify itself (413).
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 65536 });
  const onRoute = options.onRoute;
  if (onRoute) app.addHook('onRoute', (route) => onRoute(route));
  // One validator for every route: JSON bodies as they are, query and path text to numbers only when plainly numbers (validation.ts).
  app.setValidatorCompiler(validatorCompiler());
  app.addHook('preValidation', refuseHostileInput);
  // Security headers on every answer. The dashboard and the docs load only their own files (no inline
  // script or style: CSSOM changes like el.style.width are not inline style), are framed by nobody, and
  // plain HTTP on a closed network is not upgraded.
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'vendfleet operator API', version: '1.0.0', description: 'The fleet, its machines, products, remote purchases and commands.' },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer', description: 'An API token (vf_...) made with vendctl token create' } } },
      security: [{ token: [] }],
    },
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // Swagger UI draws its top-bar logo with one inline <style>: its hash allows exactly that, on /docs only.
    transformStaticCSP: (header) => header.replace("style-src 'self'", `style-src 'self' '${SWAGGER_LOGO_STYLE}'`),
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, _req, reply) => {
    if (err instanceof HttpError) return reply.code(err.status).send({ error: err.code, message: err.message });
    if (err instanceof DexError) return reply.code(err.code === 'too-large' ? 413 : 400).send({ error: err.code === 'too-large' ? 'too-large' : 'malformed-dex', line: err.line, message: err.message });
    if (err instanceof AuditError) return reply.code(err.code === 'unknown-machine' ? 404 : 400).send({ error: err.code, message: err.message });
    if (err instanceof CommandError) return reply.code(err.code === 'unknown-machine' ? 404 : err.code === 'too-large' ? 400 : 422).send({ error: err.code === 'too-large' ? 'bad-request' : err.code, message: err.message });
    if (err.validation) return reply.code(400).send({ error: 'bad-request', message: err.message });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.code ?? 'bad-request', message: err.message });
    // A database error that slipped past the checks: the input's fault is a 400, the store's a 503, never a 500.
    const fault = isStoreError(err) ? faultOf(err) : undefined;
    if (fault === 'data') return reply.code(400).send({ error: 'bad-request', message: `the store refused the input: ${describeStoreError(err)}` });
    if (fault !== undefined) return reply.code(503).send({ error: 'store-unavailable', message: 'the fleet store is unavailable; try again' });
    app.log.error(err);
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });

  const need =
    (role: Role) =>
    async (req: FastifyRequest): Promise<void> => {
      // The scheme is case-insensitive (RFC 9110 11.1), then one or more spaces and the token.
      const token = BEARER.exec(req.headers.authorization ?? '')?.[1];
      const info = token ? await tokens.check(token) : undefined;
      if (!info) throw new HttpError(401, 'unauthorized', 'an API token is needed: Authorization: Bearer vf_...');
      if (!allows(info.role, role)) throw new HttpError(403, 'forbidden', `this needs the ${role} role; the token has ${info.role}`);
      req.token = info;
    };

  async function machineState(id: string): Promise<MachineState> {
    const r = await db.query<MachineState & { known: boolean }>(
      `SELECT ms.online, ms.last_seen, ms.telemetry, ms.telemetry_at, ms.status, true AS known
       FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id WHERE m.id = $1`,
      [id],
    );
    const row = r.rows[0];
    if (!row) throw new HttpError(404, 'unknown-machine', `no machine "${id}"`);
    return { online: row.online ?? false, last_seen: row.last_seen, telemetry: row.telemetry, telemetry_at: row.telemetry_at, status: row.status };
  }
  const ctx: RouteContext = { db, commands, need, machineState };

  // ---- fleet --------------------------------------------------------------------------------

  app.get(
    '/machines',
    { preHandler: need('viewer'), schema: { summary: 'Every machine: online, last seen, unsynced state', tags: ['fleet'] } },
    async () => {
      const r = await db.query<{ id: string; online: boolean | null; last_seen: Date | null; last_seq: string | null; errors: unknown }>(
        `SELECT m.id, ms.online, ms.last_seen, ms.last_seq, ms.telemetry->'errors' AS errors FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id ORDER BY m.id`,
      );
      const alerts = await openAlertCounts(db);
      return { machines: r.rows.map((m) => ({ id: m.id, online: m.online ?? false, lastSeen: m.last_seen, lastEvent: Number(m.last_seq ?? 0), errors: Array.isArray(m.errors) ? m.errors : [], openAlerts: alerts.get(m.id) ?? 0 })) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id',
    { preHandler: need('viewer'), schema: { summary: "One machine's state (its last telemetry)", tags: ['fleet'], params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] } } },
    async (req) => {
      const s = await machineState(req.params.id);
      const alerts = await listAlerts(db, { state: 'open', machine: req.params.id, limit: 1000 });
      return { id: req.params.id, online: s.online, lastSeen: s.last_seen, telemetryAt: s.telemetry_at, telemetry: s.telemetry, status: s.status, alerts };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id/slots',
    { preHandler: need('viewer'), schema: { summary: "A machine's slots as it last reported them (stock, capacity, price, faults), sold-out ones included", tags: ['fleet'], params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] } } },
    async (req) => {
      const s = await machineState(req.params.id);
      return {
        slots: slotsOf(s.telemetry).map((x) => ({ slot: x.code, product: x.product ?? null, category: x.category ?? null, price: x.price, quantity: x.qty, capacity: x.capacity ?? null, sku: x.sku ?? null, outOfService: x.fault === true })),
        asOf: s.telemetry_at,
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { from?: string; to?: string } }>(
    '/machines/:id/sales',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'Sales and revenue over a time range (received time; default the last 24 hours)',
        tags: ['fleet'],
        params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
        querystring: { type: 'object', properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } }, additionalProperties: false },
      },
    },
    async (req) => {
      await machineState(req.params.id);
      const to = req.query.to !== undefined ? dateTime(req.query.to, 'to') : new Date();
      const from = req.query.from !== undefined ? dateTime(req.query.from, 'from') : new Date(to.getTime() - 86400000);
      if (from > to) throw new HttpError(400, 'bad-request', '"from" is after "to"');
      // GROUPING tells the total from the group of sales without a slot code (slot NULL in the sales view).
      const r = await db.query<{ slot: string | null; whole: number | string; n: string; revenue: string | null }>(
        `SELECT slot, GROUPING(slot) AS whole, count(*) AS n, sum(price) AS revenue FROM sales WHERE machine_id = $1 AND received_at >= $2 AND received_at < $3 GROUP BY ROLLUP (slot) ORDER BY slot NULLS LAST`,
        [req.params.id, from, to],
      );
      const total = r.rows.find((x) => Number(x.whole) === 1);
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        sales: Number(total?.n ?? 0),
        revenue: Number(total?.revenue ?? 0),
        bySlot: r.rows.filter((x) => Number(x.whole) === 0 && x.slot !== null).map((x) => ({ slot: x.slot, sales: Number(x.n), revenue: Number(x.revenue ?? 0) })),
      };
    },
  );

  // ---- the product API of the reference vending service ---------------------------------

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string; category?: string } }>(
    '/machines/:id/products',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'Products on sale, slot order, sold-out items hidden; cursor pagination',
        tags: ['products'],
        params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, cursor: { type: 'string', maxLength: 64 }, category: { type: 'string', minLength: 1, maxLength: 64 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const s = await machineState(req.params.id);
      let after = '';
      if (req.query.cursor !== undefined) {
        const decoded = Buffer.from(req.query.cursor, 'base64url').toString('utf8');
        if (!/^s:[A-Z0-9]{1,4}$/.test(decoded)) throw new HttpError(400, 'bad-cursor', 'cursor is not one this API gave out');
        after = decoded.slice(2);
      }
      const sellable = slotsOf(s.telemetry)
        .filter((x) => x.qty > 0 && !x.fault)
        .filter((x) => req.query.category === undefined || x.category === req.query.category)
        .sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0))
        .filter((x) => after === '' || x.code > after);
      const page = sellable.slice(0, req.query.limit);
      const more = sellable.length > page.length;
      return {
        items: page.map((x) => ({ slot: x.code, product: x.product ?? null, category: x.category ?? null, price: x.price, quantity: x.qty })),
        nextCursor: more ? Buffer.from(`s:${page[page.length - 1]!.code}`).toString('base64url') : null,
        asOf: s.telemetry_at,
      };
    },
  );

  app.get<{ Params: { id: string; slot: string } }>(
    '/machines/:id/status/:slot',
    {
      preHandler: need('viewer'),
      schema: { summary: "One slot's live status", tags: ['products'], params: { type: 'object', properties: { id: MACHINE_ID, slot: SLOT_CODE }, required: ['id', 'slot'] } },
    },
    async (req) => {
      const s = await machineState(req.params.id);
      const slot = slotsOf(s.telemetry).find((x) => x.code === req.params.slot);
      if (!slot) throw new HttpError(404, 'unknown-slot', `machine "${req.params.id}" has no slot ${req.params.slot}`);
      return {
        slot: slot.code,
        product: slot.product ?? null,
        category: slot.category ?? null,
        price: slot.price,
        quantity: slot.qty,
        capacity: slot.capacity ?? null,
        available: slot.qty > 0 && !slot.fault && s.online,
        outOfService: slot.fault === true,
        machineOnline: s.online,
        asOf: s.telemetry_at,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id/denominations',
    { preHandler: need('viewer'), schema: { summary: 'Coins in the changer tubes', tags: ['products'], params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] } } },
    async (req) => {
      const s = await machineState(req.params.id);
      const tubes = Array.isArray(s.telemetry?.tubes) ? s.telemetry.tubes : [];
      return { denominations: tubes.map((t) => ({ value: t.value, count: t.count })), asOf: s.telemetry_at };
    },
  );

  app.post<{ Params: { id: string }; Body: { slot: string; quantity: number }; Headers: { 'idempotency-key'?: string } }>(
    '/machines/:id/purchase',
    {
      preHandler: need('operator'),
      schema: {
        summary: 'A remote vend, paid elsewhere; the same Idempotency-Key always gets the first answer and never dispenses twice',
        tags: ['products'],
        params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 100, pattern: '^[\\x21-\\x7e]+$' } }, required: ['idempotency-key'] },
        body: { type: 'object', properties: { slot: SLOT_CODE, quantity: { type: 'integer', minimum: 1, maximum: 9, default: 1 } }, required: ['slot'], additionalProperties: false },
        response: {
          200: PURCHASE_DONE,
          202: PURCHASE_PENDING,
          400: ERROR,
          401: ERROR,
          403: ERROR,
          404: { ...PURCHASE_REFUSED, description: 'No such machine, or the machine has no such slot (error unknown-slot, with the purchase)' },
          409: { ...PURCHASE_REFUSED, description: 'The machine refused the vend (busy, sold-out, locked, out-of-service, ...: nothing dispensed), or another request with this key is issuing it' },
          422: { ...PURCHASE_REFUSED, description: 'The Idempotency-Key was used for another purchase, or the machine found the arguments bad (bad-args, with the purchase)' },
          504: { ...PURCHASE_REFUSED, description: 'The machine did not get the purchase before it expired (machine-unreachable): nothing dispensed' },
        },
      },
    },
    async (req, reply) => purchase(req.params.id, req.headers['idempotency-key']!, req.body, reply),
  );

  async function purchase(machine: string, key: string, body: { slot: string; quantity: number }, reply: FastifyReply): Promise<unknown> {
    await machineState(machine);
    const requestHash = createHash('sha256').update(JSON.stringify({ slot: body.slot, quantity: body.quantity })).digest('hex');
    const fresh = await db.query<{ key: string }>('INSERT INTO idempotency (machine_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING key', [machine, key, requestHash]);
    let commandId: string | undefined;
    let mine = fresh.rows.length > 0;
    if (!mine) {
      const prior = (await db.query<{ request_hash: string; command_id: string | null; response: { status: number; body: unknown } | null }>('SELECT request_hash, command_id, response FROM idempotency WHERE machine_id = $1 AND key = $2', [machine, key])).rows[0]!;
      if (prior.request_hash !== requestHash) throw new HttpError(422, 'idempotency-key-reused', 'this Idempotency-Key was used for a different purchase');
      if (prior.response) return reply.code(prior.response.status).header('idempotent-replay', 'true').send(prior.response.body);
      commandId = prior.command_id ?? undefined;
      if (!commandId) {
        // The first request with this key is issuing the vend (only the one that inserted the row may),
        // unless it died doing so: after 10 s the key is taken over, atomically.
        const took = await db.query("UPDATE idempotency SET created_at = now() WHERE machine_id = $1 AND key = $2 AND command_id IS NULL AND created_at < now() - interval '10 seconds' RETURNING key", [machine, key]);
        mine = took.rows.length > 0;
        for (let waited = 0; !mine && !commandId && waited < waitMs; waited += 100) {
          await new Promise((r) => setTimeout(r, 100));
          commandId = (await db.query<{ command_id: string | null }>('SELECT command_id FROM idempotency WHERE machine_id = $1 AND key = $2', [machine, key])).rows[0]?.command_id ?? undefined;
        }
        if (!mine && !commandId) return reply.code(202).send({ status: 'pending', message: 'a request with this Idempotency-Key is under way; ask again' });
      }
    }
    if (mine) {
      // The vend and the key's claim on it commit together: a request that died half-way left neither.
      const c = await commands.issue(machine, 'vend', { slot: body.slot, quantity: body.quantity }, {
        ttlS: 120,
        within: async (tx, id) => {
          const r = await tx.query('UPDATE idempotency SET command_id = $3 WHERE machine_id = $1 AND key = $2 AND command_id IS NULL RETURNING key', [machine, key, id]);
          if (r.rows.length === 0) throw new HttpError(409, 'in-progress', 'another request with this Idempotency-Key issued the purchase; ask again');
        },
      });
      commandId = c.id;
    }
    if (!commandId) throw new HttpError(500, 'internal', 'no command for this purchase');
    const done = await commands.waitFor(commandId, waitMs);
    if (!done || done.status === 'queued' || done.status === 'delivered') {
      return reply.code(202).send({ status: 'pending', command: commandId, message: 'the machine has not answered yet; ask again with the same Idempotency-Key' });
    }
    const answer = purchaseAnswer(done, body);
    await db.query('UPDATE idempotency SET response = $3::jsonb WHERE machine_id = $1 AND key = $2', [machine, key, JSON.stringify(answer)]);
    return reply.code(answer.status).send(answer.body);
  }

  function purchaseAnswer(c: CommandRecord, body: { slot: string; quantity: number }): { status: number; body: unknown } {
    const o = c.outcome ?? {};
    const dispensed = Number(o['value'] ?? 0);
    const remaining = o['remaining'] === undefined ? null : Number(o['remaining']);
    const base = { command: c.id, slot: body.slot, requested: body.quantity };
    switch (c.status) {
      case 'applied':
        return { status: 200, body: { ...base, status: 'dispensed', dispensed, remaining } };
      case 'failed':
        return { status: 200, body: { ...base, status: dispensed > 0 ? 'partial' : 'failed', dispensed, remaining } };
      case 'interrupted':
        return { status: 200, body: { ...base, status: 'interrupted', dispensed, remaining, message: 'the machine lost power during the vend; it will not dispense more for this purchase' } };
      case 'refused': {
        const reason = String(o['reason'] ?? 'refused');
        const status = reason === 'unknown-slot' ? 404 : reason === 'bad-args' ? 422 : 409;
        return { status, body: { error: reason, message: `the machine refused: ${reason}`, ...base, dispensed: 0 } };
      }
      case 'expired':
        return { status: 504, body: { error: 'machine-unreachable', message: 'the machine did not get the purchase in time; nothing was dispensed', ...base, dispensed: 0 } };
      default:
        return { status: 409, body: { error: c.status, message: `the machine did not vend (${c.status})`, ...base, dispensed: 0 } };
    }
  }

  // ---- commands -----------------------------------------------------------------------------

  app.post<{ Params: { id: string }; Body: { type: string; args?: Record<string, unknown>; ttlS?: number } }>(
    '/machines/:id/commands',
    {
      preHandler: need('operator'),
      schema: {
        summary: 'Send a command (queued until the machine is online)',
        tags: ['commands'],
        params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
        body: {
          type: 'object',
          properties: { type: { type: 'string', enum: [...COMMAND_TYPES] }, args: { type: 'object' }, ttlS: { type: 'integer', minimum: 1, maximum: 2592000 } },
          required: ['type'],
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      if (req.body.type === 'rotate-key' && !allows(req.token!.role, 'admin')) throw new HttpError(403, 'forbidden', 'rotating a key needs the admin role');
      if (req.body.type === 'rotate-key' && req.body.args && Object.keys(req.body.args).length > 0) throw new HttpError(422, 'bad-command', 'rotate-key takes no arguments: the gateway makes the key');
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
        params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } }, additionalProperties: false },
      },
    },
    async (req) => {
      await machineState(req.params.id);
      return { commands: await commands.list(req.params.id, req.query.limit) };
    },
  );

  app.get<{ Params: { command: string } }>(
    '/commands/:command',
    { preHandler: need('viewer'), schema: { summary: "A command's status and outcome", tags: ['commands'], params: { type: 'object', properties: { command: { type: 'string', format: 'uuid' } }, required: ['command'] } } },
    async (req) => {
      const c = await commands.get(req.params.command);
      if (!c) throw new HttpError(404, 'unknown-command', `no command ${req.params.command}`);
      return c;
    },
  );

  // ---- DEX audit files -----------------------------------------------------------------------

  await registerHealthRoutes(app, options.health);
  await registerAuditRoutes(app, ctx);
  await registerDashboardRoutes(app, ctx);
  await registerAlertRoutes(app, ctx, options.alerts);
  await registerRestockRoutes(app, ctx);

  // ---- provisioning -------------------------------------------------------------------------

  app.post<{ Body: { id: string } }>(
    '/machines',
    {
      preHandler: need('admin'),
      schema: {
        summary: "Provision a machine: returns its command key for the machine's configuration (shown to admins only)",
        tags: ['fleet'],
        body: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'], additionalProperties: false },
      },
    },
    async (req, reply) => reply.code(201).send({ id: req.body.id, ...(await commands.provision(req.body.id)) }),
  );

  return app;
}
