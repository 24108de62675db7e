/**
 * Simulated customers: they pick a product, pay with whatever coins and bills
 * the machine takes (only what is owed while it asks for exact change),
 * sometimes change their mind, cancel, or walk away and let the machine time
 * out. Like people, they do not leave money in the machine: whatever credit
 * it kept (change it could not pay) they ask back with the coin return, and
 * what it cannot give back they spend. Seeded, so a run of customers replays
 * exactly.
 */
import type { FirmwareStatus } from '../firmware/vend/report.js';
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
  /** Credit still on the machine when the customer left (only when nothing could be bought with it). */
  left: number;
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
  const result: CustomerResult = { got: [], paid: 0, returned: 0, ending: 'bought', left: 0 };

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
    if (rig.lamps['exact-change'] === 1) {
      // "Exact change only": people pay what is owed and no more.
      const coin = largestCoin(host, owed);
      if (coin === undefined) break;
      say(`sees "Exact change only" and inserts a ${money(coin, host)} coin`);
      result.paid += coin;
      await host.runUntilIdle();
      continue;
    }
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
  if (st.credit > 0 || st.escrow > 0) st = await settle(host, rnd, say, result);
  result.left = st.credit;
  result.got = rig.delivered.slice(deliveredBefore);
  result.returned = (rig.changer?.paidValue ?? 0) - paidOutBefore + (rig.validator?.returnedValue ?? 0) - returnedBillsBefore;
  if (result.got.length > 0) say(`takes ${result.got.join(', ')}${result.returned > 0 ? ` and ${money(result.returned, host)} back` : ''}`);
  else if (result.returned > 0) say(`gets ${money(result.returned, host)} back`);
  if (st.credit > 0) say(`leaves ${money(st.credit, host)} of credit on the machine`);
  return result;
}

/** Insert the largest coin the machine takes that is at most `most`; the coin, or undefined when none went in. */
function largestCoin(host: MachineHost, most: number): number | undefined {
  const coins = (host.rig.spec.changer?.coins.map((c) => c.value) ?? []).filter((v) => v <= most).sort((a, b) => b - a);
  for (const coin of coins) if (host.insertCoin(coin)) return coin;
  return undefined;
}

/**
 * The machine kept credit (change it could not pay, a bill it held): press the
 * coin return; what it cannot give back, spend on something that costs at
 * least as much, topped up with coins to the exact price so no change is due.
 * Ends with the credit gone unless nothing can be bought.
 */
async function settle(host: MachineHost, rnd: Random, say: (text: string) => void, result: CustomerResult): Promise<FirmwareStatus> {
  let st = await host.status();
  say(`presses the coin return for the ${money(st.credit + st.escrow, host)} left`);
  host.cancel();
  st = await host.runUntilIdle();
  for (let round = 0; round < 6 && st.credit > 0; round++) {
    const credit = st.credit;
    // Up to five of a product (the machine's usual multi-vend limit): the cheapest choice that uses the whole credit, else the dearest.
    const choices = st.slots.filter((s) => !s.outOfService && s.qty > 0 && s.price > 0).flatMap((s) => [1, 2, 3, 4, 5].filter((q) => q <= s.qty).map((q) => ({ code: s.code, q, cost: s.price * q })));
    if (choices.length === 0) {
      say(`cannot get ${money(credit, host)} back and there is nothing to buy`);
      return st;
    }
    const covering = choices.filter((c) => c.cost >= credit).sort((a, b) => a.cost - b.cost || rnd.next() - 0.5);
    const pick = covering[0] ?? choices.sort((a, b) => b.cost - a.cost)[0]!;
    say(`cannot get ${money(credit, host)} back: selects ${pick.code}${pick.q > 1 ? ` x${pick.q}` : ''} to spend it`);
    host.select(pick.code, pick.q);
    st = await host.runUntilIdle();
    for (let step = 0; step < 40 && st.credit > 0 && st.credit < pick.cost && st.state === 'ACCEPTING_PAYMENT'; step++) {
      const coin = largestCoin(host, pick.cost - st.credit);
      if (coin === undefined) break;
      result.paid += coin;
      st = await host.runUntilIdle();
    }
    if (st.credit > 0 && st.state === 'ACCEPTING_PAYMENT') {
      // Whatever is left after that purchase: try the coin return again before the next round.
      host.cancel();
      st = await host.runUntilIdle();
    }
    if (st.credit === credit) break;
  }
  if (st.credit > 0) say(`cannot get ${money(st.credit, host)} back or spend it`);
  return st;
}

export function money(minor: number, host: MachineHost): string {
  const d = host.rig.decimals;
  if (d === 0) return `${minor}`;
  const s = String(minor).padStart(d + 1, '0');
  return `${s.slice(0, -d)}.${s.slice(-d)}`;
}
