/** MDB/ICP framing facts shared by the master and (in hal-sim) the peripherals. */

/** The ninth bit: set on the VMC's address byte and on a peripheral's last byte (MDB 4.2 §2.1) [MDB-LINK-2] [MDB-LINK-3]. */
export const MODE_BIT = 0x100;
/** The control bytes, which carry no checksum (MDB 4.2 §2.2) [MDB-LINK-7]. */
export const ACK = 0x00;
export const RET = 0xaa;
export const NAK = 0xff;

/** A block is at most 36 bytes including the checksum (MDB 4.2 §2.2) [MDB-LINK-4]. */
export const MAX_BLOCK = 36;

/** The bus speed: MDB runs at 9600 baud, 9-bit words [MDB-LINK-1]. */
export const BAUD = 9600;
/** 11 bits per character (start, 8 data, mode, stop) at 9600 baud. */
export const CHAR_TIME_MS = 11000 / BAUD;
/** t-response: the longest a peripheral (or the VMC's ACK) may take to answer (MDB 4.2 §3.2) [MDB-LINK-7] [MDB-LINK-8]. */
export const RESPONSE_TIMEOUT_MS = 5;

/** Address byte = 5-bit address + 3-bit command (MDB 4.2 §2.3) [MDB-LINK-5]. */
export const ADDRESS_CHANGER = 0x08;
export const ADDRESS_CASHLESS1 = 0x10;
export const ADDRESS_BILL = 0x30;

/** The EXPANSION command, the same code (address | 7) for every device; a subcommand byte follows. */
export const CMD_EXPANSION = 7;

/** The checksum: 8-bit sum of the address and data bytes, carry dropped (MDB 4.2 §2.2) [MDB-LINK-6]. */
export function checksum(bytes: ArrayLike<number>, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += bytes[i]!;
  return sum & 0xff;
}

/** Decode a 4-digit BCD currency field such as 0x1840 (USD) into its numeric ISO 4217 code. */
export function bcdCurrency(hi: number, lo: number): number {
  const digits = [(hi >> 4) & 15, hi & 15, (lo >> 4) & 15, lo & 15];
  // A leading 1 marks an ISO 4217 numeric code; the remaining three digits are it.
  return digits[1]! * 100 + digits[2]! * 10 + digits[3]!;
}

export function hex(bytes: ArrayLike<number>, start = 0, end = bytes.length): string {
  let out = '';
  for (let i = start; i < end; i++) {
    const b = bytes[i]! & 0xff;
    out += (i > start ? ' ' : '') + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
  }
  return out;
}
