/**
 * The machine's EVA-DTS audit file: CRC and calendar known answers, the
 * figures against the journal's books, the interim reset a read makes, and
 * the read surviving a reboot. Runs in Node and under XS.
 */
import { dexDateTime } from '../../firmware/dex/civil.js';
import { buildAudit as buildAuditBytes, type AuditInput } from '../../firmware/dex/audit.js';
import { crc16Hex, crc16Text } from '../../firmware/dex/crc16.js';
import { dexCurrency } from '../../firmware/dex/currency.js';
import * as Checkpoint from '../../firmware/journal/checkpoint.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { Counter } from '../../firmware/journal/vocabulary.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';
import { equal, ok } from '../lib/assert.js';

const CODES = ['A1', 'A2', 'B1'];
const PRODUCTS = ['Cola', 'Café *Latte*', 'Water'];
const GEOMETRY = { size: 32 * 1024, blockLength: 4096, writeAlign: 4 };
/** Coin types 0..3 of a US changer: 5, 10, 25 cents and a dollar, all with tubes. */
const COINS = [5, 10, 25, 100];

/** A table-driven CRC-16/ARC, written independently of the firmware's bitwise one. */
const TABLE = (() => {
  const t: number[] = [];
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t.push(c);
  }
  return t;
})();
function referenceCrc(text: string): number {
  let c = 0;
  for (let i = 0; i < text.length; i++) c = (c >>> 8) ^ TABLE[(c ^ text.charCodeAt(i)) & 0xff]!;
  return c;
}

