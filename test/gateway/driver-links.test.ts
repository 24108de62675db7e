/**
 * Driver links over the API (docs/restocking.md "The driver's page"): a link
 * reads its own route and restocks the slots on its pick lists, once each
 * however often tapped; another machine (the operator's own not on the
 * route, or another operator's), another slot, the operator API with the
 * link, and the driver API with an API token are all refused; an expired,
 * revoked or unknown link is told so; another operator's route is not found.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import type { Db } from '../../gateway/store/db.js';
import { closeApi, openApi, setTelemetry } from './api-harness.js';
import { BACKENDS, type Backend } from './backends.js';

for (const backend of BACKENDS) {
  describe(`driver links: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let db: Db;
    let commands: CommandService;
    let api: FastifyInstance;
    const t = { a: '', b: '', aViewer: '' };

    const call = (auth: string | undefined, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) =>
      api.inject({ method, url, headers: { ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });

    before(async () => {
      ({ b, db, commands, api } = await openApi(backend));
      await api.ready();
      const platform = (await createToken(db, 'platform', 'admin')).token;
      for (const id of ['op-a', 'op-b']) assert.equal((await call(platform, 'POST', '/operators', { id, name: id })).statusCode, 201);
      t.a = (await createToken(db, 'a admin', 'admin', 'op-a')).token;
      t.aViewer = (await createToken(db, 'a viewer', 'viewer', 'op-a')).token;
      t.b = (await createToken(db, 'b admin', 'admin', 'op-b')).token;
      const telemetry = { slots: [{ code: 'A1', product: 'Chips', qty: 2, capacity: 10, price: 125 }, { code: 'B2', product: 'Soda', qty: 4, capacity: 8, price: 150 }, { code: 'C3', product: 'Gum', qty: 1, price: 90 }, { code: 'D4', product: 'Mints', qty: 0, capacity: 5, price: 80 }] };
      for (const [token, id] of [[t.a, 'da-1'], [t.a, 'da-2'], [t.b, 'db-1']] as const) {
        assert.equal((await call(token, 'POST', '/machines', { id })).statusCode, 201);
        await setTelemetry(db, id, telemetry, false);
        assert.equal((await call(token, 'PUT', `/machines/${id}/location`, { lat: 41.88, lon: -87.63 })).statusCode, 200);
      }
    });

    after(() => closeApi({ api, commands, b }));

    const link = async (token: string, body: Record<string, unknown>): Promise<{ id: string; secret: string; link: string }> => {
      const res = await call(token, 'POST', '/driver-links', body);
      assert.equal(res.statusCode, 201, res.body);
      return res.json() as { id: string; secret: string; link: string };
    };

    it('reads its route, and restocks a slot on it once however often it is sent', async () => {
      const l = await link(t.a, { machines: ['da-1'], name: 'north loop' });
      assert.match(l.secret, /^dl_[\w-]{43}$/);
      assert.equal(l.link, `/driver#${l.secret}`);
      const route = await call(l.secret, 'GET', '/driver/route');
      assert.equal(route.statusCode, 200, route.body);
      const r = route.json() as { name: string; route: { stops: { machine: string; picklist: { lines: { slot: string; load: number }[] } }[] } };
      assert.equal(r.name, 'north loop');
      assert.deepEqual(r.route.stops.map((s) => s.machine), ['da-1']);
      assert.deepEqual(r.route.stops[0]!.picklist.lines.map((x) => [x.slot, x.load]), [['A1', 8], ['B2', 4], ['C3', 0], ['D4', 5]]);
      const first = await call(l.secret, 'POST', '/driver/restock', { machine: 'da-1', slot: 'A1' });
      assert.equal(first.statusCode, 202, first.body);
      const c = first.json() as { command: string; status: string; args: unknown; repeated: boolean };
      assert.deepEqual(c.args, { slots: { A1: { qty: 10 } } }, 'filled to the capacity on the pick list');
      assert.equal(c.repeated, false);
      // The tap sent again (a retry after a lost answer, two taps at once): the same command, no second restock.
      const again = await Promise.all([1, 2, 3].map(() => call(l.secret, 'POST', '/driver/restock', { machine: 'da-1', slot: 'A1' })));
      for (const a of again) {
        assert.equal(a.statusCode, 200, a.body);
        assert.equal((a.json() as { command: string }).command, c.command);
      }
      const n = await db.query<{ n: string }>("SELECT count(*) AS n FROM commands WHERE machine_id = 'da-1' AND type = 'restock'");
      assert.equal(Number(n.rows[0]!.n), 1);
      const read = await call(l.secret, 'GET', `/driver/restock/${c.command}`);
      assert.equal(read.statusCode, 200, read.body);
      assert.deepEqual({ ...(read.json() as Record<string, unknown>), status: 'x' }, { command: c.command, machine: 'da-1', slot: 'A1', status: 'x', reason: null, args: { slots: { A1: { qty: 10 } } } });
      // The route says what was sent, for a page opened again.
      const restocks = ((await call(l.secret, 'GET', '/driver/route')).json() as { restocks: { machine: string; slot: string; command: string }[] }).restocks;
      assert.deepEqual(restocks.map((x) => [x.machine, x.slot, x.command]), [['da-1', 'A1', c.command]]);
    });

    it('lets a slot be sent again once its restock restocked nothing (refused)', async () => {
      const l = await link(t.a, { machines: ['da-1'] });
      const first = (await call(l.secret, 'POST', '/driver/restock', { machine: 'da-1', slot: 'B2' })).json() as { command: string };
      await db.query("UPDATE commands SET status = 'refused', outcome = '{\"outcome\":\"refused\",\"reason\":\"unknown-slot\"}'::jsonb WHERE id = $1", [first.command]);
      const told = (await call(l.secret, 'GET', `/driver/restock/${first.command}`)).json() as { status: string; reason: string };
      assert.deepEqual([told.status, told.reason], ['refused', 'unknown-slot']);
      const second = await call(l.secret, 'POST', '/driver/restock', { machine: 'da-1', slot: 'B2' });
      assert.equal(second.statusCode, 202, second.body);
      assert.notEqual((second.json() as { command: string }).command, first.command);
    });

    it("refuses what is not on its route: another machine of the operator's, another operator's, another slot, a slot of unknown capacity", async () => {
      const l = await link(t.a, { machines: ['da-1'] });
      const before = await db.query("SELECT id FROM commands WHERE machine_id IN ('da-2', 'db-1') ORDER BY id");
      for (const [machine, slot, status] of [['da-2', 'A1', 404], ['db-1', 'A1', 404], ['da-1', 'Z9', 404], ['da-1', 'C3', 400]] as const) {
        const res = await call(l.secret, 'POST', '/driver/restock', { machine, slot });
        assert.equal(res.statusCode, status, `${machine} ${slot}: ${res.body}`);
      }
      assert.deepEqual((await db.query("SELECT id FROM commands WHERE machine_id IN ('da-2', 'db-1') ORDER BY id")).rows, before.rows);
      // The link is no API token, and an API token no link.
      for (const url of ['/machines/da-1', '/machines/da-1/slots', '/route']) assert.equal((await call(l.secret, 'GET', url)).statusCode, 401, url);
      assert.equal((await call(l.secret, 'POST', '/machines/da-1/commands', { type: 'lock' })).statusCode, 401);
      assert.equal((await call(t.a, 'GET', '/driver/route')).statusCode, 401);
      // Another command of the operator's, not sent through this link: not found.
      const own = (await call(t.a, 'POST', '/machines/da-1/commands', { type: 'report' })).json() as { id: string };
      assert.equal((await call(l.secret, 'GET', `/driver/restock/${own.id}`)).statusCode, 404);
    });

    it("makes links for the operator's own machines only, and needs the operator role", async () => {
      assert.equal((await call(t.a, 'POST', '/driver-links', { machines: ['db-1'] })).statusCode, 404);
      assert.equal((await call(t.a, 'POST', '/driver-links', { machines: ['da-1'], expiresAt: new Date(Date.now() - 1000).toISOString() })).statusCode, 400);
      assert.equal((await call(t.aViewer, 'POST', '/driver-links', { machines: ['da-1'] })).statusCode, 403);
      // Without machines named: the operator's that need a visit (all of A's here, none of B's).
      const l = await link(t.a, {});
      const stops = ((await call(l.secret, 'GET', '/driver/route')).json() as { route: { stops: { machine: string }[] } }).route.stops;
      assert.deepEqual(stops.map((s) => s.machine).sort(), ['da-1', 'da-2']);
      // B's link is not A's to revoke.
      const bl = await link(t.b, { machines: ['db-1'] });
      assert.equal((await call(t.a, 'DELETE', `/driver-links/${bl.id}`)).statusCode, 404);
      assert.equal((await call(bl.secret, 'GET', '/driver/route')).statusCode, 200);
    });

    it('tells an expired, revoked or unknown link apart', async () => {
      const expired = await link(t.a, { machines: ['da-1'] });
      await db.query("UPDATE driver_links SET expires_at = now() - interval '1 second' WHERE id = $1", [expired.id]);
      const revoked = await link(t.a, { machines: ['da-1'] });
      assert.equal((await call(t.a, 'DELETE', `/driver-links/${revoked.id}`)).statusCode, 204);
      for (const [secret, words] of [[expired.secret, /expired/], [revoked.secret, /revoked/], ['dl_nothing-like-it', /not known/], ['vf_x', /driver link is needed/]] as const) {
        for (const [method, url, body] of [['GET', '/driver/route', undefined], ['POST', '/driver/restock', { machine: 'da-1', slot: 'A1' }]] as const) {
          const res = await call(secret, method, url, body);
          assert.equal(res.statusCode, 401, `${url}: ${res.body}`);
          assert.match((res.json() as { message: string }).message, words);
        }
      }
    });
  });
}
