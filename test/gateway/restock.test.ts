/**
 * Restocking: the forecast (synthetic sales histories with known rates and
 * known answers, zero sales, a lone sale smoothed), pick lists and van
 * totals, routes (exact answers on a line, the exact solver and the local
 * search against brute force), and the API on both stores (locations, pick
 * list, forecast, route, and the error answers), seeded with SQL.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { countsFromTimes, DAY_MS, exposureHours, forecastMachine, HOUR_MS, hourOfWeek, predictEmpty, slotRates, WEEK_HOURS } from '../../gateway/restock/forecast.js';
import { pickList, vanTotals } from '../../gateway/restock/picklist.js';
import { bruteForceRoute, haversineKm, localSearchRoute, planRoute, type Point, type RouteOptions } from '../../gateway/restock/route.js';
import { loadSalesCounts } from '../../gateway/restock/store.js';
import { ensureEventMonth, monthOf } from '../../gateway/store/event-partitions.js';
import { prng } from '../lib/assert.js';
import { closeApi, openApi, setTelemetry } from './api-harness.js';
import { BACKENDS, type Backend } from './backends.js';

/** Monday 3 June 2024, 08:00 UTC. */
const MONDAY_8 = Date.UTC(2024, 5, 3, 8);
const sum = (a: readonly number[]): number => a.reduce((s, x) => s + x, 0);

/** Two sales an hour (at :10 and :40), Monday to Friday 09:00-17:00 UTC, over the 28 days before `now`. */
function weekdayPattern(now: number): number[] {
  const times: number[] = [];
  for (let t = now - 28 * DAY_MS; t < now; t += HOUR_MS) {
    const d = new Date(t);
    if (d.getUTCDay() >= 1 && d.getUTCDay() <= 5 && d.getUTCHours() >= 9 && d.getUTCHours() < 17) times.push(t + 10 * 60000, t + 40 * 60000);
  }
  return times;
}

function within(actual: Date | null, expected: number, toleranceMin: number, what: string): void {
  assert.ok(actual, `${what}: an empty time`);
  const off = (actual.getTime() - expected) / 60000;
  assert.ok(Math.abs(off) <= toleranceMin, `${what}: ${actual.toISOString()} is ${off.toFixed(0)} min from ${new Date(expected).toISOString()}`);
}

