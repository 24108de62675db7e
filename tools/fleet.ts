/**
 * npm start [-- --machines N] [--target sim|xs] [--data DIR] [--duration S] [--seed N]
 *
 * The main job on the embedded default: an MQTT broker (aedes) and the
 * gateway with its fleet store (PGlite) in this process, and a fleet of
 * simulated vending machines running the real firmware, serving simulated
 * customers, publishing their journals over MQTT. Prints where everything
 * is and a live summary; Ctrl-C (or --duration) stops it cleanly.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildApi } from '../gateway/api/server.js';
import { firstAdminToken, listen } from '../gateway/api/listen.js';
import { FirmwareRegistry } from '../gateway/firmware/registry.js';
import { Gateway } from '../gateway/gateway.js';
import { GATEWAY_USER, storeCredentials } from '../gateway/mqtt/credentials.js';
import { startEmbeddedBroker } from '../gateway/mqtt/embedded-broker.js';
import { randomBytes } from 'node:crypto';
import { loadMachines, setLocation } from '../gateway/restock/store.js';
import { CatalogError, createProduct, listProducts } from '../gateway/catalog/products.js';
import { openDb, type Db } from '../gateway/store/db.js';
import { DEFAULT_OPERATOR } from '../gateway/store/operators.js';
import { visit } from '../hal-sim/customers.js';
import { Restocker } from './restocker.js';
import { FlashImage } from '../hal-sim/guest/flash-image.js';
import { DEFAULT_FLASH, MachineHost } from '../hal-sim/host.js';
import type { MachineSpec, PhysicalState } from '../hal-sim/rig.js';
import { Random } from '../hal-sim/scheduler.js';
import type { TargetName } from '../hal-sim/transport.js';

interface Options {
  machines: number;
  target: TargetName;
  data: string | undefined;
  duration: number;
  seed: number;
  apiPort: number;
  /** Seconds (real time) the route driver lets an empty slot wait; 0: no route driver. */
  restockAfterS: number;
}

