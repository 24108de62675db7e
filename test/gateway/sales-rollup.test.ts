/**
 * The daily sales rollup (sales_daily) against the sales view it stands
 * for, on both stores: the migration counts what was stored before it,
 * ingest adds each sale once (resends, a batch sent twice, a conflict, a
 * failed batch, failed vends and refunds add nothing), days are UTC days of
 * receipt (23:59:59.999 and 00:00 fall apart), and every report read
 * through the rollup equals the same report read raw, for ranges that cut
 * days anywhere. The hourly rollup (migration 19) likewise: the migration's
 * count and ingest's additions equal the sales view's hours.
 */
import { strict as assert } from 'node:assert';
import { ingestStore, type EventMessage, type IngestBatch } from '../../gateway/ingest/store.js';
import type { MachineEvent } from '../../gateway/ingest/messages.js';
import { migrate } from '../../gateway/store/migrations.js';
import { closeSalesDays, HOURLY_KEEP_DAYS, pruneSalesHours } from '../../gateway/store/rollup.js';
import { fleetSummary, salesBySlot, salesSeries } from '../../gateway/store/sales.js';
import { BACKENDS, type Backend } from './backends.js';

const DAY = 86_400_000;

interface Row {
  machine: string;
  day: string;
  slot: string;
  sales: number;
  revenue: number;
}

const sortRows = (rows: Row[]): Row[] => rows.sort((a, b) => (a.machine + a.day + a.slot < b.machine + b.day + b.slot ? -1 : 1));

