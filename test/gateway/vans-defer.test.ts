/**
 * GET /routes' choice of visits when the vans cannot do them all
 * (gateway/restock/vans.ts fitPrefix), on the bench's deterministic visits
 * (bench/lib/vans-defer.ts, so that code runs here too): what it keeps is
 * the most urgent visits (a prefix of the urgency order), every route holds
 * within a van's load and a day, it takes a few solves where the bisection
 * took a dozen, and it keeps about as many visits as the bisection did.
 */
import { strict as assert } from 'node:assert';
import { bisectPrefix, deferVisits } from '../../bench/lib/vans-defer.js';
import { haversineKm } from '../../gateway/restock/route.js';
import { dayKm, fitPrefix, unitsOf, type VansRequest } from '../../gateway/restock/vans.js';

describe('routes: the visits kept when many wait', () => {
  const { depot, visits } = deferVisits(120);
  const req: VansRequest = { depot, vans: 2, capacity: 300, hours: 8, speedKmh: 30, serviceMin: 10, days: 1 };

  it('keeps a prefix of the urgency order, each route within a van and a day, in a few solves', () => {
    const got = fitPrefix(req, visits);
    assert.ok(got.kept > 0 && got.kept < visits.length, `${got.kept} kept of ${visits.length}`);
    const planned = got.routes.flat().sort((a, b) => a - b);
    assert.deepEqual(planned, Array.from({ length: got.kept }, (_, i) => i), 'the first `kept` visits, each once');
    assert.ok(got.routes.length <= req.vans);
    for (const r of got.routes) {
      assert.ok(r.reduce((a, i) => a + unitsOf(visits[i]!, req.capacity), 0) <= req.capacity, 'a van load');
      let km = 0;
      let at = depot;
      for (const i of r) {
        km += haversineKm(at, visits[i]!.location);
        at = visits[i]!.location;
      }
      km += haversineKm(at, depot);
      assert.ok(km <= dayKm(req, r.length) + 1e-6, `a day: ${km.toFixed(1)} km for ${r.length} stops`);
    }
    const before = bisectPrefix(req, visits);
    assert.ok(got.solves < before.solves, `${got.solves} solves, the bisection ${before.solves}`);
    // The heuristics' noise either way, not a different answer.
    assert.ok(Math.abs(got.kept - before.kept) <= 2, `kept ${got.kept}, the bisection ${before.kept}`);
  });

  it('keeps everything when everything fits, and nothing when there are no vans', () => {
    const few = visits.slice(0, 5);
    const got = fitPrefix(req, few);
    assert.equal(got.kept, 5);
    assert.equal(got.solves, 1);
    assert.deepEqual(fitPrefix({ ...req, vans: 0 }, few).kept, 0);
  });
});
