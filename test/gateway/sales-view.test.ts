/**
 * The `sales` view and the reports over it when the store already holds
 * vend-ok events whose price or slot is not what the contract allows
 * (stored before events were checked, issue 13): every report still
 * answers, a bad price reads as NULL (the sale counts, its revenue does
 * not) and so does a slot that is not a slot code.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { loadSalesCounts } from '../../gateway/restock/store.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, type Backend } from './backends.js';

/**
 * vend-ok bodies as stored (jsonb keeps 1.0 and 1e30 as written), and what
 * the view should read: the price when it is a whole number of minor units
 * the contract allows (0 to 2^32-1), the slot when it is a slot code.
 */
const ROWS: { body: string; price: string | null; slot: string | null }[] = [
  { body: '{"slot":"A1","price":125}', price: '125', slot: 'A1' },
  { body: '{"slot":"A1","price":4294967295}', price: '4294967295', slot: 'A1' },
  { body: '{"slot":"B2","price":0}', price: '0', slot: 'B2' },
  { body: '{"slot":"B2","price":1.0}', price: '1', slot: 'B2' },
  { body: '{"slot":"#12","price":50}', price: '50', slot: '#12' },
  { body: '{"slot":"A1","price":"abc"}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":"125"}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":1.5}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":-5}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":4294967296}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":1e15}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":9223372036854775808}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":1e30}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":null}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":true}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":{"v":1}}', price: null, slot: 'A1' },
  { body: '{"slot":"A1","price":[1]}', price: null, slot: 'A1' },
  { body: '{"slot":"A1"}', price: null, slot: 'A1' },
  { body: '{"slot":7,"price":100}', price: '100', slot: null },
  { body: '{"slot":{"x":"A1"},"price":100}', price: '100', slot: null },
  { body: '{"slot":"a1","price":100}', price: '100', slot: null },
  { body: `{"slot":"${'X'.repeat(5000)}","price":100}`, price: '100', slot: null },
  { body: '{"price":100}', price: '100', slot: null },
];

for (const backend of BACKENDS) {
  describe(`sales reports over events stored before the contract: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let viewer: string;
    const machine = `sv${process.pid % 10000}x${Math.floor(Math.random() * 1e6)}`;
    const get = (url: string) => api.inject({ method: 'GET', url, headers: { authorization: `Bearer ${viewer}` } });

    before(async () => {
      b = await backend.open();
      // The events go in as a store before the daily rollup held them; its migration (14) then counts them.
      await migrate(b.db, 13);
      commands = new CommandService(b.db, () => {});
      await commands.provision(machine);
      api = await buildApi({ db: b.db, commands });
      viewer = (await createToken(b.db, 'sales viewer', 'viewer')).token;
      // Straight into the table, as the ingest stored them before events were checked.
      for (const [i, r] of ROWS.entries()) {
        const body = `{"seq":${i + 1},"t":${i + 1},"type":"vend-ok",${r.body.slice(1)}`;
        await b.db.query(`INSERT INTO events (machine_id, seq, type, machine_time, body) VALUES ($1, $2, 'vend-ok', $2, $3::jsonb)`, [machine, i + 1, body]);
      }
      await migrate(b.db);
    });
    after(async () => {
      await api?.close();
      commands?.close();
      await b?.close();
    });

    it('reads a price only when it is a whole number from 0 to 2^32-1, a slot only when it is a slot code', async () => {
      const r = await b.db.query<{ slot: string | null; price: string | null }>('SELECT slot, price::text AS price FROM sales WHERE machine_id = $1 ORDER BY sales.seq', [machine]);
      assert.deepEqual(
        r.rows.map((x) => [x.slot, x.price]),
        ROWS.map((x) => [x.slot, x.price]),
      );
    });

    it('answers every sales report', async () => {
      const good = ROWS.filter((x) => x.price !== null);
      const revenue = good.reduce((a, x) => a + Number(x.price!), 0);
      const byMachine = await get(`/machines/${machine}/sales`);
      assert.equal(byMachine.statusCode, 200, byMachine.body);
      const m = byMachine.json() as { sales: number; revenue: number; bySlot: { slot: string; sales: number; revenue: number }[] };
      assert.equal(m.sales, ROWS.length, `every vend-ok is a sale: ${byMachine.body}`);
      assert.equal(m.revenue, revenue);
      assert.deepEqual(m.bySlot.map((s) => [s.slot, s.sales]), [
        ['#12', 1],
        ['A1', ROWS.filter((x) => x.slot === 'A1').length],
        ['B2', ROWS.filter((x) => x.slot === 'B2').length],
      ]);
      assert.equal(m.bySlot[1]!.revenue, 125 + 4294967295);

      const summary = await get('/fleet/summary');
      assert.equal(summary.statusCode, 200, summary.body);
      assert.ok((summary.json() as { last24h: { sales: number } }).last24h.sales >= ROWS.length);

      const series = await get(`/sales/series?machine=${machine}&bucket=hour`);
      assert.equal(series.statusCode, 200, series.body);
      const points = (series.json() as { points: { sales: number; revenue: number }[] }).points;
      assert.equal(points.reduce((a, p) => a + p.sales, 0), ROWS.length);

      const counts = await loadSalesCounts(b.db, [machine], new Date(Date.now() - 3600000), new Date(Date.now() + 3600000));
      assert.deepEqual([...counts.get(machine)!.keys()].sort(), ['#12', 'A1', 'B2'], 'slots that are not slot codes are left out');

      const forecast = await get(`/machines/${machine}/forecast`);
      assert.equal(forecast.statusCode, 200, forecast.body);
    });
  });
}
