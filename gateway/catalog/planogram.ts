/**
 * Planogram assignments (migration 17): which catalog product each slot of a
 * machine holds, and this machine's price for it when it is not the
 * product's default. The machine itself knows only slots and prices: what
 * it should charge is sent to it as a set-prices command (docs/catalog.md);
 * this module says which slots' prices differ from what the machine reports.
 */
import type { Queryable } from '../store/db.js';
import type { Slot } from '../store/machines.js';
import { CatalogError, getProduct, imagePath, priceProblem, type Product } from './products.js';

export interface Assignment {
  slot: string;
  sku: string;
  /** This machine's price (minor units of the machine's currency); null: the product's default. */
  price: number | null;
  product: Pick<Product, 'sku' | 'name' | 'category' | 'price' | 'currency' | 'image'>;
}

/** A change to one slot: a product (by SKU) with an optional price of its own, or (sku null) no product. */
export interface AssignmentChange {
  slot: string;
  sku: string | null;
  price?: number | null | undefined;
}

/** Most slots a planogram change names (a machine has at most a few dozen; MDB addresses fewer than 256). */
export const MAX_CHANGES = 256;

/** Whose machine it is (its catalog is that operator's), or undefined for no such machine. */
export async function machineOperator(db: Queryable, machine: string): Promise<string | undefined> {
  return (await db.query<{ operator_id: string }>('SELECT operator_id FROM machines WHERE id = $1', [machine])).rows[0]?.operator_id;
}

/**
 * The prices already on their way to the machine, by slot: set-prices commands not final yet, or applied
 * since its last telemetry (which does not show them yet). The newest command's price for a slot counts.
 */
export async function pricesUnderWay(db: Queryable, machine: string, telemetryAt: Date | null): Promise<Map<string, number>> {
  const r = await db.query<{ args: { prices?: Record<string, unknown> } }>(
    `SELECT args FROM commands WHERE machine_id = $1 AND type = 'set-prices'
       AND (status IN ('queued', 'delivered') OR (status = 'applied' AND ($2::timestamptz IS NULL OR updated_at >= $2::timestamptz)))
     ORDER BY n`,
    [machine, telemetryAt],
  );
  const out = new Map<string, number>();
  for (const c of r.rows) for (const [slot, price] of Object.entries(c.args.prices ?? {})) if (typeof price === 'number') out.set(slot, price);
  return out;
}

/** A machine's assignments by slot. */
export async function assignmentsOf(db: Queryable, machine: string): Promise<Map<string, Assignment>> {
  const r = await db.query<{
    slot: string;
    sku: string;
    price: string | number | null;
    operator_id: string;
    name: string;
    category: string | null;
    default_price: string | number;
    currency: string;
    image_sha256: string | null;
    image_url: string | null;
  }>(
    `SELECT a.slot, a.sku, a.price, a.operator_id, p.name, p.category, p.price AS default_price, p.currency, p.image_sha256, p.image_url
     FROM planogram a JOIN products p ON p.operator_id = a.operator_id AND p.sku = a.sku WHERE a.machine_id = $1 ORDER BY a.slot`,
    [machine],
  );
  const out = new Map<string, Assignment>();
  for (const x of r.rows) {
    out.set(x.slot, {
      slot: x.slot,
      sku: x.sku,
      price: x.price === null ? null : Number(x.price),
      product: {
        sku: x.sku,
        name: x.name,
        category: x.category,
        price: Number(x.default_price),
        currency: x.currency,
        image: x.image_sha256 !== null ? imagePath(x.operator_id, x.sku, x.image_sha256) : x.image_url,
      },
    });
  }
  return out;
}

/**
 * The catalog product (SKU and name) each slot of these machines holds, by machine and slot: for pick lists
 * (gateway/restock/picklist.ts). A product counts only while it is its machine's operator's own.
 */
export async function slotProducts(db: Queryable, machines: readonly string[]): Promise<Map<string, Map<string, { sku: string; name: string }>>> {
  const out = new Map<string, Map<string, { sku: string; name: string }>>();
  if (machines.length === 0) return out;
  const r = await db.query<{ machine_id: string; slot: string; sku: string; name: string }>(
    `SELECT a.machine_id, a.slot, a.sku, p.name FROM planogram a
     JOIN machines m ON m.id = a.machine_id AND m.operator_id = a.operator_id
     JOIN products p ON p.operator_id = a.operator_id AND p.sku = a.sku
     WHERE a.machine_id = ANY($1::text[])`,
    [machines],
  );
  for (const x of r.rows) {
    let m = out.get(x.machine_id);
    if (!m) out.set(x.machine_id, (m = new Map()));
    m.set(x.slot, { sku: x.sku, name: x.name });
  }
  return out;
}

/**
 * The price this machine should charge for an assigned slot: its own price,
 * else the product's default when the product is priced in the machine's
 * currency (or the machine has not said its currency); null when there is none.
 */
