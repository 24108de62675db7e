/**
 * The lists the PostgreSQL store sends as parameters: arrayParam makes the
 * same text the driver makes (pg's prepareValue of a list), or leaves the
 * list to the driver, never anything else.
 */
import { strict as assert } from 'node:assert';
import { createRequire } from 'node:module';
import { arrayParam } from '../../gateway/store/db.js';
import { rng } from '../lib/rng.js';

const prepareValue = (createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (v: unknown) => unknown }).prepareValue;

const CHARS = ['a', 'Z', '0', '-', '_', ' ', ',', '{', '}', '"', '\\', "'", 'é', '\u{1F600}', 'N', 'U', 'L'];
const NUMBERS = [0, -0, 1, -7, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER, 1.5, 1e21, 1e-7, NaN, Infinity];

function item(r: () => number): unknown {
  const x = r();
  if (x < 0.45) {
    let s = '';
    const n = Math.floor(r() * 6);
    for (let i = 0; i < n; i++) s += CHARS[Math.floor(r() * CHARS.length)]!;
    return r() < 0.1 ? 'NULL' : s;
  }
  if (x < 0.9) return NUMBERS[Math.floor(r() * NUMBERS.length)]!;
  return [null, undefined, true, new Date(0), [1, 2], Buffer.from('x'), 5n][Math.floor(r() * 7)];
}

describe('array parameters for PostgreSQL', () => {
  it("are the driver's own text for lists of strings and numbers, and left to the driver otherwise (20,000 random lists)", () => {
    const r = rng(16);
    let made = 0;
    for (let i = 0; i < 20000; i++) {
      const list: unknown[] = [];
      const n = Math.floor(r() * 5);
      for (let j = 0; j < n; j++) list.push(item(r));
      const out = arrayParam(list);
      if (out === list) continue;
      made++;
      assert.equal(out, prepareValue(list), JSON.stringify(list));
    }
    assert.ok(made > 3000, `${made} lists made here`);
  });

  it('leaves everything that is not a list as it is', () => {
    for (const v of ['{"a"}', 1, null, undefined, true, new Date(0), Buffer.from('x'), { a: 1 }]) assert.equal(arrayParam(v), v);
    assert.equal(arrayParam([]), '{}');
    assert.equal(arrayParam(['vm-1', 'vm-2']), '{"vm-1","vm-2"}');
    assert.equal(arrayParam([3, 4]), '{"3","4"}');
  });
});
