/**
 * vendctl firmware end to end against a running gateway (npm run gateway:
 * gateway/main.js on the embedded default, its own data directory): make
 * a release key, upload before and after the gateway knows its public half
 * (the data directory's release-keys.pem, read at each upload), list,
 * show, download the same bytes, upload again, a refused upload, an
 * update sent by hand and called off, the signature for curl, delete.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bench/lib/mosquitto.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { eventually } from './backends.js';
import { espImage, simImage } from './firmware-fixtures.js';

const gatewayMain = fileURLToPath(new URL('../../gateway/main.js', import.meta.url));
const vendctl = fileURLToPath(new URL('../../tools/vendctl.js', import.meta.url));

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [vendctl, '--json', ...args], { env, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString('utf8') });
    });
  });
}

const json = <T>(r: Run): T => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString('utf8')) as T;
};

describe('vendctl firmware against a running gateway', function () {
  this.timeout(180000);
  let dir: string;
  let dataDir: string;
  let child: ChildProcess;
  let log = '';
  let closed: Promise<number | null>;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vf-vendctl-fw-'));
    dataDir = join(dir, 'data');
    const port = await freePort();
    const base: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, API_PORT: String(port), GATEWAY_CLIENT_ID: `vf-fw-${process.pid}` };
    // The embedded default: neither an external broker nor PostgreSQL.
    for (const k of ['MQTT_URL', 'DATABASE_URL', 'VENDFLEET_RELEASE_KEYS']) delete base[k];
    child = spawn(process.execPath, [gatewayMain], { env: base, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    closed = new Promise((resolve) => child.on('close', (code) => resolve(code)));
    const url = await eventually('the operator API', async () => /operator API on (http:\/\/[\d.:]+)/.exec(log)?.[1], 120000);
    const tokenFile = join(dataDir, 'admin-token');
    await eventually('the first admin token', async () => (existsSync(tokenFile) && readFileSync(tokenFile, 'utf8').trim().length > 0 ? true : undefined));
    env = { ...process.env, VENDFLEET_URL: url, VENDFLEET_TOKEN: readFileSync(tokenFile, 'utf8').trim() };
  });
  after(async () => {
    child?.kill('SIGINT');
    if (closed) assert.equal(await closed, 0, log);
  });

  it('makes a release key pair, never over an existing one', async () => {
    assert.match(log, /firmware: no release keys/);
    const made = await run(['firmware', 'keygen', join(dir, 'release')], env);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout.toString(), /^[0-9a-f]{16}\n$/);
    assert.equal(statSync(join(dir, 'release.pem')).mode & 0o777, 0o600, 'the private key readable by its owner only');
    assert.match(readFileSync(join(dir, 'release.pub.pem'), 'utf8'), /^-----BEGIN PUBLIC KEY-----/);
    const before = readFileSync(join(dir, 'release.pem'), 'utf8');
    const again = await run(['firmware', 'keygen', join(dir, 'release.pem')], env);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /EEXIST|exists/);
    assert.equal(readFileSync(join(dir, 'release.pem'), 'utf8'), before);
  });

  it('uploads, lists, shows and downloads an image once the gateway knows the key', async () => {
    const file = join(dir, 'firmware.js');
    const bytes = simImage('1.4.0', { journal: 6, size: 300000 });
    writeFileSync(file, bytes);
    const upload = ['firmware', 'upload', file, '--version', '1.4.0', '--key', join(dir, 'release.pem'), '--notes', 'Faster change.\nFewer jams.'];
    const refused = await run(upload, env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /422 unknown-key: release key [0-9a-f]{16} is not one this gateway knows|knows no release keys/);
    // Given to the gateway without a restart: its data directory's release-keys.pem.
    copyFileSync(join(dir, 'release.pub.pem'), join(dataDir, 'release-keys.pem'));
    const up = await run(upload, env);
    const image = json<{ sha256: string; version: string; size: number; notes: string; uploadedBy: string }>(up);
    assert.match(up.stderr, /uploading .* as 1\.4\.0: 300000 bytes, sha256 [0-9a-f]{64}, signed by release key/);
    assert.deepEqual([image.sha256, image.version, image.size, image.notes, image.uploadedBy], [sha256Hex(bytes), '1.4.0', 300000, 'Faster change.\nFewer jams.', 'first admin']);
    const list = json<{ images: { sha256: string }[] }>(await run(['firmware', 'list'], env));
    assert.deepEqual(list.images.map((i) => i.sha256), [image.sha256]);
    assert.equal(json<{ version: string }>(await run(['firmware', 'show', image.sha256], env)).version, '1.4.0');
    const down = await run(['firmware', 'download', image.sha256], env);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(down.stdout, bytes, 'the same bytes');
    // Again: the image stored before.
    assert.equal(json<{ sha256: string }>(await run(upload, env)).sha256, image.sha256);
    // A version the image itself contradicts.
    const lie = await run(['firmware', 'upload', file, '--version', '1.4.1', '--key', join(dir, 'release.pem')], env);
    assert.equal(lie.code, 1);
    assert.match(lie.stderr, /422 bad-image: the image says it is version 1\.4\.0, not 1\.4\.1/);
    const noKey = await run(['firmware', 'upload', file, '--version', '1.4.0'], env);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /--key/);
  });

  it('sends an update by hand and calls it off', async () => {
    json(await run(['provision', 'vm-fw-cancel'], env));
    const sent = json<{ id: string; status: string; args: { version: string } }>(await run(['send', 'vm-fw-cancel', 'update', '{"version":"1.4.0"}'], env));
    // The machine has never been online: the command waits for it.
    assert.deepEqual([sent.status, sent.args.version], ['queued', '1.4.0']);
    assert.equal(json<{ status: string }>(await run(['cancel', sent.id], env)).status, 'cancelled');
    assert.equal(json<{ status: string }>(await run(['command', sent.id], env)).status, 'cancelled');
    const again = await run(['cancel', sent.id], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /409 command-state: command [0-9a-f-]{36} is cancelled already/);
  });

  it('signs for curl, and the gateway takes that signature; deletes an image nothing uses', async () => {
    const file = join(dir, 'app.bin');
    const bytes = espImage(50000, 9);
    writeFileSync(file, bytes);
    const s = json<{ sha256: string; size: number; version: string; key: string; signature: string }>(await run(['firmware', 'sign', file, '--version', '2.0.0', '--key', join(dir, 'release.pem')], env));
    assert.deepEqual([s.sha256, s.size, s.version], [sha256Hex(bytes), 50000, '2.0.0']);
    const q = new URLSearchParams({ version: '2.0.0', signature: s.signature });
    const r = await fetch(`${env['VENDFLEET_URL']}/firmware?${q.toString()}`, { method: 'POST', headers: { authorization: `Bearer ${env['VENDFLEET_TOKEN']}`, 'content-type': 'application/octet-stream' }, body: bytes });
    assert.equal(r.status, 201, await r.clone().text());
    const gone = json<{ deleted: { version: string } }>(await run(['firmware', 'delete', s.sha256], env));
    assert.equal(gone.deleted.version, '2.0.0');
    const again = await run(['firmware', 'show', s.sha256], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /404 unknown-image/);
  });
});
