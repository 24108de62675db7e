/**
 * The machine's EVA-DTS (DEX/UCS) audit file, built from the journal's
 * books: money in and out, sales per selection, coins in the tubes, and
 * the read itself (docs/dex.md). Pure: the caller journals the read (which
 * clears the interim counters) and sends the bytes (ASCII, CRLF lines).
 *
 * Money elements are in the machine's minor units with ID4's decimals.
 * Counters are written "since initialisation" and "since last reset" in
 * the order each segment has them (VA1, CA2, PA2: initialisation first;
 * CA3, CA4: reset first).
 */
import type { Ledger } from '../journal/ledger.js';
import { Counter } from '../journal/vocabulary.js';
import { dexDateTime } from './civil.js';
import { crc16Hex } from './crc16.js';
import { dexCurrency } from './currency.js';
import { DexWriter } from './writer.js';
import { COIN_TYPES } from '../money/coins.js';

/** An MDB device's identification: serial number, model, software version. */
export interface DeviceId {
  readonly serial: string;
  readonly model: string;
  readonly software: string;
}

export interface AuditInput {
  readonly ledger: Ledger;
  readonly machineId: string;
  readonly firmware: string;
  /** ISO 4217 alphabetic code and its minor-unit digits. */
  readonly currency: string;
  readonly decimals: number;
  readonly codes: readonly string[];
  readonly products: readonly string[];
  /** Coin value per changer coin type (0: no such coin), and which types have tubes (bit t). */
  readonly coinValues: ArrayLike<number>;
  readonly tubeTypes: number;
  /** A bill validator is fitted. */
  readonly billValidator: boolean;
  /** What the changer (level 3) and the validator (level 2) said about themselves when they identified. */
  readonly changerId?: DeviceId;
  readonly billId?: DeviceId;
  /** A cashless reader (device #1) is fitted, and what it said about itself (empty strings when it has not). */
  readonly cashless?: DeviceId;
  /** This read: its number since initialisation and its Unix time (0: the machine does not know it). */
  readonly read: number;
  readonly wall: number;
}

export function buildAudit(a: AuditInput): Uint8Array {
  const l = a.ledger;
  const t = l.total;
  const r = l.interim;
  const w = new DexWriter(512 + l.slots * 96);
  const id = a.machineId;
  w.seg('DXS').str('VFL0000000').str('VA').str('V0/6').num(1).end();
  w.seg('ST').str('001').str('0001').end();
  w.seg('ID1').str(id).str('VENDFLEET').str(a.firmware, 6).empty().empty().str(id).end();
  w.seg('ID4').num(a.decimals).str(dexCurrency(a.currency)).str(a.currency).end();
  w.seg('CB1').str(id).str('VENDFLEET-ESP32').str(a.firmware).end();
  // Paid vends: cash, card (DA2) and paid elsewhere (remote vends); CA2 is the cash part.
  const paidValue = (c: Uint32Array): number => c[Counter.REVENUE]! + c[Counter.REMOTE_VALUE]! + c[Counter.CASHLESS_VALUE]!;
  const paidCount = (c: Uint32Array): number => c[Counter.SALES]! + c[Counter.REMOTE_SALES]! + c[Counter.CASHLESS_SALES]!;
  w.seg('VA1').num(paidValue(t)).num(paidCount(t)).num(paidValue(r)).num(paidCount(r)).end();
  if (a.changerId) w.seg('CA1').str(a.changerId.serial).str(a.changerId.model).str(a.changerId.software).end();
  w.seg('CA2').num(t[Counter.REVENUE]!).num(t[Counter.SALES]!).num(r[Counter.REVENUE]!).num(r[Counter.SALES]!).end();
  w.seg('CA3')
    .num(r[Counter.COINS_CASHBOX]! + r[Counter.COINS_TUBES]! + r[Counter.BILLS_VALUE]!)
    .num(r[Counter.COINS_CASHBOX]!)
    .num(r[Counter.COINS_TUBES]!)
    .num(r[Counter.BILLS_VALUE]!)
    .num(t[Counter.COINS_CASHBOX]! + t[Counter.COINS_TUBES]! + t[Counter.BILLS_VALUE]!)
    .num(t[Counter.COINS_CASHBOX]!)
    .num(t[Counter.COINS_TUBES]!)
    .num(t[Counter.BILLS_VALUE]!)
    .end();
  w.seg('CA4').num(r[Counter.PAID_VALUE]!).num(r[Counter.MANUAL_VALUE]!).num(t[Counter.PAID_VALUE]!).num(t[Counter.MANUAL_VALUE]!).end();
  // The machine never keeps change it cannot pay: it stays the customer's credit.
  w.seg('CA8').num(0).num(0).end();
  let tubeValue = 0;
  for (let c = 0; c < COIN_TYPES; c++) if (a.tubeTypes & (1 << c)) tubeValue += (a.coinValues[c] ?? 0) * l.tubes[c]!;
  w.seg('CA15').num(tubeValue).end();
  for (let c = 0; c < COIN_TYPES; c++) {
    if (a.tubeTypes & (1 << c) && (a.coinValues[c] ?? 0) > 0) w.seg('CA17').num(c).num(a.coinValues[c]!).num(l.tubes[c]!).end();
  }
  if (a.billId) w.seg('BA1').str(a.billId.serial).str(a.billId.model).str(a.billId.software).end();
  else if (a.billValidator) w.seg('BA1').end();
  if (a.cashless) {
    // Cashless device #1: its identity, then its sales (value and count since initialisation, then since reset).
    w.seg('DA1').str(a.cashless.serial).str(a.cashless.model).str(a.cashless.software).end();
    w.seg('DA2').num(t[Counter.CASHLESS_VALUE]!).num(t[Counter.CASHLESS_SALES]!).num(r[Counter.CASHLESS_VALUE]!).num(r[Counter.CASHLESS_SALES]!).end();
  }
  for (let i = 0; i < l.slots; i++) {
    w.seg('PA1').str(a.codes[i]!).num(l.prices[i]!).str(a.products[i] ?? '').end();
    w.seg('PA2').num(l.slotSales[i]!).num(l.slotRevenue[i]!).num(l.slotSalesInterim[i]!).num(l.slotRevenueInterim[i]!).end();
    const last = l.wallTime(l.slotLastSale[i]!);
    if (last > 0) {
      const when = dexDateTime(last);
      w.seg('PA5').str(when.date).str(when.time).end();
    }
  }
  w.seg('EA3').num(a.read);
  if (a.wall > 0) {
    const now = dexDateTime(a.wall);
    w.str(now.date).str(now.time);
  } else w.empty().empty();
  w.empty();
  if (l.lastReadWall > 0) {
    const before = dexDateTime(l.lastReadWall);
    w.str(before.date).str(before.time);
  }
  w.end();
  w.seg('G85').str(crc16Hex(w.crc)).end();
  // SE counts the segments from ST through itself.
  w.seg('SE').num(w.count + 1).str('0001').end();
  w.seg('DXE').num(1).num(1).end();
  return w.bytes();
}
