/**
 * The dashboard's restocking route panel (browser side): the route form's
 * answer for one van (GET /route) or several (GET /routes), each stop with
 * why it is visited, its times and pick list, what to load, what waits; the
 * route is also handed to the map (map.ts) to draw. Drawn with the page's own
 * helpers (app.ts hands them over).
 */
import type { MapRoute } from './map.js';
import type { PanelTools } from './rollouts.js';

export interface RouteTools extends PanelTools {
  /** Draws the planned vans on the fleet map. */
  drawRoute(route: MapRoute): void;
}

/** Why a machine is on the route (gateway/restock/plan.ts VisitReason, dates as ISO text). */
type VisitReason = { kind: 'listed' } | { kind: 'empty' | 'fault'; slot: string } | { kind: 'runs-out'; slot: string; emptyAt: string };

/** The reasons in words: "asked for", "A1 empty", "B2 fault", "C1 runs out Fri 14:00". */
function reasonText(reasons: readonly VisitReason[]): string {
  return reasons
    .map((r) => {
      if (r.kind === 'listed') return 'asked for';
      if (r.kind === 'runs-out') {
        const at = new Date(r.emptyAt);
        return `${r.slot} runs out ${Number.isNaN(at.getTime()) ? 'soon' : at.toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' })}`;
      }
      return `${r.slot} ${r.kind}`;
    })
    .join(', ');
}

/** A pick line: `name` is the catalog product's (else the machine's own label; absent from older gateways). */
interface PickLine {
  slot: string;
  name?: string | null;
  product: string | null;
  load: number;
}
/** A line of the van's load: one per catalog product (its SKU), else per machine label. */
interface Total {
  name?: string | null;
  catalogSku?: string | null;
  product: string | null;
  units: number;
}

interface RouteAnswer {
  stops: { stop: number; machine: string; legKm: number; reasons: VisitReason[]; picklist: { lines: PickLine[]; units: number } }[];
  totalKm: number;
  units: number;
  totals: Total[];
  unlocated: { machine: string }[];
}

/** What goes into a slot: "A1 Cola 330ml +8" (the slot code alone when nothing names it). */
const pickText = (x: PickLine): string => `${x.slot}${(x.name ?? x.product) ? ` ${x.name ?? x.product}` : ''} +${x.load}`;
/** A load line: "Cola 330ml (SKU COLA-330) 12". */
const totalText = (t: Total): string => `${t.name ?? t.product ?? 'unnamed'}${t.catalogSku ? ` (SKU ${t.catalogSku})` : ''} ${t.units}`;

interface VansAnswer {
  vans: {
    van: number;
    stops: (RouteAnswer['stops'][number] & { arriveMin: number; departMin: number; units: number; overCapacity: boolean })[];
    km: number;
    minutes: number;
    units: number;
    totals: Total[];
  }[];
  deferred: { machine: string; reason: string }[];
  unlocated: { machine: string }[];
}

/** Minutes from the start of the day as +H:MM. */
const dayClock = (min: number): string => `+${Math.floor(Math.round(min) / 60)}:${String(Math.round(min) % 60).padStart(2, '0')}`;

