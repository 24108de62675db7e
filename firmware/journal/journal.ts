/**
 * The transaction journal: every money and dispense decision is written
 * here before the machine acts on it, and the ledger is rebuilt from it at
 * boot. It is also the outbox: events stay until the gateway acknowledges
 * them (the sync cursor), and the oldest history is erased only then.
 * Payloads are written through the records' codec (records.ts).
 */
import type { Clock, FlashPartition } from '../board.js';
import { COIN_TYPES } from '../money/coins.js';
import { Ledger } from './ledger.js';
import { FlashLog, type LogOptions, type LogStats, type RecoveryReport } from './log.js';
import {
  COIN_COUNT,
  isMeta,
  put,
  putRun,
  R_AUDIT_READ,
  R_BILL_RETURNED,
  R_BILL_STACKED,
  R_BILL_STACKING,
  R_BOOT,
  R_CARD_APPROVED,
  R_CARD_RESULT,
  R_CHECKPOINT,
  R_COIN_IN,
  R_COINS_MANUAL,
  R_COMMAND,
  R_COMMAND_REJECTED,
  R_CREDIT_ADJUST,
  R_INIT,
  R_INTERIM_RESET,
  R_KEY,
  R_UPDATE,
  R_UPDATE_BEGIN,
  R_UPDATE_PROGRESS,
  R_LOCK,
  R_PAYOUT_DONE,
  R_PAYOUT_START,
  R_PLANOGRAM,
  R_PRICE,
  R_REMOTE_VEND,
  R_SETTING,
  R_SYNC,
  R_TUBES,
  R_VEND_FAIL,
  R_VEND_OK,
  R_VEND_START,
  R_VEND_UNCERTAIN,
  type IntField,
  type RecordType,
  type Spec,
  size,
} from './records.js';

/** 'fault': the flash has too few blocks that still work (log.ts `worn`): nothing new starts. */
export type JournalLevel = 'ok' | 'low' | 'full' | 'fault';

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
  /** Flash writes and erases that failed since boot (their blocks were sealed or skipped). */
  faults: number;
}

