/**
 * MDB cashless device #1 (address 0x10), reader levels 1 and 2, the VMC
 * speaking level 2 (MDB 4.2 §7).
 *
 * Init: RESET, POLL for "just reset", SETUP config data (the reader answers
 * with its level, currency, scale factor, decimals, maximum response time
 * and options), SETUP max/min prices, EXPANSION REQUEST ID (level 2), then
 * READER ENABLE (or DISABLE, whichever the machine wants). Then POLL; the
 * reader's answers are chains of fixed-length messages: begin session,
 * session cancel request, vend approved/denied, end session, cancelled,
 * peripheral ID, malfunction, command out of sequence, just reset.
 *
 * Commands that move the reader along (VEND REQUEST, VEND SUCCESS, VEND
 * FAILURE, SESSION COMPLETE, READER ENABLE/DISABLE/CANCEL) stay pending
 * until the reader acknowledges them, and are sent again after a lost or
 * refused answer (the reader takes a repeat of the command it just obeyed
 * as that command). A data answer to any of them acknowledges it and is
 * parsed like POLL data. The driver keeps no purchase logic: it reports
 * what the reader says and the controller decides.
 *
 * A reset of the reader (its own, ours, or bus power) ends any session on
 * its side; one between VEND APPROVED and VEND SUCCESS counts as a success
 * there, which is why the controller journals approvals before dispensing.
 *
 * About 680 lines kept in one file on purpose: it is one device's protocol,
 * and its pending-command, session and poll-parsing state are one state
 * machine (MDB 4.2 §7); the init steps it shares with the other drivers are
 * in peripheral.ts.
 */
import { ADDRESS_CASHLESS1, CMD_EXPANSION, bcdCurrency } from './frame.js';
import { REPLY_ACK, REPLY_DATA, type ReplyKind } from './link.js';
import {
  PHASE_INIT,
  PHASE_READY,
  PHASE_RESET,
  Peripheral,
  emptyIdentity,
  exactScaled,
  parseIdentity,
  toMinor,
  type MdbIdentity,
  type PeripheralOptions,
} from './peripheral.js';

/** The reader's commands (the low 3 bits of the address byte; MDB 4.2 §7.3). */
const CMD = Object.freeze({ SETUP: 1, POLL: 2, VEND: 3, READER: 4, EXPANSION: CMD_EXPANSION });
/** SETUP's subcommands. */
const SETUP = Object.freeze({ CONFIG: 0x00, PRICES: 0x01 });
/** VEND's subcommands. */
const VEND = Object.freeze({ REQUEST: 0x00, CANCEL: 0x01, SUCCESS: 0x02, FAILURE: 0x03, SESSION_COMPLETE: 0x04 });
/** READER's subcommands. */
const READER = Object.freeze({ DISABLE: 0x00, ENABLE: 0x01, CANCEL: 0x02 });
/** EXPANSION's subcommand this driver sends. */
const EXPANSION_REQUEST_ID = 0x00;

/**
 * The driver's init phases, on the way through the reader's states (MDB 4.2
 * §7.2): it is Inactive until its configuration is read, Disabled once set
 * up, Enabled after READER ENABLE (PHASE_READY from then on).
 */
const PHASE = Object.freeze({ CONFIG: PHASE_INIT, PRICES: PHASE_INIT + 1, ID: PHASE_INIT + 2, ENABLE: PHASE_INIT + 3 });

/** The VMC's feature level: level 2 commands, no level-3 expanded currency or options. */
export const VMC_LEVEL = 2;

/** POLL (and command answer) message codes (MDB 4.2 §7.4). */
export const READER_MESSAGE = Object.freeze({
  JUST_RESET: 0x00,
  CONFIG: 0x01,
  DISPLAY_REQUEST: 0x02,
  BEGIN_SESSION: 0x03,
  SESSION_CANCEL_REQUEST: 0x04,
  VEND_APPROVED: 0x05,
  VEND_DENIED: 0x06,
  END_SESSION: 0x07,
  CANCELLED: 0x08,
  PERIPHERAL_ID: 0x09,
  MALFUNCTION: 0x0a,
  OUT_OF_SEQUENCE: 0x0b,
  REVALUE_APPROVED: 0x0d,
  REVALUE_DENIED: 0x0e,
  REVALUE_LIMIT: 0x0f,
  DATE_TIME_REQUEST: 0x11,
  DATA_ENTRY_REQUEST: 0x12,
  DATA_ENTRY_CANCEL: 0x13,
});

