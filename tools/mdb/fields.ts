/**
 * How the MDB decoder shows the values in a frame: money in the device's own
 * scale and decimals (learned from its SETUP answer into a DeviceState),
 * coin and bill type masks, BCD currency codes, ASCII and BCD fields.
 * Facts from /work/shared/reference/mdb.md (MDB/ICP 4.2).
 */
import { CURRENCIES } from '../../hal-sim/currency.js';
import { hex2 } from './capture.js';

/** What the decoder has learned about one device from its SETUP answer, to show values. */
export interface DeviceState {
  level: number | undefined;
  scale: number | undefined;
  decimals: number | undefined;
  /** Credit per coin/bill type in scale units. */
  credits: number[] | undefined;
  /** The answer being decoded has a good checksum: what it says may be learned. */
  trusted: boolean;
}

export function newState(): DeviceState {
  return { level: undefined, scale: undefined, decimals: undefined, credits: undefined, trusted: true };
}

export function money(units: number, decimals: number): string {
  if (decimals <= 0) return String(units);
  const s = String(Math.abs(units)).padStart(decimals + 1, '0');
  return `${units < 0 ? '-' : ''}${s.slice(0, -decimals)}.${s.slice(-decimals)}`;
}

/** A scaled amount in money once SETUP told the scale and decimals. */
export function amount(scaled: number, s: DeviceState): string {
  if (s.scale === undefined || s.decimals === undefined) return `${scaled} (scaled)`;
  return money(scaled * s.scale, s.decimals);
}

/** "type 2 (0.25)" once SETUP told the credits. */
export function typeLabel(type: number, s: DeviceState): string {
  const credit = s.credits?.[type];
  if (credit === undefined || s.scale === undefined || s.decimals === undefined) return `type ${type}`;
  if (credit === 0) return `type ${type} (unused)`;
  if (credit === 0xff) return `type ${type} (token)`;
  return `type ${type} (${money(credit * s.scale, s.decimals)})`;
}

export function currency(hi: number, lo: number): string {
  const code = (hi << 8) | lo;
  const digits = [hi >> 4, hi & 15, lo >> 4, lo & 15];
  if (digits.some((d) => d > 9)) return `currency 0x${code.toString(16).padStart(4, '0')} (not BCD)`;
  const numeric = digits[1]! * 100 + digits[2]! * 10 + digits[3]!;
  // A leading 1 marks an ISO 4217 numeric code.
  const name = digits[0] === 1 ? Object.keys(CURRENCIES).find((k) => CURRENCIES[k]!.numeric === numeric) : undefined;
  const iso = digits[0] === 1 ? `ISO ${String(numeric).padStart(3, '0')}` : 'not ISO 4217';
  return `currency ${hex2(hi)}${hex2(lo)} (${name ? `${name}, ` : ''}${iso})`;
}

export function types(mask: number): string {
  if (mask === 0) return 'none';
  const list: number[] = [];
  for (let t = 0; t < 16; t++) if (mask & (1 << t)) list.push(t);
  return list.join(',');
}

export function mask16(hi: number, lo: number): number {
  return (hi << 8) | lo;
}

export function ascii(d: readonly number[], from: number, n: number): string {
  let s = '';
  for (let i = from; i < from + n && i < d.length; i++) {
    const c = d[i]!;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
  }
  return `"${s.trimEnd()}"`;
}

export function bcdVersion(hi: number, lo: number): string {
  return `${hex2(hi)}${hex2(lo)}`;
}
