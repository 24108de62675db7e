/**
 * The uplink's wire format for journal records: plain objects with named
 * fields (docs/uplink.md), what the gateway stores and people read. Fields
 * are read through the journal's codec (journal/records.ts); slot numbers
 * become slot codes.
 */
import { DISPENSE_SENSOR_FAULT } from '../dispense/dispenser.js';
import { CARD_OUTCOMES, CoinRouting, UPDATE_PHASES, UPDATE_REASONS } from '../journal/vocabulary.js';
import { toHex } from '../text/hex.js';
import { formatVersion } from '../update/version.js';
import { COIN_TYPES } from '../money/coins.js';
import {
  COIN_COUNT,
  get,
  R_AUDIT_READ,
  R_BILL_RETURNED,
  R_BILL_STACKED,
  R_BILL_STACKING,
  R_CARD_APPROVED,
  R_CARD_RESULT,
  R_COIN_IN,
  R_COINS_MANUAL,
  R_COMMAND,
  R_COMMAND_REJECTED,
  R_CREDIT_ADJUST,
  R_INIT,
  R_LOCK,
  R_PAYOUT_DONE,
  R_PAYOUT_START,
  R_PLANOGRAM,
  R_PRICE,
  R_REMOTE_VEND,
  R_SETTING,
  R_TUBES,
  R_VEND_FAIL,
  R_VEND_OK,
  R_VEND_START,
  R_VEND_UNCERTAIN,
  RECORD_NAMES,
  run,
  size,
  R_UPDATE,
  R_UPDATE_BEGIN,
} from '../journal/records.js';
import { COMMAND_TYPES, OUTCOMES, REFUSALS, REJECTIONS, SETTING_NAMES, OUT_REFUSED } from '../command/vocabulary.js';

export type Described = { [field: string]: string | number | number[] | { [type: string]: number } };

function tubes(counts: Uint8Array): number[] {
  const out: number[] = [];
  for (let t = 0; t < COIN_TYPES; t++) out.push(counts[t]!);
  // Trailing empty coin types say nothing.
  while (out.length > 0 && out[out.length - 1] === 0) out.pop();
  return out;
}

