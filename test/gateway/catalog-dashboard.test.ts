/**
 * The dashboard's catalog panel in Chromium (playwright-core) against a
 * listening gateway API on PGlite: an admin adds a product with its image
 * through the form and changes its price, a bad price is refused on the
 * page, the machine's planogram names the catalog's product and assigns it
 * to a slot (the machine is sent its price), the route panel names the
 * catalog's products on the pick list and the van load (markup shown as
 * text), a viewer sees no forms; what
 * the panels say is read as text: never [object Object], undefined or NaN,
 * and no Content-Security-Policy violation. Screenshot:
 * test-output/dashboard/catalog.png.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { eventually } from './backends.js';
import { png } from './catalog-fixtures.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const shots = join(root, 'test-output', 'dashboard');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

describe('the dashboard catalog panel in Chromium', function () {
  this.timeout(180000);
  let db: Db;
  let api: FastifyInstance;
  let commands: CommandService;
  let browser: Browser;
  let page: Page;
  let url = '';
  const tokens = { admin: '', viewer: '' };
  const violations: string[] = [];

  const open = async (token: string): Promise<Page> => {
    const p = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    p.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) violations.push(`${p.url()}: ${m.text()}`);
    });
    await p.addInitScript("document.addEventListener('securitypolicyviolation', (e) => console.error('Content-Security-Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));");
    await p.goto(url + '/dashboard');
    await p.fill('#token', token);
    await p.click('#login button');
    await p.waitForSelector('#catalog tbody tr');
    return p;
  };
  /** What a person reads on a panel: never a placeholder the code let through. */
  const readable = async (selector: string, p: Page = page): Promise<string> => {
    const text = (await p.locator(selector).innerText()).replace(/\s+/g, ' ').trim();
    assert.doesNotMatch(text, /\[object Object\]|undefined|NaN/, `${selector}: ${text}`);
    return text;
  };

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is needed at ${CHROMIUM}`);
    mkdirSync(shots, { recursive: true });
    db = await openDb();
    await migrate(db);
    commands = new CommandService(db, () => {});
    await commands.provision('vm-1');
    const slots = [
      { code: 'A1', product: 'Chips', category: 'Snacks', qty: 4, capacity: 10, price: 125 },
      { code: 'B1', product: 'Water', category: 'Drinks', qty: 6, capacity: 8, price: 100 },
    ];
    await db.query("INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ('vm-1', true, now(), $1::jsonb, now())", [JSON.stringify({ currency: 'USD', decimals: 2, slots, tubes: [] })]);
    api = await buildApi({ db, commands, purchaseWaitMs: 50 });
    await api.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    tokens.admin = (await createToken(db, 'page admin', 'admin', 'default')).token;
    tokens.viewer = (await createToken(db, 'page viewer', 'viewer', 'default')).token;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    page = await open(tokens.admin);
  });

  afterEach(() => {
    assert.deepEqual(violations.splice(0), [], 'Content-Security-Policy violations');
  });

  after(async () => {
    await browser?.close();
    await api?.close();
    commands?.close();
    await db?.close();
  });

  it('adds a product with its image, refuses a bad price on the page, and changes the price', async () => {
    assert.match(await readable('.card.catalog'), /no products yet/);
    await page.fill('#product-form [name="sku"]', 'CHIPS-01');
    await page.fill('#product-form [name="name"]', 'Salted chips');
    await page.fill('#product-form [name="category"]', 'Snacks');
    await page.fill('#product-form [name="price"]', '1.505');
    await page.click('#product-save');
    await page.waitForSelector('#catalog-error:has-text("at most 2 decimals")');
    assert.equal(await page.locator('#catalog tr[data-sku]').count(), 0, 'nothing added');
    await page.fill('#product-form [name="price"]', '1.50');
    await page.setInputFiles('#product-form [name="image"]', { name: 'chips.png', mimeType: 'image/png', buffer: png(220, 40, 40) });
    await page.click('#product-save');
    await page.waitForSelector('#catalog tr[data-sku="CHIPS-01"] img.thumb');
    assert.equal(await readable('#catalog tr[data-sku="CHIPS-01"]'), 'CHIPS-01 Salted chips Snacks USD 1.50');
    assert.match((await page.getAttribute('#catalog tr[data-sku="CHIPS-01"] img.thumb', 'src')) ?? '', /^data:image\/png;base64,/);
    // The image drawn is the one uploaded: one red pixel.
    const width = await page.locator('#catalog tr[data-sku="CHIPS-01"] img.thumb').evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth);
    assert.equal(width, 1);
    await page.click('#catalog tr[data-sku="CHIPS-01"]');
    assert.equal(await page.inputValue('#product-form [name="price"]'), '1.50');
    await page.fill('#product-form [name="price"]', '1.75');
    await page.click('#product-save');
    await page.waitForSelector('#catalog tr[data-sku="CHIPS-01"]:has-text("USD 1.75")');
    const stored = await db.query<{ price: string }>("SELECT price FROM products WHERE sku = 'CHIPS-01'");
    assert.equal(Number(stored.rows[0]!.price), 175);
    await readable('.card.catalog');
  });

  it("names the catalog's product in the machine's planogram and assigns it to a slot, sending the price", async () => {
    await page.click('#machines tbody tr[data-machine="vm-1"]');
    await page.waitForSelector('#planogram-catalog tr[data-slot="A1"]');
    assert.match(await readable('#planogram-catalog tr[data-slot="A1"]'), /^A1 Chips \(not in the catalog\) USD 1\.25/);
    await page.selectOption('#assign-slot', 'A1');
    await page.selectOption('#assign-sku', 'CHIPS-01');
    await page.click('#assign-form button');
    await page.waitForSelector('#planogram-catalog tr[data-slot="A1"][data-sku="CHIPS-01"]');
    assert.equal(await readable('#assign-result'), 'A1: CHIPS-01; sent A1 USD 1.75 to the machine');
    assert.equal(await readable('#planogram-catalog tr[data-slot="A1"]'), 'A1 Salted chips (CHIPS-01) USD 1.75 machine charges USD 1.25');
    const sent = await eventually('the set-prices command', async () => {
      const r = await db.query<{ args: unknown }>("SELECT args FROM commands WHERE machine_id = 'vm-1' AND type = 'set-prices'");
      return r.rows[0]?.args;
    });
    assert.deepEqual(sent, { prices: { A1: 175 } });
    // The machine's tile names the catalog's product once the panel is drawn again.
    await page.click('#machines tbody tr[data-machine="vm-1"]');
    await page.waitForSelector('#planogram [data-slot="A1"] .catalog-name:has-text("Salted chips")');
    await readable('#machine');
    // No sales in the range: the revenue axis still reads as distinct amounts (it once read "0.01, 0.01, 0.01, 0.00, 0.00").
    await page.waitForSelector('#chart[data-ticks1] .uplot canvas');
    const ticks = ((await page.getAttribute('#chart', 'data-ticks1')) ?? '').split(' | ');
    assert.ok(ticks.length >= 2 && ticks.every((t) => /^\d+\.\d{2}$/.test(t)), ticks.join(' | '));
    assert.equal(new Set(ticks).size, ticks.length, ticks.join(' | '));
    await page.screenshot({ path: join(shots, 'catalog.png'), fullPage: true });
  });

  it("plans a route whose pick list and van load name the catalog's products, the machine's label otherwise, markup as text", async () => {
    // vm-1 stands somewhere and needs a visit: B1 (no product) empty; C1 holds a product whose name is markup.
    const slots = [
      { code: 'A1', product: 'Chips', category: 'Snacks', qty: 4, capacity: 10, price: 125 },
      { code: 'B1', product: 'Water', category: 'Drinks', qty: 0, capacity: 8, price: 100 },
      { code: 'C1', product: 'Thing', qty: 2, capacity: 5, price: 100 },
    ];
    const evil = '<img src=x onerror="window.pwned=1">Bad & <b>bold</b>';
    await db.query("UPDATE machine_state SET telemetry = $1::jsonb, telemetry_at = now() WHERE machine_id = 'vm-1'", [JSON.stringify({ currency: 'USD', decimals: 2, slots, tubes: [] })]);
    await db.query("UPDATE machines SET lat = 39.75, lon = -104.99 WHERE id = 'vm-1'");
    await db.query("INSERT INTO products (operator_id, sku, name, price, currency) VALUES ('default', 'EVIL-1', $1, 100, 'USD')", [evil]);
    await db.query("INSERT INTO planogram (machine_id, slot, operator_id, sku) VALUES ('vm-1', 'C1', 'default', 'EVIL-1')");
    await page.fill('#depot', '39.7392,-104.9903');
    await page.fill('#days', '7');
    await page.fill('#vans', '1');
    await page.click('#route-form button');
    await page.waitForSelector('#route li[data-stop="vm-1"]');
    const stop = await readable('#route li[data-stop="vm-1"]');
    assert.ok(stop.endsWith(`: A1 Salted chips +6, B1 Water +8, C1 ${evil} +3`), stop);
    const text = await readable('#route');
    assert.ok(text.includes(`Load the van: Water 8, Salted chips (SKU CHIPS-01) 6, ${evil} (SKU EVIL-1) 3`), text);
    assert.equal(await page.evaluate("document.querySelectorAll('#route img, #route b').length"), 0, 'no markup made from a name');
    assert.equal(await page.evaluate('window.pwned === undefined'), true);
    await page.screenshot({ path: join(shots, 'catalog-route.png'), fullPage: true });
  });

  it('shows a viewer the catalog and the planogram without their forms', async () => {
    const p = await open(tokens.viewer);
    await p.waitForSelector('#catalog tr[data-sku="CHIPS-01"]');
    assert.equal(await p.locator('#product-form').isVisible(), false);
    await p.click('#machines tbody tr[data-machine="vm-1"]');
    await p.waitForSelector('#planogram-catalog tr[data-slot="A1"][data-sku="CHIPS-01"]');
    assert.equal(await p.locator('#assign-form').isVisible(), false);
    await readable('.card.catalog', p);
    await p.close();
  });
});
