/**
 * The operator API against a gateway and a simulated machine: tokens and
 * roles, the OpenAPI description, the fleet and product routes, remote
 * purchases with idempotency keys (also across a gateway restart), commands,
 * and bad input answered with clear errors.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { Gateway } from '../../gateway/gateway.js';
import { MachineHost } from '../../hal-sim/host.js';
import { usMachine } from '../sim/fixtures.js';
import { BACKENDS, synced, type Backend } from './backends.js';

/** Keep the machine running while `p` (an HTTP request that waits for the machine) is under way. */
async function running<T>(host: MachineHost, p: Promise<T>): Promise<T> {
  let done = false;
  const out = p.finally(() => {
    done = true;
  });
  while (!done) await host.run(100);
  return out;
}

for (const backend of BACKENDS) {
  describe(`operator API: ${backend.name}`, function () {
    this.timeout(180000);
    let b: Backend;
    let gw: Gateway;
    let api: FastifyInstance;
    let host: MachineHost;
    let admin: string;
    let operator: string;
    let viewer: string;
    const id = `api${process.pid % 10000}${Math.floor(Math.random() * 1e6)}`;

    const call = (method: 'GET' | 'POST', url: string, token: string | undefined, body?: unknown, headers: Record<string, string> = {}) =>
      api.inject({ method, url, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers }, ...(body !== undefined ? { payload: body as string } : {}) });

    before(async () => {
      b = await backend.open();
      gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup });
      api = await buildApi({ db: b.db, commands: gw.commands, purchaseWaitMs: 20000 });
      admin = (await createToken(b.db, 'test admin', 'admin')).token;
      operator = (await createToken(b.db, 'test operator', 'operator')).token;
      viewer = (await createToken(b.db, 'test viewer', 'viewer')).token;
      const made = await call('POST', '/machines', admin, { id });
      assert.equal(made.statusCode, 201, made.body);
      const cfg = made.json() as { commandKeyId: number; commandKey: string };
      host = await MachineHost.start(usMachine(), { target: 'sim', machineId: id, network: { url: b.mqttUrl }, config: cfg });
      await synced(host, 120000);
      // Telemetry with the slots and the changer's tubes reaches the store (the machine may first report
      // before its changer has said what its tubes hold: that report has no tubes).
      for (let i = 0; i < 200; i++) {
        await gw.ingester.flush();
        const r = await b.db.query<{ t: { slots?: unknown[]; tubes?: unknown[] } | null }>('SELECT telemetry AS t FROM machine_state WHERE machine_id = $1', [id]);
        if ((r.rows[0]?.t?.slots?.length ?? 0) > 0 && (r.rows[0]?.t?.tubes?.length ?? 0) > 0) break;
        await host.run(500);
      }
    });
    after(async () => {
      await host?.close();
      await api?.close();
      await gw?.close();
      await b?.close();
    });

    it('wants a token, and the right role', async () => {
      assert.equal((await call('GET', '/machines', undefined)).statusCode, 401);
      assert.equal((await call('GET', '/machines', 'vf_not-a-token')).statusCode, 401);
      assert.equal((await call('GET', '/machines', viewer)).statusCode, 200);
      const denied = await call('POST', `/machines/${id}/purchase`, viewer, { slot: 'A1' }, { 'idempotency-key': 'k0' });
      assert.equal(denied.statusCode, 403);
      assert.match(denied.json().message, /operator role/);
      assert.equal((await call('POST', '/machines', operator, { id: 'x' })).statusCode, 403);
    });

    it('describes itself in OpenAPI at /docs', async () => {
      const doc = (await call('GET', '/docs/json', undefined)).json() as { openapi: string; paths: Record<string, unknown> };
      assert.match(doc.openapi, /^3\./);
      for (const p of ['/machines', '/machines/{id}/slots', '/machines/{id}/products', '/machines/{id}/status/{slot}', '/machines/{id}/denominations', '/machines/{id}/purchase', '/machines/{id}/commands', '/commands/{command}']) {
        assert.ok(doc.paths[p], `${p} documented`);
      }
      assert.equal((await call('GET', '/docs', undefined)).statusCode < 400, true);
      // A purchase's answers, refusals included, say which command, slot and quantity, and how many came out.
      type Schema = { properties?: Record<string, unknown>; required?: string[] };
      const purchase = (doc.paths['/machines/{id}/purchase'] as { post: { responses: Record<string, { content: { 'application/json': { schema: Schema } } }> } }).post.responses;
      for (const status of ['200', '404', '409', '422', '504']) {
        const schema = purchase[status]?.content['application/json'].schema;
        for (const field of ['command', 'slot', 'requested', 'dispensed']) assert.ok(schema?.properties?.[field], `${status} answer documents ${field}`);
      }
      assert.deepEqual(purchase['409']!.content['application/json'].schema.required, ['error', 'message']);
    });

    it('lists products page by page, by category, without sold-out items', async () => {
      const all = (await call('GET', `/machines/${id}/products`, viewer)).json() as { items: { slot: string; category: string }[] };
      assert.deepEqual(all.items.map((i) => i.slot), ['A1', 'B4'], 'C2 is sold out');
      const first = (await call('GET', `/machines/${id}/products?limit=1`, viewer)).json() as { items: { slot: string }[]; nextCursor: string };
      assert.equal(first.items[0]!.slot, 'A1');
      const second = (await call('GET', `/machines/${id}/products?limit=1&cursor=${first.nextCursor}`, viewer)).json() as { items: { slot: string }[]; nextCursor: string | null };
      assert.equal(second.items[0]!.slot, 'B4');
      assert.equal(second.nextCursor, null);
      const cat = all.items.find((i) => i.slot === 'B4')!.category;
      const only = (await call('GET', `/machines/${id}/products?category=${encodeURIComponent(cat)}`, viewer)).json() as { items: { slot: string }[] };
      assert.ok(only.items.some((i) => i.slot === 'B4'));
      assert.ok(only.items.every((i) => i.slot === 'B4' || all.items.find((x) => x.slot === i.slot)!.category === cat));
      // Categories match whatever their case.
      for (const asked of [cat.toUpperCase(), cat.toLowerCase()]) {
        const r = (await call('GET', `/machines/${id}/products?category=${encodeURIComponent(asked)}`, viewer)).json() as { items: { slot: string }[] };
        assert.deepEqual(r.items.map((i) => i.slot), only.items.map((i) => i.slot), asked);
      }
      const listed = (await call('GET', `/machines/${id}/products`, viewer)).json() as { available: boolean; unavailable: string | null; currency: string };
      assert.deepEqual([listed.available, listed.unavailable, listed.currency], [true, null, 'USD']);
      assert.equal((await call('GET', `/machines/${id}/products?cursor=bogus`, viewer)).statusCode, 400);
      assert.equal((await call('GET', `/machines/${id}/products?limit=0`, viewer)).statusCode, 400);
      assert.equal((await call('GET', `/machines/nope/products`, viewer)).statusCode, 404);
    });

    it('shows a machine\'s slots, one slot and the coins in the tubes', async () => {
      const all = (await call('GET', `/machines/${id}/slots`, viewer)).json() as { slots: { slot: string; quantity: number }[] };
      assert.deepEqual(all.slots.map((x) => x.slot), ['A1', 'B4', 'C2'], 'sold-out slots included here');
      const s = (await call('GET', `/machines/${id}/status/A1`, viewer)).json() as { quantity: number; available: boolean; price: number };
      assert.equal(s.quantity, 5);
      assert.equal(s.available, true);
      assert.equal(s.price, 125);
      assert.equal((await call('GET', `/machines/${id}/status/Z9`, viewer)).statusCode, 404);
      const d = (await call('GET', `/machines/${id}/denominations`, viewer)).json() as { denominations: { value: number; count: number }[]; currency: string; decimals: number };
      assert.ok(d.denominations.length > 0 && d.denominations.every((x) => x.count >= 0));
      assert.equal(d.currency, 'USD');
      assert.equal(d.decimals, 2);
    });

    it('sells remotely once per Idempotency-Key, also after the gateway restarts', async () => {
      const before = host.rig.delivered.length;
      const first = await running(host, call('POST', `/machines/${id}/purchase`, operator, { slot: 'A1', quantity: 2 }, { 'idempotency-key': 'order-1' }));
      assert.equal(first.statusCode, 200, first.body);
      const body = first.json() as { status: string; dispensed: number; remaining: number; price: number; charged: number; currency: string; payment: string; change: number };
      assert.equal(body.status, 'dispensed');
      assert.equal(body.dispensed, 2);
      assert.equal(body.remaining, 3);
      // What it cost: the listed price each, charged for what came out, paid elsewhere (no change).
      assert.deepEqual([body.price, body.charged, body.currency, body.payment, body.change], [125, 250, 'USD', 'remote', 0], first.body);
      assert.equal(host.rig.delivered.length, before + 2);
      const again = await call('POST', `/machines/${id}/purchase`, operator, { slot: 'A1', quantity: 2 }, { 'idempotency-key': 'order-1' });
      assert.equal(again.statusCode, 200);
      assert.equal(again.headers['idempotent-replay'], 'true');
      assert.deepEqual(again.json(), first.json());
      // Another gateway process (a restart) on the same store gives the same answer.
      const api2 = await buildApi({ db: b.db, commands: gw.commands });
      try {
        const third = await api2.inject({ method: 'POST', url: `/machines/${id}/purchase`, headers: { authorization: `Bearer ${operator}`, 'idempotency-key': 'order-1' }, payload: { slot: 'A1', quantity: 2 } });
        assert.deepEqual(third.json(), first.json());
      } finally {
        await api2.close();
      }
      await host.run(5000);
      assert.equal(host.rig.delivered.length, before + 2, 'never dispensed twice');
      const reused = await call('POST', `/machines/${id}/purchase`, operator, { slot: 'B4', quantity: 1 }, { 'idempotency-key': 'order-1' });
      assert.equal(reused.statusCode, 422);
    });

    it('gives the key up after a busy refusal, so the same key can buy once the machine is free', async () => {
      const before = host.rig.delivered.length;
      host.select('B4');
      await host.run(200);
      const busy = await running(host, call('POST', `/machines/${id}/purchase`, operator, { slot: 'A1' }, { 'idempotency-key': 'order-busy' }));
      assert.equal(busy.statusCode, 409, busy.body);
      assert.equal(busy.json().error, 'busy');
      host.cancel();
      await host.runUntilIdle();
      const retried = await running(host, call('POST', `/machines/${id}/purchase`, operator, { slot: 'A1' }, { 'idempotency-key': 'order-busy' }));
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal(retried.headers['idempotent-replay'], undefined);
      assert.equal(retried.json().status, 'dispensed');
      assert.notEqual(retried.json().command, busy.json().command);
      // Now the answer is kept: the key never buys twice.
      const replay = await call('POST', `/machines/${id}/purchase`, operator, { slot: 'A1' }, { 'idempotency-key': 'order-busy' });
      assert.equal(replay.headers['idempotent-replay'], 'true');
      assert.deepEqual(replay.json(), retried.json());
      assert.equal(host.rig.delivered.length, before + 1);
    });

    it('sells nothing on an offline machine, and a vend that expired unsent leaves its key free', async () => {
      const off = `${id}off`;
      assert.equal((await call('POST', '/machines', admin, { id: off })).statusCode, 201);
      const listed = (await call('GET', `/machines/${off}/products`, viewer)).json() as { items: unknown[]; available: boolean; unavailable: string };
      assert.deepEqual([listed.items, listed.available, listed.unavailable], [[], false, 'offline']);
      const quick = await buildApi({ db: b.db, commands: gw.commands, purchaseWaitMs: 30000, purchaseTtlS: 1 });
      try {
        const buy = async (): Promise<{ statusCode: number; body: string; headers: Record<string, unknown> }> => {
          const p = quick.inject({ method: 'POST', url: `/machines/${off}/purchase`, headers: { authorization: `Bearer ${operator}`, 'idempotency-key': 'order-off' }, payload: { slot: 'A1' } });
          let settled = false;
          void p.finally(() => (settled = true));
          // The gateway's sweep expires it; run it here rather than wait for the gateway's timer.
          for (let i = 0; i < 300 && !settled; i++) {
            await gw.commands.expire();
            await new Promise((r) => setTimeout(r, 100));
          }
          return p;
        };
        const first = await buy();
        assert.equal(first.statusCode, 504, first.body);
        const second = await buy();
        assert.equal(second.statusCode, 504, second.body);
        assert.equal(second.headers['idempotent-replay'], undefined, 'a fresh attempt, not the stored answer');
        assert.notEqual(JSON.parse(second.body).command, JSON.parse(first.body).command);
      } finally {
        await quick.close();
      }
    });

    it('sells nothing on a locked machine', async () => {
      const lockAndWait = async (type: 'lock' | 'unlock', locked: boolean): Promise<void> => {
        const sent = await call('POST', `/machines/${id}/commands`, operator, { type });
        assert.equal(sent.statusCode, 202, sent.body);
        let seen: boolean | undefined;
        for (const until = Date.now() + 60000; seen !== locked && Date.now() < until; ) {
          await host.run(200);
          await gw.ingester.flush();
          seen = ((await call('GET', `/machines/${id}/status/A1`, viewer)).json() as { machineLocked: boolean }).machineLocked;
        }
        assert.equal(seen, locked);
      };
      await lockAndWait('lock', true);
      const listed = (await call('GET', `/machines/${id}/products`, viewer)).json() as { items: unknown[]; available: boolean; unavailable: string };
      assert.deepEqual([listed.items, listed.available, listed.unavailable], [[], false, 'locked']);
      assert.equal((await call('GET', `/machines/${id}/status/A1`, viewer)).json().available, false);
      await lockAndWait('unlock', false);
      assert.equal(((await call('GET', `/machines/${id}/products`, viewer)).json() as { available: boolean }).available, true);
    });

    it('answers bad purchases with clear errors and never vends for them', async () => {
      const before = host.rig.delivered.length;
      const bad: [unknown, Record<string, string>, number, RegExp][] = [
        [{ slot: 'A1' }, {}, 400, /idempotency-key/],
        [{ slot: 'A1', quantity: -1 }, { 'idempotency-key': 'b1' }, 400, /quantity/],
        [{ slot: 'A1', quantity: 1e9 }, { 'idempotency-key': 'b2' }, 400, /quantity/],
        [{ slot: 'A1', quantity: 'two' }, { 'idempotency-key': 'b3' }, 400, /quantity/],
        [{ slot: "A1' OR 1=1; DROP TABLE events;--" }, { 'idempotency-key': 'b4' }, 400, /slot/],
        [{ slot: 'A1', price: 0 }, { 'idempotency-key': 'b5' }, 400, /additional/],
        ['{"slot": "A1"', { 'idempotency-key': 'b6', 'content-type': 'application/json' }, 400, /JSON/i],
        [JSON.stringify({ slot: 'A1', pad: 'x'.repeat(70000) }), { 'idempotency-key': 'b7', 'content-type': 'application/json' }, 413, /large/i],
      ];
      for (const [body, headers, status, message] of bad) {
        const r = await call('POST', `/machines/${id}/purchase`, operator, body, headers);
        assert.equal(r.statusCode, status, `${JSON.stringify(body).slice(0, 60)}: ${r.body}`);
        assert.match(r.json().message, message);
      }
      // A refusal keeps the purchase's context: which command, slot and quantity, and that nothing came out.
      const sold = await running(host, call('POST', `/machines/${id}/purchase`, operator, { slot: 'C2' }, { 'idempotency-key': 'b8' }));
      assert.equal(sold.statusCode, 409, sold.body);
      const refusal = sold.json() as { error: string; message: string; command: string; slot: string; requested: number; dispensed: number };
      assert.equal(refusal.error, 'sold-out');
      assert.match(refusal.message, /refused: sold-out/);
      assert.match(refusal.command, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, sold.body);
      assert.equal((await call('GET', `/commands/${refusal.command}`, viewer)).json().status, 'refused');
      assert.deepEqual([refusal.slot, refusal.requested, refusal.dispensed], ['C2', 1, 0], sold.body);
      const replay = await call('POST', `/machines/${id}/purchase`, operator, { slot: 'C2' }, { 'idempotency-key': 'b8' });
      assert.equal(replay.statusCode, 409);
      assert.equal(replay.headers['idempotent-replay'], 'true');
      assert.deepEqual(replay.json(), refusal);
      const unknown = await running(host, call('POST', `/machines/${id}/purchase`, operator, { slot: 'Z9', quantity: 2 }, { 'idempotency-key': 'b9' }));
      assert.equal(unknown.statusCode, 404, unknown.body);
      assert.deepEqual([unknown.json().error, unknown.json().slot, unknown.json().requested, unknown.json().dispensed], ['unknown-slot', 'Z9', 2, 0], unknown.body);
      assert.match(unknown.json().command, /^[0-9a-f-]{36}$/, unknown.body);
      assert.equal(host.rig.delivered.length, before);
      const count = await b.db.query<{ n: string }>('SELECT count(*) AS n FROM events');
      assert.ok(Number(count.rows[0]!.n) > 0, 'the events table is still there');
    });

    it('sends commands and shows their status', async () => {
      const sent = await call('POST', `/machines/${id}/commands`, operator, { type: 'set-prices', args: { prices: { B4: 190 } } });
      assert.equal(sent.statusCode, 202, sent.body);
      const c = sent.json() as { id: string; n: number };
      let status = '';
      // Bounded in real time: the command crosses a real broker while the machine runs in virtual time
      // (12 s seen on a 2-core machine at load 10, so the bound leaves room).
      for (const until = Date.now() + 60000; status !== 'applied' && Date.now() < until; ) {
        await host.run(100);
        await gw.ingester.flush();
        status = ((await call('GET', `/commands/${c.id}`, viewer)).json() as { status: string }).status;
      }
      assert.equal(status, 'applied');
      const list = (await call('GET', `/machines/${id}/commands`, viewer)).json() as { commands: { id: string }[] };
      assert.ok(list.commands.some((x) => x.id === c.id));
      assert.equal((await call('POST', `/machines/${id}/commands`, operator, { type: 'self-destruct' })).statusCode, 400);
      assert.equal((await call('POST', `/machines/${id}/commands`, operator, { type: 'rotate-key' })).statusCode, 403);
      assert.equal((await call('POST', `/machines/nope/commands`, operator, { type: 'lock' })).statusCode, 404);
      assert.equal((await call('GET', `/commands/not-a-uuid`, viewer)).statusCode, 400);
    });
  });
}
