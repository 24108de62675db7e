/**
 * vendctl: the operator's command line, over the gateway's HTTP API.
 *
 *   npm run vendctl -- machines
 *   npm run vendctl -- machine vm-0001
 *   npm run vendctl -- slots vm-0001
 *   npm run vendctl -- products vm-0001 [--category Drinks] [--limit 10]
 *   npm run vendctl -- slot vm-0001 A1
 *   npm run vendctl -- coins vm-0001
 *   npm run vendctl -- sales vm-0001 [--from ISO] [--to ISO]
 *   npm run vendctl -- purchase vm-0001 A1 [quantity] [--key IDEMPOTENCY-KEY]
 *   npm run vendctl -- send vm-0001 set-prices '{"prices":{"A1":135}}' [--ttl SECONDS]
 *   npm run vendctl -- commands vm-0001
 *   npm run vendctl -- command <command id>
 *   npm run vendctl -- provision vm-0042
 *   npm run vendctl -- send vm-0001 audit          (the machine sends an EVA-DTS read)
 *   npm run vendctl -- audits vm-0001 | audit <audit id> | dex <audit id> > file.dex
 *   npm run vendctl -- upload file.dex [--machine vm-0001]
 *   npm run vendctl -- picklist vm-0001            (what to load into each slot)
 *   npm run vendctl -- forecast vm-0001 [--window 28]   (when each slot runs out)
 *   npm run vendctl -- route [--machines vm-0001,vm-0002] [--depot 39.74,-104.99] [--days 7] [--window 28] [--return false]
 *   npm run vendctl -- vans --depot 39.74,-104.99 --vans 3 [--capacity 600] [--hours 8] [--speed 40] [--service 15] [--days 7] [--window 28]
 *   npm run vendctl -- locate vm-0001 39.7392 -104.9903 ['1600 Glenarm Pl']
 *   npm run vendctl -- alerts [vm-0001] [--all] [--kind low-stock]   (open ones; --all: closed too)
 *   npm run vendctl -- alert-rules [vm-0001] ['{"lowStock":{"percent":25}}']   (show, or set: fleet needs admin)
 *   npm run vendctl -- firmware keygen release      (release.pem private, release.pub.pem public)
 *   npm run vendctl -- firmware upload image.bin --version 1.4.0 --key release.pem [--notes TEXT]
 *   npm run vendctl -- firmware list | show SHA256 | download SHA256 > FILE | delete SHA256
 *   npm run vendctl -- send vm-0001 update '{"version":"1.4.0"}'   (admin; '"downgrade":true' for an older one)
 *   npm run vendctl -- tags vm-0001 [lobby,floor-2]   (show or set a machine's tags)
 *   npm run vendctl -- rollout create --version 1.4.0 [--all | --machines a,b | --tag T | --percent P] [--waves 1,10,100] [--halt-at 20%]
 *   npm run vendctl -- rollout list | show ID | machines ID | pause ID | resume ID | cancel ID | watch ID
 *
 *   npm run vendctl -- me | operators | operator add ID 'NAME'   (operators: docs/tenants.md; adding one: platform admins)
 *   npm run vendctl -- provision vm-0042 [--operator OP]   (a platform admin names the operator)
 *   npm run vendctl -- tokens list [--operator OP] [--json] | tokens revoke TOKEN-ID   (admin; over the API)
 *   npm run vendctl -- alert-webhook [set URL [--secret S] | remove] [--operator OP]   (the operator's own; admin)
 *   npm run vendctl -- products list | show SKU | add SKU NAME PRICE CURRENCY [--category C] | set SKU [--price P] ... | image SKU FILE | remove SKU
 *   npm run vendctl -- planogram show vm-0001 | assign vm-0001 A1 CHIPS-01 [--price 150] [--no-apply] | apply vm-0001
 *
 * The gateway's address and an API token come from --url / --token or
 * VENDFLEET_URL (default http://127.0.0.1:8080) / VENDFLEET_TOKEN.
 *
 *   npm run vendctl -- token create <name> <viewer|operator|admin> [--operator ID | --platform]
 *   npm run vendctl -- archive list | check FILE | load FILE | release YYYY-MM
 *
 * work on the store directly (DATABASE_URL, or the embedded store in
 * DATA_DIR, default ./data): `token` to make the first tokens, `archive` for
 * events months in archive files (tools/vendctl-archive.ts). A token is one
 * operator's (--operator); --platform makes a platform admin's (admin role
 * only), which sees every operator. Naming neither: an admin token is a
 * platform admin's, any other the default operator's.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createToken, revokeToken, ROLES, type Role } from '../gateway/api/tokens.js';
import { openDb } from '../gateway/store/db.js';
import { migrate } from '../gateway/store/migrations.js';
import { FIRMWARE_USAGE, firmwareOffline, firmwareRequest } from './vendctl-firmware.js';
import { ARCHIVE_USAGE, archiveCommand } from './vendctl-archive.js';
import { CATALOG_ACTIONS, CATALOG_USAGE, planogramOutcome, planogramRequest, productsRequest } from './vendctl-catalog.js';
import { ROLLOUT_USAGE, rolloutRequest, watchRollout, type WatchedRollout } from './vendctl-rollout.js';
import { LISTINGS, renderListing } from './vendctl-table.js';
import { renderVans } from './vendctl-vans.js';
import { countedBody, followCommand, Progress, type FollowedCommand } from './vendctl-progress.js';

const USAGE = `usage: vendctl [--url URL] [--token TOKEN] [--json] <command> ...
  listings print tables; --json prints the API's answer as it came (for scripts)
  machines | machine ID | slots ID | products ID [--category C] [--limit N] | slot ID SLOT | coins ID
  sales ID [--from ISO] [--to ISO] | purchase ID SLOT [QUANTITY] [--key KEY] [--for S]   (waits up to S s, default 60, for the machine)
  send ID TYPE [JSON-ARGS] [--ttl SECONDS] [--wait [--for S]]   (--wait: until the machine's outcome) | commands ID | command COMMAND-ID | cancel COMMAND-ID (an update) | provision ID [--operator OP]
  audits ID | audit AUDIT-ID | dex AUDIT-ID | upload FILE [--machine ID | --operator OP]
  picklist ID | forecast ID [--window DAYS] | locate ID LAT LON [ADDRESS] | route [--machines ID,ID] [--depot LAT,LON] [--days N] [--window DAYS] [--return false]
  vans --depot LAT,LON --vans K [--capacity N] [--hours H] [--speed KMH] [--service MIN] [--days N] [--window DAYS]   (routes for K vans)
  alerts [ID] [--all] [--kind KIND] [--limit N] | alert-rules [ID] [JSON-RULES] [--operator OP]   (ID '*' or none: the fleet)
  me | operators | operator add ID NAME   (adding an operator: platform admins)
  tokens list [--operator OP] [--json] | tokens revoke TOKEN-ID   (admin: the operator's tokens; a platform admin's, all)
  alert-webhook [set URL [--secret S] | remove] [--operator OP]   (admin; the secret also from VENDFLEET_WEBHOOK_SECRET)
${CATALOG_USAGE}
${FIRMWARE_USAGE}
${ROLLOUT_USAGE}
  token create NAME ROLE [--operator ID | --platform] | token revoke TOKEN-ID   (on the store: DATABASE_URL or DATA_DIR)
${ARCHIVE_USAGE}`;

function fail(message: string, code = 2): never {
  process.stderr.write(`vendctl: ${message}\n`);
  process.exit(code);
}

/** Flags that take no value. */
const SWITCHES = new Set(['all', 'downgrade', 'force', 'unfinished', 'platform', 'json', 'wait', 'no-apply']);

