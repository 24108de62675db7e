/**
 * DEX (EVA-DTS) audit files: the parser against five real files (figures
 * read off the files by hand), the CRC, malformed files refused with the
 * right line, a changed figure caught by G85; then storing and serving
 * them over the operator API on both stores.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { crc16Arc, DexError, MAX_DEX_BYTES, parseDex, type DexSummary, type Totals } from '../../gateway/dex/parse.js';
import { AuditError, getAudit, listAudits, storeAudit } from '../../gateway/dex/store.js';
import { closeApi, openApi } from './api-harness.js';
import { BACKENDS, count, type Backend } from './backends.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = join(root, '../shared/fixtures/dex');
const FILES = ['animo', 'animo2', 'jof-sample', 'rhevendors', 'sielaff'] as const;
type Fixture = (typeof FILES)[number];
const bytes = (name: Fixture): Buffer => readFileSync(join(fixtures, `${name}.eva_dts`));
const text = (name: Fixture): string => bytes(name).toString('latin1');

const t = (vi: number, ci: number, vr: number, cr: number): Totals => ({ init: { value: vi, count: ci }, reset: { value: vr, count: cr } });

/** What each file says, read off it by hand (money in minor units). */
interface Expected {
  serial: string;
  decimals: number;
  currency: number | null;
  readAt: string;
  paidVends: Totals;
  cashSales: Totals | null;
  cashlessSales: Totals | null;
  products: number;
  /** Sums of PA2: vends and value since initialisation, then since reset. */
  pa2: [number, number, number, number];
  crc: 'ok' | 'absent';
  g85?: string;
  se: 'ok' | 'mismatch' | 'absent';
  warnings: RegExp[];
}

const EXPECTED: Record<Fixture, Expected> = {
  animo: {
    serial: 'ANIKraftver',
    decimals: 2,
    currency: 1978,
    readAt: '2010-01-19T23:01:11',
    paidVends: t(816100, 8161, 816100, 8161),
    cashSales: null,
    cashlessSales: null,
    products: 24,
    // PA2 has three elements here: no value since reset.
    pa2: [1537, 153700, 8161, 0],
    crc: 'ok',
    g85: 'B9AE',
    se: 'ok',
    warnings: [],
  },
  animo2: {
    serial: 'ANIIMM 2WG3',
    decimals: 2,
    currency: 1978,
    readAt: '2024-02-05T11:33:05',
    paidVends: t(3945, 547, 3945, 547),
    cashSales: null,
    cashlessSales: null,
    products: 27,
    pa2: [475, 3405, 475, 0],
    crc: 'absent',
    se: 'absent',
    warnings: [/no G85/, /no SE segment: the file may be truncated/],
  },
  'jof-sample': {
    serial: 'JOF',
    decimals: 2,
    currency: 1978,
    readAt: '2024-04-15T15:04:21',
    paidVends: t(143500, 423, 142450, 421),
    cashSales: t(128250, 382, 127200, 380),
    cashlessSales: t(15250, 41, 15250, 41),
    products: 36,
    pa2: [423, 143500, 421, 142450],
    crc: 'ok',
    g85: 'F66D',
    se: 'ok',
    warnings: [],
  },
  rhevendors: {
    serial: 'RHV0000000000',
    decimals: 2,
    currency: null,
    readAt: '2023-11-27T10:11:00',
    paidVends: t(586530, 9612, 586530, 9592),
    cashSales: t(312330, 5443, 312330, 5423),
    cashlessSales: t(274200, 4156, 274200, 4156),
    products: 18,
    pa2: [19135, 586530, 19114, 586530],
    crc: 'ok',
    g85: 'F4D0',
    se: 'mismatch',
    warnings: [/^line 370: SE says 349 segments but there are 369/],
  },
  sielaff: {
    serial: 'SIE90517939',
    decimals: 2,
    currency: 1978,
    readAt: '2023-08-21T17:53:47',
    paidVends: t(234850, 1666, 114400, 1088),
    cashSales: t(232950, 1659, 112900, 1083),
    cashlessSales: t(1900, 7, 1500, 5),
    products: 0,
    pa2: [0, 0, 0, 0],
    crc: 'absent',
    se: 'absent',
    warnings: [/no G85/, /no SE segment: the file may be truncated/],
  },
};