/** The file as text (ASCII), for reading it in the assertions. */
function buildAudit(a: AuditInput): string {
  const b = buildAuditBytes(a);
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

interface Machine {
  flash: FlashImage;
  ledger: Ledger;
  journal: Journal;
  clock: { t: number; now(): number };
}

function boot(flash = new FlashImage(GEOMETRY), t = 0): Machine {
  const clock = { t, now(): number { return this.t; } };
  const ledger = new Ledger(new Uint16Array([5, 5, 5]), new Uint8Array(3), layoutHash(CODES), { prices: new Int32Array([125, 150, 100]), capacity: new Uint16Array([10, 10, 10]) });
  const journal = new Journal(flash, ledger, clock);
  journal.open();
  return { flash, ledger, journal, clock };
}

function input(m: Machine, read: number, wall: number): AuditInput {
  return { ledger: m.ledger, machineId: 'vm-0042', firmware: '0.1.0', currency: 'USD', decimals: 2, codes: CODES, products: PRODUCTS, coinValues: COINS, tubeTypes: 0b1111, billValidator: true, read, wall };
}

/** A cash sale: coins in (to tubes), the vend, change out. */
function sale(m: Machine, slot: number, price: number, paid: number[], change: number): void {
  for (const v of paid) m.journal.coinIn(COINS.indexOf(v), 1, v);
  m.journal.vendStart(slot, price);
  m.journal.vendOk(slot, price);
  if (change > 0) {
    const tubes = new Uint8Array(16);
    tubes.set(m.ledger.tubes);
    m.journal.payoutStart(change, tubes);
    const per = new Uint8Array(16);
    per[COINS.indexOf(change)] = 1;
    m.journal.payoutDone(change, 1, per);
  }
}

/** Segment lines of a file, elements split. */
function segments(text: string): string[][] {
  return text.split('\r\n').filter((l) => l.length > 0).map((l) => l.split('*'));
}

function find(segs: string[][], id: string): string[][] {
  return segs.filter((s) => s[0] === id);
}

describe('EVA-DTS audit data (firmware)', () => {
  it('computes CRC-16/ARC and calendar dates to known answers', () => {
    equal(crc16Hex(crc16Text(0, '123456789')), 'BB3D', 'the standard check value');
    equal(crc16Hex(0x0a), '000A');
    equal(crc16Text(0, 'ST*001*0001\r\nID4*2*1978\r\n'), referenceCrc('ST*001*0001\r\nID4*2*1978\r\n'));
    const cases: [number, string, string][] = [
      [0, '19700101', '000000'],
      [951782400, '20000229', '000000'],
      [1700000000, '20231114', '221320'],
      [1709251199, '20240229', '235959'],
      [4102444800, '21000101', '000000'],
    ];
    for (const [s, date, time] of cases) {
      const d = dexDateTime(s);
      equal(`${d.date} ${d.time}`, `${date} ${time}`, `${s}`);
    }
    equal(dexCurrency('USD'), '1840');
    equal(dexCurrency('EUR'), '1978');
    equal(dexCurrency('AUD'), '1036');
    equal(dexCurrency('XXX'), '');
  });

  it('writes the books as EVA-DTS: sales, cash in and out, tubes, selections, with a correct G85 and SE count', () => {
    const m = boot();
    m.journal.tubes(new Uint8Array([10, 10, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    sale(m, 0, 125, [100, 25], 0);
    sale(m, 1, 150, [100, 100], 0); // change paid below as a separate payout
    m.journal.billStacked(500);
    m.journal.vendStart(2, 100);
    m.journal.vendOk(2, 100);
    const tubes = new Uint8Array(16);
    tubes.set(m.ledger.tubes);
    m.journal.payoutStart(400, tubes);
    const per = new Uint8Array(16);
    per[3] = 4;
    m.journal.payoutDone(400, 4, per);
    m.journal.coinsManual(0, 2, 10);
    m.clock.t = 3600_000;
    const text = buildAudit(input(m, 1, 1764000000));
    ok(text.endsWith('\r\n'), 'CRLF line ends');
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      ok((c >= 0x20 && c <= 0x7e) || c === 13 || c === 10, `printable ASCII only (char ${c} at ${i})`);
    }
    const segs = segments(text);
    equal(segs[0]!.join('*'), 'DXS*VFL0000000*VA*V0/6*1');
    equal(segs[1]!.join('*'), 'ST*001*0001');
    equal(segs[segs.length - 1]!.join('*'), 'DXE*1*1');
    equal(find(segs, 'ID4')[0]!.join('*'), 'ID4*2*1840*USD');
    // Paid vends: 125 + 150 + 100 = 375 in 3; nothing read yet, so the interim figures equal them.
    equal(find(segs, 'VA1')[0]!.join('*'), 'VA1*375*3*375*3');
    equal(find(segs, 'CA2')[0]!.join('*'), 'CA2*375*3*375*3');
    // Cash in: coins 100+25+100+100 to the tubes, a 5.00 bill; CA3 has the interim half first.
    equal(find(segs, 'CA3')[0]!.join('*'), 'CA3*825*0*325*500*825*0*325*500');
    equal(find(segs, 'CA4')[0]!.join('*'), 'CA4*400*10*400*10');
    // Tubes: 10 nickels - 2 by hand = 8, 10 dimes, 5 quarters + 1, dollars 3 in - 4 out = 0.
    equal(find(segs, 'CA15')[0]!.join('*'), `CA15*${8 * 5 + 10 * 10 + 6 * 25}`);
    equal(find(segs, 'CA17').map((s) => s.join('*')).join(' '), 'CA17*0*5*8 CA17*1*10*10 CA17*2*25*6 CA17*3*100*0');
    equal(find(segs, 'BA1').length, 1);
    equal(find(segs, 'PA1').map((s) => s.join('*')).join(' '), 'PA1*A1*125*Cola PA1*A2*150*Caf? ?Latte? PA1*B1*100*Water');
    equal(find(segs, 'PA2').map((s) => s.join('*')).join(' '), 'PA2*1*125*1*125 PA2*1*150*1*150 PA2*1*100*1*100');
    equal(find(segs, 'PA5').length, 0, 'no sale time before the machine knows the wall clock');
    equal(find(segs, 'EA3')[0]!.join('*'), 'EA3*1*20251124*160000');
    // G85 over ST..the line before it, SE counting ST through SE.
    const st = text.indexOf('ST*');
    const g85 = text.indexOf('G85*');
    const want = referenceCrc(text.slice(st, g85)).toString(16).toUpperCase().padStart(4, '0');
    equal(find(segs, 'G85')[0]![1], want);
    const firstSt = segs.findIndex((s) => s[0] === 'ST');
    const se = segs.findIndex((s) => s[0] === 'SE');
    equal(find(segs, 'SE')[0]![1], String(se - firstSt + 1));
  });

  it('names the changer (CA1) and the bill validator (BA1) once they have identified themselves', () => {
    const m = boot();
    const text = buildAudit({ ...input(m, 1, 0), changerId: { serial: 'CC0001234567', model: 'CHG3', software: '0142' }, billId: { serial: 'BV0009', model: 'BV2*X', software: '0201' } });
    const segs = segments(text);
    equal(find(segs, 'CA1')[0]!.join('*'), 'CA1*CC0001234567*CHG3*0142');
    equal(find(segs, 'BA1')[0]!.join('*'), 'BA1*BV0009*BV2?X*0201', 'a * in a name cannot split the element');
    ok(text.indexOf('\r\nCA1*') < text.indexOf('\r\nCA2*'), 'CA1 before the cash figures');
    const g85 = text.indexOf('G85*');
    equal(find(segs, 'G85')[0]![1], referenceCrc(text.slice(text.indexOf('ST*'), g85)).toString(16).toUpperCase().padStart(4, '0'));
  });

  it('clears the interim counters on a read, keeps the totals, and remembers the read across a reboot', () => {
    const m = boot();
    sale(m, 0, 125, [100, 25], 0);
    m.ledger.wallOffset = 1764000000;
    m.clock.t = 60_000;
    sale(m, 1, 150, [100, 25, 25], 0);
    const first = buildAudit(input(m, 1, 1764000100));
    m.journal.auditRead(1, 1764000100);
    equal(m.ledger.interim[Counter.SALES], 0);
    equal(m.ledger.total[Counter.SALES], 2);
    equal(m.ledger.slotSalesInterim[0], 0);
    ok(first.includes('\r\nVA1*275*2*275*2\r\n'));
    // A2 sold at journal time 60 s: its PA5 is the wall time of then.
    ok(first.includes('\r\nPA1*A2*150*Caf? ?Latte?\r\nPA2*1*150*1*150\r\nPA5*20251124*160100\r\n'), first);
    m.clock.t = 120_000;
    sale(m, 2, 100, [100], 0);
    // A power cut and a reboot: the read, its time and the cleared counters come back from flash.
    const again = boot(m.flash, 120_000);
    equal(again.ledger.auditReads, 1);
    equal(again.ledger.lastReadWall, 1764000100);
    equal(again.ledger.total[Counter.REVENUE], 375);
    equal(again.ledger.interim[Counter.REVENUE], 100);
    const second = buildAudit(input(again, 2, 1764000200));
    ok(second.includes('\r\nVA1*375*3*100*1\r\n'), second);
    ok(second.includes('\r\nPA2*1*125*0*0\r\n'));
    ok(second.includes('\r\nEA3*2*20251124*160320**20251124*160140\r\n'), second);
  });

  it('keeps the audit state through checkpoints, and still reads a checkpoint from before audit reads (version 3)', () => {
    const m = boot();
    m.ledger.wallOffset = 1764000000;
    m.clock.t = 5_000;
    sale(m, 2, 100, [100], 0);
    m.journal.auditRead(4, 1764000500);
    // What a command set for slot 2, to be found again in version 3's slots.
    m.ledger.prices[2] = 135;
    m.ledger.capacity[2] = 9;
    m.ledger.sku[2] = 4711;
    m.ledger.slotVersion[2] = 12;
    const size = m.ledger.checkpointLength;
    const v6 = new Uint8Array(size);
    equal(m.ledger.save(v6), size);
    const copy = new Ledger(new Uint16Array(3), new Uint8Array(3), layoutHash(CODES));
    ok(copy.load(v6, 0, v6.length));
    equal(copy.auditReads, 4);
    equal(copy.lastReadWall, 1764000500);
    equal(copy.slotLastSale[2], 5);
    equal(copy.wallOffset, 1764000000);
    // The same books as version 3 wrote them: shorter slots, no audit state (nor version 6's clock state).
    const counters = Checkpoint.FIXED + Checkpoint.SECTION_COUNTERS * Checkpoint.COUNTER;
    const state = counters + 3 * Checkpoint.PER_SLOT;
    const v3 = new Uint8Array(size - 3 * (Checkpoint.PER_SLOT - Checkpoint.PER_SLOT_V3) - Checkpoint.AUDIT_STATE - Checkpoint.CLOCK_STATE);
    v3.set(v6.subarray(0, counters));
    v3[0] = 3; // the version opens the checkpoint
    for (let s = 0; s < 3; s++) {
      const slot = counters + s * Checkpoint.PER_SLOT;
      v3.set(v6.subarray(slot, slot + Checkpoint.PER_SLOT_V3), counters + s * Checkpoint.PER_SLOT_V3);
    }
    v3.set(v6.subarray(state, state + Checkpoint.COMMAND_STATE), counters + 3 * Checkpoint.PER_SLOT_V3);
    const old = new Ledger(new Uint16Array(3), new Uint8Array(3), layoutHash(CODES));
    ok(old.load(v3, 0, v3.length), 'a version 3 checkpoint loads');
    equal(old.total[Counter.SALES], 1);
    equal(old.qty[2], 4);
    equal(old.wallOffset, 1764000000, 'the command state after the slots is found');
    equal(old.auditReads, 0);
    equal(old.slotLastSale[2], 0);
    // Version 3's slots carry what commands set (until issue 14 these were skipped and the configured ones stood).
    equal(old.prices[2], 135);
    equal(old.capacity[2], 9);
    equal(old.sku[2], 4711);
    equal(old.slotVersion[2], 12);
  });
});
