/**
 * The machine's books, rebuilt from the journal: credit held for the
 * customer, stock per slot, audit counters (since initialisation and since
 * the last interim reset, as EVA-DTS wants them), and whatever was in flight
 * when the power failed (a vend, a payout, a bill being stacked).
 *
 * Pure: `apply` is the only way the books change, both while running and
 * while replaying after a reboot, so the two can never disagree. Record
 * payloads are read through the codec in records.ts; a checkpoint is the
 * books as one record (`save`, `load`; its sections in checkpoint.ts).
 *
 * About 640 lines kept in one file on purpose: `apply` must handle every
 * record type in one place so that running and replay cannot differ; the
 * pieces that are not the books themselves (vocabulary, checkpoint sections,
 * record layouts) already live beside it.
 */
import { SETTINGS } from '../command/vocabulary.js';
import { COIN_TYPES } from '../money/coins.js';
import * as Checkpoint from './checkpoint.js';
import {
  COIN_COUNT,
  CP_AUDIT,
  CP_CARD,
  CP_CLOCK,
  CP_COMMANDS,
  CP_COUNTER,
  CP_HEAD,
  CP_SETTING,
  CP_SLOT,
  get,
  offsetOf,
  put,
  putRun,
  R_AUDIT_READ,
  R_BILL_RETURNED,
  R_BILL_STACKED,
  R_BILL_STACKING,
  R_BOOT,
  R_CARD_APPROVED,
  R_CARD_RESULT,
  R_COIN_IN,
  R_COINS_MANUAL,
  R_COMMAND,
  R_COMMAND_REJECTED,
  R_CREDIT_ADJUST,
  R_INIT,
  R_INTERIM_RESET,
  R_KEY,
  R_LOCK,
  R_PAYOUT_DONE,
  R_PAYOUT_START,
  R_PLANOGRAM,
  R_PRICE,
  R_REMOTE_VEND,
  R_SETTING,
  R_SYNC,
  R_TUBES,
  R_UPDATE,
  R_UPDATE_BEGIN,
  R_UPDATE_PROGRESS,
  R_VEND_FAIL,
  R_VEND_OK,
  R_VEND_START,
  R_VEND_UNCERTAIN,
  run,
  size,
} from './records.js';
import { UpdateBooks } from './update-books.js';
import { CardOutcome, CardVend, CoinRouting, Counter, COUNTERS } from './vocabulary.js';

export { CardVend, COUNTERS, Counter } from './vocabulary.js';

/** A coin type out of a record's byte: MDB numbers them in 4 bits. */
const COIN_TYPE_MASK = COIN_TYPES - 1;

/** What the books share with the inventory: the slot arrays both read and the books alone change. */
export interface SlotArrays {
  qty: Uint16Array;
  fault: Uint8Array;
  prices?: Int32Array;
  capacity?: Uint16Array;
  sku?: Uint32Array;
  /** A cashless reader is fitted: checkpoints carry the cashless block. */
  cashless?: boolean;
}

export class Ledger {
  readonly slots: number;
  /** Checkpoints carry the cashless counters and the card vend (a reader is fitted). */
  readonly cashless: boolean;
  /** Hash of the slot layout the books belong to. */
  readonly layout: number;
  readonly total: Uint32Array;
  readonly interim: Uint32Array;
  credit = 0;
  readonly qty: Uint16Array;
  readonly fault: Uint8Array;
  readonly slotSales: Uint32Array;
  readonly slotRevenue: Uint32Array;
  readonly slotSalesInterim: Uint32Array;
  readonly slotRevenueInterim: Uint32Array;
  /** Journal time of each slot's last sale (0: none yet). */
  readonly slotLastSale: Uint32Array;
  /** EVA-DTS reads since initialisation, and the wall time (Unix s, 0: unknown) of the last. */
  auditReads = 0;
  lastReadWall = 0;
  /** A vend was started and its outcome not yet recorded (-1: none). */
  openVend = -1;
  openVendPrice = 0;
  /** A payout was started and not yet verified (0: none). */
  openPayout = 0;
  readonly payoutTubes: Uint8Array;
  /** Coins in each tube as the journal knows them (deposits, payouts, manual payouts, changer reports). */
  readonly tubes: Uint8Array;
  /** A bill stack was ordered and not yet reported (0: none). */
  openStack = 0;
  openStackBefore = 0;
  /** Events up to this sequence number are acknowledged by the gateway. */
  synced = 0;
  /** Slot numbers in the records being applied refer to this machine's slot layout. */
  slotsValid = true;

