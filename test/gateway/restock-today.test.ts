/**
 * The fleet KPI "machines needing restock today" from the forecasts
 * (gateway/restock/today.ts), on both stores, on a small fleet seeded by the
 * dashboard bench's own seeding (bench/lib/dashboard.ts, so that code runs
 * here too): the same machines as the restocking route's visits due before
 * midnight UTC, per operator; the sales window moved forward in memory
 * counts what a fresh count of the window gives, sales that arrived since
 * included; its first count, read from the hourly rollup, is the count of
 * the sales themselves; and the kept rates are worked out again once they
 * are old.
 */
import { strict as assert } from 'node:assert';
import { machineId, seedDashboardStore } from '../../bench/lib/dashboard.js';
import { ingestStore } from '../../gateway/ingest/store.js';
import { DAY_MS, HOUR_MS } from '../../gateway/restock/forecast.js';
import { restockVisits } from '../../gateway/restock/plan.js';
import { SalesWindow, type WindowCounts } from '../../gateway/restock/sales-window.js';
import { loadSalesCounts } from '../../gateway/restock/store.js';
import { RestockTodayService } from '../../gateway/restock/today.js';
import { ensureEventMonth, monthOf } from '../../gateway/store/event-partitions.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, type Backend } from './backends.js';

const MACHINES = 40;

/** The route's answer: machines with a visit due before midnight UTC after `now`. */
async function dueToday(b: Backend, now: Date, operator: string | null = null): Promise<string[]> {
  const days = ((Math.floor(now.getTime() / DAY_MS) + 1) * DAY_MS - now.getTime()) / DAY_MS;
  return (await restockVisits(b.db, { days, now, operator })).visits.map((v) => v.machine).sort();
}

