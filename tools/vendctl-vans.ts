/**
 * `vendctl vans`: the plan for several vans (GET /routes) as text for a
 * dispatcher: per van its stops in order with arrival times and what to put
 * in, then its load list; the deferred and unlocated machines last. The
 * tables of vendctl-table.ts show one list; this answer nests a list per van.
 */

interface Line {
  slot?: unknown;
  /** The catalog product's name, else the machine's label (gateway/restock/picklist.ts). */
  name?: unknown;
  product?: unknown;
  load?: unknown;
}
interface VanStop {
  stop?: unknown;
  machine?: unknown;
  legKm?: unknown;
  arriveMin?: unknown;
  departMin?: unknown;
  units?: unknown;
  overCapacity?: unknown;
  reasons?: { kind?: unknown; slot?: unknown }[];
  picklist?: { lines?: Line[] };
}
interface VanRow {
  van?: unknown;
  stops?: VanStop[];
  km?: unknown;
  minutes?: unknown;
  units?: unknown;
  totals?: { name?: unknown; catalogSku?: unknown; product?: unknown; sku?: unknown; units?: unknown }[];
}
interface Answer {
  vans?: VanRow[];
  deferred?: { machine?: unknown; reason?: unknown }[];
  unlocated?: { machine?: unknown }[];
  km?: unknown;
  units?: unknown;
}

/** Text from the answer, control characters out, clipped: a hostile product name stays on its line. */
const text = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v).replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 60) : '?');
/** A pick line's product after its slot code (" Cola 330ml"), nothing when unnamed. */
const label = (v: unknown): string => (typeof v === 'string' && v !== '' ? ` ${text(v)}` : '');
const num = (v: unknown, places: number): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(places) : '?');

/** Minutes from the start of the day as +H:MM. */
export function clock(v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '?';
  const m = Math.round(v);
  return `+${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}`;
}

function reason(r: { kind?: unknown; slot?: unknown }): string {
  if (r.kind === 'runs-out') return `${text(r.slot)} runs out`;
  if (r.kind === 'empty' || r.kind === 'fault') return `${text(r.slot)} ${r.kind}`;
  return text(r.kind);
}

export function renderVans(answer: unknown): string {
  const a = (typeof answer === 'object' && answer !== null ? answer : {}) as Answer;
  const out: string[] = [];
  const vans = a.vans ?? [];
  out.push(`${vans.length} van${vans.length === 1 ? '' : 's'}, ${num(a.km, 1)} km, ${text(a.units)} items`);
  for (const v of vans) {
    const stops = v.stops ?? [];
    out.push('', `van ${text(v.van)}: ${stops.length} stop${stops.length === 1 ? '' : 's'}, ${num(v.km, 1)} km, back at ${clock(v.minutes)}, ${text(v.units)} items`);
    for (const s of stops) {
      const picks = (s.picklist?.lines ?? []).filter((l) => typeof l.load === 'number' && l.load > 0).map((l) => `${text(l.slot)}${label(l.name ?? l.product)} +${text(l.load)}`);
      const over = s.overCapacity === true ? ' (more than a van: a full load)' : '';
      out.push(
        `  ${text(s.stop)}. ${text(s.machine)}  ${clock(s.arriveMin)}-${clock(s.departMin)}  ${num(s.legKm, 1)} km  ${(s.reasons ?? []).map(reason).join(', ')}`,
        `     ${text(s.units)} items${over}: ${picks.join(', ') || 'check only'}`,
      );
    }
    // A load line per catalog product (with its SKU), else per machine label or item number.
    const load = (v.totals ?? []).map((t) => {
      const name = t.name ?? t.product;
      const what = typeof name === 'string' ? text(name) : typeof t.sku === 'number' ? `sku ${t.sku}` : 'unnamed';
      return `${what}${typeof t.catalogSku === 'string' ? ` [${text(t.catalogSku)}]` : ''} ${text(t.units)}`;
    });
    out.push(`  load: ${load.join(', ') || 'nothing'}`);
  }
  const deferred = a.deferred ?? [];
  if (deferred.length > 0) out.push('', `deferred: ${deferred.map((d) => `${text(d.machine)} (${text(d.reason)})`).join(', ')}`);
  const unlocated = a.unlocated ?? [];
  if (unlocated.length > 0) out.push('', `no location: ${unlocated.map((u) => text(u.machine)).join(', ')}`);
  return out.join('\n');
}