function checkFigures(name: Fixture, s: DexSummary): void {
  const e = EXPECTED[name];
  assert.equal(s.machine?.serial, e.serial, name);
  assert.equal(s.decimals, e.decimals, name);
  assert.equal(s.currency, e.currency, name);
  assert.equal(s.readAt, e.readAt, name);
  assert.deepEqual(s.paidVends, e.paidVends, name);
  assert.deepEqual(s.cashSales, e.cashSales, name);
  assert.deepEqual(s.cashlessSales, e.cashlessSales, name);
  assert.equal(s.products.length, e.products, name);
  const p = s.productTotals;
  assert.deepEqual([p.init.count, p.init.value, p.reset.count, p.reset.value], e.pa2, name);
  assert.equal(s.crc.status, e.crc, name);
  if (e.g85) assert.deepEqual(s.crc, { status: 'ok', expected: e.g85, found: e.g85 }, name);
  assert.equal(s.segmentCount.status, e.se, name);
  assert.equal(s.warnings.length, e.warnings.length, `${name}: ${JSON.stringify(s.warnings)}`);
  e.warnings.forEach((re, i) => assert.match(s.warnings[i]!, re, name));
}

/** `fn` throws a DexError at `line` with `code`. */
function refuses(fn: () => unknown, line: number, code: DexError['code'], message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DexError, String(e));
    assert.equal(e.line, line, e.message);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** The file with line `n` (1-based) replaced. */
function withLine(src: string, n: number, line: string): string {
  const lines = src.split('\n');
  lines[n - 1] = line;
  return lines.join('\n');
}

