/**
 * The checkpoint record's payload (R_CHECKPOINT): the whole ledger, so that
 * recovery replays from the newest checkpoint only (log.ts). The Ledger
 * writes it (`save`, always the newest version) and reads every version
 * (`load`); these are its sections, in order, and their sizes. Each section's
 * fields are a layout of the record codec (CP_* in records.ts), documented in
 * docs/journal-format.md.
 *
 *   head | counters | slots | command state | audit state | clock state | update state | cashless block
 *
 * - version 2: 16 counters; each slot its stock, fault and sales; nothing after the slots.
 * - version 3: 19 counters; each slot also what commands set (price,
 *   capacity, product, version); the command state after the slots.
 * - version 4: each slot also its last sale; the audit state.
 * - version 5: the cashless block last, on a machine with a reader (found by
 *   the checkpoint's length; one without a reader writes version 4's bytes,
 *   so its checkpoint does not grow).
 * - version 6: the clock state between the audit state and the cashless block.
 * - version 7: the open firmware update (CP_UPDATE) between the clock state and the cashless block,
 *   only while one is open (found, like the cashless block, by the checkpoint's length: 84 and 30
 *   bytes cannot be mistaken), so a machine not updating writes version 6's bytes.
 */
import { CP_AUDIT, CP_CARD, CP_CLOCK, CP_COMMANDS, CP_COUNTER, CP_HEAD, CP_SETTING, CP_SLOT, CP_UPDATE, offsetOf, size } from './records.js';

export const VERSION = 7;

/** The head (CP_HEAD). */
export const FIXED = size(CP_HEAD);
/** A counter (CP_COUNTER). */
export const COUNTER = size(CP_COUNTER);
/** Counters in the counter section: 16 in version 2, 19 from version 3 (the cashless ones have their own block). */
export const COUNTERS_V2 = 16;
export const SECTION_COUNTERS = 19;
/** Bytes a slot (CP_SLOT): its fields up to the price in version 2, up to the last sale in version 3, all from version 4. */
export const PER_SLOT_V2 = offsetOf(CP_SLOT, 'price');
export const PER_SLOT_V3 = offsetOf(CP_SLOT, 'lastSale');
export const PER_SLOT = size(CP_SLOT);
/** A setting in the command state (CP_SETTING). */
export const SETTING = size(CP_SETTING);
/** The command state (CP_COMMANDS). */
export const COMMAND_STATE = size(CP_COMMANDS);
/** The audit state (CP_AUDIT). */
export const AUDIT_STATE = size(CP_AUDIT);
/** The clock state (CP_CLOCK). */
export const CLOCK_STATE = size(CP_CLOCK);
/** The open firmware update (CP_UPDATE); absent with none open. */
export const UPDATE_STATE = size(CP_UPDATE);
export const UPDATE_NONE = 0;
/** The cashless block: the 3 cashless counters, then the card vend (CP_CARD). */
export const CASHLESS_COUNTERS = 3;
export const CASHLESS_BLOCK = CASHLESS_COUNTERS * COUNTER + size(CP_CARD);
