/**
 * The machine's books, rebuilt from the journal: credit held for the
 * customer, stock per slot, audit counters (since initialisation and since
 * the last interim reset, as EVA-DTS wants them), and whatever was in flight
 * when the power failed (a vend, a payout, a bill being stacked).
 *
 * Pure: `apply` is the only way the books change, both while running and
 * while replaying after a reboot, so the two can never disagree.
 */
import { u16, u32 } from './bytes.js';
import { CardOutcome, CardVend, CoinRouting, Counter, COUNTERS } from './vocabulary.js';
import {
  R_BILL_RETURNED,
  R_BILL_STACKED,
  R_BILL_STACKING,
  R_BOOT,
  R_COIN_IN,
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
  R_COINS_MANUAL,
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
} from './records.js';

export { CardVend, COUNTERS, Counter } from './vocabulary.js';
// Names firmware/vend/controller.ts imports from here: kept until the controller split lands.
export { C_SALES, C_REVENUE, C_COINS_TUBES, C_COINS_CASHBOX, C_BILLS_VALUE, C_PAID_VALUE, C_PAID_COUNT, C_BILLS_RETURNED } from './vocabulary.js';
export { C_MANUAL_VALUE, C_FAILED_VENDS, C_UNCERTAIN_VENDS, C_BOOTS, C_REMOTE_SALES, C_REMOTE_VALUE, C_COMMANDS_REJECTED } from './vocabulary.js';
export { C_CASHLESS_SALES, C_CASHLESS_VALUE, C_CASHLESS_UNREFUNDED, CARD_VEND_APPROVED, CARD_VEND_DELIVERED, CARD_VEND_FAILED } from './vocabulary.js';
export { CARD_VEND_UNCERTAIN } from './vocabulary.js';

/** Settings commands may change (indices of `settings`, see command/vocabulary.ts). */
const SETTINGS = 5;

const CHECKPOINT_VERSION = 6;
/** Bytes of a checkpoint before the counters. */
const FIXED = 61;
/** Bytes per slot in a checkpoint (version 2: 19, version 3: 33). */
const PER_SLOT = 37;
/** Bytes of the command state after the slots (from version 3). */
const COMMAND_STATE = 1 + 4 + SETTINGS * 8 + 4 + 4 + 4 + 1 + 32 + 4 + 1 + 1 + 1 + 4;
/** Bytes of the audit state after the command state (from version 4). */
const AUDIT_STATE = 8;
/** Bytes of the clock state after the audit state (from version 6): the newest signed command's time. */
const CLOCK_STATE = 4;
/** Counters in the counter section of a checkpoint: 16 in version 2, 19 from version 3 (the cashless ones have their own block). */
const COUNTERS_V2 = 16;
const CHECKPOINT_COUNTERS = 19;
/**
 * The cashless block after the audit state (version 5; after the clock state from version 6; only on a machine
 * with a reader, found by the checkpoint's length): the cashless counters
 * (total and interim, u32 each), then the card vend: state u8, slot u8,
 * amount u32. A machine without a reader writes version 4's layout, so its
 * checkpoint does not grow.
 */
