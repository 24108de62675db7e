/**
 * The fleet over the operator API: every machine at a glance (or a page of
 * them, or the ones named: a live page's changed rows), one machine's
 * state and slots (and the firmware it runs, its last update report, its
 * tags), its sales over a time range, setting its tags, and provisioning a
 * new machine (admins only: the answer holds its command key). A token sees
 * and provisions its operator's machines only (docs/tenants.md). The routes
 * that only read use the read store (a replica when there is one).
 */
import type { FastifyInstance } from 'fastify';
import { listAlerts, openAlertCounts, openCriticalCounts } from '../alerts/store.js';
import { latestReport } from '../commands/update.js';
import { restockTodayOf } from '../restock/today.js';
import { TAG_PATTERN } from '../rollouts/plan.js';
import { firmwareOf, listMachines, mapPoints, MAX_TAGS, setTags, slotsOf, tagsOf } from '../store/machines.js';
import { salesBySlot } from '../store/sales.js';
import { HttpError } from './errors.js';
import { MACHINE_ID, MACHINE_PARAMS, OPERATOR_PARAM, type RouteContext } from './http.js';
import { dateTime } from './validation.js';

/** A machine's state on the map, worst first (GET /fleet/map `state` indexes it). */
export const MAP_STATES = ['offline', 'errors', 'restock', 'online'] as const;

/** Most machines one GET /machines?ids= names. */
const MAX_IDS = 500;
/** Machine ids, comma-separated (each checked as MACHINE_ID_PATTERN is, without its anchors). */
const MACHINE_ID_LIST = '[A-Za-z0-9][A-Za-z0-9_-]{0,63}(?:,[A-Za-z0-9][A-Za-z0-9_-]{0,63})*';

