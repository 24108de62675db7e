/**
 * Journal records as plain objects with named fields: what the uplink sends
 * (docs/uplink.md) and what people read. Slot numbers become slot codes.
 */
import { u16, u32 } from './bytes.js';
import {
  R_BILL_RETURNED,
  R_BILL_STACKED,
  R_BILL_STACKING,
  R_COIN_IN,
  R_COINS_MANUAL,
  R_CREDIT_ADJUST,
  R_INIT,
  R_PAYOUT_DONE,
  R_PAYOUT_START,
  R_TUBES,
  R_VEND_FAIL,
  R_VEND_OK,
  R_VEND_START,
  R_VEND_UNCERTAIN,
  RECORD_NAMES,
} from './records.js';

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
      e['routing'] = d[o + 1] === 1 ? 'tubes' : 'cashbox';
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
    default:
      break;
  }
  return e;
}
