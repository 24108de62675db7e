/**
 * The route driver's page end to end, in Chromium at a phone's 390 x 844:
 * `npm start`'s gateway and a simulated machine, a link made by the
 * operator, the stops and the van load read off the page, a slot tapped
 * "Restocked" and the machine's own outcome shown (and its stock reported
 * full), a tap made offline shown as waiting and sent once back online, and
 * an unknown, expired or revoked link told as such, no secret in the
 * gateway's output; slots named by their catalog products (hostile names
 * shown as text), the van's load by catalog SKU, the machine's own label
 * where no product is assigned. No Content-Security-Policy
 * violation. Screenshots go to test-output/driver/.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, startFleet, watchPolicy, type RunningFleet } from '../lib/browser-fleet.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const shots = join(root, 'test-output', 'driver');
const MACHINE = 'vm-0001';

/** Poll until `f` gives a value (bounded). */
async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    assert.ok(Date.now() < end, `${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the driver's page in Chromium at 390 x 844", function () {
  this.timeout(240000);
  let fleet: RunningFleet | undefined;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let url = '';
  let token = '';
  const violations: string[] = [];

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, json: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  };
  const newLink = async (body: Record<string, unknown> = {}): Promise<{ id: string; link: string; secret: string }> => {
    const r = await api('POST', '/driver-links', { machines: [MACHINE], name: 'Monday north', ...body });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    return r.json as { id: string; link: string; secret: string };
  };
  const shot = async (name: string, p: Page = page): Promise<void> => {
    const file = join(shots, `${name}.png`);
    await p.screenshot({ path: file, fullPage: true });
    process.stdout.write(`      screenshot: ${file}\n`);
  };
  const open = async (path: string): Promise<Page> => {
    const p = await context.newPage();
    await watchPolicy(p, violations);
    await p.goto(url + path);
    return p;
  };
  const stateOf = (p: Page, slot: string): Promise<string | null> => p.getAttribute(`.line[data-machine="${MACHINE}"][data-slot="${slot}"] .state`, 'data-state');

  before(async function () {
    mkdirSync(shots, { recursive: true });
    browser = await launchChromium();
    // No route driver of the simulator's own: the restocks here are the page's.
    fleet = await startFleet(1, ['--restock-after', '0']);
    ({ url, token } = fleet);
    context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  });

  afterEach(() => {
    assert.deepEqual(violations.splice(0), [], 'Content-Security-Policy violations');
  });

  after(async () => {
    await browser?.close();
    await fleet?.stop();
  });

  let slots: { slot: string; capacity: number }[] = [];

  it('shows the stops in order, the van load and the pick list', async () => {
    const l = await newLink();
    assert.match(l.link, /^\/driver#dl_/);
    page = await open(l.link);
    await page.waitForSelector(`.stop[data-machine="${MACHINE}"] .line`);
    const text = (await page.textContent('body')) ?? '';
    assert.doesNotMatch(text, /\[object Object\]|undefined|NaN/);
    assert.match((await page.textContent('#title')) ?? '', /^Monday north: 1 stop, \d+\.\d km$/);
    assert.match((await page.textContent(`.stop[data-machine="${MACHINE}"] h2`)) ?? '', new RegExp(`^1\\. ${MACHINE}$`));
    const lines = await page.locator(`.line[data-machine="${MACHINE}"]`).count();
    assert.ok(lines >= 3, `${lines} pick lines`);
    // The pick list as the API has it: every slot with capacity, on the page with what to load.
    const pick = (await api('GET', `/machines/${MACHINE}/picklist`)).json as { lines: { slot: string; product: string | null; capacity: number | null }[] };
    slots = pick.lines.filter((x) => x.capacity !== null).map((x) => ({ slot: x.slot, capacity: x.capacity! }));
    assert.ok(slots.length >= 2, JSON.stringify(pick));
    assert.match((await page.textContent(`.line[data-slot="${slots[0]!.slot}"] .what`)) ?? '', /: load \d+ \(has \d+ of \d+\)/);
    assert.ok((await page.locator('#load li').count()) >= 1);
    assert.equal(await page.textContent('#net'), 'online');
    await shot('1-route');
  });

  it('sends "Restocked", shows the machine applied it, and the machine reports the slot full', async () => {
    const { slot, capacity } = slots[0]!;
    await page.click(`.line[data-slot="${slot}"] button`);
    await until('the outcome on the page', async () => ((await stateOf(page, slot)) === 'applied' ? true : undefined));
    assert.match((await page.textContent(`.line[data-slot="${slot}"] .state`)) ?? '', new RegExp(`^restocked: the machine counts ${capacity}$`));
    assert.equal(await page.isDisabled(`.line[data-slot="${slot}"] button`), true, 'no second restock from the page');
    await shot('2-restocked');
    // The machine's own report, asked for now: the slot holds what was loaded (a customer may buy one between: then one less).
    const asked = Date.now();
    assert.equal((await api('POST', `/machines/${MACHINE}/commands`, { type: 'report' })).status, 202);
    const qty = await until('a report after the restock', async () => {
      const s = (await api('GET', `/machines/${MACHINE}/slots`)).json as { asOf: string | null; slots: { slot: string; quantity: number }[] };
      return s.asOf !== null && Date.parse(s.asOf) >= asked - 1000 ? s.slots.find((x) => x.slot === slot)!.quantity : undefined;
    });
    assert.ok(qty >= capacity - 2 && qty <= capacity, `${slot} holds ${qty} of ${capacity}`);
  });

  it('keeps a tap made offline as "waiting to send" and sends it when back online', async () => {
    const { slot } = slots[1]!;
    await context.setOffline(true);
    await until('the page sees it is offline', async () => ((await page.textContent('#net')) === 'offline' ? true : undefined), 10000);
    await page.click(`.line[data-slot="${slot}"] button`);
    assert.equal(await stateOf(page, slot), 'waiting');
    assert.match((await page.textContent(`.line[data-slot="${slot}"] .state`)) ?? '', /waiting to send/);
    await shot('3-offline-waiting');
    await context.setOffline(false);
    await until('the waiting tap sent and applied', async () => ((await stateOf(page, slot)) === 'applied' ? true : undefined));
    const restocks = (await api('GET', `/machines/${MACHINE}/commands?limit=20`)).json as { commands: { type: string; args: { slots: Record<string, unknown> } }[] };
    assert.equal(restocks.commands.filter((c) => c.type === 'restock' && slot in c.args.slots).length, 1, 'sent once');
    await shot('4-back-online');
  });

  it('tells an unknown, an expired and a revoked link apart', async () => {
    const unknown = await open('/driver#dl_not-a-link-at-all');
    await unknown.waitForSelector('#message:has-text("not known")');
    await shot('5-unknown', unknown);
    const soon = await newLink({ expiresAt: new Date(Date.now() + 1500).toISOString() });
    await until('the link expires', async () => ((await fetch(`${url}/driver/route`, { headers: { authorization: `Bearer ${soon.secret}` } })).status === 401 ? true : undefined), 20000);
    const expired = await open(soon.link);
    await expired.waitForSelector('#message:has-text("expired")');
    assert.equal(await expired.isHidden('#app'), true);
    await shot('6-expired', expired);
    const gone = await newLink();
    assert.equal((await api('DELETE', `/driver-links/${gone.id}`)).status, 204);
    const revoked = await open(gone.link);
    await revoked.waitForSelector('#message:has-text("revoked")');
    // The secrets were in the pages' fragments and headers only: nothing the gateway printed holds one.
    for (const l of [soon, gone]) assert.ok(!fleet!.output().includes(l.secret.slice(3)), 'a link secret in the gateway output');
  });

  it("names each slot by the catalog product its planogram assigns (SKU on the van's load), else the machine's own label; hostile names as text", async () => {
    // Markup that would run if read as HTML, and the catalog's longest name (100) in several scripts with no space to break at.
    const html = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>&amp; Crisps';
    const long = 'Schokolade«Nuß»шоколад巧克力'.repeat(4).slice(0, 98) + '🍫';
    assert.equal(long.length, 100);
    for (const [sku, name] of [['HTML-1', html], ['LONG-2', long]] as const) {
      const r = await api('POST', '/products', { sku, name, price: 150, currency: 'USD' });
      assert.equal(r.status, 201, JSON.stringify(r.json));
    }
    // Four slots with something to load: two hold the markup product (one load line for both), one the long one, one none.
    const before = (await api('GET', `/machines/${MACHINE}/picklist`)).json as { lines: { slot: string; product: string | null; load: number }[] };
    const loading = before.lines.filter((l) => l.load > 0).sort((a, b) => b.load - a.load);
    assert.ok(loading.length >= 4, `slots to load: ${JSON.stringify(before.lines)}`);
    const [a, b, c, d] = loading as [(typeof loading)[0], (typeof loading)[0], (typeof loading)[0], (typeof loading)[0]];
    const put = await api('PUT', `/machines/${MACHINE}/planogram`, {
      slots: [
        { slot: a.slot, sku: 'HTML-1', price: 150 },
        { slot: b.slot, sku: 'HTML-1', price: 150 },
        { slot: c.slot, sku: 'LONG-2', price: 150 },
        { slot: d.slot, sku: null },
      ],
      apply: false,
    });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    const l = await newLink({ name: 'Catalog run' });
    const p = await open(l.link);
    await p.waitForSelector(`.line[data-slot="${d.slot}"] .name`);
    const line = (slot: string, part: string): Promise<string | null> => p.textContent(`.line[data-machine="${MACHINE}"][data-slot="${slot}"] ${part}`);
    assert.equal(await line(a.slot, '.name'), html);
    assert.equal(await line(b.slot, '.name'), html);
    assert.equal(await line(a.slot, '.sku'), ' · SKU HTML-1');
    assert.equal(await line(c.slot, '.name'), long);
    assert.equal(await line(c.slot, '.sku'), ' · SKU LONG-2');
    // No product: the machine's own label, and no SKU.
    assert.equal(await line(d.slot, '.name'), d.product);
    assert.equal(await p.locator(`.line[data-slot="${d.slot}"] .sku`).count(), 0);
    // The van's load: the markup product once, both slots' items together, with its SKU.
    // Read in the page as an expression (the page's policy allows no eval; this file has no DOM types).
    const load = JSON.parse(
      (await p.evaluate(
        "JSON.stringify([...document.querySelectorAll('#load li')].map((li) => ({ name: li.querySelector('.name')?.textContent ?? null, sku: li.querySelector('.sku')?.textContent ?? null, units: li.querySelector('b')?.textContent ?? null })))",
      )) as string,
    ) as { name: string | null; sku: string | null; units: string | null }[];
    assert.deepEqual(
      load.filter((x) => x.name === html),
      [{ name: html, sku: 'SKU HTML-1', units: `${a.load + b.load} × (1 machine)` }],
    );
    assert.deepEqual(
      load.filter((x) => x.name === long),
      [{ name: long, sku: 'SKU LONG-2', units: `${c.load} × (1 machine)` }],
    );
    assert.ok(load.some((x) => x.name === d.product && x.sku === null && x.units === `${d.load} × (1 machine)`), JSON.stringify(load));
    // Text, never markup: nothing it names was made or run, and the long name wraps inside the phone's width.
    assert.equal(await p.evaluate("document.querySelectorAll('#app img, #app script').length"), 0);
    assert.equal(await p.evaluate('window.pwned === undefined'), true);
    assert.ok((await p.evaluate('document.documentElement.scrollWidth')) as number <= 390, 'no sideways scrolling');
    await shot('7-catalog-names', p);
  });
});