/** What the rollup should hold for these vend-ok bodies, worked out here (not by the store): slot '' when not a slot code, revenue of whole prices 0..2^32-1. */
function expected(list: { machine: string; at: string; type: string; body: Record<string, unknown> }[]): Row[] {
  const out = new Map<string, Row>();
  for (const e of list) {
    if (e.type !== 'vend-ok') continue;
    const slot = typeof e.body['slot'] === 'string' && /^([A-Z0-9]{1,4}|#(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))$/.test(e.body['slot']) ? e.body['slot'] : '';
    const p = e.body['price'];
    const price = typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 4294967295 ? p : 0;
    const day = e.at.slice(0, 10);
    const k = `${e.machine}|${day}|${slot}`;
    const r = out.get(k) ?? { machine: e.machine, day, slot, sales: 0, revenue: 0 };
    r.sales += 1;
    r.revenue += price;
    out.set(k, r);
  }
  return sortRows([...out.values()]);
}

for (const backend of BACKENDS) {
  describe(`daily sales rollup: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    const tag = `${process.pid % 10000}x${Math.floor(Math.random() * 1e6)}`;
    const m1 = `ra${tag}`;
    const m2 = `rb${tag}`;
    /** Everything stored, as the test wrote it: the reference. */
    const stored: { machine: string; at: string; type: string; body: Record<string, unknown> }[] = [];
    let today = '';

    const rollup = async (): Promise<Row[]> =>
      sortRows(
        (
          await b.db.query<{ machine_id: string; day: string; slot: string; sales: string; revenue: string }>(
            `SELECT machine_id, to_char(day, 'YYYY-MM-DD') AS day, slot, sales, revenue FROM sales_daily WHERE machine_id = ANY($1::text[])`,
            [[m1, m2]],
          )
        ).rows.map((r) => ({ machine: r.machine_id, day: r.day, slot: r.slot, sales: Number(r.sales), revenue: Number(r.revenue) })),
      );
    const raw = async (): Promise<Row[]> =>
      sortRows(
        (
          await b.db.query<{ machine_id: string; day: string; slot: string; sales: string; revenue: string }>(
            `SELECT machine_id, to_char((received_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day, coalesce(slot, '') AS slot, count(*) AS sales, coalesce(sum(price), 0) AS revenue
             FROM sales WHERE machine_id = ANY($1::text[]) GROUP BY 1, 2, 3`,
            [[m1, m2]],
          )
        ).rows.map((r) => ({ machine: r.machine_id, day: r.day, slot: r.slot, sales: Number(r.sales), revenue: Number(r.revenue) })),
      );

    /** The hourly rollup (migration 19) and the same counted from the sales view: "hour machine slot sales", sorted. */
    const hourly = async (): Promise<string[]> =>
      (await b.db.query<{ r: string }>(`SELECT concat_ws(' ', hour, machine_id, slot, sales) AS r FROM sales_hourly WHERE machine_id = ANY($1::text[])`, [[m1, m2]])).rows.map((x) => x.r).sort();
    const hourlyRaw = async (): Promise<string[]> =>
      (
        await b.db.query<{ r: string }>(
          `SELECT concat_ws(' ', floor(extract(epoch FROM received_at) / 3600)::int, machine_id, slot, count(*)) AS r FROM sales
           WHERE machine_id = ANY($1::text[]) AND slot IS NOT NULL GROUP BY floor(extract(epoch FROM received_at) / 3600)::int, machine_id, slot`,
          [[m1, m2]],
        )
      ).rows.map((x) => x.r).sort();

    /** One batch through the ingest store; the events it inserts join `stored` (dated by the store's clock). */
    async function ingest(messages: { machine: string; events: MachineEvent[] }[]): Promise<{ inserted: number; conflicts: string[] }> {
      const conflicts: string[] = [];
      const batch: IngestBatch<EventMessage> = {
        at: new Date(),
        messages: messages.map((m) => ({ machine: m.machine, to: Math.max(...m.events.map((e) => e.seq)), events: m.events, refused: [] })),
        telemetry: [],
        statuses: [],
        rejections: new Map(),
      };
      const counts = await ingestStore(b.db).write(batch, { conflict: (_m, d) => conflicts.push(d) });
      return { inserted: counts.inserted, conflicts };
    }
    const sale = (seq: number, slot: unknown, price: unknown, type = 'vend-ok'): MachineEvent => ({ seq, t: seq, type, body: { slot, price } });

    before(async () => {
      b = await backend.open();
      // The history goes in as a store before the rollup held it (migration 14 then counts it).
      await migrate(b.db, 13);
      await b.db.query('INSERT INTO machines (id) VALUES ($1), ($2)', [m1, m2]);
      today = (await b.db.query<{ d: string }>("SELECT to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS d")).rows[0]!.d;
      const base = Date.parse(`${today}T00:00:00Z`);
      const history: { machine: string; at: string; type: string; body: Record<string, unknown> }[] = [];
      for (let d = 3; d >= 1; d--) {
        const day = base - d * DAY;
        const at = (ms: number) => new Date(day + ms).toISOString();
        history.push(
          { machine: m1, at: at(0), type: 'vend-ok', body: { slot: 'A1', price: 150 } },
          { machine: m1, at: at(9 * 3600_000 + 7), type: 'vend-ok', body: { slot: 'B2', price: 90 } },
          { machine: m1, at: at(13 * 3600_000), type: 'vend-fail', body: { slot: 'A1', price: 150 } },
          { machine: m1, at: at(13 * 3600_000 + 1), type: 'refunded', body: { slot: 'A1', price: 150 } },
          { machine: m1, at: at(15 * 3600_000), type: 'vend-ok', body: { slot: 'a1', price: 70 } },
          { machine: m1, at: at(16 * 3600_000), type: 'vend-ok', body: { slot: 'A1', price: 1.5 } },
          { machine: m1, at: at(DAY - 1), type: 'vend-ok', body: { slot: 'A1', price: 125 + d } },
          { machine: m2, at: at(DAY - 1), type: 'vend-ok', body: { slot: '#12', price: 4294967295 } },
          { machine: m2, at: at(12 * 3600_000), type: 'vend-start', body: { slot: '#12', price: 50 } },
          { machine: m2, at: at(12 * 3600_000 + 5), type: 'vend-ok', body: { slot: '#12', price: 50 } },
        );
      }
      for (const [i, e] of history.entries()) {
        await b.db.query(`INSERT INTO events (machine_id, seq, type, machine_time, body, received_at) VALUES ($1, $2, $3, $2, $4::jsonb, $5)`, [e.machine, i + 1, e.type, JSON.stringify(e.body), e.at]);
      }
      stored.push(...history);
      await migrate(b.db);
    });
    after(async () => {
      await b?.close();
    });

    it('the migration counts the sales stored before it, by UTC day of receipt', async () => {
      const want = expected(stored);
      // The last millisecond of a day and its first are two days' sales.
      assert.ok(want.filter((r) => r.machine === m1 && r.slot === 'A1').length === 3 && want.every((r) => r.day < today));
      assert.deepEqual(await rollup(), want);
      assert.deepEqual(await rollup(), await raw());
      // The hourly rollup too: sales with a slot code only (not 'a1', not the ones without), by UTC hour.
      const hours = await hourly();
      assert.equal(hours.length, 3 * 6, "per day: A1 at 00, 16 and 23, B2 at 09, #12 at 12 and 23 (not 'a1')");
      assert.deepEqual(hours, await hourlyRaw());
    });

    it('ingest adds each sale once: resends, a batch sent twice, a conflict, a failed batch, failed vends and refunds', async () => {
      const first = [
        { machine: m1, events: [sale(1001, 'A1', 100), sale(1002, 'A1', 100, 'vend-fail'), sale(1003, 'C3', 250), sale(1004, 'C3', -1), sale(1005, 'x', 80), sale(1006, 'A1', 100, 'refunded')] },
        { machine: m2, events: [sale(1001, '#12', 60), sale(1002, 'B2', 'abc')] },
      ];
      assert.equal((await ingest(first)).inserted, 8);
      // The day they were received on, by the store's clock (the one the rollup dates them by).
      const at = (await b.db.query<{ t: Date }>('SELECT received_at AS t FROM events WHERE machine_id = $1 AND seq = 1001', [m1])).rows[0]!.t.toISOString();
      for (const m of first) for (const e of m.events) stored.push({ machine: m.machine, at, type: e.type, body: e.body });
      assert.deepEqual(await rollup(), expected(stored));

      // The same batch again (a machine that did not hear its ack): nothing new.
      assert.equal((await ingest(first)).inserted, 0);
      assert.deepEqual(await rollup(), expected(stored));

      // A resend overlapping new events, the same event twice in one batch.
      const second = [{ machine: m1, events: [sale(1003, 'C3', 250), sale(1007, 'C3', 250), sale(1007, 'C3', 250), sale(1008, '#7', 0)] }];
      assert.equal((await ingest(second)).inserted, 2);
      const at2 = (await b.db.query<{ t: Date }>('SELECT received_at AS t FROM events WHERE machine_id = $1 AND seq = 1007', [m1])).rows[0]!.t.toISOString();
      stored.push({ machine: m1, at: at2, type: 'vend-ok', body: { slot: 'C3', price: 250 } }, { machine: m1, at: at2, type: 'vend-ok', body: { slot: '#7', price: 0 } });
      assert.deepEqual(await rollup(), expected(stored));

      // A different sale under a stored number (a wiped journal): a conflict, not a sale.
      const clash = await ingest([{ machine: m2, events: [sale(1001, '#12', 999)] }]);
      assert.equal(clash.inserted, 0);
      assert.equal(clash.conflicts.length, 1);
      assert.deepEqual(await rollup(), expected(stored));

      // A batch that fails (an event of a machine the fleet does not have) leaves the rollup as it was.
      await assert.rejects(ingest([{ machine: m1, events: [sale(1009, 'A1', 100)] }, { machine: `zz${tag}`, events: [sale(1, 'A1', 100)] }]));
      assert.deepEqual(await rollup(), expected(stored));
      assert.deepEqual(await rollup(), await raw());
      // The hourly rollup took the same sales, once each: C3 three times (1003, 1004 whose price is no price, 1007), 'x' not at all.
      const c3 = (await hourly()).filter((r) => r.split(' ')[1] === m1 && r.split(' ')[2] === 'C3').reduce((n, r) => n + Number(r.split(' ')[3]), 0);
      assert.equal(c3, 3);
      assert.ok(!(await hourly()).some((r) => r.split(' ')[2] === 'x'));
      assert.deepEqual(await hourly(), await hourlyRaw());
    });

    it('reports through the rollup equal the same reports read raw, for ranges that cut days anywhere', async () => {
      const base = Date.parse(`${today}T00:00:00Z`);
      const end = (await b.db.query<{ t: Date }>("SELECT now() + interval '1 minute' AS t")).rows[0]!.t.getTime();
      const ranges: [number, number][] = [
        [base - 3 * DAY, base + DAY],
        [base - 3 * DAY + 12 * 3600_000, end],
        [base - 2 * DAY - 1, base - DAY + 1],
        [base - 3 * DAY + 1, base - DAY - 1],
        [base - 2 * DAY, base - DAY],
        [base - 2 * DAY + 5, base - 2 * DAY + 3600_000],
        [base - 10 * DAY, base - 5 * DAY],
      ];
      for (const [from, to] of ranges) {
        const what = `${new Date(from).toISOString()} to ${new Date(to).toISOString()}`;
        for (const m of [m1, m2]) {
          assert.deepEqual(await salesBySlot(b.db, m, new Date(from), new Date(to)), await salesBySlot(b.db, m, new Date(from), new Date(to), 'raw'), `${m} by slot, ${what}`);
        }
        for (const m of [m1, m2, undefined]) {
          assert.deepEqual(await salesSeries(b.db, 'day', new Date(from), new Date(to), m), await salesSeries(b.db, 'day', new Date(from), new Date(to), m, 'raw'), `${m ?? 'fleet'} series, ${what}`);
        }
      }
      // The widest range the API takes (its last day is not today: read raw, and empty).
      const widest: [Date, Date] = [new Date('1970-01-01T00:00:00Z'), new Date('9999-12-31T23:59:59.999Z')];
      assert.deepEqual(await salesBySlot(b.db, m1, ...widest), await salesBySlot(b.db, m1, ...widest, 'raw'), 'to the year 9999');
      assert.deepEqual(await fleetSummary(b.db), await fleetSummary(b.db, 'raw'));
      const whole = await salesBySlot(b.db, m1, new Date(base - 3 * DAY), new Date(base + DAY));
      assert.equal(whole.sales, stored.filter((e) => e.machine === m1 && e.type === 'vend-ok').length);

      // And they do read the rollup: a count changed there (only there) shows in the whole days, not in the raw reading;
      // the fleet's series reads a closed day's own row.
      const day = new Date(base - 2 * DAY).toISOString().slice(0, 10);
      const from = new Date(base - 3 * DAY);
      const to = new Date(base);
      await b.db.query('UPDATE sales_daily SET sales = sales + 1000 WHERE machine_id = $1 AND day = $2::date AND slot = $3', [m1, day, 'B2']);
      await b.db.query('UPDATE sales_daily_fleet SET sales = sales + 2000 WHERE day = $1::date', [day]);
      try {
        assert.equal((await salesBySlot(b.db, m1, from, to)).sales, (await salesBySlot(b.db, m1, from, to, 'raw')).sales + 1000);
        assert.equal((await salesSeries(b.db, 'day', from, to, m1))[1]!.sales, (await salesSeries(b.db, 'day', from, to, m1, 'raw'))[1]!.sales + 1000);
        assert.equal((await salesSeries(b.db, 'day', from, to, undefined))[1]!.sales, (await salesSeries(b.db, 'day', from, to, undefined, 'raw'))[1]!.sales + 2000);
      } finally {
        await b.db.query('UPDATE sales_daily SET sales = sales - 1000 WHERE machine_id = $1 AND day = $2::date AND slot = $3', [m1, day, 'B2']);
        await b.db.query('UPDATE sales_daily_fleet SET sales = sales - 2000 WHERE day = $1::date', [day]);
      }
    });

    it("the fleet's closed days: written once from the rollup, and read right before they are", async () => {
      const from = new Date(Date.parse(`${today}T00:00:00Z`) - 3 * DAY);
      const to = new Date(Date.parse(`${today}T00:00:00Z`) + DAY);
      const raw = await salesSeries(b.db, 'day', from, to, undefined, 'raw');
      // The migration closed the history's days (all but, within an hour of midnight, yesterday).
      const closed = async () => (await b.db.query<{ day: string }>("SELECT to_char(day, 'YYYY-MM-DD') AS day FROM sales_daily_fleet ORDER BY day")).rows.map((r) => r.day);
      assert.ok((await closed()).includes(new Date(from.getTime()).toISOString().slice(0, 10)));
      assert.ok(!(await closed()).includes(today), 'today is never closed');
      await b.db.query('DELETE FROM sales_daily_fleet');
      assert.deepEqual(await salesSeries(b.db, 'day', from, to, undefined), raw, 'no day closed');
      const n = await closeSalesDays(b.db);
      assert.ok(n >= 2, `${n} days closed`);
      assert.equal(await closeSalesDays(b.db), 0, 'once');
      assert.ok(!(await closed()).includes(today));
      assert.deepEqual(await salesSeries(b.db, 'day', from, to, undefined), raw, 'days closed');
    });

    it('the hourly rollup keeps the last HOURLY_KEEP_DAYS days: older hours are pruned, the others left', async () => {
      const now = Date.now();
      const hour = (ms: number): number => Math.floor(ms / 3600_000);
      const edge = hour(now) - HOURLY_KEEP_DAYS * 24;
      await b.db.query(`INSERT INTO sales_hourly (hour, machine_id, slot, sales) VALUES ($1, $3, 'Z1', 1), ($2, $3, 'Z1', 1), ($1 - 500, $3, 'Z1', 1)`, [edge - 1, edge, m1]);
      const before = await hourly();
      assert.equal(await pruneSalesHours(b.db, new Date(now)), 2);
      assert.deepEqual(await hourly(), before.filter((r) => !(r.startsWith(`${edge - 1} `) || r.startsWith(`${edge - 501} `))));
      assert.ok((await hourly()).includes(`${edge} ${m1} Z1 1`));
      assert.equal(await pruneSalesHours(b.db, new Date(now)), 0);
      await b.db.query(`DELETE FROM sales_hourly WHERE slot = 'Z1'`);
    });
  });
}
