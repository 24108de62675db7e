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
import { ingestStore } from '../../gateway/ingest/store.js';
import { ensureEventMonth, monthOf } from '../../gateway/store/event-partitions.js';
import { migrate } from '../../gateway/store/migrations.js';
import { closeSalesDays, rebuildRollup } from '../../gateway/store/rollup.js';
import { fleetSummary } from '../../gateway/store/sales.js';
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
      await ensureEventMonth(b.db, monthOf(Date.now() - 86_400_000));
      // Yesterday: a sale just after its midnight (more than 24 hours ago) and one just before its end (within them).
      const midnight = Math.floor(Date.now() / 86_400_000) * 86_400_000;
      for (const [seq, at, price] of [[101, midnight - 86_400_000 + 500, 40], [102, midnight - 1000, 60]] as const) {
        await b.db.query("INSERT INTO events (machine_id, seq, type, machine_time, body, received_at) VALUES ('fv-eur', $1, 'vend-ok', $1, $2::jsonb, $3)", [seq, JSON.stringify({ slot: 'A1', price }), new Date(at)]);
      }
      for (const [id, prices] of SALES) {
        for (const [i, price] of prices.entries()) {
          await b.db.query("INSERT INTO events (machine_id, seq, type, machine_time, body) VALUES ($1, $2, 'vend-ok', $2, $3::jsonb)", [id, i + 1, JSON.stringify({ slot: 'A1', price })]);
        }
      }
      const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
      await b.db.transaction((tx) => rebuildRollup(tx, day(Date.now() - 2 * 86_400_000), day(Date.now() + 2 * 86_400_000)));
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

    it('counts the KPIs as the list marks its machines (offline, with errors), names each currency once, and leaves the 24 hours out when asked', async () => {
      type Row = { online: boolean; errors: unknown[]; criticalAlerts: number; money: { currency: string; decimals: number } | null };
      const list = (await get('/machines'))['machines'] as Row[];
      const s = await get('/fleet/summary');
      assert.equal(s['offline'], list.filter((m) => !m.online).length);
      assert.equal(s['withErrors'], list.filter((m) => m.errors.length > 0 || m.criticalAlerts > 0).length);
      assert.ok((s['withErrors'] as number) >= 1, 'fv-eur has an open critical alert');
      const money = [...new Map(list.flatMap((m) => (m.money ? [[`${m.money.currency} ${m.money.decimals}`, m.money] as const] : []))).values()];
      assert.deepEqual(s['currencies'], money.sort((a, b) => (a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : a.decimals - b.decimals)));
      // The dashboard's read: the same but for the last 24 hours (null).
      const short = await get('/fleet/summary?last24h=false');
      assert.equal(short['last24h'], null);
      assert.deepEqual({ ...short, last24h: s['last24h'], restockToday: s['restockToday'] }, s);
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

    it('pages the list in id order (limit, cursor) and names machines (ids)', async () => {
      const all = ((await get('/machines'))['machines'] as { id: string }[]).map((m) => m.id);
      assert.deepEqual(all, [...MACHINES.map((m) => m.id)].sort());
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const r: Record<string, unknown> = await get(`/machines?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        const ids = (r['machines'] as { id: string }[]).map((m) => m.id);
        seen.push(...ids);
        cursor = r['next'] as string | null;
        // A full page names the cursor of the next one; the last (short) one none.
        assert.equal(cursor, ids.length === 3 ? ids[2] : null);
        if (cursor === null) break;
      }
      assert.deepEqual(seen, all);
      // Named machines only, in id order, with their alert counts (an unknown id is no row).
      const named = ((await get('/machines?ids=fv-usd,fv-eur,fv-none'))['machines'] as { id: string; openAlerts: number; stock: unknown }[]).map((m) => [m.id, m.openAlerts, m.stock]);
      assert.deepEqual(named, [
        ['fv-eur', 2, MACHINES[1]!.stock],
        ['fv-usd', 0, MACHINES[0]!.stock],
      ]);
      // Without limit the answer is as before: no next.
      assert.equal('next' in (await get('/machines?ids=fv-usd')), false);
    });

    it('refuses a page it cannot serve', async () => {
      const many = Array.from({ length: 501 }, (_, i) => `m${i}`).join(',');
      for (const url of ['/machines?cursor=fv-eur', '/machines?limit=0', '/machines?limit=10001', '/machines?limit=2&cursor=..', '/machines?ids=', '/machines?ids=fv-eur,,fv-usd', '/machines?ids=fv-eur;fv-usd', `/machines?ids=${many}`]) {
        const r = await api.inject({ method: 'GET', url, headers: { authorization: `Bearer ${viewer}` } });
        assert.equal(r.statusCode, 400, `${url}: ${r.body}`);
      }
    });

    it("keeps a machine's stock with its state as new telemetry is ingested, and not when only its status changes", async () => {
      await commands.provision('fv-live');
      const write = (telemetry: { machine: string; text: string }[], statuses: { machine: string; online: boolean; text: string }[] = []) =>
        ingestStore(b.db).write({ at: new Date(), messages: [], telemetry, statuses, rejections: new Map() }, { conflict: () => {} });
      const stock = async () => ((await get('/machines?ids=fv-live'))['machines'] as { stock: unknown; needsRestock: boolean }[]).map((m) => [m.stock, m.needsRestock])[0];
      await write([{ machine: 'fv-live', text: JSON.stringify({ t: 1, slots: [slot('A1', 9, 10), slot('A2', 8, 10)] }) }]);
      assert.deepEqual(await stock(), [{ units: 17, capacity: 20, percent: 85 }, false]);
      await write([{ machine: 'fv-live', text: JSON.stringify({ t: 2, slots: [slot('A1', 0, 10), slot('A2', 8, 10)] }) }]);
      assert.deepEqual(await stock(), [{ units: 8, capacity: 20, percent: 40 }, true]);
      await write([], [{ machine: 'fv-live', online: false, text: '{"v":1,"online":false}' }]);
      assert.deepEqual(await stock(), [{ units: 8, capacity: 20, percent: 40 }, true]);
      // An older report does not replace the state (t goes back): nor does its stock.
      await write([{ machine: 'fv-live', text: JSON.stringify({ t: 1, slots: [slot('A1', 10, 10)] }) }]);
      assert.deepEqual(await stock(), [{ units: 8, capacity: 20, percent: 40 }, true]);
    });

    it('works out the stock of the machines a store held before migration 18', async () => {
      const old = await backend.open();
      try {
        await migrate(old.db, 17);
        await old.db.query("INSERT INTO machines (id) VALUES ('fv-old'), ('fv-old-silent')");
        await old.db.query("INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ('fv-old', true, now(), $1::jsonb, now()), ('fv-old-silent', false, now(), NULL, NULL)", [
          JSON.stringify(MACHINES[0]!.telemetry),
        ]);
        await migrate(old.db);
        const r = await old.db.query<{ id: string; units: string | null; room: string | null; low: boolean | null }>(
          'SELECT machine_id AS id, stock_units::text AS units, stock_room::text AS room, stock_low AS low FROM machine_state ORDER BY machine_id',
        );
        assert.deepEqual(r.rows.map((x) => [x.id, x.units, x.room, x.low]), [
          ['fv-old', '3', '15', true],
          ['fv-old-silent', null, null, null],
        ]);
      } finally {
        await old.close();
      }
    });

    it("counts the 24 hours' sales before midnight either way alike: raw, or yesterday's rollup less its sales up to this time", async () => {
      const raw = (await fleetSummary(b.db, 'raw', null)).last24h;
      // Today's six sales and yesterday's last one (60); yesterday's first is more than 24 hours ago.
      assert.deepEqual(raw, { sales: 7, revenue: 125 + 200 + 300 + 500 + 7 + 1000 + 60 });
      for (const yesterday of ['raw', 'rollup'] as const) {
        assert.deepEqual((await fleetSummary(b.db, 'rollup', null, yesterday)).last24h, raw, yesterday);
        assert.deepEqual((await fleetSummary(b.db, 'rollup', 'default', yesterday)).last24h, raw, `${yesterday}, an operator's`);
        assert.deepEqual((await fleetSummary(b.db, 'rollup', 'nobody', yesterday)).last24h, { sales: 0, revenue: 0 }, `${yesterday}, another operator's`);
      }
      // Yesterday closed (its fleet total written once the day has been over an hour): read from that row.
      await closeSalesDays(b.db);
      assert.deepEqual((await fleetSummary(b.db, 'rollup', null, 'rollup')).last24h, raw);
    });
  });
}