export function effectivePrice(a: Assignment, machineCurrency: string | null): number | null {
  if (a.price !== null) return a.price;
  return machineCurrency === null || machineCurrency === a.product.currency ? a.product.price : null;
}

/**
 * Apply changes to a machine's planogram, in the caller's transaction:
 * every slot must be one the machine reports (`known`), every SKU the
 * operator's, every price one a machine takes. All or nothing.
 */
export async function applyAssignments(tx: Queryable, machine: string, operator: string, known: readonly Slot[], machineCurrency: string | null, changes: readonly AssignmentChange[]): Promise<void> {
  const slots = new Set(known.map((s) => s.code));
  const seen = new Set<string>();
  for (const c of changes) {
    if (!slots.has(c.slot)) throw new CatalogError('bad-slot', `machine "${machine}" reports no slot ${c.slot} (its slots: ${[...slots].sort().join(', ') || 'none reported yet'})`);
    if (seen.has(c.slot)) throw new CatalogError('bad-slot', `slot ${c.slot} is named twice`);
    seen.add(c.slot);
    if (c.price !== undefined && c.price !== null) {
      const problem = priceProblem(c.price, `the price of ${c.slot}`);
      if (problem) throw new CatalogError('bad-price', problem);
    }
    if (c.sku === null) {
      if (c.price !== undefined && c.price !== null) throw new CatalogError('bad-price', `slot ${c.slot}: a price needs a product (sku)`);
      await tx.query('DELETE FROM planogram WHERE machine_id = $1 AND slot = $2', [machine, c.slot]);
      continue;
    }
    const p = await getProduct(tx, operator, c.sku);
    if (!p) throw new CatalogError('unknown-sku', `slot ${c.slot}: no product "${c.sku}" in the catalog`);
    const price = c.price ?? null;
    if (price === null && machineCurrency !== null && p.currency !== machineCurrency) {
      throw new CatalogError('bad-price', `slot ${c.slot}: "${c.sku}" is priced in ${p.currency} and machine "${machine}" charges in ${machineCurrency}: give this machine's price`);
    }
    await tx.query(
      `INSERT INTO planogram (machine_id, slot, operator_id, sku, price) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (machine_id, slot) DO UPDATE SET operator_id = EXCLUDED.operator_id, sku = EXCLUDED.sku, price = EXCLUDED.price, updated_at = now()`,
      [machine, c.slot, operator, c.sku, price],
    );
  }
}

/** One slot as the planogram shows it: the machine's report and the catalog's assignment side by side. */
export interface PlanogramSlot {
  slot: string;
  sku: string | null;
  /** The catalog's name when a product is assigned, else the machine's own label (null: neither). */
  name: string | null;
  category: string | null;
  image: string | null;
  /** The product's default price and its currency (null: no product). */
  defaultPrice: number | null;
  currency: string | null;
  /** This machine's own price for the product (null: the default). */
  priceOverride: number | null;
  /** What the machine should charge: the override, else the default in its currency (null: no product, or no price in its currency). */
  price: number | null;
  /** What the machine says it charges, from its last telemetry. */
  machinePrice: number | null;
  quantity: number | null;
  capacity: number | null;
  /** The machine does not charge `price` yet: a set-prices command is due (or under way). */
  pending: boolean;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The machine's slots (as reported) joined with its assignments, in slot order. */
export function planogramView(slots: readonly Slot[], assignments: ReadonlyMap<string, Assignment>, machineCurrency: string | null): PlanogramSlot[] {
  const out: PlanogramSlot[] = [];
  const codes = new Set<string>();
  for (const s of slots) {
    if (typeof s !== 'object' || s === null || typeof s.code !== 'string' || codes.has(s.code)) continue;
    codes.add(s.code);
    const a = assignments.get(s.code);
    const price = a ? effectivePrice(a, machineCurrency) : null;
    const machinePrice = num(s.price);
    out.push({
      slot: s.code,
      sku: a?.sku ?? null,
      name: a ? a.product.name : typeof s.product === 'string' ? s.product : null,
      category: a ? a.product.category : typeof s.category === 'string' ? s.category : null,
      image: a?.product.image ?? null,
      defaultPrice: a?.product.price ?? null,
      currency: a?.product.currency ?? null,
      priceOverride: a?.price ?? null,
      price,
      machinePrice,
      quantity: num(s.qty),
      capacity: num(s.capacity),
      pending: price !== null && price !== machinePrice,
    });
  }
  return out.sort((x, y) => (x.slot < y.slot ? -1 : x.slot > y.slot ? 1 : 0));
}

/**
 * The set-prices arguments that bring the machine to its planogram's prices:
 * the slots whose price differs from what it reports, but for those whose
 * price is already on its way (`underWay`: sent, not yet in its telemetry).
 */
export function pricesDue(view: readonly PlanogramSlot[], underWay: ReadonlyMap<string, number> = new Map()): Record<string, number> {
  const prices: Record<string, number> = {};
  for (const s of view) if (s.pending && s.price !== null && underWay.get(s.slot) !== s.price) prices[s.slot] = s.price;
  return prices;
}
