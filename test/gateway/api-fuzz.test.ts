/**
 * Fuzzing the operator API: random paths, methods, query strings, headers
 * and bodies (malformed JSON, wrong types, huge and negative numbers,
 * SQL-looking strings, unknown fields). The API must never answer 500,
 * every refusal must be JSON with an error and a message, and no request
 * that is not a valid purchase may reach a machine. Seeded, so a failure
 * replays.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { prng } from '../lib/assert.js';

describe('operator API fuzzing', function () {
  this.timeout(120000);
  let db: Db;
  let api: FastifyInstance;
  let commands: CommandService;
  let token: string;
  const published: string[] = [];

  before(async () => {
    db = await openDb();
    await migrate(db);
    commands = new CommandService(db, (topic) => published.push(topic));
    await commands.provision('vm-1');
    await db.query(
      `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ('vm-1', false, now(), $1::jsonb, now())`,
      [JSON.stringify({ slots: [{ code: 'A1', product: 'Chips', category: 'Snacks', qty: 3, capacity: 10, price: 125 }], tubes: [{ value: 25, count: 10 }] })],
    );
    api = await buildApi({ db, commands, purchaseWaitMs: 50 });
    token = (await createToken(db, 'fuzz', 'admin')).token;
  });
  after(async () => {
    await api?.close();
    commands?.close();
    await db?.close();
  });

  it('never fails inside, and answers every bad request with a clear JSON error', async () => {
    const rnd = prng(424242);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
    const ids = ['vm-1', 'vm-2', '', '..', 'vm-1%00', "vm-1' OR '1'='1", 'x'.repeat(100), '%ZZ'];
    const slots = ['A1', 'Z9', 'a1', '', 'A1;--', '12345', "' OR 1=1"];
    const paths = [
      () => `/machines`,
      () => `/machines/${pick(ids)}`,
      () => `/machines/${pick(ids)}/products?limit=${pick(['1', '0', '-5', '1e9', 'abc', ''])}&cursor=${pick(['', 'czpBMQ', 'bogus', '%00'])}&category=${pick(['Snacks', '', "'; DROP"])}`,
      () => `/machines/${pick(ids)}/status/${pick(slots)}`,
      () => `/machines/${pick(ids)}/denominations`,
      () => `/machines/${pick(ids)}/sales?from=${pick(['2026-01-01T00:00:00Z', 'yesterday', '', '9999-99-99'])}`,
      () => `/machines/${pick(ids)}/purchase`,
      () => `/machines/${pick(ids)}/commands`,
      () => `/commands/${pick(['00000000-0000-0000-0000-000000000000', 'nope', ''])}`,
      () => pick(['/', '/nothing', '/machines/vm-1/purchase/extra', '/docs/json']),
    ];
    const values: unknown[] = [0, -1, 1, 2, 9, 10, 1e9, -1e9, 1.5, '1', '', null, true, [], {}, 'A1', "A1' OR 1=1", 'x'.repeat(5000)];
    const bodies: (() => unknown)[] = [
      () => ({ slot: pick([...slots, ...values]), quantity: pick(values) }),
      () => ({ type: pick(['lock', 'set-prices', 'vend', 'bogus', '', 7]), args: pick([{}, { prices: { A1: pick(values) } }, 'x', [], null]), ttlS: pick(values) }),
      () => ({ id: pick([...ids, ...values]) }),
      () => pick(['{', '{"slot":', 'null', '[]', '"str"', '{"slot":"A1","quantity":1,"extra":1}', '\u0000']),
      () => undefined,
    ];
    let served = 0;
    for (let i = 0; i < 600; i++) {
      const method = pick(['GET', 'POST', 'POST', 'PUT', 'DELETE'] as const);
      const url = pick(paths)();
      const body = pick(bodies)();
      const headers: Record<string, string> = {};
      if (rnd() < 0.9) headers['authorization'] = `Bearer ${rnd() < 0.9 ? token : pick(['vf_x', 'nope', ''])}`;
      if (rnd() < 0.7) headers['idempotency-key'] = pick(['k1', 'k2', '', ' ', 'x'.repeat(200), `k${i}`]);
      if (body !== undefined) headers['content-type'] = pick(['application/json', 'application/json', 'text/plain']);
      const r = await api.inject({ method, url, headers, ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
      assert.ok(r.statusCode < 500, `${method} ${url} ${JSON.stringify(body)?.slice(0, 80)} -> ${r.statusCode} ${r.body.slice(0, 200)}`);
      if (r.statusCode >= 400 && url !== '/docs/json') {
        const e = r.json() as { error?: unknown; message?: unknown };
        assert.equal(typeof e.message, 'string', `${method} ${url}: ${r.body.slice(0, 200)}`);
      }
      if (r.statusCode < 300) served++;
    }
    assert.ok(served > 20, `${served} requests served`);
    // Purchases reached the machine only as vend commands for a real slot and a sane quantity.
    const vends = await db.query<{ args: { slot: string; quantity: number } }>("SELECT args FROM commands WHERE type = 'vend'");
    for (const v of vends.rows) {
      assert.match(v.args.slot, /^[A-Z0-9]{1,4}$/);
      assert.ok(Number.isInteger(v.args.quantity) && v.args.quantity >= 1 && v.args.quantity <= 9);
    }
    assert.equal(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM machines')).rows[0]!.n) >= 1, true, 'tables intact');
  });
});