/** Reader option bits (SETUP config data, last byte). */
export const READER_OPTION = Object.freeze({ REFUNDS: 0x01, MULTIVEND: 0x02, DISPLAY: 0x04, CASH_SALE: 0x08 });

/** Default non-response time (MDB 4.2 §7.5); a reader reporting a longer maximum response time gets that. */
const NON_RESPONSE_MS = 5000;

/** The outcome of the approved vend waiting to be reported: nothing, VEND SUCCESS or VEND FAILURE. */
const RESULT = Object.freeze({ NONE: 0, SUCCESS: 1, FAILURE: 2 });

/** The reader's events, each a callback in the driver's options. */
export interface CashlessCallbacks {
  readerReady(): void;
  readerLost(): void;
  /** A card was presented: `funds` in the machine's minor units (-1: the reader does not say). */
  sessionBegan(funds: number): void;
  /** The customer cancelled at the reader (card pulled, cancel key). */
  sessionCancelRequested(): void;
  /** The reader approved the vend requested, for `amount` (minor units). Journal it before returning: the POLL is acknowledged after. */
  vendApproved(amount: number): void;
  vendDenied(): void;
  /** The reader acknowledged VEND SUCCESS (true) or VEND FAILURE (false). */
  vendReported(success: boolean): void;
  /** The reader closed its session (after SESSION COMPLETE, or on its own). */
  sessionEnded(): void;
  /** The reader acknowledged a READER CANCEL. */
  /** Optional: without it the driver logs it. */
  readerCancelled?(): void;
  /** Malfunction or another status worth a log line (0x0A error code; 0x100 | code for other messages). */
  /** Optional: without it the driver logs the code. */
  readerStatus?(code: number): void;
}

export interface CashlessSetup {
  /** The reader's own level (1..3); the two sides speak the lower of it and VMC_LEVEL. */
  level: number;
  currency: number;
  scale: number;
  decimals: number;
  /** Seconds the reader may take to answer (its "application maximum response time"). */
  maxResponseS: number;
  options: number;
}

export interface CashlessIdentityOptions {
  /** The VMC's serial number (ASCII, at most 12 characters), sent with EXPANSION REQUEST ID. */
  serial?: string;
  /** The VMC's model (at most 12 characters). */
  model?: string;
  /** The VMC's software version as four BCD digits, e.g. 0x0100. */
  version?: number;
}

export interface CashlessReaderOptions extends PeripheralOptions, CashlessCallbacks {
  /** What the VMC says of itself in EXPANSION REQUEST ID. */
  identity?: CashlessIdentityOptions;
}

export class CashlessReader extends Peripheral {
  readonly name = 'cashless reader';
  protected readonly pollCommand = CMD.POLL;
  private readonly events: CashlessCallbacks;
  private readonly machineDecimals: number;
  private readonly vmcId = new Uint8Array(29);
  readonly setup: CashlessSetup = { level: 0, currency: 0, scale: 1, decimals: 2, maxResponseS: 0, options: 0 };
  /** What the reader says about itself (PERIPHERAL ID, level 2). */
  readonly identity: MdbIdentity = emptyIdentity();
  /** A session is open at the reader, with these funds (minor units, -1 unknown). */
  session = false;
  funds = -1;
  /** Enable state wanted by the machine, and the one last acknowledged (-1: unknown). */
  private wantEnabled = false;
  private sentEnabled = -1;
  /** Max/min prices (minor units; converted when sent, once the scale is known), and whether they changed since SETUP. */
  private maxPrice = -1;
  private minPrice = 0;
  /** Every price is a multiple of this (minor units; 0 unknown): each must be a whole number of the reader's units. */
  private priceStep = 0;
  private needPrices = false;
  /**
   * When SESSION COMPLETE was acknowledged (-1: not waiting): END SESSION
   * must follow within the non-response time, or the reader is RESET
   * (MDB 4.2 §7.4.9), which also ends the session on both sides.
   */
  private completedAt = -1;
  /** VEND REQUEST to send: price (scaled; -1 none) and item number. */
  private requestPrice = -1;
  private requestItem = 0;
  /** A VEND REQUEST went out and neither approval nor denial came back yet. */
  private awaiting = false;
  private needVendCancel = false;
  /** VEND SUCCESS or FAILURE to send, and the item number. */
  private result: number = RESULT.NONE;
  private resultItem = 0;
  private needComplete = false;
  private needReaderCancel = false;
  /** An out-of-sequence report asks for a reset once this answer has been taken. */
  private resetWanted = false;
  /** SETUP config data was acknowledged without its data: the configuration comes on POLL. */
  private configAckedAt = -Infinity;
  /** The answer being parsed reported "command out of sequence": the command was not obeyed. */
  private seqRefused = false;

