/**
 * The purchase state machine. Pure decisions: it never touches hardware; it
 * asks its ports to dispense, pay out, stack or return a bill, and is told
 * the outcomes. Money arriving is always taken into account, whatever the
 * state; any other event that makes no sense in a state is ignored and
 * reported, never a crash.
 *
 * Credit is what the customer has paid and not spent (coins and stacked
 * bills); a bill in escrow is not credit until it is stacked. Items are paid
 * one by one as each is confirmed delivered, so a failed dispense leaves the
 * customer's money as credit, which is then refunded.
 *
 * A card session (the cashless reader) is the other way to pay, never mixed
 * with cash in one purchase: each item is a VEND REQUEST the reader approves
 * or denies, and the card pays the approved amount when the item is
 * delivered; credit is cash only and a card vend never touches it. See
 * docs/cashless.md.
 *
 * About 600 lines, kept in one file on purpose: every transition of the one
 * state machine, cash and card, is here, so what a state allows can be read
 * in one place (its types and ports are in ports.ts).
 */
import { DISPENSE_OK, type DispenseResult } from '../dispense/dispenser.js';
import { Inventory, SLOT_EMPTY, SLOT_OK, SLOT_OUT_OF_SERVICE, SLOT_SHORT } from './inventory.js';
import type { VendOptions, VendPorts, VendState } from './ports.js';

/** The bill in escrow: none, ESCROW stack sent, ESCROW return sent. */
const Escrow = Object.freeze({ NONE: 0, STACKING: 1, RETURNING: 2 });

/** The card vend of the open session: none, VEND REQUEST sent, approved (dispensing), VEND CANCEL sent. */
const CardVend = Object.freeze({ NONE: 0, REQUESTED: 1, APPROVED: 2, CANCELLING: 3 });

export class VendMachine {
  // Only the machine's own decisions change these; the rest of the firmware reads them through the getters below.
  private state_: VendState = 'ERROR';
  private selection_ = -1;
  private quantity_ = 0;
  private delivered = 0;
  private credit_ = 0;
  private escrow_ = 0;
  private escrowAction: number = Escrow.NONE;
  private card_ = false;
  private cardFunds_ = -1;
  private cardMulti = false;
  private cardVend: number = CardVend.NONE;
  private cardAmount_ = 0;
  private paying = false;
  private refundShort = false;
  private ready = false;
  /** Credit held after a payout that could not be verified: nothing pays it out until `restoreCredit` says what is left. */
  private held = false;
  private readonly inventory: Inventory;
  private readonly ports: VendPorts;
  private readonly options: VendOptions;

  constructor(inventory: Inventory, options: VendOptions, ports: VendPorts) {
    this.inventory = inventory;
    this.options = options;
    this.ports = ports;
  }

  get state(): VendState {
    return this.state_;
  }

  /** The slot chosen (-1: none). */
  get selection(): number {
    return this.selection_;
  }

  get quantity(): number {
    return this.quantity_;
  }

  /** What the customer has paid in cash and not spent (minor units); a bill in escrow is not in it. */
  get credit(): number {
    return this.credit_;
  }

  /** The bill waiting in escrow (minor units), or 0. */
  get escrow(): number {
    return this.escrow_;
  }

  /** A card session is open. */
  get card(): boolean {
    return this.card_;
  }

  /** The open card session's funds (-1: the reader does not say). */
  get cardFunds(): number {
    return this.cardFunds_;
  }

  /** What the reader approved for the item being dispensed. */
  get cardAmount(): number {
    return this.cardAmount_;
  }

  /** Total price of the current selection. */
  get total(): number {
    return this.selection_ < 0 ? 0 : this.inventory.prices[this.selection_]! * this.quantity_;
  }

  /** True while the machine is doing something the customer must wait for. */
  get busy(): boolean {
    return this.state_ === 'DISPENSING' || this.state_ === 'RETURNING_CHANGE' || this.escrowAction !== Escrow.NONE || this.cardAwaiting;
  }

