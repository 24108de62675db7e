/**
 * Restocking over the operator API (docs/restocking.md): machine locations,
 * a machine's pick list and forecast (when each slot runs out), and a route:
 * the machines that need a visit before the next one, in driving order from
 * the depot, each with its pick list, and what to load into the van. A
 * token plans with and sees its operator's machines only (docs/tenants.md).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SlotForecast } from '../restock/forecast.js';
import { slotProducts } from '../catalog/planogram.js';
import { pickList } from '../restock/picklist.js';
import { DEFAULT_WINDOW_DAYS, forecastMachines, planRestockRoute, type RoutePlan, type Visit, type VisitReason } from '../restock/plan.js';
import type { Point } from '../restock/route.js';
import { planVans } from '../restock/vans.js';
import { loadLocations, loadMachines, setLocation, type Location, type MachineRow } from '../restock/store.js';
import { HttpError } from './errors.js';
import { ERROR, MACHINE_ID, SLOT_CODE, type RouteContext } from './http.js';

const NULLABLE_STRING = { type: ['string', 'null'] } as const;
const NULLABLE_NUMBER = { type: ['number', 'null'] } as const;
const NULLABLE_TIME = { type: ['string', 'null'], format: 'date-time' } as const;
const TIME = { type: 'string', format: 'date-time' } as const;
const PARAMS = { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] } as const;
const ERRORS = { 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR } as const;
const WINDOW_DAYS = { type: 'integer', minimum: 1, maximum: 365, default: DEFAULT_WINDOW_DAYS, description: 'Days of sales the rates are estimated from' } as const;

const LOCATION = {
  type: 'object',
  properties: { machine: { type: 'string' }, lat: NULLABLE_NUMBER, lon: NULLABLE_NUMBER, address: NULLABLE_STRING },
  required: ['machine', 'lat', 'lon', 'address'],
} as const;

const PICK_LINE = {
  type: 'object',
  properties: {
    slot: { type: 'string' },
    name: { ...NULLABLE_STRING, description: "What to put in: the catalog product's name when the planogram assigns one to the slot, else the machine's own label" },
    catalogSku: { ...NULLABLE_STRING, description: "The catalog product's SKU (null: no product assigned)" },
    product: { ...NULLABLE_STRING, description: "The machine's own label for the slot" },
    sku: { ...NULLABLE_NUMBER, description: "The machine's own item number for the slot" },
    qty: { type: 'integer' },
    capacity: NULLABLE_NUMBER,
    load: { type: 'integer', description: 'Items to put in: capacity - qty' },
    fault: { type: 'boolean', description: 'Out of service: clear the fault while refilling' },
  },
} as const;

const PICK_LIST = {
  type: 'object',
  properties: {
    lines: { type: 'array', items: PICK_LINE },
    units: { type: 'integer' },
    faults: { type: 'array', items: { type: 'string' } },
    capacityUnknown: { type: 'array', items: { type: 'string' } },
  },
} as const;

const SLOT_FORECAST = {
  type: 'object',
  properties: {
    slot: { type: 'string' },
    product: NULLABLE_STRING,
    qty: { type: 'integer' },
    capacity: NULLABLE_NUMBER,
    fault: { type: 'boolean' },
    sales: { type: 'integer', description: 'Sales in the window' },
    ratePerDay: { type: 'number', description: 'Expected sales per day, averaged over the week' },
    emptyAt: { ...NULLABLE_TIME, description: 'When it is expected to be empty; null when it does not sell (or is out of service)' },
    daysLeft: { ...NULLABLE_NUMBER, description: 'Days from now until emptyAt (0: probably empty already)' },
  },
} as const;

const REASON = {
  type: 'object',
  properties: { kind: { type: 'string', enum: ['listed', 'empty', 'fault', 'runs-out'] }, slot: SLOT_CODE, emptyAt: TIME },
  required: ['kind'],
} as const;

const VISIT_PROPERTIES = {
  machine: { type: 'string' },
  reasons: { type: 'array', items: REASON },
  firstEmptyAt: NULLABLE_TIME,
  asOf: { ...NULLABLE_TIME, description: 'When the machine reported the stock the pick list is from' },
  picklist: PICK_LIST,
} as const;

const STOP = {
  type: 'object',
  properties: {
    stop: { type: 'integer' },
    ...VISIT_PROPERTIES,
    lat: { type: 'number' },
    lon: { type: 'number' },
    address: NULLABLE_STRING,
    legKm: { type: 'number', description: 'Great-circle km from the previous stop (the depot for the first)' },
  },
} as const;

const ROUTE = {
  type: 'object',
  properties: {
    generatedAt: TIME,
    days: { type: 'number' },
    windowDays: { type: 'integer' },
    depot: { type: ['object', 'null'], properties: { lat: { type: 'number' }, lon: { type: 'number' } } },
    returnToDepot: { type: 'boolean' },
    stops: { type: 'array', items: STOP },
    returnKm: { type: 'number' },
    totalKm: { type: 'number' },
    units: { type: 'integer' },
    totals: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          key: { type: 'string', description: 'catalog:<SKU> for a catalog product, else sku:<n> (the machines\' item number), product:<label> or unnamed' },
          name: { ...NULLABLE_STRING, description: "The catalog product's name, else the machines' label" },
          catalogSku: NULLABLE_STRING,
          sku: NULLABLE_NUMBER,
          product: NULLABLE_STRING,
          units: { type: 'integer' },
          slots: { type: 'integer' },
          machines: { type: 'integer' },
        },
      },
    },
    unlocated: { type: 'array', items: { type: 'object', properties: VISIT_PROPERTIES }, description: 'Machines that need a visit but have no location (PUT /machines/{id}/location): not in the route' },
  },
} as const;

const VAN_STOP = {
  type: 'object',
  properties: {
    ...STOP.properties,
    arriveMin: { type: 'number', description: 'Minutes from the start of the day (leaving the depot at 0)' },
    departMin: { type: 'number', description: 'arriveMin plus the service time' },
    units: { type: 'integer', description: 'Items this stop takes from the van (its pick list, at most a van load)' },
    overCapacity: { type: 'boolean', description: 'Its pick list needs more than a van carries: a full load goes, the rest waits' },
  },
} as const;

const VANS = {
  type: 'object',
  properties: {
    generatedAt: TIME,
    days: { type: 'number' },
    windowDays: { type: 'integer' },
    depot: { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } } },
    vans: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          van: { type: 'integer' },
          stops: { type: 'array', items: VAN_STOP },
          returnKm: { type: 'number' },
          km: { type: 'number' },
          minutes: { type: 'number', description: 'Back at the depot, minutes from the start of the day' },
          units: { type: 'integer' },
          totals: ROUTE.properties.totals,
        },
      },
    },
    deferred: {
      type: 'array',
      description: 'Visits left for later, least urgent last: out-of-reach (alone it does not fit a day) or no-room (the vans are full, by load or hours)',
      items: { type: 'object', properties: { ...VISIT_PROPERTIES, lat: { type: 'number' }, lon: { type: 'number' }, address: NULLABLE_STRING, reason: { type: 'string', enum: ['out-of-reach', 'no-room'] } } },
    },
    unlocated: ROUTE.properties.unlocated,
    km: { type: 'number' },
    units: { type: 'integer' },
  },
} as const;

const round = (x: number, places: number): number => Math.round(x * 10 ** places) / 10 ** places;

function forecastJson(s: SlotForecast): Record<string, unknown> {
  return { ...s, ratePerDay: round(s.ratePerDay, 3), emptyAt: s.emptyAt?.toISOString() ?? null, daysLeft: s.daysLeft === null ? null : round(s.daysLeft, 2) };
}

function reasonJson(r: VisitReason): Record<string, unknown> {
  return r.kind === 'runs-out' ? { ...r, emptyAt: r.emptyAt.toISOString() } : r;
}

function visitJson(v: Visit): Record<string, unknown> {
  return { machine: v.machine, reasons: v.reasons.map(reasonJson), firstEmptyAt: v.firstEmptyAt?.toISOString() ?? null, asOf: v.asOf?.toISOString() ?? null, picklist: v.picklist };
}

function locationJson(machine: string, l: Location | null): Record<string, unknown> {
  return { machine, lat: l?.lat ?? null, lon: l?.lon ?? null, address: l?.address ?? null };
}

/** A planned route as GET /route answers it (and as a driver link keeps it). */
export function routeJson(plan: RoutePlan): Record<string, unknown> {
  return {
    generatedAt: plan.generatedAt.toISOString(),
    days: plan.days,
    windowDays: plan.windowDays,
    depot: plan.depot,
    returnToDepot: plan.returnToDepot,
    stops: plan.stops.map((s) => ({ stop: s.stop, ...visitJson(s), lat: s.location.lat, lon: s.location.lon, address: s.location.address, legKm: round(s.legKm, 3) })),
    returnKm: round(plan.returnKm, 3),
    totalKm: round(plan.totalKm, 3),
    units: plan.units,
    totals: plan.totals,
    unlocated: plan.unlocated.map(visitJson),
  };
}

