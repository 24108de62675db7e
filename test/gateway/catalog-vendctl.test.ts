/**
 * vendctl products and planogram against a listening gateway API (PGlite;
 * the store's own behaviour on both stores is catalog.test.ts's): tables by
 * default with nothing shown as [object Object], undefined or NaN, --json
 * as the API answered, an image uploaded from a file, a planogram change
 * that sends the machine its price, and what vendctl refuses before asking.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { count } from './backends.js';
import { png } from './catalog-fixtures.js';

const vendctl = fileURLToPath(new URL('../../tools/vendctl.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('vendctl products and planogram', function () {
  this.timeout(120000);
  let db: Db;
  let api: FastifyInstance;
  let commands: CommandService;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  const run = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [vendctl, ...args], { env, timeout: 60000 }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await run(['--json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const clean = (text: string): void => assert.doesNotMatch(text, /\[object Object\]|undefined|NaN/, text);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vf-catalog-'));
    db = await openDb();
    await migrate(db);
    commands = new CommandService(db, () => {});
    await commands.provision('vm-1');
    const slots = [
      { code: 'A1', product: 'Chips', category: 'Snacks', qty: 4, capacity: 10, price: 125 },
      { code: 'B1', product: 'Water', category: 'Drinks', qty: 6, capacity: 8, price: 100 },
    ];
    await db.query("INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ('vm-1', true, now(), $1::jsonb, now())", [JSON.stringify({ currency: 'USD', decimals: 2, slots })]);
    api = await buildApi({ db, commands, purchaseWaitMs: 50 });
    await api.listen({ port: 0, host: '127.0.0.1' });
    const token = (await createToken(db, 'vendctl admin', 'admin', 'default')).token;
    env = { ...process.env, VENDFLEET_URL: `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`, VENDFLEET_TOKEN: token };
  });
  after(async () => {
    await api?.close();
    commands?.close();
    await db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('adds, lists, changes and shows products, tables by default and JSON with --json', async () => {
    const made = await json<{ sku: string; price: number }>(['products', 'add', 'CHIPS-01', 'Salted chips', '150', 'USD', '--category', 'Snacks']);
    assert.deepEqual([made.sku, made.price], ['CHIPS-01', 150]);
    assert.equal((await run(['products', 'add', 'WATER', 'Still water', '110', 'USD'])).code, 0);
    const table = await run(['products', 'list']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0]!, /^sku +name +category +price +currency +image +imageType +createdAt +updatedAt$/);
    assert.match(lines[1]!, /^CHIPS-01 +Salted chips +Snacks +150 +USD +- +- /);
    assert.match(lines[2]!, /^WATER +Still water +- +110 +USD /);
    assert.match(table.stdout, /\noperator: default\n$/);
    clean(table.stdout);
    const changed = await json<{ price: number; category: string | null; name: string }>(['products', 'set', 'WATER', '--price', '120', '--category', 'Drinks']);
    assert.deepEqual([changed.price, changed.category, changed.name], [120, 'Drinks', 'Still water']);
    assert.equal((await json<{ category: string | null }>(['products', 'set', 'WATER', '--category', 'none'])).category, null);
    assert.equal((await json<{ price: number }>(['products', 'show', 'WATER'])).price, 120);
    const file = join(dir, 'chips.png');
    writeFileSync(file, png(10, 200, 10));
    assert.equal((await json<{ imageType: string }>(['products', 'image', 'CHIPS-01', file])).imageType, 'image/png');
  });

  it('refuses prices that are not whole minor units before asking, and shows the API refusal otherwise', async () => {
    const before = await count(db, 'SELECT count(*) AS n FROM products');
    for (const bad of ['1.50', '-5', '1e3', 'ten']) {
      const r = await run(['products', 'add', 'BAD', 'Bad', bad, 'USD']);
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /whole number of minor units/);
    }
    const r = await run(['products', 'add', 'BAD', 'Bad', '100', 'usd']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^vendctl: 400 bad-request: .*currency/);
    const nothing = await run(['products', 'set', 'WATER']);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /needs something to change/);
    const missing = await run(['products', 'show', 'NOPE']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404 unknown-product/);
    assert.equal(await count(db, 'SELECT count(*) AS n FROM products'), before);
  });

  it("shows a machine's planogram, assigns a product with its price and sends it to the machine", async () => {
    const shown = await run(['planogram', 'show', 'vm-1']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^slot +sku +name +category +image +defaultPrice +currency +priceOverride +price +machinePrice +quantity +capacity +pending\n/);
    assert.match(shown.stdout, /\nA1 +- +Chips +Snacks +- +- +- +- +- +125 +4 +10 +false\n/);
    clean(shown.stdout);
    const assigned = await run(['planogram', 'assign', 'vm-1', 'A1', 'CHIPS-01', '--price', '160']);
    assert.equal(assigned.code, 0, assigned.stderr);
    assert.match(assigned.stderr, /^set-prices [0-9a-f-]{36} sent: A1=160$/m);
    assert.match(assigned.stdout, /\nA1 +CHIPS-01 +Salted chips +Snacks +\/products\/CHIPS-01\/image\?operator=defau~ +150 +USD +160 +160 +125 +4 +10 +true\n/);
    clean(assigned.stdout);
    const sent = await db.query<{ args: unknown }>("SELECT args FROM commands WHERE machine_id = 'vm-1' AND type = 'set-prices'");
    assert.deepEqual(sent.rows.map((x) => x.args), [{ prices: { A1: 160 } }]);
    const held = await json<{ command: unknown }>(['planogram', 'assign', 'vm-1', 'B1', 'WATER', '--no-apply']);
    assert.equal(held.command, null);
    const applied = await run(['planogram', 'apply', 'vm-1']);
    assert.match(applied.stderr, /sent: B1=120$/m);
    const bad = await run(['planogram', 'assign', 'vm-1', 'Z9', 'CHIPS-01']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /400 bad-slot: machine "vm-1" reports no slot Z9/);
    // What the machine has on sale carries the catalog's fields; `products ID` is still that.
    const onSale = await json<{ items: { slot: string; sku: string | null; product: string }[] }>(['products', 'vm-1']);
    assert.deepEqual(onSale.items.map((i) => [i.slot, i.sku, i.product]), [['A1', 'CHIPS-01', 'Salted chips'], ['B1', 'WATER', 'Still water']]);
    // A product in a slot stays until the slot is cleared.
    const inUse = await run(['products', 'remove', 'WATER']);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /409 in-use: .*vm-1\/B1/);
    assert.equal((await run(['planogram', 'assign', 'vm-1', 'B1', 'none'])).code, 0);
    const removed = await run(['products', 'remove', 'WATER']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stderr, /product WATER removed/);
  });
});