  /** The customer cancelled a card vend the reader has not answered yet (VEND CANCEL sent). */
  get cardCancelling(): boolean {
    return this.cardVend === CardVend.CANCELLING;
  }

  /** A VEND REQUEST (or its cancellation) waits for the reader's answer. */
  get cardAwaiting(): boolean {
    return this.cardVend === CardVend.REQUESTED || this.cardVend === CardVend.CANCELLING;
  }

  /** A VEND REQUEST is out and the customer still wants it: an approval now is taken. */
  get cardRequested(): boolean {
    return this.cardVend === CardVend.REQUESTED;
  }

  /** The item being dispensed was approved by the card reader (it is paid by card, at `cardAmount`). */
  get cardVending(): boolean {
    return this.cardVend === CardVend.APPROVED;
  }

  get escrowPending(): boolean {
    return this.escrowAction !== Escrow.NONE;
  }

  // ---- customer ------------------------------------------------------------

  select(slot: number, quantity: number): void {
    const s = this.state_;
    if (s !== 'IDLE' && s !== 'PRODUCT_SELECTED' && s !== 'ACCEPTING_PAYMENT') return this.ports.ignored('select', s);
    if (this.escrowAction !== Escrow.NONE) return this.ports.ignored('select while a bill is moving', s);
    if (this.cardVend !== CardVend.NONE) return this.ports.ignored('select while a card vend is under way', s);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > this.options.maxQuantity) {
      this.ports.notice('bad-quantity', slot);
      return;
    }
    const availability = this.inventory.availability(slot, quantity);
    if (availability !== SLOT_OK) {
      this.ports.notice(
        availability === SLOT_EMPTY
          ? 'sold-out'
          : availability === SLOT_OUT_OF_SERVICE
            ? 'out-of-service'
            : availability === SLOT_SHORT
              ? 'only-left'
              : 'unknown-slot',
        slot,
      );
      return;
    }
    this.selection_ = slot;
    this.quantity_ = quantity;
    if (this.card_) {
      this.ports.timer(this.options.sessionTimeoutMs);
      this.evaluateCard();
    } else if (this.credit_ === 0 && this.escrow_ === 0) {
      this.state_ = 'PRODUCT_SELECTED';
      this.ports.timer(this.options.sessionTimeoutMs);
    } else {
      this.state_ = 'ACCEPTING_PAYMENT';
      this.ports.timer(this.options.sessionTimeoutMs);
      this.evaluate();
    }
    this.ports.changed();
  }

  cancel(): void {
    switch (this.state_) {
      case 'PRODUCT_SELECTED':
        this.selection_ = -1;
        this.state_ = 'IDLE';
        this.ports.timer(0);
        this.ports.changed();
        return;
      case 'ACCEPTING_PAYMENT':
        if (this.card_) return this.cancelCard();
        this.startRefund();
        return;
      case 'DISPENSING':
        // Between the items of a card multi-vend: the next approval may still be withdrawn.
        if (this.card_ && this.cardVend === CardVend.REQUESTED) return this.cancelCard();
        this.ports.ignored('cancel', this.state_);
        return;
      default:
        this.ports.ignored('cancel', this.state_);
    }
  }

  timeout(): void {
    if (this.cardVend === CardVend.CANCELLING) {
      // The reader never answered VEND CANCEL: close the session anyway (an approval arriving later is refunded).
      this.cardVend = CardVend.NONE;
      this.endCard();
      return;
    }
    if (this.state_ === 'PRODUCT_SELECTED' || this.state_ === 'ACCEPTING_PAYMENT' || (this.state_ === 'DISPENSING' && this.cardVend === CardVend.REQUESTED)) {
      this.cancel();
    } else {
      this.ports.ignored('timeout', this.state_);
    }
  }

  // ---- money -------------------------------------------------------------------

  /** A coin was accepted (credit in minor units). */
  coin(value: number): void {
    this.addCredit(value);
  }

  /** A bill waits in escrow: decide whether to take it. */
  billEscrowed(value: number): void {
    const s = this.state_;
    const open = (s === 'IDLE' || s === 'PRODUCT_SELECTED' || s === 'ACCEPTING_PAYMENT') && !this.card_;
    if (!open || this.escrow_ > 0 || this.escrowAction !== Escrow.NONE || this.credit_ + value > this.options.maxCredit) {
      this.escrowAction = Escrow.RETURNING;
      this.escrow_ = value;
      this.ports.escrow(false);
      this.ports.notice(open && this.credit_ + value > this.options.maxCredit ? 'max-credit' : 'bill-returned', this.selection_);
      this.ports.changed();
      return;
    }
    this.escrow_ = value;
    if (s !== 'ACCEPTING_PAYMENT') this.state_ = 'ACCEPTING_PAYMENT';
    this.ports.timer(this.options.sessionTimeoutMs);
    this.decideEscrow();
    this.ports.changed();
  }

  billStacked(value: number): void {
    if (this.escrowAction === Escrow.STACKING || this.escrow_ === value) {
      this.escrow_ = 0;
      this.escrowAction = Escrow.NONE;
    }
    this.addCredit(value);
  }

  billReturned(_value: number): void {
    this.escrow_ = 0;
    this.escrowAction = Escrow.NONE;
    if (this.state_ === 'RETURNING_CHANGE') {
      this.tryFinishRefund();
      return;
    }
    if (this.state_ === 'ACCEPTING_PAYMENT' && this.credit_ === 0) {
      this.state_ = this.selection_ >= 0 ? 'PRODUCT_SELECTED' : 'IDLE';
    }
    this.ports.changed();
  }

  private addCredit(value: number): void {
    this.credit_ += value;
    if (this.card_ && this.cardVend === CardVend.NONE && this.state_ === 'ACCEPTING_PAYMENT') {
      // Cash slipped in as the card session opened (acceptance was being switched off): cash wins, the session closes.
      this.ports.cardEnd?.();
      this.closeCard();
    }
    switch (this.state_) {
      case 'IDLE':
      case 'PRODUCT_SELECTED':
        this.state_ = 'ACCEPTING_PAYMENT';
        this.ports.timer(this.options.sessionTimeoutMs);
        this.evaluate();
        break;
      case 'ACCEPTING_PAYMENT':
        this.ports.timer(this.options.sessionTimeoutMs);
        this.evaluate();
        break;
      case 'ERROR':
        // Acceptance is off while out of service; money that slips in goes straight back,
        // unless the credit is held: then it waits with it (refunding would pay the unknown part).
        if (this.held) break;
        this.startRefund();
        return;
      case 'RETURNING_CHANGE':
        this.tryFinishRefund();
        return;
      default:
        // DISPENSING: kept as credit and settled when the vend ends.
        break;
    }
    this.ports.changed();
  }

  /**
   * Stack the bill in escrow, or keep holding it. Without a selection the
   * customer has not committed, so the bill waits and cancel hands back the
   * same bill. With one, it is taken if it completes the purchase and the
   * change can be paid, or, when more money is needed, if it could still be
   * refunded in coins (so another bill can follow).
   */
  private decideEscrow(): void {
    if (this.escrowAction !== Escrow.NONE || this.escrow_ === 0 || this.selection_ < 0) return;
    const funds = this.credit_ + this.escrow_;
    const owed = funds >= this.total ? funds - this.total : funds;
    if (this.options.policy === 'overpay' || this.ports.canPay(owed)) {
      this.escrowAction = Escrow.STACKING;
      this.ports.escrow(true);
    } else {
      this.ports.notice('no-change', this.selection_);
    }
  }

  /** In ACCEPTING_PAYMENT: vend if the selection is paid for and the change can be given. */
  private evaluate(): void {
    if (this.card_) return this.evaluateCard();
    if (this.selection_ < 0) return;
    if (this.escrow_ > 0) {
      this.decideEscrow();
      return;
    }
    const total = this.total;
    if (this.credit_ < total) return;
    if (this.options.policy === 'refuse' && !this.ports.canPay(this.credit_ - total)) {
      this.ports.notice('no-change', this.selection_);
      return;
    }
    this.state_ = 'DISPENSING';
    this.delivered = 0;
    this.ports.timer(0);
    this.ports.dispense(this.selection_);
  }

  // ---- hardware outcomes ----------------------------------------------------------

  dispensed(result: DispenseResult): void {
    if (this.state_ !== 'DISPENSING') return this.ports.ignored('dispensed', this.state_);
    if (this.cardVend === CardVend.APPROVED) return this.cardDispensed(result);
    const slot = this.selection_;
    if (result === DISPENSE_OK) {
      const price = this.inventory.prices[slot]!;
      this.credit_ -= price;
      this.delivered++;
      this.ports.sold(slot, price);
      if (this.delivered < this.quantity_ && this.inventory.availability(slot, 1) === SLOT_OK) {
        this.ports.dispense(slot);
        this.ports.changed();
        return;
      }
      this.ports.notice('thank-you', slot);
    } else {
      this.ports.slotFailed(slot, result);
      this.ports.notice('jam', slot);
    }
    this.selection_ = -1;
    this.quantity_ = 0;
    if (this.credit_ > 0) {
      this.startRefund();
    } else {
      this.state_ = this.ready ? 'IDLE' : 'ERROR';
      this.ports.changed();
    }
  }

  paidOut(asked: number, paid: number): void {
    if (!this.paying) return this.ports.ignored('paidOut', this.state_);
    this.paying = false;
    this.credit_ -= paid;
    if (paid < asked) this.refundShort = true;
    this.tryFinishRefund();
  }

  /**
   * The payout could not be verified (the changer went away during it and
   * stayed away): `paid` is what it certainly paid. The rest stays the
   * customer's credit, held out of service until the controller learns what
   * the changer paid (`restoreCredit`, then `setReady`).
   */
  payoutUnsettled(paid: number): void {
    if (!this.paying) return this.ports.ignored('payoutUnsettled', this.state_);
    this.paying = false;
    this.credit_ -= paid;
    this.held = true;
    this.state_ = 'ERROR';
    this.ports.timer(0);
    this.ports.changed();
  }

  /** Payment devices became usable (or unusable). */
  setReady(ready: boolean): void {
    this.ready = ready;
    if (!ready && this.state_ === 'IDLE') {
      this.state_ = 'ERROR';
      this.ports.changed();
    } else if (ready && this.state_ === 'ERROR' && !this.paying) {
      if (this.credit_ > 0) {
        // Credit that survived a power cut: the customer may go on, or the timeout refunds it.
        this.state_ = 'ACCEPTING_PAYMENT';
        this.ports.timer(this.options.sessionTimeoutMs);
      } else {
        this.state_ = 'IDLE';
      }
      this.ports.changed();
    }
  }

  /** After a reboot: the credit the journal says the customer holds. */
  restoreCredit(credit: number): void {
    this.credit_ = credit;
    this.held = false;
  }

  // ---- card sessions -----------------------------------------------------------------

  /**
   * A card was presented and the reader opened a session (`funds` minor
   * units, -1 unknown). Only a machine with no cash in play takes it: one
   * purchase, one way to pay; otherwise the session is closed at once.
   */
  cardSession(funds: number, multiVend: boolean): void {
    const s = this.state_;
    if (this.card_ || (s !== 'IDLE' && s !== 'PRODUCT_SELECTED') || this.credit_ !== 0 || this.escrow_ !== 0 || this.escrowAction !== Escrow.NONE) {
      this.ports.cardEnd?.();
      if (!this.card_ && (s === 'ACCEPTING_PAYMENT' || this.escrow_ !== 0)) this.ports.notice('card-refused', this.selection_);
      this.ports.ignored('card session', s);
      return;
    }
    this.card_ = true;
    this.cardFunds_ = funds;
    this.cardMulti = multiVend;
    this.cardVend = CardVend.NONE;
    this.state_ = 'ACCEPTING_PAYMENT';
    this.ports.timer(this.options.sessionTimeoutMs);
    this.evaluateCard();
    this.ports.changed();
  }

  /** The reader approved the requested item for `amount`: dispense it. False if nothing was waiting for it (the caller has the reader refund). */
  cardApproved(amount: number): boolean {
    if (this.cardVend !== CardVend.REQUESTED || this.selection_ < 0) {
      this.ports.ignored('card approval', this.state_);
      if (this.cardVend === CardVend.CANCELLING) {
        // The approval crossed our VEND CANCEL: no vend; the caller reports a failure (refund), and the session ends.
        this.cardVend = CardVend.NONE;
        this.endCard();
      }
      return false;
    }
    this.cardVend = CardVend.APPROVED;
    this.cardAmount_ = amount;
    if (this.state_ !== 'DISPENSING') this.delivered = 0;
    this.state_ = 'DISPENSING';
    this.ports.timer(0);
    this.ports.dispense(this.selection_);
    this.ports.changed();
    return true;
  }

  /** The reader refused the item: say so and keep the session for another choice (or end it if the customer was leaving). */
  cardDenied(): void {
    if (this.cardVend === CardVend.CANCELLING) {
      this.cardVend = CardVend.NONE;
      this.endCard();
      return;
    }
    if (this.cardVend !== CardVend.REQUESTED) return this.ports.ignored('card denial', this.state_);
    this.cardVend = CardVend.NONE;
    if (this.state_ === 'DISPENSING') {
      // A later item of a multi-vend: what was delivered stands, the rest is not sold.
      this.ports.notice('card-denied', this.selection_);
      this.endCard();
      return;
    }
    this.ports.notice('card-denied', this.selection_);
    this.selection_ = -1;
    this.quantity_ = 0;
    this.ports.timer(this.options.sessionTimeoutMs);
    this.ports.changed();
  }

  /** The customer cancelled at the reader. */
  cardCancelRequest(): void {
    if (!this.card_) return this.ports.ignored('card cancel request', this.state_);
    // During an approved vend the item is delivered first; the session ends after it.
    if (this.cardVend === CardVend.APPROVED || this.cardVend === CardVend.CANCELLING) return;
    this.cancelCard();
  }

  /** The reader's session is gone (it ended it, reset or went offline). */
  cardEnded(): void {
    if (!this.card_) return;
    this.card_ = false;
    this.cardFunds_ = -1;
    if (this.cardVend === CardVend.APPROVED) {
      // The item approved is being dispensed: it finishes; nothing more goes on the card.
      return;
    }
    if (this.cardVend === CardVend.CANCELLING) {
      // The customer had cancelled (the reader never answered it): the selection goes with the session.
      this.selection_ = -1;
      this.quantity_ = 0;
    }
    this.cardVend = CardVend.NONE;
    if (this.state_ === 'DISPENSING') {
      // Between the items of a multi-vend.
      this.selection_ = -1;
      this.quantity_ = 0;
      this.afterCard();
      return;
    }
    if (this.state_ !== 'ACCEPTING_PAYMENT') return this.ports.changed();
    if (this.credit_ > 0) {
      this.evaluate();
    } else {
      this.state_ = this.selection_ >= 0 ? 'PRODUCT_SELECTED' : this.ready ? 'IDLE' : 'ERROR';
      this.ports.timer(this.selection_ >= 0 ? this.options.sessionTimeoutMs : 0);
    }
    this.ports.changed();
  }

  /** With a card session open: request the selected item, if any. */
  private evaluateCard(): void {
    if (!this.card_ || this.cardVend !== CardVend.NONE || this.selection_ < 0) return;
    if (this.quantity_ > 1 && !this.cardMulti) {
      // One VEND REQUEST per item, and this reader takes one vend per session.
      this.ports.notice('card-one-item', this.selection_);
      this.selection_ = -1;
      this.quantity_ = 0;
      return;
    }
    this.delivered = 0;
    this.requestCardItem();
  }

  private requestCardItem(): void {
    this.cardVend = CardVend.REQUESTED;
    this.ports.timer(this.options.sessionTimeoutMs);
    this.ports.cardVendRequest?.(this.selection_, this.inventory.prices[this.selection_]!);
  }

  /** The item approved by the card was delivered or not; the controller has told the reader. */
  private cardDispensed(result: DispenseResult): void {
    const slot = this.selection_;
    this.cardVend = CardVend.NONE;
    if (result === DISPENSE_OK) {
      this.delivered++;
      this.ports.sold(slot, this.cardAmount_);
      if (this.card_ && this.delivered < this.quantity_ && this.inventory.availability(slot, 1) === SLOT_OK) {
        this.requestCardItem();
        this.ports.changed();
        return;
      }
      this.ports.notice('thank-you', slot);
    } else {
      this.ports.slotFailed(slot, result);
      this.ports.notice('jam', slot);
    }
    this.selection_ = -1;
    this.quantity_ = 0;
    this.endCard();
  }

  /** Cancel or timeout with a card session open. */
  private cancelCard(): void {
    if (this.cardVend === CardVend.REQUESTED) {
      this.cardVend = CardVend.CANCELLING;
      this.ports.timer(this.options.sessionTimeoutMs);
      this.ports.cardVendCancel?.();
      this.ports.changed();
      return;
    }
    if (this.cardVend === CardVend.CANCELLING) return;
    this.endCard();
  }

  /** Close the session with the reader and leave the card state. */
  private endCard(): void {
    if (this.card_) this.ports.cardEnd?.();
    this.closeCard();
    this.selection_ = -1;
    this.quantity_ = 0;
    this.afterCard();
  }

  private closeCard(): void {
    this.card_ = false;
    this.cardFunds_ = -1;
    if (this.cardVend !== CardVend.APPROVED) this.cardVend = CardVend.NONE;
  }

  /** After a card purchase: cash that slipped in meanwhile goes back; otherwise idle. */
  private afterCard(): void {
    if (this.credit_ > 0 || this.escrow_ > 0) {
      this.startRefund();
      return;
    }
    this.state_ = this.ready ? 'IDLE' : 'ERROR';
    this.ports.timer(0);
    this.ports.changed();
  }

  // ---- refunds and change ------------------------------------------------------------

  private startRefund(): void {
    this.selection_ = -1;
    this.quantity_ = 0;
    this.state_ = 'RETURNING_CHANGE';
    this.refundShort = false;
    this.ports.timer(0);
    if (this.escrow_ > 0 && this.escrowAction === Escrow.NONE) {
      this.escrowAction = Escrow.RETURNING;
      this.ports.escrow(false);
    }
    this.tryFinishRefund();
  }

  private tryFinishRefund(): void {
    if (this.state_ !== 'RETURNING_CHANGE' || this.paying || this.escrowAction !== Escrow.NONE) {
      this.ports.changed();
      return;
    }
    if (this.credit_ > 0 && !this.refundShort) {
      this.paying = true;
      this.ports.changed();
      this.ports.payout(this.credit_);
      return;
    }
    if (this.credit_ > 0) {
      // What the tubes could not pay stays the customer's credit.
      this.state_ = 'ACCEPTING_PAYMENT';
      this.ports.notice('credit-kept', -1);
    } else {
      this.state_ = this.ready ? 'IDLE' : 'ERROR';
    }
    this.ports.changed();
  }
}
