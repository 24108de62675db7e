/**
 * Recovery after boot: the books are rebuilt from the journal, and what the
 * power cut left open is settled, each as early as the facts allow.
 *
 * At boot (`recover`, before the sale starts from the credit the books
 * hold): a vend under way (its torn outcome record, if any, says how it
 * ended; otherwise it is recorded uncertain and not charged), a card vend
 * (never dispensed again), and a remote vend (recorded interrupted with what
 * was delivered).
 * When the validator is back (`settleOpenStack`): a bill ordered to the
 * stacker, from the stacker count.
 * A payout the cut interrupted is settled by the payout session from the
 * tube counts when the changer is back (payout.ts).
 */
import type { Board } from '../board.js';
import { CMD_VEND, OUT_INTERRUPTED } from '../command/vocabulary.js';
import type { Journal } from '../journal/journal.js';
import type { Ledger } from '../journal/ledger.js';
import { R_VEND_FAIL, R_VEND_OK } from '../journal/records.js';
import { CardOutcome, CardVend } from '../journal/vocabulary.js';
import { settleCardWithoutReader } from './card.js';
import type { Inventory } from './inventory.js';
import type { VendMachine } from './machine.js';

export interface RecoveryParts {
  board: Board;
  journal: Journal;
  ledger: Ledger;
  inventory: Inventory;
  /** The machine has a cashless reader to settle a reported card vend with. */
  cashless: boolean;
}

/** Open the journal (rebuilding the books) and settle what the power cut left open. */
export function recover(parts: RecoveryParts): void {
  const { board, journal, ledger, inventory } = parts;
  const report = journal.open();
  if (report.fresh) {
    board.log('info', 'journal: new, started from the configured stock');
  } else {
    const st = journal.status();
    board.log('info', `journal: ${report.records} records replayed from ${report.blocks} blocks, last event ${st.lastSeq}, credit ${ledger.credit}, ${st.unsynced} unsynced`);
    if (report.repaired > 0) board.log('warn', `journal: ${report.repaired} records with a flipped bit repaired`);
    if (report.corrupt > 0 || report.missing > 0) board.log('error', `journal: ${report.corrupt} damaged records skipped, ${report.missing} events missing`);
    if (ledger.credit < 0) {
      // Only damage can do this (a lost coin record): the customer cannot owe the machine.
      board.log('error', `journal: credit ${ledger.credit} after damage; set to 0`);
      journal.creditAdjust(-ledger.credit);
    }
    if (report.layoutChanged) board.log('warn', 'journal: the slot layout changed; stock taken from the configuration, money carried over');
  }
  if (ledger.openVend >= 0) {
    const slot = ledger.openVend;
    const code = inventory.codes[slot] ?? String(slot);
    // The first byte of a torn outcome record still says which outcome it was.
    if (report.tornType === R_VEND_OK) {
      journal.vendOk(slot, ledger.openVendPrice);
      board.log('warn', `journal: vend of ${code} was confirmed as the power failed; recorded as sold`);
    } else if (report.tornType === R_VEND_FAIL) {
      journal.vendFailed(slot, 1);
      board.log('warn', `journal: vend of ${code} had failed as the power failed; slot out of service`);
    } else {
      journal.vendUncertain(slot);
      board.log('warn', `journal: vend of ${code} was under way when the power failed; not charged, check the slot`);
    }
  }
  recoverCard(parts);
  if (ledger.remoteOpen !== 0) {
    // Never dispense again for it: the gateway learns how many went out before the power failed.
    board.log('warn', `journal: remote vend (command ${ledger.remoteOpen}) interrupted after ${ledger.remoteDone} of ${ledger.remoteQty}`);
    journal.command(ledger.remoteOpen, 0, CMD_VEND, OUT_INTERRUPTED, ledger.remoteDone, inventory.qty[ledger.remoteSlot] ?? 0);
  }
}

/**
 * A card vend the power cut left open. Approved with no dispense outcome:
 * never dispensed again; the reader (reset by the cut) counts it as a
 * success, so it is recorded for the operator to refund. Delivered or
 * failed but not yet reported: settled when the reader is back (it has
 * reset, so a delivered vend is sold and a failed one could not be
 * refunded), or now if the machine no longer has a reader.
 */
function recoverCard(parts: RecoveryParts): void {
  const { board, journal, ledger: l } = parts;
  const code = parts.inventory.codes[l.cardSlot] ?? String(l.cardSlot);
  if (l.cardVend === CardVend.UNCERTAIN) {
    journal.cardResult(CardOutcome.UNCERTAIN, l.cardSlot, l.cardAmount);
    board.log('warn', `journal: card vend of ${code} (${l.cardAmount}) was under way when the power failed; the card counts it as paid, check the slot`);
  } else if (l.cardVend === CardVend.APPROVED) {
    journal.cardResult(CardOutcome.NOT_DISPENSED, l.cardSlot, l.cardAmount);
    board.log('warn', `journal: card vend of ${code} (${l.cardAmount}) was approved but not started when the power failed; refund owed`);
  } else if ((l.cardVend === CardVend.DELIVERED || l.cardVend === CardVend.FAILED) && !parts.cashless) {
    settleCardWithoutReader(journal, l, parts.inventory, board);
  }
}

/** The validator is back: a bill ordered to the stacker before the power cut was stacked if the stacker count says so. */
export function settleOpenStack(parts: { board: Board; journal: Journal; ledger: Ledger; machine: VendMachine }, stackerCount: number): void {
  const { board, journal, ledger } = parts;
  if (ledger.openStack <= 0) return;
  const value = ledger.openStack;
  if (stackerCount > ledger.openStackBefore) {
    journal.billStacked(value);
    parts.machine.restoreCredit(ledger.credit);
    board.log('warn', `journal: bill of ${value} reached the stacker as the power failed; credited`);
  } else {
    journal.billReturned(value);
    board.log('warn', `journal: bill of ${value} was not stacked before the power failed; it was returned`);
  }
}
