/**
 * The fleet map's screen-grid clustering (gateway/dashboard/grid-clusters.ts),
 * in Node: close machines share a marker, far ones do not, none is lost, and
 * 10,000 machines on a map's view come to at most one marker per cell.
 */
import { strict as assert } from 'node:assert';
import { gridClusters, type OnScreen } from '../../gateway/dashboard/grid-clusters.js';
import { prng } from '../lib/assert.js';

describe('the fleet map clusters machines by screen cell', () => {
  it('puts machines a few pixels apart in one cluster and machines a cell apart in two', () => {
    const groups = gridClusters(
      [
        { item: 'a', x: 10, y: 10 },
        { item: 'b', x: 14, y: 18 },
        { item: 'c', x: 10 + 56, y: 10 },
        { item: 'd', x: 300, y: 200 },
      ],
      56,
    );
    assert.deepEqual(groups, [['a', 'b'], ['c'], ['d']]);
  });

  it('keeps 10,000 machines on a 560 x 350 px view to one marker per 56 px cell, every machine in exactly one', () => {
    const r = prng(18); // the same points every run
    const points: OnScreen<number>[] = Array.from({ length: 10000 }, (_, i) => ({ item: i, x: r() * 560, y: r() * 350 }));
    const groups = gridClusters(points, 56);
    // 10 x 7 cells (350 / 56 = 6.25, so 7 rows).
    assert.ok(groups.length <= 70, `${groups.length} markers`);
    assert.ok(groups.length >= 60, `${groups.length} markers: random points fill nearly every cell`);
    const all = groups.flat().sort((a, b) => a - b);
    assert.deepEqual(all, points.map((p) => p.item));
    // Each cluster's machines lie in one cell.
    for (const g of groups) {
      const cells = new Set(g.map((i) => `${Math.floor(points[i]!.x / 56)},${Math.floor(points[i]!.y / 56)}`));
      assert.equal(cells.size, 1);
    }
  });

  it('leaves out a point without a finite place and refuses a cell size that is not positive', () => {
    assert.deepEqual(gridClusters([{ item: 1, x: Number.NaN, y: 0 }, { item: 2, x: 1, y: Number.POSITIVE_INFINITY }, { item: 3, x: -5, y: -5 }], 56), [[3]]);
    assert.throws(() => gridClusters([], 0), RangeError);
    assert.throws(() => gridClusters([], Number.NaN), RangeError);
  });
});
