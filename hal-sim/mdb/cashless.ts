/**
 * An MDB cashless reader (device #1, address 0x10), peripheral side, level
 * 1 or 2: SETUP config data and max/min prices, POLL with chained
 * messages, VEND request/cancel/success/failure/session complete, READER
 * enable/disable/cancel, EXPANSION REQUEST ID. One card with funds;
 * approvals take a configurable time and can be refused (`approve: false`,
 * or funds short).
 *
 * The card's account is physical, like coins: what the reader charged
 * survives a power cut. A reset (RESET, its own, or power) while a vend is
 * approved and not yet reported counts as VEND SUCCESS, as MDB says: the
 * card is charged. Faults: the usual per-command ones (nak, silence,
 * drop-reply, garble), silence for a while, a spontaneous "just reset", and
 * either of those at a chosen moment (after the approval is acknowledged,
 * after VEND SUCCESS).
 *
 * Portable (no Node APIs): the firmware's unit tests use it under XS too.
 */
import type { Scheduler, EventId } from '../scheduler.js';
import type { SimMdbBus } from './bus.js';
import { toBcd } from './changer.js';
import { SimPeripheral, type Reply } from './peripheral.js';

export interface SimCashlessOptions {
  /** Money on the card, minor units. */
  funds: number;
  /** true: BEGIN SESSION says the funds are unknown (FFFF), as readers of online accounts do. */
  fundsUnknown?: boolean;
  /** false: deny every vend. */
  approve?: boolean;
  /** Numeric ISO 4217 code (840 USD, 978 EUR). */
  currency: number;
  /** The machine's minor-unit digits. */
  decimals: number;
  /** Reader level, 1 or 2 (default 2). */
  level?: number;
  /** Scale factor and decimals the reader reports (default 1 and the machine's decimals). */
  scale?: number;
  readerDecimals?: number;
  /** Application maximum response time, s (default 5). */
  maxResponseS?: number;
  /** Option bits (default: refunds and multivend). */
  options?: number;
  /** false: SESSION COMPLETE is acknowledged but END SESSION never follows (a reader seen in the field). */
  endSession?: boolean;
  /** Time from VEND REQUEST to the approval or denial being ready for POLL (default 300 ms). */
  approveUs?: number;
  serial?: string;
  model?: string;
}

/** A fault armed for a moment of the vend. */
export interface SimCashlessFault {
  /** When: the VMC acknowledged VEND APPROVED, or VEND SUCCESS; or VEND CANCEL came (acknowledged, never answered with VEND DENIED). */
  after: 'approval' | 'success' | 'cancel';
  /** What: a spontaneous reset, or no answer at all for `ms` (until a power cycle if omitted). */
  kind: 'reset' | 'silence';
  ms?: number;
}

/** Reader states (MDB 4.2, cashless device: Inactive, Disabled, Enabled, Session Idle, Vend). */
export const ReaderState = Object.freeze({ INACTIVE: 1, DISABLED: 2, ENABLED: 3, SESSION_IDLE: 4, VEND: 5 });

const MAX_DATA = 35;

export class SimCashlessReader extends SimPeripheral {
  readonly options: SimCashlessOptions;
  /** Money left on the card (minor units). */
  funds: number;
  approve: boolean;
  state: number = ReaderState.INACTIVE;
  /** Reader enabled by the VMC (READER ENABLE); a session can begin only then. */
  enabled = false;
  private justReset = true;
  /** Messages waiting for POLL, oldest first. */
  private events: number[][] = [];
  /** The vend under way: price (minor units), item, and whether its approval was acknowledged by the VMC. */
  private vendPrice = 0;
  private vendItem = 0;
  /** 0: requested; 1: approval queued; 2: approval acknowledged; 3: denial queued. */
  private vendStage = 0;
  private approval: EventId | undefined;
  /** The last VEND SUCCESS / FAILURE obeyed, to take a repeat of it as itself. */
  private lastResult = -1;
  private silentUntil = 0;
  private fault: SimCashlessFault | undefined;
  /** Amounts charged to the card, in order (physical: survives power cuts). */
  readonly charged: number[] = [];
  /** Vends refunded (VEND FAILURE after approval). */
  refunds = 0;
  sessions = 0;
  approvals = 0;
  /** Virtual time (µs) the last VEND APPROVED was ready for the VMC's next POLL (the bench's latency figure starts there). */
  lastApprovedUs = -1;
  denials = 0;
  /** Max and min price the VMC set (scaled). */
  maxPrice = -1;
  minPrice = -1;
  /** VMC level and identity from SETUP and EXPANSION. */
  vmcLevel = 0;
  vmcId: number[] = [];
  outOfSequence = 0;

