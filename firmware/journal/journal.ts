/**
 * The transaction journal: every money and dispense decision is written
 * here before the machine acts on it, and the ledger is rebuilt from it at
 * boot. It is also the outbox: events stay until the gateway acknowledges
 * them (the sync cursor), and the oldest history is erased only then.
 */
import type { Clock, FlashPartition } from '../board.js';
import { Ledger } from './ledger.js';
import { FlashLog, type LogOptions, type LogStats, type RecoveryReport } from './log.js';
import {
  R_BILL_RETURNED,
  R_BILL_STACKED,
  R_BILL_STACKING,
  R_BOOT,
  R_CHECKPOINT,
  R_COIN_IN,
  R_COINS_MANUAL,
  R_COMMAND,
  R_COMMAND_REJECTED,
  R_KEY,
  R_LOCK,
  R_PLANOGRAM,
  R_PRICE,
  R_REMOTE_VEND,
  R_AUDIT_READ,
  R_CARD_APPROVED,
  R_CARD_RESULT,
  R_SETTING,
  R_CREDIT_ADJUST,
  R_INIT,
  R_INTERIM_RESET,
  R_PAYOUT_DONE,
  R_PAYOUT_START,
  R_SYNC,
  R_TUBES,
  R_VEND_FAIL,
  R_VEND_OK,
  R_VEND_START,
  R_VEND_UNCERTAIN,
  isMeta,
} from './records.js';

export type JournalLevel = 'ok' | 'low' | 'full';

export interface JournalStatus {
  lastSeq: number;
  /** Sequence number of this boot's record (BOOT, or INIT on a new journal). */
  bootSeq: number;
  synced: number;
  /** Events not yet acknowledged by the gateway. */
  unsynced: number;
  /** Percent of the partition holding unacknowledged history. */
  fill: number;
  level: JournalLevel;
  /** Records that could not be written (0 unless the partition filled up mid-transaction). */
  dropped: number;
  /** Block erases since boot: done ahead at quiet moments, and done inside an append (a record waited). */
  erasesAhead: number;
  erasesInline: number;
}

export class Journal {
  readonly ledger: Ledger;
  readonly log: FlashLog;
  private readonly clock: Clock;
  private readonly payload = new Uint8Array(48);
  private readonly view = new DataView(this.payload.buffer);
  private baseTime = 0;
  private bootMs = 0;
  dropped = 0;
  bootSeq = 0;
  /** Called after every event is written (the uplink sends it). */
  onEvent: (() => void) | undefined;

  constructor(flash: FlashPartition, ledger: Ledger, clock: Clock, options: LogOptions = {}) {
    this.ledger = ledger;
    this.clock = clock;
    this.log = new FlashLog(flash, (out) => this.ledger.save(out), options);
    this.log.planCheckpoints(ledger.checkpointLength);
  }

  /**
   * Rebuild the ledger from flash and record the boot. On a fresh partition
   * the journal starts with INIT (and the ledger as configured).
   */
  open(): RecoveryReport & { layoutChanged: boolean } {
    const ledger = this.ledger;
    const report = this.log.recover((type, _seq, time, data, offset, length) => {
      if (type === R_CHECKPOINT) {
        ledger.load(data, offset, length);
      } else {
        ledger.time = time;
        ledger.apply(type, data, offset, length);
      }
    });
    this.log.synced = ledger.synced;
    this.bootMs = this.clock.now();
    this.baseTime = this.log.lastTime + (report.fresh ? 0 : 1);
    const layoutChanged = !report.fresh && !ledger.slotsValid;
    if (!report.fresh) this.emit(R_BOOT, 0);
    this.bootSeq = this.log.lastSeq + (report.fresh ? 1 : 0);
    if (report.fresh || layoutChanged) {
      // From here on slot numbers refer to this layout; the configured stock stands.
      ledger.slotsValid = true;
      this.payload[0] = ledger.slots;
      this.view.setUint32(1, ledger.layout, true);
      this.emit(R_INIT, 5);
    }
    return { ...report, layoutChanged };
  }

  /** Journal time: seconds, monotonic across reboots (wall time arrives with the uplink). */
  now(): number {
    return this.baseTime + Math.floor((this.clock.now() - this.bootMs) / 1000);
  }

