/**
 * The machine's EVA-DTS (DEX/UCS) audit file, built from the journal's
 * books: money in and out, sales per selection, coins in the tubes, and
 * the read itself (docs/dex.md). Pure: the caller journals the read (which
 * clears the interim counters) and sends the text.
 *
 * Money elements are in the machine's minor units with ID4's decimals.
 * Counters are written "since initialisation" and "since last reset" in
 * the order each segment has them (VA1, CA2, PA2: initialisation first;
 * CA3, CA4: reset first).
 */
import {
  C_BILLS_VALUE,
  C_COINS_CASHBOX,
  C_COINS_TUBES,
  C_MANUAL_VALUE,
  C_PAID_VALUE,
  C_REMOTE_SALES,
  C_REMOTE_VALUE,
  C_REVENUE,
  C_SALES,
  type Ledger,
} from '../journal/ledger.js';
import { dexDateTime } from './civil.js';
import { crc16Hex, crc16Text } from './crc16.js';
import { dexCurrency } from './currency.js';

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
  /** This read: its number since initialisation and its Unix time (0: the machine does not know it). */
  readonly read: number;
  readonly wall: number;
}

const CRLF = '\r\n';

/** A value as an element: printable ASCII without the separator, trimmed to `max`. */
function element(v: string, max = 20): string {
  let out = '';
  for (let i = 0; i < v.length && out.length < max; i++) {
    const c = v.charCodeAt(i);
    out += c >= 0x20 && c <= 0x7e && c !== 0x2a ? v[i] : '?';
  }
  return out;
}

class Segments {
  private readonly lines: string[] = [];
  private crc = 0;
  private counting = false;
  count = 0;

  add(...parts: (string | number)[]): void {
    // Trailing empty elements are left out, as the standard allows.
    let n = parts.length;
    while (n > 1 && parts[n - 1] === '') n--;
    const line = (n === parts.length ? parts : parts.slice(0, n)).join('*') + CRLF;
    if (line.startsWith('ST*')) this.counting = true;
    if (this.counting) {
      this.count++;
      if (!line.startsWith('G85*') && !line.startsWith('SE*')) this.crc = crc16Text(this.crc, line);
    }
    this.lines.push(line);
  }

  /** G85 covers everything from ST through the line before it. */
  check(): string {
    return crc16Hex(this.crc);
  }

  text(): string {
    return this.lines.join('');
  }
}

export function buildAudit(a: AuditInput): string {
  const l = a.ledger;
  const t = l.total;
  const r = l.interim;
  const s = new Segments();
  const id = element(a.machineId);
  s.add('DXS', 'VFL0000000', 'VA', 'V0/6', 1);
  s.add('ST', '001', '0001');
  s.add('ID1', id, 'VENDFLEET', element(a.firmware, 6), '', '', id);
  s.add('ID4', a.decimals, dexCurrency(a.currency), a.currency);
  s.add('CB1', id, 'VENDFLEET-ESP32', element(a.firmware));
  // Paid vends: cash and paid elsewhere (remote vends); CA2 is the cash part.
  s.add('VA1', t[C_REVENUE]! + t[C_REMOTE_VALUE]!, t[C_SALES]! + t[C_REMOTE_SALES]!, r[C_REVENUE]! + r[C_REMOTE_VALUE]!, r[C_SALES]! + r[C_REMOTE_SALES]!);
  s.add('CA2', t[C_REVENUE]!, t[C_SALES]!, r[C_REVENUE]!, r[C_SALES]!);
  const inR = r[C_COINS_CASHBOX]! + r[C_COINS_TUBES]! + r[C_BILLS_VALUE]!;
  const inT = t[C_COINS_CASHBOX]! + t[C_COINS_TUBES]! + t[C_BILLS_VALUE]!;
  s.add('CA3', inR, r[C_COINS_CASHBOX]!, r[C_COINS_TUBES]!, r[C_BILLS_VALUE]!, inT, t[C_COINS_CASHBOX]!, t[C_COINS_TUBES]!, t[C_BILLS_VALUE]!);
  s.add('CA4', r[C_PAID_VALUE]!, r[C_MANUAL_VALUE]!, t[C_PAID_VALUE]!, t[C_MANUAL_VALUE]!);
  // The machine never keeps change it cannot pay: it stays the customer's credit.
  s.add('CA8', 0, 0);
  let tubeValue = 0;
  for (let c = 0; c < 16; c++) if (a.tubeTypes & (1 << c)) tubeValue += (a.coinValues[c] ?? 0) * l.tubes[c]!;
  s.add('CA15', tubeValue);
  for (let c = 0; c < 16; c++) {
    if (a.tubeTypes & (1 << c) && (a.coinValues[c] ?? 0) > 0) s.add('CA17', c, a.coinValues[c]!, l.tubes[c]!);
  }
  if (a.billValidator) s.add('BA1', '', '', '');
  for (let i = 0; i < l.slots; i++) {
    s.add('PA1', a.codes[i]!, l.prices[i]!, element(a.products[i] ?? ''));
    s.add('PA2', l.slotSales[i]!, l.slotRevenue[i]!, l.slotSalesInterim[i]!, l.slotRevenueInterim[i]!);
    const last = l.wallTime(l.slotLastSale[i]!);
    if (last > 0) {
      const when = dexDateTime(last);
      s.add('PA5', when.date, when.time);
    }
  }
  const now = a.wall > 0 ? dexDateTime(a.wall) : { date: '', time: '' };
  const before = l.lastReadWall > 0 ? dexDateTime(l.lastReadWall) : { date: '', time: '' };
  s.add('EA3', a.read, now.date, now.time, '', before.date, before.time);
  s.add('G85', s.check());
  s.add('SE', s.count + 1, '0001');
  s.add('DXE', 1, 1);
  return s.text();
}