  constructor(scheduler: Scheduler, bus: SimMdbBus, options: SimCashlessOptions) {
    super(0x10, scheduler, bus);
    this.options = options;
    this.funds = options.funds;
    this.approve = options.approve ?? true;
  }

  get level(): number {
    return this.options.level ?? 2;
  }

  get chargedValue(): number {
    let v = 0;
    for (const c of this.charged) v += c;
    return v;
  }

  /** True while messages wait to be reported or an approval is being worked out. */
  get pending(): boolean {
    // A reader that does not answer has nothing under way the VMC could see.
    if (!this.powered || this.silent) return false;
    return this.events.length > 0 || this.justReset || this.approval !== undefined;
  }

  /** A vend approved and acknowledged, waiting for VEND SUCCESS/FAILURE (a reset now charges it). */
  get approvedOutstanding(): number {
    return this.state === ReaderState.VEND && this.vendStage === 2 ? this.vendPrice : 0;
  }

  /** The customer presents the card. False when the reader is not taking cards (disabled, busy, off). */
  tap(): boolean {
    if (!this.powered || this.silent || this.state !== ReaderState.ENABLED || !this.enabled) return false;
    this.state = ReaderState.SESSION_IDLE;
    this.sessions++;
    const raw = this.options.fundsUnknown ? 0xffff : Math.min(this.scaled(this.funds), 0xfffe);
    const msg = [0x03, raw >> 8, raw & 0xff];
    // Level 2: media id, payment type (0: normal vend card), payment data.
    if (this.level >= 2) msg.push(0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00);
    this.events.push(msg);
    return true;
  }

  /** The customer cancels at the reader (pulls the card, presses its cancel key). */
  cancelAtReader(): void {
    if (this.state === ReaderState.SESSION_IDLE || this.state === ReaderState.VEND) this.events.push([0x04]);
  }

  /** The reader restarts by itself: any session is gone (an approved vend counts as a success). */
  spontaneousReset(): void {
    this.settleOnReset();
    this.justReset = true;
    this.events = [];
    this.state = ReaderState.INACTIVE;
    this.enabled = false;
  }

  /** No answer at all for `ms` (the reader's state is kept). */
  silence(ms: number): void {
    this.silentUntil = Math.max(this.silentUntil, this.scheduler.now + ms * 1000);
  }

  /** Arm a fault for a moment of the next vend. */
  armFault(fault: SimCashlessFault): void {
    this.fault = { ...fault };
  }

  disarmFault(): void {
    this.fault = undefined;
  }

  /** Report a malfunction code at the next POLL. */
  malfunction(code: number): void {
    this.events.push([0x0a, code & 0xff]);
  }

  private get silent(): boolean {
    return this.scheduler.now < this.silentUntil;
  }

  override receive(word: number): void {
    if (this.silent) return;
    super.receive(word);
  }

  private scaled(minor: number): number {
    let unit = this.options.scale ?? 1;
    const rd = this.options.readerDecimals ?? this.options.decimals;
    for (let d = rd; d < this.options.decimals; d++) unit *= 10;
    let v = minor;
    for (let d = this.options.decimals; d < rd; d++) v *= 10;
    return Math.floor(v / unit);
  }

  private minor(scaled: number): number {
    let v = scaled * (this.options.scale ?? 1);
    const rd = this.options.readerDecimals ?? this.options.decimals;
    for (let d = rd; d < this.options.decimals; d++) v *= 10;
    for (let d = this.options.decimals; d < rd; d++) v = Math.floor(v / 10);
    return v;
  }