  // ---- set by remote commands -----------------------------------------------------------
  readonly prices: Int32Array;
  readonly capacity: Uint16Array;
  /** Product (catalogue number) per slot, from a planogram command; 0 when the configuration's. */
  readonly sku: Uint32Array;
  /** The number of the newest command that set each slot's price or planogram. */
  readonly slotVersion: Uint32Array;
  locked = false;
  lockVersion = 0;
  /** Setting values (0: the configuration's) and the command numbers that set them. */
  readonly settings: Uint32Array;
  readonly settingVersion: Uint32Array;
  /** Highest command number seen, and which of the 32 below it were seen (bit i: high - 1 - i). */
  commandHigh = 0;
  commandWindow = 0;
  /** Unix seconds minus journal seconds, learned from signed commands (0: unknown). A lower bound of the wall clock where the board's ticks are real seconds. */
  wallOffset = 0;
  /** The newest `issued` (Unix s) of a signed command applied: the machine's clock never reads earlier (command/wall.ts). */
  wallFloor = 0;
  /** The command key (kid 0: the configuration's key stands). */
  keyId = 0;
  readonly key: Uint8Array;
  /** A remote vend under way (its command number, 0: none). */
  remoteOpen = 0;
  remoteSlot = 0;
  remoteQty = 0;
  remoteDone = 0;
  remotePrice = 0;
  /** A card vend under way or not yet settled with the reader (CardVend), its slot and approved amount. */
  cardVend: number = CardVend.NONE;
  cardSlot = 0;
  cardAmount = 0;
  /** The firmware update open (update-books.ts). */
  readonly update = new UpdateBooks();
  /** Journal time of the record being applied (set by the journal before each apply). */
  time = 0;

  /** The slot arrays are the inventory's own: the books and the machine share them. */
  constructor(qty: Uint16Array, fault: Uint8Array, layout: number, shared: Partial<SlotArrays> = {}) {
    const n = qty.length;
    this.slots = n;
    this.cashless = shared.cashless ?? false;
    this.layout = layout >>> 0;
    this.qty = qty;
    this.fault = fault;
    this.prices = shared.prices ?? new Int32Array(n);
    this.capacity = shared.capacity ?? new Uint16Array(n);
    this.sku = shared.sku ?? new Uint32Array(n);
    // The books' own arrays are views of two buffers: two allocations, not thirteen (and fewer XS heap slots).
    const words = new ArrayBuffer(4 * (2 * COUNTERS + 2 * SETTINGS + 6 * n));
    let w = 0;
    const u32s = (length: number): Uint32Array => {
      const view = new Uint32Array(words, w, length);
      w += 4 * length;
      return view;
    };
    this.total = u32s(COUNTERS);
    this.interim = u32s(COUNTERS);
    this.settings = u32s(SETTINGS);
    this.settingVersion = u32s(SETTINGS);
    this.slotVersion = u32s(n);
    this.slotSales = u32s(n);
    this.slotRevenue = u32s(n);
    this.slotSalesInterim = u32s(n);
    this.slotRevenueInterim = u32s(n);
    this.slotLastSale = u32s(n);
    const bytes = new ArrayBuffer(2 * COIN_TYPES + 32);
    this.payoutTubes = new Uint8Array(bytes, 0, COIN_TYPES);
    this.tubes = new Uint8Array(bytes, COIN_TYPES, COIN_TYPES);
    this.key = new Uint8Array(bytes, 2 * COIN_TYPES, 32);
  }

  count(index: number, amount: number): void {
    this.total[index] = this.total[index]! + amount;
    this.interim[index] = this.interim[index]! + amount;
  }

