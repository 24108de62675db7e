/**
 * The operator dashboard: the page and its script (no login needed to load
 * them; every figure on it comes from the API with the token the operator
 * types in), and the few routes made for it: fleet totals, sales as a time
 * series, and a stream of what changed (server-sent events).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { DASHBOARD_CSS, DASHBOARD_HTML } from './dashboard-page.js';
import { HttpError, MACHINE_ID, type RouteContext } from './http.js';
import { LiveFeed } from './live.js';
import { dateTime } from './validation.js';

/** The compiled page script (gateway/dashboard/app.ts → dist/gateway/dashboard/app.js). */
const SCRIPT = new URL('../dashboard/app.js', import.meta.url);

export async function registerDashboardRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, need } = ctx;
  const feed = new LiveFeed(db);
  const streams = new Set<() => void>();
  // Open streams are ended before the server closes: it would wait for them (and their timers keep the process up).
  app.addHook('preClose', async () => {
    for (const end of streams) end();
  });
  app.addHook('onClose', async () => feed.close());
  let script: string | undefined;

  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/dashboard'));
  app.get('/dashboard', { schema: { hide: true } }, async (_req, reply) => reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(DASHBOARD_HTML));
  app.get('/dashboard/style.css', { schema: { hide: true } }, async (_req, reply) => reply.header('content-type', 'text/css; charset=utf-8').send(DASHBOARD_CSS));
  app.get('/dashboard/app.js', { schema: { hide: true } }, async (_req, reply) => {
    script ??= readFileSync(SCRIPT, 'utf8');
    return reply.header('content-type', 'text/javascript; charset=utf-8').send(script);
  });

  app.get(
    '/fleet/summary',
    { preHandler: need('viewer'), schema: { summary: 'Fleet totals: machines, online, sales and revenue since midnight UTC and over 24 hours, open alerts', tags: ['fleet'] } },
    async () => {
      const r = await db.query<{ machines: string; online: string; today_n: string; today_rev: string | null; day_n: string; day_rev: string | null }>(
        `SELECT (SELECT count(*) FROM machines) AS machines,
                (SELECT count(*) FROM machine_state WHERE online) AS online,
                count(*) FILTER (WHERE received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today_n,
                sum(price) FILTER (WHERE received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today_rev,
                count(*) AS day_n, sum(price) AS day_rev
         FROM sales WHERE received_at >= now() - interval '24 hours'`,
      );
      const x = r.rows[0]!;
      const alerts = (await db.query<{ t: string | null }>("SELECT to_regclass('alerts')::text AS t")).rows[0]?.t
        ? Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM alerts WHERE closed_at IS NULL')).rows[0]!.n)
        : 0;
      return {
        machines: Number(x.machines),
        online: Number(x.online),
        today: { sales: Number(x.today_n), revenue: Number(x.today_rev ?? 0) },
        last24h: { sales: Number(x.day_n), revenue: Number(x.day_rev ?? 0) },
        openAlerts: alerts,
      };
    },
  );

  app.get<{ Querystring: { machine?: string; bucket: 'minute' | 'hour' | 'day'; from?: string; to?: string } }>(
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
      const step = bucket === 'minute' ? 60_000 : bucket === 'hour' ? 3_600_000 : 86_400_000;
      const to = req.query.to !== undefined ? dateTime(req.query.to, 'to') : new Date();
      const from = req.query.from !== undefined ? dateTime(req.query.from, 'from') : new Date(to.getTime() - 24 * step);
      if (from >= to) throw new HttpError(400, 'bad-request', '"from" must be before "to"');
      if ((to.getTime() - from.getTime()) / step > 2000) throw new HttpError(400, 'bad-request', `more than 2000 ${bucket}s asked for: use a bigger bucket`);
      if (machine !== undefined) await ctx.machineState(machine);
      const r = await db.query<{ b: Date; n: string; revenue: string | null }>(
        `SELECT date_trunc($1, received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b, count(*) AS n, sum(price) AS revenue
         FROM sales WHERE received_at >= $2 AND received_at < $3 AND ($4::text IS NULL OR machine_id = $4) GROUP BY 1`,
        [bucket, from, to, machine ?? null],
      );
      const got = new Map(r.rows.map((x) => [new Date(x.b).getTime(), x]));
      const points: { t: string; sales: number; revenue: number }[] = [];
      // Buckets start on the unit's boundary (UTC), as date_trunc cuts them.
      for (let t = Math.floor(from.getTime() / step) * step; t < to.getTime(); t += step) {
        const x = got.get(t);
        points.push({ t: new Date(t).toISOString(), sales: Number(x?.n ?? 0), revenue: Number(x?.revenue ?? 0) });
      }
      return { bucket, machine: machine ?? null, from: from.toISOString(), to: to.toISOString(), points };
    },
  );

  app.get(
    '/stream',
    {
      preHandler: need('viewer'),
      schema: { summary: 'What changed, as server-sent events (text/event-stream): machines, sales, commands, alerts and audits to fetch again', tags: ['fleet'] },
    },
    async (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(': vendfleet live\n\n');
      const stop = feed.subscribe((c) => res.write(`event: change\ndata: ${JSON.stringify(c)}\n\n`));
      // A comment now and then keeps proxies from closing a quiet stream.
      const beat = setInterval(() => res.write(': beat\n\n'), 15000);
      const end = (): void => {
        clearInterval(beat);
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