for (const backend of BACKENDS) {
  describe(`restock today from the forecasts (${backend.name})`, function () {
    this.timeout(120000);
    let b: Backend;
    before(async () => {
      b = await backend.open();
      await migrate(b.db);
      await seedDashboardStore(b.db, { machines: MACHINES, operators: 2, days: 35, rawDays: 28, salesPerDay: 12 });
    });
    after(async () => {
      await b?.close();
    });

    it('counts the machines the route would visit before midnight UTC, per operator', async () => {
      const svc = new RestockTodayService(b.db, { lagMs: 0 });
      const now = new Date();
      const all = await svc.today(null, now);
      assert.equal(all.of, MACHINES);
      const want = await dueToday(b, now);
      assert.deepEqual([...all.machines].sort(), want);
      // Neither none nor all: the seeded stock and sales make some due today and some not.
      assert.ok(want.length > 0 && want.length < MACHINES, `${want.length} of ${MACHINES} due`);
      const op1 = await svc.today('op1', now);
      assert.deepEqual([...op1.machines].sort(), await dueToday(b, now, 'op1'));
      assert.ok([...op1.machines].every((m) => Number(m.slice(2)) % 2 === 0), 'op1 has the even machines only');
    });

    it("counts the first look's window from the hourly rollup: the counts the sales give, part-hours at both ends included", async () => {
      // A window ending at a quarter past, two hours on: this hour is a whole hour of it (read from the rollup).
      const until = (Math.floor(Date.now() / HOUR_MS) + 2) * HOUR_MS + 15 * 60_000;
      const since = until - 28 * DAY_MS;
      // Sales in the window's first and last part-hours (and just before it), and through the real ingest path (which keeps the rollup).
      const m = machineId(5);
      for (const t of [since - 1, until]) await ensureEventMonth(b.db, monthOf(t));
      await b.db.query(
        `INSERT INTO events (machine_id, seq, type, machine_time, body, received_at)
         VALUES ($1, 910001, 'vend-ok', 1, '{"slot":"B2","price":150}', $2), ($1, 910002, 'vend-ok', 2, '{"slot":"B2","price":150}', $3),
                ($1, 910003, 'vend-ok', 3, '{"slot":"B2","price":150}', $4)`,
        [m, new Date(since + 1), new Date(since - 1), new Date(until - 60_000)],
      );
      await ingestStore(b.db).write(
        { at: new Date(), messages: [{ machine: m, to: 920002, events: [920001, 920002].map((seq) => ({ seq, t: seq, type: 'vend-ok', body: { slot: 'F9', price: 100 } })), refused: [] }], telemetry: [], statuses: [], rejections: new Map() },
        { conflict: () => {} },
      );
      const ids = Array.from({ length: MACHINES }, (_, i) => machineId(i + 1));
      const w = await new SalesWindow(b.db, 28 * DAY_MS, 0).at(new Date(until));
      assert.equal(w.changed, 'all');
      const asArrays = (counts: WindowCounts['counts']) => new Map([...counts].map(([id, slots]) => [id, new Map([...slots].map(([slot, c]) => [slot, [...c]]))]));
      const fresh = await loadSalesCounts(b.db, ids, w.since, w.until);
      assert.deepEqual(asArrays(w.counts), fresh);
      assert.equal(fresh.get(m)!.get('F9')!.reduce((a, x) => a + x, 0), 2, 'the ingested sales are in');
      // The same window counted from the sales alone (the bench's reference).
      assert.deepEqual(asArrays((await new SalesWindow(b.db, 28 * DAY_MS, 0, 'raw').at(new Date(until))).counts), fresh);
      // It does read the rollup: a count there alone (as if its sales were ingested and then lost) shows.
      await b.db.query(`UPDATE sales_hourly SET sales = sales + 7 WHERE machine_id = $1 AND slot = 'F9'`, [m]);
      const again = await new SalesWindow(b.db, 28 * DAY_MS, 0).at(new Date(until));
      assert.equal([...again.counts.get(m)!.get('F9')!].reduce((a, x) => a + x, 0), 9);
      // As it was for the next tests: the rollup as the sales say, the sales written around it gone.
      await b.db.query(`UPDATE sales_hourly SET sales = sales - 7 WHERE machine_id = $1 AND slot = 'F9'`, [m]);
      await b.db.query('DELETE FROM events WHERE machine_id = $1 AND seq BETWEEN 910001 AND 910003', [m]);
    });

    it('moves its sales window forward: the counts a fresh count gives, new sales included', async () => {
      const w = new SalesWindow(b.db, 28 * DAY_MS, 0);
      const t0 = new Date();
      await w.at(t0);
      // Sales after t0 (dated ahead: the window reaches them only when it moves there).
      const later = new Date(t0.getTime() + 3 * HOUR_MS);
      await b.db.query(
        `INSERT INTO events (machine_id, seq, type, machine_time, body, received_at)
         SELECT $1, 900000 + s, 'vend-ok', s, '{"slot":"A1","price":150}'::jsonb, $2::timestamptz + make_interval(mins => s * 10) FROM generate_series(1, 6) s`,
        [machineId(3), t0],
      );
      const moved = await w.at(later);
      assert.notEqual(moved.changed, 'all', 'moved, not counted again');
      assert.ok(moved.changed !== 'all' && moved.changed.has(machineId(3)));
      const ids = Array.from({ length: MACHINES }, (_, i) => machineId(i + 1));
      const fresh = await loadSalesCounts(b.db, ids, new Date(later.getTime() - 28 * DAY_MS), later);
      const asArrays = new Map([...moved.counts].map(([m, slots]) => [m, new Map([...slots].map(([s, c]) => [s, [...c]]).filter(([, c]) => (c as number[]).some((x) => x > 0)) as [string, number[]][])]));
      assert.deepEqual(
        new Map([...asArrays].filter(([, slots]) => slots.size > 0)),
        fresh,
      );
    });

    it('works old rates out again: an hour on, the answer is the route\'s for then', async () => {
      const svc = new RestockTodayService(b.db, { lagMs: 0, maxAgeMs: HOUR_MS, budget: MACHINES });
      const now = new Date();
      await svc.today(null, now);
      const on = new Date(now.getTime() + 2 * HOUR_MS);
      assert.deepEqual([...(await svc.today(null, on)).machines].sort(), await dueToday(b, on));
    });

    it("reads again the slots of the machines whose telemetry was written since its last look (any writer), and answers as the route then", async () => {
      const svc = new RestockTodayService(b.db, { lagMs: 0 });
      const now = new Date();
      const first = [...(await svc.today(null, now)).machines].sort();
      assert.deepEqual(first, await dueToday(b, now));
      const notDue = Array.from({ length: MACHINES }, (_, i) => machineId(i + 1)).find((m) => !first.includes(m))!;
      const due = first[0]!;
      // One runs a slot empty, the other is filled up: written straight to the store, not through ingest (no telemetry_at).
      await b.db.query(`UPDATE machine_state SET telemetry = jsonb_set(telemetry, '{slots,0,qty}', '0') WHERE machine_id = $1`, [notDue]);
      await b.db.query(
        `UPDATE machine_state SET telemetry = jsonb_set(telemetry, '{slots}', (SELECT jsonb_agg(s || jsonb_build_object('qty', s->'capacity')) FROM jsonb_array_elements(telemetry->'slots') s)) WHERE machine_id = $1`,
        [due],
      );
      const later = new Date(now.getTime() + 1000);
      const second = [...(await svc.today(null, later)).machines].sort();
      assert.ok(second.includes(notDue), `${notDue} ran a slot empty`);
      assert.deepEqual(second, await dueToday(b, later));
      assert.notDeepEqual(second, first);
    });
  });
}