describe('restocking: forecast', () => {
  const since = MONDAY_8 - 28 * DAY_MS;
  const exposure = exposureHours(since, MONDAY_8);

  it('numbers hours of the week from Monday 00:00 UTC and counts their exposure', () => {
    assert.equal(hourOfWeek(Date.UTC(2024, 5, 3, 0)), 0);
    assert.equal(hourOfWeek(MONDAY_8), 8);
    assert.equal(hourOfWeek(Date.UTC(2024, 5, 9, 23, 59)), 167, 'Sunday 23:59');
    assert.equal(hourOfWeek(0), 72, 'the epoch was a Thursday');
    assert.ok(exposure.every((e) => Math.abs(e - 4) < 1e-9), 'four of each hour in 28 days');
    const part = exposureHours(MONDAY_8 + 30 * 60000, MONDAY_8 + 150 * 60000);
    assert.deepEqual([part[8], part[9], part[10]], [0.5, 1, 0.5]);
    assert.equal(sum(part), 2);
  });

  it('puts the empty time where a weekday 9-17 pattern says, across nights and the weekend', () => {
    const c = countsFromTimes(weekdayPattern(MONDAY_8), since, MONDAY_8);
    assert.equal(sum(c), 320);
    const run = (qty: number, from: number, others = false) =>
      forecastMachine({
        slots: [{ code: 'A1', qty, capacity: 200 }],
        sales: new Map(others ? [['A1', c], ['B1', c], ['C1', c]] : [['A1', c]]),
        exposure,
        from: new Date(from),
        now: new Date(from),
      })[0]!;
    for (const others of [false, true]) {
      // 5 sales: 09:10, 09:40, 10:10, 10:40, 11:10 (at 2 an hour from 9:00 a steady rate says 11:30).
      within(run(5, MONDAY_8, others).emptyAt, Date.UTC(2024, 5, 3, 11, 20), 20, `5 from Monday 8:00 (others ${others})`);
      // 20: 16 on Monday, none at night, 4 on Tuesday morning.
      within(run(20, MONDAY_8, others).emptyAt, Date.UTC(2024, 5, 4, 11), 30, `20 from Monday 8:00 (others ${others})`);
      // 100: 80 in the week, none at the weekend, 16 next Monday, 4 on Tuesday (the smoothed nights and
      // weekend sell a little: about 1.5% over eight days, so a little early).
      within(run(100, MONDAY_8, others).emptyAt, Date.UTC(2024, 5, 11, 11), 120, `100 from Monday 8:00 (others ${others})`);
      // From Saturday morning, 3 items last the weekend: Monday's third sale is at 10:10.
      const sat = Date.UTC(2024, 5, 8, 8);
      const f = run(3, sat, others);
      within(f.emptyAt, Date.UTC(2024, 5, 10, 10, 10), 120, `3 from Saturday 8:00 (others ${others})`);
      assert.ok(f.emptyAt!.getTime() > Date.UTC(2024, 5, 10, 0), 'not before Monday');
      const rate = run(5, MONDAY_8, others).ratePerDay;
      assert.ok(Math.abs(rate / (80 / 7) - 1) < 0.06, `rate ${rate} per day, 80/7 observed`);
    }
  });

  it('predicts nothing for a slot that never sold, and now for an empty one', () => {
    const f = forecastMachine({
      slots: [
        { code: 'A1', qty: 3, capacity: 10 },
        { code: 'A2', qty: 0, capacity: 10 },
        { code: 'A3', qty: 4, capacity: 10, fault: true },
      ],
      sales: new Map([['A3', countsFromTimes([MONDAY_8 - 3 * HOUR_MS], since, MONDAY_8)]]),
      exposure,
      from: new Date(MONDAY_8 - HOUR_MS),
      now: new Date(MONDAY_8),
    });
    assert.deepEqual(f[0], { slot: 'A1', product: null, qty: 3, capacity: 10, fault: false, sales: 0, ratePerDay: 0, emptyAt: null, daysLeft: null });
    assert.equal(f[1]!.emptyAt?.getTime(), MONDAY_8 - HOUR_MS, 'empty since it reported');
    assert.equal(f[1]!.daysLeft, 0);
    assert.equal(f[2]!.emptyAt, null, 'out of service: it sells nothing until fixed');
    assert.ok(f[2]!.ratePerDay > 0 && f[2]!.fault);
  });

  it('smooths a lone sale instead of making a spike of its hour', () => {
    const lone = countsFromTimes([MONDAY_8 - 13 * DAY_MS + 2.5 * HOUR_MS], since, MONDAY_8);
    const h = lone.indexOf(1);
    // The other slots sell one an hour, every hour.
    const flat = countsFromTimes(Array.from({ length: 28 * 24 }, (_, i) => since + i * HOUR_MS + 60000), since, MONDAY_8);
    for (const [others, bound] of [[flat, 2.1], [new Array<number>(WEEK_HOURS).fill(0), 8]] as const) {
      const r = slotRates(lone, others, exposure);
      const mean = sum(r) / WEEK_HOURS;
      assert.ok(Math.abs((mean * 24 * 28) / 1 - 1) < 0.05, `about one sale in 28 days: ${mean * 24 * 28}`);
      assert.ok(r[h]! / mean <= bound, `its hour at ${(r[h]! / mean).toFixed(2)} x the mean (raw: 168 x)`);
      assert.ok(Math.min(...r) > 0, 'and the other hours are not zero');
    }
    // So a slot with one item does not "run out" at that hour next week: the prediction is spread over weeks.
    const f = forecastMachine({ slots: [{ code: 'A1', qty: 1 }], sales: new Map([['A1', lone], ['B1', flat]]), exposure, from: new Date(MONDAY_8), now: new Date(MONDAY_8) })[0]!;
    assert.ok(f.daysLeft! > 7, `days left ${f.daysLeft}`);
  });

  it('works rates out to the last bit as the formulas written with map and reduce do', () => {
    // The formulas as first written (array methods), the reference: forecast.ts's loops must give the same doubles.
    const shrinkRef = (n: readonly number[], e: readonly number[], prior: readonly number[], alpha: number): number[] =>
      n.map((x, i) => (prior[i]! <= 0 ? (e[i]! > 0 ? x / e[i]! : 0) : (alpha + x) / (alpha / prior[i]! + e[i]!)));
    const shapeRef = (r: readonly number[], e: readonly number[]): number[] | undefined => {
      const es = sum(e);
      const m = es > 0 ? r.reduce((a, x, i) => a + x * e[i]!, 0) / es : 0;
      return m > 0 ? r.map((x) => x / m) : undefined;
    };
    const separableRef = (n: readonly number[], e: readonly number[], alpha: number): number[] | undefined => {
      const ns = sum(n);
      const es = sum(e);
      if (ns <= 0 || es <= 0) return undefined;
      const mean = ns / es;
      const dc = new Array<number>(7).fill(0), de = new Array<number>(7).fill(0), hc = new Array<number>(24).fill(0), he = new Array<number>(24).fill(0);
      for (let h = 0; h < WEEK_HOURS; h++) {
        dc[Math.floor(h / 24)]! += n[h]!;
        de[Math.floor(h / 24)]! += e[h]!;
        hc[h % 24]! += n[h]!;
        he[h % 24]! += e[h]!;
      }
      const day = shrinkRef(dc, de, new Array<number>(7).fill(mean), alpha);
      const hour = shrinkRef(hc, he, new Array<number>(24).fill(mean), alpha);
      return shapeRef(Array.from({ length: WEEK_HOURS }, (_, h) => (day[Math.floor(h / 24)]! / mean) * (hour[h % 24]! / mean)), e);
    };
    const seriesRef = (n: readonly number[], e: readonly number[], alpha: number, shape?: readonly number[]): number[] => {
      const ns = sum(n);
      const es = sum(e);
      if (ns <= 0 || es <= 0) return new Array<number>(WEEK_HOURS).fill(0);
      const sh = shape ?? separableRef(n, e, alpha)!;
      return shrinkRef(n, e, sh.map((x) => (ns / es) * x), alpha);
    };
    const slotRef = (n: readonly number[], others: readonly number[], e: readonly number[], alpha = 1): number[] => seriesRef(n, e, alpha, shapeRef(seriesRef(others, e, alpha), e));
    const r = prng(17);
    for (let k = 0; k < 200; k++) {
      // Sparse and dense counts, whole and part windows (a machine provisioned within it), some slots or others silent.
      const density = [0, 0.05, 0.5, 3][k % 4]!;
      const counts = (): number[] => Array.from({ length: WEEK_HOURS }, () => (r() < Math.min(1, density) ? Math.floor(r() * (1 + density * 4)) : 0));
      const own = k % 7 === 0 ? new Array<number>(WEEK_HOURS).fill(0) : counts();
      const others = k % 5 === 0 ? new Array<number>(WEEK_HOURS).fill(0) : counts();
      const e = k % 3 === 0 ? exposureHours(MONDAY_8 - r() * 20 * DAY_MS, MONDAY_8) : exposure;
      const alpha = k % 2 === 0 ? 1 : 0.5 + r();
      assert.deepEqual(slotRates(own, others, e, alpha), slotRef(own, others, e, alpha), `case ${k}`);
    }
  });

  it('walks a steady rate exactly, months ahead included', () => {
    const r = new Array<number>(WEEK_HOURS).fill(0.01);
    assert.equal(predictEmpty(r, 100, MONDAY_8), MONDAY_8 + 10000 * HOUR_MS);
    assert.equal(predictEmpty(r, 1.68, MONDAY_8), MONDAY_8 + 168 * HOUR_MS, 'exactly a week');
    assert.equal(predictEmpty(new Array<number>(WEEK_HOURS).fill(0), 5, MONDAY_8), null);
    // One sale an hour, every hour, for 28 days: 24 a day, 12 items last 12 hours.
    const every = countsFromTimes(Array.from({ length: 28 * 24 }, (_, i) => since + i * HOUR_MS + 60000), since, MONDAY_8);
    const f = forecastMachine({ slots: [{ code: 'A1', qty: 12 }], sales: new Map([['A1', every]]), exposure, from: new Date(MONDAY_8), now: new Date(MONDAY_8) })[0]!;
    assert.ok(Math.abs(f.ratePerDay - 24) < 1e-9, String(f.ratePerDay));
    assert.ok(Math.abs(f.daysLeft! - 0.5) < 1e-9, String(f.daysLeft));
  });
});