describe('DEX parser', () => {
  it('has a fixture for every file in the shared folder', () => {
    assert.deepEqual(readdirSync(fixtures).filter((f) => f.endsWith('.eva_dts')).sort(), FILES.map((f) => `${f}.eva_dts`));
  });

  for (const name of FILES) {
    it(`reads ${name}: machine, money, products, checks and warnings`, () => {
      const p = parseDex(text(name));
      checkFigures(name, p.summary);
      assert.equal(p.warnings, p.summary.warnings);
      // Segments carry their own line numbers.
      const lines = text(name).split('\n');
      for (const seg of p.segments) assert.ok(lines[seg.line - 1]!.startsWith(`${seg.id}*`) || lines[seg.line - 1] === seg.id, `${name} line ${seg.line}`);
    });
  }

  it('reads the cash figures of jof-sample', () => {
    const s = parseDex(text('jof-sample')).summary;
    assert.deepEqual(s.controlBoard, { serial: 'JSD006556', model: 'PCB8629', software: 'JSDAA014' });
    assert.equal(s.readAtFrom, 'EA3');
    assert.deepEqual(s.reads, { withReset: null, total: 3, resets: 4, lastReadAt: null });
    assert.deepEqual(s.testVends, t(0, 0, 0, 0));
    assert.deepEqual(s.freeVends, t(20, 2, 0, 0));
    // CA3: since reset first; bills since initialisation in CA310 (CA308 is empty).
    assert.deepEqual(s.cashIn, { reset: { total: 188110, toBox: 33900, toTubes: 66210, bills: 88000 }, init: { total: 214290, toBox: 34100, toTubes: 89190, bills: 91000 } });
    assert.deepEqual(s.cashDispensed, { reset: { dispensed: 60910, manual: 0 }, init: { dispensed: 63920, manual: 0 } });
    assert.equal(s.tubeValue, 25270);
    assert.deepEqual(s.coins, [
      { type: 1, value: 10, count: 38 },
      { type: 2, value: 20, count: 57 },
      { type: 3, value: 50, count: 91 },
      { type: 4, value: 100, count: 96 },
      { type: 5, value: 200, count: 48 },
    ]);
    // The tubes add up to CA15.
    assert.equal(s.coins.reduce((a, c) => a + c.value! * c.count!, 0), s.tubeValue);
    assert.deepEqual(s.products[0], { line: 36, selection: '10', price: 750, product: '0', sales: { init: { count: 4, value: 3000 }, reset: { count: 4, value: 3000 } }, lastSale: null });
  });

  it('reads the other layouts: CA17 and CA15 with extra elements, padded names, PA1 without a price, YYMMDD dates', () => {
    const r = parseDex(text('rhevendors')).summary;
    assert.deepEqual(r.coins, [
      { type: 0, value: 5, count: 160 },
      { type: 1, value: 10, count: 136 },
      { type: 2, value: 20, count: 52 },
      { type: 3, value: 50, count: 53 },
    ]);
    assert.equal(r.tubeValue, 5850);
    assert.deepEqual(r.overpay, { reset: 0, init: 0 });
    assert.equal(r.products[0]!.product, 'KAFFEE SCHWARZ BOHNE');
    assert.equal(r.products[17]!.price, null);
    assert.deepEqual(r.reads, { withReset: 2, total: null, resets: null, lastReadAt: '2023-10-26T13:42:00' });
    const sl = parseDex(text('sielaff')).summary;
    assert.deepEqual(sl.overpay, { reset: 0, init: 50 });
    assert.deepEqual(sl.cashDispensed, { reset: { dispensed: 34035, manual: 8740 }, init: { dispensed: 38115, manual: 8840 } });
    assert.equal(sl.sender, 'SIE9999999');
    assert.equal(sl.version, 'V1/1');
    const a = parseDex(text('animo')).summary;
    assert.equal(a.machine!.model, '3M3Aba', 'trailing spaces trimmed from names');
    assert.equal(a.readAtFrom, 'ID5');
    assert.deepEqual(a.products[0]!.sales, { init: { count: 412, value: 41200 }, reset: { count: 2655, value: null } });
  });

  it('reads CRLF, LF and mixed line endings alike', () => {
    for (const name of FILES) {
      const lf = parseDex(text(name)).summary;
      const crlf = parseDex(text(name).replace(/\n/g, '\r\n')).summary;
      let i = 0;
      const mixed = parseDex(text(name).replace(/\n/g, () => (i++ % 2 ? '\r\n' : '\n'))).summary;
      assert.deepEqual(crlf, lf, name);
      assert.deepEqual(mixed, lf, name);
    }
  });

  it('computes CRC-16/ARC', () => {
    const ascii = (s: string) => Buffer.from(s, 'latin1');
    assert.equal(crc16Arc(ascii('123456789')), 0xbb3d);
    assert.equal(crc16Arc(new Uint8Array(0)), 0);
    assert.equal(crc16Arc(ascii('56789'), crc16Arc(ascii('1234'))), 0xbb3d, 'continues an earlier result');
    // G85 of jof-sample: from ST through the CRLF before G85, every line ended CRLF.
    const lines = text('jof-sample').split('\n');
    const st = lines.findIndex((l) => l.startsWith('ST*'));
    const g = lines.findIndex((l) => l.startsWith('G85*'));
    assert.equal(crc16Arc(ascii(lines.slice(st, g).map((l) => `${l}\r\n`).join(''))), 0xf66d);
  });

  it('finds a changed figure through G85', () => {
    const src = text('jof-sample');
    const changed = src.replace('VA1*143500*423*', 'VA1*143600*423*');
    assert.notEqual(changed, src);
    const s = parseDex(changed).summary;
    assert.equal(s.paidVends!.init.value, 143600);
    assert.equal(s.crc.status, 'mismatch');
    assert.equal(s.crc.expected, 'F66D');
    assert.notEqual(s.crc.found, 'F66D');
    assert.match(s.crc.found!, /^[0-9A-F]{4}$/);
    assert.equal(s.warnings.length, 1);
    assert.match(s.warnings[0]!, /G85 check value "F66D" does not match the file/);
    // A damaged check value is a mismatch too.
    assert.equal(parseDex(src.replace('G85*F66D', 'G85*F66')).summary.crc.status, 'mismatch');
  });

  it('refuses malformed files, naming the line', () => {
    const jof = text('jof-sample');
    refuses(() => parseDex(''), 1, 'empty');
    refuses(() => parseDex('\r\n\n  \n'), 1, 'empty');
    // A byte outside 0x20..0x7E: an accented letter, a tab, a NUL.
    refuses(() => parseDex(withLine(jof, 5, 'ID4*2*1978*\u00e9')), 5, 'bad-character', /line 5: column 12: byte 0xE9/);
    refuses(() => parseDex(withLine(jof, 40, 'PA1*11\t*750*1')), 40, 'bad-character', /0x09/);
    refuses(() => parseDex(withLine(jof, 3, 'ID1*JOF\u0000')), 3, 'bad-character');
    refuses(() => parseDex(withLine(jof, 79, 'PA2*48*14400\u20ac')), 79, 'bad-character', /U\+20AC/);
    // Segment IDs: 2 to 4 upper-case letters or digits.
    refuses(() => parseDex(withLine(jof, 7, 'va1*1*2')), 7, 'bad-segment-id', /"va1"/);
    refuses(() => parseDex(withLine(jof, 12, 'VALUE*1*2')), 12, 'bad-segment-id');
    refuses(() => parseDex(withLine(jof, 12, 'V*1*2')), 12, 'bad-segment-id');
    refuses(() => parseDex(withLine(jof, 12, '*1*2')), 12, 'bad-segment-id');
    refuses(() => parseDex(withLine(jof, 12, ' VA1*1*2')), 12, 'bad-segment-id');
    // Numbers the parser reads must be unsigned integers: no sign, point, letters or padding.
    refuses(() => parseDex(withLine(jof, 9, 'VA1*143500*42x*142450*421')), 9, 'bad-number', /VA102 "42x" is not an unsigned integer/);
    refuses(() => parseDex(withLine(jof, 9, 'VA1*-5*423')), 9, 'bad-number', /VA101/);
    refuses(() => parseDex(withLine(jof, 9, 'VA1*1435.00*423')), 9, 'bad-number');
    refuses(() => parseDex(withLine(jof, 9, 'VA1*143500 *423')), 9, 'bad-number');
    refuses(() => parseDex(withLine(jof, 20, 'CA2*128250*382*127200*1e3')), 20, 'bad-number', /CA204/);
    refuses(() => parseDex(withLine(jof, 79, 'PA2*48*14,400*48*14400')), 79, 'bad-number', /PA202/);
    refuses(() => parseDex(withLine(jof, 5, 'ID4*two*1978')), 5, 'bad-number', /ID401/);
  });

  it('refuses files without ST, and oversized files', () => {
    // Where ST was expected, and what was there instead.
    refuses(() => parseDex('DXS*JOF0000000*VA*V0/6*1\nVA1*1*1*1*1\nDXE*1*1\n'), 2, 'no-st', /^line 2: no ST segment after DXS \(line 1\): found VA1 instead, and no ST further on$/);
    refuses(() => parseDex('DXS*JOF0000000*VA*V0/6*1\n'), 1, 'no-st', /^line 1: no ST segment after DXS: the file ends there$/);
    refuses(() => parseDex('MC5*Vendor\nDXS*JOF0000000*VA*V0/6*1\nSE*1*0001\n'), 3, 'no-st', /^line 3: no ST segment after DXS \(line 2\): found SE instead/);
    refuses(() => parseDex('\n\nVA1*1*1*1*1\n'), 3, 'no-st', /^line 3: no DXS or ST segment: found VA1 first, and no ST anywhere: it is not an EVA-DTS audit file$/);
    refuses(() => parseDex('hello, world\n'), 1, 'bad-segment-id');
    const big = `DXS*JOF0000000*VA*V0/6*1\nST*001*0001\n${'MA5*PADDING*0123456789\n'.repeat(Math.ceil(MAX_DEX_BYTES / 23))}`;
    assert.ok(big.length > MAX_DEX_BYTES);
    assert.throws(() => parseDex(big), (e: unknown) => e instanceof DexError && e.code === 'too-large' && e.line > 90000);
  });

  it('accepts what real machines do, with warnings', () => {
    const jof = text('jof-sample');
    // Vendor lines before DXS (as sielaff's MC5), trailing blank lines, missing trailing elements.
    const s = parseDex(`MC5*Vendor*Thing\n${jof}\n\n\n`).summary;
    assert.deepEqual(s.warnings, []);
    assert.equal(s.crc.status, 'ok');
    // No DXS at all; an empty line inside; a segment after DXE.
    const lines = jof.split('\n');
    const w = parseDex([...lines.slice(1, 10), '', ...lines.slice(10), 'ZZ9*1'].join('\n')).summary.warnings;
    assert.match(w[0]!, /^line 10 is empty$/);
    assert.match(w[1]!, /no DXS segment/);
    assert.match(w[2]!, /G85 check value/, 'the empty line is part of the checked bytes');
    assert.match(w[3]!, /ZZ9 after SE ignored/);
    assert.equal(w.length, 4);
    // A bad date is reported, not refused.
    const d = parseDex(withLine(jof, 6, 'ID5*20241315*150421')).summary;
    assert.equal(d.readAt, '2024-04-15T15:04:21', 'EA3 has the read time');
    assert.match(d.warnings[0]!, /^line 6: ID501 "20241315" is not a date/);
    // PA2 before any PA1.
    assert.match(parseDex(withLine(jof, 8, 'PA2*1*1*1*1')).summary.warnings[0]!, /^line 8: PA2 before any PA1 ignored/);
    // PA5: the last sale of a selection.
    const p5 = parseDex(withLine(jof, 38, 'PA5*20240414*0930*1')).summary;
    assert.equal(p5.products[0]!.lastSale, '2024-04-14T09:30:00');
  });

  it('drops impossible dates and times with a warning naming the segment, element and fault', () => {
    const jof = text('jof-sample');
    // Changing a line changes the G85 check value too: that warning is not the point here.
    const parse = (src: string): DexSummary => {
      const s = parseDex(src).summary;
      return { ...s, warnings: s.warnings.filter((w) => !w.startsWith('G85 check value')) };
    };
    // A machine whose clock was never set: EA3 says year 0; the read time comes from ID5 instead.
    const ea3 = parse(withLine(jof, 143, 'EA3**00000101*000000******3*4'));
    assert.equal(ea3.readAt, '2024-04-15T15:04:21');
    assert.equal(ea3.readAtFrom, 'ID5');
    assert.deepEqual(ea3.warnings, ['line 143: EA302 "00000101" is not a date: year 0 is not from 1970 to 2199; left out']);
    const neither = parse(withLine(withLine(jof, 143, 'EA3**00000101*000000**00000000*0000****3*4'), 6, 'ID5*00000101*000000'));
    assert.equal(neither.readAt, null);
    assert.equal(neither.readAtFrom, null);
    assert.equal(neither.reads!.lastReadAt, null);
    assert.deepEqual(neither.warnings, [
      'line 6: ID501 "00000101" is not a date: year 0 is not from 1970 to 2199; left out',
      'line 143: EA305 "00000000" is not a date: year 0 is not from 1970 to 2199; left out',
      'line 143: EA302 "00000101" is not a date: year 0 is not from 1970 to 2199; left out',
    ]);
    // Every date the parser reads (PA5 here), YYYYMMDD and YYMMDD.
    const date = (d: string, time = '0930'): { at: string | null; warnings: string[] } => {
      const s = parse(withLine(jof, 38, `PA5*${d}*${time}`));
      return { at: s.products[0]!.lastSale, warnings: s.warnings };
    };
    const bad: [string, string][] = [
      ['19691231', 'year 1969 is not from 1970 to 2199'],
      ['22000101', 'year 2200 is not from 1970 to 2199'],
      ['99991231', 'year 9999 is not from 1970 to 2199'],
      ['20240001', 'month 0 is not from 1 to 12'],
      ['20241301', 'month 13 is not from 1 to 12'],
      ['241301', 'month 13 is not from 1 to 12'],
      ['20240100', 'day 0 is not from 1 to 31'],
      ['20240132', 'day 32 is not from 1 to 31'],
      ['20240431', 'day 31 is not from 1 to 30'],
      ['20230229', 'day 29 is not from 1 to 28'],
      ['21000229', 'day 29 is not from 1 to 28'],
      ['230229', 'day 29 is not from 1 to 28'],
    ];
    for (const [d, why] of bad) assert.deepEqual(date(d), { at: null, warnings: [`line 38: PA501 "${d}" is not a date: ${why}; left out`] }, d);
    for (const d of ['2024-04-14', '2024041', '202404140', '2O240414', '+2024041']) assert.deepEqual(date(d), { at: null, warnings: [`line 38: PA501 "${d}" is not a date (YYMMDD or YYYYMMDD); left out`] }, d);
    assert.deepEqual(date('20240229'), { at: '2024-02-29T09:30:00', warnings: [] });
    assert.deepEqual(date('20000229'), { at: '2000-02-29T09:30:00', warnings: [] });
    assert.deepEqual(date('000229'), { at: '2000-02-29T09:30:00', warnings: [] });
    assert.deepEqual(date('700101'), { at: '1970-01-01T09:30:00', warnings: [] });
    assert.deepEqual(date('691231'), { at: '2069-12-31T09:30:00', warnings: [] });
    assert.deepEqual(date('21991231', '235959'), { at: '2199-12-31T23:59:59', warnings: [] });
    // A bad time keeps the date.
    const badTimes: [string, string][] = [
      ['2400', 'hour 24 is not from 0 to 23'],
      ['1260', 'minute 60 is not from 0 to 59'],
      ['123460', 'second 60 is not from 0 to 59'],
      ['12345', 'not HHMM or HHMMSS'],
      ['12:00', 'not HHMM or HHMMSS'],
    ];
    for (const [t, why] of badTimes) {
      assert.deepEqual(date('20240414', t), { at: '2024-04-14', warnings: [`line 38: PA502 "${t}" is not a time: ${why}; the date alone is kept`] }, t);
    }
  });

  it('refuses figures whose sum cannot be exact', () => {
    // Each PA2 figure is at most 15 digits; enough of them add up past 2^53-1, where a double stops counting exactly.
    const jof = text('jof-sample');
    const lines = jof.split('\n');
    const pa2 = lines.flatMap((l, i) => (l.startsWith('PA2*') ? [i] : []));
    for (const [k, i] of pa2.entries()) lines[i] = k < 10 ? 'PA2*999999999999999*999999999999999*0*0' : 'PA2*0*0*0*0';
    // Nine of them still add up exactly; the tenth does not.
    refuses(() => parseDex(lines.join('\n')), pa2[9]! + 1, 'bad-number', /^line \d+: PA201 "999999999999999" takes the sum over the selections past 2\^53-1 \(9007199254740991\)/);
    lines[pa2[9]!] = 'PA2*0*0*0*0';
    assert.equal(parseDex(lines.join('\n')).summary.productTotals.init.count, 9 * 999999999999999);
  });
});