  constructor(options: CashlessReaderOptions) {
    // A copy: the non-response time follows the reader's maximum response time.
    super(ADDRESS_CASHLESS1, { ...options.timing }, options.log, options.currency, options);
    this.events = options;
    this.machineDecimals = options.decimals;
    const id = options.identity ?? {};
    const v = this.vmcId;
    ascii(v, 0, 3, 'VFL');
    ascii(v, 3, 12, id.serial ?? '');
    ascii(v, 15, 12, id.model ?? 'VENDFLEET');
    const version = id.version ?? 0;
    v[27] = (version >> 8) & 0xff;
    v[28] = version & 0xff;
  }

  /** The level both sides speak [MDB-CL-3]. */
  get level(): number {
    return this.setup.level < VMC_LEVEL ? this.setup.level : VMC_LEVEL;
  }

  get multiVend(): boolean {
    return (this.setup.options & READER_OPTION.MULTIVEND) !== 0;
  }

  /** A VEND SUCCESS or FAILURE waits for the reader's acknowledgement. */
  get reporting(): boolean {
    return this.result !== RESULT.NONE;
  }

  /** Something is queued for the reader (while it is up): the machine is not settled yet. */
  get busy(): boolean {
    return this.phase === PHASE_READY && (this.result !== RESULT.NONE || this.requestPrice >= 0 || this.awaiting || this.needVendCancel || this.needComplete || this.needReaderCancel);
  }

  /** Enable (true) or disable the reader; sent as READER ENABLE/DISABLE when it changes. */
  setEnabled(on: boolean): void {
    this.wantEnabled = on;
  }

  /**
   * The machine's dearest and cheapest prices (minor units), for the
   * reader's display and checks; `step` divides every price (0: unknown).
   * A reader whose units cannot express them is not enabled.
   */
  setPrices(min: number, max: number, step = 0): void {
    if (max === this.maxPrice && min === this.minPrice && step === this.priceStep) return;
    this.maxPrice = max;
    this.minPrice = min;
    this.priceStep = step;
    if (this.phase === PHASE_READY) {
      this.needPrices = true;
      this.judgeReader();
      this.announce();
    }
  }

  /** The reader's currency and scaling against the machine's (once its configuration is known). */
  private judgeReader(): void {
    const s = this.setup;
    if (s.level === 0) return;
    const sc = s.scale || 1;
    const md = this.machineDecimals;
    let ok = true;
    if (this.maxPrice >= 0) {
      const hi = exactScaled(this.maxPrice, sc, s.decimals, md);
      ok = hi >= 0 && hi <= 0xffff && exactScaled(this.minPrice, sc, s.decimals, md) >= 0 && (this.priceStep <= 0 || exactScaled(this.priceStep, sc, s.decimals, md) >= 0);
    }
    this.judge(s.currency, ok);
  }

  /** Tell the machine when a ready reader becomes usable or refused (its prices changed). */
  private announce(): void {
    if (this.refusal === '' && !this.announced) {
      this.announced = true;
      this.events.readerReady();
    } else if (this.refusal !== '' && this.announced) {
      this.announced = false;
      this.dropSession();
      this.events.readerLost();
      this.refusedReady();
    } else if (this.refusal !== '') {
      this.refusedReady();
    }
  }

