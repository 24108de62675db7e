/**
 * What the MDB decoder knows of each device: its address, its commands by
 * the low 3 bits of the address byte (and sub-command), how long each
 * command is, how the device may answer it, and how to read the fields of
 * both. Data only, frozen: the exchange tracker (exchange.ts) walks it.
 * Facts from /work/shared/reference/mdb.md (MDB/ICP 4.2): "Coin changer",
 * "Bill validator", "Cashless device", "Addresses", "Timing".
 */
import { hex2 } from './capture.js';
import { amount, ascii, bcdVersion, currency, mask16, money, typeLabel, types, type DeviceState } from './fields.js';

export type Len = number | { readonly min: number; readonly max: number; readonly even?: boolean };

export interface DataAnswer {
  readonly label: string;
  readonly len: Len;
  readonly decode: (d: readonly number[], s: DeviceState) => string[];
}

export interface CommandSpec {
  readonly name: string;
  /** Data bytes the VMC sends after the address byte (after the sub-command for sub-commands). */
  readonly len: number;
  /** The device may answer ACK. */
  readonly ack: boolean;
  /** The device may answer data. */
  readonly data: DataAnswer | undefined;
  readonly fields?: (d: readonly number[], s: DeviceState) => string[];
  /** A field the reference rules out, given the command's `len` data bytes: what is wrong, or undefined. */
  readonly check?: (d: readonly number[]) => string | undefined;
  /** Lowest device level (from SETUP) this command exists at. */
  readonly minLevel?: number;
}

export interface SubTable {
  readonly name: string;
  readonly subs: Readonly<Record<number, CommandSpec>>;
}

export interface DeviceSpec {
  readonly name: string;
  /** By the low 3 bits of the address byte. */
  readonly commands: Readonly<Record<number, CommandSpec | SubTable>>;
}

/** Freeze a table and everything in it (the decode functions stay as they are). */
function frozen<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) frozen(v as object);
  return Object.freeze(o);
}

const ackOnly = (name: string, len = 0, fields?: CommandSpec['fields'], minLevel?: number): CommandSpec => ({
  name,
  len,
  ack: true,
  data: undefined,
  ...(fields ? { fields } : {}),
  ...(minLevel !== undefined ? { minLevel } : {}),
});

const dataOnly = (name: string, label: string, len: Len, decode: DataAnswer['decode'], minLevel?: number): CommandSpec => ({
  name,
  len: 0,
  ack: false,
  data: { label, len, decode },
  ...(minLevel !== undefined ? { minLevel } : {}),
});

// -- coin changer (0x08) --

const CHANGER_STATUS: Readonly<Record<number, string>> = frozen({
  0x01: 'escrow lever pressed',
  0x02: 'payout busy',
  0x03: 'no credit',
  0x04: 'defective tube sensor',
  0x05: 'double arrival',
  0x06: 'acceptor unplugged',
  0x07: 'tube jam',
  0x08: 'ROM checksum error',
  0x09: 'coin routing error',
  0x0a: 'changer busy',
  0x0b: 'changer was reset (just reset)',
  0x0c: 'coin jam',
  0x0d: 'possible credited-coin removal',
});

const ROUTING = frozen(['cash box', 'tubes', 'routing 2 (undefined)', 'reject']);

function changerSetup(d: readonly number[], s: DeviceState): string[] {
  const f = [`level ${d[0]}`, currency(d[1]!, d[2]!), `scale ${d[3]}`, `${d[4]} decimals`, `tube coins ${types(mask16(d[5]!, d[6]!))}`];
  const credits = d.slice(7, 23);
  const scale = d[3]! || 1;
  const coins = credits.map((c, t) => (c === 0 ? '' : c === 0xff ? `${t}:token` : `${t}:${money(c * scale, d[4]!)}`)).filter((x) => x);
  f.push(`coins ${coins.join(' ') || 'none'}`);
  if (s.trusted) {
    s.level = d[0];
    s.scale = scale;
    s.decimals = d[4];
    s.credits = credits;
  }
  return f;
}

function changerTubes(d: readonly number[]): string[] {
  const full = mask16(d[0]!, d[1]!);
  const f = [`full ${types(full)}`];
  const counts: string[] = [];
  for (let t = 0; t < 16 && 2 + t < d.length; t++) {
    const n = d[2 + t]!;
    const isFull = (full & (1 << t)) !== 0;
    if (n > 0 || isFull) counts.push(`${t}:${n}${isFull && n === 0 ? ' (faulty tube)' : ''}`);
  }
  f.push(`counts ${counts.join(' ') || 'all empty'}`);
  return f;
}

