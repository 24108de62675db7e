/**
 * The card session: the cashless reader's events reach the purchase state
 * machine from here, the machine's card ports (VEND REQUEST, VEND CANCEL,
 * SESSION COMPLETE) reach the reader from here, and the open card vend is
 * settled with the reader once its dispense outcome is on flash.
 *
 * Journal before effect: an approval is journaled before the reader's POLL
 * is acknowledged and before the motor turns. See docs/cashless.md.
 */
import type { Board } from '../board.js';
import type { Journal } from '../journal/journal.js';
import type { Ledger } from '../journal/ledger.js';
import { CARD_OUTCOMES } from '../journal/records.js';
import { CardOutcome, CardVend } from '../journal/vocabulary.js';
import type { MdbBus } from '../mdb/bus.js';
import type { CashlessReader } from '../mdb/cashless.js';
import type { Sale } from './controller.js';
import type { Inventory } from './inventory.js';
import type { Panel } from './panel.js';
import type { RemoteActions } from './remote.js';

export interface CardSessionOptions {
  sale: Sale;
  board: Board;
  reader: CashlessReader;
  bus: MdbBus;
  journal: Journal;
  ledger: Ledger;
  inventory: Inventory;
  panel: Panel;
  /** A remote vend has the chute: a card presented meanwhile is turned away. */
  remote: RemoteActions;
}

/** The reader's max/min prices: the machine's dearest and cheapest, and their greatest common divisor (each must be a whole number of the reader's units). */
export function readerPrices(reader: CashlessReader, inventory: Inventory): void {
  const prices = inventory.prices;
  let min = Infinity;
  let max = 0;
  let step = 0;
  for (let i = 0; i < prices.length; i++) {
    const p = prices[i]!;
    if (p > max) max = p;
    if (p < min) min = p;
    let a = step;
    let b = p;
    while (b > 0) {
      const r = a % b;
      a = b;
      b = r;
    }
    step = a;
  }
  reader.setPrices(min === Infinity ? 0 : min, max, step);
}

/**
 * Record what the reader did on its own with the open card vend, its
 * approving session gone (the reader reset, dropped or ended it, or the
 * machine no longer has a reader): a delivered vend is sold (a reset after
 * approval counts as a success there), a failed one went unrefunded.
 */
export function settleCardWithoutReader(journal: Journal, ledger: Ledger, inventory: Inventory, board: Board): void {
  const outcome = ledger.cardVend === CardVend.DELIVERED ? CardOutcome.SOLD_RESET : CardOutcome.UNREFUNDED;
  journal.cardResult(outcome, ledger.cardSlot, ledger.cardAmount);
  const code = inventory.codes[ledger.cardSlot] ?? String(ledger.cardSlot);
  board.log('warn', `cashless: card vend of ${code} (${ledger.cardAmount}) settled without the reader: ${CARD_OUTCOMES[outcome]}`);
}

export class CardSession {
  private readonly sale: Sale;
  private readonly board: Board;
  private readonly reader: CashlessReader;
  private readonly bus: MdbBus;
  private readonly journal: Journal;
  private readonly ledger: Ledger;
  private readonly inventory: Inventory;
  private readonly panel: Panel;
  private readonly remote: RemoteActions;
  /**
   * The reader session that approved the open card vend is still alive, so
   * VEND SUCCESS/FAILURE can be reported to it. Any reset, loss or end of
   * the session clears it: the reader has then settled on its own (a reset
   * after approval counts as a success there).
   */
  private live = false;

  constructor(options: CardSessionOptions) {
    this.sale = options.sale;
    this.board = options.board;
    this.reader = options.reader;
    this.bus = options.bus;
    this.journal = options.journal;
    this.ledger = options.ledger;
    this.inventory = options.inventory;
    this.panel = options.panel;
    this.remote = options.remote;
  }

