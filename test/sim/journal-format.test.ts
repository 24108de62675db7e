/**
 * docs/journal-format.md says what the journal's bytes are; the codec
 * (firmware/journal/records.ts) is what writes them. Every record type has
 * its row and its section in the document, and each section's field table
 * is the type's layout: the same fields at the same offsets with the same
 * types, so the two cannot drift apart.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  COIN_COUNT,
  CP_AUDIT,
  CP_CARD,
  CP_CLOCK,
  CP_COMMANDS,
  CP_COUNTER,
  CP_HEAD,
  CP_SETTING,
  CP_SLOT,
  CP_UPDATE,
  isMeta,
  layoutOf,
  R_CHECKPOINT,
  R_PAYOUT_DONE,
  RECORD_NAMES,
  size,
  type RecordType,
} from '../../firmware/journal/records.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const doc = readFileSync(`${root}docs/journal-format.md`, 'utf8');
const lines = doc.split('\n');
const hex = (type: number): string => `0x${type.toString(16).toUpperCase()}`;

/** The rows (offset, field, type) of the tables from `from` until the next heading. */
function tables(from: number): string[][][] {
  const out: string[][][] = [];
  let current: string[][] | undefined;
  for (let i = from + 1; i < lines.length && !lines[i]!.startsWith('#'); i++) {
    const line = lines[i]!;
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells[0] === 'offset' || cells[0] === 'offset in the entry' || cells[0]!.startsWith('---')) continue;
    if (!current) out.push((current = []));
    current.push(cells);
  }
  return out;
}

/** The layout as the document writes it: offset, field, type. */
function rows(t: RecordType): string[][] {
  return layoutOf(t).map((f) => [String(f.offset), f.name, f.kind === 'bytes' ? `${f.width} × u8` : f.kind]);
}

describe('docs/journal-format.md', () => {
  for (const type of Object.keys(RECORD_NAMES).map(Number)) {
    const name = RECORD_NAMES[type]!;
    it(`${hex(type)} ${name}: listed, and its payload as the codec lays it out`, () => {
      const row = lines.find((l) => l.startsWith(`| ${hex(type)} | ${name} |`));
      assert.ok(row, `the record types table has ${hex(type)} ${name}`);
      const cells = row.split('|').map((c) => c.trim());
      assert.equal(cells[3], isMeta(type) ? 'meta' : 'event');
      if (type !== R_CHECKPOINT) assert.ok(cells[4]!.startsWith(String(size(type))), `${name}: ${size(type)} payload bytes, not ${cells[4]}`);
      const heading = lines.findIndex((l) => l.startsWith(`#### ${hex(type)} ${name}`));
      assert.ok(heading >= 0, `a section for ${hex(type)} ${name}`);
      const found = tables(heading);
      const fields = rows(type);
      if (fields.length === 0) {
        assert.equal(found.length, 0, `${name} has no payload fields`);
        return;
      }
      assert.deepEqual(
        found[0]!.map((r) => r.slice(0, 3)),
        fields,
        `${name}: offset, field, type`,
      );
      if (type === R_PAYOUT_DONE) assert.deepEqual(found[1]!.map((r) => r.slice(0, 3)), rows(COIN_COUNT), 'payout-done: its entries');
    });
  }

  const sections: [string, RecordType][] = [
    ['CP_HEAD', CP_HEAD],
    ['CP_COUNTER', CP_COUNTER],
    ['CP_SLOT', CP_SLOT],
    ['CP_COMMANDS', CP_COMMANDS],
    ['CP_SETTING', CP_SETTING],
    ['CP_AUDIT', CP_AUDIT],
    ['CP_CLOCK', CP_CLOCK],
    ['CP_UPDATE', CP_UPDATE],
    ['CP_CARD', CP_CARD],
  ];
  for (const [name, t] of sections) {
    it(`the checkpoint's ${name}: its size and its fields as the codec lays them out`, () => {
      const heading = lines.findIndex((l) => l.startsWith(`#### ${name}:`));
      assert.ok(heading >= 0, `a section for ${name}`);
      assert.match(lines[heading]!, new RegExp(`, ${size(t)} bytes`), `${name} is ${size(t)} bytes`);
      assert.deepEqual(
        tables(heading)[0]!.map((r) => r.slice(0, 3)),
        rows(t),
        `${name}: offset, field, type`,
      );
    });
  }
});
