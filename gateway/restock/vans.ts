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

export type Located = Visit & { location: Location };

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

export const unitsOf = (v: Visit, capacity: number): number => Math.min(v.picklist.units, capacity);

/** Routes with their km, stops and units, for cheap what-ifs (removing or inserting one stop). */
interface Draft {
  stops: number[];
  km: number;
  units: number;
}

const legKm = (req: VansRequest, stops: readonly Located[], a: number, b: number): number =>
  haversineKm(a < 0 ? req.depot : stops[a]!.location, b < 0 ? req.depot : stops[b]!.location);

function drafts(req: VansRequest, stops: readonly Located[], routes: readonly number[][]): Draft[] {
  return routes.map((r) => {
    let km = 0;
    let at = -1;
    for (const i of r) {
      km += legKm(req, stops, at, i);
      at = i;
    }
    return { stops: [...r], km: km + legKm(req, stops, at, -1), units: r.reduce((a, i) => a + unitsOf(stops[i]!, req.capacity), 0) };
  });
}

/**
 * How many of the most urgent stops the vans can probably take, from a solution that needs too many vans:
 * the least urgent stops come out one by one (each saving its detour, d(prev, it) + d(it, next) - d(prev, next),
 * and its service time) until the routes' driving and service time fits the vans' days and their load the vans.
 * An estimate (the routes left are not merged): the solve that follows says whether it fits.
 */
function estimateFit(req: VansRequest, stops: readonly Located[], routes: readonly number[][], upTo: number): number {
  const d = drafts(req, stops, routes);
  const where = new Map<number, { r: number; prev: number; next: number }>();
  d.forEach((r, k) => r.stops.forEach((i, j) => where.set(i, { r: k, prev: j > 0 ? r.stops[j - 1]! : -1, next: j + 1 < r.stops.length ? r.stops[j + 1]! : -1 })));
  const dayMin = req.hours * 60;
  const minutes = (): number => d.reduce((a, r) => a + (r.stops.length > 0 ? (r.km / req.speedKmh) * 60 + r.stops.length * req.serviceMin : 0), 0);
  let total = minutes();
  let units = d.reduce((a, r) => a + r.units, 0);
  let n = upTo;
  while (n > 0 && (total > req.vans * dayMin + 1e-9 || units > req.vans * req.capacity)) {
    n -= 1;
    const w = where.get(n);
    if (!w) continue;
    const r = d[w.r]!;
    const saving = legKm(req, stops, w.prev, n) + legKm(req, stops, n, w.next) - legKm(req, stops, w.prev, w.next);
    r.stops.splice(r.stops.indexOf(n), 1);
    if (w.prev >= 0) where.get(w.prev)!.next = w.next;
    if (w.next >= 0) where.get(w.next)!.prev = w.prev;
    const before = (r.km / req.speedKmh) * 60 + (r.stops.length + 1) * req.serviceMin;
    r.km = r.stops.length > 0 ? r.km - saving : 0;
    total += (r.stops.length > 0 ? (r.km / req.speedKmh) * 60 + r.stops.length * req.serviceMin : 0) - before;
    units -= unitsOf(stops[n]!, req.capacity);
  }
  return n;
}

/** Put stop `i` where it adds the fewest km and still fits a van (load and day), or in an unused van; false when nowhere. */
function insertCheapest(req: VansRequest, stops: readonly Located[], d: Draft[], i: number): boolean {
  const u = unitsOf(stops[i]!, req.capacity);
  let best: { r: number; at: number; add: number } | undefined;
  d.forEach((r, k) => {
    if (r.units + u > req.capacity) return;
    const limit = dayKm(req, r.stops.length + 1);
    for (let j = 0; j <= r.stops.length; j++) {
      const a = j > 0 ? r.stops[j - 1]! : -1;
      const b = j < r.stops.length ? r.stops[j]! : -1;
      const add = legKm(req, stops, a, i) + legKm(req, stops, i, b) - legKm(req, stops, a, b);
      if (r.km + add <= limit + 1e-9 && (!best || add < best.add)) best = { r: k, at: j, add };
    }
  });
  if (!best && d.length < req.vans && 2 * legKm(req, stops, -1, i) <= dayKm(req, 1) + 1e-9) {
    d.push({ stops: [i], km: 2 * legKm(req, stops, -1, i), units: u });
    return true;
  }
  if (!best) return false;
  const r = d[best.r]!;
  r.stops.splice(best.at, 0, i);
  r.km += best.add;
  r.units += u;
  return true;
}

