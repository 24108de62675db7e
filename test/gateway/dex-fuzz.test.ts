/**
 * The DEX parser against mutated real files: digits flipped in dates and
 * times and anywhere, truncation, NUL and other bytes inserted, huge
 * numbers, lines dropped, repeated or swapped. Each outcome is either a
 * DexError or a summary PostgreSQL takes as it is: dates that are dates,
 * integers JavaScript and bigint hold exactly, text without NUL. And each
 * summary is stored with storeAudit on PGlite, its dates cast to
 * timestamps, to prove the store takes it.
 *
 * Seeded and replayable: DEX_FUZZ_SEED and DEX_FUZZ_CASES change the run;
 * a failure names the seed, the case and its mutations.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DexError, parseDex, type DexSummary } from '../../gateway/dex/parse.js';
import { storeAudit } from '../../gateway/dex/store.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { prng } from '../lib/assert.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = join(root, '../shared/fixtures/dex');
const FILES = ['animo', 'animo2', 'jof-sample', 'rhevendors', 'sielaff'].map((f) => readFileSync(join(fixtures, `${f}.eva_dts`)).toString('latin1'));

const SEED = Number(process.env['DEX_FUZZ_SEED'] ?? 0x5eed);
const CASES = Number(process.env['DEX_FUZZ_CASES'] ?? 600);


type Rng = () => number;
const pick = <T>(r: Rng, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
const digits = (r: Rng, n: number): string => Array.from({ length: n }, () => String(Math.floor(r() * 10))).join('');

/** Elements (line, element index) whose text matches `re`. */
function elements(text: string, re: RegExp): [number, number][] {
  const out: [number, number][] = [];
  text.split('\n').forEach((line, l) => line.replace(/\r$/, '').split('*').forEach((e, i) => i > 0 && re.test(e) && out.push([l, i])));
  return out;
}

function replaceElement(text: string, at: [number, number], f: (old: string) => string): string {
  const lines = text.split('\n');
  const cr = lines[at[0]]!.endsWith('\r');
  const parts = lines[at[0]]!.replace(/\r$/, '').split('*');
  parts[at[1]] = f(parts[at[1]]!);
  lines[at[0]] = parts.join('*') + (cr ? '\r' : '');
  return lines.join('\n');
}

function flipDigits(r: Rng, s: string): string {
  const c = s.split('');
  for (let k = 1 + Math.floor(r() * 3); k > 0; k--) c[Math.floor(r() * c.length)] = String(Math.floor(r() * 10));
  return c.join('');
}

const MUTATIONS: { name: string; apply(r: Rng, text: string): string }[] = [
  {
    name: 'date digits',
    apply: (r, t) => {
      const at = elements(t, /^(\d{6}|\d{8})$/);
      return at.length === 0 ? t : replaceElement(t, pick(r, at), (d) => (r() < 0.3 ? pick(r, ['00000101', '00000000', '99999999', '20230229', '21000229', '000000', '991399', '19691231']) : flipDigits(r, d)));
    },
  },
  {
    name: 'time digits',
    apply: (r, t) => {
      const at = elements(t, /^(\d{4}|\d{6})$/);
      return at.length === 0 ? t : replaceElement(t, pick(r, at), (d) => (r() < 0.3 ? pick(r, ['2400', '9999', '126000', '235960', '12345']) : flipDigits(r, d)));
    },
  },
  {
    name: 'huge number',
    apply: (r, t) => {
      const at = elements(t, /^\d+$/);
      return at.length === 0 ? t : replaceElement(t, pick(r, at), () => (r() < 0.5 ? '999999999999999' : digits(r, 1 + Math.floor(r() * 40))));
    },
  },
  {
    name: 'any digit',
    apply: (r, t) => {
      const at: number[] = [];
      for (let i = 0; i < t.length; i++) if (t[i]! >= '0' && t[i]! <= '9') at.push(i);
      if (at.length === 0) return t;
      const i = pick(r, at);
      return t.slice(0, i) + String(Math.floor(r() * 10)) + t.slice(i + 1);
    },
  },
  { name: 'truncate', apply: (r, t) => t.slice(0, Math.floor(r() * t.length)) },
  {
    name: 'insert byte',
    apply: (r, t) => {
      const i = Math.floor(r() * (t.length + 1));
      return t.slice(0, i) + pick(r, ['\u0000', '\u0000\u0000', '\r', '\t', '\u007f', '\u00e9', '\u20ac', '\ud800', '*', '**', '\n', ' ']) + t.slice(i);
    },
  },
  {
    name: 'lines',
    apply: (r, t) => {
      const lines = t.split('\n');
      const i = Math.floor(r() * lines.length);
      const j = Math.floor(r() * lines.length);
      const k = r();
      if (k < 0.4) lines.splice(i, 1);
      else if (k < 0.7) lines.splice(i, 0, lines[j]!);
      else [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return lines.join('\n');
    },
  },
  { name: 'no ST', apply: (_r, t) => t.replace(/^ST\*[^\n]*\n/m, '') },
];

const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2}))?$/;