export function describeRecord(type: number, seq: number, time: number, d: Uint8Array, o: number, length: number, codes: readonly string[]): Described {
  const e: Described = { seq, t: time, type: RECORD_NAMES[type] ?? `type-${type.toString(16)}` };
  const slot = (i: number): string => codes[i] ?? `#${i}`;
  switch (type) {
    case R_COIN_IN:
      e['coinType'] = get(d, o, R_COIN_IN, 'coinType');
      e['routing'] = get(d, o, R_COIN_IN, 'routing') === CoinRouting.TUBES ? 'tubes' : 'cashbox';
      e['value'] = get(d, o, R_COIN_IN, 'value');
      break;
    case R_BILL_STACKING:
      e['value'] = get(d, o, R_BILL_STACKING, 'value');
      e['stackerBefore'] = get(d, o, R_BILL_STACKING, 'stackerBefore');
      break;
    case R_BILL_STACKED:
      e['value'] = get(d, o, R_BILL_STACKED, 'value');
      break;
    case R_BILL_RETURNED:
      e['value'] = get(d, o, R_BILL_RETURNED, 'value');
      break;
    case R_VEND_START:
      e['slot'] = slot(get(d, o, R_VEND_START, 'slot'));
      e['price'] = get(d, o, R_VEND_START, 'price');
      break;
    case R_VEND_OK:
      e['slot'] = slot(get(d, o, R_VEND_OK, 'slot'));
      e['price'] = get(d, o, R_VEND_OK, 'price');
      break;
    case R_VEND_FAIL:
      e['slot'] = slot(get(d, o, R_VEND_FAIL, 'slot'));
      e['reason'] = get(d, o, R_VEND_FAIL, 'reason') === DISPENSE_SENSOR_FAULT ? 'sensor' : 'jam';
      break;
    case R_VEND_UNCERTAIN:
      e['slot'] = slot(get(d, o, R_VEND_UNCERTAIN, 'slot'));
      break;
    case R_PAYOUT_START:
      e['asked'] = get(d, o, R_PAYOUT_START, 'asked');
      e['tubes'] = tubes(run(d, o, R_PAYOUT_START, 'tubes'));
      break;
    case R_PAYOUT_DONE: {
      e['paid'] = get(d, o, R_PAYOUT_DONE, 'paid');
      e['coins'] = get(d, o, R_PAYOUT_DONE, 'coins');
      const per: { [type: string]: number } = {};
      // One COIN_COUNT per coin type paid follows the fixed fields.
      for (let p = o + size(R_PAYOUT_DONE); p + size(COIN_COUNT) <= o + length; p += size(COIN_COUNT)) {
        per[String(get(d, p, COIN_COUNT, 'coinType'))] = get(d, p, COIN_COUNT, 'count');
      }
      e['perType'] = per;
      break;
    }
    case R_COINS_MANUAL:
      e['coinType'] = get(d, o, R_COINS_MANUAL, 'coinType');
      e['count'] = get(d, o, R_COINS_MANUAL, 'count');
      e['value'] = get(d, o, R_COINS_MANUAL, 'value');
      break;
    case R_INIT:
      e['slots'] = get(d, o, R_INIT, 'slots');
      e['layout'] = get(d, o, R_INIT, 'layout');
      break;
    case R_CREDIT_ADJUST:
      e['delta'] = get(d, o, R_CREDIT_ADJUST, 'delta');
      break;
    case R_TUBES:
      e['tubes'] = tubes(run(d, o, R_TUBES, 'tubes'));
      break;
    case R_UPDATE_BEGIN:
      e['n'] = get(d, o, R_UPDATE_BEGIN, 'n');
      e['version'] = formatVersion(get(d, o, R_UPDATE_BEGIN, 'version'));
      e['size'] = get(d, o, R_UPDATE_BEGIN, 'size');
      e['sha256'] = toHex(run(d, o, R_UPDATE_BEGIN, 'sha256'));
      e['journal'] = get(d, o, R_UPDATE_BEGIN, 'journal');
      break;
    case R_UPDATE: {
      e['n'] = get(d, o, R_UPDATE, 'n');
      const phase = get(d, o, R_UPDATE, 'phase');
      e['phase'] = UPDATE_PHASES[phase] || `phase-${phase}`;
      e['version'] = formatVersion(get(d, o, R_UPDATE, 'version'));
      const reason = get(d, o, R_UPDATE, 'reason');
      if (reason !== 0) e['reason'] = UPDATE_REASONS[reason] || `reason-${reason}`;
      break;
    }
    case R_COMMAND: {
      e['n'] = get(d, o, R_COMMAND, 'n');
      e['issued'] = get(d, o, R_COMMAND, 'issued');
      e['command'] = COMMAND_TYPES[get(d, o, R_COMMAND, 'command')] || 'unknown';
      const outcome = get(d, o, R_COMMAND, 'outcome');
      e['outcome'] = OUTCOMES[outcome] ?? `outcome-${outcome}`;
      const value = get(d, o, R_COMMAND, 'value');
      if (outcome === OUT_REFUSED) e['reason'] = REFUSALS[value] ?? `reason-${value}`;
      else e['value'] = value;
      // `remaining` is the last field; firmware before it wrote the record without.
      if (length >= size(R_COMMAND) && get(d, o, R_COMMAND, 'remaining') !== 0xffff) e['remaining'] = get(d, o, R_COMMAND, 'remaining');
      break;
    }
    case R_COMMAND_REJECTED: {
      const reason = get(d, o, R_COMMAND_REJECTED, 'reason');
      e['n'] = get(d, o, R_COMMAND_REJECTED, 'n');
      e['reason'] = REJECTIONS[reason] ?? `reason-${reason}`;
      e['suppressed'] = get(d, o, R_COMMAND_REJECTED, 'suppressed');
      break;
    }
    case R_PRICE:
      e['slot'] = slot(get(d, o, R_PRICE, 'slot'));
      e['price'] = get(d, o, R_PRICE, 'price');
      e['n'] = get(d, o, R_PRICE, 'version');
      break;
    case R_PLANOGRAM:
      e['slot'] = slot(get(d, o, R_PLANOGRAM, 'slot'));
      e['price'] = get(d, o, R_PLANOGRAM, 'price');
      e['qty'] = get(d, o, R_PLANOGRAM, 'qty');
      e['capacity'] = get(d, o, R_PLANOGRAM, 'capacity');
      e['sku'] = get(d, o, R_PLANOGRAM, 'sku');
      e['n'] = get(d, o, R_PLANOGRAM, 'version');
      break;
    case R_LOCK:
      e['locked'] = get(d, o, R_LOCK, 'locked');
      e['n'] = get(d, o, R_LOCK, 'version');
      break;
    case R_SETTING: {
      const key = get(d, o, R_SETTING, 'key');
      e['setting'] = SETTING_NAMES[key] ?? `setting-${key}`;
      e['value'] = get(d, o, R_SETTING, 'value');
      e['n'] = get(d, o, R_SETTING, 'version');
      break;
    }
    case R_REMOTE_VEND:
      e['n'] = get(d, o, R_REMOTE_VEND, 'n');
      e['slot'] = slot(get(d, o, R_REMOTE_VEND, 'slot'));
      e['quantity'] = get(d, o, R_REMOTE_VEND, 'quantity');
      e['price'] = get(d, o, R_REMOTE_VEND, 'price');
      break;
    case R_AUDIT_READ:
      e['read'] = get(d, o, R_AUDIT_READ, 'read');
      e['wall'] = get(d, o, R_AUDIT_READ, 'wall');
      break;
    case R_CARD_APPROVED:
      e['slot'] = slot(get(d, o, R_CARD_APPROVED, 'slot'));
      e['amount'] = get(d, o, R_CARD_APPROVED, 'amount');
      break;
    case R_CARD_RESULT: {
      const outcome = get(d, o, R_CARD_RESULT, 'outcome');
      e['outcome'] = CARD_OUTCOMES[outcome] || `outcome-${outcome}`;
      e['slot'] = slot(get(d, o, R_CARD_RESULT, 'slot'));
      e['amount'] = get(d, o, R_CARD_RESULT, 'amount');
      break;
    }
    default:
      break;
  }
  return e;
}