function fail(message: string): never {
  process.stderr.write(`vendfleet: ${message}\nusage: npm start -- [--machines N] [--target sim|xs] [--data DIR] [--duration SECONDS] [--seed N] [--api-port PORT] [--restock-after SECONDS]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { machines: 20, target: 'sim', data: undefined, duration: 0, seed: 1, apiPort: 8080, restockAfterS: 60 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const int = (min: number, max: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min || v > max) fail(`${a} needs an integer from ${min} to ${max}`);
      return v;
    };
    if (a === '--machines') o.machines = int(1, 500);
    else if (a === '--duration') o.duration = int(1, 86400);
    else if (a === '--seed') o.seed = int(0, 2 ** 31);
    else if (a === '--api-port') o.apiPort = int(0, 65535);
    else if (a === '--restock-after') o.restockAfterS = int(0, 86400);
    else if (a === '--target') {
      const t = argv[++i];
      if (t !== 'sim' && t !== 'xs') fail('--target is sim or xs');
      o.target = t;
    } else if (a === '--data') {
      const d = argv[++i];
      if (!d) fail('--data needs a directory');
      o.data = d;
    } else if (a === '--help' || a === '-h') fail('help');
    else fail(`unknown option ${a}`);
  }
  return o;
}

const PRODUCTS = [
  ['Chips', 125, 'Snacks'],
  ['Pretzels', 150, 'Snacks'],
  ['Cookies', 110, 'Snacks'],
  ['Candy bar', 100, 'Candy'],
  ['Gum', 65, 'Candy'],
  ['Cola', 175, 'Drinks'],
  ['Water', 100, 'Drinks'],
  ['Iced tea', 160, 'Drinks'],
] as const;

const ROWS = ['A', 'B', 'C'] as const;
/** Which of PRODUCTS machine i has in row r, column c (the machine and the demo's planogram agree). */
const productAt = (i: number, r: number, c: number): (typeof PRODUCTS)[number] => PRODUCTS[(i + r * 3 + c) % PRODUCTS.length]!;
/** A simulated product's SKU in the demo's catalog: "Candy bar" is CANDY-BAR. */
const skuOf = (name: string): string => name.toUpperCase().replace(/[^A-Z0-9]+/g, '-');

/**
 * The demo's product catalog (docs/catalog.md): the simulated products under SKUs of their own, at the
 * prices the machines start with, and each machine's slots assigned to them. Made when the catalog is empty
 * only: with --data, what was changed since (over the API, vendctl or the dashboard) stays.
 */
async function seedCatalog(db: Db, ids: readonly string[]): Promise<void> {
  if ((await listProducts(db, DEFAULT_OPERATOR)).length > 0) return;
  for (const [name, price, category] of PRODUCTS) {
    await createProduct(db, DEFAULT_OPERATOR, skuOf(name), { name, price, currency: 'USD', category }).catch((e: unknown) => {
      if (!(e instanceof CatalogError && e.code === 'product-exists')) throw e;
    });
  }
  const rows: [string, string, string][] = [];
  for (const [i, id] of ids.entries()) for (let r = 0; r < ROWS.length; r++) for (let c = 1; c <= 3; c++) rows.push([id, `${ROWS[r]}${c}`, skuOf(productAt(i, r, c)[0])]);
  // One statement for the whole fleet: a big one starts as fast as a small one.
  await db.query(
    'INSERT INTO planogram (machine_id, slot, operator_id, sku) SELECT m, s, $4, k FROM unnest($1::text[], $2::text[], $3::text[]) AS x(m, s, k) ON CONFLICT DO NOTHING',
    [rows.map((x) => x[0]), rows.map((x) => x[1]), rows.map((x) => x[2]), DEFAULT_OPERATOR],
  );
}

function machineSpec(i: number, rnd: Random): MachineSpec {
  const slots = [];
  const rows = ROWS;
  for (let r = 0; r < 3; r++) {
    for (let c = 1; c <= 3; c++) {
      const [product, price, category] = productAt(i, r, c);
      slots.push({ code: `${rows[r]}${c}`, product, price, qty: rnd.int(3, 12), capacity: 12, category });
    }
  }
  return {
    currency: 'USD',
    slots,
    changer: { coins: [{ value: 5, tube: 60 }, { value: 10, tube: 60 }, { value: 25, tube: 80 }, { value: 100, tube: null }] },
    bills: [100, 500],
  };
}

/** Where the simulated fleet stands: around downtown Denver (inland: no machine ends up in a lake). */
const CITY = { lat: 39.7392, lon: -104.9903, name: 'Denver' };

/**
 * Machine i's place, the same every run: a sunflower spiral (golden angle, radius growing with the
 * square root of i, so the density is even) about 0.9 km apart, jittered by a hash of i.
 */
function simulatedLocation(i: number): { lat: number; lon: number; address: string } {
  const jitter = (k: number): number => {
    const x = Math.sin((i + 1) * 12.9898 + k * 78.233) * 43758.5453;
    return x - Math.floor(x) - 0.5;
  };
  const r = 0.9 * Math.sqrt(i + 0.5) * (1 + 0.3 * jitter(1));
  const a = i * 2.399963229728653 + 0.5 * jitter(2);
  const north = r * Math.cos(a);
  const east = r * Math.sin(a);
  const lat = CITY.lat + north / 111.32;
  const lon = CITY.lon + east / (111.32 * Math.cos((CITY.lat * Math.PI) / 180));
  return { lat: Math.round(lat * 1e6) / 1e6, lon: Math.round(lon * 1e6) / 1e6, address: `Site ${i + 1} (simulated), ${CITY.name}` };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const print = (s: string): void => void process.stdout.write(s + '\n');
  const dbDir = o.data ? join(o.data, 'pglite') : undefined;
  const db = await openDb(dbDir ? { dataDir: dbDir } : {});
  // Logins and topic ACLs on: each machine with its own password, the gateway with a secret of this process.
  const gatewaySecret = randomBytes(24).toString('base64url');
  const broker = await startEmbeddedBroker({ credentials: storeCredentials(db, gatewaySecret) });
  // Firmware images signed by the keys in VENDFLEET_RELEASE_KEYS or DIR/release-keys.pem, served to machines over MQTT (docs/updates.md).
  const keysFile = process.env['VENDFLEET_RELEASE_KEYS'];
  const firmware = new FirmwareRegistry(db, {
    keyFiles: [...(keysFile ? [{ path: keysFile, optional: false }] : []), ...(o.data ? [{ path: join(o.data, 'release-keys.pem'), optional: true }] : [])],
  });
  const gateway = await Gateway.start({
    mqttUrl: broker.url,
    db,
    updates: { source: firmware },
    firmware,
    clientId: 'vendfleet-gateway',
    username: GATEWAY_USER,
    password: gatewaySecret,
    onLog: (level, m) => level !== 'info' && print(`gateway ${level}: ${m}`),
  });
  const rnd = new Random(o.seed);
  const ids = Array.from({ length: o.machines }, (_, i) => `vm-${String(i + 1).padStart(4, '0')}`);
  // Each machine gets its command key from the store (kept across runs with --data).
  // A fresh MQTT password each run: the broker checks it against the store, the machine gets it in its configuration.
  const keys = await Promise.all(ids.map((id) => gateway.commands.provision(id, { newMqttPassword: true })));
  gateway.ingester.known(ids);
  // Locations for the route and the map, through the API's own code path; set once, so one changed over the API stays.
  const located = new Set((await loadMachines(db, ids)).filter((m) => m.location !== null).map((m) => m.id));
  for (const [i, id] of ids.entries()) if (!located.has(id)) await setLocation(db, id, simulatedLocation(i));
  await seedCatalog(db, ids);

  const api = await buildApi({ db, commands: gateway.commands, alerts: gateway.alerts, firmware, rolloutEngine: gateway.rollouts, health: () => gateway.health() });
  const served = await listen(api, '127.0.0.1', o.apiPort);
  const token = await firstAdminToken(db);

  print(`vendfleet: ${o.machines} simulated machines (firmware on ${o.target === 'xs' ? 'the XS engine' : 'Node'}), the gateway and the fleet store in this process`);
  print(`  MQTT broker   ${broker.url}${broker.port !== 1883 ? ' (1883 is taken on this machine; logins and topic ACLs are on)' : ' (logins and topic ACLs are on)'}`);
  print(`  fleet store   PGlite (PostgreSQL in this process), ${dbDir ? `data in ${dbDir}` : 'in memory (--data DIR keeps it and the machines)'}; tables machines, machine_state, events, sales (view), telemetry`);
  print(`  machines      ${ids[0]} .. ${ids[ids.length - 1]}, 9 slots each, USD coins and bills, telemetry every 5 min and after sales`);
  print(`  locations     around downtown ${CITY.name}; a restocking route: vendctl route --depot ${CITY.lat},${CITY.lon} --days 1`);
  print(`  dashboard     ${served.url}/dashboard (sign in with the admin token): map, machines, alerts, planograms, sales, commands, audit files, the product catalog`);
  print(`  operator API  ${served.url} (OpenAPI and a try-it page at ${served.url}/docs)${served.fellBack ? ` (${o.apiPort} is taken on this machine)` : ''}`);
  print(
    o.restockAfterS > 0
      ? `  route driver  restocks a machine by command ${o.restockAfterS} s after a slot runs empty (alerts open as slots empty, close once restocked; --restock-after S)`
      : '  route driver  off (--restock-after 0): slots stay empty until restocked by command',
  );
  print(
    token
      ? `  admin token   ${token} (shown once: keep it; try  curl -H "Authorization: Bearer ${token}" ${served.url}/machines)`
      : '  admin token   the one printed when this --data directory was first used',
  );
  print('  Ctrl-C stops everything cleanly.\n');

  const saved = (id: string): { flash?: FlashImage; physical?: PhysicalState } => {
    if (!o.data) return {};
    const f = join(o.data, 'machines', `${id}.json`);
    if (!existsSync(f)) return {};
    const s = JSON.parse(readFileSync(f, 'utf8')) as { flash: string; physical: PhysicalState };
    return { flash: new FlashImage(DEFAULT_FLASH, Buffer.from(s.flash, 'base64')), physical: s.physical };
  };
  const hosts = await Promise.all(
    ids.map((id, i) => {
      const s = saved(id);
      return MachineHost.start(machineSpec(i, rnd), {
        target: o.target,
        seed: o.seed * 1000 + i,
        machineId: id,
        network: { url: broker.url },
        // The machines run up to 100 times faster than real time; the gateway signs their commands with the real time.
        wallClock: 'host',
        config: {
          commandKey: keys[i]!.commandKey,
          commandKeyId: keys[i]!.commandKeyId,
          uplink: { host: '127.0.0.1', port: broker.port, user: id, password: keys[i]!.mqttPassword! },
        },
        ...(s.flash ? { flash: s.flash } : {}),
        ...(s.physical ? { physical: s.physical } : {}),
      });
    }),
  );

  let stopping = false;
  // A simulated route driver: slots run empty, alerts open; it comes, loads and sends the restock command; alerts close.
  const restocker = new Restocker(db, gateway.commands, new Map(ids.map((id, i) => [id, hosts[i]!])), {
    visitAfterMs: o.restockAfterS * 1000,
    log: (m) => print(m),
  });
  if (o.restockAfterS > 0) restocker.start();
  const customers = hosts.map(async (host, i) => {
    const r = new Random(o.seed * 7919 + i);
    while (!stopping) {
      // Someone comes by every half minute to five minutes.
      await host.run(r.int(30, 300) * 1000);
      if (stopping) break;
      await visit(host, r, { walkAway: 0.04, cancel: 0.06, twoItems: 0.1 });
    }
  });

  const started = performance.now();
  let lastMessages = 0;
  let lastAt = started;
  const summary = async (): Promise<void> => {
    const st = await Promise.all(hosts.map((h) => h.status()));
    const online = st.filter((s) => s.uplink?.state === 'online').length;
    const unsynced = st.reduce((a, s) => a + s.journal.unsynced, 0);
    const sales = (await db.query<{ n: string; total: string | null }>('SELECT count(*) AS n, sum(price) AS total FROM sales')).rows[0]!;
    const alerts = (await db.query<{ open: string; closed: string }>('SELECT count(*) FILTER (WHERE closed_at IS NULL) AS open, count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed FROM alerts')).rows[0]!;
    const g = gateway.ingester.stats;
    const now = performance.now();
    const rate = ((g.messages - lastMessages) * 1000) / (now - lastAt);
    lastMessages = g.messages;
    lastAt = now;
    const rejected = Object.values(g.rejected).reduce((a, b) => a + (b ?? 0), 0);
    const secs = Math.round((now - started) / 1000);
    const health = gateway.health();
    print(
      `[${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}] machines online ${online}/${hosts.length} | sales ${sales.n} | revenue $${(Number(sales.total ?? 0) / 100).toFixed(2)} | alerts ${alerts.open} open, ${alerts.closed} closed | restocks ${restocker.visits} (${restocker.outcomes.get('applied') ?? 0} applied) | events stored ${g.events} | ${rate.toFixed(0)} msg/s | unsynced ${unsynced} | rejected ${rejected}${health.status === 'ok' ? '' : ` | ${health.problems.join('; ')}`}`,
    );
  };
  const timer = setInterval(() => void summary().catch(() => {}), 2000);

  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    restocker.stop();
    clearInterval(timer);
    print(`\n${why}: letting the machines finish their customers, then stopping`);
    await Promise.all(customers);
    await summary();
    if (o.restockAfterS > 0) print(`route driver: ${restocker.summary()}`);
    if (o.data) {
      mkdirSync(join(o.data, 'machines'), { recursive: true });
      hosts.forEach((h, i) => {
        const state = { flash: Buffer.from(h.flash.bytes).toString('base64'), physical: h.rig.physical(true) };
        writeFileSync(join(o.data!, 'machines', `${ids[i]}.json`), JSON.stringify(state));
      });
      print(`machines' flash and physical state saved in ${join(o.data, 'machines')}`);
    }
    await Promise.all(hosts.map((h) => h.close()));
    await api.close();
    await gateway.close();
    await db.close();
    await broker.close();
    print('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('Ctrl-C'));
  process.on('SIGTERM', () => void stop('terminated'));
  if (o.duration > 0) setTimeout(() => void stop(`${o.duration} s are up`), o.duration * 1000);
}

main().catch((e) => {
  process.stderr.write(`vendfleet: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