for (const backend of BACKENDS) {
  describe(`DEX audits over the API: ${backend.name}`, function () {
    this.timeout(180000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let operator: string;
    let viewer: string;
    const machine = `dex${process.pid % 10000}${Math.floor(Math.random() * 1e6)}`;
    const ids = new Map<Fixture, number>();

    const auth = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
    const upload = (body: string | Buffer, token: string | undefined, query = '', contentType = 'text/plain') =>
      api.inject({ method: 'POST', url: `/audits${query}`, headers: { ...auth(token), 'content-type': contentType }, payload: body });
    const get = (url: string, token: string | undefined = viewer) => api.inject({ method: 'GET', url, headers: auth(token) });

    before(async () => {
      ({ b, commands, api } = await openApi(backend, [machine]));
      operator = (await createToken(b.db, 'dex operator', 'operator')).token;
      viewer = (await createToken(b.db, 'dex viewer', 'viewer')).token;
    });
    after(() => closeApi({ api, commands, b }));

    it('stores every fixture and answers with what it read', async () => {
      for (const [i, name] of FILES.entries()) {
        // Two as the machine's reads 1 and 2, as octet-stream; the others as loose uploads.
        const mine = name === 'jof-sample' || name === 'rhevendors';
        const r = await upload(bytes(name), operator, mine ? `?machine=${machine}&read=${i}` : '', mine ? 'application/octet-stream' : 'text/plain');
        assert.equal(r.statusCode, 201, `${name}: ${r.body}`);
        const body = r.json() as { id: number; duplicate: boolean; machine: string | null; crc: string; warnings: string[]; summary: DexSummary };
        assert.equal(body.duplicate, false);
        assert.equal(body.machine, mine ? machine : null);
        assert.equal(body.crc, EXPECTED[name].crc);
        assert.equal(r.headers['location'], `/audits/${body.id}`);
        checkFigures(name, body.summary);
        assert.deepEqual(body.warnings, body.summary.warnings);
        ids.set(name, body.id);
      }
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM audits'), FILES.length);
    });

    it("lists a machine's audits newest first, and shows one", async () => {
      const list = await get(`/machines/${machine}/audits`);
      assert.equal(list.statusCode, 200, list.body);
      const audits = (list.json() as { audits: { id: number; readNumber: number; serial: string; crc: string; readAt: string; source: string; warnings: string[]; paidVends: Totals }[] }).audits;
      assert.deepEqual(audits.map((a) => a.id), [ids.get('rhevendors'), ids.get('jof-sample')]);
      assert.deepEqual(audits.map((a) => a.readNumber), [3, 2]);
      assert.equal(audits[1]!.serial, 'JOF');
      assert.equal(audits[1]!.readAt, '2024-04-15T15:04:21.000Z');
      assert.equal(audits[1]!.source, 'upload');
      assert.deepEqual(audits[1]!.paidVends, EXPECTED['jof-sample'].paidVends);
      assert.equal(audits[0]!.warnings.length, 1);
      assert.equal((await get(`/machines/${machine}/audits?limit=1`)).json().audits.length, 1);
      assert.equal((await get(`/machines/${machine}/audits?limit=0`)).statusCode, 400);
      assert.equal((await get('/machines/nope/audits')).statusCode, 404);

      for (const name of FILES) {
        const r = await get(`/audits/${ids.get(name)}`);
        assert.equal(r.statusCode, 200, r.body);
        const a = r.json() as { id: number; machineId: string | null; serial: string; crc: string; receivedAt: string; summary: DexSummary };
        assert.equal(a.id, ids.get(name));
        assert.equal(a.serial, EXPECTED[name].serial);
        assert.equal(a.crc, EXPECTED[name].crc);
        assert.ok(Date.parse(a.receivedAt) > Date.now() - 600000);
        checkFigures(name, a.summary);
      }
      assert.equal((await get('/audits/999999999')).statusCode, 404);
      assert.equal((await get('/audits/abc')).statusCode, 400);
    });

    it('hands the file back byte for byte', async () => {
      for (const name of FILES) {
        const id = ids.get(name)!;
        const r = await get(`/audits/${id}/dex`);
        assert.equal(r.statusCode, 200);
        assert.match(String(r.headers['content-type']), /^text\/plain/);
        const who = name === 'jof-sample' || name === 'rhevendors' ? machine : EXPECTED[name].serial.replace(/ /g, '_');
        assert.equal(r.headers['content-disposition'], `attachment; filename="${who}-${id}.dex"`);
        assert.ok(r.rawPayload.equals(bytes(name)), name);
      }
      assert.equal((await get('/audits/999999999/dex')).statusCode, 404);
    });

    it('refuses malformed files with the line, and checks who and what', async () => {
      const bad = Buffer.concat([Buffer.from('DXS*JOF0000000*VA*V0/6*1\nST*001*0001\nID1*JOF\n'), Buffer.from([0x49, 0x44, 0x34, 0x2a, 0xc3, 0xa9, 0x0a])]);
      for (const contentType of ['text/plain', 'application/octet-stream', 'text/plain; charset=utf-8']) {
        const r = await upload(bad, operator, '', contentType);
        assert.equal(r.statusCode, 400, r.body);
        assert.deepEqual(r.json(), { error: 'malformed-dex', line: 4, message: 'line 4: column 5: byte 0xC3 is not printable ASCII (0x20 to 0x7E)' });
      }
      const numeric = await upload(withLine(text('jof-sample'), 9, 'VA1*1x'), operator);
      assert.equal(numeric.statusCode, 400);
      assert.equal(numeric.json().line, 9);
      const empty = await upload('', operator);
      assert.equal(empty.statusCode, 400, empty.body);
      assert.equal(empty.json().line, 1);
      assert.equal((await upload(text('jof-sample'), viewer)).statusCode, 403);
      assert.equal((await upload(text('jof-sample'), undefined)).statusCode, 401);
      const unknown = await upload(text('jof-sample'), operator, '?machine=no-such-machine');
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json().error, 'unknown-machine');
      assert.equal((await upload(text('jof-sample'), operator, '?read=1')).statusCode, 400, 'a read number needs a machine');
      assert.equal((await upload(text('jof-sample'), operator, '?machine=x%20y')).statusCode, 400);
      assert.equal((await upload(JSON.stringify({ dex: 'x' }), operator, '', 'application/json')).statusCode, 400);
      const big = await upload(Buffer.alloc(MAX_DEX_BYTES + 1, 0x41), operator);
      assert.equal(big.statusCode, 413);
      assert.match(big.json().message, /large/);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM audits'), FILES.length, 'nothing stored');
    });

    it("stores a machine's read once", async () => {
      const again = await upload(bytes('jof-sample'), operator, `?machine=${machine}&read=2`);
      assert.equal(again.statusCode, 200, again.body);
      assert.deepEqual([again.json().id, again.json().duplicate], [ids.get('jof-sample'), true]);
      // The machine sending its read 7 twice (the MQTT path calls storeAudit).
      const first = await storeAudit(b.db, { machineId: machine, source: 'machine', readNumber: 7, text: text('animo') });
      const second = await storeAudit(b.db, { machineId: machine, source: 'machine', readNumber: 7, text: text('animo') });
      assert.deepEqual([first.duplicate, second.duplicate, second.id], [false, true, first.id]);
      assert.deepEqual(second.warnings, []);
      // A different file under the same read number keeps the first and says so.
      const other = await storeAudit(b.db, { machineId: machine, source: 'machine', readNumber: 7, text: text('sielaff') });
      assert.equal(other.id, first.id);
      assert.match(other.warnings.at(-1)!, /stored before with different content/);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM audits WHERE machine_id = $1 AND read_number = 7', [machine]), 1);
      // Without a read number every file is a new audit.
      const loose1 = await storeAudit(b.db, { machineId: machine, source: 'upload', text: text('animo') });
      const loose2 = await storeAudit(b.db, { machineId: machine, source: 'upload', text: text('animo') });
      assert.notEqual(loose1.id, loose2.id);
      const stored = await getAudit(b.db, first.id);
      assert.equal(stored?.source, 'machine');
      assert.equal(stored?.readNumber, 7);
      assert.equal((await listAudits(b.db, machine, 100)).length, 5);
      await assert.rejects(storeAudit(b.db, { machineId: 'no-such-machine', source: 'machine', text: text('animo') }), (e: unknown) => e instanceof AuditError && e.code === 'unknown-machine');
      await assert.rejects(storeAudit(b.db, { source: 'upload', text: 'ST*001\nVA1*x' }), (e: unknown) => e instanceof DexError && e.line === 2);
    });

    it('stores a file whose clock was never set (dates of year 0)', async () => {
      const jof = text('jof-sample');
      const unset = withLine(withLine(withLine(jof, 143, 'EA3**00000101*000000**00000101*0000****3*4'), 6, 'ID5*00000101*000000'), 38, 'PA5*00000101*0000');
      const r = await storeAudit(b.db, { machineId: machine, source: 'machine', readNumber: 40, text: unset });
      assert.equal(r.duplicate, false);
      assert.equal(r.summary.readAt, null);
      assert.equal(r.warnings.filter((w) => /year 0 is not from 1970 to 2199/.test(w)).length, 4);
      const stored = await getAudit(b.db, r.id);
      assert.equal(stored?.readAt, null);
      assert.equal(stored?.summary.products[0]!.lastSale, null);
    });

    it('describes the audit routes in OpenAPI', async () => {
      const doc = (await get('/docs/json', undefined)).json() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>> };
      for (const p of ['/audits', '/audits/{id}', '/audits/{id}/dex', '/machines/{id}/audits']) assert.ok(doc.paths[p], `${p} documented`);
      assert.deepEqual(Object.keys(doc.paths['/audits']!['post']!.requestBody!.content).sort(), ['application/octet-stream', 'text/plain']);
    });
  });
}
