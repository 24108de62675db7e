/**
 * MDB link layer, VMC (master) side, over a port of 9-bit words that it
 * opens itself from the board's description (`new WordLink({ serial: board.mdb, timers })`).
 *
 * One transaction at a time: send a block (address byte with the mode bit,
 * data, checksum), then collect the peripheral's answer: a lone ACK or NAK, or
 * data ending in a checksum that carries the mode bit (MDB 4.2 §2.1, §2.2);
 * silence past t-response is a timeout (§3.2). A good data block is
 * handed to its handler first and acknowledged only if the handler accepted
 * it, so an event is acknowledged exactly when it has been taken into account:
 * an unacknowledged event comes again at the next POLL and is handled then,
 * never twice, and an acknowledged one is never dropped. A bad checksum is
 * answered with RET (retransmit now) a bounded number of times, then NAK.
 */
import type { Timers, TimerId, WordSerial, WordSerialPort } from '../board.js';
import { ACK, BAUD, CHAR_TIME_MS, MAX_BLOCK, MODE_BIT, NAK, RESPONSE_TIMEOUT_MS, RET, checksum } from './frame.js';

/** Characters past t-response before silence is declared: the first word's own, and the UART's report of it. */
const FIRST_WORD_CHARS = 2;

/** The peripheral acknowledged a command that expects no data. */
export const REPLY_ACK = 0;
/** The peripheral refused the block (or did not understand it). */
export const REPLY_NAK = 1;
/** Data with a good checksum. */
export const REPLY_DATA = 2;
/** Nothing (or an incomplete block) within the response time. */
export const REPLY_TIMEOUT = 3;
/** Data whose checksum stayed wrong after the allowed retransmissions. */
export const REPLY_CORRUPT = 4;
export type ReplyKind = 0 | 1 | 2 | 3 | 4;

export const REPLY_NAMES = Object.freeze(['ACK', 'NAK', 'DATA', 'TIMEOUT', 'CORRUPT'] as const);

/**
 * Outcome of a transaction. For REPLY_DATA, `data[0..length)` is valid only during the call;
 * return false to refuse the data (it is then NAKed and the peripheral sends it again later).
 */
export type ReplyHandler = (kind: ReplyKind, data: Uint8Array, length: number) => boolean | void;

export interface LinkStats {
  blocks: number;
  acks: number;
  naks: number;
  data: number;
  timeouts: number;
  retransmits: number;
  corrupt: number;
  stray: number;
}

/** What device drivers see of the bus: send a block, get its outcome. */
export interface MdbLink {
  readonly busy: boolean;
  /** Send `block[0..length)` (address byte first, checksum not included). */
  send(block: Uint8Array, length: number, handler: ReplyHandler): void;
  /** Called whenever a transaction finishes and the link becomes free. */
  onIdle: (() => void) | undefined;
  readonly stats: LinkStats;
}

export interface WordLinkOptions {
  /** The MDB port as the board describes it (`board.mdb`); the link opens it and reads it when told it is readable. */
  serial: WordSerialPort;
  timers: Timers;
  /** RET requests before a corrupt answer is given up (and NAKed). */
  retransmits?: number;
  /** Trace hook for bench engineers: direction, words. */
  trace?: (direction: 'tx' | 'rx', words: readonly number[]) => void;
}

export class WordLink implements MdbLink {
  private readonly port: WordSerial;
  private readonly timers: Timers;
  /** An answer is at most 36 bytes with its checksum: one word more overflows, and is not taken [MDB-LINK-4]. */
  private readonly rx = new Uint8Array(MAX_BLOCK);
  private rxLength = 0;
  private rxOverflow = false;
  private handler: ReplyHandler | undefined;
  private timer: TimerId | undefined;
  private retransmitsLeft = 0;
  private readonly maxRetransmits: number;
  private readonly trace: ((direction: 'tx' | 'rx', words: readonly number[]) => void) | undefined;
  private traceRx: number[] = [];
  private delivering = false;
  onIdle: (() => void) | undefined;
  readonly stats: LinkStats = { blocks: 0, acks: 0, naks: 0, data: 0, timeouts: 0, retransmits: 0, corrupt: 0, stray: 0 };

  constructor(options: WordLinkOptions) {
    this.timers = options.timers;
    this.maxRetransmits = options.retransmits ?? 2;
    this.trace = options.trace;
    // Opened ECMA-419 style (Moddable's drivers open the bus class they are given): the link owns its port.
    // At MDB's speed whatever the board says [MDB-LINK-1].
    const serial = options.serial;
    this.port = new serial.io({ ...serial, baud: BAUD, onReadable: () => this.readable() });
  }

  /** True from send() until the outcome has been delivered and the VMC's own ACK/NAK written. */
  get busy(): boolean {
    return this.handler !== undefined || this.delivering;
  }

