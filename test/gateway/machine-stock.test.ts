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
      await addMachines(b.db, ['stock-1', 'stock-2']);
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
  });
}
