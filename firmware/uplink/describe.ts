/**
 * Journal records as plain objects with named fields: what the uplink sends
 * (docs/uplink.md) and what people read. Slot numbers become slot codes.
 */
import { u16, u32 } from '../journal/bytes.js';
import {
  R_BILL_RETURNED,
  R_BILL_STACKED,
  R_BILL_STACKING,
  R_COIN_IN,
  R_COINS_MANUAL,
  R_COMMAND,
  R_COMMAND_REJECTED,
  R_CREDIT_ADJUST,
  R_LOCK,
  R_PLANOGRAM,
  R_PRICE,
  R_REMOTE_VEND,
  R_AUDIT_READ,
  R_CARD_APPROVED,
  R_CARD_RESULT,
  R_SETTING,
  R_INIT,
  R_PAYOUT_DONE,
  R_PAYOUT_START,
  R_TUBES,
  R_VEND_FAIL,
  R_VEND_OK,
  R_VEND_START,
  R_VEND_UNCERTAIN,
  RECORD_NAMES,
} from '../journal/records.js';
import { CARD_OUTCOMES, CoinRouting } from '../journal/vocabulary.js';
import { COMMAND_TYPES, OUTCOMES, REFUSALS, REJECTIONS, SETTING_NAMES, OUT_REFUSED } from '../command/vocabulary.js';

export type Described = { [field: string]: string | number | number[] | { [type: string]: number } };

function tubes(d: Uint8Array, o: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < 16; t++) out.push(d[o + t]!);
  // Trailing empty coin types say nothing.
  while (out.length > 0 && out[out.length - 1] === 0) out.pop();
  return out;
}

export function describeRecord(type: number, seq: number, time: number, d: Uint8Array, o: number, length: number, codes: readonly string[]): Described {
  const e: Described = { seq, t: time, type: RECORD_NAMES[type] ?? `type-${type.toString(16)}` };
  const slot = (i: number): string => codes[i] ?? `#${i}`;
  switch (type) {
    case R_COIN_IN:
      e['coinType'] = d[o]!;
      e['routing'] = d[o + 1] === CoinRouting.TUBES ? 'tubes' : 'cashbox';
      e['value'] = u16(d, o + 2);
      break;
    case R_BILL_STACKING:
      e['value'] = u32(d, o);
      e['stackerBefore'] = u16(d, o + 4);
      break;
    case R_BILL_STACKED:
    case R_BILL_RETURNED:
      e['value'] = u32(d, o);
      break;
    case R_VEND_START:
    case R_VEND_OK:
      e['slot'] = slot(d[o]!);
      e['price'] = u32(d, o + 1);
      break;
    case R_VEND_FAIL:
      e['slot'] = slot(d[o]!);
      e['reason'] = d[o + 1] === 2 ? 'sensor' : 'jam';
      break;
    case R_VEND_UNCERTAIN:
      e['slot'] = slot(d[o]!);
      break;
    case R_PAYOUT_START:
      e['asked'] = u32(d, o);
      e['tubes'] = tubes(d, o + 4);
      break;
    case R_PAYOUT_DONE: {
      e['paid'] = u32(d, o);
      e['coins'] = u16(d, o + 4);
      const per: { [type: string]: number } = {};
      for (let p = o + 6; p + 1 < o + length; p += 2) per[String(d[p]!)] = d[p + 1]!;
      e['perType'] = per;
      break;
    }
    case R_COINS_MANUAL:
      e['coinType'] = d[o]!;
      e['count'] = d[o + 1]!;
      e['value'] = u32(d, o + 2);
      break;
    case R_INIT:
      e['slots'] = d[o]!;
      e['layout'] = u32(d, o + 1);
      break;
    case R_CREDIT_ADJUST:
      e['delta'] = u32(d, o) | 0;
      break;
    case R_TUBES:
      e['tubes'] = tubes(d, o);
      break;
    case R_COMMAND: {
      e['n'] = u32(d, o);
      e['issued'] = u32(d, o + 4);
      e['command'] = COMMAND_TYPES[d[o + 8]!] || 'unknown';
      const outcome = d[o + 9]!;
      e['outcome'] = OUTCOMES[outcome] ?? `outcome-${outcome}`;
      const value = u16(d, o + 10);
      if (outcome === OUT_REFUSED) e['reason'] = REFUSALS[value] ?? `reason-${value}`;
      else e['value'] = value;
      if (length >= 14 && u16(d, o + 12) !== 0xffff) e['remaining'] = u16(d, o + 12);
      break;
    }
    case R_COMMAND_REJECTED:
      e['n'] = u32(d, o);
      e['reason'] = REJECTIONS[d[o + 4]!] ?? `reason-${d[o + 4]!}`;
      e['suppressed'] = u16(d, o + 5);
      break;
    case R_PRICE:
      e['slot'] = slot(d[o]!);
      e['price'] = u32(d, o + 1);
      e['n'] = u32(d, o + 5);
      break;
    case R_PLANOGRAM:
      e['slot'] = slot(d[o]!);
      e['price'] = u32(d, o + 1);
      e['qty'] = u16(d, o + 5);
      e['capacity'] = u16(d, o + 7);
      e['sku'] = u32(d, o + 9);
      e['n'] = u32(d, o + 13);
      break;
    case R_LOCK:
      e['locked'] = d[o]!;
      e['n'] = u32(d, o + 1);
      break;
    case R_SETTING:
      e['setting'] = SETTING_NAMES[d[o]!] ?? `setting-${d[o]!}`;
      e['value'] = u32(d, o + 1);
      e['n'] = u32(d, o + 5);
      break;
    case R_REMOTE_VEND:
      e['n'] = u32(d, o);
      e['slot'] = slot(d[o + 4]!);
      e['quantity'] = d[o + 5]!;
      e['price'] = u32(d, o + 6);
      break;
    case R_AUDIT_READ:
      e['read'] = u32(d, o);
      e['wall'] = u32(d, o + 4);
      break;
    case R_CARD_APPROVED:
      e['slot'] = slot(d[o]!);
      e['amount'] = u32(d, o + 1);
      break;
    case R_CARD_RESULT:
      e['outcome'] = CARD_OUTCOMES[d[o]!] || `outcome-${d[o]!}`;
      e['slot'] = slot(d[o + 1]!);
      e['amount'] = u32(d, o + 2);
      break;
    default:
      break;
  }
  return e;
}