describe('restocking: pick lists', () => {
  it('loads capacity minus stock per slot, flags faults, and totals per product for the van', () => {
    const a = pickList([
      { code: 'B1', product: 'Cola', qty: 2, capacity: 8, sku: 501 },
      { code: 'A1', product: 'Chips', qty: 0, capacity: 10 },
      { code: 'A2', product: 'Chips', qty: 12, capacity: 10 },
      { code: 'C1', product: 'Gum', qty: 1, capacity: 6, fault: true },
      { code: 'C2', product: 'Mints', qty: 1 },
    ]);
    assert.deepEqual(
      a.lines.map((l) => [l.slot, l.load, l.fault]),
      [
        ['A1', 10, false],
        ['A2', 0, false],
        ['B1', 6, false],
        ['C1', 5, true],
        ['C2', 0, false],
      ],
    );
    assert.equal(a.units, 21);
    assert.deepEqual(a.faults, ['C1']);
    assert.deepEqual(a.capacityUnknown, ['C2']);
    const b = pickList([
      { code: 'A1', product: 'Coca-Cola 330ml', qty: 1, capacity: 4, sku: 501 },
      { code: 'A2', product: 'Chips', qty: 5, capacity: 10 },
    ]);
    const t = vanTotals([
      { machine: 'm1', list: a },
      { machine: 'm2', list: b },
    ]);
    assert.deepEqual(
      t.map((x) => [x.key, x.units, x.slots, x.machines]),
      [
        ['product:Chips', 15, 2, 2],
        ['sku:501', 9, 2, 2],
        ['product:Gum', 5, 1, 1],
      ],
    );
    assert.equal(t.find((x) => x.key === 'sku:501')!.product, 'Cola', 'same SKU, one line, whatever each machine calls it');
  });

  it("names a slot by its catalog product and loads the van by the catalog's SKU; the machine's label otherwise", () => {
    const hostile = '<img src=x onerror="alert(1)">&amp; "Crisps" ';
    const m1 = pickList(
      [
        { code: 'A1', product: 'chips 40g', qty: 2, capacity: 10, sku: 7 },
        { code: 'A2', product: 'Cola', qty: 1, capacity: 6 },
        { code: 'B1', qty: 0, capacity: 4 },
      ],
      new Map([['A1', { sku: 'CHIPS-40', name: hostile }], ['Z9', { sku: 'GONE', name: 'Not a slot it reports' }]]),
    );
    assert.deepEqual(
      m1.lines.map((l) => [l.slot, l.name, l.catalogSku, l.product]),
      [
        ['A1', hostile, 'CHIPS-40', 'chips 40g'],
        ['A2', 'Cola', null, 'Cola'],
        ['B1', null, null, null],
      ],
    );
    // Another machine calls the same catalog product something else, under another item number.
    const m2 = pickList([{ code: 'C3', product: 'Crisps', qty: 0, capacity: 5, sku: 99 }], new Map([['C3', { sku: 'CHIPS-40', name: hostile }]]));
    const t = vanTotals([
      { machine: 'm1', list: m1 },
      { machine: 'm2', list: m2 },
    ]);
    assert.deepEqual(
      t.map((x) => [x.key, x.name, x.catalogSku, x.units, x.slots, x.machines]),
      [
        ['catalog:CHIPS-40', hostile, 'CHIPS-40', 13, 2, 2],
        ['product:Cola', 'Cola', null, 5, 1, 1],
        ['unnamed', null, null, 4, 1, 1],
      ],
    );
  });
});