export async function registerFleetRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, reads, commands, need, machineState, readMachineState, scope, owner } = ctx;

  app.get<{ Querystring: { tag?: string; ids?: string; limit?: number; cursor?: string } }>(
    '/machines',
    {
      preHandler: need('viewer'),
      schema: {
        summary:
          'Every machine (or those with a tag, or those named in ids), in id order: online, last seen, unsynced state, firmware version, tags, operator, stock from its last telemetry ({units, capacity, percent}), needsRestock (a slot empty, out of service or at a fifth of its room), restockToday (from the forecasts: a slot empty, out of service or predicted to run out before midnight UTC; null while the first look of the gateway is under way), its money (currency, decimals), open alerts and open critical alerts. With limit: a page of at most that many, and next, the cursor of the page after it (null: the last page)',
        tags: ['fleet'],
        querystring: {
          type: 'object',
          properties: {
            tag: { type: 'string', pattern: TAG_PATTERN },
            ids: { type: 'string', pattern: `^${MACHINE_ID_LIST}$`, description: `machines by id, comma-separated (at most ${MAX_IDS}): a live page's changed rows` },
            limit: { type: 'integer', minimum: 1, maximum: 10000, description: 'a page of at most this many machines' },
            cursor: { ...MACHINE_ID, description: "the page after this machine id (a page's next)" },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { tag, limit, cursor } = req.query;
      const ids = req.query.ids?.split(',');
      if (ids && ids.length > MAX_IDS) throw new HttpError('bad-request', `more than ${MAX_IDS} machine ids`);
      if (cursor !== undefined && limit === undefined) throw new HttpError('bad-request', 'a cursor pages: give limit too');
      const machines = await listMachines(reads, { tag, ids, after: cursor, limit }, scope(req));
      const alerts = await openAlertCounts(reads, scope(req), ids);
      const critical = await openCriticalCounts(reads, scope(req), ids);
      const today = (await restockTodayOf(reads).ifReady(scope(req)))?.machines;
      const rows = machines.map((m) => ({ ...m, restockToday: today ? today.has(m.id) : null, openAlerts: alerts.get(m.id) ?? 0, criticalAlerts: critical.get(m.id) ?? 0 }));
      if (limit === undefined) return { machines: rows };
      return { machines: rows, next: rows.length === limit ? rows[rows.length - 1]!.id : null };
    },
  );

  app.get(
    '/fleet/map',
    {
      preHandler: need('viewer'),
      schema: {
        summary:
          "The fleet map's read: every located machine (in id order) as columns of equal length, not an object each (10,000 machines are a few hundred KB): id, lat, lon, address (null: none) and state, an index into states (offline; with errors: errors in its last telemetry or an open critical alert; needing restock today from the forecasts; else online). restockCounted: false while the gateway's first look at the forecasts is under way (no machine is marked restock until then)",
        tags: ['fleet'],
      },
    },
    async (req) => {
      const operator = scope(req);
      const [points, look] = await Promise.all([mapPoints(reads, operator), restockTodayOf(reads).ifReady(operator)]);
      const today = look?.machines;
      const state = points.map((m) => (!m.online ? 0 : m.errors ? 1 : today?.has(m.id) ? 2 : 3));
      return {
        states: MAP_STATES,
        restockCounted: today !== undefined,
        machines: { id: points.map((m) => m.id), lat: points.map((m) => m.lat), lon: points.map((m) => m.lon), address: points.map((m) => m.address), state },
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id',
    { preHandler: need('viewer'), schema: { summary: "One machine's state (its last telemetry)", tags: ['fleet'], params: MACHINE_PARAMS } },
    async (req) => {
      const s = await readMachineState(req, req.params.id);
      const alerts = await listAlerts(reads, { state: 'open', machine: req.params.id, limit: 1000 });
      const status = s.status as Record<string, unknown> | null;
      const firmware = firmwareOf(s.telemetry?.['fw']) ?? firmwareOf(status?.['fw']);
      const update = (await latestReport(reads, req.params.id)) ?? null;
      const tags = await tagsOf(reads, req.params.id);
      return { id: req.params.id, online: s.online, lastSeen: s.last_seen, telemetryAt: s.telemetry_at, firmware, update, tags, telemetry: s.telemetry, status: s.status, alerts };
    },
  );

  app.put<{ Params: { id: string }; Body: { tags: string[] } }>(
    '/machines/:id/tags',
    {
      preHandler: need('operator'),
      schema: {
        summary: "Replace a machine's tags (labels a rollout can target)",
        tags: ['fleet'],
        params: MACHINE_PARAMS,
        body: {
          type: 'object',
          properties: { tags: { type: 'array', maxItems: MAX_TAGS, items: { type: 'string', pattern: TAG_PATTERN } } },
          required: ['tags'],
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      await machineState(req, req.params.id);
      return { id: req.params.id, tags: await db.transaction((tx) => setTags(tx, req.params.id, req.body.tags)) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id/slots',
    { preHandler: need('viewer'), schema: { summary: "A machine's slots as it last reported them (stock, capacity, price, faults), sold-out ones included", tags: ['fleet'], params: MACHINE_PARAMS } },
    async (req) => {
      const s = await readMachineState(req, req.params.id);
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
        params: MACHINE_PARAMS,
        querystring: { type: 'object', properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } }, additionalProperties: false },
      },
    },
    async (req) => {
      await readMachineState(req, req.params.id);
      const to = req.query.to !== undefined ? dateTime(req.query.to, 'to') : new Date();
      const from = req.query.from !== undefined ? dateTime(req.query.from, 'from') : new Date(to.getTime() - 86400000);
      if (from > to) throw new HttpError('bad-request', '"from" is after "to"');
      return { from: from.toISOString(), to: to.toISOString(), ...(await salesBySlot(reads, req.params.id, from, to)) };
    },
  );

  app.post<{ Body: { id: string; operator?: string } }>(
    '/machines',
    {
      preHandler: need('admin'),
      schema: {
        summary:
          "Provision a machine for the token's operator (a platform admin names it; default 'default'): returns its command key for the machine's configuration (shown to admins only). Machine ids are one namespace: an id another operator has is not found (404).",
        tags: ['fleet'],
        body: { type: 'object', properties: { id: MACHINE_ID, operator: OPERATOR_PARAM }, required: ['id'], additionalProperties: false },
      },
    },
    async (req, reply) => {
      const operator = await owner(req, req.body.operator);
      return reply.code(201).send({ id: req.body.id, operator, ...(await commands.provision(req.body.id, { operator })) });
    },
  );
}
