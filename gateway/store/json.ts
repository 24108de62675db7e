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

/** Text PostgreSQL cannot hold in text or jsonb: a NUL, or a UTF-16 surrogate without its partner. */
export function unstorable(s: string): boolean {
  return s.includes('\u0000') || !s.isWellFormed();
}

/** The text with what PostgreSQL cannot hold replaced by U+FFFD (for records of refusals, whose details quote input). */
export function storable(s: string): string {
  return unstorable(s) ? s.toWellFormed().replaceAll('\u0000', '\ufffd') : s;
}
