/**
 * Restocking from the fleet store: each machine's forecast (its last
 * reported stock and its sales over the window), and a route: the machines
 * that need a visit before the next one (a slot empty, out of service, or
 * predicted to run out within `days`), or the ones asked for, in driving
 * order from the depot, each with its pick list, and the van's totals.
 */
import { slotProducts } from '../catalog/planogram.js';
import type { Queryable } from '../store/db.js';
import { DAY_MS, exposureHours, forecastMachine, HOUR_MS, type SlotForecast } from './forecast.js';
import { pickList, vanTotals, type PickList, type ProductTotal } from './picklist.js';
import { planRoute, type Point } from './route.js';
import { loadMachines, loadSalesCounts, RestockError, type Location, type MachineRow } from './store.js';

export const DEFAULT_WINDOW_DAYS = 28;

export interface MachineForecast {
  machine: string;
  /** When the machine reported the quantities the forecast starts from (null: it never did). */
  asOf: Date | null;
  /** The sales window: from the later of its start and the machine's provisioning, to now. */
  since: Date;
  until: Date;
  slots: SlotForecast[];
}

export interface ForecastOptions {
  now?: Date | undefined;
  windowDays?: number | undefined;
}

/** Forecasts for these machines (as loaded), in one sales query. */
export async function forecastMachines(db: Queryable, machines: readonly MachineRow[], options: ForecastOptions = {}): Promise<Map<string, MachineForecast>> {
  const now = options.now ?? new Date();
  const windowMs = (options.windowDays ?? DEFAULT_WINDOW_DAYS) * DAY_MS;
  const start = new Date(now.getTime() - windowMs);
  const sales = await loadSalesCounts(
    db,
    machines.map((m) => m.id),
    start,
    now,
  );
  const out = new Map<string, MachineForecast>();
  for (const m of machines) {
    // A machine provisioned a week ago has sold for a week, not four: its rate is per hour it existed.
    // At least an hour, so the first sales of a new machine do not make an absurd rate.
    const since = new Date(Math.min(now.getTime() - HOUR_MS, Math.max(start.getTime(), m.createdAt.getTime())));
    const from = m.telemetryAt && m.telemetryAt < now ? m.telemetryAt : now;
    out.set(m.id, {
      machine: m.id,
      asOf: m.telemetryAt,
      since,
      until: now,
      slots: forecastMachine({ slots: m.slots, sales: sales.get(m.id) ?? new Map(), exposure: exposureHours(since.getTime(), now.getTime()), from, now }),
    });
  }
  return out;
}

export type VisitReason = { kind: 'listed' } | { kind: 'empty'; slot: string } | { kind: 'fault'; slot: string } | { kind: 'runs-out'; slot: string; emptyAt: Date };

export interface Visit {
  machine: string;
  location: Location | null;
  reasons: VisitReason[];
  /** The earliest predicted empty time of a slot in service (or an empty one); null when none is predicted. */
  firstEmptyAt: Date | null;
  asOf: Date | null;
  picklist: PickList;
}

export interface Stop extends Visit {
  stop: number;
  location: Location;
  /** From the previous stop (the depot for the first; 0 for the first without a depot). */
  legKm: number;
}

export interface RouteRequest {
  depot?: Point | undefined;
  /** Days until the next visit: a slot predicted to run out before then needs this one. */
  days: number;
  /** Exactly these machines (else every machine that needs a visit). */
  machines?: readonly string[] | undefined;
  returnToDepot?: boolean | undefined;
  windowDays?: number | undefined;
  now?: Date | undefined;
  /** This operator's machines only (null or absent: every operator's); another's listed are unknown. */
  operator?: string | null | undefined;
}

export interface RoutePlan {
  generatedAt: Date;
  days: number;
  windowDays: number;
  depot: Point | null;
  returnToDepot: boolean;
  stops: Stop[];
  returnKm: number;
  totalKm: number;
  /** Items to load in all, and per product. */
  units: number;
  totals: ProductTotal[];
  /** Machines that need a visit (or were asked for) but have no location: not in the route, reported here with their pick lists. */
  unlocated: Visit[];
}

function reasonsFor(f: readonly SlotForecast[], until: number): VisitReason[] {
  const out: VisitReason[] = [];
  for (const s of f) {
    if (s.qty <= 0) out.push({ kind: 'empty', slot: s.slot });
    else if (s.fault) out.push({ kind: 'fault', slot: s.slot });
    else if (s.emptyAt && s.emptyAt.getTime() <= until) out.push({ kind: 'runs-out', slot: s.slot, emptyAt: s.emptyAt });
  }
  return out;
}

/** The machines that need a visit before the next one (or the ones listed), each with why and its pick list. */
export async function restockVisits(db: Queryable, req: Omit<RouteRequest, 'depot' | 'returnToDepot'>): Promise<{ now: Date; windowDays: number; visits: Visit[] }> {
  const now = req.now ?? new Date();
  const windowDays = req.windowDays ?? DEFAULT_WINDOW_DAYS;
  const listed = req.machines ? [...new Set(req.machines)] : undefined;
  const machines = await loadMachines(db, listed, req.operator ?? null);
  if (listed) {
    const known = new Set(machines.map((m) => m.id));
    const missing = listed.filter((id) => !known.has(id));
    if (missing.length > 0) throw new RestockError('unknown-machine', `no machine ${missing.map((x) => `"${x}"`).join(', ')}`);
  }
  const forecasts = await forecastMachines(db, machines, { now, windowDays });
  const until = now.getTime() + req.days * DAY_MS;
  const due: { m: MachineRow; reasons: VisitReason[]; firstEmptyAt: Date | null }[] = [];
  for (const m of machines) {
    const f = forecasts.get(m.id)!;
    const reasons: VisitReason[] = [...(listed ? [{ kind: 'listed' } as const] : []), ...reasonsFor(f.slots, until)];
    if (reasons.length === 0) continue;
    const times = f.slots.filter((s) => s.emptyAt !== null).map((s) => s.emptyAt!.getTime());
    due.push({ m, reasons, firstEmptyAt: times.length > 0 ? new Date(Math.min(...times)) : null });
  }
  // The catalog products of the machines visited only: their pick lists name what the driver loads.
  const products = await slotProducts(
    db,
    due.map((d) => d.m.id),
  );
  const visits: Visit[] = due.map(({ m, reasons, firstEmptyAt }) => ({
    machine: m.id,
    location: m.location,
    reasons,
    firstEmptyAt,
    asOf: m.telemetryAt,
    picklist: pickList(m.slots, products.get(m.id)),
  }));
  return { now, windowDays, visits };
}

export async function planRestockRoute(db: Queryable, req: RouteRequest): Promise<RoutePlan> {
  const { now, windowDays, visits } = await restockVisits(db, req);
  const located = visits.filter((v): v is Visit & { location: Location } => v.location !== null);
  const route = planRoute(
    located.map((v) => v.location),
    { depot: req.depot, returnToDepot: req.returnToDepot },
  );
  const stops: Stop[] = route.order.map((i, k) => ({ ...located[i]!, stop: k + 1, legKm: route.legsKm[k]! }));
  const totals = vanTotals(stops.map((s) => ({ machine: s.machine, list: s.picklist })));
  return {
    generatedAt: now,
    days: req.days,
    windowDays,
    depot: req.depot ?? null,
    returnToDepot: req.depot !== undefined && (req.returnToDepot ?? true),
    stops,
    returnKm: route.returnKm,
    totalKm: route.totalKm,
    units: totals.reduce((a, t) => a + t.units, 0),
    totals,
    unlocated: visits.filter((v) => v.location === null),
  };
}
