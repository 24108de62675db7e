/**
 * Journal record types and payload layouts (little-endian).
 *
 * Events carry consecutive sequence numbers and go to the gateway; meta
 * records (checkpoint, sync) carry the sequence number of the event before
 * them and never leave the machine.
 *
 * The two vend outcomes have type bytes of their own shape (0x7F, 0xBF) and
 * every other type is 0xC0..0xFE: when power fails while an outcome is being
 * written, its first byte alone says which outcome it was.
 */

/** A product was confirmed in the chute: slot u8, price u32. */
export const R_VEND_OK = 0x7f;
/** A dispense failed: slot u8, reason u8 (1 jam, 2 sensor fault). */
export const R_VEND_FAIL = 0xbf;

/** The journal was started on this machine: slot count u8, slot-layout hash u32. */
export const R_INIT = 0xc0;
/** The whole ledger (meta). */
export const R_CHECKPOINT = 0xc1;
/** The firmware started (a power outage or reset happened before it). */
export const R_BOOT = 0xc2;
/** A coin was accepted: coin type u8, routing u8, value u16. */
export const R_COIN_IN = 0xc3;
/** About to send ESCROW stack: value u32, stacker count before u16. */
export const R_BILL_STACKING = 0xc4;
/** A bill reached the stacker: value u32. */
export const R_BILL_STACKED = 0xc5;
/** A bill was handed back from escrow: value u32. */
export const R_BILL_RETURNED = 0xc6;
/** About to run a spiral: slot u8, price u32. */
export const R_VEND_START = 0xc7;
/** A vend interrupted by a power cut whose outcome was not recorded: slot u8. */
export const R_VEND_UNCERTAIN = 0xc8;
/** About to send DISPENSE: asked u32, then the 16 tube counts read just before (u8 each). */
export const R_PAYOUT_START = 0xc9;
/** A payout verified against the tubes: paid value u32, coins u16, then (coin type u8, count u8) per type paid. */
export const R_PAYOUT_DONE = 0xca;
/** Coins paid with the changer's manual buttons: coin type u8, count u8, value u32. */
export const R_COINS_MANUAL = 0xcb;
/** The gateway acknowledged every event up to this sequence number (meta): seq u32. */
export const R_SYNC = 0xcc;
/** The interim (since last reset) audit counters were reset. */
export const R_INTERIM_RESET = 0xcd;
/** Credit corrected after journal damage made it impossible (negative): delta i32. */
export const R_CREDIT_ADJUST = 0xce;
/** The changer's tube counts differ from what the journal expected (a cut, an operator): 16 counts, u8 each. */
export const R_TUBES = 0xcf;

/**
 * A remote command was dealt with: n u32 (the gateway's number for it),
 * issued u32 (Unix seconds), type u8, outcome u8, value u16 (what the
 * outcome counts: items dispensed, or the reason it was refused),
 * remaining u16 (a vend's slot stock afterwards; 0xffff otherwise).
 */
export const R_COMMAND = 0xd0;
/** A command was turned away before it was applied: n u32 (as claimed), reason u8, rejections not recorded since the last one u16. */
export const R_COMMAND_REJECTED = 0xd1;
/** A slot's price set by command: slot u8, price u32, version u32 (the command's n). */
export const R_PRICE = 0xd2;
/** A slot's planogram set by command: slot u8, price u32, qty u16, capacity u16, version u32, product (len u8, UTF-8), category (len u8, UTF-8). */
export const R_PLANOGRAM = 0xd3;
/** Sales locked (1) or unlocked (0) by command: locked u8, version u32. */
export const R_LOCK = 0xd4;
/** A setting changed by command: key u8, value u32, version u32. */
export const R_SETTING = 0xd5;
/** The command key was replaced (meta, never sent): kid u8, key 32 bytes. */
export const R_KEY = 0xd6;
/** A remote vend (paid elsewhere) begins: n u32, slot u8, quantity u8, price u32 per item. */
export const R_REMOTE_VEND = 0xd7;
/**
 * The audit data was read (EVA-DTS, by command or at the DEX port): read
 * number u32 (since initialisation), wall time u32 (Unix seconds, 0: not
 * known). Clears the interim counters, as the standard's default (SD1 AUTO).
 */
export const R_AUDIT_READ = 0xd8;
/**
 * The cashless reader approved a vend (written when the approval is heard,
 * before the POLL is acknowledged and before the motor turns): slot u8,
 * approved amount u32. The dispense outcome follows as VEND START / VEND OK
 * or VEND FAIL like any vend; a card VEND OK is a cashless sale.
 */
export const R_CARD_APPROVED = 0xd9;
/**
 * How a card vend was settled with the reader: outcome u8 (CardOutcome, vocabulary.ts), slot u8,
 * amount u32. Closes the card vend the approval opened.
 */
export const R_CARD_RESULT = 0xda;

export { CARD_OUTCOMES } from './vocabulary.js';
// Names firmware/vend/controller.ts imports from here: kept until the controller split lands.
export { CARD_SUCCESS, CARD_REFUNDED, CARD_SOLD_RESET, CARD_UNREFUNDED, CARD_UNCERTAIN, CARD_NOT_DISPENSED } from './vocabulary.js';

export function isMeta(type: number): boolean {
  return type === R_CHECKPOINT || type === R_SYNC || type === R_KEY;
}

export const RECORD_NAMES: { readonly [type: number]: string } = Object.freeze({
  [R_VEND_OK]: 'vend-ok',
  [R_VEND_FAIL]: 'vend-fail',
  [R_INIT]: 'init',
  [R_CHECKPOINT]: 'checkpoint',
  [R_BOOT]: 'boot',
  [R_COIN_IN]: 'coin-in',
  [R_BILL_STACKING]: 'bill-stacking',
  [R_BILL_STACKED]: 'bill-stacked',
  [R_BILL_RETURNED]: 'bill-returned',
  [R_VEND_START]: 'vend-start',
  [R_VEND_UNCERTAIN]: 'vend-uncertain',
  [R_PAYOUT_START]: 'payout-start',
  [R_PAYOUT_DONE]: 'payout-done',
  [R_COINS_MANUAL]: 'coins-manual',
  [R_SYNC]: 'sync',
  [R_INTERIM_RESET]: 'interim-reset',
  [R_CREDIT_ADJUST]: 'credit-adjust',
  [R_TUBES]: 'tubes',
  [R_COMMAND]: 'command',
  [R_COMMAND_REJECTED]: 'command-rejected',
  [R_PRICE]: 'price',
  [R_PLANOGRAM]: 'planogram',
  [R_LOCK]: 'lock',
  [R_SETTING]: 'setting',
  [R_KEY]: 'key',
  [R_REMOTE_VEND]: 'remote-vend',
  [R_AUDIT_READ]: 'audit-read',
  [R_CARD_APPROVED]: 'card-approved',
  [R_CARD_RESULT]: 'card-result',
});