function changerPoll(d: readonly number[], s: DeviceState): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < d.length) {
    const b = d[i]!;
    if (b & 0x80) {
      const z = d[i + 1];
      out.push(`dispensed manually ${(b >> 4) & 7} x ${typeLabel(b & 15, s)}${z === undefined ? ' (tube count missing)' : `, ${z} left in tube`}`);
      i += 2;
    } else if ((b & 0xc0) === 0x40) {
      const z = d[i + 1];
      const routing = (b >> 4) & 3;
      const what = routing === 3 ? 'coin rejected' : 'coin deposited';
      out.push(`${what} ${typeLabel(b & 15, s)}${routing === 3 ? '' : ` to ${ROUTING[routing]}`}${z === undefined ? ' (tube count missing)' : `, ${z} in tube`}`);
      i += 2;
    } else if ((b & 0xe0) === 0x20) {
      out.push(`${b & 0x1f} slugs`);
      i++;
    } else {
      out.push(CHANGER_STATUS[b] ?? `status 0x${hex2(b)} (unknown)`);
      i++;
    }
  }
  return out;
}

function changerId(d: readonly number[]): string[] {
  const opts = d.length >= 33 ? ((d[29]! << 24) | (d[30]! << 16) | (d[31]! << 8) | d[32]!) >>> 0 : 0;
  const names = ['alternative payout', 'extended diagnostics', 'controlled manual fill/payout', 'file transport'];
  const on = names.filter((_, b) => opts & (1 << b));
  return [`manufacturer ${ascii(d, 0, 3)}`, `serial ${ascii(d, 3, 12)}`, `model ${ascii(d, 15, 12)}`, `software ${bcdVersion(d[27] ?? 0, d[28] ?? 0)}`, `options ${on.join(', ') || 'none'}`];
}

function changerDiag(d: readonly number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < d.length; i += 2) {
    const code = mask16(d[i]!, d[i + 1]!);
    const text = code === 0x0300 ? 'OK' : code === 0x0600 ? 'inhibited by VMC' : (code & 0xf000) === 0x1000 ? 'error' : 'status';
    out.push(`${hex2(d[i]!)}${hex2(d[i + 1]!)} ${text}`);
  }
  return out;
}

const CHANGER: DeviceSpec = frozen({
  name: 'changer',
  commands: {
    0: ackOnly('RESET'),
    1: dataOnly('SETUP', 'setup data', 23, changerSetup),
    2: dataOnly('TUBE STATUS', 'tube status', 18, changerTubes),
    3: { name: 'POLL', len: 0, ack: true, data: { label: 'poll data', len: { min: 1, max: 16 }, decode: changerPoll } },
    4: ackOnly('COIN TYPE', 4, (d, s) => {
      const accept = mask16(d[0]!, d[1]!);
      const manual = mask16(d[2]!, d[3]!);
      const label = (m: number): string => (s.credits && m ? types(m).split(',').map((t) => typeLabel(Number(t), s)).join(', ') : types(m));
      return [accept === 0 ? 'accept none (acceptance disabled)' : `accept ${label(accept)}`, `manual dispense ${types(manual)}`];
    }),
    5: {
      ...ackOnly('DISPENSE', 1, (d, s) => [`${d[0]! >> 4} x ${typeLabel(d[0]! & 15, s)}`]),
      check: (d) => (d[0]! >> 4 === 0 ? 'DISPENSE of 0 coins (count is 1 to 15)' : undefined),
    },
    7: {
      name: 'EXPANSION',
      subs: {
        0x00: dataOnly('EXPANSION IDENTIFICATION', 'identification', 33, changerId, 3),
        0x01: ackOnly('EXPANSION FEATURE ENABLE', 4, (d) => [`features 0x${d.map(hex2).join('')}`], 3),
        0x02: ackOnly('EXPANSION PAYOUT', 1, (d, s) => [`value ${amount(d[0]!, s)}`], 3),
        0x03: {
          name: 'EXPANSION PAYOUT STATUS',
          len: 0,
          ack: true,
          data: { label: 'payout status', len: 16, decode: (d, s) => [`paid ${d.map((n, t) => (n ? `${n} x ${typeLabel(t, s)}` : '')).filter((x) => x).join(', ') || 'nothing'}`] },
          minLevel: 3,
        },
        0x04: {
          name: 'EXPANSION PAYOUT VALUE POLL',
          len: 0,
          ack: true,
          data: { label: 'payout value', len: 1, decode: (d, s) => [`paid so far ${amount(d[0]!, s)}`] },
          minLevel: 3,
        },
        0x05: dataOnly('EXPANSION DIAGNOSTIC STATUS', 'diagnostic status', { min: 2, max: 16, even: true }, changerDiag, 3),
      },
    },
  },
});

