/**
 * The coin changer's diagnostic codes (level 3, SEND DIAGNOSTIC STATUS,
 * EXPANSION 0F 05; MDB 4.2 §5.3) and their meaning in words: frozen tables,
 * data only. A code is main << 8 | sub; main codes 0x10 to 0x15 are faults,
 * the others states. The changer driver (firmware/mdb/changer.ts) asks for
 * them and logs the faults; telemetry shows the text.
 */

/** The codes the driver acts on, or tests look for. */
export const DIAGNOSTIC = Object.freeze({
  POWERING_UP: 0x0100,
  POWERING_DOWN: 0x0200,
  OK: 0x0300,
  KEYPAD_SHIFTED: 0x0400,
  MANUAL_ACTIVE: 0x0510,
  NEW_INVENTORY: 0x0520,
  INHIBITED: 0x0600,
});

/** Every code with a meaning of its own. */
const TEXT: Readonly<Record<number, string>> = Object.freeze({
  0x0100: 'powering up',
  0x0200: 'powering down',
  0x0300: 'OK',
  0x0400: 'keypad shifted',
  0x0510: 'manual fill/payout active',
  0x0520: 'new inventory information available',
  0x0600: 'inhibited by VMC',
  0x1001: 'changer error: checksum error #1',
  0x1002: 'changer error: checksum error #2',
  0x1003: 'changer error: low line voltage',
  0x1110: 'discriminator: flight deck open',
  0x1111: 'discriminator: escrow return stuck open',
  0x1130: 'discriminator: coin jam in sensor',
  0x1141: 'discriminator: discrimination below standard',
  0x1150: 'discriminator: validation sensor A out of range',
  0x1151: 'discriminator: validation sensor B out of range',
  0x1152: 'discriminator: validation sensor C out of range',
  0x1153: 'discriminator: operating temperature exceeded',
  0x1154: 'discriminator: sizing optics failure',
  0x1230: 'accept gate: coins entered gate but did not exit',
  0x1231: 'accept gate: alarm active',
  0x1240: 'accept gate: open but no coin detected',
  0x1250: 'accept gate: post-gate sensor covered before gate opened',
  0x1310: 'separator: sort sensor error',
  0x1502: 'tubes: cassette removed',
  0x1503: 'tubes: cash box sensor error',
  0x1504: 'tubes: sunlight on tube sensors',
});

/** The fault families, for codes the table above does not name (by main code). */
const MAIN_TEXT: Readonly<Record<number, string>> = Object.freeze({
  0x10: 'changer error',
  0x11: 'discriminator error',
  0x12: 'accept gate error',
  0x13: 'separator error',
  0x14: 'dispenser error (payout/tube jam)',
  0x15: 'coin cassette/tube error',
});

/** A diagnostic code in words. */
export function diagnosticText(code: number): string {
  return TEXT[code] ?? MAIN_TEXT[code >> 8] ?? 'unknown';
}

/** Main codes 0x10..0x15 are faults; the others are states. */
export function diagnosticIsError(code: number): boolean {
  return code >= 0x1000;
}
