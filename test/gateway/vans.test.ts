/**
 * Routes for several vans (GET /routes, gateway/restock/vans.ts) on both
 * stores, seeded with SQL: machines at known places with known stock and
 * sales, so the plan's answers are known: each van's load within its
 * capacity, each route within the working day, the visits that can wait
 * longest deferred first (empty and jammed machines kept before predicted
 * ones), a machine beyond a day's reach deferred, bad requests refused, and
 * another operator's machines never planned.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { HOUR_MS } from '../../gateway/restock/forecast.js';
import { haversineKm, type Point } from '../../gateway/restock/route.js';
import { ensureEventMonth, monthOf } from '../../gateway/store/event-partitions.js';
import { createOperator } from '../../gateway/store/operators.js';
import { renderVans } from '../../tools/vendctl-vans.js';
import { closeApi, openApi, setTelemetry } from './api-harness.js';
import { BACKENDS, type Backend } from './backends.js';

interface Stop {
  stop: number;
  machine: string;
  lat: number;
  lon: number;
  legKm: number;
  arriveMin: number;
  departMin: number;
  units: number;
  overCapacity: boolean;
  reasons: { kind: string }[];
  picklist: { units: number };
}
interface VansAnswer {
  vans: { van: number; stops: Stop[]; returnKm: number; km: number; minutes: number; units: number; totals: { units: number }[] }[];
  deferred: { machine: string; reason: string }[];
  unlocated: { machine: string }[];
  km: number;
  units: number;
}

const DEPOT: Point = { lat: 39.7, lon: -105.0 };
const WANTED = ['e1', 'e2', 'f1', 'r1', 'r2', 'r3'];

for (const backend of BACKENDS) {
  describe(`restocking with several vans: ${backend.name}`, function () {
    this.timeout(120000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let viewer: string;
    let admin: string;
    let otherViewer: string;
    let now = Date.now();
    let seq = 0;

    async function machine(id: string, slot: Record<string, unknown>, at: Point, operator = 'default'): Promise<void> {
      await b.db.query(`INSERT INTO machines (id, created_at, operator_id, lat, lon) VALUES ($1, now() - interval '40 days', $2, $3, $4)`, [id, operator, at.lat, at.lon]);
      await setTelemetry(b.db, id, { slots: [{ code: 'A1', price: 100, ...slot }] });
    }
    /** One sale an hour for four weeks. */
    async function hourly(id: string): Promise<void> {
      const times = Array.from({ length: 28 * 24 }, (_, i) => now - (i + 0.5) * HOUR_MS);
      for (const m of new Set(times.map((t) => monthOf(t)))) await ensureEventMonth(b.db, m);
      const seqs = times.map(() => ++seq);
      await b.db.query(
        `INSERT INTO events (machine_id, seq, type, machine_time, body, received_at)
         SELECT $1, s, 'vend-ok', s, jsonb_build_object('slot', 'A1', 'price', 100), t FROM unnest($2::bigint[], $3::timestamptz[]) AS u(s, t)`,
        [id, seqs, times.map((t) => new Date(t))],
      );
    }
    const near = (dLat: number, dLon: number): Point => ({ lat: DEPOT.lat + dLat, lon: DEPOT.lon + dLon });

    async function plan(query: string, token = viewer): Promise<VansAnswer> {
      const r = await api.inject({ method: 'GET', url: `/routes?depot=${DEPOT.lat},${DEPOT.lon}&${query}`, headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.statusCode, 200, r.body);
      return r.json() as VansAnswer;
    }
    const planned = (a: VansAnswer): string[] => a.vans.flatMap((v) => v.stops.map((s) => s.machine)).sort();

    /** What holds for every plan: times, distances and loads add up, and nobody is planned twice. */
    function consistent(a: VansAnswer, speed: number, service: number): void {
      const seen = planned(a);
      assert.equal(new Set(seen).size, seen.length, 'each machine once');
      for (const v of a.vans) {
        let at = DEPOT;
        let clock = 0;
        for (const s of v.stops) {
          const leg = haversineKm(at, s);
          assert.ok(Math.abs(s.legKm - leg) < 0.002, `van ${v.van} stop ${s.stop}: leg ${s.legKm} km, ${leg} km`);
          clock += (leg / speed) * 60;
          assert.ok(Math.abs(s.arriveMin - clock) < 0.2, `arrives at ${s.arriveMin}, ${clock}`);
          clock += service;
          assert.ok(Math.abs(s.departMin - clock) < 0.2, `leaves at ${s.departMin}, ${clock}`);
          assert.ok(s.overCapacity ? s.units < s.picklist.units : s.units === s.picklist.units, `${s.machine}: ${s.units} of ${s.picklist.units}`);
          at = s;
        }
        const back = haversineKm(at, DEPOT);
        assert.ok(Math.abs(v.km - (v.stops.reduce((x, s) => x + s.legKm, 0) + back)) < 0.01, `van ${v.van}: ${v.km} km`);
        assert.ok(Math.abs(v.minutes - (clock + (back / speed) * 60)) < 0.2, `van ${v.van}: back at ${v.minutes}`);
        assert.equal(v.units, v.stops.reduce((x, s) => x + s.units, 0));
      }
      assert.ok(!seen.includes('x1') && !a.deferred.some((d) => d.machine === 'x1'), "another operator's machine");
    }

    before(async () => {
      now = Date.now();
      ({ b, commands, api } = await openApi(backend));
      await createOperator(b.db, 'other', 'Another operator');
      viewer = (await createToken(b.db, 'vans viewer', 'viewer')).token;
      admin = (await createToken(b.db, 'vans admin', 'admin')).token;
      otherViewer = (await createToken(b.db, 'other viewer', 'viewer', 'other')).token;
      // Every one needs 10 items. e1, e2: empty; f1: jammed (nothing predicted); r1, r2, r3: one sale an
      // hour, empty in about 2, 5 and 10 hours. All within 2 km of the depot.
      await machine('e1', { qty: 0, capacity: 10 }, near(0.01, 0));
      await machine('e2', { qty: 0, capacity: 10 }, near(0, 0.012));
      await machine('f1', { qty: 5, capacity: 15, fault: true }, near(-0.01, 0));
      await machine('r1', { qty: 2, capacity: 12 }, near(0.012, 0.012));
      await machine('r2', { qty: 5, capacity: 15 }, near(-0.01, -0.012));
      await machine('r3', { qty: 10, capacity: 20 }, near(0, -0.014));
      for (const id of ['r1', 'r2', 'r3']) await hourly(id);
      // far: empty, 330 km north: no day is long enough to get there and back.
      await machine('far', { qty: 0, capacity: 10 }, near(3, 0));
      // x1: another operator's, empty, next door.
      await machine('x1', { qty: 0, capacity: 10 }, near(0.001, 0), 'other');
    });
    after(() => closeApi({ api, commands, b }));

    it('shares the visits among the vans, each within its capacity', async () => {
      const a = await plan('vans=3&capacity=20&hours=8&speed=40&service=15&days=7');
      consistent(a, 40, 15);
      assert.deepEqual(planned(a), WANTED);
      assert.equal(a.vans.length, 3, 'two stops of 10 items fill a van of 20');
      for (const v of a.vans) {
        assert.ok(v.units <= 20, `van ${v.van}: ${v.units} items`);
        assert.equal(v.totals.reduce((x, t) => x + t.units, 0), v.units, 'its load list');
      }
      assert.equal(a.units, 60);
      assert.deepEqual(a.deferred, [{ ...a.deferred[0]!, machine: 'far', reason: 'out-of-reach' }]);
      // One van with room for all: one route (the exact solver's), every stop on it.
      const one = await plan('vans=1&capacity=100&days=7');
      consistent(one, 40, 15);
      assert.deepEqual(planned(one), WANTED);
    });

    it('defers the visits that can wait longest when the vans are full, never an empty or jammed machine first', async () => {
      const a = await plan('vans=2&capacity=20&days=7');
      consistent(a, 40, 15);
      // Four stops of 10 items fit; f1 (jammed, nothing predicted) stays before r2 and r3 (predicted to run out).
      assert.deepEqual(planned(a), ['e1', 'e2', 'f1', 'r1']);
      assert.deepEqual(
        a.deferred.map((d) => [d.machine, d.reason]),
        [
          ['far', 'out-of-reach'],
          ['r2', 'no-room'],
          ['r3', 'no-room'],
        ],
      );
    });

    it('keeps each route within the working day', async () => {
      // Three hours with an hour at each stop: two stops and a few km of driving.
      const a = await plan('vans=1&capacity=1000&hours=3&speed=40&service=60&days=7');
      consistent(a, 40, 60);
      assert.deepEqual(planned(a), ['e1', 'e2']);
      assert.ok(a.vans[0]!.minutes <= 180, `back after ${a.vans[0]!.minutes} min`);
      assert.deepEqual(
        a.deferred.map((d) => [d.machine, d.reason]),
        [
          ['far', 'out-of-reach'],
          ['f1', 'no-room'],
          ['r1', 'no-room'],
          ['r2', 'no-room'],
          ['r3', 'no-room'],
        ],
      );
      // Three vans, three such days: all six.
      const three = await plan('vans=3&capacity=1000&hours=3&speed=40&service=60&days=7');
      consistent(three, 40, 60);
      assert.deepEqual(planned(three), WANTED);
      for (const v of three.vans) assert.ok(v.minutes <= 180, `van ${v.van} back after ${v.minutes} min`);
      // A day long and fast enough reaches far.
      const long = await plan('vans=2&capacity=1000&hours=12&speed=100&days=7');
      consistent(long, 100, 15);
      assert.deepEqual(planned(long), [...WANTED, 'far'].sort());
      assert.deepEqual(long.deferred, []);
    });

    it('caps a pick list larger than a van at a van load, and flags it', async () => {
      const a = await plan('vans=6&capacity=8&days=7');
      consistent(a, 40, 15);
      assert.deepEqual(planned(a), WANTED);
      for (const v of a.vans) {
        assert.ok(v.units <= 8, `van ${v.van}: ${v.units} items`);
        for (const s of v.stops) assert.deepEqual([s.units, s.overCapacity, s.picklist.units], [8, true, 10], s.machine);
      }
    });

    it('reads as text for vendctl vans: each van, its stops with times, its load list', async () => {
      const a = await plan('vans=2&capacity=20&days=7');
      const text = renderVans(a);
      assert.doesNotMatch(text, /object Object|undefined|NaN|\?/, text);
      assert.match(text, /^2 vans, [0-9.]+ km, 40 items$/m, text);
      for (const v of a.vans) {
        assert.match(text, new RegExp(`^van ${v.van}: ${v.stops.length} stops?, ${v.km.toFixed(1)} km, back at \\+0:\\d\\d, ${v.units} items$`, 'm'), text);
        for (const s of v.stops) assert.match(text, new RegExp(`^  ${s.stop}\\. ${s.machine}  \\+0:\\d\\d-\\+\\d:\\d\\d  `, 'm'), text);
      }
      assert.match(text, /^  load: /m);
      assert.match(text, /^deferred: far \(out-of-reach\), r2 \(no-room\), r3 \(no-room\)$/m, text);
    });

    it("plans an operator's machines only; the platform's admin plans them all", async () => {
      const mine = await plan('vans=3&capacity=1000&days=7', otherViewer);
      assert.deepEqual(planned(mine), ['x1']);
      assert.deepEqual(mine.deferred, []);
      const all = await plan('vans=1&capacity=1000&days=7', admin);
      assert.ok(planned(all).includes('x1') && planned(all).includes('e1'), planned(all).join());
    });

    it('refuses bad requests', async () => {
      const d = `depot=${DEPOT.lat},${DEPOT.lon}`;
      const bad: [string, RegExp][] = [
        ['vans=2', /depot/],
        [`${d}`, /vans/],
        ['depot=91,0&vans=2', /depot/],
        ['depot=here&vans=2', /depot/],
        [`${d}&vans=0`, /vans/],
        [`${d}&vans=51`, /vans/],
        [`${d}&vans=two`, /vans/],
        [`${d}&vans=1.5`, /vans/],
        [`${d}&vans=2&capacity=0`, /capacity/],
        [`${d}&vans=2&hours=0`, /hours/],
        [`${d}&vans=2&hours=25`, /hours/],
        [`${d}&vans=2&speed=0`, /speed/],
        [`${d}&vans=2&service=-1`, /service/],
        [`${d}&vans=2&days=-1`, /days/],
        [`${d}&vans=2&windowDays=0`, /windowDays/],
        [`${d}&vans=2&machines=e1`, /additional/],
      ];
      for (const [q, message] of bad) {
        const r = await api.inject({ method: 'GET', url: `/routes?${q}`, headers: { authorization: `Bearer ${viewer}` } });
        assert.equal(r.statusCode, 400, `${q}: ${r.body}`);
        assert.match(r.json().message, message, q);
      }
      assert.equal((await api.inject({ method: 'GET', url: `/routes?${d}&vans=2` })).statusCode, 401);
      const doc = (await api.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> };
      assert.ok(doc.paths['/routes']?.['get']?.responses?.['200'], 'GET /routes in OpenAPI');
    });
  });
}

