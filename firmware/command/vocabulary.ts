/**
 * The numbers commands are journaled with, and their names on the wire
 * (docs/commands.md). Codes are stored in flash: never renumber, only add.
 */

export const CMD_SET_PRICES = 1;
export const CMD_RESTOCK = 2;
export const CMD_LOCK = 3;
export const CMD_UNLOCK = 4;
export const CMD_REBOOT = 5;
export const CMD_SET_CONFIG = 6;
export const CMD_REPORT = 7;
export const CMD_AUDIT = 8;
export const CMD_VEND = 9;
export const CMD_ROTATE_KEY = 10;
/** Fetch and install a firmware image (docs/updates.md). */
export const CMD_UPDATE = 11;
/** A type this firmware does not know (a newer gateway): refused as unsupported. */
export const CMD_UNKNOWN = 255;

export const COMMAND_TYPES: readonly string[] = Object.freeze(['', 'set-prices', 'restock', 'lock', 'unlock', 'reboot', 'set-config', 'report', 'audit', 'vend', 'rotate-key', 'update']);

export function commandCode(name: string): number {
  const i = COMMAND_TYPES.indexOf(name);
  return i > 0 ? i : CMD_UNKNOWN;
}

/** What became of a verified command. */
export const OUT_APPLIED = 0;
/** Every target already holds a newer command's value: nothing changed. */
export const OUT_STALE = 1;
/** Not applied: the machine cannot do it now or here (value: a REFUSED_* reason). */
export const OUT_REFUSED = 2;
/** Applied in part: a vend that dispensed fewer than asked (value: items dispensed). */
export const OUT_FAILED = 3;
/** The power failed while it was under way (value: items dispensed before). */
export const OUT_INTERRUPTED = 4;
/** This firmware does not know the command type. */
export const OUT_UNSUPPORTED = 5;

export const OUTCOMES: readonly string[] = Object.freeze(['applied', 'stale', 'refused', 'failed', 'interrupted', 'unsupported']);

export const REFUSED_BUSY = 1;
export const REFUSED_SOLD_OUT = 2;
export const REFUSED_UNKNOWN_SLOT = 3;
export const REFUSED_LOCKED = 4;
export const REFUSED_BAD_ARGS = 5;
export const REFUSED_OUT_OF_SERVICE = 6;
export const REFUSED_STORAGE_FULL = 7;
/** An update to a version not newer than the running one, without `downgrade`. */
export const REFUSED_DOWNGRADE = 8;
/** An image larger than the inactive application slot. */
export const REFUSED_TOO_LARGE = 9;
/** An image that writes a journal format the running firmware could not read after a rollback. */
export const REFUSED_JOURNAL_FORMAT = 10;
/** The board cannot update its firmware. */
export const REFUSED_NO_SLOTS = 11;
/** The running image is itself on probation: the slot it would overwrite is the one a rollback boots. */
export const REFUSED_ON_PROBATION = 12;

export const REFUSALS: readonly string[] = Object.freeze(['', 'busy', 'sold-out', 'unknown-slot', 'locked', 'bad-args', 'out-of-service', 'storage-full', 'downgrade', 'too-large', 'journal-format', 'no-slots', 'on-probation']);

/** Why a command was turned away before anything was applied. */
export const REJ_BAD_SIGNATURE = 1;
export const REJ_UNKNOWN_KEY = 2;
export const REJ_EXPIRED = 3;
export const REJ_REPLAY = 4;
export const REJ_MALFORMED = 5;
export const REJ_WRONG_MACHINE = 6;
export const REJ_OVERSIZED = 7;

export const REJECTIONS: readonly string[] = Object.freeze(['', 'bad-signature', 'unknown-key', 'expired', 'replay', 'malformed', 'wrong-machine', 'oversized']);

/** Settings a command may change (R_SETTING keys). */
export const SET_TELEMETRY_INTERVAL = 1;
export const SET_SESSION_TIMEOUT = 2;
export const SET_DROP_TIMEOUT = 3;
export const SET_CHANGE_POLICY = 4;
export const SETTINGS = 5;

export const SETTING_NAMES: readonly string[] = Object.freeze(['', 'telemetryIntervalMs', 'sessionTimeoutMs', 'dropTimeoutMs', 'changePolicy']);
