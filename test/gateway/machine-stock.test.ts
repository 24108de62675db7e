/**
 * A machine's stock and telemetry revision (migrations 18 and 20) on both
 * stores, written through ingest's own statements: worked out when telemetry
 * is written (a new state row or an update), left alone when only events or
 * a status touch the row (the trigger no longer runs for those upserts).
 */
import { strict as assert } from 'node:assert';
import { ingestStore } from '../../gateway/ingest/store.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, type Backend } from './backends.js';

/** Reports' slots of every shape the stock's rules tell apart (migration 18): each stored, then each replaced by the next. */
const SHAPES: unknown[] = [
  [{ code: 'A1', qty: 4, capacity: 10 }, { code: 'A2', qty: 10, capacity: 10 }],
  [{ qty: 0, capacity: 10 }, { qty: 3 }],
  [{ qty: -2, capacity: -5 }, { qty: 1.5, capacity: '12' }, { qty: '7', capacity: 10 }],
  [{ qty: 9, capacity: 10, fault: true }, { qty: 9, capacity: 10, fault: 'true' }],
  [{ qty: 2, capacity: 10 }],
  [],
  'not a list',
  [1, null, 'x', [2], { qty: null }],
  null,
  [{ qty: 6, capacity: 0 }, { qty: 0 }],
];

interface StockRow {
  units: string | null;
  room: string | null;
  low: boolean | null;
  rev: string | null;
}

