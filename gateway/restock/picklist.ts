/**
 * Pick lists, pure: what to load into each slot of a machine (capacity
 * minus what it holds), and for a route the totals per product so the van
 * is loaded once. Faulted slots are flagged, not left out: the driver who
 * clears the jam refills the slot, and must know it is jammed.
 *
 * A slot the planogram assigns a catalog product to (docs/catalog.md) is
 * named by that product and counted by its SKU: what the driver takes off
 * the shelf. Other slots keep the machine's own label and number.
 */
import type { SlotStock } from './forecast.js';

/** The catalog product a slot holds (gateway/catalog/planogram.ts slotProducts). */
export interface SlotProduct {
  sku: string;
  name: string;
}

export interface PickLine {
  slot: string;
  /** What the driver reads: the catalog product's name, else the machine's own label (null: neither). */
  name: string | null;
  /** The catalog product's SKU (null: no product assigned to the slot). */
  catalogSku: string | null;
  /** The machine's own label and item number, as it reports them. */
  product: string | null;
  sku: number | null;
  qty: number;
  capacity: number | null;
  /** Items to put in: capacity - qty (0 when full; 0 when the capacity is unknown, see `capacityUnknown`). */
  load: number;
  /** Out of service (jam or motor fault): fix it while refilling. */
  fault: boolean;
}

export interface PickList {
  /** Every slot, in slot order. */
  lines: PickLine[];
  /** Items to load in all. */
  units: number;
  /** Slots out of service. */
  faults: string[];
  /** Slots whose capacity the machine did not report (nothing computed for them). */
  capacityUnknown: string[];
}

const bySlot = (a: { slot: string }, b: { slot: string }): number => (a.slot < b.slot ? -1 : a.slot > b.slot ? 1 : 0);

/** A machine's pick list from its reported slots and (by slot code) the catalog products its planogram assigns. */
export function pickList(slots: readonly SlotStock[], products: ReadonlyMap<string, SlotProduct> = new Map()): PickList {
  const lines = slots
    .map((s): PickLine => {
      const capacity = typeof s.capacity === 'number' && Number.isFinite(s.capacity) && s.capacity > 0 ? s.capacity : null;
      const qty = Math.max(0, s.qty);
      const p = products.get(s.code);
      return {
        slot: s.code,
        name: p?.name ?? (typeof s.product === 'string' ? s.product : null),
        catalogSku: p?.sku ?? null,
        product: s.product ?? null,
        sku: s.sku ?? null,
        qty,
        capacity,
        // More than the capacity (a miscount) means nothing to load, not a negative load.
        load: capacity === null ? 0 : Math.max(0, capacity - qty),
        fault: s.fault === true,
      };
    })
    .sort(bySlot);
  return {
    lines,
    units: lines.reduce((a, l) => a + l.load, 0),
    faults: lines.filter((l) => l.fault).map((l) => l.slot),
    capacityUnknown: lines.filter((l) => l.capacity === null).map((l) => l.slot),
  };
}

export interface ProductTotal {
  /** `catalog:<sku>` for a catalog product, else `sku:<n>` when the slots have the machine's item number, else `product:<name>` (or `unnamed`). */
  key: string;
  /** The catalog product's name and SKU, else the machine's label (the first seen) and null. */
  name: string | null;
  catalogSku: string | null;
  sku: number | null;
  product: string | null;
  units: number;
  /** How many slots and machines it goes to. */
  slots: number;
  machines: number;
}

/** What to load into the van for these machines' pick lists: one line per product, most units first. */
export function vanTotals(lists: readonly { machine: string; list: PickList }[]): ProductTotal[] {
  const totals = new Map<string, ProductTotal & { seen: Set<string> }>();
  for (const { machine, list } of lists) {
    for (const l of list.lines) {
      if (l.load <= 0) continue;
      // The catalog's SKU first (one product, whatever the machines call it), then the machine's item number;
      // without either, the name is all we have.
      const key = l.catalogSku !== null ? `catalog:${l.catalogSku}` : l.sku !== null ? `sku:${l.sku}` : l.product !== null ? `product:${l.product}` : 'unnamed';
      let t = totals.get(key);
      if (!t) {
        t = { key, name: l.name, catalogSku: l.catalogSku, sku: l.sku, product: l.product, units: 0, slots: 0, machines: 0, seen: new Set() };
        totals.set(key, t);
      }
      t.units += l.load;
      t.slots += 1;
      t.seen.add(machine);
      t.machines = t.seen.size;
    }
  }
  return [...totals.values()]
    .map(({ seen: _seen, ...t }) => t)
    .sort((a, b) => b.units - a.units || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