  /** MDB: a reset between VEND APPROVED and VEND SUCCESS counts as a success. */
  private settleOnReset(): void {
    if (this.approval !== undefined) this.scheduler.cancel(this.approval);
    this.approval = undefined;
    const owed = this.approvedOutstanding;
    if (owed > 0) this.charge(owed);
    this.vendStage = 0;
  }

  private charge(amount: number): void {
    this.charged.push(amount);
    this.funds -= amount;
  }

  private outOfSequenceReply(): number[] {
    this.outOfSequence++;
    return this.level >= 2 ? [0x0b, this.state] : [0x0b];
  }

  private applyFault(moment: 'approval' | 'success' | 'cancel'): boolean {
    const f = this.fault;
    if (!f || f.after !== moment) return false;
    this.fault = undefined;
    if (f.kind === 'reset') this.spontaneousReset();
    else this.silence(f.ms ?? 1e12);
    return true;
  }

  protected commandLength(block: readonly number[]): number {
    const sub = block.length >= 2 ? block[1]! : -1;
    switch (block[0]! & 7) {
      case 1:
        return sub < 0 ? 0 : 7;
      case 3:
        if (sub < 0) return 0;
        return sub === 0x00 || sub === 0x05 ? 7 : sub === 0x02 ? 5 : 3;
      case 4:
        return 3;
      case 5:
        if (sub < 0) return 0;
        return sub === 0x00 ? 5 : 3;
      case 7:
        if (sub < 0) return 0;
        return sub === 0x00 ? 32 : sub === 0x04 ? 7 : 3;
      default:
        return 2;
    }
  }

  protected handle(command: number, block: readonly number[], acked: (fn: () => void) => void): Reply {
    const sub = block[1] ?? -1;
    switch (command) {
      case 0: // RESET
        this.settleOnReset();
        this.justReset = true;
        this.events = [];
        this.state = ReaderState.INACTIVE;
        this.enabled = false;
        return 'ack';
      case 1: {
        if (sub === 0x00) {
          this.vmcLevel = block[2]!;
          if (this.state === ReaderState.INACTIVE) this.state = ReaderState.DISABLED;
          const bcd = 0x1000 | toBcd(this.options.currency);
          return [
            0x01,
            this.level,
            bcd >> 8,
            bcd & 0xff,
            this.options.scale ?? 1,
            this.options.readerDecimals ?? this.options.decimals,
            this.options.maxResponseS ?? 5,
            this.options.options ?? 0x03,
          ];
        }
        if (sub === 0x01) {
          this.maxPrice = (block[2]! << 8) | block[3]!;
          this.minPrice = (block[4]! << 8) | block[5]!;
          return 'ack';
        }
        return 'nak';
      }
      case 2:
        return this.poll(acked);
      case 3:
        return this.vend(sub, block);
      case 4:
        if (sub === 0x00) {
          this.enabled = false;
          if (this.state === ReaderState.ENABLED) this.state = ReaderState.DISABLED;
        } else if (sub === 0x01) {
          this.enabled = true;
          if (this.state === ReaderState.DISABLED) this.state = ReaderState.ENABLED;
        } else if (sub === 0x02) {
          this.events.push([0x08]);
        }
        return 'ack';
      case 5:
        // REVALUE: this card cannot be topped up.
        this.events.push([0x0e]);
        return 'ack';
      case 7:
        if (this.level < 2) return 'none';
        if (sub === 0x00) {
          this.vmcId = block.slice(2, 31);
          const reply = [0x09];
          pushAscii(reply, 'VFS', 3);
          pushAscii(reply, this.options.serial ?? 'SIM000000001', 12);
          pushAscii(reply, this.options.model ?? 'SIMREADER', 12);
          reply.push(0x01, 0x23);
          return reply;
        }
        return 'nak';
      default:
        return 'none';
    }
  }

