/**
 * Each operator's own alert webhook (docs/alerts.md, docs/tenants.md): two
 * operators, each with a real HTTP receiver, and the platform's global one.
 * An alert on A's machine reaches A's receiver and the global one, never
 * B's; A's receiver failing holds up only A's notifications, retried with
 * the global webhook's backoff on a virtual clock; a changed webhook holds
 * from the next alert, a removed one gets nothing. The API refuses hostile
 * URLs and secrets with 400s that do not repeat them.
 */
import { strict as assert } from 'node:assert';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { AlertEngine } from '../../gateway/alerts/engine.js';
import { OperatorWebhooks } from '../../gateway/alerts/operator-webhooks.js';
import { WebhookSender, type AlertEvent } from '../../gateway/alerts/webhook.js';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import type { Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import type { TimerId } from '../../gateway/time.js';
import { VirtualTime } from '../lib/virtual-time.js';
import { BACKENDS, eventually, type Backend } from './backends.js';

interface Hook {
  body: string;
  headers: IncomingHttpHeaders;
  event: AlertEvent;
}

/** A receiver that answers 503 to the next `failures` requests; `attempts` counts every request. */
async function receiver(name: string): Promise<{ url: string; hooks: Hook[]; attempts: () => number; fail: (n: number) => void; server: Server }> {
  const hooks: Hook[] = [];
  let failures = 0;
  let attempts = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      attempts++;
      if (failures > 0) {
        failures--;
        res.writeHead(503).end('down');
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      hooks.push({ body, headers: req.headers, event: JSON.parse(body) as AlertEvent });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/${name}-path-token`, hooks, attempts: () => attempts, fail: (n) => (failures = n), server };
}

/** Virtual time that remembers every wait asked of it (the webhooks' retry delays and request timeouts). */
class RecordingTime extends VirtualTime {
  readonly waits: number[] = [];
  override set(callback: () => void, ms: number): TimerId {
    this.waits.push(ms);
    return super.set(callback, ms);
  }
}

const SLOT = (qty: number): string => JSON.stringify({ slots: [{ code: 'A1', product: 'Chips', qty, capacity: 10, price: 125 }] });
const sign = (body: string, secret: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const SECRETS = { a: 'a-secret-0123456789', b2: 'b2-secret-0123456789', global: 'global-secret-0123456789' };

for (const backend of BACKENDS) {
  describe(`operators' alert webhooks: ${backend.name}`, function () {
    this.timeout(120000);
    let b: Backend;
    let db: Db;
    let api: FastifyInstance;
    let engine: AlertEngine;
    let commands: CommandService;
    const time = new RecordingTime();
    const logs: string[] = [];
    const r: Record<'a' | 'b' | 'b2' | 'global', Awaited<ReturnType<typeof receiver>>> = {} as never;
    const t = { platform: '', aAdmin: '', aOperator: '', bAdmin: '' };

    const call = (token: string, method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, body?: unknown) =>
      api.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
    const ok = async (token: string, method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, body?: unknown, status = 200): Promise<Record<string, unknown>> => {
      const res = await call(token, method, url, body);
      assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
      return res.json() as Record<string, unknown>;
    };
    /** Store a machine's telemetry and let the engine judge it (as the ingest hook does after a commit). */
    const report = async (machine: string, qty: number): Promise<void> => {
      await db.query(
        `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ($1, true, now(), $2::jsonb, now())
         ON CONFLICT (machine_id) DO UPDATE SET last_seen = now(), telemetry = $2::jsonb, telemetry_at = now()`,
        [machine, SLOT(qty)],
      );
      engine.telemetry([{ machine }]);
      await engine.idle();
    };
    const machinesOf = (hooks: Hook[]): string[] => [...new Set(hooks.map((h) => h.event.alert.machine))].sort();
    const stats = (op: string) => engine.operatorWebhooks!.stats()[op];

    before(async () => {
      b = await backend.open();
      db = b.db;
      await migrate(db);
      for (const k of ['a', 'b', 'b2', 'global'] as const) r[k] = await receiver(k);
      const onLog = (_level: string, m: string): void => void logs.push(m);
      engine = new AlertEngine(db, {
        onLog,
        webhook: new WebhookSender({ url: r.global.url, secret: SECRETS.global, timers: time, onLog }),
        operatorWebhooks: new OperatorWebhooks({ timers: time, onLog }),
      });
      commands = new CommandService(db, () => {});
      api = await buildApi({ db, commands, alerts: engine });
      t.platform = (await createToken(db, 'platform', 'admin', null)).token;
      await ok(t.platform, 'POST', '/operators', { id: 'op-a', name: 'A' }, 201);
      await ok(t.platform, 'POST', '/operators', { id: 'op-b', name: 'B' }, 201);
      t.aAdmin = (await createToken(db, 'a admin', 'admin', 'op-a')).token;
      t.aOperator = (await createToken(db, 'a operator', 'operator', 'op-a')).token;
      t.bAdmin = (await createToken(db, 'b admin', 'admin', 'op-b')).token;
      await ok(t.aAdmin, 'POST', '/machines', { id: 'wa-1' }, 201);
      await ok(t.bAdmin, 'POST', '/machines', { id: 'wb-1' }, 201);
    });

    after(async () => {
      await api?.close();
      await engine?.close();
      commands?.close();
      for (const x of Object.values(r)) x.server.close();
      await b?.close();
    });

    it("sends an operator's alerts to its own webhook only, the global one all; a failing receiver is retried with backoff on the clock and holds up only its operator", async () => {
      assert.deepEqual(await ok(t.aAdmin, 'PUT', '/alert-webhook', { url: r.a.url, secret: SECRETS.a }), { operator: 'op-a', url: r.a.url, signed: true });
      assert.deepEqual(await ok(t.bAdmin, 'PUT', '/alert-webhook', { url: r.b.url }), { operator: 'op-b', url: r.b.url, signed: false });
      // The secret is never answered back.
      const shown = await call(t.aAdmin, 'GET', '/alert-webhook');
      assert.deepEqual(shown.json(), { operator: 'op-a', url: r.a.url, signed: true });
      assert.ok(!shown.body.includes(SECRETS.a));

      r.a.fail(2);
      await report('wa-1', 0);
      await report('wb-1', 0);
      // B's and the global receivers have theirs while A's is still failing.
      await eventually("B's receiver has B's alert", async () => (r.b.hooks.length === 1 ? true : undefined));
      await eventually('the global receiver has both', async () => (r.global.hooks.length === 2 ? true : undefined));
      await eventually("A's first attempt failed", async () => (stats('op-a')?.failures === 1 ? true : undefined));
      assert.equal(r.a.hooks.length, 0);
      // The retries wait on the virtual clock: 500 ms, then twice that.
      await time.advance(500);
      await eventually("A's second attempt failed", async () => (stats('op-a')?.failures === 2 ? true : undefined));
      await time.advance(1000);
      await eventually("A's receiver has A's alert", async () => (r.a.hooks.length === 1 ? true : undefined));
      assert.equal(r.a.attempts(), 3);
      assert.deepEqual(
        time.waits.filter((ms) => ms !== 10000),
        [500, 1000],
        `the retry delays (10,000: each request's timeout): ${time.waits.join(', ')}`,
      );

      assert.deepEqual(machinesOf(r.a.hooks), ['wa-1'], "A's receiver has only A's machine");
      assert.deepEqual(machinesOf(r.b.hooks), ['wb-1'], "B's receiver has only B's machine");
      assert.deepEqual(machinesOf(r.global.hooks), ['wa-1', 'wb-1']);
      assert.equal(r.a.hooks[0]!.event.event, 'opened');
      assert.equal(r.a.hooks[0]!.event.alert.kind, 'slot-empty');
      // Signed as the global webhook signs: the operator's secret for its own, the global secret for the global; B chose none.
      for (const h of r.a.hooks) assert.equal(h.headers['x-vendfleet-signature'], sign(h.body, SECRETS.a));
      for (const h of r.global.hooks) assert.equal(h.headers['x-vendfleet-signature'], sign(h.body, SECRETS.global));
      for (const h of r.b.hooks) assert.equal(h.headers['x-vendfleet-signature'], undefined);
      // The log names the operator and the receiver's origin, never a path or a secret.
      assert.ok(logs.some((l) => l.includes("operator op-a's webhook http://127.0.0.1:")), logs.join('\n'));
      for (const l of logs) for (const hidden of ['path-token', ...Object.values(SECRETS)]) assert.ok(!l.includes(hidden), l);
    });

    it('uses a changed webhook from the next alert on; a removed one gets nothing while the global one still does', async () => {
      const before = { b: r.b.hooks.length, global: r.global.hooks.length };
      await ok(t.bAdmin, 'PUT', '/alert-webhook', { url: r.b2.url, secret: SECRETS.b2 });
      // slot-empty closes, low-stock opens: both to B's new receiver.
      await report('wb-1', 1);
      await eventually("B's new receiver has the change", async () => (r.b2.hooks.length === 2 ? true : undefined));
      assert.deepEqual(r.b2.hooks.map((h) => `${h.event.event} ${h.event.alert.kind}`).sort(), ['closed slot-empty', 'opened low-stock']);
      for (const h of r.b2.hooks) assert.equal(h.headers['x-vendfleet-signature'], sign(h.body, SECRETS.b2));
      assert.deepEqual(await ok(t.bAdmin, 'DELETE', '/alert-webhook'), { operator: 'op-b', url: null, signed: false });
      assert.deepEqual(await ok(t.bAdmin, 'GET', '/alert-webhook'), { operator: 'op-b', url: null, signed: false });
      await report('wb-1', 5);
      await eventually('the global receiver has every change', async () => (r.global.hooks.length === before.global + 3 ? true : undefined));
      await engine.operatorWebhooks!.idle();
      assert.equal(r.b2.hooks.length, 2, 'a removed webhook gets nothing');
      assert.equal(r.b.hooks.length, before.b, 'the old one neither');
      assert.deepEqual(machinesOf(r.a.hooks), ['wa-1']);
      // A platform admin sets an operator's, naming it; the default operator otherwise.
      assert.equal((await ok(t.platform, 'PUT', '/alert-webhook?operator=op-b', { url: r.b.url }))['operator'], 'op-b');
      assert.equal((await ok(t.platform, 'GET', '/alert-webhook'))['operator'], 'default');
      await ok(t.platform, 'DELETE', '/alert-webhook?operator=op-b');
    });

    it('refuses hostile webhook URLs and secrets with a 400 that does not repeat them, and keeps the webhook as it was', async () => {
      const kept = await ok(t.aAdmin, 'GET', '/alert-webhook');
      const refused: [unknown, RegExp][] = [
        [{ url: 'ftp://files.invalid/hook' }, /must be an http:\/\/ or https:\/\/ URL/],
        [{ url: 'javascript:alert(1)' }, /must be an http:\/\/ or https:\/\/ URL/],
        [{ url: 'file:///etc/passwd' }, /must be an http:\/\/ or https:\/\/ URL/],
        [{ url: 'https://user:hunter2-pass@hooks.invalid/x' }, /must not carry a user name or password/],
        [{ url: 'https://hunter2-user@hooks.invalid/x' }, /must not carry a user name or password/],
        [{ url: 'not a url hunter2' }, /is not a URL/],
        [{ url: 'http://' }, /is not a URL|has no host/],
        [{ url: `https://hooks.invalid/${'a'.repeat(2100)}` }, /body\/url must NOT have more than 2048 characters/],
        [{ url: '' }, /body\/url must NOT have fewer than 1 characters/],
        [{ url: 'https://hooks.invalid/\u0000hunter2' }, /NUL/],
        [{ url: 42 }, /body\/url must be string/],
        [{ url: ['https://hooks.invalid/'] }, /body\/url must be string/],
        [{}, /must have required property 'url'/],
        [{ url: 'https://hooks.invalid/', secret: 'short' }, /body\/secret must match pattern/],
        [{ url: 'https://hooks.invalid/', secret: 'has a space in it hunter2' }, /body\/secret must match pattern/],
        [{ url: 'https://hooks.invalid/', secret: 'x'.repeat(257) }, /body\/secret must match pattern/],
        [{ url: 'https://hooks.invalid/', secret: 12345678901234567 }, /body\/secret must be string/],
        [{ url: 'https://hooks.invalid/', headers: { x: 1 } }, /must NOT have additional properties/],
      ];
      for (const [body, message] of refused) {
        const res = await api.inject({ method: 'PUT', url: '/alert-webhook', headers: { authorization: `Bearer ${t.aAdmin}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
        assert.equal(res.statusCode, 400, `${JSON.stringify(body).slice(0, 80)}: ${res.body}`);
        assert.equal((res.json() as { error: string }).error, 'bad-request');
        assert.match((res.json() as { message: string }).message, message);
        assert.ok(!res.body.includes('hunter2'), `the answer repeats the input: ${res.body}`);
      }
      // A prototype key, not JSON at all, and a query naming no operator id.
      const proto = await api.inject({ method: 'PUT', url: '/alert-webhook', headers: { authorization: `Bearer ${t.aAdmin}`, 'content-type': 'application/json' }, payload: '{"url":"https://hooks.invalid/","__proto__":{"x":1}}' });
      assert.equal(proto.statusCode, 400, proto.body);
      assert.equal((await api.inject({ method: 'PUT', url: '/alert-webhook', headers: { authorization: `Bearer ${t.aAdmin}`, 'content-type': 'application/json' }, payload: '{"url":' })).statusCode, 400);
      assert.equal((await call(t.aAdmin, 'GET', '/alert-webhook?operator=NOT%20AN%20ID')).statusCode, 400);
      assert.equal((await call(t.aAdmin, 'GET', '/alert-webhook?operator=op-a&extra=1')).statusCode, 400);
      // Admins only: an operator-role token neither reads nor sets it.
      assert.equal((await call(t.aOperator, 'GET', '/alert-webhook')).statusCode, 403);
      assert.equal((await call(t.aOperator, 'PUT', '/alert-webhook', { url: 'https://hooks.invalid/' })).statusCode, 403);
      assert.equal((await call(t.aOperator, 'DELETE', '/alert-webhook')).statusCode, 403);
      assert.deepEqual(await ok(t.aAdmin, 'GET', '/alert-webhook'), kept, 'nothing refused changed the webhook');
    });
  });
}
