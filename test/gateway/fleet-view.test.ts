/**
 * What the dashboard's fleet view reads from the API (issue 18): GET
 * /machines gives every machine its operator, its stock from its last
 * telemetry (summed in the store, whatever the telemetry holds), whether it
 * needs restocking, its money and its open critical alerts; GET
 * /fleet/summary gives today's revenue per currency, each machine's sales
 * in the currency its telemetry names (the old sum stays).
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { restockTodayOf } from '../../gateway/restock/today.js';
import { ensureEventMonth, monthOf } from '../../gateway/store/event-partitions.js';
import { rebuildRollup } from '../../gateway/store/rollup.js';
import { closeApi, openApi, setTelemetry } from './api-harness.js';
import { BACKENDS, type Backend } from './backends.js';

const slot = (code: string, qty: unknown, capacity?: unknown): Record<string, unknown> => ({ code, qty, price: 100, ...(capacity !== undefined ? { capacity } : {}) });

/** Each machine's last telemetry, and what the list should say of it (worked out by hand). */
const MACHINES: { id: string; telemetry: unknown; stock: { units: number; capacity: number; percent: number } | null; needsRestock: boolean; money: { currency: string; decimals: number } | null }[] = [
  // One slot empty: 3 of 15, and a visit.
  { id: 'fv-usd', telemetry: { currency: 'USD', decimals: 2, slots: [slot('A1', 3, 10), slot('A2', 0, 5)] }, stock: { units: 3, capacity: 15, percent: 20 }, needsRestock: true, money: { currency: 'USD', decimals: 2 } },
  { id: 'fv-eur', telemetry: { currency: 'EUR', decimals: 2, slots: [slot('A1', 8, 10)] }, stock: { units: 8, capacity: 10, percent: 80 }, needsRestock: false, money: { currency: 'EUR', decimals: 2 } },
  // Slots that are not a list: no stock to show (not 0 %).
  { id: 'fv-jpy', telemetry: { currency: 'JPY', decimals: 0, slots: 'many' }, stock: null, needsRestock: false, money: { currency: 'JPY', decimals: 0 } },
  // Entries that are not slots, or whose qty is not a number, are left out; no capacity: room for what it holds.
  {
    id: 'fv-odd',
    telemetry: { currency: 'usd', slots: [slot('A1', 'abc', 10), 5, null, slot('A2', 4), slot('A3', 2, 'ten')] },
    stock: { units: 6, capacity: 6, percent: 100 },
    needsRestock: false,
    money: null,
  },
  // Out of service: a visit though full.
  { id: 'fv-fault', telemetry: { currency: 'USD', decimals: 2, slots: [{ ...slot('A1', 10, 10), fault: true }] }, stock: { units: 10, capacity: 10, percent: 100 }, needsRestock: true, money: { currency: 'USD', decimals: 2 } },
  // Down to a fifth.
  { id: 'fv-low', telemetry: { currency: 'EUR', decimals: 3, slots: [slot('A1', 2, 10), slot('A2', 10, 10)] }, stock: { units: 12, capacity: 20, percent: 60 }, needsRestock: true, money: { currency: 'EUR', decimals: 3 } },
  // Never reported: nothing known.
  { id: 'fv-silent', telemetry: undefined, stock: null, needsRestock: false, money: null },
];

/** Sales today (price in the machine's minor units). */
const SALES: [string, number[]][] = [
  ['fv-usd', [125, 200]],
  ['fv-eur', [300]],
  ['fv-jpy', [500]],
  ['fv-odd', [7]],
  ['fv-low', [1000]],
];

for (const backend of BACKENDS) {
  describe(`the fleet view's API: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let viewer: string;
    const get = async (url: string): Promise<Record<string, unknown>> => {
      const r = await api.inject({ method: 'GET', url, headers: { authorization: `Bearer ${viewer}` } });
      assert.equal(r.statusCode, 200, r.body);
      return r.json() as Record<string, unknown>;
    };

    before(async () => {
      ({ b, commands, api } = await openApi(backend, MACHINES.map((m) => m.id)));
      viewer = (await createToken(b.db, 'fleet viewer', 'viewer')).token;
      for (const m of MACHINES) if (m.telemetry !== undefined) await setTelemetry(b.db, m.id, m.telemetry);
      await ensureEventMonth(b.db, monthOf(Date.now()));
      for (const [id, prices] of SALES) {
        for (const [i, price] of prices.entries()) {
          await b.db.query("INSERT INTO events (machine_id, seq, type, machine_time, body) VALUES ($1, $2, 'vend-ok', $2, $3::jsonb)", [id, i + 1, JSON.stringify({ slot: 'A1', price })]);
        }
      }
      const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
      await b.db.transaction((tx) => rebuildRollup(tx, day(Date.now() - 86_400_000), day(Date.now() + 2 * 86_400_000)));
      await b.db.query("INSERT INTO alerts (machine_id, kind, subject, severity, message) VALUES ('fv-eur', 'device-offline', 'coin', 'critical', 'Coin changer offline (MDB)')");
      await b.db.query("INSERT INTO alerts (machine_id, kind, subject, severity, message) VALUES ('fv-eur', 'slot-empty', 'A2', 'warning', 'A2 is empty')");
    });
    after(() => closeApi({ api, commands, b }));

    it('closes only after a restock-today look a page started has ended: the store may be dropped at once', async () => {
      // A store the service has not looked at yet (PostgreSQL: a new pool; PGlite: the same store, maybe warm).
      const db = await b.reopen();
      const other = await buildApi({ db, commands });
      const r = await other.inject({ method: 'GET', url: '/fleet/summary', headers: { authorization: `Bearer ${viewer}` } });
      assert.equal(r.statusCode, 200, r.body);
      await other.close();
      assert.equal(restockTodayOf(db).looking, 0, 'a look still reads the store after the API closed');
    });

    it("lists every machine's operator, stock, restock need and money from its last telemetry", async () => {
      const list = (await get('/machines'))['machines'] as Record<string, unknown>[];
      const byId = new Map(list.map((m) => [m['id'], m]));
      for (const m of MACHINES) {
        const row = byId.get(m.id);
        assert.ok(row, m.id);
        assert.deepEqual({ operator: row['operator'], stock: row['stock'], needsRestock: row['needsRestock'], money: row['money'] }, { operator: 'default', stock: m.stock, needsRestock: m.needsRestock, money: m.money }, m.id);
      }
    });

    it('counts open critical alerts apart from the others', async () => {
      const list = (await get('/machines'))['machines'] as Record<string, unknown>[];
      const eur = list.find((m) => m['id'] === 'fv-eur')!;
      assert.deepEqual([eur['openAlerts'], eur['criticalAlerts']], [2, 1]);
      assert.equal(list.find((m) => m['id'] === 'fv-usd')!['criticalAlerts'], 0);
    });

    it("sums today's revenue per currency, keeping the old total", async () => {
      const s = (await get('/fleet/summary'))['today'] as { sales: number; revenue: number; revenueByCurrency: unknown };
      assert.equal(s.sales, 6);
      assert.equal(s.revenue, 125 + 200 + 300 + 500 + 7 + 1000);
      // EUR at 2 and at 3 decimals are not one sum of minor units: each its own line.
      assert.deepEqual(s.revenueByCurrency, [
        { currency: 'EUR', decimals: 3, revenue: 1000 },
        { currency: 'JPY', decimals: 0, revenue: 500 },
        { currency: 'USD', decimals: 2, revenue: 325 },
        { currency: 'EUR', decimals: 2, revenue: 300 },
        { currency: null, decimals: 2, revenue: 7 },
      ]);
    });
  });
}
