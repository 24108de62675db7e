/**
 * What time it is, as far as the machine can vouch for it: Unix seconds,
 * 0 when it cannot tell. Command expiry is checked against this.
 *
 * - Signed commands carry the gateway's time (`issued`), the only time the
 *   machine trusts. The newest one it applied is a floor, kept in the
 *   journal: the clock never reads earlier, so neither a command issued
 *   earlier nor a board clock set back (SNTP is not authenticated) can
 *   bring an expired command back.
 * - The board's wall clock (SNTP on the ESP32; on the simulator the host's
 *   clock) says how far time has moved on since. Nothing of it is kept: a
 *   clock set ahead refuses commands only while it is ahead, it cannot
 *   lock the machine out for good.
 * - Without one (not synchronised yet, or no network time at all), the
 *   machine counts on from the newest command with its own monotonic
 *   clock, which is only sound where its ticks are real seconds (a board,
 *   not a simulation run faster than real time: the simulator always
 *   gives its board a wall clock).
 */

/** A board wall clock earlier than this (2024-01-01) was never set: an ESP32 starts from 1970. */
export const MIN_WALL_S = 1704067200;

/**
 * `boardMs`: the board's wall clock (Unix ms, undefined when it has none);
 * `floor`: the newest signed command's `issued`; `counted`: journal time
 * plus the offset learnt from signed commands (0: none learnt).
 */
export function wallSeconds(boardMs: number | undefined, floor: number, counted: number): number {
  const board = boardMs === undefined || !(boardMs >= MIN_WALL_S * 1000) ? 0 : Math.floor(boardMs / 1000);
  return Math.max(board > 0 ? board : counted, floor);
}
