/**
 * Restocking with several vans at once: the machines that need a visit
 * (restockVisits), shared among K vans so that each van's load fits its
 * capacity and each route fits a working day (driving at a set speed plus a
 * service time per stop), by the CVRP heuristic in vrp.ts. When the day or
 * the vans cannot hold every visit, the ones that can wait longest are
 * deferred (reported, not silently dropped): machines already empty or out
 * of service first kept, then by when they are predicted to run out.
 */
import type { Queryable } from '../store/db.js';
import { vanTotals, type ProductTotal } from './picklist.js';
import { restockVisits, type Visit } from './plan.js';
import { EXACT_MAX, haversineKm, planRoute, type Point } from './route.js';
import type { Location } from './store.js';
import { solveVrp } from './vrp.js';

export interface VansRequest {
  depot: Point;
  vans: number;
  /** Items one van carries. */
  capacity: number;
  /** A working day, depot to depot. */
  hours: number;
  speedKmh: number;
  serviceMin: number;
  /** Days until the next visit (as for one route). */
  days: number;
  windowDays?: number | undefined;
  now?: Date | undefined;
  operator?: string | null | undefined;
}

export interface VanStop extends Visit {
  stop: number;
  location: Location;
  legKm: number;
  /** Minutes from the start of the day (leaving the depot at 0). */
  arriveMin: number;
  departMin: number;
  /** Items this stop takes from the van: its pick list's units, at most a van's capacity. */
  units: number;
  /** Its pick list needs more than a van carries: the van brings a full load, the rest waits. */
  overCapacity: boolean;
}

export interface Van {
  van: number;
  stops: VanStop[];
  returnKm: number;
  km: number;
  /** Back at the depot, minutes from the start of the day. */
  minutes: number;
  units: number;
  totals: ProductTotal[];
}

/** Why a visit is not in today's plan: it alone does not fit a day, or the vans are full (load or hours). */
export type DeferReason = 'out-of-reach' | 'no-room';

export interface Deferred extends Visit {
  location: Location;
  reason: DeferReason;
}

export interface VansPlan {
  generatedAt: Date;
  days: number;
  windowDays: number;
  depot: Point;
  vans: Van[];
  deferred: Deferred[];
  unlocated: Visit[];
  km: number;
  units: number;
}

type Located = Visit & { location: Location };

/** Empty or out of service now comes before any prediction; then the soonest empty; never-empty last. */
function urgency(a: Located, b: Located): number {
  const now = (v: Visit): number => (v.reasons.some((r) => r.kind === 'empty' || r.kind === 'fault') ? 0 : 1);
  const at = (v: Visit): number => v.firstEmptyAt?.getTime() ?? Number.POSITIVE_INFINITY;
  return now(a) - now(b) || at(a) - at(b) || (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0);
}

/** The km a route of `stops` stops may drive in a day. */
export function dayKm(req: Pick<VansRequest, 'hours' | 'speedKmh' | 'serviceMin'>, stops: number): number {
  return Math.max(0, (req.hours - (stops * req.serviceMin) / 60) * req.speedKmh);
}

const unitsOf = (v: Visit, capacity: number): number => Math.min(v.picklist.units, capacity);

/** Routes (indices into `stops`) for these stops, or null when they need more than `vans` vans. */
function solve(req: VansRequest, stops: readonly Located[]): number[][] | null {
  if (stops.length === 0) return [];
  const total = stops.reduce((a, s) => a + unitsOf(s, req.capacity), 0);
  if (total > req.vans * req.capacity) return null;
  const points: Point[] = [req.depot, ...stops.map((s) => s.location)];
  const demand = new Float64Array(points.length);
  stops.forEach((s, i) => (demand[i + 1] = unitsOf(s, req.capacity)));
  const { routes } = solveVrp({
    n: points.length,
    dist: (a, b) => haversineKm(points[a]!, points[b]!),
    demand,
    capacity: req.capacity,
    maxRouteLength: (k) => dayKm(req, k),
  });
  return routes.length <= req.vans ? routes.map((r) => r.map((i) => i - 1)) : null;
}

export async function planVans(db: Queryable, req: VansRequest): Promise<VansPlan> {
  const { now, windowDays, visits } = await restockVisits(db, { days: req.days, windowDays: req.windowDays, now: req.now, operator: req.operator });
  const located = visits.filter((v): v is Located => v.location !== null).sort(urgency);
  const deferred: Deferred[] = [];
  // A stop that does not fit a day even alone (there and back plus its service) cannot be planned at all.
  const reachable: Located[] = [];
  for (const v of located) {
    if (2 * haversineKm(req.depot, v.location) > dayKm(req, 1) + 1e-9) deferred.push({ ...v, reason: 'out-of-reach' });
    else reachable.push(v);
  }
  // The most urgent `kept` visits that the vans can do: the largest such prefix, by bisection
  // (a prefix that fits stays fitting when shortened, up to the heuristic's noise).
  let routes = solve(req, reachable);
  let kept = reachable.length;
  if (!routes) {
    let lo = 0;
    let hi = reachable.length - 1;
    let units = 0;
    // Never more items than the vans carry together: a cheap bound before solving.
    for (let i = 0; i <= hi; i++) {
      units += unitsOf(reachable[i]!, req.capacity);
      if (units > req.vans * req.capacity) {
        hi = Math.min(hi, i);
        break;
      }
    }
    // The routes of the longest prefix that fitted (none fitted: none).
    let best: number[][] = [];
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const r = solve(req, reachable.slice(0, mid));
      if (r) {
        lo = mid;
        best = r;
      } else hi = mid - 1;
    }
    kept = lo;
    routes = best;
    for (const v of reachable.slice(kept)) deferred.push({ ...v, reason: 'no-room' });
  }
  const plan = reachable.slice(0, kept);
  const vans: Van[] = routes.map((route, k) => {
    let order = route;
    // A short route is ordered exactly (Held-Karp): never longer than the heuristic's, so the day still fits.
    if (route.length <= EXACT_MAX) order = planRoute(route.map((i) => plan[i]!.location), { depot: req.depot }).order.map((j) => route[j]!);
    let at = req.depot;
    let clock = 0;
    let km = 0;
    const stops = order.map((i, n): VanStop => {
      const v = plan[i]!;
      const legKm = haversineKm(at, v.location);
      at = v.location;
      km += legKm;
      const arriveMin = clock + (legKm / req.speedKmh) * 60;
      clock = arriveMin + req.serviceMin;
      return { ...v, stop: n + 1, legKm, arriveMin, departMin: clock, units: unitsOf(v, req.capacity), overCapacity: v.picklist.units > req.capacity };
    });
    const returnKm = haversineKm(at, req.depot);
    const totals = vanTotals(stops.map((s) => ({ machine: s.machine, list: s.picklist })));
    return {
      van: k + 1,
      stops,
      returnKm,
      km: km + returnKm,
      minutes: clock + (returnKm / req.speedKmh) * 60,
      units: stops.reduce((a, s) => a + s.units, 0),
      totals,
    };
  });
  // Deferred: the least urgent last, as the plan would have taken them.
  deferred.sort(urgency);
  return {
    generatedAt: now,
    days: req.days,
    windowDays,
    depot: req.depot,
    vans,
    deferred,
    unlocated: visits.filter((v) => v.location === null),
    km: vans.reduce((a, v) => a + v.km, 0),
    units: vans.reduce((a, v) => a + v.units, 0),
  };
}