// -- bill validator (0x30) --

const BILL_ROUTING = frozen([
  'stacked',
  'in escrow',
  'returned',
  'to recycler',
  'disabled bill rejected',
  'to recycler (manual fill)',
  'manual dispense',
  'recycler to cash box',
]);

const BILL_STATUS: Readonly<Record<number, string>> = frozen({
  0x01: 'defective motor',
  0x02: 'sensor problem',
  0x03: 'validator busy',
  0x04: 'ROM checksum error',
  0x05: 'validator jammed',
  0x06: 'validator was reset (just reset)',
  0x07: 'bill removed',
  0x08: 'cash box out of position',
  0x09: 'validator disabled',
  0x0a: 'invalid escrow request',
  0x0b: 'bill rejected',
  0x0c: 'possible credited-bill removal',
});

function billSetup(d: readonly number[], s: DeviceState): string[] {
  const scale = mask16(d[3]!, d[4]!) || 1;
  const credits = d.slice(11, 27);
  const bills = credits.map((c, t) => (c === 0 ? '' : c === 0xff ? `${t}:token` : `${t}:${money(c * scale, d[5]!)}`)).filter((x) => x);
  if (s.trusted) {
    s.level = d[0];
    s.scale = scale;
    s.decimals = d[5];
    s.credits = credits;
  }
  return [
    `level ${d[0]}`,
    currency(d[1]!, d[2]!),
    `scale ${scale}`,
    `${d[5]} decimals`,
    `stacker capacity ${mask16(d[6]!, d[7]!)}`,
    `high security ${types(mask16(d[8]!, d[9]!))}`,
    `escrow ${d[10] === 0xff ? 'yes' : d[10] === 0 ? 'no' : `0x${hex2(d[10]!)} (should be FF or 00)`}`,
    `bills ${bills.join(' ') || 'none'}`,
  ];
}

function billPoll(d: readonly number[], s: DeviceState): string[] {
  return d.map((b) => {
    if (b & 0x80) return `bill ${typeLabel(b & 15, s)} ${BILL_ROUTING[(b >> 4) & 7]}`;
    if ((b & 0xe0) === 0x40) return `${b & 0x1f} insert attempts while disabled`;
    return BILL_STATUS[b] ?? `status 0x${hex2(b)} (unknown)`;
  });
}

function billId(d: readonly number[]): string[] {
  const f = [`manufacturer ${ascii(d, 0, 3)}`, `serial ${ascii(d, 3, 12)}`, `model ${ascii(d, 15, 12)}`, `software ${bcdVersion(d[27] ?? 0, d[28] ?? 0)}`];
  if (d.length >= 33) f.push(`options 0x${d.slice(29, 33).map(hex2).join('')}`);
  return f;
}

const BILL: DeviceSpec = frozen({
  name: 'bill validator',
  commands: {
    0: ackOnly('RESET'),
    1: dataOnly('SETUP', 'setup data', 27, billSetup),
    2: ackOnly('SECURITY', 2, (d) => [`high security ${types(mask16(d[0]!, d[1]!))}`]),
    3: { name: 'POLL', len: 0, ack: true, data: { label: 'poll data', len: { min: 1, max: 16 }, decode: billPoll } },
    4: ackOnly('BILL TYPE', 4, (d, s) => {
      const enable = mask16(d[0]!, d[1]!);
      const label = (m: number): string => (s.credits && m ? types(m).split(',').map((t) => typeLabel(Number(t), s)).join(', ') : types(m));
      return [enable === 0 ? 'enable none (acceptance disabled)' : `enable ${label(enable)}`, `escrow ${types(mask16(d[2]!, d[3]!))}`];
    }),
    5: ackOnly('ESCROW', 1, (d) => [d[0] === 1 ? 'stack the bill' : d[0] === 0 ? 'return the bill' : `0x${hex2(d[0]!)} (should be 00 return or 01 stack)`]),
    6: dataOnly('STACKER', 'stacker', 2, (d) => [`${mask16(d[0]! & 0x7f, d[1]!)} bills`, d[0]! & 0x80 ? 'full' : 'not full']),
    7: {
      name: 'EXPANSION',
      subs: {
        0x00: dataOnly('EXPANSION IDENTIFICATION', 'identification', 29, billId),
        0x01: ackOnly('EXPANSION FEATURE ENABLE', 4, (d) => [`features 0x${d.map(hex2).join('')}`]),
        0x02: dataOnly('EXPANSION IDENTIFICATION WITH OPTIONS', 'identification', 33, billId, 2),
      },
    },
  },
});