  /** Money in = sales + paid out + credit held; true when the books balance. */
  balanced(): boolean {
    const t = this.total;
    return t[Counter.COINS_TUBES]! + t[Counter.COINS_CASHBOX]! + t[Counter.BILLS_VALUE]! === t[Counter.REVENUE]! + t[Counter.PAID_VALUE]! + this.credit;
  }

  apply(type: number, d: Uint8Array, o: number, length: number): void {
    switch (type) {
      case R_COIN_IN: {
        const value = get(d, o, R_COIN_IN, 'value');
        const tubes = get(d, o, R_COIN_IN, 'routing') === CoinRouting.TUBES;
        const t = get(d, o, R_COIN_IN, 'coinType') & COIN_TYPE_MASK;
        if (tubes && this.tubes[t]! < 255) this.tubes[t] = this.tubes[t]! + 1;
        this.count(tubes ? Counter.COINS_TUBES : Counter.COINS_CASHBOX, value);
        this.count(Counter.COINS_COUNT, 1);
        if (tubes) this.count(Counter.COINS_TUBES_COUNT, 1);
        this.credit += value;
        return;
      }
      case R_BILL_STACKING:
        this.openStack = get(d, o, R_BILL_STACKING, 'value');
        this.openStackBefore = get(d, o, R_BILL_STACKING, 'stackerBefore');
        return;
      case R_BILL_STACKED: {
        const value = get(d, o, R_BILL_STACKED, 'value');
        this.count(Counter.BILLS_VALUE, value);
        this.count(Counter.BILLS_COUNT, 1);
        this.credit += value;
        this.openStack = 0;
        return;
      }
      case R_BILL_RETURNED:
        this.count(Counter.BILLS_RETURNED, 1);
        if (this.openStack === get(d, o, R_BILL_RETURNED, 'value')) this.openStack = 0;
        return;
      case R_VEND_START:
        this.openVend = get(d, o, R_VEND_START, 'slot');
        this.openVendPrice = get(d, o, R_VEND_START, 'price');
        return;
      case R_INIT:
        this.slotsValid = get(d, o, R_INIT, 'slots') === this.slots && get(d, o, R_INIT, 'layout') === this.layout;
        return;
      case R_VEND_OK: {
        const slot = get(d, o, R_VEND_OK, 'slot');
        const price = get(d, o, R_VEND_OK, 'price');
        if (slot < this.slots && this.slotsValid) {
          if (this.qty[slot]! > 0) this.qty[slot] = this.qty[slot]! - 1;
          this.slotSales[slot] = this.slotSales[slot]! + 1;
          this.slotRevenue[slot] = this.slotRevenue[slot]! + price;
          this.slotSalesInterim[slot] = this.slotSalesInterim[slot]! + 1;
          this.slotRevenueInterim[slot] = this.slotRevenueInterim[slot]! + price;
          this.slotLastSale[slot] = this.time;
        }
        this.openVend = -1;
        if (this.cardVend === CardVend.APPROVED) {
          // Paid by card: a cashless sale; the cash books (credit, Counter.REVENUE) do not move.
          this.count(Counter.CASHLESS_SALES, 1);
          this.count(Counter.CASHLESS_VALUE, price);
          this.cardVend = CardVend.DELIVERED;
          return;
        }
        if (this.remoteOpen !== 0) {
          // Paid elsewhere: a sale, but no cash and no credit moved.
          this.count(Counter.REMOTE_SALES, 1);
          this.count(Counter.REMOTE_VALUE, price);
          this.remoteDone++;
          return;
        }
        this.count(Counter.SALES, 1);
        this.count(Counter.REVENUE, price);
        this.credit -= price;
        return;
      }
      case R_VEND_FAIL: {
        const slot = get(d, o, R_VEND_FAIL, 'slot');
        if (slot < this.slots && this.slotsValid) this.fault[slot] = 1;
        this.count(Counter.FAILED_VENDS, 1);
        this.openVend = -1;
        if (this.cardVend === CardVend.APPROVED) this.cardVend = CardVend.FAILED;
        return;
      }
      case R_VEND_UNCERTAIN:
        this.count(Counter.UNCERTAIN_VENDS, 1);
        this.openVend = -1;
        if (this.cardVend === CardVend.APPROVED) this.cardVend = CardVend.UNCERTAIN;
        return;
      case R_CARD_APPROVED:
        this.cardVend = CardVend.APPROVED;
        this.cardSlot = get(d, o, R_CARD_APPROVED, 'slot');
        this.cardAmount = get(d, o, R_CARD_APPROVED, 'amount');
        return;
      case R_CARD_RESULT: {
        const outcome = get(d, o, R_CARD_RESULT, 'outcome');
        if (outcome === CardOutcome.UNREFUNDED || outcome === CardOutcome.UNCERTAIN || outcome === CardOutcome.NOT_DISPENSED) {
          this.count(Counter.CASHLESS_UNREFUNDED, get(d, o, R_CARD_RESULT, 'amount'));
        }
        this.cardVend = CardVend.NONE;
        return;
      }
      case R_PAYOUT_START:
        this.openPayout = get(d, o, R_PAYOUT_START, 'asked');
        this.payoutTubes.set(run(d, o, R_PAYOUT_START, 'tubes'));
        this.tubes.set(this.payoutTubes);
        return;
      case R_PAYOUT_DONE: {
        const paid = get(d, o, R_PAYOUT_DONE, 'paid');
        // One COIN_COUNT per coin type paid follows the fixed fields.
        for (let p = o + size(R_PAYOUT_DONE); p + size(COIN_COUNT) <= o + length; p += size(COIN_COUNT)) {
          const t = get(d, p, COIN_COUNT, 'coinType') & COIN_TYPE_MASK;
          this.tubes[t] = Math.max(0, this.tubes[t]! - get(d, p, COIN_COUNT, 'count'));
        }
        this.count(Counter.PAID_VALUE, paid);
        this.count(Counter.PAID_COUNT, get(d, o, R_PAYOUT_DONE, 'coins'));
        this.credit -= paid;
        this.openPayout = 0;
        return;
      }
      case R_COINS_MANUAL: {
        const t = get(d, o, R_COINS_MANUAL, 'coinType') & COIN_TYPE_MASK;
        const count = get(d, o, R_COINS_MANUAL, 'count');
        this.tubes[t] = Math.max(0, this.tubes[t]! - count);
        this.count(Counter.MANUAL_VALUE, get(d, o, R_COINS_MANUAL, 'value'));
        this.count(Counter.MANUAL_COUNT, count);
        return;
      }
      case R_BOOT:
        this.count(Counter.BOOTS, 1);
        return;
      case R_SYNC: {
        const seq = get(d, o, R_SYNC, 'seq');
        if (seq > this.synced) this.synced = seq;
        return;
      }
      case R_TUBES:
        this.tubes.set(run(d, o, R_TUBES, 'tubes'));
        return;
      case R_CREDIT_ADJUST:
        this.credit += get(d, o, R_CREDIT_ADJUST, 'delta');
        return;
      case R_INTERIM_RESET:
        this.resetInterim();
        return;
      case R_AUDIT_READ:
        this.auditReads = get(d, o, R_AUDIT_READ, 'read');
        this.lastReadWall = get(d, o, R_AUDIT_READ, 'wall');
        this.resetInterim();
        return;
      case R_COMMAND: {
        const n = get(d, o, R_COMMAND, 'n');
        this.commandSeen(n);
        const issued = get(d, o, R_COMMAND, 'issued');
        if (issued - this.time > this.wallOffset) this.wallOffset = issued - this.time;
        if (issued > this.wallFloor) this.wallFloor = issued;
        if (this.remoteOpen === n) this.remoteOpen = 0;
        return;
      }
      case R_COMMAND_REJECTED:
        this.count(Counter.COMMANDS_REJECTED, 1 + get(d, o, R_COMMAND_REJECTED, 'suppressed'));
        return;
      case R_PRICE: {
        const slot = get(d, o, R_PRICE, 'slot');
        if (slot < this.slots && this.slotsValid) {
          this.prices[slot] = get(d, o, R_PRICE, 'price');
          this.slotVersion[slot] = get(d, o, R_PRICE, 'version');
        }
        return;
      }
      case R_PLANOGRAM: {
        const slot = get(d, o, R_PLANOGRAM, 'slot');
        if (slot < this.slots && this.slotsValid) {
          this.prices[slot] = get(d, o, R_PLANOGRAM, 'price');
          this.qty[slot] = get(d, o, R_PLANOGRAM, 'qty');
          this.capacity[slot] = get(d, o, R_PLANOGRAM, 'capacity');
          this.sku[slot] = get(d, o, R_PLANOGRAM, 'sku');
          this.slotVersion[slot] = get(d, o, R_PLANOGRAM, 'version');
          // Somebody stood at the machine and loaded the slot: it is back in service.
          this.fault[slot] = 0;
        }
        return;
      }
      case R_LOCK:
        this.locked = get(d, o, R_LOCK, 'locked') === 1;
        this.lockVersion = get(d, o, R_LOCK, 'version');
        return;
      case R_SETTING: {
        const key = get(d, o, R_SETTING, 'key');
        if (key < SETTINGS) {
          this.settings[key] = get(d, o, R_SETTING, 'value');
          this.settingVersion[key] = get(d, o, R_SETTING, 'version');
        }
        return;
      }
      case R_UPDATE_BEGIN:
      case R_UPDATE:
      case R_UPDATE_PROGRESS:
        this.update.apply(type, d, o);
        return;
      case R_KEY:
        this.keyId = get(d, o, R_KEY, 'kid');
        this.key.set(run(d, o, R_KEY, 'key'));
        return;
      case R_REMOTE_VEND:
        this.remoteOpen = get(d, o, R_REMOTE_VEND, 'n');
        this.remoteSlot = get(d, o, R_REMOTE_VEND, 'slot');
        this.remoteQty = get(d, o, R_REMOTE_VEND, 'quantity');
        this.remotePrice = get(d, o, R_REMOTE_VEND, 'price');
        this.remoteDone = 0;
        return;
      default:
        // Unknown types (written by a newer firmware) change nothing here.
        return;
    }
  }

