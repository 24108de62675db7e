/**
 * The dashboard's first screen over more machines than a page of its list, in
 * Chromium (issue 18): the page reads the gateway's totals and KPI counts
 * (GET /fleet/summary), the map's narrow read (GET /fleet/map) and one page
 * of the list (GET /machines?limit=), never the whole list or every
 * location; "show more" reads the next page by its cursor; a sort or a
 * filter reads every machine once and then works on all of them; a live
 * change patches its row, the totals and the KPIs; an operator's token sees
 * its own machines' counts only. The store is the dashboard bench's seed
 * (bench/lib/dashboard.ts) at 250 machines of 2 operators.
 */
import { strict as assert } from 'node:assert';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { machineId, seedDashboardStore } from '../../bench/lib/dashboard.js';
import { buildApi } from '../../gateway/api/server.js';
import { listen } from '../../gateway/api/listen.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { ingestStore } from '../../gateway/ingest/store.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { launchChromium, watchPolicy } from '../lib/browser-fleet.js';

const MACHINES = 250;

describe('the dashboard first screen over more machines than a page (Chromium)', function () {
  this.timeout(240000);
  let db: Db;
  let commands: CommandService;
  let api: FastifyInstance;
  let browser: Browser;
  let url = '';
  let admin = '';
  let viewer = '';
  const violations: string[] = [];
  const pages: Page[] = [];

  before(async () => {
    db = await openDb({});
    await migrate(db);
    await seedDashboardStore(db, { machines: MACHINES, operators: 2, days: 10, rawDays: 3, salesPerDay: 2 });
    // One machine reports an error (the KPI "with errors" and its map state).
    await db.query(`UPDATE machine_state SET telemetry = jsonb_set(telemetry, '{errors}', '["coin-jam"]') WHERE machine_id = $1`, [machineId(7)]);
    commands = new CommandService(db, () => {});
    api = await buildApi({ db, commands });
    ({ url } = await listen(api, '127.0.0.1', 0));
    admin = (await createToken(db, 'admin', 'admin')).token;
    viewer = (await createToken(db, 'op1 viewer', 'viewer', 'op1')).token;
    // The forecasts' first look, waited for (bounded): the restock KPI is a count, not "…", on the pages below.
    for (const until = Date.now() + 60000; (await get<{ restockToday: number | null }>('/fleet/summary')).restockToday === null; ) {
      assert.ok(Date.now() < until, 'restockToday still null after 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const p of pages.splice(0)) await p.close();
    assert.deepEqual(violations.splice(0), [], 'Content-Security-Policy violations');
  });

  after(async () => {
    await browser?.close();
    await api?.close();
    commands?.close();
    await db?.close();
  });

  const get = async <T>(path: string, token = admin): Promise<T> => {
    const r = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, path);
    return (await r.json()) as T;
  };

  /** A signed-in page, and every read of the fleet it makes (path and query). */
  const open = async (token = admin): Promise<{ page: Page; reads: string[] }> => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    pages.push(page);
    await watchPolicy(page, violations);
    const reads: string[] = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (['/machines', '/locations', '/fleet/map', '/fleet/summary'].includes(u.pathname)) reads.push(decodeURIComponent(u.pathname + u.search));
    });
    await page.addInitScript(`sessionStorage.setItem('vendfleet-token', ${JSON.stringify(token)})`);
    await page.goto(url + '/dashboard');
    await page.waitForSelector('#machines tbody tr[data-machine]');
    return { page, reads };
  };

  /** What a person reads on a panel: never a placeholder the code let through. */
  const readable = async (page: Page, selector: string): Promise<string> => {
    const text = (await page.locator(selector).innerText()).replace(/\s+/g, ' ');
    assert.doesNotMatch(text, /\[object Object\]|undefined|NaN/, `${selector}: ${text}`);
    return text;
  };
  /** The list's machine ids, top to bottom (read in one go, as text: the page's policy allows no eval). */
  const rows = async (page: Page): Promise<string[]> => (await page.evaluate("[...document.querySelectorAll('#machines tbody tr[data-machine]')].map((tr) => tr.getAttribute('data-machine'))")) as string[];
  /** Poll (bounded) until `read` gives `want`. */
  const until = async <T>(what: string, want: T, read: () => Promise<T>, ms = 30000): Promise<void> => {
    for (const end = Date.now() + ms; ; ) {
      const got = await read();
      try {
        assert.deepEqual(got, want, what);
        return;
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  /** Machines the map shows: its single dots and the counts on its clusters (read in one go). */
  const onMap = async (page: Page): Promise<number> =>
    (await page.evaluate(
      "[...document.querySelectorAll('#map .cluster')].reduce((a, c) => a + Number(c.getAttribute('data-count')), 0) + document.querySelectorAll('#map path[data-machine]').length",
    )) as number;
  const kpis = async (page: Page): Promise<string[]> => Promise.all(['restock', 'errors', 'offline'].map(async (k) => (await page.textContent(`[data-kpi="${k}"] b`)) ?? ''));

  it('draws the first screen from the totals, the map read and one page of the list, never the whole list', async () => {
    const { page, reads } = await open();
    assert.deepEqual(await rows(page), Array.from({ length: 100 }, (_, i) => machineId(i + 1)), 'the first page, in id order');
    assert.equal(await page.textContent('#machines-shown'), `${MACHINES} of ${MACHINES} machines`);
    assert.equal(await page.textContent('#machines [data-more]'), `show 100 more of ${MACHINES - 100}`);
    // The KPIs are the gateway's counts (none of them from the page's rows: it holds 100 of 250).
    type Summary = { machines: number; online: number; offline: number; withErrors: number; restockToday: number };
    const s = await get<Summary>('/fleet/summary');
    assert.deepEqual([s.offline, s.withErrors], [MACHINES / 50, 1], 'the seed: one machine in 50 offline, one reporting an error');
    assert.deepEqual(await kpis(page), [String(s.restockToday), '1', String(MACHINES / 50)]);
    assert.equal(await page.textContent('[data-total="online"] b'), `${s.online}/${s.machines}`);
    // Every located machine on the map (in clusters at this zoom).
    await until('machines on the map', MACHINES, () => onMap(page));
    await readable(page, '#kpis');
    await readable(page, '#totals');
    await readable(page, '#machines');
    assert.deepEqual(reads.sort(), ['/fleet/map', '/fleet/summary?last24h=false', '/machines?limit=100'].sort(), 'the first screen read the totals, the map and one page');
  });

  it('reads the next page by its cursor when asked to show more', async () => {
    const { page, reads } = await open();
    await page.click('#machines [data-more]');
    await until('200 rows', 200, async () => (await rows(page)).length);
    assert.equal(await page.textContent('#machines [data-more]'), `show 50 more of ${MACHINES - 200}`);
    await page.click('#machines [data-more]');
    await until('every row', MACHINES, async () => (await rows(page)).length);
    assert.deepEqual(await rows(page), Array.from({ length: MACHINES }, (_, i) => machineId(i + 1)));
    assert.equal(await page.locator('#machines [data-more]').count(), 0, 'nothing more to show');
    assert.deepEqual(
      reads.filter((r) => r.startsWith('/machines')),
      ['/machines?limit=100', `/machines?limit=100&cursor=${machineId(100)}`, `/machines?limit=100&cursor=${machineId(200)}`],
    );
    await readable(page, '#machines');
  });

  it('reads every machine once for a sort or a filter, then sorts and filters all of them', async () => {
    const { page, reads } = await open();
    type Row = { id: string; online: boolean; stock: { percent: number } | null };
    const all = (await get<{ machines: Row[] }>('/machines')).machines;
    // By stock, emptiest first (ties by id), over all 250 machines, not the page read first.
    await page.click('#machines th[data-sort="stock"]');
    const byStock = [...all].sort((a, b) => (a.stock?.percent ?? -1) - (b.stock?.percent ?? -1) || (a.id < b.id ? -1 : 1)).map((m) => m.id);
    await until('sorted by stock', byStock.slice(0, 100), () => rows(page));
    assert.equal(await page.textContent('#machines-shown'), `${MACHINES} of ${MACHINES} machines`);
    await page.selectOption('#state-filter', 'offline');
    const offline = all.filter((m) => !m.online).map((m) => m.id);
    assert.equal(offline.length, MACHINES / 50);
    await until('the offline machines', [...offline].sort((a, b) => (all.find((m) => m.id === a)!.stock?.percent ?? -1) - (all.find((m) => m.id === b)!.stock?.percent ?? -1) || (a < b ? -1 : 1)), () => rows(page));
    assert.equal(await page.textContent('#machines-shown'), `${offline.length} of ${MACHINES} machines`);
    // The KPI's list: the machine with errors.
    await page.click('[data-kpi="errors"]');
    await until('the machine with errors', [machineId(7)], () => rows(page));
    assert.deepEqual(
      reads.filter((r) => r.startsWith('/machines')),
      ['/machines?limit=100', '/machines'],
      'one page, then the whole list once',
    );
    await readable(page, '#machines');
  });

  it('patches a changed machine live: its row, the totals, the KPIs; no whole read', async () => {
    const { page, reads } = await open();
    const id = machineId(3);
    const before = (await get<{ online: number; machines: number; offline: number }>('/fleet/summary'));
    await until('the KPIs drawn', String(before.offline), async () => (await page.textContent('[data-kpi="offline"] b')) ?? '');
    const from = reads.length;
    await ingestStore(db).write(
      { at: new Date(), messages: [], telemetry: [], statuses: [{ machine: id, online: false, text: '{"v":1,"online":false}' }], rejections: new Map() },
      { conflict: () => {} },
    );
    await until('the row offline', 'offline', async () => (await page.textContent(`#machines tr[data-machine="${id}"] td:nth-child(3)`)) ?? '');
    await until('one fewer online', `${before.online - 1}/${before.machines}`, async () => (await page.textContent('[data-total="online"] b')) ?? '');
    await until('one more offline', String(before.offline + 1), async () => (await page.textContent('[data-kpi="offline"] b')) ?? '');
    const later = reads.slice(from);
    assert.ok(later.includes(`/machines?ids=${id}`), later.join(' '));
    assert.deepEqual(later.filter((r) => r === '/machines' || r.startsWith('/machines?limit') || r === '/fleet/map' || r === '/locations'), [], 'a live change read the whole list or map');
    await readable(page, '#kpis');
    await readable(page, '#machines');
  });

  it('opens a machine the list has not read (from the heatmap) with its money: its row read alone', async () => {
    const { page, reads } = await open();
    await page.waitForSelector('#heatmap tbody tr[data-machine]');
    const first = new Set(await rows(page));
    const ids = (await page.evaluate("[...document.querySelectorAll('#heatmap tbody tr[data-machine]')].map((tr) => tr.getAttribute('data-machine'))")) as string[];
    const far = ids.find((id) => !first.has(id));
    assert.ok(far, `a machine of the heatmap beyond the list's first page: ${ids.join(', ')}`);
    const money = (await get<{ machines: { money: { currency: string } | null }[] }>(`/machines?ids=${far}`)).machines[0]!.money!.currency;
    await page.click(`#heatmap tbody tr[data-machine="${far}"]`);
    await page.waitForSelector(`#chart[data-bucket="hour"] .uplot canvas`);
    await until('the sales chart in its currency', true, async () => new RegExp(`^\\d+ sales?, ${money} [\\d,]+\\.\\d{2} from .+ UTC, per hour$`).test((await page.textContent('#chart .chart-note')) ?? ''));
    assert.ok(reads.includes(`/machines?ids=${far}`), reads.join(' '));
    await readable(page, '#machine');
  });

  it("shows an operator's token its own machines' counts, map and list only", async () => {
    const { page, reads } = await open(viewer);
    type Summary = { machines: number; online: number; offline: number; withErrors: number; restockToday: number | null };
    const s = await get<Summary>('/fleet/summary', viewer);
    const mine = (await get<{ machines: { id: string; operator: string }[] }>('/machines', viewer)).machines;
    assert.equal(s.machines, MACHINES / 2);
    assert.deepEqual([...new Set(mine.map((m) => m.operator))], ['op1']);
    await until('the KPIs as the operator\'s summary', [s.restockToday === null ? '…' : String(s.restockToday), String(s.withErrors), String(s.offline)], () => kpis(page));
    assert.equal(await page.textContent('#machines-shown'), `${MACHINES / 2} of ${MACHINES / 2} machines`);
    assert.deepEqual(await rows(page), mine.slice(0, 100).map((m) => m.id));
    await until('its machines on the map', MACHINES / 2, () => onMap(page));
    assert.deepEqual(reads.filter((r) => r.startsWith('/machines')), ['/machines?limit=100']);
    await readable(page, '#kpis');
  });
});
