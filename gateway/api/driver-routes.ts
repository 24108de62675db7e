/**
 * The route driver's page and its API (docs/restocking.md "The driver's
 * page"). An operator makes a link for a route (POST /driver-links): the
 * route is planned then and kept, and the link's secret opens that route
 * only, until the end of the day or until revoked. The secret travels in
 * the page address's fragment (never sent to the server, so never in a log
 * or a Referer) and from the page as `Authorization: Bearer dl_...`. With it
 * the page reads the route and sends restock commands for the slots on its
 * pick lists, one command per slot however often it is tapped.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { planRestockRoute } from '../restock/plan.js';
import { bindSlotRestock, createLink, endOfDay, linkHasCommand, openLink, RETRYABLE, revokeLink, slotRestock, type DriverLink } from '../restock/driver-links.js';
import { machineState } from '../store/machines.js';
import { DRIVER_CSS, DRIVER_HTML } from './driver-page.js';
import { HttpError } from './errors.js';
import { MACHINE_ID, OPERATOR_PARAM, SLOT_CODE, type RouteContext } from './http.js';
import { parseDepot, routeJson } from './restock-routes.js';

const SCRIPT = new URL('../dashboard/driver.js', import.meta.url);
const BEARER = /^bearer +(dl_\S+) *$/i;
const REFUSED: Record<string, string> = {
  unknown: 'This driver link is not known: ask the office for a new one.',
  expired: 'This driver link has expired (links last until the end of the day): ask the office for a new one.',
  revoked: 'This driver link was revoked: ask the office for a new one.',
};

/** Thrown inside the issuing transaction when another tap's command holds the slot: the new command is rolled back. */
class SlotTaken extends Error {}

