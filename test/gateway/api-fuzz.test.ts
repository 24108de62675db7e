/**
 * Fuzzing the operator API, every route it registers (told by the API as
 * each is added, so a new route is fuzzed without a word here): hostile
 * values in each path parameter, query parameter, header and body field its
 * schema names (NUL, lone surrogates, huge text, years 0 and 99999, numbers
 * out of range, wrong JSON types, arrays for scalars, deep nesting,
 * __proto__ and constructor keys), whole bodies that are not what the route
 * takes, and unknown parameters on every route. The API must never answer
 * 500, every refusal must be JSON with an error and a message, a refused
 * request must send nothing to a machine, and what does reach one must be a
 * valid command. Seeded (FUZZ_SEED=n replays a run).
 */
import { strict as assert } from 'node:assert';
import type { Readable } from 'node:stream';
import type { FastifyInstance, HTTPMethods, RouteOptions } from 'fastify';
import { MAX_COMMAND_BYTES } from '../../firmware/command/command.js';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { verifyCommand } from '../../gateway/commands/envelope.js';
import { COMMAND_TYPES, CommandService } from '../../gateway/commands/service.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { prng } from '../lib/assert.js';
import { espImage, keysFile, signed, testKey } from './firmware-fixtures.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 424242);

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
}

interface RouteSchema {
  params?: Schema;
  querystring?: Schema;
  headers?: Schema;
  body?: Schema;
}

interface Route {
  method: string;
  url: string;
  schema: RouteSchema;
}

interface Probe {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
  /** What was made hostile, for the failure message. */
  what: string;
}

/**
 * Hostile JSON values by kind, as raw text (some, 1e400 or 3000 levels of
 * nesting, JSON.stringify cannot write). Each body field gets one of each kind.
 */
const HOSTILE_JSON: readonly (readonly string[])[] = [
  // text PostgreSQL cannot keep, and too much of it
  ['"\\u0000"', '"a\\u0000b"', '"\\ud800"', '"x\\udfffy"', '"\\udc00\\ud800"', JSON.stringify('x'.repeat(5000)), JSON.stringify('y'.repeat(70000))],
  // dates no store holds
  ['"0000-01-01T00:00:00Z"', '"99999-01-01T00:00:00Z"', '"9999-99-99"', '"2026-01-01T23:59:60Z"', '"-000001-01-01T00:00:00Z"'],
  // numbers out of range
  ['1e308', '-1e308', '1e400', '-1', '0', '-0', '1.5', '9007199254740993'],
  // the wrong JSON type, an array for a scalar
  ['true', 'false', 'null', '[]', '{}', '[1]', '["A1"]', '{"a":1}', '"1"', '"true"', '"A1\' OR \'1\'=\'1"'],
  // nesting without end, prototype keys
  [`${'['.repeat(3000)}${']'.repeat(3000)}`, `${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}`, '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}'],
];

/** Hostile query and path values by kind, as they go on the URL (already encoded). Each parameter gets one of each kind. */
const HOSTILE_TEXT: readonly (readonly string[])[] = [
  ['%00', 'a%00b', '%ED%A0%80', '%F0%9F', '%uD800', '%ZZ', 'x'.repeat(20000)],
  ['0000-01-01T00:00:00Z', '99999-01-01T00:00:00Z', '9999-99-99', '2026-01-01T23%3A59%3A60Z', '%2B275760-09-13T00:00:00Z'],
  ['NaN', 'Infinity', '-Infinity', '1e308', '1e400', '-1', '0', '0x10', '%201', '1.5', '9007199254740993'],
  ['true', '', '%5B%5D', '%7B%7D', "A1'%20OR%20'1'%3D'1"],
  ['__proto__', '..', '%2e%2e%2f%2e%2e%2fpackage.json', 'constructor'],
];

const BODIES: readonly string[] = ['{', '{"a":', 'null', '[]', '"str"', '0', '\u0000', '{"__proto__":{"polluted":1}}', `${'['.repeat(5000)}${']'.repeat(5000)}`, `{"pad":"${'x'.repeat(70000)}"}`];

const EXTRA_QUERY: readonly string[] = ['__proto__=1', '__proto__%5Bpolluted%5D=1', 'constructor%5Bprototype%5D%5Bpolluted%5D=1', 'zz=%00', 'zz=%ED%A0%80', `zz=${'z'.repeat(20000)}`];

const PLACEHOLDER = '@@HOSTILE@@';

/** A firmware image the store has (offered to vm-1, so that deleting it is refused and it stays for the routes after). */
const IMAGE = espImage(5000, 1);

/** Strings tried against a pattern, the machine, slot and firmware image the store has first. */
const EXAMPLES = ['vm-1', 'A1', '1', 'x', sha256Hex(IMAGE)];

