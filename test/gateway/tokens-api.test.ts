/**
 * API tokens over the API (docs/tenants.md "Tokens"): an operator's admin
 * lists and revokes its operator's tokens only (another operator's, and a
 * platform admin's, are not found), a platform admin all; a listing never
 * shows a secret; a revoked token is refused at once, even one the server
 * had just checked (and remembers for a few seconds), and its open live
 * stream is ended. vendctl tokens list (a table, or --json) and revoke.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import type { Db } from '../../gateway/store/db.js';
import { closeApi, openApi } from './api-harness.js';
import { BACKENDS, eventually, type Backend } from './backends.js';

interface Listed {
  id: string;
  name: string;
  role: string;
  operator: string | null;
  createdAt: string;
  lastUsedAt: string | null;
}

for (const backend of BACKENDS) {
  describe(`tokens over the API: ${backend.name}`, function () {
    this.timeout(120000);
    let b: Backend;
    let db: Db;
    let api: FastifyInstance;
    let commands: CommandService;
    let base = '';
    const t: Record<'platform' | 'aAdmin' | 'aViewer' | 'aOperator' | 'bAdmin' | 'bViewer', { token: string; id: string }> = {} as never;

    const call = (token: string, method: 'GET' | 'DELETE' | 'POST', url: string, body?: unknown) =>
      api.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
    const list = async (token: string, query = ''): Promise<Listed[]> => {
      const res = await call(token, 'GET', `/tokens${query}`);
      assert.equal(res.statusCode, 200, res.body);
      return (res.json() as { tokens: Listed[] }).tokens;
    };
    const names = (l: Listed[]): string[] => l.map((x) => x.name).sort();

    before(async () => {
      ({ b, db, commands, api } = await openApi(backend));
      await api.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
      const made = async (name: string, role: 'viewer' | 'operator' | 'admin', operator: string | null) => {
        const m = await createToken(db, name, role, operator);
        return { token: m.token, id: m.info.id };
      };
      t.platform = await made('platform', 'admin', null);
      for (const id of ['op-a', 'op-b']) assert.equal((await call(t.platform.token, 'POST', '/operators', { id, name: id })).statusCode, 201);
      t.aAdmin = await made('a admin', 'admin', 'op-a');
      t.aOperator = await made('a operator', 'operator', 'op-a');
      t.aViewer = await made('a viewer', 'viewer', 'op-a');
      t.bAdmin = await made('b admin', 'admin', 'op-b');
      t.bViewer = await made('b viewer', 'viewer', 'op-b');
    });

    after(() => closeApi({ api, commands, b }));

    it("lists the operator's own tokens to its admin, every token to a platform admin, and never a secret", async () => {
      const a = await list(t.aAdmin.token);
      assert.deepEqual(names(a), ['a admin', 'a operator', 'a viewer']);
      assert.deepEqual(names(await list(t.bAdmin.token)), ['b admin', 'b viewer']);
      assert.deepEqual(names(await list(t.platform.token)), ['a admin', 'a operator', 'a viewer', 'b admin', 'b viewer', 'platform']);
      assert.deepEqual(names(await list(t.platform.token, '?operator=op-b')), ['b admin', 'b viewer']);
      const viewer = a.find((x) => x.name === 'a viewer')!;
      assert.deepEqual(Object.keys(viewer).sort(), ['createdAt', 'id', 'lastUsedAt', 'name', 'operator', 'role']);
      assert.equal(viewer.id, t.aViewer.id);
      assert.equal(viewer.role, 'viewer');
      assert.equal(viewer.operator, 'op-a');
      assert.ok(!Number.isNaN(Date.parse(viewer.createdAt)));
      assert.equal(viewer.lastUsedAt, null, 'not used yet');
      assert.ok(a.find((x) => x.name === 'a admin')!.lastUsedAt !== null, 'the admin token just listed them');
      const whole = (await call(t.platform.token, 'GET', '/tokens')).body;
      for (const k of Object.values(t)) assert.ok(!whole.includes(k.token) && !whole.includes(k.token.slice(3)), 'no secret in a listing');
      assert.ok(!/hash|[0-9a-f]{64}/.test(whole), 'nor a hash');
      // Admins only; another operator's list is not found; a bad operator id is a 400.
      assert.equal((await call(t.aViewer.token, 'GET', '/tokens')).statusCode, 403);
      assert.equal((await call(t.aOperator.token, 'GET', '/tokens')).statusCode, 403);
      assert.equal((await call(t.aAdmin.token, 'GET', '/tokens?operator=op-b')).statusCode, 404);
      assert.deepEqual(names(await list(t.aAdmin.token, '?operator=op-a')), ['a admin', 'a operator', 'a viewer']);
      assert.equal((await call(t.platform.token, 'GET', '/tokens?operator=op-zz')).statusCode, 404);
      assert.equal((await call(t.platform.token, 'GET', '/tokens?operator=Bad%20Id')).statusCode, 400);
    });

    it("revokes: not another operator's nor a platform admin's (404); a revoked token is refused at once, its live stream ended", async () => {
      // A's admin cannot reach B's tokens nor the platform's: not found, and they still work.
      for (const id of [t.bViewer.id, t.platform.id, 'no-such-token']) {
        const res = await call(t.aAdmin.token, 'DELETE', `/tokens/${id}`);
        assert.equal(res.statusCode, 404, res.body);
        assert.equal((res.json() as { error: string }).error, 'unknown-token');
      }
      assert.equal((await call(t.bViewer.token, 'GET', '/me')).statusCode, 200);
      assert.equal((await call(t.aOperator.token, 'DELETE', `/tokens/${t.aViewer.id}`)).statusCode, 403, 'admins only');
      for (const bad of ['..%2F..', 'a%20b', 'x'.repeat(65)]) assert.equal((await call(t.aAdmin.token, 'DELETE', `/tokens/${bad}`)).statusCode, 400, bad);

      // The viewer's token was just checked (and is remembered) and has a live stream open.
      assert.equal((await call(t.aViewer.token, 'GET', '/machines')).statusCode, 200);
      const ac = new AbortController();
      const res = await fetch(`${base}/stream`, { headers: { authorization: `Bearer ${t.aViewer.token}` }, signal: ac.signal });
      assert.equal(res.status, 200);
      let text = '';
      let ended = false;
      const reader = res.body!.getReader();
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
          if (done) break;
          text += Buffer.from(value!).toString('utf8');
        }
        ended = true;
      })();
      try {
        await eventually('the stream has begun', async () => (text.includes('vendfleet live') ? true : undefined));
        assert.equal((await call(t.aAdmin.token, 'DELETE', `/tokens/${t.aViewer.id}`)).statusCode, 204);
        // At once: no wait for the remembered answer to age out.
        const refused = await call(t.aViewer.token, 'GET', '/machines');
        assert.equal(refused.statusCode, 401, refused.body);
        await eventually('the stream is ended', async () => (ended ? true : undefined));
        assert.match(text, /event: revoked/);
        assert.equal((await fetch(`${base}/stream`, { headers: { authorization: `Bearer ${t.aViewer.token}` } })).status, 401);
      } finally {
        ac.abort();
        await reading;
      }
      assert.equal((await call(t.aAdmin.token, 'DELETE', `/tokens/${t.aViewer.id}`)).statusCode, 404, 'revoked once');
      assert.deepEqual(names(await list(t.aAdmin.token)), ['a admin', 'a operator'], 'a revoked token is not listed');
      // A platform admin revokes any operator's.
      assert.equal((await call(t.platform.token, 'DELETE', `/tokens/${t.bViewer.id}`)).statusCode, 204);
      assert.equal((await call(t.bViewer.token, 'GET', '/me')).statusCode, 401);
      assert.equal((await call(t.bAdmin.token, 'GET', '/me')).statusCode, 200, "B's other token is untouched");
    });
  });
}

describe('tokens over the API: vendctl', function () {
  this.timeout(120000);
  const vendctl = fileURLToPath(new URL('../../tools/vendctl.js', import.meta.url));
  const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [vendctl, ...args], { timeout: 60000 }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  let b: Backend;
  let api: FastifyInstance;
  let commands: CommandService;
  let url = '';
  before(async () => {
    ({ b, commands, api } = await openApi(BACKENDS[0]!));
    await api.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  });
  after(() => closeApi({ api, commands, b }));

  it('lists tokens as a table or JSON and revokes one; sets, shows and removes the alert webhook', async () => {
    const admin = (await createToken(b.db, 'ops admin', 'admin', 'default')).token;
    const other = await createToken(b.db, 'kiosk viewer', 'viewer', 'default');
    const as = (args: string[]) => run(['--url', url, '--token', admin, ...args]);
    const json = await as(['tokens', 'list', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual((JSON.parse(json.stdout) as { tokens: Listed[] }).tokens.map((x) => x.name), ['ops admin', 'kiosk viewer']);
    const table = await as(['tokens', 'list']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^id +name +role +operator +createdAt +lastUsedAt$/);
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, new RegExp(`^${other.info.id} +kiosk viewer +viewer +default +\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z +-$`));
    const revoked = await as(['tokens', 'revoke', other.info.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stderr, /revoked/);
    const again = await as(['tokens', 'revoke', other.info.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /404 unknown-token/);
    assert.equal((await run(['--url', url, '--token', other.token, 'me'])).code, 1, 'the revoked token is refused');

    const set = await run(['--url', url, '--token', admin, 'alert-webhook', 'set', 'https://hooks.invalid/vendfleet', '--secret', 'a-long-enough-secret']);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), { operator: 'default', url: 'https://hooks.invalid/vendfleet', signed: true });
    assert.deepEqual(JSON.parse((await as(['alert-webhook'])).stdout), { operator: 'default', url: 'https://hooks.invalid/vendfleet', signed: true });
    const bad = await as(['alert-webhook', 'set', 'ftp://hooks.invalid/x']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /400 bad-request: body\/url must be an http:\/\/ or https:\/\/ URL/);
    assert.deepEqual(JSON.parse((await as(['alert-webhook', 'remove'])).stdout), { operator: 'default', url: null, signed: false });
  });
});