interface Parsed {
  args: string[];
  flags: Map<string, string>;
}

function parse(argv: string[]): Parsed {
  const args: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    if (a.startsWith('--') && SWITCHES.has(a.slice(2))) flags.set(a.slice(2), 'true');
    else if (a.startsWith('--')) {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      flags.set(a.slice(2), v);
    } else args.push(a);
  }
  return { args, flags };
}

async function tokens(p: Parsed): Promise<void> {
  const [, action, a, b] = p.args;
  const url = process.env['DATABASE_URL'];
  const db = await openDb(url ? { url } : { dataDir: join(process.env['DATA_DIR'] ?? 'data', 'pglite') });
  try {
    await migrate(db);
    if (action === 'create') {
      if (!a || !b || !(ROLES as readonly string[]).includes(b)) fail(`token create NAME ROLE (ROLE: ${ROLES.join(', ')})`);
      if (p.flags.has('platform') && p.flags.has('operator')) fail('a token is one operator\'s (--operator ID) or a platform admin\'s (--platform), not both');
      const operator = p.flags.has('platform') ? null : p.flags.get('operator');
      const t = await createToken(db, a, b as Role, operator).catch((e: Error) => fail(e.message));
      process.stdout.write(`${t.token}\n`);
      const whose = t.info.operator === null ? 'a platform admin' : `operator ${t.info.operator}`;
      process.stderr.write(`token ${t.info.id} (${t.info.role}, ${whose}) made for "${t.info.name}"; it is not stored and cannot be shown again\n`);
    } else if (action === 'revoke') {
      if (!a) fail('token revoke TOKEN-ID');
      if (!(await revokeToken(db, a))) fail(`no live token ${a}`, 1);
      process.stderr.write(`token ${a} revoked\n`);
    } else fail(USAGE);
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  const p = parse(process.argv.slice(2));
  const [cmd, id, x, y] = p.args;
  if (!cmd) fail(USAGE);
  if (cmd === 'token') return tokens(p);
  if (cmd === 'archive') return archiveCommand(p.args, p.flags, fail);
  // Making a key and signing need no gateway.
  if (cmd === 'firmware' && firmwareOffline(p.args, p.flags, fail)) return;
  const base = (p.flags.get('url') ?? process.env['VENDFLEET_URL'] ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const token = p.flags.get('token') ?? process.env['VENDFLEET_TOKEN'];
  if (!token) fail('an API token is needed: --token or VENDFLEET_TOKEN (make one with: vendctl token create NAME ROLE)');
  const need = (v: string | undefined, what: string): string => v ?? fail(`${cmd} needs ${what}\n${USAGE}`);
  const q = (pairs: [string, string | undefined][]): string => {
    const s = new URLSearchParams();
    for (const [k, v] of pairs) if (v !== undefined) s.set(k, v);
    const t = s.toString();
    return t ? `?${t}` : '';
  };
  const m = (v: string | undefined): string => encodeURIComponent(need(v, 'a machine id'));
  if (cmd === 'rollout' && id === 'watch') {
    const get = async (path: string): Promise<WatchedRollout> => {
      let res: Response;
      try {
        res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
      } catch (e) {
        return fail(`cannot reach the gateway at ${base}: ${(e as Error).message}`, 1);
      }
      const body = (await res.json()) as WatchedRollout & { error?: string; message?: string };
      if (res.status >= 400) fail(`${res.status} ${body.error ?? ''}: ${body.message ?? ''}`, 1);
      return body;
    };
    process.exit(await watchRollout(get, need(x, 'a rollout id'), p.flags, fail));
  }
  let method = 'GET';
  let path: string;
  let body: unknown;
  let raw: Buffer | undefined;
  let binary = false;
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  switch (cmd) {
    case 'machines':
      path = '/machines';
      break;
    case 'machine':
      path = `/machines/${m(id)}`;
      break;
    case 'slots':
      path = `/machines/${m(id)}/slots`;
      break;
    case 'products': {
      // `products list|add|...` is the catalog; `products ID` (or --machine ID) what a machine has on sale.
      if (!p.flags.has('machine') && id !== undefined && CATALOG_ACTIONS.has(id)) {
        const r = productsRequest(p.args, p.flags, fail);
        method = r.method;
        path = r.path;
        body = r.body;
        raw = r.raw;
        if (r.contentType) headers['content-type'] = r.contentType;
        break;
      }
      path = `/machines/${m(p.flags.get('machine') ?? id)}/products${q([['category', p.flags.get('category')], ['limit', p.flags.get('limit')], ['cursor', p.flags.get('cursor')]])}`;
      break;
    }
    case 'planogram': {
      const r = planogramRequest(p.args, p.flags, fail);
      method = r.method;
      path = r.path;
      body = r.body;
      break;
    }
    case 'slot':
      path = `/machines/${m(id)}/status/${encodeURIComponent(need(x, 'a slot'))}`;
      break;
    case 'coins':
      path = `/machines/${m(id)}/denominations`;
      break;
    case 'sales':
      path = `/machines/${m(id)}/sales${q([['from', p.flags.get('from')], ['to', p.flags.get('to')]])}`;
      break;
    case 'purchase': {
      method = 'POST';
      path = `/machines/${m(id)}/purchase`;
      const quantity = y === undefined ? 1 : Number(y);
      if (!Number.isInteger(quantity)) fail('quantity must be an integer');
      body = { slot: need(x, 'a slot'), quantity };
      // A key of our own unless given: say it again with --key to retry the same purchase safely.
      headers['idempotency-key'] = p.flags.get('key') ?? randomUUID();
      process.stderr.write(`Idempotency-Key: ${headers['idempotency-key']}\n`);
      break;
    }
    case 'send': {
      method = 'POST';
      path = `/machines/${m(id)}/commands`;
      let args: unknown = {};
      if (y !== undefined) {
        try {
          args = JSON.parse(y);
        } catch {
          fail(`arguments are not JSON: ${y}`);
        }
      }
      const ttl = p.flags.get('ttl');
      body = { type: need(x, 'a command type'), args, ...(ttl !== undefined ? { ttlS: Number(ttl) } : {}) };
      break;
    }
    case 'commands':
      path = `/machines/${m(id)}/commands`;
      break;
    case 'command':
      path = `/commands/${encodeURIComponent(need(id, 'a command id'))}`;
      break;
    case 'cancel':
      method = 'POST';
      path = `/commands/${encodeURIComponent(need(id, 'a command id'))}/cancel`;
      break;
    case 'audits':
      path = `/machines/${m(id)}/audits${q([['limit', p.flags.get('limit')]])}`;
      break;
    case 'audit':
      path = `/audits/${encodeURIComponent(need(id, 'an audit id'))}`;
      break;
    case 'dex':
      path = `/audits/${encodeURIComponent(need(id, 'an audit id'))}/dex`;
      break;
    case 'upload': {
      method = 'POST';
      const file = need(id, 'a DEX file');
      try {
        raw = readFileSync(file);
      } catch (e) {
        fail(`cannot read ${file}: ${(e as Error).message}`);
      }
      headers['content-type'] = 'text/plain';
      path = `/audits${q([['machine', p.flags.get('machine')], ['operator', p.flags.get('operator')]])}`;
      break;
    }
    case 'alerts': {
      const query = q([['state', p.flags.has('all') ? 'all' : 'open'], ['kind', p.flags.get('kind')], ['limit', p.flags.get('limit')]]);
      path = id === undefined || id === '*' ? `/alerts${query}` : `/machines/${m(id)}/alerts${query}`;
      break;
    }
    case 'alert-rules': {
      // `alert-rules '{...}'` sets the fleet's: a machine id never starts with a brace.
      const fleet = id === undefined || id === '*' || id.startsWith('{');
      const rules = id?.startsWith('{') ? id : x;
      path = fleet ? `/alert-rules${q([['operator', p.flags.get('operator')]])}` : `/machines/${m(id)}/alert-rules`;
      if (rules !== undefined) {
        method = 'PUT';
        try {
          body = JSON.parse(rules);
        } catch {
          fail(`rules are not JSON: ${rules}`);
        }
      }
      break;
    }
    case 'picklist':
      path = `/machines/${m(id)}/picklist`;
      break;
    case 'forecast':
      path = `/machines/${m(id)}/forecast${q([['windowDays', p.flags.get('window')]])}`;
      break;
    case 'route':
      // The machines that need a visit within --days (or exactly --machines), in driving order from --depot.
      path = `/route${q([['depot', p.flags.get('depot')], ['days', p.flags.get('days')], ['machines', p.flags.get('machines')], ['windowDays', p.flags.get('window')], ['return', p.flags.get('return')]])}`;
      break;
    case 'vans':
      // K vans from --depot within their capacity and a working day; the least urgent deferred.
      if (!p.flags.has('depot') || !p.flags.has('vans')) fail(`vans needs --depot LAT,LON and --vans K\n${USAGE}`);
      path = `/routes${q([['depot', p.flags.get('depot')], ['vans', p.flags.get('vans')], ['capacity', p.flags.get('capacity')], ['hours', p.flags.get('hours')], ['speed', p.flags.get('speed')], ['service', p.flags.get('service')], ['days', p.flags.get('days')], ['windowDays', p.flags.get('window')]])}`;
      break;
    case 'locate': {
      method = 'PUT';
      path = `/machines/${m(id)}/location`;
      const lat = Number(need(x, 'a latitude'));
      const lon = Number(need(y, 'a longitude'));
      if (!Number.isFinite(lat) || !Number.isFinite(lon)) fail('locate ID LAT LON [ADDRESS]: LAT and LON are numbers in degrees');
      const address = p.args[4];
      body = { lat, lon, ...(address !== undefined ? { address } : {}) };
      break;
    }
    case 'provision':
      method = 'POST';
      path = '/machines';
      body = { id: need(id, 'a machine id'), ...(p.flags.has('operator') ? { operator: p.flags.get('operator') } : {}) };
      break;
    case 'me':
      path = '/me';
      break;
    case 'operators':
      path = '/operators';
      break;
    case 'operator':
      if (id !== 'add') fail(`operator add ID NAME\n${USAGE}`);
      method = 'POST';
      path = '/operators';
      body = { id: need(x, 'an operator id'), name: need(y, 'a name') };
      break;
    case 'tokens':
      if (id === 'list') path = `/tokens${q([['operator', p.flags.get('operator')]])}`;
      else if (id === 'revoke') {
        method = 'DELETE';
        path = `/tokens/${encodeURIComponent(need(x, 'a token id'))}`;
      } else fail(`tokens list [--operator OP] [--json] | tokens revoke TOKEN-ID\n${USAGE}`);
      break;
    case 'alert-webhook': {
      path = `/alert-webhook${q([['operator', p.flags.get('operator')]])}`;
      if (id === 'set') {
        method = 'PUT';
        const secret = p.flags.get('secret') ?? process.env['VENDFLEET_WEBHOOK_SECRET'];
        body = { url: need(x, 'a URL'), ...(secret ? { secret } : {}) };
      } else if (id === 'remove') method = 'DELETE';
      else if (id !== undefined) fail(`alert-webhook [set URL [--secret S] | remove] [--operator OP]\n${USAGE}`);
      break;
    }
    case 'tags':
      path = `/machines/${m(id)}${x === undefined ? '' : '/tags'}`;
      if (x !== undefined) {
        method = 'PUT';
        body = { tags: x.split(',').filter((t) => t !== '') };
      }
      break;
    case 'rollout': {
      const r = rolloutRequest(p.args, p.flags, fail);
      method = r.method;
      path = r.path;
      body = r.body;
      break;
    }
    case 'firmware': {
      const r = firmwareRequest(p.args, p.flags, fail);
      method = r.method;
      path = r.path;
      raw = r.raw;
      binary = r.binary ?? false;
      if (r.contentType) headers['content-type'] = r.contentType;
      break;
    }
    default:
      fail(`unknown command ${cmd}\n${USAGE}`);
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  const progress = new Progress();
  const send = async (): Promise<Response> => {
    let payload: string | Uint8Array | ReadableStream<Uint8Array> | undefined = body !== undefined ? JSON.stringify(body) : undefined;
    if (raw !== undefined) {
      // A large body (a firmware image) shows its progress as it goes.
      const bytes = raw;
      payload = bytes.length >= 256 * 1024 ? countedBody(bytes, (sent) => progress.count('uploading', sent, bytes.length)) : bytes;
    }
    try {
      return await fetch(base + path, { method, headers, ...(payload !== undefined ? { body: payload, duplex: 'half' } : {}) } as RequestInit);
    } catch (e) {
      return fail(`cannot reach the gateway at ${base}: ${(e as Error).message}`, 1);
    }
  };
  const read = async (res: Response): Promise<{ text: string; out: unknown }> => {
    const text = await res.text();
    let out: unknown = text;
    try {
      out = JSON.parse(text);
    } catch {
      // not JSON: shown as it came
    }
    if (res.status >= 400) {
      const e = out as { error?: string; message?: string };
      fail(`${res.status} ${e.error ?? ''}: ${e.message ?? text}`, 1);
    }
    return { text, out };
  };
  const forMs = 1000 * (Number(p.flags.get('for') ?? (cmd === 'purchase' ? 60 : 120)) || 0);
  let res = await send();
  // A purchase the machine has not answered yet: ask again under the same key (it never vends twice).
  const started = Date.now();
  while (cmd === 'purchase' && res.status === 202 && Date.now() - started < forMs) {
    await res.body?.cancel();
    progress.step(`purchase of ${String((body as { slot: string }).slot)} on ${id}: waiting for the machine`, Date.now() - started);
    await new Promise((r) => setTimeout(r, 1000));
    res = await send();
  }
  // An image goes out byte for byte.
  if (binary && res.status < 400) {
    process.stdout.write(Buffer.from(await res.arrayBuffer()));
    return;
  }
  const { text, out } = await read(res);
  if (cmd === 'purchase' && res.status === 202) progress.done(`purchase still pending after ${Math.round(forMs / 1000)} s: ask again with --key ${headers['idempotency-key']}`);
  if (cmd === 'send' && p.flags.has('wait')) {
    const sent = out as { id?: string };
    if (typeof sent.id !== 'string') fail('the gateway gave no command id to wait for', 1);
    const get = async (path: string): Promise<FollowedCommand> => {
      let r: Response;
      try {
        r = await fetch(base + path, { headers: { authorization: headers['authorization']! } });
      } catch (e) {
        return fail(`cannot reach the gateway at ${base}: ${(e as Error).message}`, 1);
      }
      return (await read(r)).out as FollowedCommand;
    };
    const { command, final } = await followCommand(get, sent.id, forMs, progress);
    process.stdout.write(JSON.stringify(command, null, 2) + '\n');
    if (!final || command.status !== 'applied') process.exitCode = 1;
    return;
  }
  // A DEX file goes out byte for byte (its G85 covers it).
  if (cmd === 'dex') {
    process.stdout.write(text);
    return;
  }
  // A revocation answers nothing (204).
  if (cmd === 'tokens' && id === 'revoke') {
    process.stderr.write(`token ${x} revoked\n`);
    return;
  }
  if (cmd === 'products' && id === 'remove') {
    process.stderr.write(`product ${x} removed\n`);
    return;
  }
  if (cmd === 'planogram' && method === 'PUT') process.stderr.write(planogramOutcome(out) + '\n');
  if (cmd === 'vans' && !p.flags.has('json')) {
    process.stdout.write(renderVans(out) + '\n');
    return;
  }
  const listing = LISTINGS.has(cmd) || LISTINGS.has(`${cmd} ${id ?? ''}`);
  const shown = listing && !p.flags.has('json') ? renderListing(out) : undefined;
  process.stdout.write((shown ?? (typeof out === 'string' ? out : JSON.stringify(out, null, 2))) + '\n');
}

main().catch((e) => fail((e as Error).message, 1));