describe('vendctl vans: product names', () => {
  it("puts the catalog product's name after each slot and on the load list with its SKU, the machine's label otherwise, each on its line", () => {
    const answer = {
      km: 3.2,
      units: 14,
      vans: [
        {
          van: 1,
          km: 3.2,
          minutes: 75,
          units: 14,
          stops: [
            {
              stop: 1,
              machine: 'm1',
              legKm: 1.6,
              arriveMin: 2.4,
              departMin: 17.4,
              units: 14,
              reasons: [{ kind: 'empty', slot: 'A1' }],
              picklist: {
                lines: [
                  { slot: 'A1', name: 'Cola\n330ml <b>', catalogSku: 'COLA-330', product: 'coke', load: 8 },
                  { slot: 'A2', name: 'Chips', catalogSku: null, product: 'Chips', load: 6 },
                  { slot: 'B1', name: null, catalogSku: null, product: null, load: 0 },
                ],
              },
            },
          ],
          totals: [
            { key: 'catalog:COLA-330', name: 'Cola\n330ml <b>', catalogSku: 'COLA-330', product: 'coke', sku: 7, units: 8 },
            { key: 'product:Chips', name: 'Chips', catalogSku: null, product: 'Chips', sku: null, units: 6 },
          ],
        },
      ],
      deferred: [],
      unlocated: [],
    };
    const text = renderVans(answer);
    assert.match(text, /^ {5}14 items: A1 Cola 330ml <b> \+8, A2 Chips \+6$/m, text);
    assert.match(text, /^ {2}load: Cola 330ml <b> \[COLA-330\] 8, Chips 6$/m, text);
  });
});
