/**
 * The JavaScript face of mdb-uart.c: MDB's 9-bit words on an ESP32 UART,
 * as the WordSerial of firmware/board.ts. The C side makes the ninth bit
 * with the UART's parity and keeps MDB's 5 ms answer deadline when
 * JavaScript is busy; see the comment at the top of mdb-uart.c and
 * docs/hardware.md.
 *
 * The manifest maps this module's specifier to `native/mdb-uart`, which
 * mcconfig resolves to both this file and the C file beside it.
 */
import type { WordSerial } from '../../../board.js';

// XS's `Native` API ("XS in C"): xsc compiles these calls, with literal
// names, into host-function bindings. Declared here, not globally, so the
// portable firmware never sees them.
declare function Native(destructor: string): new () => object;
declare function native(name: string): { call(self: object, ...args: unknown[]): unknown };

export interface MdbUartOptions {
  transmit: number;
  receive: number;
  /** UART number (2 by default). */
  port?: number;
  baud?: number;
  /** The interface board inverts the line (an NPN stage does). */
  invertTransmit?: boolean;
  invertReceive?: boolean;
  onReadable(this: MdbUart, count: number): void;
}

/** What the native side had to do on JavaScript's behalf (counts since open). */
export interface MdbUartStats {
  /** Frames taken back unread and NAKed because JavaScript did not get to them in time. */
  withdrawn: number;
  /** Frames the native side answered while JavaScript was still handling them. */
  proxied: number;
  /** ...of which JavaScript's own answer, when it came, was different. */
  overruled: number;
  /** Bytes whose mode bit could not be told for sure (the ISR ran a character late). */
  ambiguous: number;
  /** Framing errors, FIFO overruns, words dropped on a full buffer. */
  errors: number;
}

export default class MdbUart extends Native('xs_mdbuart_destructor') implements WordSerial {
  constructor(options: MdbUartOptions) {
    super();
    native('xs_mdbuart_constructor').call(this, options);
  }

  read(): number | undefined {
    return native('xs_mdbuart_read').call(this) as number | undefined;
  }

  write(word: number): void {
    native('xs_mdbuart_write').call(this, word);
  }

  close(): void {
    native('xs_mdbuart_close').call(this);
  }

  get stats(): MdbUartStats {
    return native('xs_mdbuart_get_stats').call(this) as MdbUartStats;
  }
}
