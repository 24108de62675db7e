/**
 * Screen-grid clustering for the fleet map (map.ts): points on screen (in
 * pixels at the map's zoom) fall into square cells `cell` pixels wide; each
 * cell holding any becomes one group. However many machines there are, the
 * map draws at most one marker per cell of the view (a 560 x 350 px map in
 * 56 px cells: about 70), so 10,000 machines stay readable. No DOM here:
 * the unit test runs it in Node.
 */
export interface OnScreen<T> {
  item: T;
  x: number;
  y: number;
}

/** The groups, in the order their first point came. */
export function gridClusters<T>(points: Iterable<OnScreen<T>>, cell: number): T[][] {
  if (!(cell > 0)) throw new RangeError(`cell must be positive: ${cell}`);
  const cells = new Map<string, T[]>();
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
    const key = `${Math.floor(p.x / cell)},${Math.floor(p.y / cell)}`;
    const group = cells.get(key);
    if (group) group.push(p.item);
    else cells.set(key, [p.item]);
  }
  return [...cells.values()];
}