  private emit(type: number, length: number): boolean {
    const time = this.now();
    const ok = this.log.append(type, time, this.payload, length);
    if (!ok) this.dropped++;
    // The books follow the decision either way; a record that could not be written is counted.
    this.ledger.time = time;
    this.ledger.apply(type, this.payload, 0, length);
    if (!isMeta(type)) this.onEvent?.();
    return ok;
  }

  // ---- events -----------------------------------------------------------------------------

  coinIn(type: number, routing: number, value: number): void {
    this.payload[0] = type;
    this.payload[1] = routing;
    this.view.setUint16(2, value, true);
    this.emit(R_COIN_IN, 4);
  }

  billStacking(value: number, stackerBefore: number): void {
    this.view.setUint32(0, value, true);
    this.view.setUint16(4, stackerBefore, true);
    this.emit(R_BILL_STACKING, 6);
  }

  billStacked(value: number): void {
    this.view.setUint32(0, value, true);
    this.emit(R_BILL_STACKED, 4);
  }

  billReturned(value: number): void {
    this.view.setUint32(0, value, true);
    this.emit(R_BILL_RETURNED, 4);
  }

  vendStart(slot: number, price: number): void {
    this.vend(R_VEND_START, slot, price);
  }

  vendOk(slot: number, price: number): void {
    this.vend(R_VEND_OK, slot, price);
  }

  private vend(type: number, slot: number, price: number): void {
    this.payload[0] = slot;
    this.view.setUint32(1, price, true);
    this.emit(type, 5);
  }

  vendFailed(slot: number, reason: number): void {
    this.payload[0] = slot;
    this.payload[1] = reason;
    this.emit(R_VEND_FAIL, 2);
  }

  vendUncertain(slot: number): void {
    this.payload[0] = slot;
    this.emit(R_VEND_UNCERTAIN, 1);
  }

  payoutStart(asked: number, tubes: ArrayLike<number>): void {
    this.view.setUint32(0, asked, true);
    for (let t = 0; t < 16; t++) this.payload[4 + t] = tubes[t] ?? 0;
    this.emit(R_PAYOUT_START, 20);
  }

  /** `perType[t]`: coins of type t that left the tubes. */
  payoutDone(paid: number, coins: number, perType: ArrayLike<number>): void {
    this.view.setUint32(0, paid, true);
    this.view.setUint16(4, coins, true);
    let n = 6;
    for (let t = 0; t < 16; t++) {
      const c = perType[t] ?? 0;
      if (c > 0) {
        this.payload[n++] = t;
        this.payload[n++] = c > 255 ? 255 : c;
      }
    }
    this.emit(R_PAYOUT_DONE, n);
  }

  /** The changer's tube counts, when they differ from the journal's. */
  tubes(counts: ArrayLike<number>): void {
    for (let t = 0; t < 16; t++) this.payload[t] = counts[t] ?? 0;
    this.emit(R_TUBES, 16);
  }

  coinsManual(type: number, count: number, value: number): void {
    this.payload[0] = type;
    this.payload[1] = count;
    this.view.setUint32(2, value, true);
    this.emit(R_COINS_MANUAL, 6);
  }

  creditAdjust(delta: number): void {
    this.view.setInt32(0, delta, true);
    this.emit(R_CREDIT_ADJUST, 4);
  }

  interimReset(): void {
    this.emit(R_INTERIM_RESET, 0);
  }

  // ---- remote commands --------------------------------------------------------------------

  /** Command `n` was dealt with (see command/vocabulary.ts for the codes). */
  /** `remaining`: stock left in the slot after a vend command (0xffff: not a vend). */
  command(n: number, issued: number, type: number, outcome: number, value: number, remaining = 0xffff): void {
    this.view.setUint32(0, n, true);
    this.view.setUint32(4, issued, true);
    this.payload[8] = type;
    this.payload[9] = outcome;
    this.view.setUint16(10, Math.min(value, 0xffff), true);
    this.view.setUint16(12, Math.min(remaining, 0xffff), true);
    this.emit(R_COMMAND, 14);
  }

