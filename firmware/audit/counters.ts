/**
 * Money and sales counters (integer minor units). They answer the bench's
 * `sales` / `revenue` and feed telemetry and, later, the EVA-DTS audit.
 */
export class AuditCounters {
  sales = 0;
  revenue = 0;
  readonly slotSales: Uint32Array;
  readonly slotRevenue: Float64Array;
  coinsToTubes = 0;
  coinsToCashbox = 0;
  billsStacked = 0;
  /** Value of coins paid out by the VMC (change and refunds). */
  coinsPaidOut = 0;
  coinsPaidOutCount = 0;
  billsReturned = 0;
  coinsManual = 0;
  failedVends = 0;

  constructor(slots: number) {
    this.slotSales = new Uint32Array(slots);
    // Float64 holds integers exactly to 2^53: cents, never fractions.
    this.slotRevenue = new Float64Array(slots);
  }

  sale(slot: number, price: number): void {
    this.sales++;
    this.revenue += price;
    this.slotSales[slot] = this.slotSales[slot]! + 1;
    this.slotRevenue[slot] = this.slotRevenue[slot]! + price;
  }

  /** Money taken in; equals revenue + coins paid out + credit held at every quiet moment. */
  get moneyIn(): number {
    return this.coinsToTubes + this.coinsToCashbox + this.billsStacked;
  }
}
