/**
 * GET /inventory (the dashboard's inventory heatmap), on PGlite and
 * PostgreSQL: the emptiest machines first with their slots as last reported,
 * in the order of the stock GET /machines gives, machines without stock
 * last; entries that are not slots left out; at most `limit` machines and
 * the total; a limit out of bounds or a stray parameter refused. Which
 * operator sees what: tenants.test.ts.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { closeApi, openApi, setTelemetry } from './api-harness.js';
import { BACKENDS, type Backend } from './backends.js';

const slot = (code: string, qty: unknown, capacity?: unknown, more: Record<string, unknown> = {}): Record<string, unknown> => ({ code, qty, price: 100, ...(capacity !== undefined ? { capacity } : {}), ...more });

/** Each machine's last telemetry (undefined: never reported), emptiest first as worked out by hand. */
const MACHINES: { id: string; telemetry: unknown }[] = [
  // 0 of 10: empty.
  { id: 'iv-empty', telemetry: { slots: [slot('A1', 0, 10, { product: 'Cola' }), slot('A2', -2, 0)] } },
  // 3 of 15 (20 %), one slot out of service.
  { id: 'iv-low', telemetry: { slots: [slot('A1', 3, 10, { product: 'Gum', fault: true }), slot('B1', 0, 5)] } },
  // 12 of 20 (60 %); the same 60 % as iv-mid2: by id.
  { id: 'iv-mid1', telemetry: { slots: [slot('A1', 2, 10), slot('A2', 10, 10)] } },
  { id: 'iv-mid2', telemetry: { slots: [slot('C3', 6, 10)] } },
  // Hostile entries are left out: not objects, a qty that is not a number; no capacity: full. A slot without a code
  // counts in the stock (as GET /machines sums it) but has no column to be drawn in: not listed.
  { id: 'iv-odd', telemetry: { slots: [5, null, [1], slot('A1', 'abc', 10), { qty: 3, capacity: 4 }, slot('A2', 4), slot('A3', 2, 'ten')] } },
  // Slots that are not a list, and a machine that never reported: no stock, last.
  { id: 'iv-many', telemetry: { slots: 'many' } },
  { id: 'iv-silent', telemetry: undefined },
];

for (const backend of BACKENDS) {
  describe(`the inventory levels API: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let viewer: string;
    const call = async (url: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const r = await api.inject({ method: 'GET', url, headers: { authorization: `Bearer ${viewer}` } });
      return { status: r.statusCode, body: r.json() as Record<string, unknown> };
    };

    before(async () => {
      ({ b, commands, api } = await openApi(backend, MACHINES.map((m) => m.id)));
      viewer = (await createToken(b.db, 'inventory viewer', 'viewer')).token;
      for (const m of MACHINES) if (m.telemetry !== undefined) await setTelemetry(b.db, m.id, m.telemetry);
    });
    after(() => closeApi({ api, commands, b }));

    it('gives the emptiest machines first with their slots, machines without stock last', async () => {
      const r = await call('/inventory');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const machines = r.body['machines'] as { id: string; stock: unknown; slots: unknown[] }[];
      assert.deepEqual(
        machines.map((m) => m.id),
        ['iv-empty', 'iv-low', 'iv-mid1', 'iv-mid2', 'iv-odd', 'iv-many', 'iv-silent'],
      );
      assert.deepEqual([r.body['total'], r.body['limit']], [7, 50]);
      const byId = new Map(machines.map((m) => [m.id, m]));
      assert.deepEqual(byId.get('iv-low'), {
        id: 'iv-low',
        stock: { units: 3, capacity: 15, percent: 20 },
        slots: [
          { slot: 'A1', product: 'Gum', quantity: 3, capacity: 10, outOfService: true },
          { slot: 'B1', product: null, quantity: 0, capacity: 5, outOfService: false },
        ],
      });
      // A negative count is what the machine said (the stock sum counts it as 0); capacity 0 is kept.
      assert.deepEqual(byId.get('iv-empty')?.slots, [
        { slot: 'A1', product: 'Cola', quantity: 0, capacity: 10, outOfService: false },
        { slot: 'A2', product: null, quantity: -2, capacity: 0, outOfService: false },
      ]);
      assert.deepEqual(byId.get('iv-odd'), {
        id: 'iv-odd',
        stock: { units: 9, capacity: 10, percent: 90 },
        slots: [
          { slot: 'A2', product: null, quantity: 4, capacity: null, outOfService: false },
          { slot: 'A3', product: null, quantity: 2, capacity: null, outOfService: false },
        ],
      });
      assert.deepEqual(byId.get('iv-many'), { id: 'iv-many', stock: null, slots: [] });
      assert.deepEqual(byId.get('iv-silent'), { id: 'iv-silent', stock: null, slots: [] });
    });

    it('orders as GET /machines counts the stock', async () => {
      const list = (await call('/machines')).body['machines'] as { id: string; stock: { percent: number } | null }[];
      const levels = (await call('/inventory')).body['machines'] as { id: string; stock: { percent: number } | null }[];
      const byList = new Map(list.map((m) => [m.id, m.stock]));
      for (const m of levels) assert.deepEqual(m.stock, byList.get(m.id), m.id);
    });

    it('gives at most limit machines, with the total', async () => {
      const r = await call('/inventory?limit=2');
      assert.equal(r.status, 200);
      assert.deepEqual((r.body['machines'] as { id: string }[]).map((m) => m.id), ['iv-empty', 'iv-low']);
      assert.deepEqual([r.body['total'], r.body['limit']], [7, 2]);
    });

    it('refuses a limit out of bounds or not a number, and a parameter it does not know', async () => {
      for (const q of ['limit=0', 'limit=501', 'limit=-1', 'limit=abc', 'limit=2.5', 'limit=1e999', 'operator=op-b', 'limit=%00']) {
        const r = await call(`/inventory?${q}`);
        assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body['error'], 'bad-request', q);
      }
      assert.equal((await api.inject({ method: 'GET', url: '/inventory' })).statusCode, 401);
    });
  });
}
