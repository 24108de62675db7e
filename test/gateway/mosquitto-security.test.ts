/**
 * The shipped Mosquitto setup (gateway/deploy/acl, logins from
 * mosquitto_passwd, TLS) with a throwaway CA on loopback: the real broker
 * keeps machines to their own topics (firmware chunks included), refuses
 * strangers and untrusted certificates, and carries a simulated machine's
 * journal and commands over TLS.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectMqtt } from '../lib/mqtt.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { Gateway } from '../../gateway/gateway.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { MachineHost } from '../../hal-sim/host.js';
import { startMosquitto } from '../../bench/lib/mosquitto.js';
import { usMachine } from '../sim/fixtures.js';
import { count, eventually, synced } from './backends.js';
import { keysFile, signed, simImage, testKey } from './firmware-fixtures.js';

const ACL = fileURLToPath(new URL('../../../gateway/deploy/acl', import.meta.url));

/** A CA and a broker certificate for 127.0.0.1, made for this run only. */
function throwawayCa(dir: string): { ca: string; cert: string; key: string } {
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=vendfleet test CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'broker.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.crt', '-days', '2', '-extfile', 'san.cnf');
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'broker.crt'), key: join(dir, 'broker.key') };
}


describe('Mosquitto with the shipped ACLs, logins and TLS (throwaway CA on loopback)', function () {
  this.timeout(120000);
  let dir: string;
  let tls: { ca: string; cert: string; key: string };
  let broker: { url: string; port: number; process: ChildProcess };
  let url: string;
  let db: Db;
  let gw: Gateway;
  let registry: FirmwareRegistry;
  const secret = 'gateway-secret-mosquitto-test';
  const pw: Record<string, string> = {};
  const keys: Record<string, { commandKey: string; commandKeyId: number }> = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vf-tls-'));
    tls = throwawayCa(dir);
    db = await openDb();
    // Provision first (the store makes the passwords), then hand them to Mosquitto as an operator would.
    const { CommandService } = await import('../../gateway/commands/service.js');
    const { migrate } = await import('../../gateway/store/migrations.js');
    await migrate(db);
    const svc = new CommandService(db, () => {});
    const passwd = join(dir, 'passwd');
    execFileSync('mosquitto_passwd', ['-c', '-b', passwd, 'gateway', secret]);
    for (const id of ['vm-a', 'vm-b', 'vm-c']) {
      const p = await svc.provision(id);
      pw[id] = p.mqttPassword!;
      keys[id] = { commandKey: p.commandKey, commandKeyId: p.commandKeyId };
      execFileSync('mosquitto_passwd', ['-b', passwd, id, p.mqttPassword!]);
    }
    svc.close();
    // Mosquitto started as root reads its files as the mosquitto user: these throwaway files must be readable.
    chmodSync(dir, 0o755);
    for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
    broker = await startMosquitto({ anonymous: false, conf: [`cafile ${tls.ca}`, `certfile ${tls.cert}`, `keyfile ${tls.key}`, `password_file ${passwd}`, `acl_file ${ACL}`] });
    url = `mqtts://127.0.0.1:${broker.port}`;
    const key = testKey();
    registry = new FirmwareRegistry(db, { keyFiles: [{ path: keysFile(key), optional: false }] });
    gw = await Gateway.start({ mqttUrl: url, db, username: 'gateway', password: secret, ca: readFileSync(tls.ca), shareGroup: 'vendfleet', updates: { source: registry } });
    await registry.upload(signed(simImage('1.0.0', { size: 6000 }), '1.0.0', key));
  });
  after(async () => {
    await gw?.close();
    broker?.process.kill('SIGKILL');
    await db?.close();
  });

  it('refuses a client that does not trust the CA, and strangers without a login', async () => {
    await assert.rejects(connectMqtt(url, { username: 'vm-a', password: pw['vm-a']! }), /self-signed|certificate/i);
    await assert.rejects(connectMqtt(url, { ca: readFileSync(tls.ca), clientId: 'x' }), /Not authorized|Bad username/i);
    await assert.rejects(connectMqtt(url, { ca: readFileSync(tls.ca), clientId: 'vm-a', username: 'vm-a', password: 'guess' }), /Not authorized|Bad username/i);
  });

  it('keeps a machine from reading another\'s commands or publishing as it', async () => {
    const ca = readFileSync(tls.ca);
    const spy = await connectMqtt(url, { ca, clientId: 'spy-a', username: 'vm-a', password: pw['vm-a']! });
    const b = await connectMqtt(url, { ca, clientId: 'vm-b', username: 'vm-b', password: pw['vm-b']! });
    const spied: string[] = [];
    const got: string[] = [];
    spy.on('message', (t) => spied.push(t));
    b.on('message', (t) => got.push(t));
    await spy.subscribeAsync('fleet/vm-b/commands', { qos: 1 }).catch(() => undefined);
    await b.subscribeAsync('fleet/vm-b/commands', { qos: 1 });
    // vm-b says it is online (the gateway sends commands to online machines).
    await b.publishAsync('fleet/vm-b/status', JSON.stringify({ v: 1, online: true }), { qos: 1 });
    for (let i = 0; i < 50; i++) {
      await gw.ingester.flush();
      if ((await count(db, 'SELECT count(*) AS n FROM machine_state WHERE machine_id = $1 AND online', ['vm-b'])) === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const commands = async (n: number): Promise<void> => {
      for (let i = 0; i < 400 && got.length < n; i++) await new Promise((r) => setTimeout(r, 50));
    };
    await gw.commands.issue('vm-b', 'report');
    await commands(1);
    // A second command as a barrier: once vm-b has it, a copy of the first to anyone else, or a second copy to vm-b, would have come already.
    await gw.commands.issue('vm-b', 'report');
    await commands(2);
    assert.equal(got.length, 2, 'vm-b gets each of its commands once');
    assert.equal(spied.length, 0, 'vm-a does not');
    // The forged event is taken (PUBACK) before vm-b's own: were it passed on, the gateway would get it first and seq 1 would be a sale.
    await spy.publishAsync('fleet/vm-b/events', JSON.stringify({ v: 1, events: [{ seq: 1, t: 1, type: 'vend-ok', slot: 'A1', price: 1 }] }), { qos: 1 });
    await b.publishAsync('fleet/vm-b/events', JSON.stringify({ v: 1, events: [{ seq: 1, t: 1, type: 'boot' }] }), { qos: 1 });
    for (let i = 0; i < 400 && (await count(db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', ['vm-b'])) === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      await gw.ingester.flush();
    }
    const stored = await db.query<{ type: string }>('SELECT type FROM events WHERE machine_id = $1', ['vm-b']);
    assert.deepEqual(stored.rows.map((r) => r.type), ['boot'], 'the forged event never reached the gateway; vm-b\'s own did');
    await spy.endAsync();
    await b.endAsync();
  });

  it('lets a machine fetch firmware chunks for itself only', async () => {
    const ca = readFileSync(tls.ca);
    const sha = sha256Hex(simImage('1.0.0', { size: 6000 }));
    await registry.offer('vm-a', sha);
    await registry.offer('vm-b', sha);
    assert.equal(gw.health().mqtt.find((m) => m.name === 'updates')?.subscription, 'receiving', 'the gateway subscribes to requests and its probe comes back');
    const spy = await connectMqtt(url, { ca, clientId: 'spy-a2', username: 'vm-a', password: pw['vm-a']! });
    const b = await connectMqtt(url, { ca, clientId: 'vm-b', username: 'vm-b', password: pw['vm-b']! });
    const spied: string[] = [];
    const got: Buffer[] = [];
    spy.on('message', (t) => spied.push(t));
    b.on('message', (_t, p) => got.push(p));
    await spy.subscribeAsync(['fleet/vm-b/update/chunk', 'fleet/vm-b/update/get', 'fleet/+/update/get'], { qos: 0 }).catch(() => undefined);
    await b.subscribeAsync('fleet/vm-b/update/chunk', { qos: 0 });
    // Asking in vm-b's name: Mosquitto drops it, so the only answer vm-b gets is to its own request.
    const requests = gw.chunks!.stats.requests;
    await spy.publishAsync('fleet/vm-b/update/get', JSON.stringify({ image: sha, offset: 0, length: 8 }), { qos: 0 });
    await b.publishAsync('fleet/vm-b/update/get', JSON.stringify({ image: sha, offset: 100, length: 4096 }), { qos: 0 });
    await eventually('vm-b\'s chunk', async () => (got.length > 0 ? true : undefined));
    assert.equal(got[0]!.readUInt32LE(8), 100);
    assert.equal(got[0]!.length, 12 + 4096);
    // A chunk for vm-a, as a barrier: by the time it arrives, anything spied on vm-b would have too.
    const own: Buffer[] = [];
    spy.on('message', (t, p) => t === 'fleet/vm-a/update/chunk' && own.push(p));
    await spy.subscribeAsync('fleet/vm-a/update/chunk', { qos: 0 });
    await spy.publishAsync('fleet/vm-a/update/get', JSON.stringify({ image: sha, offset: 0, length: 16 }), { qos: 0 });
    await eventually('vm-a\'s own chunk', async () => (own.length > 0 ? true : undefined));
    assert.deepEqual(spied, ['fleet/vm-a/update/chunk'], 'vm-a saw neither vm-b\'s chunks nor anyone\'s requests');
    // The forged request went out before vm-a's own on the same connection: had Mosquitto passed it, it would be counted.
    assert.equal(gw.chunks!.stats.requests, requests + 2, 'vm-b\'s and vm-a\'s own requests reached the gateway, the forged one did not');
    assert.equal(got.length, 1, 'vm-b got the answer to its own request only');
    await spy.endAsync();
    await b.endAsync();
  });

  it('carries a simulated machine\'s journal and commands over TLS with its own login', async () => {
    const host = await MachineHost.start(usMachine(), {
      target: 'sim',
      machineId: 'vm-c',
      network: { url, ca: readFileSync(tls.ca) },
      config: { ...keys['vm-c']!, uplink: { host: '127.0.0.1', port: broker.port, user: 'vm-c', password: pw['vm-c']! } },
    });
    try {
      assert.ok((await synced(host, 120000)) > 0);
      const c = await gw.commands.issue('vm-c', 'set-prices', { prices: { A1: 140 } });
      for (const until = Date.now() + 20000; Date.now() < until; ) {
        await host.run(200);
        await gw.ingester.flush();
        if ((await gw.commands.get(c.id))?.status === 'applied') break;
      }
      assert.equal((await gw.commands.get(c.id))?.status, 'applied');
      assert.equal((await host.status()).slots.find((s) => s.code === 'A1')!.price, 140);
    } finally {
      await host.close();
    }
  });
});

describe('the shipped mosquitto.conf (its listeners, logins and client ids, with a throwaway CA on loopback)', function () {
  this.timeout(120000);
  const CONF = fileURLToPath(new URL('../../../gateway/deploy/mosquitto.conf', import.meta.url));
  let broker: { port: number; process: ChildProcess } | undefined;
  let machinesUrl: string;
  let gatewaysUrl: string;
  let ca: Buffer;
  let db: Db;
  const secret = 'gateway-secret-shipped-conf';
  const pw: Record<string, string> = {};
  const gateways: Gateway[] = [];

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vf-shipped-'));
    const tls = throwawayCa(dir);
    ca = readFileSync(tls.ca);
    db = await openDb();
    const { CommandService } = await import('../../gateway/commands/service.js');
    const { migrate } = await import('../../gateway/store/migrations.js');
    const { freePort } = await import('../../bench/lib/mosquitto.js');
    await migrate(db);
    const svc = new CommandService(db, () => {});
    const machinesPasswd = join(dir, 'passwd');
    const gatewaysPasswd = join(dir, 'passwd-gateways');
    execFileSync('mosquitto_passwd', ['-c', '-b', gatewaysPasswd, 'gateway', secret]);
    for (const [i, id] of ['vm-a', 'vm-b'].entries()) {
      pw[id] = (await svc.provision(id)).mqttPassword!;
      execFileSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', machinesPasswd, id, pw[id]!]);
    }
    svc.close();
    mkdirSync(join(dir, 'data'));
    chmodSync(dir, 0o755);
    for (const f of readdirSync(dir)) chmodSync(join(dir, f), f === 'data' ? 0o777 : 0o644);
    const [machinesPort, gatewaysPort] = [await freePort(), await freePort()];
    // The shipped file as it is, with this run's ports, certificates and files.
    const shipped = readFileSync(CONF, 'utf8');
    const conf = shipped
      .replace(/^listener 8883$/m, `listener ${machinesPort} 127.0.0.1`)
      .replace(/^listener 8884$/m, `listener ${gatewaysPort} 127.0.0.1`)
      .replaceAll('/etc/mosquitto/certs/ca.crt', tls.ca)
      .replaceAll('/etc/mosquitto/certs/broker.crt', tls.cert)
      .replaceAll('/etc/mosquitto/certs/broker.key', tls.key)
      .replaceAll('/etc/mosquitto/passwd-gateways', gatewaysPasswd)
      .replaceAll('/etc/mosquitto/passwd', machinesPasswd)
      .replaceAll('/etc/mosquitto/acl', ACL)
      .replace(/^persistence_location .*$/m, `persistence_location ${join(dir, 'data')}/`);
    assert.notEqual(conf, shipped);
    assert.doesNotMatch(conf, /\/etc\/mosquitto|listener 888[34]$/m, 'every path and port of the shipped file replaced');
    broker = await startMosquitto({ port: machinesPort, raw: conf, dir });
    machinesUrl = `mqtts://127.0.0.1:${machinesPort}`;
    gatewaysUrl = `mqtts://127.0.0.1:${gatewaysPort}`;
    // With the chunk server: its subscription and probe pass the shipped ACL too.
    const firmware = new FirmwareRegistry(db);
    for (const n of [1, 2]) {
      gateways.push(await Gateway.start({ mqttUrl: gatewaysUrl, db, username: 'gateway', password: secret, ca, shareGroup: 'vendfleet', clientId: `vf-shipped-gw-${n}`, updates: { source: firmware } }));
    }
  });
  after(async () => {
    for (const g of gateways) await g.close();
    broker?.process.kill('SIGKILL');
    await db?.close();
  });

  it('keeps a machine from taking over another\'s session: on the machines\' listener the client id is the user name', async () => {
    const b = await connectMqtt(machinesUrl, { ca, clientId: 'vm-b', username: 'vm-b', password: pw['vm-b']! });
    let kicked = false;
    b.on('close', () => (kicked = true));
    // vm-a asks for vm-b's client id: Mosquitto gives it "vm-a" instead, so vm-b stays connected.
    const a = await connectMqtt(machinesUrl, { ca, clientId: 'vm-b', username: 'vm-a', password: pw['vm-a']! });
    try {
      // A round trip through the broker on vm-b's connection proves it is still there after vm-a's CONNACK.
      const gone = new Promise<never>((_, reject) => b.once('close', () => reject(new Error('vm-b was disconnected: its session was taken over'))));
      await Promise.race([b.publishAsync('fleet/vm-b/status', JSON.stringify({ v: 1, online: true }), { qos: 1 }), gone]);
      await a.publishAsync('fleet/vm-a/status', JSON.stringify({ v: 1, online: true }), { qos: 1 });
      await Promise.race([b.publishAsync('fleet/vm-b/status', JSON.stringify({ v: 1, online: true }), { qos: 1 }), gone]);
      assert.equal(kicked, false, 'vm-b was not disconnected');
      assert.ok(b.connected);
    } finally {
      await a.endAsync();
      await b.endAsync();
    }
  });

  it('gives the gateways a listener of their own: several keep their own client ids, machines cannot log in there', async () => {
    assert.ok(gateways.every((g) => g.connected), 'both gateways (same user, different client ids) stay connected');
    for (const g of gateways) {
      assert.deepEqual(g.health().mqtt.map((m) => m.name), ['ingest', 'audits', 'updates']);
      assert.equal(g.health().mqtt.every((m) => m.subscription === 'receiving'), true, JSON.stringify(g.health().mqtt));
    }
    await assert.rejects(connectMqtt(gatewaysUrl, { ca, clientId: 'vm-a', username: 'vm-a', password: pw['vm-a']! }), /Not authorized|Bad username/i);
  });
});
