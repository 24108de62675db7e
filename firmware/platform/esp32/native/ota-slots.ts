/**
 * The JavaScript face of ota-slots.c: ESP-IDF's OTA state and rollback, and
 * a writer that resumes an update at a sector boundary, for
 * firmware-slots.ts. The manifest maps this module's specifier to
 * `native/ota-slots`, which mcconfig resolves to this file and the C file
 * beside it.
 */

// XS's `Native` API ("XS in C"), as in mdb-uart.ts: declared here only.
declare function Native(destructor: string): new () => object;
declare function native(name: string): { call(self: unknown, ...args: unknown[]): unknown };

/** ESP-IDF's esp_ota_img_states_t, by name. */
export type OtaState = 'new' | 'pending-verify' | 'valid' | 'invalid' | 'aborted' | 'undefined';

/** The running image's version (its application description). */
export function runningVersion(): string {
  return native('xs_otaslots_running_version').call(undefined) as string;
}

/** The running image's OTA state; undefined when it has none (first flashed over serial). */
export function runningState(): OtaState | undefined {
  return native('xs_otaslots_running_state').call(undefined) as OtaState | undefined;
}

/** Bytes the inactive slot holds. */
export function slotSize(): number {
  return native('xs_otaslots_slot_size').call(undefined) as number;
}

/** The image rolled back last: its version and an id (the first 16 hex digits of its ELF SHA-256); undefined when none is left. */
export function lastInvalid(): { version: string; id: string } | undefined {
  const text = native('xs_otaslots_last_invalid').call(undefined) as string | undefined;
  if (text === undefined) return undefined;
  const space = text.lastIndexOf(' ');
  return { version: text.slice(0, space), id: text.slice(space + 1) };
}

/** A valid previous image that a rollback would boot. */
export function canRollback(): boolean {
  return native('xs_otaslots_can_rollback').call(undefined) as boolean;
}

/** Why the controller last reset: power, crash, watchdog, restart or reset. */
export function resetReason(): string {
  return native('xs_otaslots_reset_reason').call(undefined) as string;
}

export function markValid(): void {
  native('xs_otaslots_mark_valid').call(undefined);
}

/** Boots the previous image; throws (and returns) only when it cannot. */
export function rollback(): void {
  native('xs_otaslots_rollback').call(undefined);
}

/** Writing the next update partition from a sector boundary, sector by sector; `complete()` verifies and selects it. */
export class SlotWriter extends Native('xs_otaslots_writer_destructor') {
  constructor(offset: number, byteLength: number) {
    super();
    native('xs_otaslots_writer').call(this, offset, byteLength);
  }

  write(buffer: ArrayBuffer | ArrayBufferView): void {
    native('xs_otaslots_writer_write').call(this, buffer);
  }

  cancel(): void {
    native('xs_otaslots_writer_cancel').call(this);
  }

  complete(): void {
    native('xs_otaslots_writer_complete').call(this);
  }
}
