/** JSON with object keys in a fixed order: compares values that went through jsonb (which reorders keys). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * canonicalJson(a) === canonicalJson(b), without building either string when the two are equal as
 * values (the usual case: an alert evaluated again whose figures did not change). Equal as values
 * (the same primitives, lists of equal items, objects with the same own keys and equal values) implies
 * the same canonical text; anything else is decided by the texts themselves, so the answer is always
 * the comparison of the texts.
 */
export function sameCanonicalJson(a: unknown, b: unknown): boolean {
  return equalValues(a, b, 0) || canonicalJson(a) === canonicalJson(b);
}

/** Equal as values (true only when their canonical texts are equal); gives up (false) past 64 levels. */
function equalValues(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || depth > 64) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equalValues(a[i], b[i], depth + 1)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of ka) if (!Object.hasOwn(rb, k) || !equalValues(ra[k], rb[k], depth + 1)) return false;
  return true;
}

/** Text PostgreSQL cannot hold in text or jsonb: a NUL, or a UTF-16 surrogate without its partner. */
export function unstorable(s: string): boolean {
  return s.includes('\u0000') || !s.isWellFormed();
}

/** The text with what PostgreSQL cannot hold replaced by U+FFFD (for records of refusals, whose details quote input). */
export function storable(s: string): string {
  return unstorable(s) ? s.toWellFormed().replaceAll('\u0000', '\ufffd') : s;
}
