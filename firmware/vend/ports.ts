/**
 * The purchase state machine's boundary (machine.ts): its states, the
 * notices it asks the panel to show, the options it decides with, and the
 * ports through which it acts on the hardware and hears the outcomes.
 */
import type { ChangePolicy } from '../config.js';
import type { DispenseResult } from '../dispense/dispenser.js';

export type VendState = 'IDLE' | 'PRODUCT_SELECTED' | 'ACCEPTING_PAYMENT' | 'DISPENSING' | 'RETURNING_CHANGE' | 'ERROR';

export type Notice =
  | 'sold-out'
  | 'out-of-service'
  | 'only-left'
  | 'unknown-slot'
  | 'bad-quantity'
  | 'no-change'
  | 'bill-returned'
  | 'jam'
  | 'thank-you'
  | 'credit-kept'
  | 'max-credit'
  | 'card-denied'
  | 'card-refused'
  | 'card-one-item'
  /** The reader went silent with the customer's card session open. */
  | 'card-reader-silent';

export interface VendPorts {
  /** True when `amount` can be paid exactly from the coins in the tubes. */
  canPay(amount: number): boolean;
  /** Run the slot's spiral once; answer with `dispensed()`. */
  dispense(slot: number): void;
  /** Pay `amount` (or as much of it as possible) in coins; answer with `paidOut()`. */
  payout(amount: number): void;
  /** Stack (true) or return (false) the bill in escrow; answer with `billStacked()` / `billReturned()`. */
  escrow(stack: boolean): void;
  /** One item was delivered and paid for. */
  sold(slot: number, price: number): void;
  /** The slot failed to deliver; it goes out of service. */
  slotFailed(slot: number, result: DispenseResult): void;
  /** Arm the customer-inactivity timer (ms > 0) or stop it (0); on expiry call `timeout()`. */
  timer(ms: number): void;
  notice(notice: Notice, slot: number): void;
  ignored(event: string, state: VendState): void;
  /** State, selection or credit changed. */
  changed(): void;
  /** Ask the card reader to approve `price` for one item of `slot`; answer with `cardApproved()` or `cardDenied()`. */
  cardVendRequest?(slot: number, price: number): void;
  /** Withdraw the request still waiting for approval; answer with `cardDenied()` (or `cardApproved()` if it crossed). */
  cardVendCancel?(): void;
  /** Close the card session (SESSION COMPLETE). */
  cardEnd?(): void;
}

export interface VendOptions {
  policy: ChangePolicy;
  sessionTimeoutMs: number;
  maxCredit: number;
  maxQuantity: number;
}
