/**
 * Operators apart (docs/tenants.md): every route the API registers, tried
 * with operator A's tokens on operator B's machines, commands, audits,
 * rollouts and rules, answers 404 (never 403: nothing says they exist) and
 * changes nothing of B's; the fleet-wide lists, totals and the live stream
 * show A only A's, a platform admin everyone's. The routes come from the
 * server itself (its onRoute hook): a route added without a line in the
 * table below fails the test, so none is left out unnoticed.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { VENDOR } from '../../gateway/api/dashboard-routes.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { rebuildRollup } from '../../gateway/store/rollup.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, eventually, type Backend } from './backends.js';
import { png } from './catalog-fixtures.js';
import { espImage, keysFile, signed, testKey } from './firmware-fixtures.js';

const DEX = (serial: string): string => `DXS*VFL0000000*VA*V0/6*1\r\nST*001*0001\r\nID1*${serial}*MODEL*0001\r\nVA1*300*3*0*0\r\nSE*4*0001\r\nDXE*1*1\r\n`;
const IMAGE = espImage(4000, 7);
const SHA = sha256Hex(IMAGE);

interface Req {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  url: string;
  body?: unknown;
  text?: string;
  /** A byte body (a product image), sent as its content-type header says. */
  bytes?: Buffer;
  headers?: Record<string, string>;
}

/**
 * What a route is to a token of another operator:
 * - foreign: requests at B's things, each answered 404 to A's tokens (and not 404 to B's: they exist);
 * - list: a fleet-wide answer, checked to hold A's things and none of B's (and a platform admin's, both);
 * - platform: only platform admins may (A's admin gets 403 whatever the target: it says nothing of B);
 * - shared: the same for every operator (firmware images: the platform's releases);
 * - public: no token at all (health, docs, the dashboard's page and scripts);
 * - stream: the live stream, tried on its own below;
 * - link: a driver link's routes (the link's secret is the bearer): no API token opens them, whatever its operator
 *   or role (what a link reaches: driver-links.test.ts).
 */
type Case =
  | { kind: 'foreign'; probes: Req[]; list?: Req }
  | { kind: 'list'; req: Req; foreign?: Req[] }
  | { kind: 'platform'; req: Req }
  | { kind: 'shared'; req: Req }
  | { kind: 'public' }
  | { kind: 'stream' }
  | { kind: 'link'; req: Req };

