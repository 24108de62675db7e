/** Slot contents and prices. Hot numbers live in typed arrays. */
import type { SlotConfig } from '../config.js';

export const SLOT_OK = 0;
export const SLOT_EMPTY = 1;
export const SLOT_OUT_OF_SERVICE = 2;
export const SLOT_SHORT = 3;
export const SLOT_UNKNOWN = 4;
export type SlotAvailability = 0 | 1 | 2 | 3 | 4;

export class Inventory {
  readonly codes: readonly string[];
  readonly products: readonly string[];
  readonly categories: readonly string[];
  readonly prices: Int32Array;
  readonly qty: Uint16Array;
  readonly capacity: Uint16Array;
  /** 1 while the slot is out of service (after a jam or a sensor fault). */
  readonly fault: Uint8Array;
  /** Catalogue number of the product, when a planogram command set one (0: the configured product). */
  readonly sku: Uint32Array;

  constructor(slots: readonly SlotConfig[]) {
    const n = slots.length;
    this.codes = slots.map((s) => s.code);
    this.products = slots.map((s) => s.product);
    this.categories = slots.map((s) => s.category);
    this.prices = new Int32Array(n);
    this.qty = new Uint16Array(n);
    this.capacity = new Uint16Array(n);
    this.fault = new Uint8Array(n);
    this.sku = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      this.prices[i] = slots[i]!.price;
      this.qty[i] = slots[i]!.qty;
      this.capacity[i] = slots[i]!.capacity;
    }
  }

  get size(): number {
    return this.codes.length;
  }

  indexOf(code: string): number {
    return this.codes.indexOf(code);
  }

  availability(slot: number, quantity: number): SlotAvailability {
    if (slot < 0 || slot >= this.codes.length) return SLOT_UNKNOWN;
    if (this.fault[slot]) return SLOT_OUT_OF_SERVICE;
    const q = this.qty[slot]!;
    if (q === 0) return SLOT_EMPTY;
    if (q < quantity) return SLOT_SHORT;
    return SLOT_OK;
  }

  /** True if any slot can sell at least one item. */
  anySellable(): boolean {
    for (let i = 0; i < this.codes.length; i++) if (!this.fault[i] && this.qty[i]! > 0) return true;
    return false;
  }
}
