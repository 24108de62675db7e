/** What the customer display says, derived from the machine's state. Pure. */
import { formatMoney } from '../money/format.js';
import type { Inventory } from './inventory.js';
import type { VendMachine } from './machine.js';
import type { Notice } from './ports.js';

export interface ScreenContext {
  decimals: number;
  /** The tubes cannot currently pay change for the cheapest product. */
  exactChangeOnly: boolean;
  /** Why the machine is out of service, when it is. */
  fault: string;
  /** A payment device answers but is not used (its currency or scaling), said in one line; '' when none is. */
  refused: string;
}

function slotName(inv: Inventory, slot: number): string {
  return slot >= 0 && slot < inv.size ? inv.codes[slot]! : '';
}

export function noticeLines(notice: Notice, slot: number, m: VendMachine, inv: Inventory, ctx: ScreenContext): string[] {
  const money = (v: number): string => formatMoney(v, ctx.decimals);
  const code = slotName(inv, slot);
  switch (notice) {
    case 'sold-out':
      return [`${code} SOLD OUT`, 'Please choose again'];
    case 'out-of-service':
      return [`${code} OUT OF SERVICE`, 'Please choose again'];
    case 'only-left':
      return [`${code}: only ${inv.qty[slot] ?? 0} left`, 'Choose fewer'];
    case 'unknown-slot':
      return ['No such selection', 'Please choose again'];
    case 'bad-quantity':
      return ['Quantity not allowed', 'Please choose again'];
    case 'no-change':
      return ['Cannot make change', m.escrow > 0 ? 'Cancel returns bill' : 'Use exact amount'];
    case 'bill-returned':
      return ['Bill returned', m.credit > 0 ? `Credit ${money(m.credit)}` : ''];
    case 'max-credit':
      return ['Credit limit reached', 'Bill returned'];
    case 'jam':
      return ['Vend failed', 'Refunding'];
    case 'thank-you':
      return ['Thank you!', 'Take your product'];
    case 'credit-kept':
      return ['Change unavailable', `Credit ${money(m.credit)}`];
    case 'card-denied':
      return ['Card declined', m.card ? 'Choose again' : ''];
    case 'card-refused':
      return ['Card not accepted', 'Finish with cash'];
    case 'card-one-item':
      return ['Card: one item', 'Please choose again'];
    case 'card-reader-silent':
      return ['Card reader not', 'responding'];
  }
}

export function stateLines(m: VendMachine, inv: Inventory, ctx: ScreenContext): string[] {
  const money = (v: number): string => formatMoney(v, ctx.decimals);
  const product = m.selection >= 0 ? inv.products[m.selection]! : '';
  const priced = (): string =>
    m.quantity > 1 ? `${m.quantity} x ${money(inv.prices[m.selection]!)} = ${money(m.total)}` : `Price ${money(m.total)}`;
  switch (m.state) {
    case 'ERROR':
      return ['Out of service', ctx.fault];
    case 'IDLE':
      // A refused device is the operator's to fix and explains the rest (a refused changer also means exact change).
      return ['Make a selection', ctx.refused !== '' ? ctx.refused : ctx.exactChangeOnly ? 'Exact change only' : ''];
    case 'PRODUCT_SELECTED':
      return [product, priced()];
    case 'ACCEPTING_PAYMENT':
      if (m.card) {
        // The customer's cancel shows at once, whether or not the reader answers it.
        if (m.cardCancelling) return ['Cancelled', m.selection >= 0 ? product : ''];
        if (m.cardAwaiting) return ['Card: authorising', m.selection >= 0 ? `${product} ${money(m.total)}` : ''];
        return [m.cardFunds >= 0 ? `Card ${money(m.cardFunds)}` : 'Card ready', m.selection >= 0 ? `${product} ${money(m.total)}` : 'Make a selection'];
      }
      return [`Credit ${money(m.credit + m.escrow)}`, m.selection >= 0 ? `${product} ${money(m.total)}` : 'Make a selection'];
    case 'DISPENSING':
      return ['Vending...', product];
    case 'RETURNING_CHANGE':
      return ['Returning money', m.credit > 0 ? money(m.credit) : ''];
  }
}

export function fit(lines: readonly string[], columns: number, rows: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < rows; i++) out.push((lines[i] ?? '').slice(0, columns));
  return out;
}