/**
 * The most urgent `kept` visits that the vans can do (the longest such prefix, up to the heuristic's noise)
 * and their routes. Solved once for every visit the vans could carry; when that needs more vans, the least
 * urgent come out as estimateFit says and it is solved again (rarely more than twice), then the next visits
 * go in one by one where they fit (cheapest insertion) until one does not, and the kept ones are solved once more.
 * This replaced a bisection over full solves, which took a dozen solves when many visits wait.
 */
export function fitPrefix(req: VansRequest, reachable: readonly Located[]): { kept: number; routes: number[][]; solves: number } {
  // Never more items than the vans carry together: a cheap bound before solving.
  let hi = reachable.length;
  let units = 0;
  for (let i = 0; i < reachable.length; i++) {
    units += unitsOf(reachable[i]!, req.capacity);
    if (units > req.vans * req.capacity) {
      hi = i;
      break;
    }
  }
  // Nor more hours than the vans have: each stop takes its service and at least the drive from its nearest
  // other point (the depot or a stop of the first `hi`, the only ones a plan can hold) — a lower bound of any
  // route through it, so the bound never cuts a prefix that fits. Walked only as far as the hours last.
  const byLoad = hi;
  let minutes = 0;
  for (let i = 0; i < hi; i++) {
    let nearest = legKm(req, reachable, -1, i);
    for (let j = 0; j < byLoad; j++) if (j !== i) nearest = Math.min(nearest, legKm(req, reachable, i, j));
    minutes += req.serviceMin + (nearest / req.speedKmh) * 60;
    if (minutes > req.vans * req.hours * 60 + 1e-9) {
      hi = i;
      break;
    }
  }
  let solves = 0;
  const attempt = (n: number): { routes: number[][]; fits: boolean } => {
    solves += 1;
    if (n === 0) return { routes: [], fits: true };
    const points: Point[] = [req.depot, ...reachable.slice(0, n).map((s) => s.location)];
    const demand = new Float64Array(points.length);
    for (let i = 0; i < n; i++) demand[i + 1] = unitsOf(reachable[i]!, req.capacity);
    const { routes } = solveVrp({ n: points.length, dist: (a, b) => haversineKm(points[a]!, points[b]!), demand, capacity: req.capacity, maxRouteLength: (k) => dayKm(req, k) });
    return { routes: routes.map((r) => r.map((i) => i - 1)), fits: routes.length <= req.vans };
  };
  let n = hi;
  let got = attempt(n);
  while (!got.fits) {
    // At least one fewer each time: the loop ends (n = 0 always fits).
    n = Math.min(n - 1, estimateFit(req, reachable, got.routes, n));
    got = attempt(n);
  }
  // Room left: the next visits one by one, while each finds a place.
  let d = drafts(req, reachable, got.routes);
  let kept = n;
  let routes = got.routes;
  while (kept < hi && insertCheapest(req, reachable, d, kept)) kept += 1;
  if (kept > n) {
    // Re-optimised with the visits added; the insertion's routes when the solve needs more vans.
    const again = attempt(kept);
    routes = again.fits ? again.routes : d.map((r) => r.stops);
  }
  // The estimate and the insertion are cautious (routes not merged, stops not moved): a few solves of a
  // longer prefix, a step an eighth of the kept halved on each miss, take what a full solve still fits.
  let step = Math.max(1, Math.round(kept / 8));
  for (let probes = 0; probes < 3 && kept < hi && step >= 1; probes++) {
    const to = Math.min(hi, kept + step);
    const more = attempt(to);
    if (more.fits) {
      kept = to;
      routes = more.routes;
      d = drafts(req, reachable, routes);
      while (kept < hi && insertCheapest(req, reachable, d, kept)) kept += 1;
      routes = d.map((r) => r.stops);
    } else step = Math.floor(step / 2);
  }
  return { kept, routes, solves };
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
  const { kept, routes } = fitPrefix(req, reachable);
  for (const v of reachable.slice(kept)) deferred.push({ ...v, reason: 'no-room' });
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