  commandRejected(n: number, reason: number, suppressed: number): void {
    this.view.setUint32(0, n >>> 0, true);
    this.payload[4] = reason;
    this.view.setUint16(5, Math.min(suppressed, 0xffff), true);
    this.emit(R_COMMAND_REJECTED, 7);
  }

  price(slot: number, price: number, version: number): void {
    this.payload[0] = slot;
    this.view.setUint32(1, price, true);
    this.view.setUint32(5, version, true);
    this.emit(R_PRICE, 9);
  }

  planogram(slot: number, price: number, qty: number, capacity: number, sku: number, version: number): void {
    this.payload[0] = slot;
    this.view.setUint32(1, price, true);
    this.view.setUint16(5, qty, true);
    this.view.setUint16(7, capacity, true);
    this.view.setUint32(9, sku, true);
    this.view.setUint32(13, version, true);
    this.emit(R_PLANOGRAM, 17);
  }

  lock(locked: boolean, version: number): void {
    this.payload[0] = locked ? 1 : 0;
    this.view.setUint32(1, version, true);
    this.emit(R_LOCK, 5);
  }

  setting(key: number, value: number, version: number): void {
    this.payload[0] = key;
    this.view.setUint32(1, value, true);
    this.view.setUint32(5, version, true);
    this.emit(R_SETTING, 9);
  }

  /** A new command key (a meta record: it stays on the machine). */
  key(kid: number, key: Uint8Array): void {
    this.payload[0] = kid;
    this.payload.set(key.subarray(0, 32), 1);
    this.emit(R_KEY, 33);
  }

  remoteVend(n: number, slot: number, quantity: number, price: number): void {
    this.view.setUint32(0, n, true);
    this.payload[4] = slot;
    this.payload[5] = quantity;
    this.view.setUint32(6, price, true);
    this.emit(R_REMOTE_VEND, 10);
  }

  /** The audit data was read (read number `n`, at Unix time `wall`, 0 if unknown): interim counters restart. */
  auditRead(n: number, wall: number): void {
    this.view.setUint32(0, n, true);
    this.view.setUint32(4, wall >>> 0, true);
    this.emit(R_AUDIT_READ, 8);
  }

  // ---- cashless ------------------------------------------------------------------------------

  /** The reader approved a vend of `slot` for `amount`: written before the approval is acknowledged and before the motor turns. */
  cardApproved(slot: number, amount: number): void {
    this.payload[0] = slot;
    this.view.setUint32(1, amount, true);
    this.emit(R_CARD_APPROVED, 5);
  }

  /** The card vend was settled with the reader (`outcome`: a CardOutcome, vocabulary.ts). */
  cardResult(outcome: number, slot: number, amount: number): void {
    this.payload[0] = outcome;
    this.payload[1] = slot;
    this.view.setUint32(2, amount, true);
    this.emit(R_CARD_RESULT, 6);
  }

  /** The gateway committed every event up to `seq`. */
  acknowledge(seq: number): void {
    if (seq > this.log.lastSeq) seq = this.log.lastSeq;
    if (seq <= this.ledger.synced) return;
    this.view.setUint32(0, seq, true);
    this.log.synced = seq;
    this.emit(R_SYNC, 4);
  }

  /**
   * Housekeeping for a quiet moment: erase the next flash block ahead of
   * need, so that records written while a peripheral waits for its ACK only
   * write. Returns true if it did something.
   */
  prepare(): boolean {
    return this.log.eraseAhead();
  }

  // ---- state --------------------------------------------------------------------------------

  get level(): JournalLevel {
    // Below the reserve no new sale starts; the reserve lets one under way finish.
    if (this.log.room() < this.log.reserveBytes) return 'full';
    return this.log.fill() >= 75 ? 'low' : 'ok';
  }

  status(): JournalStatus {
    return {
      lastSeq: this.log.lastSeq,
      bootSeq: this.bootSeq,
      synced: this.ledger.synced,
      unsynced: this.log.lastSeq - this.ledger.synced,
      fill: this.log.fill(),
      level: this.level,
      dropped: this.dropped,
      erasesAhead: this.log.stats.erasesAhead,
      erasesInline: this.log.stats.erasesInline,
    };
  }

  get stats(): LogStats {
    return this.log.stats;
  }
}
