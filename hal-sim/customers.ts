/**
 * Simulated customers: they pick a product, pay with whatever coins and bills
 * the machine takes, sometimes change their mind, cancel, or walk away and
 * let the machine time out. Seeded, so a run of customers replays exactly.
 */
import type { MachineHost } from './host.js';
import type { Random } from './scheduler.js';

export interface CustomerOptions {
  /** Chance a customer walks away mid-purchase (the machine times out). */
  walkAway?: number;
  /** Chance a customer presses cancel mid-purchase. */
  cancel?: number;
  /** Chance a customer buys two of the product. */
  twoItems?: number;
  /** Narration of what the customer does. */
  say?: (text: string) => void;
}

export interface CustomerResult {
  /** Products that dropped during this customer's visit. */
  got: string[];
  /** Money the customer put in and got back, minor units. */
  paid: number;
  returned: number;
  ending: 'bought' | 'cancelled' | 'walked away' | 'sold out' | 'refused';
}

/** One customer's visit, start to finish (including the machine settling). */
export async function visit(host: MachineHost, rnd: Random, options: CustomerOptions = {}): Promise<CustomerResult> {
  const rig = host.rig;
  const say = options.say ?? (() => {});
  const deliveredBefore = rig.delivered.length;
  const paidOutBefore = rig.changer?.paidValue ?? 0;
  const returnedBillsBefore = rig.validator?.returnedValue ?? 0;
  const slot = rig.spec.slots[rnd.int(0, rig.spec.slots.length - 1)]!;
  const quantity = rnd.next() < (options.twoItems ?? 0.1) ? 2 : 1;
  const result: CustomerResult = { got: [], paid: 0, returned: 0, ending: 'bought' };

  say(`selects ${slot.code} (${slot.product})${quantity > 1 ? ' x2' : ''}`);
  host.select(slot.code, quantity);
  let st = await host.runUntilIdle();
  if (st.state === 'IDLE' || st.state === 'ERROR') {
    say(`reads "${rig.display.lines.join(' / ')}" and leaves`);
    result.ending = 'sold out';
    return result;
  }

  const coins = rig.spec.changer?.coins.map((c) => c.value) ?? [];
  const bills = rig.spec.bills ?? [];
  const due = slot.price * quantity;
  const walkAt = rnd.next() < (options.walkAway ?? 0.05) ? rnd.int(0, 2) : -1;
  const cancelAt = walkAt < 0 && rnd.next() < (options.cancel ?? 0.05) ? rnd.int(0, 2) : -1;
  for (let step = 0; step < 40; step++) {
    st = await host.status();
    if (st.state !== 'ACCEPTING_PAYMENT' && st.state !== 'PRODUCT_SELECTED') break;
    // The product came (leftover credit may keep the machine accepting): done paying.
    if (rig.delivered.length > deliveredBefore) break;
    if (step === walkAt) {
      say('walks away');
      result.ending = 'walked away';
      await host.run(31000);
      break;
    }
    if (step === cancelAt) {
      say('presses cancel');
      result.ending = 'cancelled';
      host.cancel();
      break;
    }
    if (st.escrow > 0 || st.credit >= due) {
      // Paid enough but no vend: the machine cannot give change (a bill may be held).
      say(`sees "${rig.display.lines.join(' / ')}" and presses cancel`);
      result.ending = 'refused';
      host.cancel();
      break;
    }
    const owed = due - st.credit;
    const useBill = bills.length > 0 && (coins.length === 0 || rnd.next() < 0.3);
    if (useBill) {
      // Most people use the smallest bill that covers what is owed; some just use any.
      const covering = bills.filter((b) => b >= owed).sort((a, b) => a - b);
      const bill = covering.length > 0 && rnd.next() < 0.75 ? covering[0]! : bills[rnd.int(0, bills.length - 1)]!;
      say(`inserts a ${money(bill, host)} bill`);
      if (host.insertBill(bill)) result.paid += bill;
    } else if (coins.length > 0) {
      const coin = coins[rnd.int(0, coins.length - 1)]!;
      say(`inserts a ${money(coin, host)} coin`);
      if (host.insertCoin(coin)) result.paid += coin;
      else say('the coin comes back');
    } else {
      break;
    }
    await host.runUntilIdle();
  }
  st = await host.runUntilIdle();
  result.got = rig.delivered.slice(deliveredBefore);
  result.returned = (rig.changer?.paidValue ?? 0) - paidOutBefore + (rig.validator?.returnedValue ?? 0) - returnedBillsBefore;
  if (result.got.length > 0) say(`takes ${result.got.join(', ')}${result.returned > 0 ? ` and ${money(result.returned, host)} back` : ''}`);
  else if (result.returned > 0) say(`gets ${money(result.returned, host)} back`);
  if (st.credit > 0) say(`leaves ${money(st.credit, host)} of credit on the machine`);
  return result;
}

export function money(minor: number, host: MachineHost): string {
  const d = host.rig.decimals;
  if (d === 0) return `${minor}`;
  const s = String(minor).padStart(d + 1, '0');
  return `${s.slice(0, -d)}.${s.slice(-d)}`;
}
