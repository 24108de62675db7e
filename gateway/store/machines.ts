/**
 * The fleet's machines in the store: registering them, the fleet list, and
 * one machine's state as ingest last wrote it (machine_state: online, last
 * seen, its last telemetry and status). Telemetry is the machine's word in
 * the shape docs/uplink.md gives it; slotsOf reads its slots defensively.
 */
import type { Queryable } from './db.js';

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
}

export function slotsOf(t: Telemetry | null): Slot[] {
  return Array.isArray(t?.slots) ? t.slots : [];
}

/** Register machines (those already registered are left as they are). */
export async function addMachines(db: Queryable, ids: readonly string[]): Promise<void> {
  await db.query('INSERT INTO machines (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [ids]);
}

/** A machine's stored state (offline and empty before it has sent anything), or undefined when there is no such machine. */
export async function machineState(db: Queryable, id: string): Promise<MachineState | undefined> {
  const r = await db.query<MachineState & { known: boolean }>(
    `SELECT ms.online, ms.last_seen, ms.telemetry, ms.telemetry_at, ms.status, true AS known
     FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id WHERE m.id = $1`,
    [id],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return { online: row.online ?? false, last_seen: row.last_seen, telemetry: row.telemetry, telemetry_at: row.telemetry_at, status: row.status };
}

/** Every machine, in id order. */
export async function listMachines(db: Queryable): Promise<MachineSummary[]> {
  const r = await db.query<{ id: string; online: boolean | null; last_seen: Date | null; last_seq: string | null; errors: unknown }>(
    `SELECT m.id, ms.online, ms.last_seen, ms.last_seq, ms.telemetry->'errors' AS errors FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id ORDER BY m.id`,
  );
  return r.rows.map((m) => ({ id: m.id, online: m.online ?? false, lastSeen: m.last_seen, lastEvent: Number(m.last_seq ?? 0), errors: Array.isArray(m.errors) ? m.errors : [] }));
}