  /**
   * Bring the open card vend to its end with the reader, once its dispense
   * outcome is recorded: report it while the approving session lives; once
   * that session is gone, record what the reader did on its own.
   */
  settle(): void {
    const l = this.ledger;
    const v = l.cardVend;
    if (v !== CardVend.DELIVERED && v !== CardVend.FAILED) return;
    const reader = this.reader;
    if (this.live && reader.ready) {
      if (!reader.reporting) reader.vendResult(v === CardVend.DELIVERED, l.cardSlot + 1);
      this.bus.kick();
      return;
    }
    // Wait for the reader to come back: it comes back reset, with its session settled.
    if (!reader.ready) return;
    settleCardWithoutReader(this.journal, l, this.inventory, this.board);
  }

  // ---- the machine's card ports ------------------------------------------------------

  /** Ask the reader to approve one item of `slot` at `price`. */
  request(slot: number, price: number): void {
    const reader = this.reader;
    const machine = this.sale.machine;
    if (!reader.session) {
      // The reader's session is already gone (its END SESSION crossed the selection).
      this.board.timers.set(() => machine.cardEnded(), 0);
      return;
    }
    // Item numbers are 1-based slot numbers.
    if (!reader.vendRequest(price, slot + 1)) {
      this.board.log('warn', 'cashless: the reader is busy with another vend; request refused');
      this.board.timers.set(() => this.panel.customer(() => machine.cardDenied()), 0);
      return;
    }
    this.bus.kick();
  }

  /** Withdraw the request still waiting for approval. */
  cancel(): void {
    // A request that had not left yet is simply dropped: no answer will come, so deny it here.
    if (this.reader.vendCancel()) {
      const machine = this.sale.machine;
      this.board.timers.set(() => this.panel.customer(() => machine.cardDenied()), 0);
    }
    this.bus.kick();
  }

  /** SESSION COMPLETE. */
  end(): void {
    this.reader.sessionComplete();
    this.bus.kick();
  }

  // ---- the reader's events ------------------------------------------------------------

  readerReady(): void {
    // Every way to ready goes through a reset of the reader: any session it had is gone.
    this.live = false;
    readerPrices(this.reader, this.inventory);
    this.settle();
    this.sale.changed();
  }

  readerLost(): void {
    this.live = false;
    const m = this.sale.machine;
    // The customer was using the reader: say why the card stopped working.
    if (m.card) this.panel.notice('card-reader-silent', -1);
    m.cardEnded();
    this.sale.changed();
  }

  sessionBegan(funds: number): void {
    if (this.remote.vending) {
      // The chute is busy with a remote vend: close the session at once.
      this.reader.sessionComplete();
      return;
    }
    const machine = this.sale.machine;
    this.panel.customer(() => machine.cardSession(funds, this.reader.multiVend));
  }

  sessionCancelRequested(): void {
    const machine = this.sale.machine;
    this.panel.customer(() => machine.cardCancelRequest());
  }

  vendApproved(amount: number): void {
    const m = this.sale.machine;
    if (m.cardRequested && m.selection >= 0) {
      // Journal before effect: the approval is on flash before the POLL is acknowledged and before the motor turns.
      this.journal.cardApproved(m.selection, amount);
      this.live = true;
      m.cardApproved(amount);
      this.panel.render();
      return;
    }
    // Nobody is waiting for it (the customer cancelled as it came): nothing is dispensed and the reader refunds.
    this.board.log('warn', `cashless: approval of ${amount} not wanted; reporting a failure so the card is refunded`);
    this.reader.vendResult(false, 0);
    this.panel.customer(() => m.cardApproved(amount));
  }

  vendDenied(): void {
    const machine = this.sale.machine;
    this.panel.customer(() => machine.cardDenied());
  }

  vendReported(success: boolean): void {
    const l = this.ledger;
    if ((success && l.cardVend === CardVend.DELIVERED) || (!success && l.cardVend === CardVend.FAILED)) {
      this.journal.cardResult(success ? CardOutcome.SUCCESS : CardOutcome.REFUNDED, l.cardSlot, l.cardAmount);
    } else {
      this.board.log('info', `cashless: reader confirmed VEND ${success ? 'SUCCESS' : 'FAILURE'} for no open card vend`);
    }
    this.sale.changed();
  }

  sessionEnded(): void {
    // Not a customer's action: a message showing ("Thank you!", "Vend failed") stays.
    this.live = false;
    this.sale.machine.cardEnded();
    this.settle();
    this.sale.changed();
  }
}
