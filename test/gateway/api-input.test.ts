/**
 * What the operator API accepts, on both stores: dates and text that
 * PostgreSQL or JavaScript cannot hold, numbers out of range, JSON bodies
 * taken as they are (no type coercion), query strings and path parameters
 * turned into numbers only when they plainly are, commands bigger than a
 * machine takes, the Authorization scheme in any case, the security
 * headers on every answer, and event streams ended when the API closes. Each refusal is a 400 with a message saying what
 * is wrong, and nothing refused is stored or sent.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { MAX_COMMAND_BYTES } from '../../firmware/command/command.js';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, count, type Backend } from './backends.js';

for (const backend of BACKENDS) {
  describe(`operator API input checks: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let admin: string;
    const published: Buffer[] = [];

    before(async () => {
      b = await backend.open();
      await migrate(b.db);
      commands = new CommandService(b.db, (_topic, payload) => published.push(payload));
      await commands.provision('vm-1');
      // Online, so that an accepted command is published at once (and a refused one visibly is not).
      await b.db.query(
        `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ('vm-1', true, now(), $1::jsonb, now())`,
        [JSON.stringify({ slots: [{ code: 'A1', product: 'Chips', category: 'Snacks', qty: 3, capacity: 10, price: 125 }], tubes: [{ value: 25, count: 10 }] })],
      );
      api = await buildApi({ db: b.db, commands, purchaseWaitMs: 50 });
      admin = (await createToken(b.db, 'input admin', 'admin')).token;
    });
    after(async () => {
      await api?.close();
      commands?.close();
      await b?.close();
    });

    const call = (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
      api.inject({
        method,
        url,
        headers: { authorization: `Bearer ${admin}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
    const refused = (r: LightMyRequestResponse, what: string, message: RegExp): void => {
      assert.equal(r.statusCode, 400, `${what}: ${r.statusCode} ${r.body.slice(0, 300)}`);
      const e = r.json() as { error: unknown; message: unknown };
      assert.equal(e.error, 'bad-request', `${what}: ${r.body}`);
      assert.match(String(e.message), message, `${what}: ${r.body}`);
    };
    const vends = (): Promise<number> => count(b.db, "SELECT count(*) AS n FROM commands WHERE type = 'vend'");

    it('refuses dates PostgreSQL or JavaScript cannot hold, saying what a date is', async () => {
      const bad = [
        '0000-01-01T00:00:00Z',
        '9999-99-99',
        '2026-02-30T00:00:00Z',
        '2026-01-01T23:59:60Z',
        '2026-01-01T24:00:00Z',
        '1969-12-31T23:59:59Z',
        '1970-01-01T00:00:00+01:00',
        '9999-12-31T23:59:59-01:00',
        '99999-01-01T00:00:00Z',
        '+275760-09-13T00:00:00Z',
        '2026-01-01T00:00:00+24:00',
        '2026-01-01',
        'now',
        '',
      ];
      for (const d of bad) {
        const q = encodeURIComponent(d);
        refused(await call('GET', `/machines/vm-1/sales?from=${q}`), `sales from ${d}`, /from must be an RFC 3339 date-time.*1970.*9999/);
        refused(await call('GET', `/machines/vm-1/sales?to=${q}`), `sales to ${d}`, /to must be an RFC 3339 date-time/);
        refused(await call('GET', `/sales/series?bucket=day&from=${q}&to=2026-01-02T00:00:00Z`), `series from ${d}`, /from must be an RFC 3339 date-time/);
        refused(await call('GET', `/sales/series?bucket=day&from=2026-01-01T00:00:00Z&to=${q}`), `series to ${d}`, /to must be an RFC 3339 date-time/);
      }
      // The same date twice, a range the wrong way round, and more buckets than a chart can use.
      refused(await call('GET', '/machines/vm-1/sales?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z'), 'from after to', /"from" is after "to"/);
      refused(await call('GET', '/sales/series?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z'), 'empty series', /before "to"/);
      refused(await call('GET', '/sales/series?bucket=minute&from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59Z'), 'absurd series', /more than 2000 minutes/);
      // The edges of what is taken, any offset, fractions of a second.
      const all = await call('GET', '/machines/vm-1/sales?from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z');
      assert.equal(all.statusCode, 200, all.body);
      assert.deepEqual([all.json().from, all.json().to], ['1970-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z']);
      const series = await call('GET', '/sales/series?bucket=day&from=2026-01-01T01:00:00%2B01:00&to=2026-01-15T00:00:00.123456789z');
      assert.equal(series.statusCode, 200, series.body);
      assert.equal(series.json().from, '2026-01-01T00:00:00.000Z');
      assert.equal(series.json().points.length, 15);
    });

    it('refuses text PostgreSQL cannot store (NUL, lone surrogates) and nesting without end, wherever it comes in', async () => {
      const commandsBefore = await count(b.db, 'SELECT count(*) AS n FROM commands');
      const sentBefore = published.length;
      refused(await call('PUT', '/machines/vm-1/location', { lat: 1, lon: 2, address: 'Main St\u0000 1' }), 'NUL address', /body\/address must not contain a NUL character/);
      refused(await call('PUT', '/machines/vm-1/location', { lat: 1, lon: 2, address: 'Main St \ud800' }), 'surrogate address', /body\/address .*lone UTF-16 surrogate/);
      refused(await call('PUT', '/machines/vm-1/location', '{"lat":1,"lon":2,"address":"x\\udc00y"}'), 'escaped surrogate address', /surrogate/);
      refused(await call('POST', '/machines/vm-1/commands', { type: 'set-prices', args: { prices: { A1: 100 }, note: 'a\u0000' } }), 'NUL in args', /body\/args\/note must not contain a NUL/);
      refused(await call('POST', '/machines/vm-1/commands', { type: 'set-prices', args: { prices: { 'A1\u0000': 100 } } }), 'NUL in a key', /body\/args\/prices .*NUL/);
      refused(await call('POST', '/machines/vm-1/commands', { type: 'set-prices', args: { prices: { A1: 100 }, note: ['\udfff'] } }), 'surrogate in args', /body\/args\/note\/0 .*surrogate/);
      // Written out: JSON.stringify itself runs out of stack on it.
      const deep = `{"type":"set-prices","args":{"deep":${'['.repeat(5000)}1${']'.repeat(5000)}}}`;
      refused(await call('POST', '/machines/vm-1/commands', deep), 'deep args', /body\/args\/deep\/0\/0.* is nested deeper than 16 levels/);
      refused(await call('PUT', '/alert-rules', '{"lowStock":{"slots":{"A1\\u0000":2}}}'), 'NUL in a rules key', /NUL/);
      refused(await call('GET', '/machines/vm-1/products?category=Snacks%00'), 'NUL in the query', /querystring\/category must not contain a NUL/);
      refused(await call('GET', '/route?depot=1%00,2'), 'NUL in the depot', /querystring\/depot must not contain a NUL/);
      refused(await call('POST', '/machines/vm-1/purchase', { slot: 'A1\u0000' }, { 'idempotency-key': 'nul-1' }), 'NUL slot', /NUL/);
      refused(await call('POST', '/machines', { id: 'vm-\ud83d' }), 'surrogate id', /surrogate/);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM commands'), commandsBefore, 'nothing refused was stored');
      assert.equal(published.length, sentBefore, 'nothing refused was sent');
      // Text that is fine, in any script, goes in and comes back as it was.
      const good = await call('PUT', '/machines/vm-1/location', { lat: 47.3779, lon: 8.5403, address: 'Zürich HB, Gleis 3 🚉 — 北口' });
      assert.equal(good.statusCode, 200, good.body);
      assert.equal((await call('GET', '/machines/vm-1/location')).json().address, 'Zürich HB, Gleis 3 🚉 — 北口');
    });

    it('takes JSON bodies as they are: a string is not a number, a number not a string, a scalar not an array', async () => {
      const before = await vends();
      refused(await call('POST', '/machines', { id: 123456 }), 'numeric id', /body\/id must be string, not number/);
      assert.equal(await count(b.db, "SELECT count(*) AS n FROM machines WHERE id = '123456'"), 0);
      for (const [i, quantity] of ['1', true, [1], null, 1.5, 0, 10, 1e308].entries()) {
        refused(await call('POST', '/machines/vm-1/purchase', { slot: 'A1', quantity }, { 'idempotency-key': `strict-q${i}` }), `quantity ${JSON.stringify(quantity)}`, /body\/quantity must be/);
      }
      for (const [i, slot] of [['A1'], 1, true, null, { code: 'A1' }].entries()) {
        refused(await call('POST', '/machines/vm-1/purchase', { slot, quantity: 1 }, { 'idempotency-key': `strict-s${i}` }), `slot ${JSON.stringify(slot)}`, /body\/slot must be string/);
      }
      assert.equal(await vends(), before, 'no vend for any of them');
      refused(await call('POST', '/machines/vm-1/commands', { type: ['lock'] }), 'array type', /body\/type must be string, not array/);
      refused(await call('POST', '/machines/vm-1/commands', { type: 'lock', ttlS: '60' }), 'string ttl', /body\/ttlS must be integer, not string/);
      refused(await call('POST', '/machines/vm-1/commands', { type: 'lock', args: [] }), 'array args', /body\/args must be object, not array/);
      refused(await call('PUT', '/machines/vm-1/location', { lat: '1', lon: 2 }), 'string lat', /body\/lat must be number, not string/);
      refused(await call('PUT', '/machines/vm-1/location', { lat: null, lon: 2 }), 'null lat', /body\/lat must be number, not null/);
      refused(await call('PUT', '/machines/vm-1/location', { lat: 1, lon: 2, address: 5 }), 'numeric address', /body\/address must be string,null, not number/);
      refused(await call('PUT', '/alert-rules', { offline: { intervals: '3' } }), 'string rule', /body\/offline\/intervals must be integer, not string/);
      refused(await call('PUT', '/alert-rules', { kinds: { 'slot-empty': 'false' } }), 'string flag', /must be boolean, not string/);
      refused(await call('PUT', '/alert-rules', { kinds: { 'slot-empty': 0 } }), 'numeric flag', /must be boolean, not number/);
      const ok = await call('POST', '/machines/vm-1/commands', { type: 'lock', ttlS: 60 });
      assert.equal(ok.statusCode, 202, ok.body);
    });

    it('turns query strings and path parameters into numbers only when they plainly are', async () => {
      assert.equal((await call('GET', '/machines/vm-1/commands?limit=5')).statusCode, 200);
      for (const limit of ['0x10', '1e1', '%205', '5%20', '5&limit=6', 'true', 'NaN', 'Infinity', '-1', '0', '1e308', '1.5', '']) {
        refused(await call('GET', `/machines/vm-1/commands?limit=${limit}`), `limit=${limit}`, /querystring\/limit must be/);
      }
      for (const days of ['1e308', 'NaN', 'Infinity', '-Infinity', '-0.5', '0x5', '2,5']) {
        refused(await call('GET', `/route?days=${days}`), `days=${days}`, /querystring\/days must be/);
      }
      assert.equal((await call('GET', '/route?days=2.5&return=false')).statusCode, 200);
      for (const ret of ['1', 'yes', 'TRUE', 'true&return=false']) refused(await call('GET', `/route?return=${ret}`), `return=${ret}`, /querystring\/return must be boolean/);
      for (const id of ['1e3', '0x10', '99999999999999999999', '-1', '1.0']) {
        refused(await call('GET', `/audits/${id}`), `audit ${id}`, /params\/id must be/);
      }
      assert.equal((await call('GET', '/audits/12')).statusCode, 404);
      refused(await call('GET', '/machines/vm-1/forecast?windowDays=-1'), 'windowDays', /querystring\/windowDays must be >= 1/);
      refused(await call('GET', '/commands/urn:uuid:00000000-0000-0000-0000-000000000000'), 'urn uuid', /params\/command must be a UUID/);
      assert.equal((await call('GET', '/commands/00000000-0000-0000-0000-000000000000')).statusCode, 404);
    });

    it(`refuses a command bigger than a machine takes (${MAX_COMMAND_BYTES} bytes, signed)`, async () => {
      const padded = (n: number): unknown => ({ type: 'set-prices', args: { prices: { A1: 100 }, pad: 'x'.repeat(n) } });
      const first = await call('POST', '/machines/vm-1/commands', padded(3000));
      assert.equal(first.statusCode, 202, first.body);
      // Sent with key 1; a later key (up to 255, two digits more) may sign it again when it is re-sent.
      const worst = published[published.length - 1]!.length + 2;
      const stored = await count(b.db, 'SELECT count(*) AS n FROM commands');
      const sent = published.length;
      for (const size of [MAX_COMMAND_BYTES + 1, MAX_COMMAND_BYTES + 1000, 60000]) {
        const r = await call('POST', '/machines/vm-1/commands', padded(3000 + size - worst));
        refused(r, `${size} bytes`, new RegExp(`${size} bytes.*at most ${MAX_COMMAND_BYTES}`));
      }
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM commands'), stored, 'nothing stored');
      assert.equal(published.length, sent, 'nothing sent');
      const edge = await call('POST', '/machines/vm-1/commands', padded(3000 + MAX_COMMAND_BYTES - worst));
      assert.equal(edge.statusCode, 202, edge.body);
      assert.equal(published[published.length - 1]!.length + 2, MAX_COMMAND_BYTES, 'the largest command a machine takes goes out');
    });

    it('reads the Authorization scheme in any case, with one or more spaces', async () => {
      for (const h of [`Bearer ${admin}`, `bearer ${admin}`, `BEARER ${admin}`, `bEaReR   ${admin}`, `Bearer ${admin}  `]) {
        const r = await api.inject({ method: 'GET', url: '/machines', headers: { authorization: h } });
        assert.equal(r.statusCode, 200, `${h.replace(admin, 'TOKEN')}: ${r.body}`);
      }
      for (const h of [`Bearer${admin}`, `Basic ${admin}`, `Bearer ${admin} extra`, `Bearer vf_nope`, 'Bearer', 'bearer ', admin]) {
        const r = await api.inject({ method: 'GET', url: '/machines', headers: { authorization: h } });
        assert.equal(r.statusCode, 401, `${h.replace(admin, 'TOKEN')}: ${r.body}`);
        assert.equal(r.json().error, 'unauthorized');
      }
    });

    it('ends open event streams when the API closes, also beside one whose client went', async () => {
      const other = await buildApi({ db: b.db, commands });
      const open = async (): Promise<{ res: { writableEnded: boolean; destroy(): void } }> => {
        const r = await other.inject({ method: 'GET', url: '/stream', headers: { authorization: `Bearer ${admin}` }, payloadAsStream: true });
        assert.equal(r.statusCode, 200);
        assert.match(String(r.headers['content-type']), /^text\/event-stream/);
        return { res: r.raw.res };
      };
      const gone = await open();
      gone.res.destroy();
      const kept = await open();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([other.close(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the API did not close within 10 s')), 10000)))]).finally(() => clearTimeout(timer));
      assert.equal(kept.res.writableEnded, true, 'the open stream was ended');
    });

    it('serves only the listed vendor files: other names and paths that climb out are a 404', async () => {
      for (const url of ['/dashboard/vendor/package.json', '/dashboard/vendor/..%2Fpackage.json', '/dashboard/vendor/..%2F..%2F..%2Fetc%2Fpasswd', '/dashboard/vendor/__proto__', '/dashboard/vendor/constructor', '/dashboard/vendor/toString']) {
        const r = await call('GET', url);
        assert.equal(r.statusCode, 404, `${url}: ${r.statusCode} ${r.body.slice(0, 120)}`);
        assert.equal(JSON.parse(r.body).error, 'unknown-file', url);
      }
      const nul = await call('GET', '/dashboard/vendor/%00');
      assert.equal(nul.statusCode, 400, nul.body);
    });

    it('sends security headers on the dashboard, the API and the docs', async () => {
      for (const url of ['/dashboard', '/dashboard/app.js', '/dashboard/style.css', '/machines', '/machines/nope', '/docs', '/docs/json', '/docs/static/index.html', '/health']) {
        const r = await call('GET', url);
        assert.ok(r.statusCode < 500, `${url}: ${r.statusCode}`);
        const csp = String(r.headers['content-security-policy'] ?? '');
        assert.match(csp, /default-src 'self'/, `${url}: CSP ${csp}`);
        assert.match(csp, /frame-ancestors 'none'/, `${url}: CSP ${csp}`);
        assert.match(csp, /object-src 'none'/, `${url}: CSP ${csp}`);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${url}: CSP ${csp}`);
        assert.equal(r.headers['x-frame-options'], 'DENY', url);
        assert.equal(r.headers['x-content-type-options'], 'nosniff', url);
        assert.equal(r.headers['referrer-policy'], 'no-referrer', url);
      }
    });
  });
}