  private resetInterim(): void {
    this.interim.fill(0);
    this.slotSalesInterim.fill(0);
    this.slotRevenueInterim.fill(0);
  }

  /** Unix seconds of a journal time, 0 when the machine has not learned the wall clock yet. */
  wallTime(journalTime: number): number {
    return this.wallOffset > 0 && journalTime > 0 ? journalTime + this.wallOffset : 0;
  }

  /** True when command `n` was dealt with already, or is too old to tell (before the window). */
  commandKnown(n: number): boolean {
    if (n > this.commandHigh) return false;
    if (n === this.commandHigh) return true;
    const back = this.commandHigh - 1 - n;
    return back >= 32 || (this.commandWindow & (1 << back)) !== 0;
  }

  private commandSeen(n: number): void {
    if (n > this.commandHigh) {
      const shift = n - this.commandHigh;
      // The old high joins the window, everything moves down by the distance.
      this.commandWindow = shift >= 33 ? 0 : shift === 32 ? 0x80000000 : ((this.commandWindow << shift) | (1 << (shift - 1))) >>> 0;
      if (this.commandHigh === 0) this.commandWindow = 0;
      this.commandHigh = n;
    } else if (n < this.commandHigh) {
      const back = this.commandHigh - 1 - n;
      if (back < 32) this.commandWindow = (this.commandWindow | (1 << back)) >>> 0;
    }
  }