export async function registerDriverRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, commands, need, owner, scope } = ctx;
  let script: string | undefined;

  const link = async (req: FastifyRequest): Promise<DriverLink> => {
    const secret = BEARER.exec(req.headers.authorization ?? '')?.[1];
    if (!secret) throw new HttpError('unauthorized', 'a driver link is needed: Authorization: Bearer dl_...');
    const l = await openLink(db, secret);
    if (typeof l === 'string') throw new HttpError('unauthorized', REFUSED[l]!);
    return l;
  };

  /** A command as the page shows it: its status, and the machine's reason when it refused. */
  const outcome = async (l: DriverLink, id: string, machine: string, slot: string): Promise<Record<string, unknown>> => {
    const c = await commands.get(id, l.operator);
    if (!c) throw new HttpError('unknown-command', `no command ${id}`);
    const reason = c.outcome?.['reason'];
    return { command: c.id, machine, slot, status: c.status, reason: typeof reason === 'string' ? reason : null, args: c.args };
  };

  app.post<{ Body: { name?: string; depot?: string; days?: number; machines?: string[]; windowDays?: number; return?: boolean; expiresAt?: string }; Querystring: { operator?: string } }>(
    '/driver-links',
    {
      preHandler: need('operator'),
      schema: {
        summary: "A driver's link for a route planned now: it reads that route and restocks its pick lists' slots, until the end of the UTC day (or expiresAt, at most 36 hours on)",
        tags: ['restocking'],
        querystring: { type: 'object', properties: { operator: OPERATOR_PARAM }, additionalProperties: false },
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64 },
            depot: { type: 'string', maxLength: 64 },
            days: { type: 'number', minimum: 0, maximum: 90, default: 7 },
            machines: { type: 'array', items: MACHINE_ID, minItems: 1, maxItems: 200 },
            windowDays: { type: 'integer', minimum: 1, maximum: 365 },
            return: { type: 'boolean', default: true },
            expiresAt: { type: 'string', format: 'date-time' },
          },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const operator = await owner(req, req.query.operator);
      const now = new Date();
      const expiresAt = req.body.expiresAt !== undefined ? new Date(req.body.expiresAt) : endOfDay(now);
      if (!(expiresAt.getTime() > now.getTime() && expiresAt.getTime() <= now.getTime() + 36 * 3600_000)) throw new HttpError('bad-request', '"expiresAt" must be in the next 36 hours');
      const plan = await planRestockRoute(db, {
        depot: req.body.depot === undefined ? undefined : parseDepot(req.body.depot),
        days: req.body.days ?? 7,
        machines: req.body.machines,
        returnToDepot: req.body.return,
        windowDays: req.body.windowDays,
        operator,
        now,
      });
      const route = routeJson(plan);
      const name = req.body.name ?? `route ${now.toISOString().slice(0, 10)}`;
      const made = await createLink(db, operator, name, route, expiresAt);
      return reply.code(201).send({ id: made.id, name, operator, secret: made.secret, link: `/driver#${made.secret}`, expiresAt: expiresAt.toISOString(), stops: plan.stops.length });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/driver-links/:id',
    {
      preHandler: need('operator'),
      schema: { summary: "Revoke a driver's link: its page says so at once", tags: ['restocking'], params: { type: 'object', properties: { id: { type: 'string', format: 'uuid' } }, required: ['id'] } },
    },
    async (req, reply) => {
      if (!(await revokeLink(db, req.params.id, scope(req)))) throw new HttpError('unknown-token', `no driver link ${req.params.id}`);
      return reply.code(204).send();
    },
  );

  // The page and its script need no secret: the secret is in the address's fragment, read by the script.
  app.get('/driver', { schema: { hide: true } }, async (_req, reply) => reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(DRIVER_HTML));
  app.get('/driver/style.css', { schema: { hide: true } }, async (_req, reply) => reply.header('content-type', 'text/css; charset=utf-8').send(DRIVER_CSS));
  app.get('/driver/driver.js', { schema: { hide: true } }, async (_req, reply) => {
    script ??= readFileSync(SCRIPT, 'utf8');
    return reply.header('content-type', 'text/javascript; charset=utf-8').send(script);
  });

  app.get(
    '/driver/route',
    { schema: { summary: "The driver's route (with the link's secret as the bearer): stops in order, pick lists, the van load, and what was restocked", tags: ['restocking'], security: [] } },
    async (req, reply) => {
      const l = await link(req);
      const done = await db.query<{ machine_id: string; slot: string; command_id: string; status: string }>(
        'SELECT r.machine_id, r.slot, r.command_id, c.status FROM driver_restocks r JOIN commands c ON c.id = r.command_id WHERE r.link_id = $1 ORDER BY r.machine_id, r.slot',
        [l.id],
      );
      return reply.header('cache-control', 'no-store').send({
        name: l.name,
        expiresAt: l.expiresAt,
        route: l.route,
        restocks: done.rows.map((r) => ({ machine: r.machine_id, slot: r.slot, command: r.command_id, status: r.status })),
      });
    },
  );

  app.post<{ Body: { machine: string; slot: string } }>(
    '/driver/restock',
    {
      schema: {
        summary: "Restocked: fill a slot of the link's route to its capacity (a restock command). Sent again for the same slot, the same command answers, unless that one restocked nothing",
        tags: ['restocking'],
        security: [],
        body: { type: 'object', properties: { machine: MACHINE_ID, slot: SLOT_CODE }, required: ['machine', 'slot'], additionalProperties: false },
      },
    },
    async (req, reply) => {
      const l = await link(req);
      const { machine, slot } = req.body;
      // The link's own route only; another machine is not found, whoever's it is.
      const stop = l.route.stops.find((s) => s.machine === machine);
      if (!stop || !(await machineState(db, machine, l.operator))) throw new HttpError('unknown-machine', `no machine "${machine}" on this route`);
      const line = stop.picklist.lines.find((x) => x.slot === slot);
      if (!line) throw new HttpError('unknown-slot', `no slot "${slot}" on ${machine}'s pick list`);
      if (line.capacity === null) throw new HttpError('bad-request', `${machine} did not report ${slot}'s capacity: restock it from the dashboard`);
      const prior = await slotRestock(db, l.id, machine, slot);
      if (prior && !(RETRYABLE as readonly string[]).includes(prior.status)) return reply.code(200).send({ ...(await outcome(l, prior.command, machine, slot)), repeated: true });
      try {
        const c = await commands.issue(machine, 'restock', { slots: { [slot]: { qty: line.capacity } } }, {
          within: async (tx, id) => {
            if (!(await bindSlotRestock(tx, l.id, machine, slot, id))) throw new SlotTaken();
          },
        });
        return reply.code(202).send({ ...(await outcome(l, c.id, machine, slot)), repeated: false });
      } catch (e) {
        if (!(e instanceof SlotTaken)) throw e;
        const other = await slotRestock(db, l.id, machine, slot);
        return reply.code(200).send({ ...(await outcome(l, other!.command, machine, slot)), repeated: true });
      }
    },
  );

  app.get<{ Params: { command: string } }>(
    '/driver/restock/:command',
    {
      schema: {
        summary: "A restock sent through the link: its status, and the machine's reason when it refused",
        tags: ['restocking'],
        security: [],
        params: { type: 'object', properties: { command: { type: 'string', format: 'uuid' } }, required: ['command'] },
      },
    },
    async (req) => {
      const l = await link(req);
      const mine = await linkHasCommand(db, l.id, req.params.command);
      if (!mine) throw new HttpError('unknown-command', `no restock ${req.params.command} on this route`);
      return outcome(l, req.params.command, mine.machine, mine.slot);
    },
  );
}