describe('restocking: routes', () => {
  it('measures great-circle distances', () => {
    assert.ok(Math.abs(haversineKm({ lat: 0, lon: 0 }, { lat: 1, lon: 0 }) - 111.195) < 0.01);
    assert.ok(Math.abs(haversineKm({ lat: 51.5074, lon: -0.1278 }, { lat: 48.8566, lon: 2.3522 }) - 343.5) < 1, 'London to Paris');
    assert.equal(haversineKm({ lat: 10, lon: 20 }, { lat: 10, lon: 20 }), 0);
  });

  it('answers points on a line exactly', () => {
    const line = (k: number): Point => ({ lat: 39.7 + k * 0.01, lon: -105 });
    const step = haversineKm(line(0), line(1));
    const shuffled = [5, 2, 7, 1, 4, 3, 6].map(line);
    const byLat = (r: { order: number[] }) => r.order.map((i) => shuffled[i]!.lat);
    for (const plan of [planRoute, localSearchRoute]) {
      // From a depot at one end: out along the line and back (any stop may be on the way back).
      const there = plan(shuffled, { depot: line(0) });
      assert.ok(Math.abs(there.totalKm - 14 * step) < 1e-6);
      assert.deepEqual(byLat(plan(shuffled, { depot: line(0), returnToDepot: false })), [1, 2, 3, 4, 5, 6, 7].map((k) => line(k).lat));
      assert.ok(Math.abs(sum(there.legsKm) + there.returnKm - there.totalKm) < 1e-9);
      // One way only.
      assert.ok(Math.abs(plan(shuffled, { depot: line(0), returnToDepot: false }).totalKm - 7 * step) < 1e-6);
      // A depot in the middle, one way: to the nearer end first, then across to the other (stops 2 and 3 may come on either pass).
      const mid = plan(shuffled, { depot: line(3.4), returnToDepot: false });
      const m = byLat(mid);
      assert.equal(m[6], line(7).lat, 'ends at the far end');
      assert.ok(m.indexOf(line(1).lat) < m.indexOf(line(4).lat), 'the near end before the far side');
      assert.ok(Math.abs(mid.totalKm - (2.4 + 6) * step) < 1e-6);
      // No depot: an open path from one end to the other.
      const free = plan(shuffled, {});
      assert.ok(Math.abs(free.totalKm - 6 * step) < 1e-6);
      assert.equal(free.legsKm[0], 0);
      const l = byLat(free);
      assert.deepEqual(l[0]! < l[6]! ? l : [...l].reverse(), [...l].sort((x, y) => x - y), 'from one end to the other');
    }
    assert.deepEqual(planRoute([], { depot: line(0) }), { order: [], legsKm: [], returnKm: 0, totalKm: 0 });
    assert.deepEqual(planRoute([line(1)], {}).order, [0]);
  });

  it('is exact up to 8 stops, and its local search is within the bound stated against brute force', () => {
    const rnd = prng(20240603);
    const where = (): Point => ({ lat: 39.6 + rnd() * 0.3, lon: -105.2 + rnd() * 0.4 });
    const modes: [string, (d: Point) => RouteOptions][] = [
      ['back to the depot', (d) => ({ depot: d })],
      ['one way from the depot', (d) => ({ depot: d, returnToDepot: false })],
      ['no depot', () => ({})],
    ];
    for (const [name, options] of modes) {
      let n = 0;
      let optimal = 0;
      let worst = 1;
      let excess = 0;
      for (let stops = 1; stops <= 8; stops++) {
        for (let k = 0; k < 120; k++) {
          const pts = Array.from({ length: stops }, where);
          const o = options(where());
          const best = bruteForceRoute(pts, o).totalKm;
          assert.ok(Math.abs(planRoute(pts, o).totalKm - best) < 1e-9, `${name}, ${stops} stops: exact`);
          const found = localSearchRoute(pts, o).totalKm;
          const r = best > 0 ? found / best : found > 1e-9 ? Infinity : 1;
          n++;
          if (r < 1 + 1e-9) optimal++;
          worst = Math.max(worst, r);
          excess += r - 1;
        }
      }
      // The bound docs/restocking.md states: optimal in at least 97% of these, never more than 10% longer, under 0.2% on average.
      const msg = `${name}: local search optimal in ${((optimal / n) * 100).toFixed(1)}% of ${n}, worst +${((worst - 1) * 100).toFixed(2)}%, mean +${((excess / n) * 100).toFixed(3)}%`;
      console.log(`      ${msg}`);
      assert.ok(optimal / n >= 0.97 && worst <= 1.1 && excess / n <= 0.002, msg);
    }
  });

  // How fast is a benchmark's business (npm run bench -- --route-only), not a timed test's.
  it('plans a few hundred stops, visiting each once', () => {
    const rnd = prng(7);
    const pts = Array.from({ length: 300 }, () => ({ lat: 39.5 + rnd() * 0.5, lon: -105.3 + rnd() * 0.6 }));
    const r = planRoute(pts, { depot: { lat: 39.74, lon: -104.99 } });
    assert.deepEqual([...r.order].sort((a, b) => a - b), pts.map((_, i) => i));
  });
});