/** A value the schema takes (enum, default, bounds, format, a pattern's example, the first of `examples` that fits); objects with their required fields, or `all`. */
function sample(s: Schema | undefined, examples: readonly string[] = EXAMPLES, all = false): unknown {
  if (!s) return 'x';
  if (s.enum) return s.enum[0];
  if (s.default !== undefined) return s.default;
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'integer':
    case 'number':
      return Math.min(Math.max(s.minimum ?? 1, 1), s.maximum ?? 1);
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object':
      return Object.fromEntries((all ? Object.keys(s.properties ?? {}) : (s.required ?? [])).map((k) => [k, sample(s.properties?.[k], examples, all)]));
    default:
      if (s.format === 'date-time') return '2026-01-01T00:00:00Z';
      if (s.format === 'uuid') return '00000000-0000-0000-0000-000000000000';
      if (s.pattern) {
        const re = new RegExp(s.pattern, 'u');
        return examples.find((c) => re.test(c)) ?? 'x';
      }
      // The category the machine's slot has.
      return 'Snacks';
  }
}

/** Every field of an object schema, nested objects' fields included, as paths. */
function fieldPaths(s: Schema | undefined, prefix: string[] = []): string[][] {
  if (!s?.properties || prefix.length >= 2) return [];
  return Object.entries(s.properties).flatMap(([k, sub]) => [[...prefix, k], ...fieldPaths(sub, [...prefix, k])]);
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let o = target;
  for (const k of path.slice(0, -1)) {
    const next = o[k];
    o[k] = typeof next === 'object' && next !== null && !Array.isArray(next) ? next : {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]!] = value;
}

/** The published bytes a machine got, or why they are not a valid command for it. */
function commandProblem(topic: string, payload: Buffer, keys: Map<number, Buffer>): string | undefined {
  const machine = /^fleet\/([^/]+)\/commands$/.exec(topic)?.[1];
  if (!machine) return `published on ${topic}`;
  if (payload.length > MAX_COMMAND_BYTES) return `${payload.length} bytes`;
  const kid = Number(/^VF1 (\d+) /.exec(payload.subarray(0, 80).toString('latin1'))?.[1]);
  const key = keys.get(kid);
  if (!key) return `signed with unknown key ${kid}`;
  const body = verifyCommand(payload, key);
  if (!body) return 'bad signature';
  const text = payload.toString('utf8');
  if (/\\u0000|\\ud[89a-f][0-9a-f]{2}/i.test(text) || !text.isWellFormed()) return 'NUL or a lone surrogate in the command';
  if (body.machine !== machine) return `for ${body.machine} on ${machine}'s topic`;
  if (!(COMMAND_TYPES as readonly string[]).includes(body.type)) return `type ${body.type}`;
  if (!(body.expires > body.issued)) return 'expired when issued';
  if (typeof body.args !== 'object' || body.args === null || Array.isArray(body.args)) return 'args not an object';
  if (body.type === 'vend') {
    const { slot, quantity } = body.args as { slot?: unknown; quantity?: unknown };
    if (typeof slot !== 'string' || !/^[A-Z0-9]{1,4}$/.test(slot)) return `vend slot ${JSON.stringify(slot)}`;
    if (!Number.isInteger(quantity) || (quantity as number) < 1 || (quantity as number) > 9) return `vend quantity ${JSON.stringify(quantity)}`;
  }
  if (body.type === 'update') {
    // Only an image the registry holds, with its facts as the registry has them.
    const { sha256, size, version, source } = body.args as Record<string, unknown>;
    if (sha256 !== sha256Hex(IMAGE) || size !== IMAGE.length || version !== '1.0.0' || source !== 'mqtt') return `update args ${JSON.stringify(body.args).slice(0, 200)}`;
  }
  return undefined;
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}