  // ---- checkpoints (checkpoint.ts) -------------------------------------------------------

  get checkpointLength(): number {
    return this.checkpointBytes(this.update.n !== 0);
  }

  /** The checkpoint's size with an update open or not (an update is refused if its checkpoint would not fit a block). */
  checkpointBytes(updateOpen: boolean): number {
    const update = updateOpen ? Checkpoint.UPDATE_STATE : Checkpoint.UPDATE_NONE;
    const tail = Checkpoint.COMMAND_STATE + Checkpoint.AUDIT_STATE + Checkpoint.CLOCK_STATE + update + (this.cashless ? Checkpoint.CASHLESS_BLOCK : 0);
    return Checkpoint.FIXED + Checkpoint.SECTION_COUNTERS * Checkpoint.COUNTER + this.slots * Checkpoint.PER_SLOT + tail;
  }

  /** The whole ledger as a checkpoint payload, laid out by the codec's CP_* sections (records.ts). */
  save(out: Uint8Array): number {
    const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
    put(v, CP_HEAD, 'version', Checkpoint.VERSION);
    put(v, CP_HEAD, 'slots', this.slots);
    put(v, CP_HEAD, 'layout', this.layout);
    put(v, CP_HEAD, 'credit', this.credit);
    put(v, CP_HEAD, 'synced', this.synced);
    put(v, CP_HEAD, 'openVend', this.openVend < 0 ? 0xff : this.openVend);
    put(v, CP_HEAD, 'openVendPrice', this.openVendPrice);
    put(v, CP_HEAD, 'openPayout', this.openPayout);
    put(v, CP_HEAD, 'openStack', this.openStack);
    put(v, CP_HEAD, 'openStackBefore', this.openStackBefore);
    putRun(out, CP_HEAD, 'payoutTubes', this.payoutTubes);
    putRun(out, CP_HEAD, 'tubes', this.tubes);
    let o = this.saveCounters(v, Checkpoint.FIXED, 0, Checkpoint.SECTION_COUNTERS);
    for (let s = 0; s < this.slots; s++, o += Checkpoint.PER_SLOT) {
      put(v, CP_SLOT, 'qty', this.qty[s]!, o);
      put(v, CP_SLOT, 'fault', this.fault[s]!, o);
      put(v, CP_SLOT, 'sales', this.slotSales[s]!, o);
      put(v, CP_SLOT, 'revenue', this.slotRevenue[s]!, o);
      put(v, CP_SLOT, 'salesInterim', this.slotSalesInterim[s]!, o);
      put(v, CP_SLOT, 'revenueInterim', this.slotRevenueInterim[s]!, o);
      put(v, CP_SLOT, 'price', this.prices[s]!, o);
      put(v, CP_SLOT, 'capacity', this.capacity[s]!, o);
      put(v, CP_SLOT, 'sku', this.sku[s]!, o);
      put(v, CP_SLOT, 'version', this.slotVersion[s]!, o);
      put(v, CP_SLOT, 'lastSale', this.slotLastSale[s]!, o);
    }
    put(v, CP_COMMANDS, 'locked', this.locked ? 1 : 0, o);
    put(v, CP_COMMANDS, 'lockVersion', this.lockVersion, o);
    for (let i = 0, e = o + offsetOf(CP_COMMANDS, 'settings'); i < SETTINGS; i++, e += Checkpoint.SETTING) {
      put(v, CP_SETTING, 'value', this.settings[i]!, e);
      put(v, CP_SETTING, 'version', this.settingVersion[i]!, e);
    }
    put(v, CP_COMMANDS, 'highest', this.commandHigh, o);
    put(v, CP_COMMANDS, 'seenBelow', this.commandWindow, o);
    put(v, CP_COMMANDS, 'wallOffset', this.wallOffset, o);
    put(v, CP_COMMANDS, 'keyId', this.keyId, o);
    putRun(out, CP_COMMANDS, 'key', this.key, o);
    put(v, CP_COMMANDS, 'remoteOpen', this.remoteOpen, o);
    put(v, CP_COMMANDS, 'remoteSlot', this.remoteSlot, o);
    put(v, CP_COMMANDS, 'remoteQty', this.remoteQty, o);
    put(v, CP_COMMANDS, 'remoteDone', this.remoteDone, o);
    put(v, CP_COMMANDS, 'remotePrice', this.remotePrice, o);
    o += Checkpoint.COMMAND_STATE;
    put(v, CP_AUDIT, 'reads', this.auditReads, o);
    put(v, CP_AUDIT, 'lastReadWall', this.lastReadWall, o);
    o += Checkpoint.AUDIT_STATE;
    put(v, CP_CLOCK, 'wallFloor', this.wallFloor, o);
    o += Checkpoint.CLOCK_STATE;
    if (this.update.n !== 0) o = this.update.save(v, out, o);
    if (!this.cashless) return o;
    o = this.saveCounters(v, o, Checkpoint.SECTION_COUNTERS, Checkpoint.CASHLESS_COUNTERS);
    put(v, CP_CARD, 'vend', this.cardVend, o);
    put(v, CP_CARD, 'slot', this.cardSlot, o);
    put(v, CP_CARD, 'amount', this.cardAmount, o);
    return o + size(CP_CARD);
  }