export class Journal {
  readonly ledger: Ledger;
  readonly log: FlashLog;
  private readonly clock: Clock;
  /** Room for the longest record (PAYOUT DONE paying every coin type: 38 bytes). */
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
    if (!report.fresh) this.emit(R_BOOT);
    this.bootSeq = this.log.lastSeq + (report.fresh ? 1 : 0);
    if (report.fresh || layoutChanged) {
      // From here on slot numbers refer to this layout; the configured stock stands.
      ledger.slotsValid = true;
      this.set(R_INIT, 'slots', ledger.slots);
      this.set(R_INIT, 'layout', ledger.layout);
      this.emit(R_INIT);
    }
    return { ...report, layoutChanged };
  }

  /** Journal time: seconds, monotonic across reboots (wall time arrives with the uplink). */
  now(): number {
    return this.baseTime + Math.floor((this.clock.now() - this.bootMs) / 1000);
  }

  /** Write field `name` of the `t` payload being built (`o`: where an entry after the fields starts). */
  private set<S extends Spec>(t: RecordType<S>, name: IntField<S>, x: number, o = 0): void {
    put(this.view, t, name, x, o);
  }

  /** Write a record whose payload is in `payload` (`length` bytes: the layout's, unless it ends in entries). */
  private emit(type: RecordType, length = size(type)): boolean {
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
    this.set(R_COIN_IN, 'coinType', type);
    this.set(R_COIN_IN, 'routing', routing);
    this.set(R_COIN_IN, 'value', value);
    this.emit(R_COIN_IN);
  }

  billStacking(value: number, stackerBefore: number): void {
    this.set(R_BILL_STACKING, 'value', value);
    this.set(R_BILL_STACKING, 'stackerBefore', stackerBefore);
    this.emit(R_BILL_STACKING);
  }

  billStacked(value: number): void {
    this.set(R_BILL_STACKED, 'value', value);
    this.emit(R_BILL_STACKED);
  }

  billReturned(value: number): void {
    this.set(R_BILL_RETURNED, 'value', value);
    this.emit(R_BILL_RETURNED);
  }

  vendStart(slot: number, price: number): void {
    this.set(R_VEND_START, 'slot', slot);
    this.set(R_VEND_START, 'price', price);
    this.emit(R_VEND_START);
  }

  vendOk(slot: number, price: number): void {
    this.set(R_VEND_OK, 'slot', slot);
    this.set(R_VEND_OK, 'price', price);
    this.emit(R_VEND_OK);
  }

  vendFailed(slot: number, reason: number): void {
    this.set(R_VEND_FAIL, 'slot', slot);
    this.set(R_VEND_FAIL, 'reason', reason);
    this.emit(R_VEND_FAIL);
  }

  vendUncertain(slot: number): void {
    this.set(R_VEND_UNCERTAIN, 'slot', slot);
    this.emit(R_VEND_UNCERTAIN);
  }

  payoutStart(asked: number, tubes: ArrayLike<number>): void {
    this.set(R_PAYOUT_START, 'asked', asked);
    putRun(this.payload, R_PAYOUT_START, 'tubes', tubes);
    this.emit(R_PAYOUT_START);
  }

  /** `perType[t]`: coins of type t that left the tubes. */
  payoutDone(paid: number, coins: number, perType: ArrayLike<number>): void {
    this.set(R_PAYOUT_DONE, 'paid', paid);
    this.set(R_PAYOUT_DONE, 'coins', coins);
    // One COIN_COUNT per coin type paid follows the fixed fields.
    let n = size(R_PAYOUT_DONE);
    for (let t = 0; t < COIN_TYPES; t++) {
      const c = perType[t] ?? 0;
      if (c > 0) {
        this.set(COIN_COUNT, 'coinType', t, n);
        this.set(COIN_COUNT, 'count', c > 255 ? 255 : c, n);
        n += size(COIN_COUNT);
      }
    }
    this.emit(R_PAYOUT_DONE, n);
  }

  /** The changer's tube counts, when they differ from the journal's. */
  tubes(counts: ArrayLike<number>): void {
    putRun(this.payload, R_TUBES, 'tubes', counts);
    this.emit(R_TUBES);
  }

  coinsManual(type: number, count: number, value: number): void {
    this.set(R_COINS_MANUAL, 'coinType', type);
    this.set(R_COINS_MANUAL, 'count', count);
    this.set(R_COINS_MANUAL, 'value', value);
    this.emit(R_COINS_MANUAL);
  }

  creditAdjust(delta: number): void {
    this.set(R_CREDIT_ADJUST, 'delta', delta);
    this.emit(R_CREDIT_ADJUST);
  }

  interimReset(): void {
    this.emit(R_INTERIM_RESET);
  }

  // ---- remote commands --------------------------------------------------------------------

  /** Command `n` was dealt with (see command/vocabulary.ts for the codes). */
  /** `remaining`: stock left in the slot after a vend command (0xffff: not a vend). */
  command(n: number, issued: number, type: number, outcome: number, value: number, remaining = 0xffff): void {
    this.set(R_COMMAND, 'n', n);
    this.set(R_COMMAND, 'issued', issued);
    this.set(R_COMMAND, 'command', type);
    this.set(R_COMMAND, 'outcome', outcome);
    this.set(R_COMMAND, 'value', Math.min(value, 0xffff));
    this.set(R_COMMAND, 'remaining', Math.min(remaining, 0xffff));
    this.emit(R_COMMAND);
  }

  commandRejected(n: number, reason: number, suppressed: number): void {
    this.set(R_COMMAND_REJECTED, 'n', n >>> 0);
    this.set(R_COMMAND_REJECTED, 'reason', reason);
    this.set(R_COMMAND_REJECTED, 'suppressed', Math.min(suppressed, 0xffff));
    this.emit(R_COMMAND_REJECTED);
  }

  price(slot: number, price: number, version: number): void {
    this.set(R_PRICE, 'slot', slot);
    this.set(R_PRICE, 'price', price);
    this.set(R_PRICE, 'version', version);
    this.emit(R_PRICE);
  }

  planogram(slot: number, price: number, qty: number, capacity: number, sku: number, version: number): void {
    this.set(R_PLANOGRAM, 'slot', slot);
    this.set(R_PLANOGRAM, 'price', price);
    this.set(R_PLANOGRAM, 'qty', qty);
    this.set(R_PLANOGRAM, 'capacity', capacity);
    this.set(R_PLANOGRAM, 'sku', sku);
    this.set(R_PLANOGRAM, 'version', version);
    this.emit(R_PLANOGRAM);
  }

  lock(locked: boolean, version: number): void {
    this.set(R_LOCK, 'locked', locked ? 1 : 0);
    this.set(R_LOCK, 'version', version);
    this.emit(R_LOCK);
  }

  setting(key: number, value: number, version: number): void {
    this.set(R_SETTING, 'key', key);
    this.set(R_SETTING, 'value', value);
    this.set(R_SETTING, 'version', version);
    this.emit(R_SETTING);
  }

  /** A new command key (a meta record: it stays on the machine). */
  key(kid: number, key: Uint8Array): void {
    this.set(R_KEY, 'kid', kid);
    putRun(this.payload, R_KEY, 'key', key);
    this.emit(R_KEY);
  }

  remoteVend(n: number, slot: number, quantity: number, price: number): void {
    this.set(R_REMOTE_VEND, 'n', n);
    this.set(R_REMOTE_VEND, 'slot', slot);
    this.set(R_REMOTE_VEND, 'quantity', quantity);
    this.set(R_REMOTE_VEND, 'price', price);
    this.emit(R_REMOTE_VEND);
  }

  /** The audit data was read (read number `n`, at Unix time `wall`, 0 if unknown): interim counters restart. */
  auditRead(n: number, wall: number): void {
    this.set(R_AUDIT_READ, 'read', n);
    this.set(R_AUDIT_READ, 'wall', wall >>> 0);
    this.emit(R_AUDIT_READ);
  }

  // ---- firmware updates (docs/updates.md) ------------------------------------------------------

  /** An `update` command was taken: the image about to be fetched (journal before effect). */
  updateBegin(n: number, version: number, size: number, journal: number, flags: number, sha256: Uint8Array): boolean {
    this.set(R_UPDATE_BEGIN, 'n', n);
    this.set(R_UPDATE_BEGIN, 'version', version);
    this.set(R_UPDATE_BEGIN, 'size', size);
    this.set(R_UPDATE_BEGIN, 'journal', journal);
    this.set(R_UPDATE_BEGIN, 'flags', flags);
    putRun(this.payload, R_UPDATE_BEGIN, 'sha256', sha256);
    return this.emit(R_UPDATE_BEGIN);
  }

  /** A step of the open update (`phase`: UpdatePhase, `reason`: UpdateReason). */
  update(n: number, phase: number, reason: number, version: number): boolean {
    this.set(R_UPDATE, 'n', n);
    this.set(R_UPDATE, 'phase', phase);
    this.set(R_UPDATE, 'reason', reason);
    this.set(R_UPDATE, 'version', version);
    return this.emit(R_UPDATE);
  }

  /** The open update's download reached `offset`, with the hash state there (meta: where a resume starts). */
  updateProgress(n: number, offset: number, state: Uint8Array): boolean {
    this.set(R_UPDATE_PROGRESS, 'n', n);
    this.set(R_UPDATE_PROGRESS, 'offset', offset);
    putRun(this.payload, R_UPDATE_PROGRESS, 'state', state);
    return this.emit(R_UPDATE_PROGRESS);
  }

  // ---- cashless ------------------------------------------------------------------------------

  /** The reader approved a vend of `slot` for `amount`: written before the approval is acknowledged and before the motor turns. */
  cardApproved(slot: number, amount: number): void {
    this.set(R_CARD_APPROVED, 'slot', slot);
    this.set(R_CARD_APPROVED, 'amount', amount);
    this.emit(R_CARD_APPROVED);
  }

  /** The card vend was settled with the reader (`outcome`: a CardOutcome, vocabulary.ts). */
  cardResult(outcome: number, slot: number, amount: number): void {
    this.set(R_CARD_RESULT, 'outcome', outcome);
    this.set(R_CARD_RESULT, 'slot', slot);
    this.set(R_CARD_RESULT, 'amount', amount);
    this.emit(R_CARD_RESULT);
  }

  /** The gateway committed every event up to `seq`. */
  acknowledge(seq: number): void {
    if (seq > this.log.lastSeq) seq = this.log.lastSeq;
    if (seq <= this.ledger.synced) return;
    this.set(R_SYNC, 'seq', seq);
    this.log.synced = seq;
    this.emit(R_SYNC);
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
    if (this.log.worn) return 'fault';
    // Below the reserve no new sale starts; the reserve lets one under way finish.
    if (this.log.room() < this.log.reserveBytes) return 'full';
    return this.log.fill() >= 75 ? 'low' : 'ok';
  }

  /** Full or faulty: no sale or command starts. */
  get stopped(): boolean {
    const l = this.level;
    return l === 'full' || l === 'fault';
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
      faults: this.log.stats.faults,
    };
  }

  get stats(): LogStats {
    return this.log.stats;
  }
}
