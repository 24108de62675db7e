/**
 * Slot levels for many machines at once, the emptiest first (the
 * dashboard's inventory heatmap): each machine's slots from its last
 * telemetry, ordered by its stock as GET /machines sums it (units over
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
    // The stock is summed as listMachines sums it (gateway/store/machines.ts), so the order agrees with the list's.
    `SELECT m.id, ms.telemetry->'slots' AS slots, st.units::text AS units, st.room::text AS room, count(*) OVER () AS total
     FROM machines m LEFT JOIN machine_state ms ON ms.machine_id = m.id
     LEFT JOIN LATERAL (
       SELECT sum(greatest(c.qty, 0)) AS units, sum(c.room) AS room
       FROM jsonb_array_elements(CASE WHEN jsonb_typeof(ms.telemetry->'slots') = 'array' THEN ms.telemetry->'slots' ELSE '[]'::jsonb END) s
       CROSS JOIN LATERAL (
         SELECT q.qty, CASE WHEN jsonb_typeof(s->'capacity') = 'number' THEN greatest((s->>'capacity')::numeric, 0) ELSE greatest(q.qty, 1) END AS room
         FROM (SELECT CASE WHEN jsonb_typeof(s) = 'object' AND jsonb_typeof(s->'qty') = 'number' THEN (s->>'qty')::numeric END AS qty) q) c
       WHERE c.qty IS NOT NULL) st ON true
     WHERE ($1::text IS NULL OR m.operator_id = $1)
     ORDER BY CASE WHEN st.room IS NULL THEN NULL WHEN st.room > 0 THEN least(st.units / st.room, 1) ELSE 0 END ASC NULLS LAST, m.id
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