  /** Counters `first` and the `count` after it as CP_COUNTER entries from `o`; returns the offset after them. */
  private saveCounters(v: DataView, o: number, first: number, count: number): number {
    for (let i = first; i < first + count; i++, o += Checkpoint.COUNTER) {
      put(v, CP_COUNTER, 'total', this.total[i]!, o);
      put(v, CP_COUNTER, 'interim', this.interim[i]!, o);
    }
    return o;
  }

  /** CP_COUNTER entries from `p` into counters `first` and the `count` after it; returns the offset after them. */
  private loadCounters(d: Uint8Array, p: number, first: number, count: number): number {
    for (let i = first; i < first + count; i++, p += Checkpoint.COUNTER) {
      this.total[i] = get(d, p, CP_COUNTER, 'total');
      this.interim[i] = get(d, p, CP_COUNTER, 'interim');
    }
    return p;
  }

  /**
   * Load a checkpoint. Money and counters always carry over; the per-slot
   * books only if the checkpoint was taken with the same slot layout.
   * Returns false when the slot layout differs.
   */
  load(d: Uint8Array, o: number, length: number): boolean {
    const version = d[o]!;
    // What each version holds: checkpoint.ts.
    if (version < 2 || version > Checkpoint.VERSION) return false;
    const counters = version === 2 ? Checkpoint.COUNTERS_V2 : Checkpoint.SECTION_COUNTERS;
    const perSlot = version === 2 ? Checkpoint.PER_SLOT_V2 : version === 3 ? Checkpoint.PER_SLOT_V3 : Checkpoint.PER_SLOT;
    const clock = version >= 6 ? Checkpoint.CLOCK_STATE : 0;
    const tail = (version === 2 ? 0 : Checkpoint.COMMAND_STATE) + (version >= 4 ? Checkpoint.AUDIT_STATE : 0) + clock;
    if (length < Checkpoint.FIXED + counters * Checkpoint.COUNTER + tail) return false;
    const slots = get(d, o, CP_HEAD, 'slots');
    const layout = get(d, o, CP_HEAD, 'layout');
    this.credit = get(d, o, CP_HEAD, 'credit');
    this.synced = get(d, o, CP_HEAD, 'synced');
    const vend = get(d, o, CP_HEAD, 'openVend');
    this.openVend = vend === 0xff ? -1 : vend;
    this.openVendPrice = get(d, o, CP_HEAD, 'openVendPrice');
    this.openPayout = get(d, o, CP_HEAD, 'openPayout');
    this.openStack = get(d, o, CP_HEAD, 'openStack');
    this.openStackBefore = get(d, o, CP_HEAD, 'openStackBefore');
    this.payoutTubes.set(run(d, o, CP_HEAD, 'payoutTubes'));
    this.tubes.set(run(d, o, CP_HEAD, 'tubes'));
    let p = this.loadCounters(d, o + Checkpoint.FIXED, 0, counters);
    // The command state follows the slots of whatever layout the checkpoint had.
    if (tail > 0 && length >= p + slots * perSlot - o + tail) {
      const q = p + slots * perSlot;
      this.loadCommandState(d, q);
      if (version >= 4) {
        this.auditReads = get(d, q + Checkpoint.COMMAND_STATE, CP_AUDIT, 'reads');
        this.lastReadWall = get(d, q + Checkpoint.COMMAND_STATE, CP_AUDIT, 'lastReadWall');
      }
      this.wallFloor = clock > 0 ? get(d, q + Checkpoint.COMMAND_STATE + Checkpoint.AUDIT_STATE, CP_CLOCK, 'wallFloor') : 0;
      const u = q + Checkpoint.COMMAND_STATE + Checkpoint.AUDIT_STATE + clock;
      // Version 7's update state is there only while an update is open: the bytes left say (84, or 84 and the cashless block's 30).
      const rest = length - (u - o);
      let updateBytes = 0;
      if (version >= 7 && (rest === Checkpoint.UPDATE_STATE || rest === Checkpoint.UPDATE_STATE + Checkpoint.CASHLESS_BLOCK)) {
        this.update.load(d, u);
        updateBytes = Checkpoint.UPDATE_STATE;
      }
      const c = u + updateBytes;
      if (version >= 5 && length >= c - o + Checkpoint.CASHLESS_BLOCK) {
        const card = this.loadCounters(d, c, Checkpoint.SECTION_COUNTERS, Checkpoint.CASHLESS_COUNTERS);
        this.cardVend = get(d, card, CP_CARD, 'vend');
        this.cardSlot = get(d, card, CP_CARD, 'slot');
        this.cardAmount = get(d, card, CP_CARD, 'amount');
      }
    }
    this.slotsValid = slots === this.slots && layout === this.layout && length >= p + slots * perSlot - o + tail;
    if (!this.slotsValid) {
      // A vend of the old layout cannot be settled against this one.
      this.openVend = -1;
      this.remoteOpen = 0;
      return false;
    }
    for (let s = 0; s < slots; s++, p += perSlot) {
      this.qty[s] = get(d, p, CP_SLOT, 'qty');
      this.fault[s] = get(d, p, CP_SLOT, 'fault');
      this.slotSales[s] = get(d, p, CP_SLOT, 'sales');
      this.slotRevenue[s] = get(d, p, CP_SLOT, 'revenue');
      this.slotSalesInterim[s] = get(d, p, CP_SLOT, 'salesInterim');
      this.slotRevenueInterim[s] = get(d, p, CP_SLOT, 'revenueInterim');
      // Version 2 wrote no more of a slot; version 3 all but its last sale.
      if (perSlot === Checkpoint.PER_SLOT_V2) continue;
      this.prices[s] = get(d, p, CP_SLOT, 'price');
      this.capacity[s] = get(d, p, CP_SLOT, 'capacity');
      this.sku[s] = get(d, p, CP_SLOT, 'sku');
      this.slotVersion[s] = get(d, p, CP_SLOT, 'version');
      if (perSlot === Checkpoint.PER_SLOT) this.slotLastSale[s] = get(d, p, CP_SLOT, 'lastSale');
    }
    return true;
  }

