/**
 * MDB numbers a changer's coin types 0 to 15 (MDB 4.2 §5.3, COIN TYPE
 * SETUP): every per-coin-type table in the firmware and every per-type
 * record in the journal has exactly this many entries.
 */
export const COIN_TYPES = 16;