for (const backend of BACKENDS) {
  describe(`restocking API: ${backend.name}`, function () {
    this.timeout(180000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let operator: string;
    let viewer: string;
    // Set when the suite starts, not when the file loads: the whole run may take minutes before it gets here.
    let now = Date.now();
    const DEPOT = { lat: 39.7, lon: -105.0 };

    const call = (method: 'GET' | 'PUT' | 'POST', url: string, token: string | undefined, body?: unknown) =>
      api.inject({ method, url, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(body !== undefined ? { payload: body as string } : {}) });

    let seq = 0;
    async function machine(id: string, slots: unknown[] | null, location?: Point): Promise<void> {
      await b.db.query(`INSERT INTO machines (id, created_at) VALUES ($1, now() - interval '40 days')`, [id]);
      if (slots) await setTelemetry(b.db, id, { slots });
      if (location) await b.db.query('UPDATE machines SET lat = $2, lon = $3 WHERE id = $1', [id, location.lat, location.lon]);
    }
    async function sales(id: string, slot: string, times: number[]): Promise<void> {
      const seqs = times.map(() => ++seq);
      // Sales weeks back, written straight into events: their months may predate the ones the store made.
      for (const m of new Set(times.map((t) => monthOf(t)))) await ensureEventMonth(b.db, m);
      await b.db.query(
        `INSERT INTO events (machine_id, seq, type, machine_time, body, received_at)
         SELECT $1, s, 'vend-ok', s, jsonb_build_object('slot', $2::text, 'price', 100), t FROM unnest($3::bigint[], $4::timestamptz[]) AS u(s, t)`,
        [id, slot, seqs, times.map((t) => new Date(t))],
      );
    }
    const hourly = (days: number): number[] => Array.from({ length: days * 24 }, (_, i) => now - (i + 0.5) * HOUR_MS);

    before(async () => {
      now = Date.now();
      ({ b, commands, api } = await openApi(backend));
      operator = (await createToken(b.db, 'restock operator', 'operator')).token;
      viewer = (await createToken(b.db, 'restock viewer', 'viewer')).token;
      // busy: one empty slot, one selling an item an hour with 10 left, one that never sells, one jammed.
      await machine(
        'busy',
        [
          { code: 'A1', product: 'Chips', qty: 0, capacity: 10, price: 125, sku: 1001 },
          { code: 'A2', product: 'Cola', qty: 10, capacity: 10, price: 175 },
          { code: 'B1', product: 'Gum', qty: 5, capacity: 8, price: 65 },
          { code: 'B2', product: 'Water', qty: 2, capacity: 8, price: 100, fault: true },
        ],
        { lat: DEPOT.lat + 0.02, lon: DEPOT.lon },
      );
      await sales('busy', 'A2', hourly(28));
      // near: nearer the depot, runs out within the day.
      await machine('near', [{ code: 'A1', product: 'Chips', qty: 3, capacity: 10, price: 125, sku: 1001 }], { lat: DEPOT.lat + 0.01, lon: DEPOT.lon });
      await sales('near', 'A1', hourly(28));
      // quiet: a sale a day, ten left: needs a visit within two weeks, not tomorrow.
      await machine('quiet', [{ code: 'A1', product: 'Cola', qty: 10, capacity: 12, price: 175 }], { lat: DEPOT.lat + 0.03, lon: DEPOT.lon });
      await sales('quiet', 'A1', Array.from({ length: 28 }, (_, i) => now - (i + 0.5) * DAY_MS));
      // lost: empty, but nobody said where it stands.
      await machine('lost', [{ code: 'A1', product: 'Gum', qty: 0, capacity: 6, price: 65 }]);
      // silent: never reported.
      await machine('silent', null, { lat: DEPOT.lat, lon: DEPOT.lon + 0.01 });
    });
    after(() => closeApi({ api, commands, b }));

    it('counts sales per hour of the week in SQL as the forecast does in TypeScript', async () => {
      const counts = (await loadSalesCounts(b.db, ['busy', 'quiet'], new Date(now - 28 * DAY_MS), new Date(now))).get('quiet')!.get('A1')!;
      const mine = countsFromTimes(
        Array.from({ length: 28 }, (_, i) => now - (i + 0.5) * DAY_MS),
        now - 28 * DAY_MS,
        now,
      );
      assert.deepEqual(counts, mine);
    });

    it('sets and shows locations, and refuses bad ones', async () => {
      const set = await call('PUT', '/machines/lost/location', operator, { lat: 39.75, lon: -104.95, address: '  1600 Glenarm Pl  ' });
      assert.equal(set.statusCode, 200, set.body);
      assert.deepEqual(set.json(), { machine: 'lost', lat: 39.75, lon: -104.95, address: '1600 Glenarm Pl' });
      assert.deepEqual((await call('GET', '/machines/lost/location', viewer)).json(), { machine: 'lost', lat: 39.75, lon: -104.95, address: '1600 Glenarm Pl' });
      // Take it away again for the route below (straight in the store: the API only sets).
      await b.db.query('UPDATE machines SET lat = NULL, lon = NULL, address = NULL WHERE id = $1', ['lost']);
      assert.deepEqual((await call('GET', '/machines/lost/location', viewer)).json(), { machine: 'lost', lat: null, lon: null, address: null });
      const all = (await call('GET', '/locations', viewer)).json() as { machines: { machine: string; lat: number | null }[] };
      assert.deepEqual(
        all.machines.map((m) => [m.machine, m.lat]),
        [
          ['busy', DEPOT.lat + 0.02],
          ['lost', null],
          ['near', DEPOT.lat + 0.01],
          ['quiet', DEPOT.lat + 0.03],
          ['silent', DEPOT.lat],
        ],
      );
      const bad: [string, string | undefined, unknown, number, RegExp][] = [
        ['busy', viewer, { lat: 1, lon: 1 }, 403, /operator/],
        ['busy', undefined, { lat: 1, lon: 1 }, 401, /token/],
        ['busy', operator, { lat: 90.5, lon: 1 }, 400, /lat/],
        ['busy', operator, { lat: 1, lon: -180.1 }, 400, /lon/],
        ['busy', operator, { lat: null, lon: 1 }, 400, /number/],
        ['busy', operator, { lat: '39.7', lon: 1 }, 400, /number/],
        ['busy', operator, { lat: 1 }, 400, /lon/],
        ['busy', operator, { lat: 1, lon: 1, floor: 3 }, 400, /additional/],
        ['busy', operator, { lat: 1, lon: 1, address: 'x'.repeat(201) }, 400, /address/],
        ['nope', operator, { lat: 1, lon: 1 }, 404, /no machine/],
        ['a%20b', operator, { lat: 1, lon: 1 }, 400, /id/],
      ];
      for (const [id, token, body, status, message] of bad) {
        const r = await call('PUT', `/machines/${id}/location`, token, body);
        assert.equal(r.statusCode, status, `${JSON.stringify(body)}: ${r.body}`);
        assert.match(r.json().message, message);
      }
      assert.equal((await call('GET', '/machines/busy/location', viewer)).json().lat, DEPOT.lat + 0.02, 'unchanged by the refusals');
      assert.equal((await call('GET', '/machines/nope/location', viewer)).statusCode, 404);
    });

    it("gives a machine's pick list", async () => {
      const r = await call('GET', '/machines/busy/picklist', viewer);
      assert.equal(r.statusCode, 200, r.body);
      const p = r.json() as { machine: string; asOf: string; units: number; faults: string[]; lines: { slot: string; product: string; sku: number | null; qty: number; capacity: number; load: number; fault: boolean }[] };
      assert.equal(p.machine, 'busy');
      assert.ok(Math.abs(Date.parse(p.asOf) - now) < 60000);
      // No planogram: each slot named by the machine's own label.
      assert.deepEqual(p.lines, [
        { slot: 'A1', name: 'Chips', catalogSku: null, product: 'Chips', sku: 1001, qty: 0, capacity: 10, load: 10, fault: false },
        { slot: 'A2', name: 'Cola', catalogSku: null, product: 'Cola', sku: null, qty: 10, capacity: 10, load: 0, fault: false },
        { slot: 'B1', name: 'Gum', catalogSku: null, product: 'Gum', sku: null, qty: 5, capacity: 8, load: 3, fault: false },
        { slot: 'B2', name: 'Water', catalogSku: null, product: 'Water', sku: null, qty: 2, capacity: 8, load: 6, fault: true },
      ]);
      assert.equal(p.units, 19);
      assert.deepEqual(p.faults, ['B2']);
      const silent = (await call('GET', '/machines/silent/picklist', viewer)).json() as { asOf: unknown; lines: unknown[] };
      assert.deepEqual([silent.asOf, silent.lines], [null, []]);
      assert.equal((await call('GET', '/machines/nope/picklist', viewer)).statusCode, 404);
      assert.equal((await call('GET', '/machines/busy/picklist', undefined)).statusCode, 401);
    });

    it("forecasts a machine's slots", async () => {
      const r = await call('GET', '/machines/busy/forecast', viewer);
      assert.equal(r.statusCode, 200, r.body);
      const f = r.json() as { windowDays: number; since: string; slots: { slot: string; qty: number; sales: number; ratePerDay: number; emptyAt: string | null; daysLeft: number | null; fault: boolean }[] };
      assert.equal(f.windowDays, 28);
      assert.ok(Math.abs(Date.parse(f.since) - (now - 28 * DAY_MS)) < 60000);
      const [a1, a2, b1, b2] = f.slots;
      assert.equal(a1!.daysLeft, 0, 'empty');
      assert.equal(a2!.sales, 672);
      assert.ok(Math.abs(a2!.ratePerDay - 24) < 0.01, `A2 ${a2!.ratePerDay} a day`);
      assert.ok(Math.abs(a2!.daysLeft! - 10 / 24) < 0.02, `A2 ${a2!.daysLeft} days left`);
      assert.deepEqual([b1!.sales, b1!.ratePerDay, b1!.emptyAt, b1!.daysLeft], [0, 0, null, null]);
      assert.deepEqual([b2!.fault, b2!.emptyAt], [true, null]);
      // A shorter window sees fewer sales.
      const week = (await call('GET', '/machines/busy/forecast?windowDays=7', viewer)).json() as { slots: { sales: number }[] };
      assert.equal(week.slots[1]!.sales, 168);
      for (const q of ['windowDays=0', 'windowDays=366', 'windowDays=x', 'days=3']) assert.equal((await call('GET', `/machines/busy/forecast?${q}`, viewer)).statusCode, 400, q);
      assert.equal((await call('GET', '/machines/nope/forecast', viewer)).statusCode, 404);
    });

    interface RouteAnswer {
      depot: Point | null;
      returnToDepot: boolean;
      stops: { stop: number; machine: string; lat: number; legKm: number; reasons: { kind: string; slot?: string; emptyAt?: string }[]; picklist: { units: number } }[];
      returnKm: number;
      totalKm: number;
      units: number;
      totals: { key: string; units: number; machines: number }[];
      unlocated: { machine: string; reasons: { kind: string }[]; picklist: { units: number } }[];
    }
    const route = async (query: string): Promise<RouteAnswer> => {
      const r = await call('GET', `/route${query}`, viewer);
      assert.equal(r.statusCode, 200, r.body);
      return r.json() as RouteAnswer;
    };

    it('routes the machines that need a visit before the next one, nearest first, with pick lists and van totals', async () => {
      const r = await route(`?depot=${DEPOT.lat},${DEPOT.lon}&days=1`);
      assert.deepEqual(r.depot, DEPOT);
      assert.deepEqual(
        r.stops.map((s) => [s.stop, s.machine]),
        [
          [1, 'near'],
          [2, 'busy'],
        ],
      );
      const km = haversineKm(DEPOT, { lat: DEPOT.lat + 0.01, lon: DEPOT.lon });
      assert.ok(Math.abs(r.stops[0]!.legKm - km) < 0.002 && Math.abs(r.stops[1]!.legKm - km) < 0.002);
      assert.ok(Math.abs(r.totalKm - 4 * km) < 0.004, `${r.totalKm} km`);
      assert.ok(Math.abs(r.returnKm - 2 * km) < 0.002);
      const busy = r.stops[1]!;
      assert.deepEqual(
        busy.reasons.map((x) => `${x.kind} ${x.slot}`),
        ['empty A1', 'runs-out A2', 'fault B2'],
      );
      const a2 = busy.reasons.find((x) => x.slot === 'A2')!;
      assert.ok(Math.abs(Date.parse(a2.emptyAt!) - (now + 10 * HOUR_MS)) < 30 * 60000, a2.emptyAt);
      assert.equal(busy.picklist.units, 19);
      // The van: Chips by SKU from both machines, the rest by name.
      assert.deepEqual(
        r.totals.map((t) => [t.key, t.units, t.machines]),
        [
          ['sku:1001', 17, 2],
          ['product:Water', 6, 1],
          ['product:Gum', 3, 1],
        ],
      );
      assert.equal(r.units, 26);
      // Empty but without a location: reported, not dropped.
      assert.deepEqual(
        r.unlocated.map((u) => [u.machine, u.reasons.map((x) => x.kind), u.picklist.units]),
        [['lost', ['empty'], 6]],
      );
    });

    it('looks further ahead with more days, takes the machines asked for, and goes one way', async () => {
      // One way, so that the order is the only shortest one (out and back, busy could come on the way back).
      const two = await route(`?depot=${DEPOT.lat},${DEPOT.lon}&days=14&return=false`);
      assert.deepEqual(
        two.stops.map((s) => s.machine),
        ['near', 'busy', 'quiet'],
      );
      const asked = await route(`?depot=${DEPOT.lat},${DEPOT.lon}&machines=silent,quiet,lost&return=false`);
      assert.deepEqual(
        asked.stops.map((s) => [s.machine, s.reasons.map((x) => x.kind)]),
        [
          ['silent', ['listed']],
          ['quiet', ['listed']],
        ],
      );
      assert.equal(asked.returnKm, 0);
      assert.equal(asked.returnToDepot, false);
      assert.deepEqual(
        asked.unlocated.map((u) => u.machine),
        ['lost'],
      );
      const open = await route('?days=1');
      assert.equal(open.depot, null);
      assert.equal(open.stops[0]!.legKm, 0);
      assert.ok(Math.abs(open.totalKm - haversineKm(DEPOT, { lat: DEPOT.lat + 0.01, lon: DEPOT.lon })) < 0.002);
    });

    it('refuses bad route requests', async () => {
      const bad: [string, number, RegExp][] = [
        ['?depot=91,0', 400, /depot/],
        ['?depot=here', 400, /depot/],
        ['?depot=39.7,-105,3', 400, /depot/],
        ['?days=-1', 400, /days/],
        ['?days=soon', 400, /days/],
        ['?machines=busy,,near', 400, /machines/],
        ['?machines=busy,nope', 404, /nope/],
        ['?windowDays=0', 400, /windowDays/],
        ['?return=maybe', 400, /return/],
        ['?colour=red', 400, /additional/],
      ];
      for (const [q, status, message] of bad) {
        const r = await call('GET', `/route${q}`, viewer);
        assert.equal(r.statusCode, status, `${q}: ${r.body}`);
        assert.match(r.json().message, message, q);
      }
      assert.equal((await call('GET', '/route', undefined)).statusCode, 401);
    });

    it("names pick lists by the planogram's catalog products, loads vans by their SKU, the machine's label otherwise; hostile names kept as written", async () => {
      // Markup, a 100-character name of several scripts (the catalog's longest), and a plain one.
      const hostile = [...'<img src=x onerror="alert(1)"> Schokolade «Nuß» 🍫 шоколад 巧克力 '.repeat(4)].slice(0, 100).join('');
      const gum = '🍬 Minze — «Extra» 口香糖';
      await b.db.query(
        `INSERT INTO products (operator_id, sku, name, price, currency) VALUES ('default', 'CHIPS-40', $1, 125, 'USD'), ('default', 'GUM-1', $2, 65, 'USD')`,
        [hostile, gum],
      );
      await b.db.query(
        `INSERT INTO planogram (machine_id, slot, operator_id, sku) VALUES ('busy', 'A1', 'default', 'CHIPS-40'), ('near', 'A1', 'default', 'CHIPS-40'), ('busy', 'B1', 'default', 'GUM-1')`,
      );
      try {
        const p = (await call('GET', '/machines/busy/picklist', viewer)).json() as { lines: { slot: string; name: string | null; catalogSku: string | null; product: string | null; load: number }[] };
        assert.deepEqual(
          p.lines.map((l) => [l.slot, l.name, l.catalogSku, l.product, l.load]),
          [
            ['A1', hostile, 'CHIPS-40', 'Chips', 10],
            ['A2', 'Cola', null, 'Cola', 0],
            ['B1', gum, 'GUM-1', 'Gum', 3],
            ['B2', 'Water', null, 'Water', 6],
          ],
        );
        // The van: the catalog's chips from both machines as one line (they were one by the machines' item number too), gum by its SKU, water by label.
        type Totals = { key: string; name: string | null; catalogSku: string | null; units: number; machines: number }[];
        const expected = [
          ['catalog:CHIPS-40', hostile, 'CHIPS-40', 17, 2],
          ['product:Water', 'Water', null, 6, 1],
          ['catalog:GUM-1', gum, 'GUM-1', 3, 1],
        ];
        const r = (await call('GET', `/route?depot=${DEPOT.lat},${DEPOT.lon}&days=1`, viewer)).json() as { stops: { machine: string; picklist: { lines: { slot: string; name: string | null }[] } }[]; totals: Totals };
        assert.deepEqual(r.totals.map((t) => [t.key, t.name, t.catalogSku, t.units, t.machines]), expected);
        assert.deepEqual(r.stops.find((x) => x.machine === 'near')!.picklist.lines.map((l) => [l.slot, l.name]), [['A1', hostile]]);
        const vans = (await call('GET', `/routes?depot=${DEPOT.lat},${DEPOT.lon}&days=1&vans=1&capacity=1000`, viewer)).json() as { vans: { totals: Totals }[] };
        assert.deepEqual(vans.vans[0]!.totals.map((t) => [t.key, t.name, t.catalogSku, t.units, t.machines]), expected);
        // A driver's link keeps the names with its route: the driver's page reads them from there.
        const made = (await call('POST', '/driver-links', operator, { depot: `${DEPOT.lat},${DEPOT.lon}`, days: 1 })).json() as { secret: string };
        const driver = (await api.inject({ method: 'GET', url: '/driver/route', headers: { authorization: `Bearer ${made.secret}` } })).json() as { route: { totals: Totals } };
        assert.deepEqual(driver.route.totals.map((t) => [t.key, t.name, t.catalogSku, t.units, t.machines]), expected);
      } finally {
        await b.db.query("DELETE FROM planogram WHERE sku IN ('CHIPS-40', 'GUM-1')");
        await b.db.query("DELETE FROM products WHERE sku IN ('CHIPS-40', 'GUM-1')");
      }
    });

    it('documents its routes in OpenAPI', async () => {
      const doc = (await call('GET', '/docs/json', undefined)).json() as { paths: Record<string, Record<string, unknown>> };
      for (const [p, m] of [
        ['/machines/{id}/location', 'put'],
        ['/machines/{id}/location', 'get'],
        ['/locations', 'get'],
        ['/machines/{id}/picklist', 'get'],
        ['/machines/{id}/forecast', 'get'],
        ['/route', 'get'],
      ] as const) {
        assert.ok(doc.paths[p]?.[m], `${m} ${p}`);
      }
    });
  });
}