for (const backend of BACKENDS) {
  describe(`operators apart: ${backend.name}`, function () {
    this.timeout(120000);
    let b: Backend;
    let db: Db;
    let commands: CommandService;
    let api: FastifyInstance;
    const routes: string[] = [];
    const t = { platform: '', aAdmin: '', aOperator: '', aViewer: '', bAdmin: '' };
    /** B's things by id, and A's. */
    const bs = { command: '', audit: 0, looseAudit: 0, rollout: '', token: '', driverLink: '' };
    const as = { command: '', audit: 0, looseAudit: 0, rollout: '' };

    const call = (token: string | undefined, r: Req) =>
      api.inject({
        method: r.method,
        url: r.url,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(r.body !== undefined ? { 'content-type': 'application/json' } : r.text !== undefined ? { 'content-type': 'text/plain' } : {}),
          ...r.headers,
        },
        ...(r.body !== undefined ? { payload: JSON.stringify(r.body) } : r.text !== undefined ? { payload: r.text } : r.bytes !== undefined ? { payload: r.bytes } : {}),
      });
    const ok = async (token: string, r: Req, status = 200): Promise<Record<string, unknown>> => {
      const res = await call(token, r);
      assert.equal(res.statusCode, status, `${r.method} ${r.url}: ${res.body}`);
      return res.json() as Record<string, unknown>;
    };

    before(async () => {
      b = await backend.open();
      db = b.db;
      await migrate(db);
      commands = new CommandService(db, () => {});
      const key = testKey();
      const firmware = new FirmwareRegistry(db, { keyFiles: [{ path: keysFile(key), optional: false }] });
      api = await buildApi({
        db,
        commands,
        firmware,
        purchaseWaitMs: 20,
        onRoute: (r: RouteOptions) => {
          for (const m of [r.method].flat()) routes.push(`${m} ${r.url}`);
        },
      });
      await api.ready();
      // Made as before operators: an admin token without an operator is a platform admin's.
      t.platform = (await createToken(db, 'platform', 'admin')).token;
      await ok(t.platform, { method: 'POST', url: '/operators', body: { id: 'op-a', name: 'Operator A' } }, 201);
      await ok(t.platform, { method: 'POST', url: '/operators', body: { id: 'op-b', name: 'Operator B' } }, 201);
      t.aAdmin = (await createToken(db, 'a admin', 'admin', 'op-a')).token;
      t.aOperator = (await createToken(db, 'a operator', 'operator', 'op-a')).token;
      t.aViewer = (await createToken(db, 'a viewer', 'viewer', 'op-a')).token;
      t.bAdmin = (await createToken(db, 'b admin', 'admin', 'op-b')).token;
      // B's token that A tries to revoke (and B's own admin then does: the probe must hit something real).
      bs.token = (await createToken(db, 'b spare', 'viewer', 'op-b')).info.id;
      // Each operator provisions its machine: the API assigns the token's operator.
      assert.equal((await ok(t.aAdmin, { method: 'POST', url: '/machines', body: { id: 'ta-1' } }, 201))['operator'], 'op-a');
      assert.equal((await ok(t.bAdmin, { method: 'POST', url: '/machines', body: { id: 'tb-1' } }, 201))['operator'], 'op-b');
      // Both report an empty slot (so both need a visit) and sell: A twice at 100, B three times at 1000.
      const telemetry = JSON.stringify({ slots: [{ code: 'A1', product: 'Chips', category: 'Snacks', qty: 0, capacity: 10, price: 125 }, { code: 'B2', product: 'Soda', category: 'Drinks', qty: 4, capacity: 8, price: 150 }], tubes: [{ value: 25, count: 9 }] });
      for (const id of ['ta-1', 'tb-1']) {
        // B's reports an error too (a machine "with errors" on the dashboard: in B's counts and the platform's, never A's).
        const t = id === 'tb-1' ? JSON.stringify({ ...(JSON.parse(telemetry) as object), errors: ['coin-jam'] }) : telemetry;
        await db.query('INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ($1, false, now(), $2::jsonb, now())', [id, t]);
      }
      for (const [id, n, price] of [['ta-1', 2, 100], ['tb-1', 3, 1000]] as const) {
        for (let seq = 1; seq <= n; seq++) await db.query("INSERT INTO events (machine_id, seq, type, machine_time, body) VALUES ($1, $2, 'vend-ok', $2, $3::jsonb)", [id, seq, JSON.stringify({ slot: 'B2', price })]);
        await db.query("INSERT INTO alerts (machine_id, kind, subject, severity, message) VALUES ($1, 'slot-empty', 'A1', 'warning', 'A1 is empty')", [id]);
      }
      // Stored around ingest, so the daily rollup the totals read is made from them (as after a bulk load).
      const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
      await db.transaction((tx) => rebuildRollup(tx, day(Date.now() - 86_400_000), day(Date.now() + 2 * 86_400_000)));
      await firmware.upload(signed(IMAGE, '1.2.0', key));
      // B's fleet rules first: each machine's rules change below waits for every evaluation under way, this one's too.
      await ok(t.bAdmin, { method: 'PUT', url: '/alert-rules', body: { lowStock: { percent: 45 } } });
      // B's own alert webhook (no gateway here sends to it): A's probes must neither read, change nor remove it.
      await ok(t.bAdmin, { method: 'PUT', url: '/alert-webhook', body: { url: 'https://b.invalid/hook/b-path-token', secret: 'b-secret-0123456789' } });
      for (const [token, id, mine] of [[t.aAdmin, 'ta-1', as], [t.bAdmin, 'tb-1', bs]] as const) {
        mine.command = (await ok(token, { method: 'POST', url: `/machines/${id}/commands`, body: { type: 'audit' } }, 202))['id'] as string;
        mine.audit = (await ok(token, { method: 'POST', url: `/audits?machine=${id}&read=1`, text: DEX(`S-${id}`) }, 201))['id'] as number;
        mine.looseAudit = (await ok(token, { method: 'POST', url: '/audits', text: DEX(`L-${id}`) }, 201))['id'] as number;
        await ok(token, { method: 'PUT', url: `/machines/${id}/tags`, body: { tags: ['lobby'] } });
        await ok(token, { method: 'PUT', url: `/machines/${id}/location`, body: { lat: 41.88, lon: -87.63, address: `${id} street` } });
        await ok(token, { method: 'PUT', url: `/machines/${id}/alert-rules`, body: { lowStock: { percent: 30 } } });
        // Every machine of the operator: its own only.
        const r = await ok(token, { method: 'POST', url: '/rollouts', body: { sha256: SHA, target: { all: true }, waves: [100] } }, 201);
        mine.rollout = r['id'] as string;
        assert.equal(r['total'], 1, `${id}'s operator's rollout of all its machines has one`);
      }
      bs.driverLink = (await ok(t.bAdmin, { method: 'POST', url: '/driver-links', body: { machines: ['tb-1'] } }, 201))['id'] as string;
      // Each operator's catalog: a product, B's with an image, in slot B2 of its machine.
      await ok(t.aAdmin, { method: 'POST', url: '/products', body: { sku: 'A-CHIPS', name: 'A chips', category: 'Snacks', price: 120, currency: 'USD' } }, 201);
      await ok(t.bAdmin, { method: 'POST', url: '/products', body: { sku: 'B-SODA', name: 'B soda', category: 'Drinks', price: 180, currency: 'USD' } }, 201);
      await ok(t.bAdmin, { method: 'PUT', url: '/products/B-SODA/image', bytes: png(0, 0, 255), headers: { 'content-type': 'image/png' } });
      await ok(t.bAdmin, { method: 'PUT', url: '/machines/tb-1/planogram', body: { slots: [{ slot: 'B2', sku: 'B-SODA' }], apply: false } });
    });

    after(async () => {
      await api?.close();
      commands?.close();
      await b?.close();
    });

    /** Everything of B's a route might change, to show A's attempts changed none of it. */
    const bState = async (): Promise<string> => {
      const rows = await Promise.all([
        db.query("SELECT id, operator_id, lat, lon, address, next_command, mqtt_secret_hash FROM machines WHERE id = 'tb-1'"),
        db.query("SELECT tag FROM machine_tags WHERE machine_id = 'tb-1' ORDER BY tag"),
        db.query("SELECT rules FROM alert_rules WHERE machine_id = 'tb-1'"),
        db.query("SELECT alert_rules, alert_webhook_url, alert_webhook_secret FROM operators WHERE id = 'op-b'"),
        db.query("SELECT id, revoked_at FROM api_tokens WHERE operator_id = 'op-b' ORDER BY id"),
        db.query("SELECT kid, state, encode(key, 'hex') AS k FROM machine_keys WHERE machine_id = 'tb-1' ORDER BY kid"),
        db.query("SELECT id, status FROM commands WHERE machine_id = 'tb-1' ORDER BY n"),
        db.query("SELECT id FROM audits WHERE operator_id = 'op-b' ORDER BY id"),
        db.query("SELECT id, state FROM rollouts WHERE operator_id = 'op-b' ORDER BY id"),
        db.query("SELECT machine_id, key FROM idempotency WHERE machine_id = 'tb-1'"),
        db.query('SELECT id FROM operators ORDER BY id'),
        db.query("SELECT rollout_id, machine_id FROM rollout_machines WHERE machine_id = 'tb-1' ORDER BY rollout_id"),
        db.query("SELECT id, revoked_at FROM driver_links WHERE operator_id = 'op-b' ORDER BY id"),
        db.query("SELECT sku, name, category, price, currency, image_sha256, image_url, updated_at FROM products WHERE operator_id = 'op-b' ORDER BY sku"),
        db.query("SELECT slot, sku, price, updated_at FROM planogram WHERE machine_id = 'tb-1' ORDER BY slot"),
      ]);
      return JSON.stringify(rows.map((r) => r.rows));
    };

    /** The tenancy table: every route the API has, what it is to another operator's token. */
    const table = (): Map<string, Case> => {
      const m = (id = 'tb-1'): string => `/machines/${id}`;
      const entries: [string, Case][] = [
        ['GET /health', { kind: 'public' }],
        ['GET /docs', { kind: 'public' }],
        ['GET /docs/static/index.html', { kind: 'public' }],
        ['GET /docs/static/swagger-initializer.js', { kind: 'public' }],
        ['GET /docs/json', { kind: 'public' }],
        ['GET /docs/yaml', { kind: 'public' }],
        ['GET /docs/static/*', { kind: 'public' }],
        ['GET /', { kind: 'public' }],
        ['GET /dashboard', { kind: 'public' }],
        ['GET /dashboard/style.css', { kind: 'public' }],
        ['GET /dashboard/app.js', { kind: 'public' }],
        ['GET /dashboard/rollouts.js', { kind: 'public' }],
        ['GET /dashboard/route-panel.js', { kind: 'public' }],
        ['GET /dashboard/map.js', { kind: 'public' }],
        ['GET /dashboard/heatmap.js', { kind: 'public' }],
        ['GET /dashboard/grid-clusters.js', { kind: 'public' }],
        ['GET /dashboard/charts.js', { kind: 'public' }],
        ['GET /dashboard/catalog.js', { kind: 'public' }],
        ['GET /dashboard/vendor/:file', { kind: 'public' }],
        ['GET /me', { kind: 'list', req: { method: 'GET', url: '/me' } }],
        ['GET /operators', { kind: 'list', req: { method: 'GET', url: '/operators' } }],
        ['POST /operators', { kind: 'platform', req: { method: 'POST', url: '/operators', body: { id: 'op-c', name: 'C' } } }],
        ['POST /tokens', { kind: 'foreign', probes: [{ method: 'POST', url: '/tokens', body: { name: 'mine now', role: 'admin', operator: 'op-b' } }] }],
        ['GET /tokens', { kind: 'foreign', probes: [{ method: 'GET', url: '/tokens?operator=op-b' }] }],
        ['DELETE /tokens/:id', { kind: 'foreign', probes: [{ method: 'DELETE', url: `/tokens/${bs.token}` }] }],
        ['GET /alert-webhook', { kind: 'foreign', probes: [{ method: 'GET', url: '/alert-webhook?operator=op-b' }] }],
        ['PUT /alert-webhook', { kind: 'foreign', probes: [{ method: 'PUT', url: '/alert-webhook?operator=op-b', body: { url: 'https://a.invalid/stolen', secret: 'a-secret-of-a-s-own' } }] }],
        ['DELETE /alert-webhook', { kind: 'foreign', probes: [{ method: 'DELETE', url: '/alert-webhook?operator=op-b' }] }],
        ['GET /machines', { kind: 'list', req: { method: 'GET', url: '/machines' }, foreign: [] }],
        ['GET /machines/:id', { kind: 'foreign', probes: [{ method: 'GET', url: m() }] }],
        ['PUT /machines/:id/tags', { kind: 'foreign', probes: [{ method: 'PUT', url: `${m()}/tags`, body: { tags: ['stolen'] } }] }],
        ['GET /machines/:id/slots', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/slots` }] }],
        ['GET /machines/:id/sales', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/sales` }] }],
        ['GET /machines/:id/telemetry', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/telemetry?bucket=day` }] }],
        [
          'POST /machines',
          {
            kind: 'foreign',
            probes: [
              // Provisioning B's id would hand over its command key: not found, as any of its routes.
              { method: 'POST', url: '/machines', body: { id: 'tb-1' } },
              { method: 'POST', url: '/machines', body: { id: 'ta-new', operator: 'op-b' } },
            ],
          },
        ],
        ['GET /machines/:id/products', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/products` }] }],
        ['GET /products', { kind: 'list', req: { method: 'GET', url: '/products' }, foreign: [{ method: 'GET', url: '/products?operator=op-b' }] }],
        ['POST /products', { kind: 'foreign', probes: [{ method: 'POST', url: '/products?operator=op-b', body: { sku: 'B-STOLEN', name: 'Stolen', price: 1, currency: 'USD' } }] }],
        ['GET /products/:sku', { kind: 'foreign', probes: [{ method: 'GET', url: '/products/B-SODA' }, { method: 'GET', url: '/products/B-SODA?operator=op-b' }] }],
        ['PUT /products/:sku', { kind: 'foreign', probes: [{ method: 'PUT', url: '/products/B-SODA', body: { price: 1, name: 'Stolen' } }] }],
        // B's own delete is refused (409: the product is in tb-1's B2), so B-SODA stays for the probes after it.
        ['DELETE /products/:sku', { kind: 'foreign', probes: [{ method: 'DELETE', url: '/products/B-SODA' }] }],
        ['GET /products/:sku/image', { kind: 'foreign', probes: [{ method: 'GET', url: '/products/B-SODA/image' }, { method: 'GET', url: '/products/B-SODA/image?operator=op-b' }] }],
        ['PUT /products/:sku/image', { kind: 'foreign', probes: [{ method: 'PUT', url: '/products/B-SODA/image', bytes: png(255, 0, 0), headers: { 'content-type': 'image/png' } }] }],
        ['DELETE /products/:sku/image', { kind: 'foreign', probes: [{ method: 'DELETE', url: '/products/B-SODA/image' }] }],
        ['GET /machines/:id/planogram', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/planogram` }] }],
        [
          'PUT /machines/:id/planogram',
          {
            kind: 'foreign',
            probes: [
              { method: 'PUT', url: `${m()}/planogram`, body: { slots: [{ slot: 'B2', sku: 'B-SODA', price: 1 }] } },
              { method: 'PUT', url: `${m()}/planogram`, body: { slots: [] } },
            ],
          },
        ],
        ['GET /machines/:id/status/:slot', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/status/B2` }] }],
        ['GET /machines/:id/denominations', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/denominations` }] }],
        ['POST /machines/:id/purchase', { kind: 'foreign', probes: [{ method: 'POST', url: `${m()}/purchase`, body: { slot: 'B2', quantity: 1 }, headers: { 'idempotency-key': 'steal-1' } }] }],
        [
          'POST /machines/:id/commands',
          {
            kind: 'foreign',
            probes: [
              { method: 'POST', url: `${m()}/commands`, body: { type: 'lock' } },
              { method: 'POST', url: `${m()}/commands`, body: { type: 'rotate-key' } },
              { method: 'POST', url: `${m()}/commands`, body: { type: 'update', args: { version: '1.2.0' } } },
            ],
          },
        ],
        ['GET /machines/:id/commands', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/commands` }] }],
        ['GET /commands/:command', { kind: 'foreign', probes: [{ method: 'GET', url: `/commands/${bs.command}` }] }],
        ['POST /commands/:command/cancel', { kind: 'foreign', probes: [{ method: 'POST', url: `/commands/${bs.command}/cancel` }] }],
        [
          'POST /audits',
          {
            kind: 'foreign',
            probes: [
              { method: 'POST', url: '/audits?machine=tb-1&read=2', text: DEX('X') },
              { method: 'POST', url: '/audits?operator=op-b', text: DEX('Y') },
            ],
          },
        ],
        ['GET /machines/:id/audits', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/audits` }] }],
        ['GET /audits/:id', { kind: 'foreign', probes: [{ method: 'GET', url: `/audits/${bs.audit}` }, { method: 'GET', url: `/audits/${bs.looseAudit}` }] }],
        ['GET /audits/:id/dex', { kind: 'foreign', probes: [{ method: 'GET', url: `/audits/${bs.audit}/dex` }, { method: 'GET', url: `/audits/${bs.looseAudit}/dex` }] }],
        ['GET /fleet/summary', { kind: 'list', req: { method: 'GET', url: '/fleet/summary' } }],
        ['GET /fleet/map', { kind: 'list', req: { method: 'GET', url: '/fleet/map' } }],
        ['GET /sales/series', { kind: 'list', req: { method: 'GET', url: '/sales/series?bucket=day' }, foreign: [{ method: 'GET', url: '/sales/series?bucket=day&machine=tb-1' }] }],
        ['GET /stream', { kind: 'stream' }],
        ['GET /alerts', { kind: 'list', req: { method: 'GET', url: '/alerts?state=all' }, foreign: [{ method: 'GET', url: '/alerts?state=all&machine=tb-1' }] }],
        ['GET /machines/:id/alerts', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/alerts` }] }],
        ['GET /alert-rules', { kind: 'list', req: { method: 'GET', url: '/alert-rules' }, foreign: [{ method: 'GET', url: '/alert-rules?operator=op-b' }] }],
        ['PUT /alert-rules', { kind: 'foreign', probes: [{ method: 'PUT', url: '/alert-rules?operator=op-b', body: { lowStock: { percent: 5 } } }] }],
        ['GET /machines/:id/alert-rules', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/alert-rules` }] }],
        ['PUT /machines/:id/alert-rules', { kind: 'foreign', probes: [{ method: 'PUT', url: `${m()}/alert-rules`, body: { lowStock: { percent: 5 } } }] }],
        ['PUT /machines/:id/location', { kind: 'foreign', probes: [{ method: 'PUT', url: `${m()}/location`, body: { lat: 1, lon: 1 } }] }],
        ['GET /machines/:id/location', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/location` }] }],
        ['GET /locations', { kind: 'list', req: { method: 'GET', url: '/locations' } }],
        ['GET /inventory', { kind: 'list', req: { method: 'GET', url: '/inventory' } }],
        ['GET /machines/:id/picklist', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/picklist` }] }],
        ['GET /machines/:id/forecast', { kind: 'foreign', probes: [{ method: 'GET', url: `${m()}/forecast` }] }],
        ['GET /route', { kind: 'list', req: { method: 'GET', url: '/route?depot=41.8,-87.6' }, foreign: [{ method: 'GET', url: '/route?machines=tb-1' }, { method: 'GET', url: '/route?machines=ta-1,tb-1' }] }],
        ['POST /driver-links', { kind: 'foreign', probes: [{ method: 'POST', url: '/driver-links', body: { machines: ['tb-1'] } }, { method: 'POST', url: '/driver-links?operator=op-b', body: {} }] }],
        ['DELETE /driver-links/:id', { kind: 'foreign', probes: [{ method: 'DELETE', url: `/driver-links/${bs.driverLink}` }] }],
        ['GET /driver', { kind: 'public' }],
        ['GET /driver/style.css', { kind: 'public' }],
        ['GET /driver/driver.js', { kind: 'public' }],
        ['GET /driver/route', { kind: 'link', req: { method: 'GET', url: '/driver/route' } }],
        ['POST /driver/restock', { kind: 'link', req: { method: 'POST', url: '/driver/restock', body: { machine: 'tb-1', slot: 'A1' } } }],
        ['GET /driver/restock/:command', { kind: 'link', req: { method: 'GET', url: `/driver/restock/${bs.command}` } }],
        ['GET /routes', { kind: 'list', req: { method: 'GET', url: '/routes?depot=41.8,-87.6&vans=2&capacity=1000' } }],
        ['POST /firmware', { kind: 'platform', req: { method: 'POST', url: '/firmware?version=9.9.9', headers: { 'content-type': 'application/octet-stream' } } }],
        ['GET /firmware', { kind: 'shared', req: { method: 'GET', url: '/firmware' } }],
        ['GET /firmware/:sha256', { kind: 'shared', req: { method: 'GET', url: `/firmware/${SHA}` } }],
        ['GET /firmware/:sha256/image', { kind: 'shared', req: { method: 'GET', url: `/firmware/${SHA}/image` } }],
        ['DELETE /firmware/:sha256', { kind: 'platform', req: { method: 'DELETE', url: `/firmware/${SHA}` } }],
        [
          'POST /rollouts',
          {
            kind: 'foreign',
            probes: [
              { method: 'POST', url: '/rollouts', body: { sha256: SHA, target: { machines: ['tb-1'] }, waves: [100] } },
              { method: 'POST', url: '/rollouts', body: { sha256: SHA, target: { all: true }, operator: 'op-b' } },
            ],
          },
        ],
        ['GET /rollouts', { kind: 'list', req: { method: 'GET', url: '/rollouts' } }],
        ['GET /rollouts/:rollout', { kind: 'foreign', probes: [{ method: 'GET', url: `/rollouts/${bs.rollout}` }] }],
        ['GET /rollouts/:rollout/machines', { kind: 'foreign', probes: [{ method: 'GET', url: `/rollouts/${bs.rollout}/machines` }] }],
        ['POST /rollouts/:rollout/pause', { kind: 'foreign', probes: [{ method: 'POST', url: `/rollouts/${bs.rollout}/pause` }] }],
        ['POST /rollouts/:rollout/resume', { kind: 'foreign', probes: [{ method: 'POST', url: `/rollouts/${bs.rollout}/resume` }] }],
        ['POST /rollouts/:rollout/cancel', { kind: 'foreign', probes: [{ method: 'POST', url: `/rollouts/${bs.rollout}/cancel` }] }],
      ];
      return new Map(entries);
    };

    it('has a line in the tenancy table for every route the server registers', () => {
      const cases = table();
      const registered = routes.filter((r) => !r.startsWith('HEAD '));
      assert.ok(registered.length > 50, `the server told of its routes: ${registered.join(', ')}`);
      const missing = registered.filter((r) => !cases.has(r));
      assert.deepEqual(missing, [], `routes with no line in the tenancy table (say what each is to another operator's token): ${missing.join(', ')}`);
      const stale = [...cases.keys()].filter((k) => !registered.includes(k));
      assert.deepEqual(stale, [], `lines for routes the server does not have: ${stale.join(', ')}`);
      // HEAD runs its GET's handler: covered by the GET's line (and tried below for B's things).
      // (fastify's swagger UI adds HEAD /docs/ beside GET /docs: the same page.)
      for (const h of routes.filter((r) => r.startsWith('HEAD '))) assert.ok(cases.has(h.replace(/^HEAD /, 'GET ').replace(/([^ ])\/$/, '$1')), `${h} has a GET line`);
    });

    it("lists, totals and plans only the operator's own; a platform admin sees every operator's", async () => {
      const names = (x: unknown, key = 'id'): string[] => (x as Record<string, unknown>[]).map((r) => String(r[key]));
      const seen = async (token: string): Promise<Record<string, Record<string, unknown>>> => {
        const out: Record<string, Record<string, unknown>> = {};
        for (const [route, c] of table()) if (c.kind === 'list') out[route] = await ok(token, c.req);
        return out;
      };
      const a = await seen(t.aViewer);
      const p = await seen(t.platform);
      assert.deepEqual(a['GET /me'], { name: 'a viewer', role: 'viewer', operator: 'op-a' });
      assert.deepEqual(p['GET /me'], { name: 'platform', role: 'admin', operator: null });
      assert.deepEqual(names(a['GET /operators']!['operators']), ['op-a']);
      assert.deepEqual(names(p['GET /operators']!['operators']), ['default', 'op-a', 'op-b']);
      assert.deepEqual(names(a['GET /machines']!['machines']), ['ta-1']);
      assert.deepEqual(names(p['GET /machines']!['machines']), ['ta-1', 'tb-1']);
      const open = async (machines: string[]): Promise<number> => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM alerts WHERE closed_at IS NULL AND machine_id = ANY($1::text[])', [machines])).rows[0]!.n);
      assert.ok((await open(['ta-1'])) >= 1 && (await open(['tb-1'])) >= 1, 'both machines have open alerts');
      // restockToday (from the forecasts; null while the gateway's first look runs): never more than the operator's machines.
      for (const [q, most] of [[a, 1], [p, 2]] as const) {
        const r = q['GET /fleet/summary']!['restockToday'];
        assert.ok(r === null || (typeof r === 'number' && r >= 0 && r <= most), `restockToday ${String(r)}`);
      }
      // The KPI counts (offline, with errors) and the currencies are the operator's machines' as GET /machines marks them.
      type Row = { errors: unknown[]; criticalAlerts: number; money: { currency: string; decimals: number } | null };
      const kpis = (q: Record<string, Record<string, unknown>>): Record<string, unknown> => {
        const rows = q['GET /machines']!['machines'] as Row[];
        const money = new Map(rows.flatMap((m) => (m.money ? [[`${m.money.currency} ${m.money.decimals}`, m.money] as const] : [])));
        return { offline: rows.length, withErrors: rows.filter((m) => m.errors.length > 0 || m.criticalAlerts > 0).length, currencies: [...money.values()] };
      };
      assert.ok((kpis(a)['withErrors'] as number) < (kpis(p)['withErrors'] as number), `B's machine in trouble counted for the platform only: ${JSON.stringify([kpis(a), kpis(p)])}`);
      assert.deepEqual({ ...a['GET /fleet/summary'], today: 0, restockToday: 0 }, { machines: 1, online: 0, today: 0, restockToday: 0, last24h: { sales: 2, revenue: 200 }, openAlerts: await open(['ta-1']), ...kpis(a) });
      assert.deepEqual({ ...p['GET /fleet/summary'], today: 0, restockToday: 0 }, { machines: 2, online: 0, today: 0, restockToday: 0, last24h: { sales: 5, revenue: 3200 }, openAlerts: await open(['ta-1', 'tb-1']), ...kpis(p) });
      // The map's read: A's located machines only, their state as GET /machines marks them (offline, both).
      assert.deepEqual((a['GET /fleet/map']!['machines'] as { id: string[] }).id, ['ta-1']);
      assert.deepEqual((p['GET /fleet/map']!['machines'] as { id: string[] }).id, ['ta-1', 'tb-1']);
      assert.deepEqual((p['GET /fleet/map']!['machines'] as { state: number[] }).state.map((i) => (p['GET /fleet/map']!['states'] as string[])[i]), ['offline', 'offline']);
      const sum = (x: unknown): number => (x as { revenue: number }[]).reduce((s, q) => s + q.revenue, 0);
      assert.equal(sum(a['GET /sales/series']!['points']), 200);
      // Revenue per currency is the operator's own too: it adds up to the operator's total (none of B's in A's).
      for (const [who, q] of [['A', a], ['platform', p]] as const) {
        const today = q['GET /fleet/summary']!['today'] as { revenue: number; revenueByCurrency: { currency: string | null }[] };
        assert.equal(sum(today.revenueByCurrency), today.revenue, `${who}: ${JSON.stringify(today)}`);
      }
      assert.deepEqual(names(a['GET /machines']!['machines'], 'operator'), ['op-a']);
      assert.equal(sum(p['GET /sales/series']!['points']), 3200);
      assert.deepEqual([...new Set(names(a['GET /alerts']!['alerts'], 'machine'))], ['ta-1']);
      assert.deepEqual([...new Set(names(p['GET /alerts']!['alerts'], 'machine'))].sort(), ['ta-1', 'tb-1']);
      // The operator's own fleet rules: B's 45 % is B's.
      assert.deepEqual(a['GET /alert-rules']!['rules'], {});
      assert.deepEqual((await ok(t.bAdmin, { method: 'GET', url: '/alert-rules' }))['rules'], { lowStock: { percent: 45 } });
      assert.deepEqual((await ok(t.platform, { method: 'GET', url: '/alert-rules?operator=op-b' }))['rules'], { lowStock: { percent: 45 } });
      assert.equal(((await ok(t.aViewer, { method: 'GET', url: '/machines/ta-1/alert-rules' }))['effective'] as { lowStock: { percent: number } }).lowStock.percent, 30);
      assert.deepEqual(names(a['GET /locations']!['machines'], 'machine'), ['ta-1']);
      // A catalog is one operator's: a platform admin reads the default operator's unless it names one.
      assert.deepEqual(names(a['GET /products']!['products'], 'sku'), ['A-CHIPS']);
      assert.deepEqual(names(p['GET /products']!['products'], 'sku'), []);
      assert.deepEqual(names((await ok(t.platform, { method: 'GET', url: '/products?operator=op-b' }))['products'], 'sku'), ['B-SODA']);
      assert.deepEqual(names(p['GET /locations']!['machines'], 'machine'), ['ta-1', 'tb-1']);
      assert.deepEqual(names(a['GET /inventory']!['machines']), ['ta-1']);
      assert.deepEqual(names(p['GET /inventory']!['machines']).sort(), ['ta-1', 'tb-1']);
      assert.deepEqual([a['GET /inventory']!['total'], p['GET /inventory']!['total']], [1, 2]);
      assert.deepEqual(names(a['GET /route']!['stops'], 'machine'), ['ta-1']);
      assert.deepEqual(names(p['GET /route']!['stops'], 'machine').sort(), ['ta-1', 'tb-1']);
      const vans = (x: Record<string, unknown> | undefined): string[] => ((x?.['vans'] ?? []) as { stops: { machine: string }[] }[]).flatMap((v) => v.stops.map((s) => s.machine)).sort();
      assert.deepEqual(vans(a['GET /routes']), ['ta-1']);
      assert.deepEqual(vans(p['GET /routes']), ['ta-1', 'tb-1']);
      assert.deepEqual(names(a['GET /rollouts']!['rollouts']), [as.rollout]);
      assert.deepEqual(names(p['GET /rollouts']!['rollouts']).sort(), [as.rollout, bs.rollout].sort());
      assert.deepEqual(names((await ok(t.aViewer, { method: 'GET', url: `/rollouts/${as.rollout}/machines` }))['machines'], 'machine'), ['ta-1']);
      // A's own things answer A.
      assert.equal((await ok(t.aViewer, { method: 'GET', url: `/commands/${as.command}` }))['machine'], 'ta-1');
      assert.equal((await ok(t.aViewer, { method: 'GET', url: `/audits/${as.looseAudit}` }))['machineId'], null);
      assert.deepEqual(names((await ok(t.aViewer, { method: 'GET', url: '/machines/ta-1/audits' }))['audits']), [String(as.audit)]);
      // A loose audit of a platform admin's (no operator named) is the platform's: no operator sees it.
      const own = (await ok(t.platform, { method: 'POST', url: '/audits', text: DEX('P-1') }, 201))['id'] as number;
      assert.equal((await call(t.aAdmin, { method: 'GET', url: `/audits/${own}` })).statusCode, 404);
      assert.equal((await call(t.bAdmin, { method: 'GET', url: `/audits/${own}` })).statusCode, 404);
    });

    it("answers 404 to operator A's tokens on every route at B's things, changes nothing of B's, and not 404 to B", async () => {
      const before = await bState();
      const tried: string[] = [];
      for (const [route, c] of table()) {
        const probes = c.kind === 'foreign' ? c.probes : c.kind === 'list' ? (c.foreign ?? []) : [];
        if (c.kind === 'foreign') assert.ok(probes.length > 0, `${route}: probes`);
        for (const p of probes) {
          // A's admin (every role check passes), and A's viewer: neither may learn B's things exist.
          const tokens = p.method === 'GET' ? [t.aAdmin, t.aOperator, t.aViewer] : [t.aAdmin, t.aOperator];
          for (const token of tokens) {
            const res = await call(token, p);
            if (res.statusCode === 403 && token !== t.aAdmin) continue; // a role A's token lacks: refused before anything is looked up
            assert.equal(res.statusCode, 404, `${route}: ${p.method} ${p.url} with A's token: ${res.statusCode} ${res.body}`);
            assert.ok(!res.body.includes('S-tb-1') && !res.body.includes('tb-1 street') && !res.body.includes('Operator B') && !res.body.includes('b-path-token') && !res.body.includes('b spare') && !res.body.includes('B soda'), `${route}: the answer tells nothing of B's: ${res.body}`);
            if (p.method === 'GET') {
              const head = await call(token, { ...p, method: 'HEAD' });
              assert.equal(head.statusCode, 404, `HEAD ${p.url}`);
            }
          }
          tried.push(route);
        }
      }
      assert.equal(await bState(), before, "B's machines, keys, commands, audits, rules and rollouts are as they were");
      // The probes hit real things: B's own token (or a platform admin's) is not told "not found".
      for (const [route, c] of table()) {
        const probes = c.kind === 'foreign' ? c.probes : c.kind === 'list' ? (c.foreign ?? []) : [];
        for (const p of probes) {
          // ta-new for op-b is B's to make, and ta-1 in a list is A's: the platform admin sees both.
          const res = await call(p.url.includes('ta-1') ? t.platform : t.bAdmin, p);
          assert.notEqual(res.statusCode, 404, `${route}: ${p.method} ${p.url} with B's token: ${res.body}`);
        }
      }
      assert.ok(new Set(tried).size >= 30, `${new Set(tried).size} routes tried`);
    });

    it('keeps platform-only routes to platform admins and shares the firmware images', async () => {
      for (const [route, c] of table()) {
        if (c.kind === 'platform') {
          const res = await call(t.aAdmin, c.req);
          assert.equal(res.statusCode, 403, `${route} with an operator's admin: ${res.body}`);
          assert.equal((res.json() as { error: string }).error, 'forbidden');
        }
        if (c.kind === 'shared') {
          const a = await call(t.aOperator, c.req);
          const bb = await call(t.bAdmin, c.req);
          assert.equal(a.statusCode, 200, `${route}: ${a.body}`);
          assert.equal(a.body, bb.body, `${route}: the same for every operator`);
        }
        if (c.kind === 'link') {
          for (const token of [t.platform, t.aAdmin, t.bAdmin]) {
            const res = await call(token, c.req);
            assert.equal(res.statusCode, 401, `${route} with an API token: ${res.body}`);
          }
        }
        if (c.kind === 'public') {
          // The vendor route is asked for its first listed file (while none is listed, its 404 says so without a token).
          const vendor = Object.keys(VENDOR)[0];
          const url = route.slice(4).replace('*', 'swagger-ui.css').replace(':file', vendor ?? 'none-listed');
          const res = await call(undefined, { method: 'GET', url });
          if (vendor === undefined && route.endsWith(':file')) assert.equal(JSON.parse(res.body).error, 'unknown-file', `${route}: ${res.body}`);
          else assert.ok(res.statusCode < 400, `${route} needs no token: ${res.statusCode}`);
        }
      }
      // A platform admin adds operators; an id taken is said to be taken (operators are the platform's to know).
      await ok(t.platform, { method: 'POST', url: '/operators', body: { id: 'op-c', name: 'Operator C' } }, 201);
      assert.equal((await call(t.platform, { method: 'POST', url: '/operators', body: { id: 'op-c', name: 'again' } })).statusCode, 409);
      // Over the API: an operator's admin makes its own operator's tokens, never a platform admin's; a platform admin makes any.
      const made = await ok(t.aAdmin, { method: 'POST', url: '/tokens', body: { name: 'a new', role: 'viewer' } }, 201);
      assert.equal(made['operator'], 'op-a');
      assert.deepEqual(await ok(made['token'] as string, { method: 'GET', url: '/me' }), { name: 'a new', role: 'viewer', operator: 'op-a' });
      assert.equal((await call(t.aAdmin, { method: 'POST', url: '/tokens', body: { name: 'up', role: 'admin', platform: true } })).statusCode, 403);
      assert.equal((await call(t.aOperator, { method: 'POST', url: '/tokens', body: { name: 'up', role: 'admin' } })).statusCode, 403);
      assert.equal((await ok(t.platform, { method: 'POST', url: '/tokens', body: { name: 'root 2', role: 'admin', platform: true } }, 201))['operator'], null);
      assert.equal((await ok(t.platform, { method: 'POST', url: '/tokens', body: { name: 'b viewer', role: 'viewer', operator: 'op-b' } }, 201))['operator'], 'op-b');
      // Tokens: only an admin token may be a platform admin's, and only of an operator that exists.
      await assert.rejects(createToken(db, 'x', 'viewer', null), /only an admin token/);
      await assert.rejects(createToken(db, 'x', 'viewer', 'op-zz'), /no operator "op-zz"/);
    });

    it("streams only the operator's own changes; a platform admin's stream has everyone's", async () => {
      await api.listen({ host: '127.0.0.1', port: 0 });
      const base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
      const open = async (token: string) => {
        const ac = new AbortController();
        const res = await fetch(`${base}/stream`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
        assert.equal(res.status, 200);
        let text = '';
        const reader = res.body!.getReader();
        const reading = (async () => {
          for (;;) {
            const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
            if (done) return;
            text += Buffer.from(value!).toString('utf8');
          }
        })();
        return { text: () => text, close: async () => (ac.abort(), await reading) };
      };
      const a = await open(t.aViewer);
      const p = await open(t.platform);
      try {
        // Both machines speak in one statement: any look that sees A's sees B's too, unless scoped.
        await db.query("UPDATE machine_state SET last_seen = now() + interval '1 second' WHERE machine_id IN ('ta-1', 'tb-1')");
        await eventually('A sees its machine', async () => (a.text().includes('"ta-1"') ? true : undefined), 20000);
        await eventually('the platform admin sees both', async () => (p.text().includes('"ta-1"') && p.text().includes('"tb-1"') ? true : undefined), 20000);
        assert.ok(!a.text().includes('tb-1'), `A's stream: ${a.text()}`);
      } finally {
        await a.close();
        await p.close();
      }
    });
  });
}

