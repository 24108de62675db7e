/**
 * The journal's named values, each family in one frozen group: the ledger's
 * counters, the state of the card vend the ledger holds open, and how a card
 * vend was settled. Every number here is on flash (in records and
 * checkpoints, docs/journal-format.md): a value is never renumbered or reused.
 */

/** Counter indices (of `total` and `interim`): values in minor units, counts in items. */
export const Counter = Object.freeze({
  SALES: 0,
  REVENUE: 1,
  COINS_TUBES: 2,
  COINS_CASHBOX: 3,
  COINS_COUNT: 4,
  BILLS_VALUE: 5,
  BILLS_COUNT: 6,
  PAID_VALUE: 7,
  PAID_COUNT: 8,
  BILLS_RETURNED: 9,
  MANUAL_VALUE: 10,
  MANUAL_COUNT: 11,
  FAILED_VENDS: 12,
  UNCERTAIN_VENDS: 13,
  BOOTS: 14,
  COINS_TUBES_COUNT: 15,
  /** Vends paid elsewhere (remote vend commands): count and value. */
  REMOTE_SALES: 16,
  REMOTE_VALUE: 17,
  COMMANDS_REJECTED: 18,
  /** Sales paid by the cashless reader (cashless device #1): count and value (EVA-DTS DA2). Not cash: kept out of SALES/REVENUE. */
  CASHLESS_SALES: 19,
  CASHLESS_VALUE: 20,
  /** Value the reader may have charged with no product delivered (a reset before VEND FAILURE, a power cut mid-vend): for the operator to refund. */
  CASHLESS_UNREFUNDED: 21,
});
/** How many counters there are. */
export const COUNTERS = 22;

/** The card vend the journal has open (`Ledger.cardVend`). */
export const CardVend = Object.freeze({
  NONE: 0,
  /** Approved by the reader; the dispense outcome is not recorded yet. */
  APPROVED: 1,
  /** Delivered (a cashless sale); the reader has not confirmed VEND SUCCESS yet. */
  DELIVERED: 2,
  /** The dispense failed; the reader has not confirmed VEND FAILURE (its refund) yet. */
  FAILED: 3,
  /** A power cut hit the dispense; settled at boot. */
  UNCERTAIN: 4,
});

/** Where a coin went (COIN IN's `routing`): the changer's routing codes (mdb/changer.ts ROUTE_*). */
export const CoinRouting = Object.freeze({ CASHBOX: 0, TUBES: 1 });

/** CARD RESULT's OUTCOME: how the reader settled the card vend. */
export const CardOutcome = Object.freeze({
  /** The reader acknowledged VEND SUCCESS: it charged the card. */
  SUCCESS: 1,
  /** The reader acknowledged VEND FAILURE: it refunds the card. */
  REFUNDED: 2,
  /** Delivered, but the reader reset (or dropped the session) before VEND SUCCESS: a reset after approval counts as a success, so sold. */
  SOLD_RESET: 3,
  /** Not delivered, and the reader reset before VEND FAILURE: it counts the vend as a success, so the card was charged for nothing. */
  UNREFUNDED: 4,
  /** A power cut hit the dispense: its outcome is unknown (not counted as a sale; the reader counts it as a success). */
  UNCERTAIN: 5,
  /** A power cut came after the approval and before the motor turned: nothing was dispensed, the reader counts it as a success. */
  NOT_DISPENSED: 6,
});

/** CardOutcome's names, by value (the uplink's words). */
export const CARD_OUTCOMES: readonly string[] = Object.freeze(['', 'success', 'refunded', 'sold-reader-reset', 'unrefunded', 'uncertain', 'not-dispensed']);

/** UPDATE's `phase`: a firmware update's steps after UPDATE BEGIN (docs/updates.md, "What the machine reports"). */
export const UpdatePhase = Object.freeze({
  /** Every byte is in the slot, its SHA-256 checks, the slot is complete. */
  DOWNLOADED: 1,
  /** The download ended without an image (`reason`): the update is closed. */
  FAILED: 2,
  /** A safe moment came: the machine restarts into the image. */
  INSTALLING: 3,
  /** The new image passed its probation (written by it): the update is closed. */
  CONFIRMED: 4,
  /** The previous image booted instead (written by it; `reason`): the update is closed. */
  ROLLED_BACK: 5,
});

/** UpdatePhase's names, by value. */
export const UPDATE_PHASES: readonly string[] = Object.freeze(['', 'downloaded', 'failed', 'installing', 'confirmed', 'rolled-back']);

/** UPDATE's `reason`: why a download failed (1..5 as firmware/update/download.ts's DownloadEnd) or why an image was rolled back. */
export const UpdateReason = Object.freeze({
  NONE: 0,
  BAD_HASH: 1,
  SHORT_IMAGE: 2,
  SOURCE_REFUSED: 3,
  SLOT_FAILED: 4,
  CANCELLED: 5,
  CRASH: 6,
  WATCHDOG: 7,
  POWER: 8,
  RESTART: 9,
  PROBATION_DEVICES: 10,
  PROBATION_BROKER: 11,
  PROBATION_SYNC: 12,
  /** A reason this firmware has no number for (the board's text is in the log). */
  OTHER: 13,
});

/** UpdateReason's names, by value: the words the board and the uplink use. */
export const UPDATE_REASONS: readonly string[] = Object.freeze([
  '',
  'bad-hash',
  'short-image',
  'source-refused',
  'slot-failed',
  'cancelled',
  'crash',
  'watchdog',
  'power',
  'restart',
  'probation: devices',
  'probation: broker',
  'probation: sync',
  'other',
]);
