/**
 * The dashboard's first screen over a big store (`npm run bench -- --dashboard-only`):
 * a store of N machines (10,000 by default) over a few operators with a year
 * of sales, the gateway's API on it, and the page in Chromium signed in as a
 * platform admin. Figures from the browser's own performance timings:
 * navigation (response, DOM content loaded, load) and the page's
 * `vendfleet:first-screen` mark (KPIs, fleet list and map drawn,
 * gateway/dashboard/app.ts), then how long a status change the gateway
 * ingests takes to show on the open page (live update: the page reads only
 * the totals and that machine's row). Also the API answers behind the first
 * screen and a live change, timed in Node, and the restock KPI from the
 * forecasts.
 *
 * The year is seeded in bulk, not ingested: the last `rawDays` days as
 * vend-ok events (the forecasts' window reads them) with their rollup built
 * from them, the days before as daily rollup rows only (as retention leaves
 * a store whose raw months were archived).
 */
import { chromium, type Browser } from 'playwright-core';
import { buildApi } from '../../gateway/api/server.js';
import { listen } from '../../gateway/api/listen.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { ingestStore } from '../../gateway/ingest/store.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { addMonths, ensureEventMonth, monthOf } from '../../gateway/store/event-partitions.js';
import { migrate } from '../../gateway/store/migrations.js';
import { createOperator } from '../../gateway/store/operators.js';
import { closeSalesDays, rebuildRollup } from '../../gateway/store/rollup.js';
import type { Figures } from './figures.js';

const DAY_MS = 86_400_000;
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export interface DashboardSeed {
  machines: number;
  operators: number;
  /** Days of sales in all (the year), ending now. */
  days: number;
  /** The last days as raw events (the rest as rollup rows only). */
  rawDays: number;
  /** Sales a machine makes a day. */
  salesPerDay: number;
}

export const machineId = (m: number): string => `bm${String(m).padStart(5, '0')}`;