// -- cashless (0x10, 0x60) --

/** Decode reader messages (POLL data, and data answers to other commands), chained. */
function cashlessMessages(d: readonly number[], s: DeviceState): string[] {
  const out: string[] = [];
  let i = 0;
  const word = (at: number): number => mask16(d[at] ?? 0, d[at + 1] ?? 0);
  const need = (n: number, what: string): boolean => {
    if (i + n <= d.length) return true;
    out.push(`${what} (truncated: ${d.length - i} of ${n} bytes)`);
    i = d.length;
    return false;
  };
  while (i < d.length) {
    const code = d[i]!;
    switch (code) {
      case 0x00:
        out.push('just reset');
        i += 1;
        break;
      case 0x01:
        if (!need(8, 'reader config')) break;
        if (s.trusted) {
          s.level = d[i + 1];
          s.scale = d[i + 4];
          s.decimals = d[i + 5];
        }
        out.push(`reader config: level ${d[i + 1]}`, currency(d[i + 2]!, d[i + 3]!), `scale ${d[i + 4]}`, `${d[i + 5]} decimals`, `max response ${d[i + 6]} s`, `options ${readerOptions(d[i + 7]!)}`);
        i += 8;
        break;
      case 0x02:
        // Display request: time, then the text for the whole display (its size came with SETUP).
        out.push(`display request ${(d[i + 1] ?? 0) / 10} s ${ascii(d, i + 2, d.length - i - 2)}`);
        i = d.length;
        break;
      case 0x03: {
        // Level 1: funds only; level 2+: media id, payment type and data follow.
        const long = s.level !== undefined ? s.level >= 2 : d.length - i >= 10;
        if (!need(long ? 10 : 3, 'begin session')) break;
        const funds = word(i + 1);
        const f = `begin session: funds ${funds === 0xffff ? 'unknown' : amount(funds, s)}`;
        if (long) {
          const media = d.slice(i + 3, i + 7).map(hex2).join('');
          out.push(`${f}, media id ${media}, payment type 0x${hex2(d[i + 7]!)}, payment data ${hex2(d[i + 8]!)}${hex2(d[i + 9]!)}`);
          i += 10;
        } else {
          out.push(f);
          i += 3;
        }
        break;
      }
      case 0x04:
        out.push('session cancel request');
        i += 1;
        break;
      case 0x05:
        if (!need(3, 'vend approved')) break;
        out.push(`vend approved: ${amount(word(i + 1), s)}`);
        i += 3;
        break;
      case 0x06:
        out.push('vend denied');
        i += 1;
        break;
      case 0x07:
        out.push('end session');
        i += 1;
        break;
      case 0x08:
        out.push('cancelled');
        i += 1;
        break;
      case 0x09: {
        const n = s.level !== undefined && s.level >= 3 ? 34 : d.length - i >= 34 ? 34 : 30;
        if (!need(n, 'peripheral ID')) break;
        out.push(`peripheral ID: ${billId(d.slice(i + 1, i + n)).join(', ')}`);
        i += n;
        break;
      }
      case 0x0a:
        if (!need(2, 'malfunction')) break;
        out.push(`malfunction: error 0x${hex2(d[i + 1]!)}`);
        i += 2;
        break;
      case 0x0b:
        out.push('command out of sequence (reset the reader)');
        // Level 2+ adds a status byte; take it if it is not the start of another message.
        i += s.level !== undefined && s.level >= 2 && i + 1 < d.length ? 2 : 1;
        break;
      case 0x0d:
        out.push('revalue approved');
        i += 1;
        break;
      case 0x0e:
        out.push('revalue denied');
        i += 1;
        break;
      default:
        out.push(`message 0x${hex2(code)} (not decoded): ${d.slice(i).map(hex2).join(' ')}`);
        i = d.length;
    }
  }
  return out;
}

