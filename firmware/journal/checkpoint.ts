/**
 * The checkpoint record's payload (R_CHECKPOINT): the whole ledger, so that
 * recovery replays from the newest checkpoint only (log.ts). The Ledger
 * writes it (`save`, always the newest version) and reads every version
 * (`load`); these are its sections, in order, and their sizes. The bytes of
 * each section are in docs/journal-format.md.
 *
 *   head | counters | slots | command state | audit state | clock state | cashless block
 *
 * - version 2: 16 counters; each slot its stock, fault and sales; nothing after the slots.
 * - version 3: 19 counters; each slot also what commands set (price,
 *   capacity, product, version); the command state after the slots.
 * - version 4: each slot also its last sale; the audit state.
 * - version 5: the cashless block last, on a machine with a reader (found by
 *   the checkpoint's length; one without a reader writes version 4's bytes,
 *   so its checkpoint does not grow).
 * - version 6: the clock state between the audit state and the cashless block.
 */
import { SETTINGS } from '../command/vocabulary.js';
import { COIN_TYPES } from '../money/coins.js';

export const VERSION = 6;

/** The head: version, slot count, layout hash, credit, sync cursor, what is open, the tubes before a payout and now. */
export const FIXED = 29 + 2 * COIN_TYPES;
/** A counter: since initialisation and since the interim reset, u32 each. */
export const COUNTER = 8;
/** Counters in the counter section: 16 in version 2, 19 from version 3 (the cashless ones have their own block). */
export const COUNTERS_V2 = 16;
export const SECTION_COUNTERS = 19;
/** Bytes a slot: 19 in version 2, 33 in version 3, 37 from version 4. */
export const PER_SLOT_V2 = 19;
export const PER_SLOT_V3 = 33;
export const PER_SLOT = 37;
/** The command state: the lock, the settings, the command window, the clock offset, the key, the remote vend. */
export const COMMAND_STATE = 1 + 4 + SETTINGS * 8 + 4 + 4 + 4 + 1 + 32 + 4 + 1 + 1 + 1 + 4;
/** The audit state: reads since initialisation, wall time of the last. */
export const AUDIT_STATE = 8;
/** The clock state: the newest signed command's time. */
export const CLOCK_STATE = 4;
/** The cashless block: the 3 cashless counters, then the card vend (state u8, slot u8, amount u32). */
export const CASHLESS_COUNTERS = 3;
export const CASHLESS_BLOCK = CASHLESS_COUNTERS * COUNTER + 6;