/** Several vans (GET /routes): per van its stops with times and what to load; then what waits. */
async function planVans(t: RouteTools, depot: string, days: string, vans: string): Promise<void> {
  const { api, $, el } = t;
  const out = $('#route');
  if (!depot) {
    out.replaceChildren(el('p', { class: 'error' }, 'Several vans leave from a depot: give it as lat,lon.'));
    return;
  }
  const r = await api<VansAnswer>(`/routes?days=${encodeURIComponent(days)}&depot=${encodeURIComponent(depot)}&vans=${encodeURIComponent(vans)}`);
  t.drawRoute({ depot: latLon(depot), vans: r.vans.map((v) => ({ van: v.van, machines: v.stops.map((s) => s.machine), back: true })) });
  out.replaceChildren();
  for (const v of r.vans) {
    const ol = el('ol');
    for (const s of v.stops) {
      const picks = s.picklist.lines.filter((x) => x.load > 0).map(pickText);
      const over = s.overCapacity ? ' (more than a van holds: a full load)' : '';
      ol.append(
        el('li', { 'data-stop': s.machine }, `${dayClock(s.arriveMin)}-${dayClock(s.departMin)} ${s.machine} (${s.legKm.toFixed(1)} km; ${reasonText(s.reasons)}): ${s.units} items${over}: ${picks.join(', ') || 'check only'}`),
      );
    }
    const load = v.totals.map(totalText).join(', ');
    const box = el('div', { class: 'van', 'data-van': String(v.van) });
    box.append(
      el('h3', {}, `Van ${v.van}: ${v.stops.length} stop${v.stops.length === 1 ? '' : 's'}, ${v.km.toFixed(1)} km, back at ${dayClock(v.minutes)}, ${v.units} items`),
      ol,
      el('p', {}, load ? `Load: ${load}` : 'Nothing to load.'),
    );
    out.append(box);
  }
  if (r.vans.length === 0) out.append(el('p', {}, 'No machine needs a visit.'));
  if (r.deferred.length > 0) out.append(el('p', { 'data-deferred': '' }, `Deferred: ${r.deferred.map((d) => `${d.machine} (${d.reason === 'out-of-reach' ? 'too far for a day' : 'no room in the vans'})`).join(', ')}`));
  if (r.unlocated.length > 0) out.append(el('p', { class: 'error' }, `No location: ${r.unlocated.map((u) => u.machine).join(', ')}`));
}

/** The depot as typed ("lat,lon"), for the map; null when it is not one. */
const latLon = (text: string): MapRoute['depot'] => {
  const [lat, lon] = text.split(',').map((x) => Number(x.trim()));
  return lat !== undefined && lon !== undefined && Number.isFinite(lat) && Number.isFinite(lon) && text.includes(',') ? { lat, lon } : null;
};

/** The route form's answer: one van (GET /route) or several (GET /routes), drawn in #route and on the map. */
async function planRoute(t: RouteTools): Promise<void> {
  const { api, $, el } = t;
  const out = $('#route');
  const field = (sel: string): string => ($(sel) as HTMLInputElement).value.trim();
  const depot = field('#depot');
  const days = field('#days');
  const vans = field('#vans');
  try {
    if (vans !== '' && vans !== '1') return await planVans(t, depot, days, vans);
    const r = await api<RouteAnswer>(`/route?days=${encodeURIComponent(days)}${depot ? `&depot=${encodeURIComponent(depot)}` : ''}`);
    t.drawRoute({ depot: latLon(depot), vans: [{ van: 1, machines: r.stops.map((s) => s.machine), back: false }] });
    out.replaceChildren();
    const ol = el('ol');
    for (const s of r.stops) {
      const picks = s.picklist.lines.filter((x) => x.load > 0).map(pickText);
      ol.append(el('li', { 'data-stop': s.machine }, `${s.machine} (${s.legKm.toFixed(1)} km; ${reasonText(s.reasons)}): ${picks.join(', ') || 'check only'}`));
    }
    const van = r.totals.map(totalText).join(', ');
    out.append(
      el('p', { 'data-route-km': r.totalKm.toFixed(1) }, `${r.stops.length} stops, ${r.totalKm.toFixed(1)} km, ${r.units} items to load`),
      ol,
      el('p', {}, van ? `Load the van: ${van}` : 'Nothing to load.'),
    );
    if (r.unlocated.length > 0) out.append(el('p', { class: 'error' }, `No location: ${r.unlocated.map((u) => u.machine).join(', ')}`));
  } catch (e) {
    out.replaceChildren(el('p', { class: 'error' }, (e as Error).message));
  }
}

export function routePanel(t: RouteTools): { plan(): Promise<void> } {
  return { plan: () => planRoute(t) };
}