describe('operator API fuzzing: every route', function () {
  this.timeout(120000);
  let db: Db;
  let api: FastifyInstance;
  let commands: CommandService;
  let token: string;
  const routes: Route[] = [];
  const published: { topic: string; payload: Buffer }[] = [];

  before(async () => {
    db = await openDb();
    await migrate(db);
    commands = new CommandService(db, (topic, payload) => published.push({ topic, payload }));
    await commands.provision('vm-1');
    // Online: a command accepted goes out at once, so what reaches the machine is seen here.
    await db.query(
      `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ('vm-1', true, now(), $1::jsonb, now())`,
      [JSON.stringify({ slots: [{ code: 'A1', product: 'Chips', category: 'Snacks', qty: 3, capacity: 10, price: 125 }], tubes: [{ value: 25, count: 10 }] })],
    );
    const seen = (r: RouteOptions): void => {
      for (const method of [r.method].flat()) routes.push({ method, url: r.url, schema: (r.schema ?? {}) as RouteSchema });
    };
    const key = testKey();
    const firmware = new FirmwareRegistry(db, { keyFiles: [{ path: keysFile(key), optional: false }] });
    await firmware.upload(signed(IMAGE, '1.0.0', key));
    await firmware.offer('vm-1', sha256Hex(IMAGE));
    api = await buildApi({ db, commands, purchaseWaitMs: 20, onRoute: seen, firmware });
    await api.ready();
    token = (await createToken(db, 'fuzz', 'admin')).token;
  });
  after(async () => {
    await api?.close();
    commands?.close();
    await db?.close();
  });

  /** Hostile variants of one route's request, each from a valid one with one part made hostile. */
  function probes(route: Route, rnd: () => number, n: number): Probe[] {
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
    const { schema } = route;
    const paramNames = [...route.url.matchAll(/:(\w+)|\*/g)].map((m) => m[1] ?? '*');
    const queryProps = Object.keys(schema.querystring?.properties ?? {});
    const headerProps = Object.keys(schema.headers?.properties ?? {});
    const bodyType = schema.body?.type;
    const takesBody = route.method === 'POST' || route.method === 'PUT' || route.method === 'PATCH';
    const out: Probe[] = [];
    let serial = n;

    const make = (what: string, over: { params?: Record<string, string>; query?: string[]; headers?: Record<string, string>; payload?: string | null; contentType?: string }): Probe => {
      let url = route.url;
      for (const p of paramNames) {
        const v = over.params?.[p] ?? encodeURIComponent(String(p === '*' ? 'index.html' : sample(schema.params?.properties?.[p])));
        url = p === '*' ? url.replace('*', v) : url.replace(`:${p}`, v);
      }
      const query = over.query ?? queryProps.filter((k) => schema.querystring?.required?.includes(k) || rnd() < 0.5).map((k) => `${k}=${encodeURIComponent(String(sample(schema.querystring!.properties![k])))}`);
      if (query.length > 0) url += `?${query.join('&')}`;
      const headers: Record<string, string> = {};
      // A key of its own for each probe (Idempotency-Key): a reused one would only ever be refused.
      for (const h of headerProps) headers[h] = String(sample(schema.headers!.properties![h], [`k${serial++}`, ...EXAMPLES]));
      Object.assign(headers, over.headers);
      // Mostly as an admin, so that refusals come from the checks and not from the token.
      const t = rnd();
      if (t < 0.9) headers['authorization'] = `Bearer ${token}`;
      else if (t < 0.95) headers['authorization'] = `bearer ${pick(['vf_x', token.toUpperCase(), ''])}`;
      let payload: string | undefined;
      if (over.payload !== null && takesBody) {
        payload = over.payload ?? (bodyType === 'string' ? 'DXS*XYZ*VA*V0/6*1\r\nDXE*1*1\r\n' : JSON.stringify(sample(schema.body) ?? {}));
        headers['content-type'] = over.contentType ?? (bodyType === 'string' ? 'text/plain' : 'application/json');
      }
      return { method: route.method, url, headers, ...(payload !== undefined ? { payload } : {}), what };
    };

    out.push(make('as valid as the schema says', {}));
    if (takesBody && bodyType === 'object') out.push(make('valid, every field', { payload: JSON.stringify(sample(schema.body, EXAMPLES, true)) }));
    for (const p of paramNames) for (const kind of HOSTILE_TEXT) {
      const v = pick(kind);
      out.push(make(`param ${p}=${v.slice(0, 40)}`, { params: { [p]: v } }));
    }
    for (const q of queryProps) {
      for (const kind of HOSTILE_TEXT) {
        const v = pick(kind);
        out.push(make(`query ${q}=${v.slice(0, 40)}`, { query: [`${q}=${v}`] }));
      }
      out.push(make(`query ${q} twice`, { query: [`${q}=${encodeURIComponent(String(sample(schema.querystring!.properties![q])))}`, `${q}=1`] }));
    }
    out.push(make('unknown query parameters', { query: [pick(EXTRA_QUERY), pick(EXTRA_QUERY)] }));
    for (const h of headerProps) out.push(make(`header ${h}`, { headers: { [h]: pick(['', ' ', 'x'.repeat(300), 'ü', 'a b', '0']) } }));
    if (takesBody && bodyType === 'object') {
      // Every kind in each top-level field; two kinds in each nested one (the same checks, many fields).
      for (const path of fieldPaths(schema.body)) for (const kind of path.length === 1 ? HOSTILE_JSON : [pick(HOSTILE_JSON), pick(HOSTILE_JSON)]) {
        const base = (sample(schema.body) ?? {}) as Record<string, unknown>;
        setPath(base, path, PLACEHOLDER);
        const raw = pick(kind);
        out.push(make(`body ${path.join('.')}=${raw.slice(0, 40)}`, { payload: JSON.stringify(base).replace(`"${PLACEHOLDER}"`, raw) }));
      }
      const raw = pick(pick(HOSTILE_JSON));
      out.push(make(`body unknown field=${raw.slice(0, 40)}`, { payload: JSON.stringify({ ...(sample(schema.body) as object), zz: PLACEHOLDER }).replace(`"${PLACEHOLDER}"`, raw) }));
    }
    if (takesBody) {
      for (let k = 0; k < 2; k++) {
        const b = pick(BODIES);
        out.push(make(`body ${JSON.stringify(b.slice(0, 30))}`, { payload: b, contentType: pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded']) }));
      }
      out.push(make('no body', { payload: null }));
      if (bodyType === 'string') out.push(make('text body with NUL and bytes above 127', { payload: `DXS*A\u0000*VA*V0/6*1\r\nST*001*0001\r\nID1*\u00ff\ud800\r\n` }));
    }
    // HEAD runs its GET's code: a few of its probes are enough.
    if (route.method === 'HEAD') return [out[0]!, ...out.slice(1).filter(() => rnd() < 0.2)];
    return out;
  }

  it('never fails inside, refuses with a clear JSON error, and sends machines only valid commands', async () => {
    const rnd = prng(SEED);
    const replay = `(FUZZ_SEED=${SEED} replays this run)`;
    const methods = new Set(routes.map((r) => r.method));
    assert.ok(routes.length > 40 && methods.has('POST') && methods.has('PUT') && methods.has('HEAD'), `the API told of its routes: ${routes.map((r) => `${r.method} ${r.url}`).join(', ')}`);
    const tried = new Map<string, number>();
    let served = 0;
    let n = 0;
    for (const route of routes) {
      for (const probe of probes(route, rnd, n)) {
        n++;
        const before = published.length;
        const where = `${probe.method} ${probe.url.slice(0, 160)} [${probe.what}] ${replay}`;
        // Each answer within a bound: a route that hangs fails here, not at mocha's timeout.
        let timer: NodeJS.Timeout | undefined;
        const r = await Promise.race([
          api.inject({ method: probe.method as HTTPMethods, url: probe.url, headers: probe.headers, payloadAsStream: true, ...(probe.payload !== undefined ? { payload: probe.payload } : {}) }),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within 10 s: ${where}`)), 10000))),
        ]).finally(() => clearTimeout(timer));
        // A stream of events never ends: its head is the answer.
        const streaming = String(r.headers['content-type'] ?? '').startsWith('text/event-stream');
        if (streaming) r.raw.res.destroy();
        const body = streaming ? '' : await readAll(r.stream());
        tried.set(`${route.method} ${route.url}`, (tried.get(`${route.method} ${route.url}`) ?? 0) + 1);
        assert.ok(r.statusCode < 500, `${where} -> ${r.statusCode} ${body.slice(0, 300)}`);
        if (r.statusCode >= 400) {
          assert.equal(published.length, before, `refused, yet something went to a machine: ${where}`);
          if (probe.method !== 'HEAD') {
            let e: { error?: unknown; message?: unknown } = {};
            assert.doesNotThrow(() => (e = JSON.parse(body) as typeof e), `not JSON: ${where} -> ${r.statusCode} ${body.slice(0, 200)}`);
            assert.equal(typeof e.error, 'string', `${where} -> ${r.statusCode} ${body.slice(0, 200)}`);
            assert.equal(typeof e.message, 'string', `${where} -> ${r.statusCode} ${body.slice(0, 200)}`);
          }
        } else {
          served++;
        }
      }
    }
    for (const route of routes) assert.ok(tried.get(`${route.method} ${route.url}`), `${route.method} ${route.url} fuzzed`);
    assert.ok(served > routes.length / 2, `${served} requests served of ${n}`);
    // What reached a machine: signed with its key, for it, a known type, sane arguments, within its size limit.
    const keys = new Map((await db.query<{ kid: number; key: Buffer }>("SELECT kid, key FROM machine_keys WHERE machine_id = 'vm-1'")).rows.map((k) => [Number(k.kid), Buffer.from(k.key)]));
    for (const p of published) {
      const problem = commandProblem(p.topic, p.payload, keys);
      assert.equal(problem, undefined, `${problem}: ${p.payload.toString('utf8').slice(0, 300)} ${replay}`);
    }
    assert.ok(published.length > 0, 'valid commands got through');
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype untouched');
    assert.ok(Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM machines WHERE id = 'vm-1'")).rows[0]!.n) === 1, 'tables intact');
    process.stdout.write(`      ${n} requests over ${routes.length} routes, ${served} served, ${published.length} commands sent ${replay}\n`);
  });
});