  /**
   * Ask the reader to approve `price` (minor units) for item `item`. False
   * when no session is open or a request is already out. The outcome of the
   * previous vend, if still queued, goes first (the next item of a multi-vend).
   */
  vendRequest(price: number, item: number): boolean {
    if (!this.session || !this.ready || this.requestPrice >= 0 || this.awaiting) return false;
    this.requestPrice = this.toScaled(price, false);
    this.requestItem = item & 0xffff;
    return true;
  }

  /**
   * Withdraw the vend request. True when no answer will come (it had not
   * left yet and is simply dropped, or nothing was outstanding); false when
   * VEND CANCEL goes out, which the reader answers with a denial (or with
   * the approval that crossed it).
   */
  vendCancel(): boolean {
    if (this.requestPrice >= 0) {
      this.requestPrice = -1;
      return true;
    }
    if (!this.awaiting) return true;
    this.needVendCancel = true;
    return false;
  }

  /** Report the outcome of the approved vend: VEND SUCCESS (item) or VEND FAILURE (the reader refunds). */
  vendResult(success: boolean, item: number): void {
    // Without a session there is nobody to tell: the reader has settled the vend on its own.
    if (!this.session || this.phase !== PHASE_READY) return;
    this.result = success ? RESULT.SUCCESS : RESULT.FAILURE;
    this.resultItem = item & 0xffff;
  }

  /** End the session (SESSION COMPLETE); the reader answers END SESSION. */
  sessionComplete(): void {
    if (this.session && this.phase === PHASE_READY) this.needComplete = true;
  }

  /** READER CANCEL: abort what the reader is doing while enabled (it answers CANCELLED). */
  cancelReader(): void {
    if (this.phase === PHASE_READY) this.needReaderCancel = true;
  }

  /** Minor units to the reader's scaled units; `down` rounds down (a minimum), else up (never charge less than the price) [MDB-CL-5]. */
  private toScaled(minor: number, down: boolean): number {
    let unit = this.setup.scale || 1;
    for (let d = this.setup.decimals; d < this.machineDecimals; d++) unit *= 10;
    let v = minor;
    for (let d = this.machineDecimals; d < this.setup.decimals; d++) v *= 10;
    const scaled = down ? Math.floor(v / unit) : Math.ceil(v / unit);
    return scaled > 0xffff ? 0xffff : scaled < 0 ? 0 : scaled;
  }

  private toMinor(scaled: number): number {
    return toMinor(scaled, this.setup.scale || 1, this.setup.decimals, this.machineDecimals);
  }

  // ---- init ------------------------------------------------------------------------

  protected startInit(now: number): void {
    this.initStep(PHASE.CONFIG, now);
    this.configAckedAt = -Infinity;
    this.dropSession();
  }

  protected nextInit(tx: Uint8Array, now: number): number {
    this.retryAt = now + this.timing.pollIntervalMs;
    switch (this.phase) {
      case PHASE.CONFIG:
        // A reader that only acknowledged SETUP sends its configuration on POLL; ask again after a second.
        if (now - this.configAckedAt < 1000) return this.command(tx, CMD.POLL, -1);
        this.command(tx, CMD.SETUP, SETUP.CONFIG);
        // VMC level, then no display of ours for the reader to write on (columns, rows, type) [MDB-CL-1] [MDB-CL-2].
        tx[2] = VMC_LEVEL;
        tx[3] = 0;
        tx[4] = 0;
        tx[5] = 0;
        return 6;
      case PHASE.PRICES:
        return this.prices(tx);
      case PHASE.ID:
        this.command(tx, CMD_EXPANSION, EXPANSION_REQUEST_ID);
        // The VMC's 29-byte identity [MDB-CL-15].
        tx.set(this.vmcId, 2);
        return 2 + this.vmcId.length;
      default:
        return this.enable(tx);
    }
  }

  private prices(tx: Uint8Array): number {
    // Unknown prices: the widest range.
    const hi = this.maxPrice < 0 ? 0xffff : this.toScaled(this.maxPrice, false);
    const lo = this.maxPrice < 0 ? 0 : this.toScaled(this.minPrice, true);
    this.command(tx, CMD.SETUP, SETUP.PRICES);
    tx[2] = hi >> 8;
    tx[3] = hi & 0xff;
    tx[4] = lo >> 8;
    tx[5] = lo & 0xff;
    return 6;
  }