function readerOptions(b: number): string {
  const names = ['refunds', 'multivend', 'own display', 'cash sale'];
  const on = names.filter((_, k) => b & (1 << k));
  return on.join(', ') || 'none';
}

const readerData = (label: string): DataAnswer => ({ label, len: { min: 1, max: 35 }, decode: cashlessMessages });

const priceItem = (d: readonly number[], s: DeviceState): string[] => [`price ${amount(mask16(d[0]!, d[1]!), s)}`, `item ${mask16(d[2]!, d[3]!)}`];

const CASHLESS = (name: string): DeviceSpec =>
  frozen({
    name,
    commands: {
      0: ackOnly('RESET'),
      1: {
        name: 'SETUP',
        subs: {
          0x00: {
            name: 'SETUP CONFIG DATA',
            len: 4,
            ack: false,
            data: { label: 'reader config', len: 8, decode: cashlessMessages },
            fields: (d) => [`VMC level ${d[0]}`, d[1] ? `display ${d[1]}x${d[2]}, type ${d[3]}` : 'no display'],
          },
          0x01: ackOnly('SETUP MAX/MIN PRICES', 4, (d, s) => [`max ${amount(mask16(d[0]!, d[1]!), s)}`, `min ${amount(mask16(d[2]!, d[3]!), s)}`]),
        },
      },
      2: { name: 'POLL', len: 0, ack: true, data: readerData('poll data') },
      3: {
        name: 'VEND',
        subs: {
          0x00: { name: 'VEND REQUEST', len: 4, ack: true, data: readerData('vend result'), fields: priceItem },
          0x01: { name: 'VEND CANCEL', len: 0, ack: true, data: readerData('vend result') },
          0x02: ackOnly('VEND SUCCESS', 2, (d) => [`item ${mask16(d[0]!, d[1]!)}`]),
          0x03: ackOnly('VEND FAILURE'),
          0x04: { name: 'VEND SESSION COMPLETE', len: 0, ack: true, data: readerData('session end') },
          0x05: ackOnly('VEND CASH SALE', 4, priceItem),
        },
      },
      4: {
        name: 'READER',
        subs: {
          0x00: ackOnly('READER DISABLE'),
          0x01: ackOnly('READER ENABLE'),
          0x02: { name: 'READER CANCEL', len: 0, ack: true, data: readerData('cancel result') },
        },
      },
      7: {
        name: 'EXPANSION',
        subs: {
          0x00: {
            name: 'EXPANSION REQUEST ID',
            len: 29,
            ack: false,
            data: { label: 'peripheral ID', len: { min: 30, max: 34 }, decode: cashlessMessages },
            fields: (d) => [`VMC ${billId(d).join(', ')}`],
          },
          0x04: ackOnly('EXPANSION ENABLE OPTIONS', 4, (d) => [`options 0x${d.map(hex2).join('')}`], 3),
        },
      },
    },
  });

/** Devices the reference names but this decoder does not know the commands of. */
export const OTHER_DEVICES: Readonly<Record<number, string>> = frozen({
  0x18: 'comms gateway',
  0x20: 'display',
  0x40: 'universal satellite 1',
  0x48: 'universal satellite 2',
  0x50: 'universal satellite 3',
  0x58: 'coin hopper 1',
  0x68: 'age verification',
  0x70: 'coin hopper 2',
});

/** The devices decoded, by address (the address byte's top 5 bits). */
export const DEVICES: Readonly<Record<number, DeviceSpec>> = frozen({
  0x08: CHANGER,
  0x10: CASHLESS('cashless #1'),
  0x30: BILL,
  0x60: CASHLESS('cashless #2'),
});

export function lenText(len: Len): string {
  if (typeof len === 'number') return `${len} bytes`;
  return `${len.min} to ${len.max}${len.even ? ' (even)' : ''} bytes`;
}

export function lenOk(len: Len, n: number): boolean {
  if (typeof len === 'number') return n === len;
  return n >= len.min && n <= len.max && (!len.even || n % 2 === 0);
}

/** Non-response times (reference, Timing): past them the VMC should take the device for offline. */
export const NON_RESPONSE_S: Readonly<Record<string, number>> = frozen({ changer: 2, 'bill validator': 5, 'cashless #1': 5, 'cashless #2': 5 });
