/**
 * What restocking reads from and writes to the fleet store: machine
 * locations (migration 7), each machine's last reported slots, and sales per
 * slot and hour of the week. Locations are written only here, by the API and
 * by the simulated fleet alike.
 */
import type { Queryable } from '../store/db.js';
import { slotsOf, type Slot, type Telemetry } from '../store/machines.js';
import { WEEK_HOURS } from './forecast.js';

export interface Location {
  lat: number;
  lon: number;
  address: string | null;
}

export class RestockError extends Error {
  constructor(
    readonly code: 'unknown-machine' | 'bad-location',
    message: string,
  ) {
    super(message);
  }
}

/** Why a location is not one, or undefined when it is. */
export function locationProblem(lat: number, lon: number, address?: string | null): string | undefined {
  if (!Number.isFinite(lat) || lat < -90 || lat > 90) return 'lat is a latitude in degrees, -90 to 90';
  if (!Number.isFinite(lon) || lon < -180 || lon > 180) return 'lon is a longitude in degrees, -180 to 180';
  if (address !== undefined && address !== null && address.length > 200) return 'address is at most 200 characters';
  return undefined;
}

/** Set (replace) a machine's location; `operator`'s machine only (null: any operator's). */
export async function setLocation(db: Queryable, machine: string, loc: { lat: number; lon: number; address?: string | null | undefined }, operator: string | null = null): Promise<Location> {
  const problem = locationProblem(loc.lat, loc.lon, loc.address);
  if (problem) throw new RestockError('bad-location', problem);
  const r = await db.query<{ lat: number; lon: number; address: string | null }>(
    'UPDATE machines SET lat = $2, lon = $3, address = $4 WHERE id = $1 AND ($5::text IS NULL OR operator_id = $5) RETURNING lat, lon, address',
    [machine, loc.lat, loc.lon, loc.address ?? null, operator],
  );
  const row = r.rows[0];
  if (!row) throw new RestockError('unknown-machine', `no machine "${machine}"`);
  return { lat: Number(row.lat), lon: Number(row.lon), address: row.address };
}

export interface MachineRow {
  id: string;
  createdAt: Date;
  location: Location | null;
  slots: Slot[];
  telemetryAt: Date | null;
}

/**
 * Machines with their location and last reported slots: these ids (unknown
 * ones left out) or all, of `operator` (null: every operator's), in id order.
 */
export async function loadMachines(db: Queryable, ids?: readonly string[], operator: string | null = null): Promise<MachineRow[]> {
  const r = await db.query<{ id: string; created_at: Date; lat: number | null; lon: number | null; address: string | null; telemetry: Telemetry | null; telemetry_at: Date | null }>(
    `SELECT m.id, m.created_at, m.lat, m.lon, m.address, ms.telemetry, ms.telemetry_at
     FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id
     WHERE ($1::text[] IS NULL OR m.id = ANY($1::text[])) AND ($2::text IS NULL OR m.operator_id = $2) ORDER BY m.id`,
    [ids ?? null, operator],
  );
  return r.rows.map((m) => ({
    id: m.id,
    createdAt: new Date(m.created_at),
    location: m.lat === null || m.lon === null ? null : { lat: Number(m.lat), lon: Number(m.lon), address: m.address },
    // Telemetry is the machine's word: a slot without a code or a quantity is left out rather than guessed.
    slots: slotsOf(m.telemetry).filter((s) => typeof s?.code === 'string' && typeof s.qty === 'number'),
    telemetryAt: m.telemetry_at ? new Date(m.telemetry_at) : null,
  }));
}

/** Every machine's location (null: not set) of `operator` (null: every operator's), in id order: the map's, without the telemetry loadMachines reads. */
export async function loadLocations(db: Queryable, operator: string | null = null): Promise<{ id: string; location: Location | null }[]> {
  const r = await db.query<{ id: string; lat: number | null; lon: number | null; address: string | null }>(
    'SELECT id, lat, lon, address FROM machines WHERE $1::text IS NULL OR operator_id = $1 ORDER BY id',
    [operator],
  );
  return r.rows.map((m) => ({ id: m.id, location: m.lat === null || m.lon === null ? null : { lat: Number(m.lat), lon: Number(m.lon), address: m.address } }));
}

/**
 * Sales (vend-ok events, by the time the gateway received them) per machine,
 * slot and UTC hour of the week (0 = Monday 00:00) in [since, until).
 */
export async function loadSalesCounts(db: Queryable, ids: readonly string[], since: Date, until: Date): Promise<Map<string, Map<string, number[]>>> {
  const out = new Map<string, Map<string, number[]>>();
  if (ids.length === 0) return out;
  // Counted in the database: a busy fleet's four weeks of sales are millions of rows, their buckets a few thousand.
  // The epoch was a Thursday, hour 72 of a week that starts on Monday.
  const r = await db.query<{ machine_id: string; slot: string; h: number; n: string }>(
    `SELECT machine_id, slot, ((floor(extract(epoch FROM received_at) / 3600)::bigint + 72) % 168)::int AS h, count(*) AS n
     FROM sales WHERE received_at >= $1 AND received_at < $2 AND machine_id = ANY($3::text[]) AND slot IS NOT NULL
     GROUP BY 1, 2, 3`,
    [since, until, ids],
  );
  for (const row of r.rows) {
    let m = out.get(row.machine_id);
    if (!m) out.set(row.machine_id, (m = new Map()));
    let c = m.get(row.slot);
    if (!c) m.set(row.slot, (c = new Array<number>(WEEK_HOURS).fill(0)));
    c[Number(row.h)]! += Number(row.n);
  }
  return out;
}