  send(block: Uint8Array, length: number, handler: ReplyHandler): void {
    if (this.handler) throw new Error('MDB link busy');
    if (length < 1 || length > MAX_BLOCK - 1) throw new RangeError(`MDB block length ${length}`);
    this.handler = handler;
    this.retransmitsLeft = this.maxRetransmits;
    this.stats.blocks++;
    this.drainStray();
    const port = this.port;
    const trace = this.trace ? [block[0]! | MODE_BIT] : undefined;
    // The whole block in one go, so the UART sends it without gaps [MDB-TIME-1]; the mode bit on the address only [MDB-LINK-2].
    port.write(block[0]! | MODE_BIT);
    for (let i = 1; i < length; i++) {
      port.write(block[i]!);
      trace?.push(block[i]!);
    }
    const chk = checksum(block, 0, length);
    port.write(chk);
    if (trace) {
      trace.push(chk);
      this.trace!('tx', trace);
    }
    this.expectReply(length + 1);
  }

  /** The port's onReadable callback. */
  private readable(): void {
    const port = this.port;
    for (let word = port.read(); word !== undefined; word = port.read()) {
      if (!this.handler) {
        this.stats.stray++;
        continue;
      }
      if (this.trace) this.traceRx.push(word);
      if (this.rxLength < this.rx.length) this.rx[this.rxLength++] = word & 0xff;
      else this.rxOverflow = true;
      if (word & MODE_BIT) {
        this.complete();
        if (!this.handler) continue;
      } else {
        // Restart the window: the next byte must follow within the response time [MDB-LINK-7].
        this.armTimer(RESPONSE_TIMEOUT_MS);
      }
    }
  }

  private drainStray(): void {
    while (this.port.read() !== undefined) this.stats.stray++;
  }

  /**
   * Arm the response timer once `sentWords` more words have left the UART.
   * t-response bounds when the peripheral's first word starts; it is read
   * only once it has arrived (one character) and the UART has said so (about
   * one more), so those are waited for too: an answer started at 4.9 ms is
   * in time.
   */
  private expectReply(sentWords: number): void {
    this.rxLength = 0;
    this.rxOverflow = false;
    this.traceRx = [];
    this.armTimer((sentWords + FIRST_WORD_CHARS) * CHAR_TIME_MS + RESPONSE_TIMEOUT_MS);
  }

  private armTimer(ms: number): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      this.timedOut();
    }, ms);
  }

  private timedOut(): void {
    this.flushTrace();
    this.stats.timeouts++;
    this.finish(REPLY_TIMEOUT);
  }

  private complete(): void {
    if (this.timer !== undefined) {
      this.timers.clear(this.timer);
      this.timer = undefined;
    }
    this.flushTrace();
    const rx = this.rx;
    const n = this.rxLength;
    // One word is ACK or NAK; more is data ending in its checksum [MDB-LINK-3] [MDB-LINK-6].
    if (n === 1 && !this.rxOverflow) {
      if (rx[0] === ACK) {
        this.stats.acks++;
        this.finish(REPLY_ACK);
        return;
      }
      if (rx[0] === NAK) {
        this.stats.naks++;
        this.finish(REPLY_NAK);
        return;
      }
    }
    if (n >= 2 && !this.rxOverflow && checksum(rx, 0, n - 1) === rx[n - 1]) {
      this.stats.data++;
      const handler = this.handler!;
      this.handler = undefined;
      this.delivering = true;
      let accepted = false;
      try {
        accepted = handler(REPLY_DATA, rx, n - 1) !== false;
      } finally {
        // A handler that threw has not taken the event: NAK so it comes again [MDB-LINK-10].
        // Written as soon as the handler returns: the 5 ms include the handler's time [MDB-LINK-8].
        this.writeControl(accepted ? ACK : NAK);
        this.delivering = false;
        this.idle();
      }
      return;
    }
    // Bad checksum (or too long): RET a bounded number of times, then NAK [MDB-LINK-9].
    if (this.retransmitsLeft > 0) {
      this.retransmitsLeft--;
      this.stats.retransmits++;
      this.writeControl(RET);
      this.expectReply(1);
      return;
    }
    this.stats.corrupt++;
    this.writeControl(NAK);
    this.finish(REPLY_CORRUPT);
  }

  private writeControl(word: number): void {
    this.port.write(word);
    this.trace?.('tx', [word]);
  }

  private flushTrace(): void {
    if (this.trace && this.traceRx.length > 0) {
      this.trace('rx', this.traceRx);
      this.traceRx = [];
    }
  }

  private finish(kind: ReplyKind): void {
    const handler = this.handler;
    this.handler = undefined;
    if (this.timer !== undefined) {
      this.timers.clear(this.timer);
      this.timer = undefined;
    }
    this.delivering = true;
    try {
      handler?.(kind, this.rx, 0);
    } finally {
      this.delivering = false;
      this.idle();
    }
  }

  private idle(): void {
    this.onIdle?.();
  }
}