for (const backend of BACKENDS) {
  describe(`machine stock kept with the state (${backend.name})`, function () {
    this.timeout(120000);
    let b: Backend;
    before(async () => {
      b = await backend.open();
      await migrate(b.db);
      await addMachines(b.db, ['stock-1', 'stock-2', 'stock-3', ...SHAPES.map((_, i) => `shape-${i}`)]);
    });
    after(async () => {
      await b?.close();
    });

    const stock = async (machine: string): Promise<StockRow | undefined> =>
      (await b.db.query<StockRow>('SELECT stock_units::text AS units, stock_room::text AS room, stock_low AS low, telemetry_rev::text AS rev FROM machine_state WHERE machine_id = $1', [machine])).rows[0];
    const write = (o: { events?: { machine: string; seq: number }[]; telemetry?: { machine: string; qty: number[] }[]; statuses?: string[] }) =>
      ingestStore(b.db).write(
        {
          at: new Date(),
          messages: (o.events ?? []).map((e) => ({ machine: e.machine, to: e.seq, events: [{ seq: e.seq, t: e.seq, type: 'coin-in', body: { seq: e.seq, t: e.seq, type: 'coin-in', value: 25 } }], refused: [] })),
          telemetry: (o.telemetry ?? []).map((t) => ({ machine: t.machine, text: JSON.stringify({ v: 1, t: 1, slots: t.qty.map((qty, i) => ({ code: `A${i + 1}`, qty, capacity: 10, fault: false })) }) })),
          statuses: (o.statuses ?? []).map((machine) => ({ machine, online: true, text: '{"v":1,"online":true}' })),
          rejections: new Map(),
        },
        { conflict: () => assert.fail('no conflict here') },
      );

    it('a state row made by events or a status has no stock and no revision; its first telemetry gives both', async () => {
      await write({ events: [{ machine: 'stock-1', seq: 1 }], statuses: ['stock-2'] });
      assert.deepEqual(await stock('stock-1'), { units: null, room: null, low: null, rev: null });
      assert.deepEqual(await stock('stock-2'), { units: null, room: null, low: null, rev: null });
      await write({ telemetry: [{ machine: 'stock-1', qty: [4, 10] }] });
      const s = await stock('stock-1');
      assert.deepEqual({ ...s, rev: undefined }, { units: '14', room: '20', low: false, rev: undefined });
      assert.ok(s?.rev !== null && s?.rev !== undefined, 'a revision once telemetry is written');
    });

    it('telemetry in a new state row works its stock out; events and statuses after it leave stock and revision as they were', async () => {
      await b.db.query("DELETE FROM machine_state WHERE machine_id = 'stock-2'");
      await write({ telemetry: [{ machine: 'stock-2', qty: [0, 7] }] });
      const first = await stock('stock-2');
      assert.deepEqual({ ...first, rev: undefined }, { units: '7', room: '20', low: true, rev: undefined });
      assert.ok(first?.rev !== null);
      await write({ events: [{ machine: 'stock-2', seq: 1 }, { machine: 'stock-1', seq: 2 }], statuses: ['stock-2'] });
      assert.deepEqual(await stock('stock-2'), first);
      await write({ telemetry: [{ machine: 'stock-2', qty: [9, 9] }] });
      const second = await stock('stock-2');
      assert.deepEqual({ ...second, rev: undefined }, { units: '18', room: '20', low: false, rev: undefined });
      assert.ok(BigInt(second!.rev!) > BigInt(first!.rev!), 'a new revision with new telemetry');
    });

    it('telemetry whose slots are the same as the stored ones keeps the stock and moves the revision (migration 21)', async () => {
      await write({ telemetry: [{ machine: 'stock-3', qty: [2, 8] }] });
      const first = await stock('stock-3');
      assert.deepEqual({ ...first, rev: undefined }, { units: '10', room: '20', low: true, rev: undefined });
      // A stock no slots give: kept while the slots stay the same (the stock is not worked out again), replaced when they change.
      await b.db.query("UPDATE machine_state SET stock_units = 999 WHERE machine_id = 'stock-3'");
      await write({ telemetry: [{ machine: 'stock-3', qty: [2, 8] }] });
      const same = await stock('stock-3');
      assert.equal(same?.units, '999', 'the same slots: not worked out again');
      assert.ok(BigInt(same!.rev!) > BigInt(first!.rev!), 'a new revision at each write of the telemetry');
      await write({ telemetry: [{ machine: 'stock-3', qty: [2, 7] }] });
      const changed = await stock('stock-3');
      assert.deepEqual({ ...changed, rev: undefined }, { units: '9', room: '20', low: true, rev: undefined });
      assert.ok(BigInt(changed!.rev!) > BigInt(same!.rev!));
    });

    it('a batch of events and telemetry (the telemetry written in the statement that locks the events\' marks) stores both', async () => {
      await addMachines(b.db, ['mixed-1', 'mixed-2']);
      await write({ events: [{ machine: 'mixed-1', seq: 1 }, { machine: 'mixed-2', seq: 1 }], telemetry: [{ machine: 'mixed-2', qty: [3, 3] }, { machine: 'mixed-1', qty: [1, 2] }] });
      await write({ events: [{ machine: 'mixed-1', seq: 2 }, { machine: 'mixed-1', seq: 1 }], telemetry: [{ machine: 'mixed-1', qty: [5, 5] }] });
      const rows = await b.db.query<{ id: string; events: string; last_seq: string; units: string | null; history: string; stored: string }>(
        `SELECT s.machine_id AS id, s.events::text AS events, s.last_seq::text AS last_seq, s.stock_units::text AS units,
                (SELECT count(*) FROM telemetry t WHERE t.machine_id = s.machine_id)::text AS history,
                (SELECT count(*) FROM events e WHERE e.machine_id = s.machine_id)::text AS stored
         FROM machine_state s WHERE s.machine_id LIKE 'mixed-%' ORDER BY 1`,
      );
      assert.deepEqual(rows.rows, [
        { id: 'mixed-1', events: '2', last_seq: '2', units: '10', history: '2', stored: '2' },
        { id: 'mixed-2', events: '1', last_seq: '1', units: '6', history: '1', stored: '1' },
      ]);
    });

    it("the trigger's stock is machine_stock()'s for every shape of slots, in a new state row and on each update", async () => {
      const report = (slots: unknown, t: number): string => JSON.stringify(slots === undefined ? { v: 1, t } : { v: 1, t, slots });
      const check = async (what: string): Promise<void> => {
        const r = await b.db.query<{ id: string; same: boolean; units: string | null; want: string | null }>(
          `SELECT s.machine_id AS id, (s.stock_units, s.stock_room, s.stock_low) IS NOT DISTINCT FROM (x.units, x.room, x.low) AS same, s.stock_units::text AS units, x.units::text AS want
           FROM machine_state s, machine_stock(s.telemetry) x WHERE s.machine_id LIKE 'shape-%' ORDER BY 1`,
        );
        assert.equal(r.rows.length, SHAPES.length);
        for (const row of r.rows) assert.ok(row.same, `${what}: ${row.id} has ${row.units}, machine_stock() says ${row.want}`);
      };
      const writeShapes = (shift: number, t: number) =>
        ingestStore(b.db).write(
          { at: new Date(), messages: [], telemetry: SHAPES.map((_, i) => ({ machine: `shape-${i}`, text: report(SHAPES[(i + shift) % SHAPES.length], t) })), statuses: [], rejections: new Map() },
          { conflict: () => assert.fail('no conflict here') },
        );
      await writeShapes(0, 1);
      await check('new rows');
      for (let shift = 1; shift <= SHAPES.length; shift++) {
        await writeShapes(shift, 1 + shift);
        await check(`update ${shift}`);
      }
      // No slots at all in a report, after slots.
      await ingestStore(b.db).write(
        { at: new Date(), messages: [], telemetry: SHAPES.map((_, i) => ({ machine: `shape-${i}`, text: report(undefined, 100) })), statuses: [], rejections: new Map() },
        { conflict: () => assert.fail('no conflict here') },
      );
      await check('no slots');
    });
  });
}
