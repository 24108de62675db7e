/**
 * The change-maker's oracle for tests and benches: the fewest coins for every
 * amount up to `max`, each tube split into pieces of 1, 2, 4, ... coins (every
 * count up to the tube's is a sum of some), each piece taken at most once, in a
 * plain 0/1 min-count table (Infinity: not payable). Memory per amount, so
 * Node-side only as a reference, never the firmware's method.
 */
export function fewestTable(values: readonly number[], counts: readonly number[], max: number): number[] {
  const best = new Array<number>(max + 1).fill(Infinity);
  best[0] = 0;
  for (let t = 0; t < values.length; t++) {
    if (values[t]! === 0) continue;
    let left = counts[t]!;
    for (let piece = 1; left > 0; piece *= 2) {
      const k = Math.min(piece, left);
      left -= k;
      const w = k * values[t]!;
      for (let a = max; a >= w; a--) if (best[a - w]! + k < best[a]!) best[a] = best[a - w]! + k;
    }
  }
  return best;
}
