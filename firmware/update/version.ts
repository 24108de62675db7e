/**
 * Firmware versions: `MAJOR.MINOR.PATCH`, numbers only (docs/updates.md),
 * packed into one unsigned number that orders as the versions do, so the
 * journal stores a version in a u32 and a comparison is `<`.
 *
 * Fields are bounded to fit: major up to 255, minor and patch up to 4095.
 */

const MINOR = 0x1000;
const MAJOR = MINOR * MINOR;

/** The packed version, or -1 when `text` is not one (leading zeros, signs, spaces, out of range). */
export function parseVersion(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 3) return -1;
  let packed = 0;
  for (let i = 0; i < 3; i++) {
    const p = parts[i]!;
    if (p.length === 0 || p.length > 4 || (p.length > 1 && p.charCodeAt(0) === 0x30)) return -1;
    let n = 0;
    for (let j = 0; j < p.length; j++) {
      const c = p.charCodeAt(j) - 0x30;
      if (c < 0 || c > 9) return -1;
      n = n * 10 + c;
    }
    if (n >= (i === 0 ? 256 : MINOR)) return -1;
    packed = packed * MINOR + n;
  }
  return packed;
}

export function formatVersion(packed: number): string {
  return `${Math.floor(packed / MAJOR)}.${Math.floor(packed / MINOR) % MINOR}.${packed % MINOR}`;
}