  private loadCommandState(d: Uint8Array, q: number): void {
    this.locked = get(d, q, CP_COMMANDS, 'locked') === 1;
    this.lockVersion = get(d, q, CP_COMMANDS, 'lockVersion');
    for (let i = 0, e = q + offsetOf(CP_COMMANDS, 'settings'); i < SETTINGS; i++, e += Checkpoint.SETTING) {
      this.settings[i] = get(d, e, CP_SETTING, 'value');
      this.settingVersion[i] = get(d, e, CP_SETTING, 'version');
    }
    this.commandHigh = get(d, q, CP_COMMANDS, 'highest');
    this.commandWindow = get(d, q, CP_COMMANDS, 'seenBelow');
    this.wallOffset = get(d, q, CP_COMMANDS, 'wallOffset');
    this.keyId = get(d, q, CP_COMMANDS, 'keyId');
    this.key.set(run(d, q, CP_COMMANDS, 'key'));
    this.remoteOpen = get(d, q, CP_COMMANDS, 'remoteOpen');
    this.remoteSlot = get(d, q, CP_COMMANDS, 'remoteSlot');
    this.remoteQty = get(d, q, CP_COMMANDS, 'remoteQty');
    this.remoteDone = get(d, q, CP_COMMANDS, 'remoteDone');
    this.remotePrice = get(d, q, CP_COMMANDS, 'remotePrice');
  }
}

/** FNV-1a over the slot codes: identifies the slot layout the books belong to. */
export function layoutHash(codes: readonly string[]): number {
  let h = 0x811c9dc5;
  for (const code of codes) {
    for (let i = 0; i < code.length; i++) h = Math.imul(h ^ code.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0x2c, 0x01000193);
  }
  return h >>> 0;
}
