/**
 * sameCanonicalJson (the alert engine's "did the figures change?") must
 * answer exactly as comparing the canonical texts does, whatever the values:
 * the fast path only ever says "equal" when the texts are equal.
 */
import { strict as assert } from 'node:assert';
import { canonicalJson, sameCanonicalJson } from '../../gateway/store/json.js';
import { rng } from '../lib/rng.js';

const LEAVES: unknown[] = [0, -0, 1, 1.5, NaN, Infinity, null, undefined, true, false, '', 'a', 'b', '0', 'null', '[]', '{}'];
const KEYS = ['a', 'b', 'c', '0', ''];

function value(r: () => number, depth: number): unknown {
  const x = r();
  if (depth >= 3 || x < 0.5) return LEAVES[Math.floor(r() * LEAVES.length)];
  if (x < 0.7) {
    const list: unknown[] = [];
    const n = Math.floor(r() * 3);
    for (let i = 0; i < n; i++) list.push(value(r, depth + 1));
    if (r() < 0.1) list.length += 1; // a hole
    return list;
  }
  if (x < 0.75) return new Date(0);
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 3);
  for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]!] = value(r, depth + 1);
  return o;
}

/** A copy with keys in another order (what a trip through jsonb does), sometimes changed a little. */
function variant(v: unknown, r: () => number): unknown {
  if (r() < 0.05) return value(r, 2);
  if (Array.isArray(v)) return v.map((x) => variant(x, r));
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).reverse()) out[k] = variant((v as Record<string, unknown>)[k], r);
    return out;
  }
  return v;
}

describe('sameCanonicalJson', () => {
  it('answers as comparing canonicalJson texts does, on 50,000 random pairs (equal, reordered, changed)', () => {
    const r = rng(16);
    let equal = 0;
    for (let i = 0; i < 50000; i++) {
      const a = value(r, 0);
      const b = r() < 0.7 ? variant(a, r) : value(r, 0);
      const expected = canonicalJson(a) === canonicalJson(b);
      if (expected) equal++;
      assert.equal(sameCanonicalJson(a, b), expected, `${canonicalJson(a)} against ${canonicalJson(b)}`);
    }
    // Both answers were tried many times.
    assert.ok(equal > 10000 && equal < 45000, `${equal} equal pairs`);
  });

  it('takes what only the texts make equal: NaN and null, a hole and undefined, an undefined list item and none', () => {
    assert.equal(sameCanonicalJson({ x: NaN }, { x: null }), true);
    assert.equal(sameCanonicalJson([undefined], []), true);
    assert.equal(sameCanonicalJson({ a: 1, b: [2, { c: 3 }] }, { b: [2, { c: 3 }], a: 1 }), true);
    assert.equal(sameCanonicalJson({ a: 1 }, { a: '1' }), false);
    assert.equal(sameCanonicalJson({ a: 1 }, { a: 1, b: undefined }), false);
    assert.equal(sameCanonicalJson([1, 2], { 0: 1, 1: 2 }), false);
  });
});