  /** Enabled as the machine wants, unless refused for its currency or scaling. */
  private get enabling(): boolean {
    return this.wantEnabled && this.refusal === '';
  }

  private enable(tx: Uint8Array): number {
    this.command(tx, CMD.READER, this.enabling ? READER.ENABLE : READER.DISABLE);
    return 2;
  }

  // ---- ready: work and polling -------------------------------------------------------

  protected hasWork(now: number): boolean {
    if (now < this.retryAt) return false;
    return (
      this.result !== RESULT.NONE ||
      this.needVendCancel ||
      this.requestPrice >= 0 ||
      this.needComplete ||
      this.needReaderCancel ||
      (this.needPrices && !this.session) ||
      (this.enabling ? 1 : 0) !== this.sentEnabled
    );
  }

  protected nextWork(tx: Uint8Array, now: number): number {
    if (now < this.retryAt) return 0;
    // The outcome of the vend first: the reader cannot move on (or end the session) before it.
    if (this.result !== RESULT.NONE) {
      if (this.result === RESULT.SUCCESS) {
        this.command(tx, CMD.VEND, VEND.SUCCESS);
        tx[2] = this.resultItem >> 8;
        tx[3] = this.resultItem & 0xff;
        return 4;
      }
      return this.command(tx, CMD.VEND, VEND.FAILURE);
    }
    // The reader answers VEND CANCEL with VEND DENIED, or with the approval that crossed it [MDB-CL-9].
    if (this.needVendCancel) return this.command(tx, CMD.VEND, VEND.CANCEL);
    if (this.requestPrice >= 0) {
      this.command(tx, CMD.VEND, VEND.REQUEST);
      tx[2] = this.requestPrice >> 8;
      tx[3] = this.requestPrice & 0xff;
      tx[4] = this.requestItem >> 8;
      tx[5] = this.requestItem & 0xff;
      return 6;
    }
    if (this.needComplete) return this.command(tx, CMD.VEND, VEND.SESSION_COMPLETE);
    if (this.needReaderCancel) return this.command(tx, CMD.READER, READER.CANCEL);
    if (this.needPrices && !this.session) return this.prices(tx);
    if ((this.enabling ? 1 : 0) !== this.sentEnabled) return this.enable(tx);
    return 0;
  }