for (const backend of BACKENDS) {
  describe(`operators apart: upgrading a store from before operators (${backend.name})`, function () {
    this.timeout(120000);

    it("puts everything in the default operator; admin tokens become platform admins', the others the default operator's", async () => {
      const b = await backend.open();
      const commands = new CommandService(b.db, () => {});
      let api: FastifyInstance | undefined;
      try {
        const db = b.db;
        await migrate(db, 11);
        const token = (name: string): string => `vf_${createHash('sha256').update(name).digest('base64url')}`;
        const hash = (tk: string): string => createHash('sha256').update(tk).digest('hex');
        await db.query("INSERT INTO machines (id) VALUES ('old-1'), ('old-2')");
        await db.query("INSERT INTO api_tokens (id, name, role, hash) VALUES ('t1', 'old admin', 'admin', $1), ('t2', 'old viewer', 'viewer', $2), ('t3', 'old operator', 'operator', $3)", [
          hash(token('admin')),
          hash(token('viewer')),
          hash(token('operator')),
        ]);
        await db.query(`INSERT INTO alert_rules (machine_id, rules) VALUES ('*', '{"lowStock":{"percent":33}}'), ('old-1', '{"lowStock":{"percent":40}}')`);
        await db.query(`INSERT INTO audits (machine_id, source, crc, summary, raw) VALUES ('old-1', 'machine', 'absent', '{}', 'x'), (NULL, 'upload', 'absent', '{}', 'y')`);
        await db.query(
          `INSERT INTO rollouts (id, sha256, version, target, waves, halt, parallel, timeout_s, state) VALUES ('r000000000001', $1, '1.0.0', '{"kind":"all"}', '[100]', '{"percent":20}', 5, 3600, 'done')`,
          ['0'.repeat(64)],
        );
        assert.equal((await migrate(db))[0], 12, 'the upgrade starts at the operators migration');
        api = await buildApi({ db, commands });
        const get = async (tk: string, url: string): Promise<Record<string, unknown>> => {
          const res = await api!.inject({ method: 'GET', url, headers: { authorization: `Bearer ${tk}` } });
          assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
          return res.json() as Record<string, unknown>;
        };
        assert.equal((await get(token('admin'), '/me'))['operator'], null, 'an admin token is a platform admin');
        assert.equal((await get(token('viewer'), '/me'))['operator'], 'default');
        assert.equal((await get(token('operator'), '/me'))['operator'], 'default');
        // A single-operator fleet works as before: the old viewer sees every machine, its audits, rollouts and rules.
        assert.deepEqual(((await get(token('viewer'), '/machines'))['machines'] as { id: string }[]).map((m) => m.id), ['old-1', 'old-2']);
        assert.deepEqual((await get(token('viewer'), '/alert-rules'))['rules'], { lowStock: { percent: 33 } }, "the fleet's rules are the default operator's");
        assert.equal(((await get(token('viewer'), '/machines/old-1/alert-rules'))['effective'] as { lowStock: { percent: number } }).lowStock.percent, 40);
        const audits = (await db.query<{ id: string }>('SELECT id FROM audits ORDER BY id')).rows.map((r) => Number(r.id));
        for (const id of audits) await get(token('viewer'), `/audits/${id}`);
        assert.deepEqual(((await get(token('viewer'), '/rollouts'))['rollouts'] as { id: string; operator: string }[]).map((r) => [r.id, r.operator]), [['r000000000001', 'default']]);
        // Provisioning as before (no operator named) adds to the default operator.
        const made = await api.inject({ method: 'POST', url: '/machines', headers: { authorization: `Bearer ${token('admin')}` }, payload: { id: 'new-1' } });
        assert.equal(made.statusCode, 201, made.body);
        assert.equal((made.json() as { operator: string }).operator, 'default');
        assert.equal((await db.query<{ n: string }>("SELECT count(*) AS n FROM machines WHERE operator_id = 'default'")).rows[0]!.n.toString(), '3');
      } finally {
        await api?.close();
        commands.close();
        await b.close();
      }
    });
  });
}

