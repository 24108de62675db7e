/**
 * The fleet's machines in the store: registering them, the fleet list, and
 * one machine's state as ingest last wrote it (machine_state: online, last
 * seen, its last telemetry and status), the firmware version it says it
 * runs, and its tags (labels for rollouts to target). Telemetry is the machine's word in
 * the shape docs/uplink.md gives it; slotsOf reads its slots defensively.
 */
import type { Queryable } from './db.js';
import { DEFAULT_OPERATOR } from './operators.js';

export interface Slot {
  code: string;
  product?: string;
  category?: string;
  qty: number;
  capacity?: number;
  price: number;
  sku?: number;
  fault?: boolean;
}

/** The last telemetry a machine sent, as stored (docs/uplink.md). */
export interface Telemetry {
  slots?: Slot[];
  tubes?: { value: number; count: number }[];
  [key: string]: unknown;
}

export interface MachineState {
  online: boolean;
  last_seen: Date | null;
  telemetry: Telemetry | null;
  telemetry_at: Date | null;
  status: unknown;
}

/** A machine in the fleet list. */
export interface MachineSummary {
  id: string;
  online: boolean;
  lastSeen: Date | null;
  /** The newest event number stored (0: none). */
  lastEvent: number;
  /** The errors its last telemetry reported. */
  errors: unknown[];
  /** The firmware version it says it runs (telemetry or status `fw`), null when it has not said. */
  firmware: string | null;
  tags: string[];
  /** Whose machine it is. */
  operator: string;
  /** Units in its slots against their room, from its last telemetry (null: no slots reported). */
  stock: Stock | null;
  /**
   * A slot is empty, out of service, or down to a fifth of its room (the dashboard's "low"): from the last
   * telemetry alone, not the sales forecast (gateway/restock), so the list stays one query at any fleet size.
   */
  needsRestock: boolean;
  /** The money its amounts are in, as its telemetry says (null: not said). */
  money: { currency: string; decimals: number } | null;
}

/** A machine's stock: units left, room for (a slot without a capacity counts as full), and the share in whole percent. */
export interface Stock {
  units: number;
  capacity: number;
  percent: number;
}

/** A version as the machine reports it, when it is one (it is the machine's word: nothing else is shown). */
export function firmwareOf(v: unknown): string | null {
  return typeof v === 'string' && /^(?:0|[1-9][0-9]{0,3})\.(?:0|[1-9][0-9]{0,3})\.(?:0|[1-9][0-9]{0,3})$/.test(v) ? v : null;
}

/** The SQL of a machine's reported version, from machine_state `ms`. */
const FW = `COALESCE(CASE WHEN jsonb_typeof(ms.telemetry) = 'object' THEN ms.telemetry->>'fw' END, CASE WHEN jsonb_typeof(ms.status) = 'object' THEN ms.status->>'fw' END)`;

/** The machine's money as its telemetry says (every amount it reports is minor units of it); null before it has said. */
export function moneyOf(t: Telemetry | null): { currency: string; decimals: number } | null {
  const currency = t?.['currency'];
  const decimals = t?.['decimals'];
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) return null;
  return { currency, decimals: typeof decimals === 'number' && Number.isInteger(decimals) && decimals >= 0 && decimals <= 3 ? decimals : 2 };
}

/** Why nothing on a machine can be sold now (offline, or locked by a command), or null when it can sell. */
export function unavailableReason(s: Pick<MachineState, 'online' | 'telemetry'>): 'offline' | 'locked' | null {
  if (!s.online) return 'offline';
  return s.telemetry?.['locked'] === true ? 'locked' : null;
}

export function slotsOf(t: Telemetry | null): Slot[] {
  return Array.isArray(t?.slots) ? t.slots : [];
}

/** Register machines for an operator (the default one unless named; those already registered are left as they are). */
export async function addMachines(db: Queryable, ids: readonly string[], operator = DEFAULT_OPERATOR): Promise<void> {
  await db.query('INSERT INTO machines (id, operator_id) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING', [ids, operator]);
}

/**
 * A machine's stored state (offline and empty before it has sent anything),
 * or undefined when there is no such machine or it is not `operator`'s
 * (null: any operator's).
 */