/** Seed `seed` into a migrated, empty store; progress on `out`. Returns the vend-ok events and rollup rows written. */
export async function seedDashboardStore(db: Db, seed: DashboardSeed, out: (s: string) => void = () => {}): Promise<{ events: number; rollupRows: number }> {
  const { machines, operators, days, rawDays, salesPerDay } = seed;
  for (let o = 1; o <= operators; o++) await createOperator(db, `op${o}`, `Operator ${o}`);
  // Around a city: 0.4 x 0.6 degrees. Provisioned before the year began.
  await db.query(
    `INSERT INTO machines (id, operator_id, created_at, lat, lon, address)
     SELECT 'bm' || lpad(m::text, 5, '0'), 'op' || (1 + m % $2::int), now() - make_interval(days => $3::int + 1),
            52.3 + ((m * 7919) % 1000) / 2500.0, 13.1 + ((m * 104729) % 1000) / 1666.0, 'Street ' || m
     FROM generate_series(1, $1::int) m`,
    [machines, operators, days],
  );
  // Ten slots each, capacity 12: one machine in three just restocked (full), the others with some slots nearly empty;
  // one machine in 50 offline, one in 40 with a slot empty.
  await db.query(
    `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at, last_seq)
     SELECT 'bm' || lpad(m::text, 5, '0'), m % 50 <> 0, now() - make_interval(secs => m % 600),
            jsonb_build_object('fw', '1.4.' || (m % 3), 'currency', CASE WHEN m % 10 = 0 THEN 'GBP' ELSE 'EUR' END, 'decimals', 2, 'errors', '[]'::jsonb,
              'slots', (SELECT jsonb_agg(jsonb_build_object('code', chr(65 + i / 2) || (1 + i % 2)::text, 'product', 'Product ' || i, 'price', 150 + i * 10,
                                                            'capacity', 12, 'qty', CASE WHEN i = 0 AND m % 40 = 0 THEN 0 WHEN m % 3 = 0 THEN 12 ELSE 1 + (m * 7 + i * 5) % 12 END) ORDER BY i)
                        FROM generate_series(0, 9) i)),
            now() - make_interval(secs => m % 600), 0
     FROM generate_series(1, $1::int) m`,
    [machines],
  );
  const nowMonth = monthOf(Date.now());
  for (let mo = monthOf(Date.now() - rawDays * DAY_MS); mo <= nowMonth; mo = addMonths(mo, 1)) await ensureEventMonth(db, mo);
  const t0 = performance.now();
  for (let d = rawDays - 1; d >= 0; d--) {
    await db.transaction(async (tx) => {
      // A bulk load of rows made for existing machines: per-row foreign-key checks skipped (this transaction only).
      await tx.query('SET LOCAL session_replication_role = replica');
      // Slot s % 10 at a time of day that moves with the machine and the sale; today only up to now.
      await tx.query(
        `INSERT INTO events (machine_id, seq, type, machine_time, body, received_at)
         SELECT machine_id, seq, 'vend-ok', machine_time, body, received_at FROM (
           SELECT 'bm' || lpad(m::text, 5, '0') AS machine_id, ((1000 - $1::int) * $3::int + s)::bigint AS seq, ($1::int * 86400 + (s * 5003 + m * 7) % 86400)::bigint AS machine_time,
                  ('{"slot":"' || chr(65 + ((m + s) % 10) / 2) || (1 + (m + s) % 2)::text || '","price":' || (150 + ((m + s) % 10) * 10)::text || '}')::jsonb AS body,
                  date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $1::int) + make_interval(secs => (s * 5003 + m * 7) % 86400) AS received_at
           FROM generate_series(1, $2::int) m, generate_series(1, $3::int) s) x
         WHERE x.received_at <= now()`,
        [d, machines, salesPerDay],
      );
    });
    if (d % 7 === 0) out(`    raw sales: ${rawDays - d} of ${rawDays} days (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const day = (t: number): string => new Date(t).toISOString().slice(0, 10);
  await db.transaction((tx) => rebuildRollup(tx, day(today - (rawDays - 1) * DAY_MS), day(today + DAY_MS)));
  // The year's older days: a row per machine and day (its sales on one slot), as rolled up before retention.
  await db.query(
    `INSERT INTO sales_daily (machine_id, day, slot, sales, revenue)
     SELECT 'bm' || lpad(m::text, 5, '0'), (now() AT TIME ZONE 'UTC')::date - d, chr(65 + m % 5) || '1', $3::int, $3::int * (150 + (m % 10) * 10)
     FROM generate_series(1, $1::int) m, generate_series($4::int, $2::int - 1) d`,
    [machines, days, salesPerDay, rawDays],
  );
  await closeSalesDays(db);
  await db.exec('ANALYZE');
  const events = Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE type = 'vend-ok'")).rows[0]!.n);
  const rollupRows = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM sales_daily')).rows[0]!.n);
  return { events, rollupRows };
}

export interface DashboardRun {
  /** Navigation timing, ms from the navigation's start. */
  responseEndMs: number;
  domContentLoadedMs: number;
  loadMs: number;
  /** The page's vendfleet:first-screen mark, ms from the navigation's start. */
  firstScreenMs: number;
  /** Rows the list drew, and the machines it says it shows. */
  rowsDrawn: number;
  shownText: string;
  /** The KPI "need restocking" as drawn. */
  restockKpi: string;
  /**
   * The page's requests up to its first screen, from the browser's resource timings (ms from the navigation's
   * start): what it asked for, when it asked, when the answer was in, and its size on the wire.
   */
  requests: { path: string; startMs: number; endMs: number; bytes: number }[];
  /** From the ingest of a machine going offline to the page showing it, ms. */
  liveMs: number;
  /** The API's answers behind the first screen, ms each (in Node, after the page). */
  api: Record<string, number>;
}

/** Open the dashboard in Chromium against `url` signed in with `token`; measure the first screen and a live change of `machine` (online now). */
export async function measureDashboard(db: Db, url: string, token: string, machine: string, browser: Browser, waitS = 120): Promise<DashboardRun> {
  // bypassCSP: the measuring code below is sent as text, which the page's policy (no eval) would refuse.
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, bypassCSP: true });
  // What the page threw or logged as an error: said with the figures (a first screen that never comes says why).
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console: ${m.text()}`);
  });
  try {
    // Signed in as the page keeps a sign-in (its tab's session storage): the page loads straight into the fleet.
    await page.addInitScript(`sessionStorage.setItem('vendfleet-token', ${JSON.stringify(token)})`);
    await page.goto(`${url}/dashboard`);
    // Browser-side code as text: this file is compiled without the DOM's types.
    await page
      .waitForFunction("performance.getEntriesByName('vendfleet:first-screen').length > 0", undefined, { timeout: waitS * 1000, polling: 50 })
      .catch((e: unknown) => {
        throw new Error(`the first screen was not drawn within ${waitS} s${problems.length > 0 ? `: ${problems.slice(0, 5).join('; ')}` : ''} (${(e as Error).message})`);
      });
    const timing = (await page.evaluate(`(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const mark = performance.getEntriesByName('vendfleet:first-screen')[0];
      return {
        responseEndMs: nav.responseEnd,
        domContentLoadedMs: nav.domContentLoadedEventEnd,
        loadMs: nav.loadEventEnd,
        firstScreenMs: mark.startTime,
        rowsDrawn: document.querySelectorAll('#machines tbody tr[data-machine]').length,
        shownText: document.querySelector('#machines-shown')?.textContent ?? '',
        restockKpi: document.querySelector('[data-kpi="restock"] b')?.textContent ?? '',
        requests: performance.getEntriesByType('resource').filter((r) => r.startTime <= mark.startTime).map((r) => {
          const u = new URL(r.name);
          return { path: u.pathname + u.search, startMs: r.startTime, endMs: r.responseEnd, bytes: r.encodedBodySize };
        }),
      };
    })()`)) as Omit<DashboardRun, 'liveMs' | 'api'>;
    // Live: the machine goes offline through ingest; the page's "online" total drops by one.
    const before = (await page.textContent('[data-total="online"] b')) ?? '';
    const [on, all] = before.split('/').map(Number) as [number, number];
    const want = `${on - 1}/${all}`;
    // The page reports the wall-clock time it first showed it (same machine, same clock as this process).
    const seen = page.evaluate(`new Promise((resolve) => {
      const look = () => {
        if (document.querySelector('[data-total="online"] b')?.textContent === ${JSON.stringify(want)}) resolve(Date.now());
        else requestAnimationFrame(look);
      };
      look();
    })`) as Promise<number>;
    const t0 = Date.now();
    await ingestStore(db).write(
      { at: new Date(), messages: [], telemetry: [], statuses: [{ machine, online: false, text: '{"v":1,"online":false}' }], rejections: new Map() },
      { conflict: () => {} },
    );
    const liveMs = (await seen) - t0;
    const api: Record<string, number> = {};
    // The first screen's reads (totals, the map's, a page of the list), the whole list and the locations (read on demand), and the row a live change reads.
    for (const path of ['/fleet/summary', '/fleet/map', '/machines', '/locations', '/machines?limit=100', `/machines?ids=${machine}`]) {
      const a = performance.now();
      const r = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
      if (!r.ok) throw new Error(`${path}: ${r.status}`);
      await r.arrayBuffer();
      api[path] = performance.now() - a;
    }
    return { ...timing, liveMs, api };
  } finally {
    await page.close();
  }
}