  private poll(acked: (fn: () => void) => void): Reply {
    const reply: number[] = [];
    const wasReset = this.justReset;
    if (wasReset) reply.push(0x00);
    let taken = 0;
    for (const e of this.events) {
      if (reply.length + e.length > MAX_DATA) break;
      reply.push(...e);
      taken++;
    }
    if (reply.length === 0) return 'ack';
    const sent = this.events.slice(0, taken);
    acked(() => {
      if (wasReset) this.justReset = false;
      this.events.splice(0, taken);
      for (const e of sent) this.delivered(e);
    });
    return reply;
  }

  /** The VMC acknowledged a message. */
  private delivered(e: number[]): void {
    if (e[0] === 0x05 && this.state === ReaderState.VEND && this.vendStage === 1) {
      this.vendStage = 2;
      this.applyFault('approval');
    } else if (e[0] === 0x06 && this.state === ReaderState.VEND && this.vendStage === 3) {
      this.state = ReaderState.SESSION_IDLE;
      this.vendStage = 0;
    }
  }

  private vend(sub: number, block: readonly number[]): Reply {
    switch (sub) {
      case 0x00: {
        const price = this.minor((block[2]! << 8) | block[3]!);
        const item = (block[4]! << 8) | block[5]!;
        // A repeat of the request being worked on (its ACK was lost) is that request.
        if (this.state === ReaderState.VEND && this.vendPrice === price && this.vendItem === item && this.vendStage < 2) return 'ack';
        if (this.state !== ReaderState.SESSION_IDLE) return this.outOfSequenceReply();
        this.state = ReaderState.VEND;
        this.vendPrice = price;
        this.vendItem = item;
        this.vendStage = 0;
        this.lastResult = -1;
        this.approval = this.scheduler.after(this.options.approveUs ?? 300_000, () => {
          this.approval = undefined;
          if (this.approve && price <= this.funds) {
            this.approvals++;
            this.lastApprovedUs = this.scheduler.now;
            this.vendStage = 1;
            const raw = this.scaled(price);
            this.events.push([0x05, raw >> 8, raw & 0xff]);
          } else {
            this.denials++;
            this.vendStage = 3;
            this.events.push([0x06]);
          }
        });
        return 'ack';
      }
      case 0x01: // VEND CANCEL: only before the approval has been taken.
        if (this.state !== ReaderState.VEND) return this.state === ReaderState.SESSION_IDLE ? 'ack' : this.outOfSequenceReply();
        if (this.vendStage === 2) return this.outOfSequenceReply();
        if (this.approval !== undefined) this.scheduler.cancel(this.approval);
        this.approval = undefined;
        // The fault: the cancel is acknowledged, then nothing: no VEND DENIED, no answer to anything.
        if (this.applyFault('cancel')) return 'ack';
        this.events = this.events.filter((e) => e[0] !== 0x05 && e[0] !== 0x06);
        this.vendStage = 3;
        this.events.push([0x06]);
        return 'ack';
      case 0x02:
      case 0x03: {
        if (this.state === ReaderState.SESSION_IDLE && this.lastResult === sub) return 'ack';
        if (this.state !== ReaderState.VEND || this.vendStage !== 2) return this.outOfSequenceReply();
        if (sub === 0x02) this.charge(this.vendPrice);
        else this.refunds++;
        this.state = ReaderState.SESSION_IDLE;
        this.vendStage = 0;
        this.lastResult = sub;
        // An ACK answer gets no acknowledgement from the VMC: the moment is now.
        if (sub === 0x02) this.applyFault('success');
        return 'ack';
      }
      case 0x04: // SESSION COMPLETE
        if (this.state === ReaderState.SESSION_IDLE || this.state === ReaderState.VEND) {
          this.settleOnReset();
          this.state = this.enabled ? ReaderState.ENABLED : ReaderState.DISABLED;
          if (this.options.endSession !== false) this.events.push([0x07]);
        }
        return 'ack';
      case 0x05: // CASH SALE: noted, nothing to do.
        return 'ack';
      default:
        return 'nak';
    }
  }
}

function pushAscii(out: number[], text: string, n: number): void {
  for (let i = 0; i < n; i++) out.push(i < text.length ? text.charCodeAt(i) & 0x7f : 0x20);
}