/** "lat,lon" in degrees, or a 400. */
export function parseDepot(s: string): Point {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/.exec(s);
  const lat = Number(m?.[1]);
  const lon = Number(m?.[2]);
  if (!m || !(lat >= -90 && lat <= 90) || !(lon >= -180 && lon <= 180)) throw new HttpError('bad-request', '"depot" is LAT,LON in degrees (-90 to 90, -180 to 180), e.g. 41.8781,-87.6298');
  return { lat, lon };
}

export async function registerRestockRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, need, scope } = ctx;

  async function machine(req: FastifyRequest, id: string): Promise<MachineRow> {
    const m = (await loadMachines(db, [id], scope(req)))[0];
    if (!m) throw new HttpError('unknown-machine', `no machine "${id}"`);
    return m;
  }

  app.put<{ Params: { id: string }; Body: { lat: number; lon: number; address?: string | null } }>(
    '/machines/:id/location',
    {
      preHandler: need('operator'),
      schema: {
        summary: "Set a machine's location (WGS 84 degrees) and address, for restocking routes and the map",
        tags: ['restocking'],
        params: PARAMS,
        body: {
          type: 'object',
          properties: {
            lat: { type: 'number', minimum: -90, maximum: 90 },
            lon: { type: 'number', minimum: -180, maximum: 180 },
            address: { type: ['string', 'null'], maxLength: 200 },
          },
          required: ['lat', 'lon'],
          additionalProperties: false,
        },
        response: { 200: LOCATION, ...ERRORS },
      },
    },
    async (req) => {
      const address = req.body.address === undefined || req.body.address === null || req.body.address.trim() === '' ? null : req.body.address.trim();
      const l = await setLocation(db, req.params.id, { lat: req.body.lat, lon: req.body.lon, address }, scope(req));
      return locationJson(req.params.id, l);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id/location',
    { preHandler: need('viewer'), schema: { summary: "A machine's location (null when not set)", tags: ['restocking'], params: PARAMS, response: { 200: LOCATION, ...ERRORS } } },
    async (req) => locationJson(req.params.id, (await machine(req, req.params.id)).location),
  );

  app.get(
    '/locations',
    {
      preHandler: need('viewer'),
      schema: { summary: 'Every machine with its location (null when not set), for the map', tags: ['restocking'], response: { 200: { type: 'object', properties: { machines: { type: 'array', items: LOCATION } } }, ...ERRORS } },
    },
    async (req) => ({ machines: (await loadLocations(db, scope(req))).map((m) => locationJson(m.id, m.location)) }),
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id/picklist',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'What to load into each slot (capacity minus the stock last reported); out-of-service slots flagged',
        tags: ['restocking'],
        params: PARAMS,
        response: { 200: { type: 'object', properties: { machine: { type: 'string' }, asOf: NULLABLE_TIME, ...PICK_LIST.properties } }, ...ERRORS },
      },
    },
    async (req) => {
      const m = await machine(req, req.params.id);
      return { machine: m.id, asOf: m.telemetryAt?.toISOString() ?? null, ...pickList(m.slots, (await slotProducts(db, [m.id])).get(m.id)) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { windowDays: number } }>(
    '/machines/:id/forecast',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'When each slot is expected to run out, from its sales rate by hour of the week over the window',
        tags: ['restocking'],
        params: PARAMS,
        querystring: { type: 'object', properties: { windowDays: WINDOW_DAYS }, additionalProperties: false },
        response: {
          200: {
            type: 'object',
            properties: { machine: { type: 'string' }, asOf: NULLABLE_TIME, since: TIME, until: TIME, windowDays: { type: 'integer' }, slots: { type: 'array', items: SLOT_FORECAST } },
          },
          ...ERRORS,
        },
      },
    },
    async (req) => {
      const m = await machine(req, req.params.id);
      const f = (await forecastMachines(db, [m], { windowDays: req.query.windowDays })).get(m.id)!;
      return { machine: m.id, asOf: f.asOf?.toISOString() ?? null, since: f.since.toISOString(), until: f.until.toISOString(), windowDays: req.query.windowDays, slots: f.slots.map(forecastJson) };
    },
  );

  app.get<{ Querystring: { depot?: string; days: number; machines?: string; windowDays: number; return: boolean } }>(
    '/route',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'A restocking route: the machines that need a visit before the next one (or the ones listed), in driving order from the depot, with pick lists and the van totals',
        tags: ['restocking'],
        querystring: {
          type: 'object',
          properties: {
            depot: { type: 'string', maxLength: 64, description: 'LAT,LON of the depot; without it the route is an open path' },
            days: { type: 'number', minimum: 0, maximum: 90, default: 7, description: 'Days until the next visit: machines with a slot predicted to run out before then are included' },
            machines: { type: 'string', maxLength: 8192, pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(,[A-Za-z0-9][A-Za-z0-9_-]{0,63})*$', description: 'Exactly these machines (comma-separated) instead of the ones that need a visit' },
            windowDays: WINDOW_DAYS,
            return: { type: 'boolean', default: true, description: 'Come back to the depot' },
          },
          additionalProperties: false,
        },
        response: { 200: ROUTE, ...ERRORS },
      },
    },
    async (req) => {
      const depot = req.query.depot === undefined ? undefined : parseDepot(req.query.depot);
      const plan = await planRestockRoute(db, {
        depot,
        days: req.query.days,
        machines: req.query.machines?.split(','),
        returnToDepot: req.query.return,
        windowDays: req.query.windowDays,
        operator: scope(req),
      });
      return routeJson(plan);
    },
  );

  app.get<{ Querystring: { depot: string; vans: number; capacity: number; hours: number; speed: number; service: number; days: number; windowDays: number } }>(
    '/routes',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'Restocking routes for several vans: the machines that need a visit shared among the vans within their capacity and a working day, the least urgent deferred when they do not all fit',
        tags: ['restocking'],
        querystring: {
          type: 'object',
          properties: {
            depot: { type: 'string', maxLength: 64, description: 'LAT,LON of the depot every van leaves from and returns to' },
            vans: { type: 'integer', minimum: 1, maximum: 50, description: 'How many vans' },
            capacity: { type: 'integer', minimum: 1, maximum: 100000, default: 600, description: 'Items one van carries' },
            hours: { type: 'number', exclusiveMinimum: 0, maximum: 24, default: 8, description: 'A working day, depot to depot' },
            speed: { type: 'number', exclusiveMinimum: 0, maximum: 200, default: 40, description: 'Average driving speed, km/h over great-circle distances' },
            service: { type: 'number', minimum: 0, maximum: 240, default: 15, description: 'Minutes at each stop' },
            days: { type: 'number', minimum: 0, maximum: 90, default: 7, description: 'Days until the next visit: machines with a slot predicted to run out before then are included' },
            windowDays: WINDOW_DAYS,
          },
          required: ['depot', 'vans'],
          additionalProperties: false,
        },
        response: { 200: VANS, ...ERRORS },
      },
    },
    async (req) => {
      const q = req.query;
      const plan = await planVans(db, {
        depot: parseDepot(q.depot),
        vans: q.vans,
        capacity: q.capacity,
        hours: q.hours,
        speedKmh: q.speed,
        serviceMin: q.service,
        days: q.days,
        windowDays: q.windowDays,
        operator: scope(req),
      });
      const place = (l: Location) => ({ lat: l.lat, lon: l.lon, address: l.address });
      return {
        generatedAt: plan.generatedAt.toISOString(),
        days: plan.days,
        windowDays: plan.windowDays,
        depot: plan.depot,
        vans: plan.vans.map((v) => ({
          van: v.van,
          stops: v.stops.map((s) => ({
            stop: s.stop,
            ...visitJson(s),
            ...place(s.location),
            legKm: round(s.legKm, 3),
            arriveMin: round(s.arriveMin, 1),
            departMin: round(s.departMin, 1),
            units: s.units,
            overCapacity: s.overCapacity,
          })),
          returnKm: round(v.returnKm, 3),
          km: round(v.km, 3),
          minutes: round(v.minutes, 1),
          units: v.units,
          totals: v.totals,
        })),
        deferred: plan.deferred.map((d) => ({ ...visitJson(d), ...place(d.location), reason: d.reason })),
        unlocated: plan.unlocated.map(visitJson),
        km: round(plan.km, 3),
        units: plan.units,
      };
    },
  );
}