export interface DashboardBenchOptions extends Partial<DashboardSeed> {
  /** A PostgreSQL URL (a schema of the bench's own, dropped after); PGlite in memory when not given. */
  pgUrl?: string | undefined;
  /** PGlite in this directory, kept: a store seeded there before with as many machines is used again (no seeding; the restock-look bench's too). */
  dataDir?: string | undefined;
}

/** The big store's seed: the given parts over the defaults (10,000 machines, 4 operators, a year, 28 days raw). */
export function bigSeed(options: Partial<DashboardSeed>): DashboardSeed {
  return { machines: 10000, operators: 4, days: 365, rawDays: 28, salesPerDay: 10, ...options };
}

/** Seed, serve, open, measure; prints figures under `dashboard.<store>.` */
export async function dashboardBench(f: Figures, options: DashboardBenchOptions = {}): Promise<DashboardRun> {
  const seed = bigSeed(options);
  const store = options.pgUrl ? 'pg' : 'pglite';
  const schema = `bench_dash_${process.pid}`;
  f.out('');
  f.out(`Dashboard: first screen and live update in Chromium, ${seed.machines} machines of ${seed.operators} operators, ${seed.days} days of sales (${store === 'pg' ? 'PostgreSQL' : 'PGlite'})`);
  const db = await openDb(options.pgUrl ? { url: options.pgUrl, schema } : options.dataDir ? { dataDir: options.dataDir } : {});
  let browser: Browser | undefined;
  const commands = new CommandService(db, () => {});
  const api = await (async () => {
    await migrate(db);
    const have = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM machines')).rows[0]!.n);
    if (options.dataDir && have === seed.machines) f.out(`    the store in ${options.dataDir} is seeded already: used again`);
    else {
      const t0 = performance.now();
      const { events, rollupRows } = await seedDashboardStore(db, seed, f.out);
      f.record(`dashboard.${store}.seedSeconds`, (performance.now() - t0) / 1000, `seeded: ${events} vend-ok events, ${rollupRows} rollup rows, s`);
    }
    return buildApi({ db, commands });
  })();
  try {
    const { url } = await listen(api, '127.0.0.1', 0);
    const token = (await createToken(db, 'bench', 'admin')).token;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    // Machines online now, to take offline (a kept store has had some taken offline before).
    const online = (await db.query<{ id: string }>('SELECT machine_id AS id FROM machine_state WHERE online ORDER BY machine_id LIMIT 2')).rows.map((r) => r.id);
    // The first load warms the server (its first look at the forecasts' month of sales, plans, the page's scripts); the second is the one reported.
    // On PGlite the cold page queues behind that first look (a month of sales counted): minutes on a busy machine.
    const cold = await measureDashboard(db, url, token, online[0]!, browser, 600);
    // The gateway's first look at the forecasts runs in the background (restockToday null until then): waited for, so the measured page has the KPI.
    const k = `dashboard.${store}`;
    const w0 = performance.now();
    for (let i = 0; ; i++) {
      const r = (await (await fetch(`${url}/fleet/summary`, { headers: { authorization: `Bearer ${token}` } })).json()) as { restockToday: number | null };
      if (r.restockToday !== null) break;
      if (i > 1200) throw new Error('restockToday still null after 10 minutes');
      await new Promise((res) => setTimeout(res, 500));
    }
    f.record(`${k}.restockFirstLookWaitS`, (performance.now() - w0) / 1000, 'restockToday: waited after the cold page for the first look, s');
    const run = await measureDashboard(db, url, token, online[1]!, browser);
    f.record(`${k}.coldFirstScreenMs`, cold.firstScreenMs, 'first screen, the first page after the API started', 'ms', 0);
    f.record(`${k}.firstScreenMs`, run.firstScreenMs, 'first screen (KPIs, list, map drawn), from navigation start', 'ms', 0);
    f.record(`${k}.firstScreenOver2s`, run.firstScreenMs / 2000, 'first screen / the 2 s goal', 'x');
    f.record(`${k}.responseEndMs`, run.responseEndMs, 'navigation: page response end', 'ms', 0);
    f.record(`${k}.domContentLoadedMs`, run.domContentLoadedMs, 'navigation: DOM content loaded', 'ms', 0);
    f.record(`${k}.loadMs`, run.loadMs, 'navigation: load event end', 'ms', 0);
    f.record(`${k}.rowsDrawn`, run.rowsDrawn, `list rows drawn (${run.shownText})`);
    f.record(`${k}.liveMs`, run.liveMs, 'live: a machine offline, ingest to the page showing it', 'ms', 0);
    for (const [path, ms] of Object.entries(run.api)) {
      f.record(`${k}.api${path.replace(/\?.*$/, (q) => (q.startsWith('?limit') ? '.page' : '.ids')).replace(/\//g, '.')}Ms`, ms, `API ${path}${path.includes('?') ? '' : ' (every machine)'}, one read`, 'ms', 0);
    }
    f.out(`  restock KPI as drawn: ${run.restockKpi}`);
    // Where the first screen's time went: each request the page made before it, as the browser timed it.
    for (const [which, r] of [['cold', cold], ['measured', run]] as const) {
      f.out(`  the ${which} page's requests before its first screen (browser resource timings, ms from navigation start):`);
      for (const q of [...r.requests].sort((a, b) => a.startMs - b.startMs)) {
        f.out(`    ${q.startMs.toFixed(0).padStart(6)} -> ${q.endMs.toFixed(0).padStart(6)} (${(q.endMs - q.startMs).toFixed(0).padStart(5)} ms, ${String(q.bytes).padStart(8)} B) ${q.path}`);
      }
    }
    return run;
  } finally {
    await browser?.close();
    await api.close();
    commands.close();
    if (options.pgUrl) await db.exec(`DROP SCHEMA ${schema} CASCADE`);
    await db.close();
  }
}
