/**
 * The product catalog over the operator API, on both stores: products made,
 * listed, changed and removed per operator (another's SKU is not found),
 * roles, hostile and out-of-range input refused with a 400 that says what is
 * wrong (and nothing stored), images sniffed, size-checked and served only as
 * the image they are, a machine's planogram validated against the slots it
 * reports, the prices that differ sent to it as one set-prices command, and
 * the product API's items carrying the catalog's fields.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { verifyCommand } from '../../gateway/commands/envelope.js';
import { createOperator } from '../../gateway/store/operators.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, count, type Backend } from './backends.js';
import { HTML_PAGE, png, SVG_IMAGE } from './catalog-fixtures.js';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

for (const backend of BACKENDS) {
  describe(`product catalog: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    const t = { admin: '', operator: '', viewer: '', other: '' };
    const published: { topic: string; payload: Buffer }[] = [];
    let vm1Key = Buffer.alloc(0);

    const telemetry = (slots: unknown[], currency = 'USD') => JSON.stringify({ currency, decimals: 2, slots, tubes: [] });

    before(async () => {
      b = await backend.open();
      await migrate(b.db);
      commands = new CommandService(b.db, (topic, payload) => published.push({ topic, payload }));
      await createOperator(b.db, 'op-b', 'Operator B');
      vm1Key = Buffer.from((await commands.provision('vm-1')).commandKey, 'hex');
      await commands.provision('vm-eur');
      await commands.provision('vm-b', { operator: 'op-b' });
      const slots = [
        { code: 'A1', product: 'Chips (machine label)', category: 'Snacks', qty: 3, capacity: 10, price: 125 },
        { code: 'A2', product: 'Gum', category: 'Snacks', qty: 5, capacity: 10, price: 80 },
        { code: 'B1', product: 'Water', category: 'Drinks', qty: 2, capacity: 8, price: 100 },
      ];
      for (const [id, currency] of [['vm-1', 'USD'], ['vm-eur', 'EUR'], ['vm-b', 'USD']] as const) {
        await b.db.query('INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ($1, true, now(), $2::jsonb, now())', [id, telemetry(slots, currency)]);
      }
      api = await buildApi({ db: b.db, commands, purchaseWaitMs: 50 });
      t.admin = (await createToken(b.db, 'cat admin', 'admin', 'default')).token;
      t.operator = (await createToken(b.db, 'cat operator', 'operator', 'default')).token;
      t.viewer = (await createToken(b.db, 'cat viewer', 'viewer', 'default')).token;
      t.other = (await createToken(b.db, 'b admin', 'admin', 'op-b')).token;
    });
    after(async () => {
      await api?.close();
      commands?.close();
      await b?.close();
    });

    const call = (token: string, method: Method, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
      api.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { payload: Buffer.isBuffer(body) || typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
    const ok = async (r: Promise<LightMyRequestResponse>, status = 200): Promise<Record<string, unknown>> => {
      const res = await r;
      assert.equal(res.statusCode, status, res.body);
      return status === 204 ? {} : (res.json() as Record<string, unknown>);
    };
    const refused = async (r: Promise<LightMyRequestResponse>, what: string, status: number, error: string, message?: RegExp): Promise<void> => {
      const res = await r;
      assert.equal(res.statusCode, status, `${what}: ${res.statusCode} ${res.body.slice(0, 300)}`);
      const e = res.json() as { error: string; message: string };
      assert.equal(e.error, error, `${what}: ${res.body}`);
      if (message) assert.match(e.message, message, `${what}: ${res.body}`);
    };
    const products = (): Promise<number> => count(b.db, 'SELECT count(*) AS n FROM products');
    const setPrices = (): Promise<number> => count(b.db, "SELECT count(*) AS n FROM commands WHERE type = 'set-prices'");

    it('makes, lists, shows, changes and removes products; viewers read, admins write', async () => {
      const made = await ok(call(t.admin, 'POST', '/products', { sku: 'CHIPS-01', name: 'Salted chips 50 g', category: 'Snacks', price: 150, currency: 'USD' }), 201);
      assert.deepEqual({ ...made, createdAt: 0, updatedAt: 0 }, { sku: 'CHIPS-01', name: 'Salted chips 50 g', category: 'Snacks', price: 150, currency: 'USD', image: null, imageType: null, createdAt: 0, updatedAt: 0 });
      await ok(call(t.admin, 'POST', '/products', { sku: 'WATER.5', name: 'Still water 0.5 l', category: 'Drinks', price: 110, currency: 'USD', imageUrl: 'https://cdn.example.com/water.png' }), 201);
      await ok(call(t.admin, 'POST', '/products', { sku: 'GUM', name: 'Mint gum', price: 90, currency: 'USD' }), 201);
      const list = await ok(call(t.viewer, 'GET', '/products'));
      assert.equal(list['operator'], 'default');
      assert.deepEqual((list['products'] as { sku: string }[]).map((p) => p.sku), ['CHIPS-01', 'GUM', 'WATER.5']);
      assert.deepEqual(((await ok(call(t.viewer, 'GET', '/products?category=drinks')))['products'] as { sku: string }[]).map((p) => p.sku), ['WATER.5']);
      assert.equal((await ok(call(t.viewer, 'GET', '/products/WATER.5')))['image'], 'https://cdn.example.com/water.png');
      const changed = await ok(call(t.admin, 'PUT', '/products/GUM', { price: 95, category: 'Snacks' }));
      assert.equal(changed['price'], 95);
      assert.equal(changed['name'], 'Mint gum', 'fields not given are kept');
      assert.equal((await ok(call(t.admin, 'PUT', '/products/GUM', { category: null })))['category'], null);
      await refused(call(t.admin, 'POST', '/products', { sku: 'GUM', name: 'Again', price: 1, currency: 'USD' }), 'a SKU taken', 409, 'product-exists');
      await refused(call(t.viewer, 'POST', '/products', { sku: 'V', name: 'V', price: 1, currency: 'USD' }), 'a viewer adding', 403, 'forbidden');
      await refused(call(t.operator, 'PUT', '/products/GUM', { price: 1 }), 'an operator changing', 403, 'forbidden');
      await refused(call(t.viewer, 'GET', '/products/NOPE'), 'no such SKU', 404, 'unknown-product');
      await refused(call(t.admin, 'PUT', '/products/NOPE', { price: 5 }), 'changing no such SKU', 404, 'unknown-product');
      await ok(call(t.admin, 'POST', '/products', { sku: 'TEMP', name: 'Temporary', price: 5, currency: 'USD' }), 201);
      await ok(call(t.admin, 'DELETE', '/products/TEMP'), 204);
      await refused(call(t.admin, 'DELETE', '/products/TEMP'), 'removed twice', 404, 'unknown-product');
    });

    it("keeps operators apart: the same SKU is each operator's own, another's is not found", async () => {
      await ok(call(t.other, 'POST', '/products', { sku: 'B-ONLY', name: "B's product", price: 300, currency: 'USD' }), 201);
      await ok(call(t.other, 'POST', '/products', { sku: 'GUM', name: "B's gum", price: 70, currency: 'USD' }), 201);
      assert.deepEqual(((await ok(call(t.other, 'GET', '/products')))['products'] as { sku: string }[]).map((p) => p.sku), ['B-ONLY', 'GUM']);
      assert.equal((await ok(call(t.viewer, 'GET', '/products/GUM')))['name'], 'Mint gum');
      await refused(call(t.viewer, 'GET', '/products/B-ONLY'), "B's SKU to A", 404, 'unknown-product');
      await refused(call(t.admin, 'PUT', '/products/B-ONLY', { price: 1 }), "changing B's", 404, 'unknown-product');
      await refused(call(t.admin, 'DELETE', '/products/B-ONLY'), "removing B's", 404, 'unknown-product');
      await refused(call(t.admin, 'GET', '/products?operator=op-b'), "naming B's catalog", 404, 'unknown-operator');
      await refused(call(t.admin, 'PUT', '/machines/vm-1/planogram', { slots: [{ slot: 'A1', sku: 'B-ONLY' }] }), "assigning B's SKU", 400, 'unknown-sku', /no product "B-ONLY"/);
      await refused(call(t.admin, 'GET', '/machines/vm-b/planogram'), "B's machine", 404, 'unknown-machine');
      assert.equal((await ok(call(t.other, 'GET', '/products/B-ONLY')))['price'], 300, "B's own is untouched");
    });

    it('refuses hostile and out-of-range input with a 400 saying what is wrong, storing nothing', async () => {
      const before = await products();
      const base = { sku: 'NEW-1', name: 'New', price: 100, currency: 'USD' };
      const bad: [string, unknown, RegExp][] = [
        ['a negative price', { ...base, price: -5 }, /price/],
        ['a zero price', { ...base, price: 0 }, /price/],
        ['a fractional price', { ...base, price: 1.5 }, /price.*integer/],
        ['a price as text', { ...base, price: '100' }, /price.*integer.*not string/],
        ['a price too big', { ...base, price: 1_000_001 }, /price/],
        ['a price of 1e400', '{"sku":"NEW-1","name":"New","price":1e400,"currency":"USD"}', /price/],
        ['NUL in the name', { ...base, name: 'a\u0000b' }, /NUL/],
        ['a lone surrogate', { ...base, name: 'a\ud800' }, /surrogate/],
        ['a control character', { ...base, name: 'a\u001b[2Jb' }, /name/],
        ['a name too long', { ...base, name: 'x'.repeat(101) }, /name/],
        ['an empty name', { ...base, name: '' }, /name/],
        ['a category too long', { ...base, category: 'c'.repeat(65) }, /category/],
        ['a lower-case currency', { ...base, currency: 'usd' }, /currency/],
        ['a SKU with a space', { ...base, sku: 'A B' }, /sku/],
        ['a SKU with a slash', { ...base, sku: '../etc' }, /sku/],
        ['a SKU too long', { ...base, sku: 'S'.repeat(41) }, /sku/],
        ['an http image URL', { ...base, imageUrl: 'http://cdn.example.com/x.png' }, /imageUrl/],
        ['a javascript: URL', { ...base, imageUrl: 'javascript:alert(1)' }, /imageUrl/],
        ['a URL with a password', { ...base, imageUrl: 'https://user:pw@cdn.example.com/x.png' }, /password/],
        ['an unknown field', { ...base, html: '<b>' }, /additional/],
      ];
      for (const [what, body, message] of bad) await refused(call(t.admin, 'POST', '/products', body), what, 400, what.includes('password') ? 'bad-product' : 'bad-request', message);
      // fastify's JSON parser refuses a prototype key itself.
      const proto = await call(t.admin, 'POST', '/products', '{"sku":"NEW-1","name":"New","price":100,"currency":"USD","__proto__":{"x":1}}');
      assert.equal(proto.statusCode, 400, proto.body);
      const big = await call(t.admin, 'POST', '/products', { ...base, name: 'x'.repeat(70000) });
      assert.equal(big.statusCode, 413, 'a body over the limit');
      await refused(call(t.admin, 'GET', '/products/%00'), 'NUL in the path', 400, 'bad-request');
      await refused(call(t.admin, 'GET', `/products/${'%E2%80%AE'}evil`), 'a bidi override in the path', 400, 'bad-request', /sku/);
      await refused(call(t.admin, 'PUT', '/products/GUM', {}), 'a change of nothing', 400, 'bad-request');
      await refused(call(t.admin, 'PUT', '/products/GUM', { price: -1 }), 'a negative new price', 400, 'bad-request', /price/);
      assert.equal(await products(), before, 'nothing refused was stored');
      assert.equal((await ok(call(t.viewer, 'GET', '/products/GUM')))['price'], 95);
      // The store holds the same rules, whatever writes to it.
      await assert.rejects(b.db.query("INSERT INTO products (operator_id, sku, name, price, currency) VALUES ('default', 'X', 'x', -1, 'USD')"));
      await assert.rejects(b.db.query("INSERT INTO products (operator_id, sku, name, price, currency, image_url) VALUES ('default', 'X', 'x', 1, 'USD', 'http://a')"));
    });

    it('takes small PNG, JPEG, GIF and WebP images by their bytes and serves them only as that image', async () => {
      const image = png(200, 30, 30);
      const up = await ok(call(t.admin, 'PUT', '/products/CHIPS-01/image', image, { 'content-type': 'image/png' }));
      assert.equal(up['imageType'], 'image/png');
      assert.match(String(up['image']), /^\/products\/CHIPS-01\/image\?operator=default&v=[0-9a-f]{16}$/);
      const got = await call(t.viewer, 'GET', String(up['image']));
      assert.equal(got.statusCode, 200);
      assert.equal(got.headers['content-type'], 'image/png');
      assert.equal(got.headers['x-content-type-options'], 'nosniff');
      assert.match(String(got.headers['content-security-policy']), /default-src 'none'; sandbox/);
      assert.deepEqual(got.rawPayload, image);
      // Any declared type is checked against the bytes; octet-stream leaves it to them.
      assert.equal((await ok(call(t.admin, 'PUT', '/products/GUM/image', Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(20)]), { 'content-type': 'application/octet-stream' })))['imageType'], 'image/gif');
      const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), Buffer.from('JFIF\0'), Buffer.alloc(16)]);
      assert.equal((await ok(call(t.admin, 'PUT', '/products/GUM/image', jpeg, { 'content-type': 'image/jpeg' })))['imageType'], 'image/jpeg');
      const webp = Buffer.concat([Buffer.from('RIFF'), Buffer.from([24, 0, 0, 0]), Buffer.from('WEBPVP8L'), Buffer.alloc(16)]);
      assert.equal((await ok(call(t.admin, 'PUT', '/products/GUM/image', webp, { 'content-type': 'image/webp' })))['imageType'], 'image/webp');
      // A RIFF file that is not WebP (a WAV) is not an image.
      await refused(call(t.admin, 'PUT', '/products/GUM/image', Buffer.concat([Buffer.from('RIFF'), Buffer.from([24, 0, 0, 0]), Buffer.from('WAVEfmt '), Buffer.alloc(16)]), { 'content-type': 'application/octet-stream' }), 'a WAV', 400, 'bad-product');
      assert.equal((await ok(call(t.admin, 'PUT', '/products/GUM/image', Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(20)]), { 'content-type': 'application/octet-stream' })))['imageType'], 'image/gif');
      await refused(call(t.admin, 'PUT', '/products/GUM/image', HTML_PAGE, { 'content-type': 'image/png' }), 'HTML called a PNG', 400, 'bad-product', /not a PNG, JPEG, GIF or WebP/);
      await refused(call(t.admin, 'PUT', '/products/GUM/image', SVG_IMAGE, { 'content-type': 'application/octet-stream' }), 'an SVG', 400, 'bad-product', /not a PNG/);
      await refused(call(t.admin, 'PUT', '/products/GUM/image', image, { 'content-type': 'image/jpeg' }), 'a PNG called a JPEG', 400, 'bad-product', /says image\/jpeg but the bytes are image\/png/);
      await refused(call(t.admin, 'PUT', '/products/GUM/image', Buffer.alloc(0), { 'content-type': 'image/png' }), 'no bytes', 400, 'bad-product', /empty/);
      const huge = Buffer.concat([image, Buffer.alloc(130 * 1024)]);
      assert.equal((await call(t.admin, 'PUT', '/products/GUM/image', huge, { 'content-type': 'image/png' })).statusCode, 413, 'over the size limit');
      assert.equal((await call(t.admin, 'PUT', '/products/GUM/image', HTML_PAGE, { 'content-type': 'text/html' })).statusCode, 415, 'a type not taken');
      await refused(call(t.viewer, 'PUT', '/products/GUM/image', image, { 'content-type': 'image/png' }), 'a viewer uploading', 403, 'forbidden');
      await refused(call(t.admin, 'PUT', '/products/B-ONLY/image', image, { 'content-type': 'image/png' }), "B's product", 404, 'unknown-product');
      assert.equal((await ok(call(t.viewer, 'GET', '/products/GUM')))['imageType'], 'image/gif', 'the refused uploads changed nothing');
      assert.equal((await ok(call(t.admin, 'DELETE', '/products/GUM/image')))['image'], null);
      await refused(call(t.viewer, 'GET', '/products/GUM/image'), 'no image', 404, 'unknown-product');
      // An https URL replaces an uploaded image.
      assert.equal((await ok(call(t.admin, 'PUT', '/products/GUM', { imageUrl: 'https://cdn.example.com/gum.webp' })))['imageType'], null);
    });

    it("shows a machine's planogram and sends it the prices that differ as one set-prices command", async () => {
      const view = await ok(call(t.viewer, 'GET', '/machines/vm-1/planogram'));
      assert.equal(view['currency'], 'USD');
      const slots = view['slots'] as Record<string, unknown>[];
      assert.deepEqual(slots.map((s) => [s['slot'], s['sku'], s['name'], s['pending']]), [['A1', null, 'Chips (machine label)', false], ['A2', null, 'Gum', false], ['B1', null, 'Water', false]]);
      const sentBefore = published.length;
      // A1 gets chips at their default (150, the machine charges 125); B1 water at this machine's own 100 (as it charges).
      const put = await ok(call(t.operator, 'PUT', '/machines/vm-1/planogram', { slots: [{ slot: 'A1', sku: 'CHIPS-01' }, { slot: 'B1', sku: 'WATER.5', price: 100 }] }));
      const cmd = put['command'] as { id: string; status: string; prices: Record<string, number> };
      assert.deepEqual(cmd.prices, { A1: 150 });
      assert.equal(cmd.status, 'delivered', 'the machine is online: sent at once');
      const stored = await ok(call(t.viewer, 'GET', `/commands/${cmd.id}`));
      assert.equal(stored['type'], 'set-prices');
      assert.deepEqual(stored['args'], { prices: { A1: 150 } });
      const sent = published.slice(sentBefore);
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.topic, 'fleet/vm-1/commands');
      assert.deepEqual(verifyCommand(sent[0]!.payload, vm1Key)?.args, { prices: { A1: 150 } }, 'signed with the machine\'s key');
      const a1 = (put['slots'] as Record<string, unknown>[]).find((s) => s['slot'] === 'A1')!;
      assert.deepEqual([a1['sku'], a1['name'], a1['category'], a1['price'], a1['machinePrice'], a1['pending']], ['CHIPS-01', 'Salted chips 50 g', 'Snacks', 150, 125, true]);
      assert.match(String(a1['image']), /^\/products\/CHIPS-01\/image\?/);
      // A change whose prices the machine already charges, or that are on their way to it, sends nothing.
      const same = await ok(call(t.operator, 'PUT', '/machines/vm-1/planogram', { slots: [{ slot: 'B1', sku: 'WATER.5', price: 100 }] }));
      assert.equal(same['command'], null);
      // apply false stores only; {"slots":[]} then sends what is due.
      const n = await setPrices();
      const held = await ok(call(t.operator, 'PUT', '/machines/vm-1/planogram', { slots: [{ slot: 'A2', sku: 'GUM', price: 85 }], apply: false }));
      assert.equal(held['command'], null);
      assert.equal(await setPrices(), n);
      const due = await ok(call(t.operator, 'PUT', '/machines/vm-1/planogram', { slots: [] }));
      assert.deepEqual((due['command'] as { prices: unknown }).prices, { A2: 85 }, "A1's 150 is on its way already");
      // Called off before the machine had it: A1's price is due again.
      await commands.cancel(cmd.id);
      const again = await ok(call(t.operator, 'PUT', '/machines/vm-1/planogram', { slots: [] }));
      assert.deepEqual((again['command'] as { prices: unknown } | null)?.prices, { A1: 150 });
      // A product in a slot cannot be removed; the slot emptied, it can.
      await refused(call(t.admin, 'DELETE', '/products/GUM'), 'a product in use', 409, 'in-use', /vm-1\/A2/);
      const cleared = await ok(call(t.operator, 'PUT', '/machines/vm-1/planogram', { slots: [{ slot: 'A2', sku: null }], apply: false }));
      assert.equal((cleared['slots'] as Record<string, unknown>[]).find((s) => s['slot'] === 'A2')!['sku'], null);
    });

    it('refuses planogram changes the machine or the catalog cannot take, storing none of the batch', async () => {
      const before = await count(b.db, 'SELECT count(*) AS n FROM planogram');
      const n = await setPrices();
      const bad: [string, unknown, string, RegExp][] = [
        ['a slot the machine does not report', { slots: [{ slot: 'A1', sku: 'GUM' }, { slot: 'Z9', sku: 'GUM' }] }, 'bad-slot', /reports no slot Z9 \(its slots: A1, A2, B1\)/],
        ['a slot twice', { slots: [{ slot: 'A2', sku: 'GUM' }, { slot: 'A2', sku: 'CHIPS-01' }] }, 'bad-slot', /twice/],
        ['an unknown SKU', { slots: [{ slot: 'A2', sku: 'NOPE' }] }, 'unknown-sku', /no product "NOPE"/],
        ['a negative price', { slots: [{ slot: 'A2', sku: 'GUM', price: -1 }] }, 'bad-request', /price/],
        ['a fractional price', { slots: [{ slot: 'A2', sku: 'GUM', price: 99.5 }] }, 'bad-request', /price/],
        ['a price without a product', { slots: [{ slot: 'A2', sku: null, price: 10 }] }, 'bad-price', /needs a product/],
        ['a lower-case slot', { slots: [{ slot: 'a1', sku: 'GUM' }] }, 'bad-request', /slot/],
        ['NUL in a SKU', { slots: [{ slot: 'A1', sku: 'G\u0000' }] }, 'bad-request', /NUL/],
        ['too many slots', { slots: Array.from({ length: 257 }, () => ({ slot: 'A1', sku: 'GUM' })) }, 'bad-request', /256/],
        ['no slots list', { A1: 'GUM' }, 'bad-request', /slots/],
      ];
      for (const [what, body, error, message] of bad) await refused(call(t.operator, 'PUT', '/machines/vm-1/planogram', body), what, 400, error, message);
      // Priced in dollars, on a machine charging euros: its own price is needed.
      await refused(call(t.operator, 'PUT', '/machines/vm-eur/planogram', { slots: [{ slot: 'A1', sku: 'CHIPS-01' }] }), 'another currency', 400, 'bad-price', /USD.*EUR/);
      const eur = await ok(call(t.operator, 'PUT', '/machines/vm-eur/planogram', { slots: [{ slot: 'A1', sku: 'CHIPS-01', price: 140 }] }));
      assert.deepEqual((eur['command'] as { prices: unknown }).prices, { A1: 140 });
      await refused(call(t.viewer, 'PUT', '/machines/vm-1/planogram', { slots: [] }), 'a viewer', 403, 'forbidden');
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM planogram'), before + 1, 'only the euro machine\'s good change was stored');
      assert.equal(await setPrices(), n + 1);
    });

    it("gives the product API's items the catalog's fields, and the machine's own where no product is assigned", async () => {
      const items = (await ok(call(t.viewer, 'GET', '/machines/vm-1/products')))['items'] as Record<string, unknown>[];
      const by = new Map(items.map((i) => [i['slot'], i]));
      assert.deepEqual({ ...by.get('A1'), image: 0 }, { slot: 'A1', product: 'Salted chips 50 g', category: 'Snacks', sku: 'CHIPS-01', image: 0, price: 125, quantity: 3 });
      assert.match(String(by.get('A1')!['image']), /^\/products\/CHIPS-01\/image\?operator=default&v=/);
      assert.deepEqual(by.get('A2'), { slot: 'A2', product: 'Gum', category: 'Snacks', sku: null, image: null, price: 80, quantity: 5 });
      assert.deepEqual(by.get('B1'), { slot: 'B1', product: 'Still water 0.5 l', category: 'Drinks', sku: 'WATER.5', image: 'https://cdn.example.com/water.png', price: 100, quantity: 2 });
      // The category filter reads the catalog's category where there is one.
      const drinks = (await ok(call(t.viewer, 'GET', '/machines/vm-1/products?category=DRINKS')))['items'] as { slot: string }[];
      assert.deepEqual(drinks.map((i) => i.slot), ['B1']);
      const one = await ok(call(t.viewer, 'GET', '/machines/vm-1/status/A1'));
      assert.deepEqual([one['product'], one['sku'], one['price']], ['Salted chips 50 g', 'CHIPS-01', 125]);
      // A machine with nothing assigned answers as before.
      const plain = (await ok(call(t.other, 'GET', '/machines/vm-b/products')))['items'] as Record<string, unknown>[];
      assert.deepEqual(plain.map((i) => [i['product'], i['sku'], i['image']]), [['Chips (machine label)', null, null], ['Gum', null, null], ['Water', null, null]]);
    });
  });
}
