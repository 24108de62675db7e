/**
 * The operator dashboard: the page and its script (no login needed to load
 * them; every figure on it comes from the API with the token the operator
 * types in), and the few routes made for it: fleet totals, sales as a time
 * series, and a stream of what changed (server-sent events).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import { restockTodayOf } from '../restock/today.js';
import { BUCKET_MS, fleetSummary, salesSeries, type Bucket } from '../store/sales.js';
import { DASHBOARD_CSS, DASHBOARD_HTML } from './dashboard-page.js';
import { HttpError } from './errors.js';
import { MACHINE_ID, type RouteContext } from './http.js';
import { LiveFeed } from './live.js';
import { dateTime } from './validation.js';

/** The compiled page scripts (gateway/dashboard/*.ts → dist/gateway/dashboard/*.js): the page, and the modules it imports. */
const SCRIPTS = {
  app: new URL('../dashboard/app.js', import.meta.url),
  rollouts: new URL('../dashboard/rollouts.js', import.meta.url),
  'route-panel': new URL('../dashboard/route-panel.js', import.meta.url),
  map: new URL('../dashboard/map.js', import.meta.url),
  heatmap: new URL('../dashboard/heatmap.js', import.meta.url),
  'grid-clusters': new URL('../dashboard/grid-clusters.js', import.meta.url),
  charts: new URL('../dashboard/charts.js', import.meta.url),
  catalog: new URL('../dashboard/catalog.js', import.meta.url),
} as const;

/**
 * Third-party browser files the page uses (chart and map libraries, atlas data), served from the
 * installed npm packages under /dashboard/vendor/NAME: nothing is fetched from the internet. Only the
 * names listed here are served; anything else under /dashboard/vendor/ is a 404.
 */
export const VENDOR: Readonly<Record<string, string>> = Object.freeze({
  // The fleet map (gateway/dashboard/map.ts): Leaflet (BSD-2-Clause), topojson-client (ISC), and the outlines
  // from world-atlas (Natural Earth, public domain) and us-atlas (US Census Bureau), both ISC.
  'leaflet.js': 'leaflet/dist/leaflet-src.esm.js',
  'leaflet.css': 'leaflet/dist/leaflet.css',
  'topojson-client.js': 'topojson-client/dist/topojson-client.min.js',
  'countries-50m.json': 'world-atlas/countries-50m.json',
  'states-10m.json': 'us-atlas/states-10m.json',
  // Charts (gateway/dashboard/charts.ts): uPlot's browser build (a classic script defining uPlot) and its style sheet.
  'uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
});

const VENDOR_TYPES: Readonly<Record<string, string>> = Object.freeze({
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json; charset=utf-8',
  png: 'image/png',
  svg: 'image/svg+xml',
});
const require = createRequire(import.meta.url);

