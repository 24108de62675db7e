/**
 * Slot levels for many machines at once, the emptiest first (the
 * dashboard's inventory heatmap): each machine's slots from its last
 * telemetry, ordered by its stock as GET /machines gives it (units over
 * room; a slot without a capacity counts as full), machines without stock
 * last. One query, bounded by `limit`, with the number of machines left out.
 */
import type { Queryable } from './db.js';

export interface SlotLevel {
  slot: string;
  product: string | null;
  quantity: number;
  capacity: number | null;
  outOfService: boolean;
}
export interface MachineLevels {
  id: string;
  stock: { units: number; capacity: number; percent: number } | null;
  slots: SlotLevel[];
}

/** Most machines one answer holds. */
export const MAX_LEVELS = 500;

export async function emptiestMachines(db: Queryable, operator: string | null, limit: number): Promise<{ machines: MachineLevels[]; total: number }> {
  const r = await db.query<{ id: string; slots: unknown; units: string | null; room: string | null; total: string }>(
    // The stock as listMachines reads it (kept with the state: migration 18), so the order agrees with the list's.
    `SELECT m.id, ms.telemetry->'slots' AS slots, ms.stock_units::text AS units, ms.stock_room::text AS room, count(*) OVER () AS total
     FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id
     WHERE ($1::text IS NULL OR m.operator_id = $1)
     ORDER BY CASE WHEN ms.stock_room IS NULL THEN NULL WHEN ms.stock_room > 0 THEN least(ms.stock_units / ms.stock_room, 1) ELSE 0 END ASC NULLS LAST, m.id
     LIMIT $2`,
    [operator, Math.max(1, Math.min(MAX_LEVELS, Math.floor(limit)))],
  );
  return {
    machines: r.rows.map((m) => ({ id: m.id, stock: stockOf(m.units, m.room), slots: levelsOf(m.slots) })),
    total: Number(r.rows[0]?.total ?? 0),
  };
}

function stockOf(units: string | null, room: string | null): MachineLevels['stock'] {
  if (units === null || room === null) return null;
  const u = Math.round(Number(units));
  const c = Math.round(Number(room));
  if (!Number.isFinite(u) || !Number.isFinite(c)) return null;
  return { units: u, capacity: c, percent: c > 0 ? Math.min(100, Math.round((100 * u) / c)) : 0 };
}

/** The slots a machine reported; entries that are not slots (no code, no numeric qty) are left out, as the stock sum leaves them. */
function levelsOf(raw: unknown): SlotLevel[] {
  if (!Array.isArray(raw)) return [];
  const out: SlotLevel[] = [];
  for (const s of raw as unknown[]) {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) continue;
    const o = s as Record<string, unknown>;
    if (typeof o['code'] !== 'string' || typeof o['qty'] !== 'number' || !Number.isFinite(o['qty'])) continue;
    const capacity = typeof o['capacity'] === 'number' && Number.isFinite(o['capacity']) ? Math.max(0, o['capacity']) : null;
    out.push({ slot: o['code'], product: typeof o['product'] === 'string' ? o['product'] : null, quantity: o['qty'], capacity, outOfService: o['fault'] === true });
  }
  return out;
}