const CASHLESS_COUNTERS = COUNTERS - CHECKPOINT_COUNTERS;
const CASHLESS_BLOCK = CASHLESS_COUNTERS * 8 + 6;

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
  readonly total = new Uint32Array(COUNTERS);
  readonly interim = new Uint32Array(COUNTERS);
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
  readonly payoutTubes = new Uint8Array(16);
  /** Coins in each tube as the journal knows them (deposits, payouts, manual payouts, changer reports). */
  readonly tubes = new Uint8Array(16);
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
  readonly settings = new Uint32Array(SETTINGS);
  readonly settingVersion = new Uint32Array(SETTINGS);
  /** Highest command number seen, and which of the 32 below it were seen (bit i: high - 1 - i). */
  commandHigh = 0;
  commandWindow = 0;
  /** Unix seconds minus journal seconds, learned from signed commands (0: unknown). A lower bound of the wall clock where the board's ticks are real seconds. */
  wallOffset = 0;
  /** The newest `issued` (Unix s) of a signed command applied: the machine's clock never reads earlier (command/wall.ts). */
  wallFloor = 0;
  /** The command key (kid 0: the configuration's key stands). */
  keyId = 0;
  readonly key = new Uint8Array(32);
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
    this.slotVersion = new Uint32Array(n);
    this.slotSales = new Uint32Array(n);
    this.slotRevenue = new Uint32Array(n);
    this.slotSalesInterim = new Uint32Array(n);
    this.slotRevenueInterim = new Uint32Array(n);
    this.slotLastSale = new Uint32Array(n);
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
        const value = u16(d, o + 2);
        const t = d[o]! & 15;
        if (d[o + 1] === CoinRouting.TUBES && this.tubes[t]! < 255) this.tubes[t] = this.tubes[t]! + 1;
        this.count(d[o + 1] === CoinRouting.TUBES ? Counter.COINS_TUBES : Counter.COINS_CASHBOX, value);
        this.count(Counter.COINS_COUNT, 1);
        if (d[o + 1] === CoinRouting.TUBES) this.count(Counter.COINS_TUBES_COUNT, 1);
        this.credit += value;
        return;
      }
      case R_BILL_STACKING:
        this.openStack = u32(d, o);
        this.openStackBefore = u16(d, o + 4);
        return;
      case R_BILL_STACKED: {
        const value = u32(d, o);
        this.count(Counter.BILLS_VALUE, value);
        this.count(Counter.BILLS_COUNT, 1);
        this.credit += value;
        this.openStack = 0;
        return;
      }
      case R_BILL_RETURNED:
        this.count(Counter.BILLS_RETURNED, 1);
        if (this.openStack === u32(d, o)) this.openStack = 0;
        return;
      case R_VEND_START:
        this.openVend = d[o]!;
        this.openVendPrice = u32(d, o + 1);
        return;
      case R_INIT:
        this.slotsValid = d[o] === this.slots && u32(d, o + 1) === this.layout;
        return;
      case R_VEND_OK: {
        const slot = d[o]!;
        const price = u32(d, o + 1);
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
      case R_VEND_FAIL:
        if (d[o]! < this.slots && this.slotsValid) this.fault[d[o]!] = 1;
        this.count(Counter.FAILED_VENDS, 1);
        this.openVend = -1;
        if (this.cardVend === CardVend.APPROVED) this.cardVend = CardVend.FAILED;
        return;
      case R_VEND_UNCERTAIN:
        this.count(Counter.UNCERTAIN_VENDS, 1);
        this.openVend = -1;
        if (this.cardVend === CardVend.APPROVED) this.cardVend = CardVend.UNCERTAIN;
        return;
      case R_CARD_APPROVED:
        this.cardVend = CardVend.APPROVED;
        this.cardSlot = d[o]!;
        this.cardAmount = u32(d, o + 1);
        return;
      case R_CARD_RESULT: {
        const outcome = d[o]!;
        if (outcome === CardOutcome.UNREFUNDED || outcome === CardOutcome.UNCERTAIN || outcome === CardOutcome.NOT_DISPENSED) this.count(Counter.CASHLESS_UNREFUNDED, u32(d, o + 2));
        this.cardVend = CardVend.NONE;
        return;
      }
      case R_PAYOUT_START:
        this.openPayout = u32(d, o);
        this.payoutTubes.set(d.subarray(o + 4, o + 20));
        this.tubes.set(this.payoutTubes);
        return;
      case R_PAYOUT_DONE: {
        const paid = u32(d, o);
        for (let p = o + 6; p + 1 < o + length; p += 2) {
          const t = d[p]! & 15;
          this.tubes[t] = Math.max(0, this.tubes[t]! - d[p + 1]!);
        }
        this.count(Counter.PAID_VALUE, paid);
        this.count(Counter.PAID_COUNT, u16(d, o + 4));
        this.credit -= paid;
        this.openPayout = 0;
        return;
      }
      case R_COINS_MANUAL:
        this.tubes[d[o]! & 15] = Math.max(0, this.tubes[d[o]! & 15]! - d[o + 1]!);
        this.count(Counter.MANUAL_VALUE, u32(d, o + 2));
        this.count(Counter.MANUAL_COUNT, d[o + 1]!);
        return;
      case R_BOOT:
        this.count(Counter.BOOTS, 1);
        return;
      case R_SYNC: {
        const seq = u32(d, o);
        if (seq > this.synced) this.synced = seq;
        return;
      }
      case R_TUBES:
        this.tubes.set(d.subarray(o, o + 16));
        return;
      case R_CREDIT_ADJUST:
        this.credit += u32(d, o) | 0;
        return;
      case R_INTERIM_RESET:
        this.resetInterim();
        return;
      case R_AUDIT_READ:
        this.auditReads = u32(d, o);
        this.lastReadWall = u32(d, o + 4);
        this.resetInterim();
        return;
      case R_COMMAND: {
        const n = u32(d, o);
        this.commandSeen(n);
        const issued = u32(d, o + 4);
        if (issued - this.time > this.wallOffset) this.wallOffset = issued - this.time;
        if (issued > this.wallFloor) this.wallFloor = issued;
        if (this.remoteOpen === n) this.remoteOpen = 0;
        return;
      }
      case R_COMMAND_REJECTED:
        this.count(Counter.COMMANDS_REJECTED, 1 + u16(d, o + 5));
        return;
      case R_PRICE: {
        const slot = d[o]!;
        if (slot < this.slots && this.slotsValid) {
          this.prices[slot] = u32(d, o + 1);
          this.slotVersion[slot] = u32(d, o + 5);
        }
        return;
      }
      case R_PLANOGRAM: {
        const slot = d[o]!;
        if (slot < this.slots && this.slotsValid) {
          this.prices[slot] = u32(d, o + 1);
          this.qty[slot] = u16(d, o + 5);
          this.capacity[slot] = u16(d, o + 7);
          this.sku[slot] = u32(d, o + 9);
          this.slotVersion[slot] = u32(d, o + 13);
          // Somebody stood at the machine and loaded the slot: it is back in service.
          this.fault[slot] = 0;
        }
        return;
      }
      case R_LOCK:
        this.locked = d[o] === 1;
        this.lockVersion = u32(d, o + 1);
        return;
      case R_SETTING: {
        const key = d[o]!;
        if (key < SETTINGS) {
          this.settings[key] = u32(d, o + 1);
          this.settingVersion[key] = u32(d, o + 5);
        }
        return;
      }
      case R_KEY:
        this.keyId = d[o]!;
        this.key.set(d.subarray(o + 1, o + 33));
        return;
      case R_REMOTE_VEND:
        this.remoteOpen = u32(d, o);
        this.remoteSlot = d[o + 4]!;
        this.remoteQty = d[o + 5]!;
        this.remotePrice = u32(d, o + 6);
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

  // ---- checkpoints -----------------------------------------------------------------------

  get checkpointLength(): number {
    return FIXED + CHECKPOINT_COUNTERS * 8 + this.slots * PER_SLOT + COMMAND_STATE + AUDIT_STATE + CLOCK_STATE + (this.cashless ? CASHLESS_BLOCK : 0);
  }

  /** The whole ledger as a checkpoint payload. */
  save(out: Uint8Array): number {
    const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
    out[0] = CHECKPOINT_VERSION;
    out[1] = this.slots;
    v.setUint32(2, this.layout, true);
    v.setUint32(6, this.credit >>> 0, true);
    v.setUint32(10, this.synced, true);
    out[14] = this.openVend < 0 ? 0xff : this.openVend;
    v.setUint32(15, this.openVendPrice, true);
    v.setUint32(19, this.openPayout, true);
    v.setUint32(23, this.openStack, true);
    v.setUint16(27, this.openStackBefore, true);
    out.set(this.payoutTubes, 29);
    out.set(this.tubes, 45);
    let o = FIXED;
    for (let i = 0; i < CHECKPOINT_COUNTERS; i++, o += 8) {
      v.setUint32(o, this.total[i]!, true);
      v.setUint32(o + 4, this.interim[i]!, true);
    }
    for (let s = 0; s < this.slots; s++, o += PER_SLOT) {
      v.setUint16(o, this.qty[s]!, true);
      out[o + 2] = this.fault[s]!;
      v.setUint32(o + 3, this.slotSales[s]!, true);
      v.setUint32(o + 7, this.slotRevenue[s]!, true);
      v.setUint32(o + 11, this.slotSalesInterim[s]!, true);
      v.setUint32(o + 15, this.slotRevenueInterim[s]!, true);
      v.setInt32(o + 19, this.prices[s]!, true);
      v.setUint16(o + 23, this.capacity[s]!, true);
      v.setUint32(o + 25, this.sku[s]!, true);
      v.setUint32(o + 29, this.slotVersion[s]!, true);
      v.setUint32(o + 33, this.slotLastSale[s]!, true);
    }
    out[o++] = this.locked ? 1 : 0;
    v.setUint32(o, this.lockVersion, true);
    o += 4;
    for (let i = 0; i < SETTINGS; i++, o += 8) {
      v.setUint32(o, this.settings[i]!, true);
      v.setUint32(o + 4, this.settingVersion[i]!, true);
    }
    v.setUint32(o, this.commandHigh, true);
    v.setUint32(o + 4, this.commandWindow, true);
    v.setInt32(o + 8, this.wallOffset, true);
    out[o + 12] = this.keyId;
    out.set(this.key, o + 13);
    o += 45;
    v.setUint32(o, this.remoteOpen, true);
    out[o + 4] = this.remoteSlot;
    out[o + 5] = this.remoteQty;
    out[o + 6] = this.remoteDone;
    v.setUint32(o + 7, this.remotePrice, true);
    o += 11;
    v.setUint32(o, this.auditReads, true);
    v.setUint32(o + 4, this.lastReadWall, true);
    o += AUDIT_STATE;
    v.setUint32(o, this.wallFloor, true);
    o += CLOCK_STATE;
    if (!this.cashless) return o;
    for (let i = CHECKPOINT_COUNTERS; i < COUNTERS; i++, o += 8) {
      v.setUint32(o, this.total[i]!, true);
      v.setUint32(o + 4, this.interim[i]!, true);
    }
    out[o] = this.cardVend;
    out[o + 1] = this.cardSlot;
    v.setUint32(o + 2, this.cardAmount, true);
    return o + 6;
  }

  /**
   * Load a checkpoint. Money and counters always carry over; the per-slot
   * books only if the checkpoint was taken with the same slot layout.
   * Returns false when the slot layout differs.
   */
  load(d: Uint8Array, o: number, length: number): boolean {
    const version = d[o]!;
    // Version 2 (before remote commands): 16 counters, 19 bytes a slot, no command state.
    // Version 3 (before audit reads): 33 bytes a slot, no audit state.
    // Version 4 (before cashless): no cashless block. Version 5: the same, plus the cashless block when a reader is fitted.
    // Version 6: the clock state between the audit state and the cashless block.
    if (version < 2 || version > CHECKPOINT_VERSION) return false;
    const counters = version === 2 ? COUNTERS_V2 : CHECKPOINT_COUNTERS;
    const perSlot = version === 2 ? 19 : version === 3 ? 33 : PER_SLOT;
    const clock = version >= 6 ? CLOCK_STATE : 0;
    const tail = (version === 2 ? 0 : COMMAND_STATE) + (version >= 4 ? AUDIT_STATE : 0) + clock;
    if (length < FIXED + counters * 8 + tail) return false;
    const slots = d[o + 1]!;
    const layout = u32(d, o + 2);
    this.credit = u32(d, o + 6) | 0;
    this.synced = u32(d, o + 10);
    const vend = d[o + 14]!;
    this.openVend = vend === 0xff ? -1 : vend;
    this.openVendPrice = u32(d, o + 15);
    this.openPayout = u32(d, o + 19);
    this.openStack = u32(d, o + 23);
    this.openStackBefore = u16(d, o + 27);
    this.payoutTubes.set(d.subarray(o + 29, o + 45));
    this.tubes.set(d.subarray(o + 45, o + 61));
    let p = o + FIXED;
    for (let i = 0; i < counters; i++, p += 8) {
      this.total[i] = u32(d, p);
      this.interim[i] = u32(d, p + 4);
    }
    // The command state follows the slots of whatever layout the checkpoint had.
    if (tail > 0 && length >= p + slots * perSlot - o + tail) {
      const q = p + slots * perSlot;
      this.loadCommandState(d, q);
      if (version >= 4) {
        this.auditReads = u32(d, q + COMMAND_STATE);
        this.lastReadWall = u32(d, q + COMMAND_STATE + 4);
      }
      this.wallFloor = clock > 0 ? u32(d, q + COMMAND_STATE + AUDIT_STATE) : 0;
      let c = q + COMMAND_STATE + AUDIT_STATE + clock;
      if (version >= 5 && length >= c - o + CASHLESS_BLOCK) {
        for (let i = CHECKPOINT_COUNTERS; i < COUNTERS; i++, c += 8) {
          this.total[i] = u32(d, c);
          this.interim[i] = u32(d, c + 4);
        }
        this.cardVend = d[c]!;
        this.cardSlot = d[c + 1]!;
        this.cardAmount = u32(d, c + 2);
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
      this.qty[s] = u16(d, p);
      this.fault[s] = d[p + 2]!;
      this.slotSales[s] = u32(d, p + 3);
      this.slotRevenue[s] = u32(d, p + 7);
      this.slotSalesInterim[s] = u32(d, p + 11);
      this.slotRevenueInterim[s] = u32(d, p + 15);
      if (perSlot < PER_SLOT) continue;
      this.prices[s] = u32(d, p + 19) | 0;
      this.capacity[s] = u16(d, p + 23);
      this.sku[s] = u32(d, p + 25);
      this.slotVersion[s] = u32(d, p + 29);
      if (perSlot >= 37) this.slotLastSale[s] = u32(d, p + 33);
    }
    return true;
  }

  private loadCommandState(d: Uint8Array, q: number): void {
    this.locked = d[q] === 1;
    this.lockVersion = u32(d, q + 1);
    q += 5;
    for (let i = 0; i < SETTINGS; i++, q += 8) {
      this.settings[i] = u32(d, q);
      this.settingVersion[i] = u32(d, q + 4);
    }
    this.commandHigh = u32(d, q);
    this.commandWindow = u32(d, q + 4);
    this.wallOffset = u32(d, q + 8) | 0;
    this.keyId = d[q + 12]!;
    this.key.set(d.subarray(q + 13, q + 45));
    q += 45;
    this.remoteOpen = u32(d, q);
    this.remoteSlot = d[q + 4]!;
    this.remoteQty = d[q + 5]!;
    this.remoteDone = d[q + 6]!;
    this.remotePrice = u32(d, q + 7);
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