export async function registerDashboardRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, reads, need, scope } = ctx;
  // One feed per operator with a page open (null: platform admins'), each reading only its operator's changes.
  // On the primary: a feed asks for what changed since the store's last now(), which a lagging replica would miss.
  const feeds = new Map<string | null, LiveFeed>();
  const feedOf = (operator: string | null): LiveFeed => {
    let f = feeds.get(operator);
    if (!f) feeds.set(operator, (f = new LiveFeed(db, operator)));
    return f;
  };
  const streams = new Set<() => void>();
  // Open streams are ended before the server closes: it would wait for them (and their timers keep the process up).
  app.addHook('preClose', async () => {
    for (const end of streams) end();
  });
  app.addHook('onClose', async () => {
    for (const f of feeds.values()) f.close();
  });
  const scripts = new Map<string, string>();

  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/dashboard'));
  app.get('/dashboard', { schema: { hide: true } }, async (_req, reply) => reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(DASHBOARD_HTML));
  app.get('/dashboard/style.css', { schema: { hide: true } }, async (_req, reply) => reply.header('content-type', 'text/css; charset=utf-8').send(DASHBOARD_CSS));
  for (const [name, file] of Object.entries(SCRIPTS)) {
    app.get(`/dashboard/${name}.js`, { schema: { hide: true } }, async (_req, reply) => {
      let text = scripts.get(name);
      if (text === undefined) {
        text = readFileSync(file, 'utf8');
        scripts.set(name, text);
      }
      return reply.header('content-type', 'text/javascript; charset=utf-8').send(text);
    });
  }

  // Read once, kept: these are a few hundred KB at most, and they change only with the installed package.
  const vendored = new Map<string, Buffer>();
  app.get<{ Params: { file: string } }>('/dashboard/vendor/:file', { schema: { hide: true } }, async (req, reply) => {
    const name = req.params.file;
    const spec = Object.hasOwn(VENDOR, name) ? VENDOR[name] : undefined;
    if (spec === undefined) throw new HttpError('unknown-file', `no such file: ${JSON.stringify(name.slice(0, 80))}`);
    let body = vendored.get(name);
    if (body === undefined) {
      body = readFileSync(require.resolve(spec));
      vendored.set(name, body);
    }
    const type = VENDOR_TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream';
    return reply.header('content-type', type).header('cache-control', 'public, max-age=3600').send(body);
  });

  app.get<{ Querystring: { last24h: boolean } }>(
    '/fleet/summary',
    {
      preHandler: need('viewer'),
      schema: {
        summary:
          'Fleet totals: machines, online, offline, withErrors (errors in the last telemetry or an open critical alert), currencies (the money the machines sell in, each once), sales and revenue since midnight UTC (and today.revenueByCurrency: [{currency, decimals, revenue}], each machine in its own currency) and over 24 hours (last24h; null with last24h=false), open alerts, and restockToday: the machines needing restock today from the forecasts (a slot empty, out of service or predicted to run out before midnight UTC; docs/restocking.md), null while the first look of the gateway is under way',
        tags: ['fleet'],
        querystring: {
          type: 'object',
          properties: { last24h: { type: 'boolean', default: true, description: 'false: leave the last 24 hours out (null), a read of up to 12 hours of raw sales' } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const operator = scope(req);
      // Side by side: the totals' reads and the forecasts' look (null until the gateway's first look at them is
      // done: seconds after it starts, on a big store).
      const [summary, today] = await Promise.all([fleetSummary(reads, 'rollup', operator, undefined, { last24h: req.query.last24h }), restockTodayOf(reads).ifReady(operator)]);
      return { ...summary, restockToday: today?.machines.size ?? null };
    },
  );

  app.get<{ Querystring: { machine?: string; bucket: Bucket; from?: string; to?: string } }>(
    '/sales/series',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'Sales and revenue per minute, hour or day (UTC buckets, received time), for one machine or the fleet; empty buckets included',
        tags: ['fleet'],
        querystring: {
          type: 'object',
          properties: { machine: MACHINE_ID, bucket: { type: 'string', enum: ['minute', 'hour', 'day'], default: 'hour' }, from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const { bucket, machine } = req.query;
      const step = BUCKET_MS[bucket];
      const to = req.query.to !== undefined ? dateTime(req.query.to, 'to') : new Date();
      const from = req.query.from !== undefined ? dateTime(req.query.from, 'from') : new Date(to.getTime() - 24 * step);
      if (from >= to) throw new HttpError('bad-request', '"from" must be before "to"');
      if ((to.getTime() - from.getTime()) / step > 2000) throw new HttpError('bad-request', `more than 2000 ${bucket}s asked for: use a bigger bucket`);
      if (machine !== undefined) await ctx.readMachineState(req, machine);
      const points = await salesSeries(reads, bucket, from, to, machine, 'rollup', scope(req));
      return { bucket, machine: machine ?? null, from: from.toISOString(), to: to.toISOString(), points };
    },
  );

  app.get(
    '/stream',
    {
      preHandler: need('viewer'),
      schema: { summary: 'What changed, as server-sent events (text/event-stream): machines, sales, commands, alerts, audits and rollouts to fetch again', tags: ['fleet'] },
    },
    async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(': vendfleet live\n\n');
      const stop = feedOf(scope(req)).subscribe((c) => res.write(`event: change\ndata: ${JSON.stringify(c)}\n\n`));
      const tokenId = req.token!.id;
      // A comment now and then keeps proxies from closing a quiet stream; the token is asked after then too
      // (revoked on the store or through another gateway: the stream ends within a beat).
      const beat = setInterval(() => {
        res.write(': beat\n\n');
        void ctx.tokens.live(tokenId).then(
          (live) => {
            if (!live) revoked();
          },
          () => {},
        );
      }, 15000);
      // Revoked through this API: ended at once, saying why.
      const revoked = (): void => {
        if (!res.writableEnded) res.write('event: revoked\ndata: {"error":"unauthorized","message":"the token was revoked"}\n\n');
        end();
      };
      const unwatch = ctx.tokens.watch(tokenId, revoked);
      const end = (): void => {
        clearInterval(beat);
        unwatch();
        stop();
        streams.delete(end);
        if (!res.writableEnded) res.end();
      };
      streams.add(end);
      // Either side going away ends it.
      req.raw.on('close', end);
      res.on('close', end);
    },
  );
}