describe('operators apart: vendctl', function () {
  this.timeout(180000);
  const vendctl = fileURLToPath(new URL('../../tools/vendctl.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'vf-tenants-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [vendctl, '--json', ...args], { env: { ...process.env, ...env }, timeout: 90000 }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

  it("makes an operator's token on the store, adds an operator and provisions for it over the API", async () => {
    const store = { DATA_DIR: dir };
    // Over the API: an operator added, a machine provisioned for it.
    const serve = async <T>(fn: (url: string, db: Db) => Promise<T>): Promise<T> => {
      const db = await openDb({ dataDir: join(dir, 'pglite') });
      await migrate(db);
      const commands = new CommandService(db, () => {});
      const api = await buildApi({ db, commands });
      try {
        await api.listen({ host: '127.0.0.1', port: 0 });
        return await fn(`http://127.0.0.1:${(api.server.address() as AddressInfo).port}`, db);
      } finally {
        await api.close();
        commands.close();
        await db.close();
      }
    };
    let platform = '';
    await serve(async (url, db) => {
      // Each opening of the store takes seconds: the platform admin's token is made in this process (vendctl's below).
      platform = (await createToken(db, 'root', 'admin', null)).token;
      const added = await run(['--url', url, '--token', platform, 'operator', 'add', 'acme', 'Acme Vending'], {});
      assert.equal(added.code, 0, added.stderr);
      assert.equal((JSON.parse(added.stdout) as { id: string }).id, 'acme');
      const made = await run(['--url', url, '--token', platform, 'provision', 'acme-0001', '--operator', 'acme'], {});
      assert.equal(made.code, 0, made.stderr);
      assert.equal((JSON.parse(made.stdout) as { operator: string }).operator, 'acme');
      assert.equal((await run(['--url', url, '--token', platform, 'provision', 'def-0001'], {})).code, 0);
    });
    const acme = await run(['token', 'create', 'acme viewer', 'viewer', '--operator', 'acme'], store);
    assert.equal(acme.code, 0, acme.stderr);
    assert.match(acme.stderr, /\(viewer, operator acme\)/);
    await serve(async (url) => {
      const token = acme.stdout.trim();
      assert.deepEqual(JSON.parse((await run(['--url', url, '--token', token, 'me'], {})).stdout), { name: 'acme viewer', role: 'viewer', operator: 'acme' });
      assert.deepEqual((JSON.parse((await run(['--url', url, '--token', token, 'machines'], {})).stdout) as { machines: { id: string }[] }).machines.map((m) => m.id), ['acme-0001']);
      const other = await run(['--url', url, '--token', token, 'machine', 'def-0001'], {});
      assert.equal(other.code, 1);
      assert.match(other.stderr, /404 unknown-machine/);
      assert.deepEqual((JSON.parse((await run(['--url', url, '--token', token, 'operators'], {})).stdout) as { operators: { id: string }[] }).operators.map((o) => o.id), ['acme']);
    });
  });
});