/** Why `s` is not a date or date-time PostgreSQL and a reader would take, or undefined. */
function badDate(s: string): string | undefined {
  const m = DATE.exec(s);
  if (!m) return `"${s}" is not YYYY-MM-DD[THH:MM:SS]`;
  const [y, mo, d, h, mi, se] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as [number, number, number, number, number, number];
  if (y < 1970 || y > 2199) return `"${s}": year out of range`;
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d || t.getUTCHours() !== h || t.getUTCMinutes() !== mi || t.getUTCSeconds() !== se) return `"${s}" is not a real date and time`;
  return undefined;
}

/** Every problem PostgreSQL (or an exact reader) would have with the summary. */
function problems(s: DexSummary): string[] {
  const out: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) out.push(`${path}: ${v} is not an integer held exactly (so not within bigint either)`);
    } else if (typeof v === 'string') {
      if (v.includes('\u0000')) out.push(`${path}: holds NUL`);
      if (!v.isWellFormed()) out.push(`${path}: lone surrogate`);
    } else if (Array.isArray(v)) {
      v.forEach((x: unknown, i) => walk(x, `${path}[${i}]`));
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
    } else if (v !== null && typeof v !== 'boolean') {
      out.push(`${path}: ${typeof v}`);
    }
  };
  walk(s, 'summary');
  for (const [path, d] of dates(s)) {
    const why = badDate(d);
    if (why) out.push(`${path}: ${why}`);
  }
  return out;
}

function dates(s: DexSummary): [string, string][] {
  const out: [string, string | null][] = [
    ['readAt', s.readAt],
    ['reads.lastReadAt', s.reads?.lastReadAt ?? null],
    ...s.products.map((p, i): [string, string | null] => [`products[${i}].lastSale`, p.lastSale]),
  ];
  return out.filter((x): x is [string, string] => x[1] !== null);
}

describe('DEX parser under fuzzing (mutated real files)', function () {
  this.timeout(120000);
  let db: Db;

  before(async () => {
    db = await openDb();
    await migrate(db);
  });
  after(async () => {
    await db?.close();
  });

  it(`either refuses with a DexError or reads what the store takes (seed ${SEED}, ${CASES} cases)`, async () => {
    const r = prng(SEED);
    const outcomes = { parsed: 0, refused: 0, warnedDates: 0 };
    for (let c = 0; c < CASES; c++) {
      const applied: string[] = [];
      let text = pick(r, FILES);
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
        const m = pick(r, MUTATIONS);
        applied.push(m.name);
        text = m.apply(r, text);
      }
      const where = `DEX_FUZZ_SEED=${SEED} case ${c} (${applied.join(', ')})`;
      let summary: DexSummary;
      try {
        summary = parseDex(text).summary;
      } catch (e) {
        assert.ok(e instanceof DexError, `${where}: threw ${String(e)}`);
        outcomes.refused++;
        continue;
      }
      outcomes.parsed++;
      if (summary.warnings.some((w) => /is not a date|is not a time/.test(w))) outcomes.warnedDates++;
      assert.deepEqual(problems(summary), [], where);
      try {
        await storeAudit(db, { source: 'upload', text });
        const ds = dates(summary).map(([, d]) => d);
        await db.query('SELECT unnest($1::text[])::timestamp', [ds]);
      } catch (e) {
        assert.fail(`${where}: the store refused it: ${(e as Error).message}`);
      }
    }
    // The run exercises both outcomes, and the date checks.
    assert.ok(outcomes.parsed > CASES / 5 && outcomes.refused > CASES / 20 && outcomes.warnedDates > CASES / 50, JSON.stringify(outcomes));
  });
});
