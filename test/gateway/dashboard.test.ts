/**
 * The dashboard end to end, in a real browser (Debian's Chromium driven by
 * playwright-core): `npm start`'s simulated fleet and gateway, signing in
 * with the printed token, the fleet map and list, one machine's planogram,
 * coin tubes and sales chart, a command sent and its result shown live, an
 * audit read and its DEX file downloaded, the API docs (Swagger UI), each
 * machine's firmware version and a firmware rollout's panel (its waves,
 * counts per state, the machines that failed or rolled back); no
 * Content-Security-Policy violation on any page; the fleet's figures (KPIs)
 * as the API gives them, the machine list's stock for every machine, its
 * sorting and filtering, money with its currency, and no "[object Object]",
 * "undefined" or "NaN" on any panel; the fleet map on its atlas outlines
 * (world-atlas, us-atlas: no tiles), its dots in their states' colours, a
 * cluster with its count as the map zooms out, a dot or a heatmap row
 * opening its machine, the planned route per van on the map, and the
 * inventory heatmap's cells and legend. Screenshots go to
 * test-output/dashboard/ (also at desktop 1280x800 and phone 390x844).
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, startFleet, watchPolicy, type RunningFleet } from '../lib/browser-fleet.js';
import { FIRMWARE_VERSION } from '../../firmware/version.js';
import { signRelease } from '../../gateway/firmware/signature.js';
import { keysFile, simImage, testKey } from './firmware-fixtures.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const shots = join(root, 'test-output', 'dashboard');

describe('the dashboard in Chromium', function () {
  this.timeout(240000);
  let fleet: RunningFleet | undefined;
  let browser: Browser;
  let page: Page;
  let url = '';
  let token = '';
  // What the browser blocked under the pages' Content-Security-Policy: any is a failure.
  const violations: string[] = [];
  // A release key the gateway knows (VENDFLEET_RELEASE_KEYS), for the rollout's image.
  const release = testKey();

  const watched = async (): Promise<Page> => {
    const p = await browser.newPage({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
    await watchPolicy(p, violations);
    return p;
  };

  before(async function () {
    mkdirSync(shots, { recursive: true });
    browser = await launchChromium();
    // The route driver comes 5 s after a slot runs empty, so alerts open and close within the test.
    fleet = await startFleet(3, ['--restock-after', '5'], { ...process.env, VENDFLEET_RELEASE_KEYS: keysFile(release) });
    ({ url, token } = fleet);
    page = await watched();
  });

  afterEach(() => {
    assert.deepEqual(violations.splice(0), [], 'Content-Security-Policy violations');
  });

  after(async () => {
    await browser?.close();
    await fleet?.stop();
  });

  const get = async <T>(path: string): Promise<T> => (await (await fetch(url + path, { headers: { authorization: `Bearer ${token}` } })).json()) as T;
  /** What a person reads on a panel: never a placeholder the code let through. */
  const readable = async (selector: string): Promise<string> => {
    const text = (await page.locator(selector).innerText()).replace(/\s+/g, ' ');
    assert.doesNotMatch(text, /\[object Object\]|undefined|NaN/, `${selector}: ${text}`);
    return text;
  };
  /** The list's machine ids, top to bottom. */
  const rows = async (): Promise<string[]> => {
    const l = page.locator('#machines tbody tr');
    const out: string[] = [];
    for (let i = 0; i < (await l.count()); i++) out.push((await l.nth(i).getAttribute('data-machine')) ?? '');
    return out;
  };
  /** Wait (bounded) until `read` gives what `want` does: both move as the simulated customers buy. */
  const settles = async <T>(what: string, want: () => Promise<T>, read: () => Promise<T>): Promise<T> => {
    const until = Date.now() + 30000;
    for (;;) {
      const [w, r] = [await want(), await read()];
      try {
        assert.deepEqual(r, w, what);
        return r;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((res) => setTimeout(res, 250));
      }
    }
  };

  const shot = async (name: string, p: Page = page): Promise<void> => {
    const file = join(shots, `${name}.png`);
    await p.screenshot({ path: file, fullPage: true });
    process.stdout.write(`      screenshot: ${file}\n`);
  };

  it('refuses a wrong token and signs in with the right one', async () => {
    await page.goto(url + '/dashboard');
    await page.fill('#token', 'vf_not-a-token');
    await page.click('#login button');
    await page.waitForSelector('#login-error:has-text("refused")');
    await page.fill('#token', token);
    await page.click('#login button');
    await page.waitForSelector('#machines tbody tr[data-machine="vm-0003"]');
  });

  it('shows the fleet: every machine online in the list and on the map, with totals', async () => {
    for (const id of ['vm-0001', 'vm-0002', 'vm-0003']) {
      assert.match((await page.textContent(`#machines tr[data-machine="${id}"] td:nth-child(3)`)) ?? '', /^online/);
      assert.equal(await page.textContent(`#machines tr[data-machine="${id}"] td[data-operator]`), 'default');
    }
    assert.equal(await page.textContent('[data-total="online"] b'), '3/3');
    // npm start places its machines around a city: a marker each (the map fits them in at first).
    await page.waitForSelector('#map path[data-machine="vm-0003"]');
    assert.equal(await page.locator('#map path[data-machine]').count(), 3);
    assert.equal(await page.locator('#login').isVisible(), false, 'the sign-in form is gone');
    // The first token is a platform admin's: the page says it shows every operator's machines.
    assert.match((await page.textContent('#who')) ?? '', /^first admin: platform admin, every operator$/);
  });

  it('fills the stock column for every machine from the server, none of them opened yet', async () => {
    type Row = { id: string; stock: { units: number; capacity: number; percent: number } | null };
    const api = async (): Promise<string[]> => (await get<{ machines: Row[] }>('/machines')).machines.map((m) => (m.stock ? `${m.stock.percent} % (${m.stock.units}/${m.stock.capacity})` : 'none'));
    const shown = await settles('the stock column as GET /machines says', api, async () => page.locator('#machines tbody td[data-stock]').allTextContents());
    for (const s of shown) assert.match(s, /^\d{1,3} % \(\d+\/\d+\)$/, s);
    assert.equal(await page.locator('#machine').isVisible(), false, 'no machine was opened');
    await readable('#machines');
  });

  it('shows the fleet KPIs as the API counts them, revenue with its currency', async () => {
    type Row = { online: boolean; errors: unknown[]; criticalAlerts: number; restockToday: boolean };
    const counts = async (): Promise<string[]> => {
      const ms = (await get<{ machines: Row[] }>('/machines')).machines;
      // Needing restock today (from the forecasts, GET /fleet/summary restockToday).
      const today = (await get<{ restockToday: number }>('/fleet/summary')).restockToday;
      return [today, ms.filter((m) => m.errors.length > 0 || m.criticalAlerts > 0).length, ms.filter((m) => !m.online).length].map(String);
    };
    // The summary's count is the list's machines so marked (each read moves with the customers: settled, not read once).
    await settles(
      'restockToday: the summary and the list agree',
      async () => (await get<{ restockToday: number }>('/fleet/summary')).restockToday,
      async () => (await get<{ machines: Row[] }>('/machines')).machines.filter((m) => m.restockToday).length,
    );
    await settles('restock, errors, offline', counts, async () => Promise.all(['restock', 'errors', 'offline'].map(async (k) => (await page.textContent(`[data-kpi="${k}"] b`)) ?? '')));
    // Revenue: the summary's per currency, in the machine's own (npm start's fleet sells in USD, 2 decimals).
    const revenue = async (): Promise<string> => {
      const by = (await get<{ today: { revenueByCurrency: { currency: string | null; decimals: number; revenue: number }[] } }>('/fleet/summary')).today.revenueByCurrency;
      if (by.length === 0) return 'none';
      return by.map((r) => `${r.currency} ${Math.floor(r.revenue / 100).toLocaleString('en-US')}.${String(r.revenue % 100).padStart(2, '0')}`).join(' · ');
    };
    const shown = await settles('revenue today', revenue, async () => (await page.textContent('[data-kpi="revenue"] b')) ?? '');
    assert.match(shown, /^(none|USD \d{1,3}(,\d{3})*\.\d{2})$/, shown);
    await readable('#kpis');
    await readable('#totals');
    // The fleet screen as an operator sees it once it has loaded: the KPIs settled (above) and the fleet's sales drawn.
    await page.waitForSelector('#fleet-chart .uplot canvas', { timeout: 20000 });
    await shot('1-fleet');
    // A KPI is the list behind it: offline shows the offline machines (none: all three are up).
    await page.click('[data-kpi="offline"]');
    assert.equal(await page.inputValue('#state-filter'), 'offline');
    assert.deepEqual(await rows(), []);
    assert.equal(await page.textContent('#machines-shown'), '0 of 3 machines');
    await page.selectOption('#state-filter', 'all');
    assert.deepEqual(await rows(), ['vm-0001', 'vm-0002', 'vm-0003']);
  });

  it('sorts the machine list by a clicked column and filters it by text and state', async () => {
    await page.click('#machines th[data-sort="machine"]');
    assert.deepEqual(await rows(), ['vm-0003', 'vm-0002', 'vm-0001'], 'clicked again: the other way round');
    assert.equal(await page.getAttribute('#machines th[data-sort="machine"]', 'aria-sort'), 'descending');
    await page.click('#machines th[data-sort="machine"]');
    assert.deepEqual(await rows(), ['vm-0001', 'vm-0002', 'vm-0003']);
    // By stock, fullest last; ties by id. The figures are read from the same rows (they move as customers buy).
    await page.click('#machines th[data-sort="stock"]');
    // Read in one go (the list is redrawn as sales come in): each row's id and stock %.
    const pairs = (await page.locator('#machines tbody tr').allInnerTexts()).map((t): [number, string] => [Number(/(\d+) %/.exec(t)?.[1]), /vm-\d+/.exec(t)?.[0] ?? '']);
    assert.equal(pairs.length, 3);
    const sorted = [...pairs].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
    assert.deepEqual(pairs, sorted);
    await page.click('#machines th[data-sort="machine"]');
    await page.fill('#filter', '0002');
    assert.deepEqual(await rows(), ['vm-0002']);
    await page.fill('#filter', 'usd default');
    assert.deepEqual(await rows(), ['vm-0001', 'vm-0002', 'vm-0003'], 'every word matches: currency and operator');
    await page.fill('#filter', 'eur');
    assert.deepEqual(await rows(), []);
    await page.fill('#filter', '');
    await page.selectOption('#state-filter', 'online');
    assert.deepEqual(await rows(), ['vm-0001', 'vm-0002', 'vm-0003']);
    await page.selectOption('#state-filter', 'all');
  });

  /** The colour a person sees for each state on the map (gateway/dashboard/map.ts). */
  const STATE_COLOUR: Record<string, string> = { offline: '#6b7280', errors: '#c62828', restock: '#ed6c02', online: '#2e7d32' };

  it('draws the fleet map on country and state outlines, each machine in its state colour; clicking one opens it', async () => {
    // The outlines come from the gateway (world-atlas, us-atlas): no tile from the internet.
    await page.waitForSelector('#map[data-atlas="drawn"]');
    const countries = await page.locator('#map .leaflet-land-pane path.atlas.country').count();
    const states = await page.locator('#map .leaflet-land-pane path.atlas.state').count();
    assert.ok(countries >= 150, `${countries} country outlines`);
    assert.ok(states >= 50, `${states} state outlines`);
    assert.match((await page.textContent('#map .leaflet-control-attribution')) ?? '', /world-atlas.*us-atlas/);
    assert.equal(await readable('#map-legend'), 'offline with errors needs restocking online');
    // Each machine's colour is its state as GET /machines says (moves as customers buy: read until they agree).
    type Row = { id: string; online: boolean; errors: unknown[]; criticalAlerts: number; restockToday: boolean | null };
    const wanted = async (): Promise<string[]> =>
      (await get<{ machines: Row[] }>('/machines')).machines.map((m) => `${m.id} ${!m.online ? 'offline' : m.errors.length > 0 || m.criticalAlerts > 0 ? 'errors' : m.restockToday === true ? 'restock' : 'online'}`);
    const drawn = async (): Promise<string[]> => {
      const l = page.locator('#map path[data-machine]');
      const out: string[] = [];
      for (let i = 0; i < (await l.count()); i++) {
        const [id, state, fill] = await Promise.all([l.nth(i).getAttribute('data-machine'), l.nth(i).getAttribute('data-state'), l.nth(i).getAttribute('fill')]);
        assert.equal(fill, STATE_COLOUR[state ?? ''], `${id}: ${state} drawn in ${fill}`);
        out.push(`${id} ${state}`);
      }
      return out.sort();
    };
    await settles('the machines and their states on the map', wanted, drawn);
    await page.hover('#map path[data-machine="vm-0002"]');
    assert.match(await readable('#map .leaflet-tooltip'), /^vm-0002 · (online|offline|with errors|needs restocking) · Site 2 \(simulated\), Denver$/);
    await page.click('#map path[data-machine="vm-0002"]');
    await page.waitForSelector('#machine-title:has-text("vm-0002")');
    assert.equal(await page.locator('#machines tr.selected').getAttribute('data-machine'), 'vm-0002');
    await page.waitForSelector('#map path.selected[data-machine="vm-0002"]');
    await shot('1b-map', page);
  });

  it('draws machines close together as one cluster with their count; clicking it zooms in on them', async () => {
    // Zoomed out, the three machines (a few km apart) come together: two first, then all three in one cluster.
    // At every zoom each machine is drawn once, alone or in a cluster. Each click out: wait until the map has
    // come to rest at the next zoom (it says its zoom on #map).
    for (let i = 0; ; i++) {
      // Read in one go: live updates redraw the markers between separate reads.
      const { zoom, counts, dots } = (await page.evaluate(
        `({ zoom: Number(document.querySelector('#map').getAttribute('data-zoom')), counts: [...document.querySelectorAll('#map .cluster')].map((c) => Number(c.getAttribute('data-count'))), dots: document.querySelectorAll('#map path[data-machine]').length })`,
      )) as { zoom: number; counts: number[]; dots: number };
      assert.equal(dots + counts.reduce((a, b) => a + b, 0), 3, `zoom ${zoom}: ${dots} dots, clusters of ${counts.join(', ')}`);
      if (counts.includes(3)) break;
      assert.ok(i < 12 && zoom > 2, `zoomed out to ${zoom} and still no cluster of three`);
      // A click that lands while Leaflet is still settling (a live redraw, the last zoom's end) can be dropped by it:
      // clicked again until the map has come to rest further out (bounded).
      for (const until = Date.now() + 30000; ; ) {
        await page.click('#map .leaflet-control-zoom-out');
        let out = false;
        for (const give = Date.now() + 5000; !out && Date.now() < give; await new Promise((r) => setTimeout(r, 100))) {
          out = Number(await page.getAttribute('#map', 'data-zoom')) < zoom;
        }
        if (out) break;
        assert.ok(Date.now() < until, `the map stayed at zoom ${zoom} after clicks on zoom-out for 30 s`);
      }
    }
    const cluster = page.locator('#map .cluster');
    assert.equal(await cluster.count(), 1);
    assert.equal(await cluster.innerText(), '3');
    assert.equal(await cluster.getAttribute('data-count'), '3');
    assert.match((await cluster.getAttribute('title')) ?? '', /^3 machines: (\d+ (offline|with errors|needs restocking|online)(, )?)+$/);
    // Coloured by its worst machine (the states are read again: they move).
    const worst = (await cluster.getAttribute('data-state')) ?? '';
    assert.ok(Object.hasOwn(STATE_COLOUR, worst), worst);
    assert.equal(await page.locator('#map path[data-machine]').count(), 0, 'no single dot besides the cluster');
    await page.locator('#map').screenshot({ path: join(shots, '1c-map-cluster.png') });
    await cluster.click();
    await page.waitForSelector('#map path[data-machine="vm-0001"]');
    await page.waitForSelector('#map path[data-machine="vm-0003"]');
    assert.equal(await page.locator('#map .cluster').count(), 0);
  });

  it('shows the inventory heatmap: the emptiest machines first, a cell per slot with its fill, a legend; a row opens its machine', async () => {
    await page.waitForSelector('#heatmap tbody tr[data-machine]');
    assert.equal(await readable('#heatmap-legend'), 'slot fill: empty (0 %) 1-24 % 25-49 % 50-74 % 75-100 % out of service');
    assert.equal(await readable('#heatmap-rest'), '3 machines, emptiest first');
    const rowsShown = page.locator('#heatmap tbody tr');
    assert.equal(await rowsShown.count(), 3);
    // Emptiest first, as the stock the rows were drawn with (read in one go: the table is redrawn as sales come in).
    const percents = (await rowsShown.allInnerTexts()).map((t) => Number(/^vm-\d+\s+(\d+) %/.exec(t.trim())?.[1]));
    assert.ok(percents.every(Number.isFinite), String(percents));
    assert.deepEqual(percents, [...percents].sort((a, b) => a - b));
    // The columns are the machines' slots; each cell says its fill and what it holds, of the capacity the API gives.
    const slots = (await get<{ slots: { slot: string; capacity: number | null }[] }>('/machines/vm-0001/slots')).slots;
    const heads = await page.locator('#heatmap thead th.slot-code').allTextContents();
    assert.deepEqual([...heads].sort(), slots.map((s) => s.slot).sort());
    const cells = page.locator('#heatmap tbody tr[data-machine="vm-0001"] td.cell');
    assert.equal(await cells.count(), slots.length);
    for (let i = 0; i < (await cells.count()); i++) {
      const [text, title, fill, cls] = await Promise.all([cells.nth(i).innerText(), cells.nth(i).getAttribute('title'), cells.nth(i).getAttribute('data-fill'), cells.nth(i).getAttribute('class')]);
      const m = /^vm-0001 ([A-Z]\d+)[^:]*: (\d+)\/(\d+) \((\d+) %\)/.exec(title ?? '');
      assert.ok(m, `${title}`);
      const [, code, qty, cap, p] = m;
      assert.equal(Number(cap), slots.find((s) => s.slot === code)?.capacity, `${code}'s capacity`);
      assert.equal(Number(p), Math.round((100 * Number(qty)) / Number(cap)), title ?? '');
      assert.equal(text, p);
      assert.equal(fill, p);
      const band = Number(p) === 0 ? 0 : Number(p) <= 24 ? 1 : Number(p) <= 49 ? 2 : Number(p) <= 74 ? 3 : 4;
      assert.match(cls ?? '', new RegExp(`\\bfill-${band}\\b`), `${title}: ${cls}`);
    }
    await readable('#heatmap');
    const first = (await rowsShown.first().getAttribute('data-machine')) ?? '';
    await rowsShown.first().click();
    await page.waitForSelector(`#machine-title:has-text("${first}")`);
    await page.locator('section.heat').screenshot({ path: join(shots, '1d-heatmap.png') });
  });

  it('shows one machine: planogram with stock, coin tubes, sales chart', async () => {
    await page.click('#machines tr[data-machine="vm-0001"]');
    await page.waitForSelector('#planogram .slot');
    const slots = await page.locator('#planogram .slot').count();
    assert.ok(slots >= 3, `${slots} slots`);
    await page.waitForSelector('#tubes .tube');
    assert.ok((await page.locator('#tubes .tube').count()) >= 1);
    // The sales chart (uPlot; dashboard-charts.test.ts reads it closely): a bucket per hour of the last day.
    await page.waitForSelector('#chart[data-bucket="hour"] .uplot canvas');
    assert.ok(Number(await page.getAttribute('#chart', 'data-points')) >= 24, 'a bucket per hour of the last day');
    // Money with its currency: prices, tube values, the sales total.
    for (const t of await page.locator('#planogram .slot .code').allTextContents()) assert.match(t, /^[A-Z]\d+ · USD \d+\.\d{2}$/, t);
    for (const t of await page.locator('#tubes .tube').allTextContents()) assert.match(t, /^USD \d+\.\d{2}\d+ · USD [\d,]+\.\d{2}$/, t);
    assert.match((await page.textContent('#chart .chart-note')) ?? '', /^\d+ sales?, USD [\d,]+\.\d{2} from .+ UTC, per hour$/);
    // The title is the id at once and gains the machine's details when they arrive (the list's redraws may select again).
    for (const until = Date.now() + 30000; !/ · USD$/.test((await page.textContent('#machine-title')) ?? ''); ) {
      assert.ok(Date.now() < until, `the title never gained its details: ${await page.textContent('#machine-title')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(await readable('#machine-title'), / · USD$/);
    await readable('#planogram');
    await readable('#tubes');
    await shot('2-machine');
  });

  it('updates live without a reload: new sales reach the totals and the chart', async () => {
    const before = Number(await page.textContent('[data-total="sales"] b'));
    // The simulated customers keep buying; the stream of changes brings the new figures. Watched from here:
    // waitForFunction would evaluate a string in the page, which its policy (no 'unsafe-eval') forbids.
    const until = Date.now() + 120000;
    while (Number(await page.textContent('[data-total="sales"] b')) <= before) {
      assert.ok(Date.now() < until, 'no new sale reached the totals within 2 minutes');
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok((await page.locator('#live.on').count()) === 1, 'the live stream is connected');
  });

  it("updates a changed machine's row live from a read of that machine, not of the whole list", async () => {
    const p = await watched();
    try {
      await p.addInitScript(`sessionStorage.setItem('vendfleet-token', ${JSON.stringify(token)})`);
      await p.goto(url + '/dashboard');
      await p.waitForSelector('#machines tbody tr[data-machine="vm-0003"]');
      // Every read of the machine list from here on: the whole list (no ids) or some machines' rows.
      const reads: URL[] = [];
      p.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname === '/machines') reads.push(u);
      });
      const stock = async (): Promise<string[]> => p.locator('#machines tbody td[data-stock]').allTextContents();
      const first = await stock();
      // The customers buy and the machines report their slots: a row's stock moves (bounded wait).
      const until = Date.now() + 120000;
      while ((await stock()).join() === first.join()) {
        assert.ok(Date.now() < until, 'no machine reported a new stock within 2 minutes');
        await new Promise((r) => setTimeout(r, 200));
      }
      // The rows say what the API says of each machine.
      type Row = { id: string; stock: { units: number; capacity: number; percent: number } | null };
      const api = async (): Promise<string[]> => (await get<{ machines: Row[] }>('/machines')).machines.map((m) => (m.stock ? `${m.stock.percent} % (${m.stock.units}/${m.stock.capacity})` : 'none'));
      await settles('the stock column as GET /machines says', api, stock);
      const whole = reads.filter((u) => !u.searchParams.has('ids'));
      assert.deepEqual(whole.map(String), [], 'a live change read the whole machine list');
      const named = reads.flatMap((u) => u.searchParams.get('ids')!.split(','));
      assert.ok(named.length > 0, 'no machine was read again');
      for (const id of named) assert.match(id, /^vm-000[123]$/);
    } finally {
      await p.close();
    }
  });

  it('sends a command and shows its outcome as the machine applies it', async () => {
    await page.selectOption('#command-type', 'set-prices');
    await page.fill('#command-args', '{"prices":{"A1":155}}');
    await page.click('#command button');
    await page.waitForSelector('#commands li[data-status="applied"]:has-text("set-prices")', { timeout: 60000 });
    await page.waitForSelector('#planogram .slot[data-slot="A1"]:has-text("USD 1.55")', { timeout: 60000 });
    await readable('#commands');
    await shot('3-command');
  });

  it('fires an alert as a slot runs empty and clears it when the route driver restocks the machine by command', async () => {
    const get = async <T>(path: string): Promise<T> => (await (await fetch(url + path, { headers: { authorization: `Bearer ${token}` } })).json()) as T;
    type Alert = { id: number; machine: string; kind: string; subject: string; closedAt: string | null };
    let open: Alert | undefined;
    for (let i = 0; i < 600 && !open; i++) {
      open = (await get<{ alerts: Alert[] }>('/alerts?kind=slot-empty')).alerts[0];
      if (!open) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(open, 'a slot ran empty and its alert opened');
    await page.click(`#machines tr[data-machine="${open.machine}"]`);
    const item = `#alerts li[data-kind="slot-empty"][data-subject="${open.subject}"]`;
    // Seen on the page (live) unless the driver was quicker than the page.
    const seen = await page.waitForSelector(item, { timeout: 10000 }).then(() => true, () => false);
    if (seen) await shot('5-alert');
    let closed: Alert | undefined;
    for (let i = 0; i < 600 && !closed; i++) {
      closed = (await get<{ alerts: Alert[] }>(`/alerts?state=closed&kind=slot-empty&machine=${open.machine}`)).alerts.find((a) => a.id === open!.id);
      if (!closed) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(closed?.closedAt, 'the alert closed after the restock');
    const restock = (await get<{ commands: { type: string; status: string }[] }>(`/machines/${open.machine}/commands`)).commands.find((c) => c.type === 'restock');
    assert.equal(restock?.status, 'applied');
    await page.waitForSelector(item, { state: 'detached', timeout: 30000 });
    await page.waitForSelector(`#planogram .slot[data-slot="${open.subject}"]:not(.empty)`, { timeout: 30000 });
  });

  it('plans a restocking route from a depot', async () => {
    await page.fill('#depot', '39.7392,-104.9903');
    await page.fill('#days', '7');
    await page.click('#route-form button');
    await page.waitForSelector('#route [data-route-km]');
    assert.ok((await page.locator('#route li[data-stop]').count()) >= 1);
    // On the map: one line from the depot through the stops, and the depot.
    await page.waitForSelector('#map path.route[data-van="1"]');
    assert.equal(await page.locator('#map path.route').count(), 1);
    assert.match((await page.getAttribute('#map path.route', 'd')) ?? '', /^M[\d.-]+ [\d.-]+(L[\d.-]+ [\d.-]+)+$/);
    assert.equal(await page.locator('#map .depot').count(), 1);
    // Each stop says why in words (it once printed "[object Object]" for every reason).
    const stops = await page.locator('#route li[data-stop]').allTextContents();
    for (const s of stops) {
      assert.doesNotMatch(s, /object Object|undefined|NaN/, s);
      assert.match(s, /km; (asked for|[A-Z0-9]+ (empty|fault|runs out))/, s);
    }
    await shot('6-route');
  });

  it('plans for two vans: each van its stops with times, its load list', async () => {
    await page.fill('#depot', '39.7392,-104.9903');
    await page.fill('#days', '7');
    await page.fill('#vans', '2');
    await page.click('#route-form button');
    await page.waitForSelector('#route [data-van]');
    const vans = await page.locator('#route [data-van]').allTextContents();
    assert.ok(vans.length >= 1 && vans.length <= 2, `${vans.length} vans`);
    // A line per van on the map, each its own colour.
    await page.waitForSelector(`#map path.route[data-van="${vans.length}"]`);
    assert.equal(await page.locator('#map path.route').count(), vans.length);
    const colours = new Set<string>();
    for (const l of await page.locator('#map path.route').all()) colours.add((await l.getAttribute('stroke')) ?? '');
    assert.equal(colours.size, vans.length);
    const text = (await page.locator('#route').textContent()) ?? '';
    assert.doesNotMatch(text, /object Object|undefined|NaN/, text);
    for (const v of await page.locator('#route [data-van]').all()) {
      assert.match((await v.locator('h3').textContent()) ?? '', /^Van [12]: \d+ stops?, \d+\.\d km, back at \+\d+:\d\d, \d+ items$/);
      const stops = await v.locator('li[data-stop]').allTextContents();
      assert.ok(stops.length >= 1);
      for (const s of stops) assert.match(s, /^\+\d+:\d\d-\+\d+:\d\d \S+ \(\d+\.\d km; .+\): \d+ items/, s);
      assert.match((await v.locator('p').last().textContent()) ?? '', /^(Load: .+ \d+|Nothing to load\.)/);
    }
    await shot('6b-vans');
    // Back to one van for the tests after this one.
    await page.fill('#vans', '1');
  });

  it('shows the API docs (Swagger UI) under the same policy, and tries a route', async () => {
    const docs = await watched();
    try {
      const answer = await docs.goto(url + '/docs');
      assert.match(answer?.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
      await docs.waitForSelector('.swagger-ui .opblock-summary-path[data-path="/machines/{id}/purchase"]');
      // Try it out: the page calls the API itself (connect-src 'self').
      await docs.click('.opblock-summary-path[data-path="/fleet/summary"]');
      await docs.click('.opblock.is-open .try-out__btn');
      await docs.click('.opblock.is-open .execute');
      await docs.waitForSelector('.opblock.is-open .live-responses-table .response-col_status:has-text("401")');
      await shot('7-docs', docs);
    } finally {
      await docs.close();
    }
  });

  it('reads the audit data and downloads the machine\'s DEX file', async () => {
    await page.click('#read-audit');
    await page.waitForSelector('#audits a[data-download]', { timeout: 60000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#audits a[data-download]')]);
    const file = join(shots, download.suggestedFilename());
    await download.saveAs(file);
    const text = readFileSync(file, 'latin1');
    const shown = ((await page.textContent("#machine-title")) ?? "").split(" ")[0]!;
    assert.ok(text.startsWith(`DXS*VFL0000000*VA*V0/6*1\r\nST*001*0001\r\nID1*${shown}*`), text.slice(0, 80));
    assert.match(text, /\r\nG85\*[0-9A-F]{4}\r\nSE\*\d+\*0001\r\nDXE\*1\*1\r\n$/);
    await shot('4-audit');
  });

  it("shows each machine's firmware version, and a rollout: its waves, counts per state, and the machines that failed or rolled back", async () => {
    for (const id of ['vm-0001', 'vm-0002', 'vm-0003']) await page.waitForSelector(`#machines tr[data-machine="${id}"] td[data-firmware="${FIRMWARE_VERSION}"]`);
    const call = async <T>(method: string, path: string, body?: Buffer | object): Promise<T> => {
      const binary = Buffer.isBuffer(body);
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': binary ? 'application/octet-stream' : 'application/json' } : {}) },
        ...(body ? { body: binary ? body : JSON.stringify(body) } : {}),
      });
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
      return (await res.json()) as T;
    };
    const image = simImage('9.0.0', { size: 20000, seed: 9 });
    const s = signRelease(image, '9.0.0', release.privatePem);
    await call('POST', `/firmware?version=9.0.0&signature=${s.signature}`, image);
    const r = await call<{ id: string }>('POST', '/rollouts', { version: '9.0.0', target: { all: true }, waves: [1, 10, 100] });
    await page.waitForSelector(`#rollouts tr[data-rollout="${r.id}"]`, { timeout: 30000 });
    await page.click(`#rollouts tr[data-rollout="${r.id}"]`);
    await page.waitForSelector('#rollout-waves .wave[data-wave="3"]');
    // Read in one evaluation: the panel redraws live as machines move on, and separate reads of the counts once
    // summed 4 for 3 machines under load. (A string expression: the page's policy forbids building functions.)
    const attrs = async (selector: string, name: string): Promise<string[]> =>
      (await page.evaluate(`[...document.querySelectorAll(${JSON.stringify(selector)})].map((e) => e.getAttribute(${JSON.stringify(name)}) ?? '')`)) as string[];
    assert.deepEqual(await attrs('#rollout-waves .wave', 'data-size'), ['1', '0', '2']);
    assert.match((await page.textContent('#rollout-title')) ?? '', new RegExp(`^${r.id} · 9\.0\.0 to every machine · `));
    const counts = (await attrs('#rollout-counts .count', 'data-count')).map(Number);
    assert.equal(counts.length, 7, 'a count per state');
    assert.equal(counts.reduce((a, b) => a + b, 0), 3, 'every machine counted once');
    // The first wave's machine cannot run this image (a firmware without updates refuses the command, one with them
    // finds it is no bundle and rolls back): it shows up with its reason, live.
    await page.waitForSelector('#rollout-problems li[data-machine]', { timeout: 120000 });
    assert.match((await page.textContent('#rollout-problems li[data-machine]')) ?? '', /^vm-000\d \(wave 1\): (failed|rolled-back) · \S/);
    await shot('8-rollout');
  });

  it('reads well on every panel, at desktop and phone sizes', async () => {
    for (const panel of ['#totals', '#kpis', '#machines', '#machine', '#rollouts', '#route', '#who', '#map', '#map-legend', 'section.heat']) await readable(panel);
    await page.setViewportSize({ width: 1280, height: 800 });
    await shot('9-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    // One column on a phone: the list starts below the KPIs, not beside them.
    // Both boxes in one evaluation: the page scrolls and the KPIs redraw between separate reads.
    type Box = { x: number; y: number; width: number; height: number };
    const { kpis, fleet } = (await page.evaluate(
      `(() => { const box = (s) => { const r = document.querySelector(s).getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; }; return { kpis: box('#kpis'), fleet: box('section.fleet') }; })()`,
    )) as { kpis: Box; fleet: Box };
    assert.ok(fleet.y >= kpis.y + kpis.height - 0.5 && fleet.x + fleet.width <= 390 + 1, JSON.stringify({ kpis, fleet }));
    await shot('10-phone');
    // Nothing sticks out sideways: the whole page's shot is as wide as the phone (PNG width: bytes 16 to 19).
    assert.equal(readFileSync(join(shots, '10-phone.png')).readUInt32BE(16), 390, 'the page scrolls sideways on a phone');
    await page.setViewportSize({ width: 1400, height: 1000 });
  });
});