export async function machineState(db: Queryable, id: string, operator: string | null = null): Promise<MachineState | undefined> {
  const r = await db.query<MachineState & { known: boolean }>(
    `SELECT ms.online, ms.last_seen, ms.telemetry, ms.telemetry_at, ms.status, true AS known
     FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id WHERE m.id = $1 AND ($2::text IS NULL OR m.operator_id = $2)`,
    [id, operator],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return { online: row.online ?? false, last_seen: row.last_seen, telemetry: row.telemetry, telemetry_at: row.telemetry_at, status: row.status };
}

/** Which machines a fleet list holds: `tag`'s, `ids` only, after `after` in id order, at most `limit` (each when given). */
export interface MachineQuery {
  tag?: string | undefined;
  ids?: readonly string[] | undefined;
  /** Keyset paging: machines whose id sorts after this one. */
  after?: string | undefined;
  limit?: number | undefined;
}

/** Every machine of `operator` (null: of every operator), those `query` picks, in id order. */
export async function listMachines(db: Queryable, q: MachineQuery, operator: string | null): Promise<MachineSummary[]> {
  const r = await db.query<{
    id: string;
    operator_id: string;
    online: boolean | null;
    last_seen: Date | null;
    last_seq: string | null;
    errors: unknown;
    fw: unknown;
    tags: string[] | null;
    currency: unknown;
    decimals: unknown;
    units: string | null;
    room: string | null;
    low: boolean | null;
  }>(
    // Stock as kept with the state when its telemetry was written (migration 18), not summed from every machine's slots here.
    `SELECT m.id, m.operator_id, ms.online, ms.last_seen, ms.last_seq, ms.telemetry->'errors' AS errors, ${FW} AS fw,
            (SELECT array_agg(t.tag ORDER BY t.tag) FROM machine_tags t WHERE t.machine_id = m.id) AS tags,
            ms.telemetry->'currency' AS currency, ms.telemetry->'decimals' AS decimals, ms.stock_units::text AS units, ms.stock_room::text AS room, ms.stock_low AS low
     FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id
     WHERE ($1::text IS NULL OR EXISTS (SELECT 1 FROM machine_tags t WHERE t.machine_id = m.id AND t.tag = $1))
       AND ($2::text IS NULL OR m.operator_id = $2)
       AND ($3::text[] IS NULL OR m.id = ANY($3::text[]))
       AND ($4::text IS NULL OR m.id > $4)
     ORDER BY m.id
     LIMIT $5`,
    [q.tag ?? null, operator, q.ids ? [...q.ids] : null, q.after ?? null, q.limit ?? null],
  );
  return r.rows.map((m) => ({
    id: m.id,
    online: m.online ?? false,
    lastSeen: m.last_seen,
    lastEvent: Number(m.last_seq ?? 0),
    errors: Array.isArray(m.errors) ? m.errors : [],
    firmware: firmwareOf(m.fw),
    tags: m.tags ?? [],
    operator: m.operator_id,
    stock: stockOf(m.units, m.room),
    needsRestock: m.low === true,
    money: moneyOf({ currency: m.currency, decimals: m.decimals }),
  }));
}

function stockOf(units: string | null, room: string | null): Stock | null {
  if (units === null || room === null) return null;
  const u = Math.round(Number(units));
  const c = Math.round(Number(room));
  if (!Number.isFinite(u) || !Number.isFinite(c)) return null;
  return { units: u, capacity: c, percent: c > 0 ? Math.min(100, Math.round((100 * u) / c)) : 0 };
}

/** Most tags a machine has. */
export const MAX_TAGS = 16;

export async function tagsOf(db: Queryable, machine: string): Promise<string[]> {
  const r = await db.query<{ tag: string }>('SELECT tag FROM machine_tags WHERE machine_id = $1 ORDER BY tag', [machine]);
  return r.rows.map((x) => x.tag);
}

/** Replace a machine's tags (checked by the caller: the API's schema). */
export async function setTags(db: Queryable, machine: string, tags: readonly string[]): Promise<string[]> {
  const unique = [...new Set(tags)].sort();
  await db.query('DELETE FROM machine_tags WHERE machine_id = $1 AND NOT (tag = ANY($2::text[]))', [machine, unique]);
  await db.query('INSERT INTO machine_tags (machine_id, tag) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING', [machine, unique]);
  return unique;
}

/** A located machine as the fleet map draws it: place, whether it is online, whether it is in trouble. */
export interface MapPoint {
  id: string;
  lat: number;
  lon: number;
  address: string | null;
  online: boolean;
  /** Errors in its last telemetry, or an open critical alert (the fleet list's "errors"). */
  errors: boolean;
}

/**
 * Every located machine of `operator` (null: of every operator) in id order, with no more than the map draws:
 * one narrow read (no telemetry beyond its errors, no stock, no tags), as the first screen wants it.
 */
export async function mapPoints(db: Queryable, operator: string | null): Promise<MapPoint[]> {
  const alerts = (await db.query<{ t: string | null }>("SELECT to_regclass('alerts')::text AS t")).rows[0]?.t;
  // One row holding them all as JSON text: PGlite hands each row to JavaScript at a cost (a row a machine took 3 times as long).
  const r = await db.query<{ j: string }>(
    `SELECT coalesce(json_agg(json_build_array(m.id, m.lat, m.lon, m.address, coalesce(ms.online, false),
              coalesce(jsonb_typeof(ms.telemetry->'errors') = 'array' AND jsonb_array_length(ms.telemetry->'errors') > 0, false)
              ${alerts ? "OR m.id IN (SELECT machine_id FROM alerts WHERE closed_at IS NULL AND severity = 'critical')" : ''}) ORDER BY m.id), '[]')::text AS j
     FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id
     WHERE ($1::text IS NULL OR m.operator_id = $1) AND m.lat IS NOT NULL AND m.lon IS NOT NULL`,
    [operator],
  );
  const rows = JSON.parse(r.rows[0]?.j ?? '[]') as [string, number, number, string | null, boolean, boolean][];
  return rows.map(([id, lat, lon, address, online, errors]) => ({ id, lat: Number(lat), lon: Number(lon), address, online: online === true, errors: errors === true }));
}