  protected handleReply(command: number, sub: number, kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean | void {
    if (kind !== REPLY_ACK && kind !== REPLY_DATA) {
      // Lost or refused: the command stays pending and goes again a poll period later.
      this.retryAt = now + this.timing.pollIntervalMs;
      return;
    }
    this.retryAt = -Infinity;
    let reported: number = RESULT.NONE;
    switch (command) {
      case CMD.SETUP:
        if (sub === SETUP.CONFIG) {
          // The configuration may come as the answer or on a later POLL.
          if (kind === REPLY_DATA) return this.messages(data, length, now);
          this.configAckedAt = now;
          return;
        }
        this.needPrices = false;
        if (this.phase === PHASE.PRICES) this.initStep(this.level >= 2 ? PHASE.ID : PHASE.ENABLE, now);
        break;
      case CMD.EXPANSION:
        if (this.phase === PHASE.ID) this.initStep(PHASE.ENABLE, now);
        break;
      case CMD.READER:
        if (sub === READER.CANCEL) {
          this.needReaderCancel = false;
        } else {
          this.sentEnabled = sub === READER.ENABLE ? 1 : 0;
          if (this.phase === PHASE.ENABLE) {
            this.becameReady(now);
            // A refused reader stays polled, disabled (its refusal shows in telemetry); the machine never uses it.
            this.announce();
          }
        }
        break;
      case CMD.VEND:
        switch (sub) {
          case VEND.REQUEST:
            this.requestPrice = -1;
            this.awaiting = true;
            break;
          case VEND.CANCEL:
            this.needVendCancel = false;
            break;
          case VEND.SUCCESS:
          case VEND.FAILURE:
            reported = this.result;
            this.result = RESULT.NONE;
            break;
          case VEND.SESSION_COMPLETE:
            this.needComplete = false;
            if (this.completedAt < 0) this.completedAt = now;
            break;
        }
        break;
    }
    this.seqRefused = false;
    const taken = kind === REPLY_DATA ? this.messages(data, length, now) : true;
    // An answer saying "out of sequence" is a refusal (and the reader is being reset): nothing was reported.
    if (reported !== RESULT.NONE && !this.seqRefused) this.events.vendReported(reported === RESULT.SUCCESS);
    return taken;
  }

  protected handlePoll(data: Uint8Array, length: number, now: number): boolean | void {
    const taken = this.messages(data, length, now);
    this.checkEndSession(now);
    return taken;
  }

  protected override pollIdle(now: number): void {
    this.checkEndSession(now);
  }

  /** No END SESSION within the non-response time after SESSION COMPLETE: RESET the reader (MDB 4.2 §7.4.9) [MDB-CL-11]. */
  private checkEndSession(now: number): void {
    if (this.completedAt < 0 || this.phase !== PHASE_READY || now - this.completedAt <= this.timing.nonResponseMs) return;
    this.log('warn', `cashless reader: no END SESSION ${this.timing.nonResponseMs} ms after SESSION COMPLETE; resetting it`);
    this.resetReader(now);
    // It answers, so the 10 s between RESETs of a silent device does not apply: now.
    this.lastReset = -Infinity;
  }

  /** Parse a chain of reader messages (POLL data, or the data answer to another command) [MDB-CL-7]. */
  private messages(data: Uint8Array, length: number, now: number): boolean {
    const level = this.level;
    let i = 0;
    while (i < length) {
      const code = data[i]!;
      const left = length - i;
      let n = 1;
      switch (code) {
        case READER_MESSAGE.JUST_RESET:
          this.dropSession();
          this.justReset(now);
          break;
        case READER_MESSAGE.CONFIG:
          n = 8;
          if (left < n) return this.truncated(code);
          this.parseConfig(data, i);
          break;
        case READER_MESSAGE.DISPLAY_REQUEST:
          // We declared no display, so the text (if any) runs to the end: show nothing, skip it.
          n = left;
          break;
        case READER_MESSAGE.BEGIN_SESSION: {
          // Level 1: funds; level 2: media id (4), payment type, payment data (2) follow.
          n = level >= 2 || (level === 0 && left >= 10) ? 10 : 3;
          if (left < n) return this.truncated(code);
          const raw = (data[i + 1]! << 8) | data[i + 2]!;
          this.session = true;
          if (this.refusal !== '') {
            // A refused reader is kept disabled; one that opens a session anyway is told to close it.
            this.log('warn', 'cashless reader: a session on a reader the machine does not use; completing it');
            this.needComplete = true;
            break;
          }
          // FFFF: the reader does not say [MDB-CL-6].
          this.funds = raw === 0xffff ? -1 : this.toMinor(raw);
          this.events.sessionBegan(this.funds);
          break;
        }
        case READER_MESSAGE.SESSION_CANCEL_REQUEST:
          this.events.sessionCancelRequested();
          break;
        case READER_MESSAGE.VEND_APPROVED: {
          n = 3;
          if (left < n) return this.truncated(code);
          const raw = (data[i + 1]! << 8) | data[i + 2]!;
          this.awaiting = false;
          this.needVendCancel = false;
          this.events.vendApproved(this.toMinor(raw));
          break;
        }
        case READER_MESSAGE.VEND_DENIED:
          this.awaiting = false;
          this.needVendCancel = false;
          this.events.vendDenied();
          break;
        case READER_MESSAGE.END_SESSION:
          this.dropSession();
          if (this.announced) this.events.sessionEnded();
          break;
        case READER_MESSAGE.CANCELLED:
          this.needReaderCancel = false;
          if (this.events.readerCancelled) this.events.readerCancelled();
          else this.log('info', 'cashless: reader cancelled');
          break;
        case READER_MESSAGE.PERIPHERAL_ID:
          n = left >= 34 && this.setup.level >= 3 ? 34 : 30;
          if (left < n) return this.truncated(code);
          parseIdentity(data, i + 1, i + n, n === 34, this.identity);
          this.log('info', `cashless reader: ${this.identity.manufacturer} ${this.identity.model} serial ${this.identity.serial} software ${this.identity.software}`);
          break;
        case READER_MESSAGE.MALFUNCTION:
          n = 2;
          if (left < n) return this.truncated(code);
          this.log('warn', `cashless reader: malfunction 0x${data[i + 1]!.toString(16)}`);
          if (this.events.readerStatus) this.events.readerStatus(data[i + 1]!);
          else this.log('warn', `cashless reader status 0x${data[i + 1]!.toString(16)}`);
          break;
        case READER_MESSAGE.OUT_OF_SEQUENCE:
          // Level 2 adds the reader's state; the reader and the VMC disagree: reset it [MDB-CL-12].
          n = level >= 2 && left >= 2 ? 2 : 1;
          this.log('warn', `cashless reader: command out of sequence${n === 2 ? ` (reader state ${data[i + 1]})` : ''}; resetting it`);
          this.resetWanted = true;
          this.seqRefused = true;
          break;
        case READER_MESSAGE.REVALUE_APPROVED:
        case READER_MESSAGE.REVALUE_DENIED:
        case READER_MESSAGE.DATE_TIME_REQUEST:
        case READER_MESSAGE.DATA_ENTRY_CANCEL:
          break;
        case READER_MESSAGE.REVALUE_LIMIT:
          n = 3;
          break;
        case READER_MESSAGE.DATA_ENTRY_REQUEST:
          n = 2;
          break;
        default:
          // Unknown length: the rest of the chain cannot be read. Take it (refusing would bring it back for ever).
          this.log('warn', `cashless reader: unknown message 0x${code.toString(16)}, ${left} bytes skipped`);
          if (this.events.readerStatus) this.events.readerStatus(0x100 | code);
          else this.log('warn', `cashless reader status 0x${(0x100 | code).toString(16)}`);
          n = left;
      }
      i += n;
    }
    if (this.resetWanted) {
      this.resetWanted = false;
      this.resetReader(now);
    }
    return true;
  }

  private truncated(code: number): boolean {
    this.log('warn', `cashless reader: message 0x${code.toString(16)} truncated`);
    return true;
  }

  private parseConfig(data: Uint8Array, i: number): void {
    const s = this.setup;
    s.level = data[i + 1]!;
    s.currency = bcdCurrency(data[i + 2]!, data[i + 3]!);
    s.scale = data[i + 4]! || 1;
    s.decimals = data[i + 5]!;
    s.maxResponseS = data[i + 6]!;
    s.options = data[i + 7]!;
    // The reader's own answer time, when longer than the default, is how long it may stay silent [MDB-TIME-2].
    const own = s.maxResponseS * 1000;
    this.timing.nonResponseMs = own > NON_RESPONSE_MS ? own : NON_RESPONSE_MS;
    this.log('info', `cashless reader: level ${s.level}, currency ${s.currency}, scale ${s.scale}, ${s.decimals} decimals, max response ${s.maxResponseS} s, options 0x${s.options.toString(16)}`);
    this.judgeReader();
    if (this.phase === PHASE.CONFIG) {
      this.phase = PHASE.PRICES;
      this.retryAt = -Infinity;
    }
  }

  /** The reader reported a command out of sequence: reset it (no more often than a silent one). */
  private resetReader(now: number): void {
    const wasReady = this.phase === PHASE_READY;
    this.phase = PHASE_RESET;
    this.dropSession();
    if (wasReady) this.lostReady(now);
  }

  /** Whatever the reader was doing for the machine is gone (a reset, the end of its session). */
  private dropSession(): void {
    this.session = false;
    this.funds = -1;
    this.requestPrice = -1;
    this.awaiting = false;
    this.needVendCancel = false;
    this.result = RESULT.NONE;
    this.needComplete = false;
    this.completedAt = -1;
  }

  protected lostReady(_now: number): void {
    this.sentEnabled = -1;
    this.needReaderCancel = false;
    this.dropSession();
    if (!this.announced) return;
    this.announced = false;
    this.events.readerLost();
  }
}

function ascii(out: Uint8Array, at: number, n: number, text: string): void {
  for (let k = 0; k < n; k++) {
    const c = k < text.length ? text.charCodeAt(k) : 0x20;
    out[at + k] = c >= 0x20 && c < 0x7f ? c : 0x3f;
  }
}
