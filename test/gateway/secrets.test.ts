/**
 * Secrets never reach the gateway's logs: the production entry point
 * (`npm run gateway`, embedded store and broker) runs as its own process,
 * every secret is made and used (the first admin token, a machine's
 * command key and MQTT password from provisioning, a rotated key inside a
 * signed command, an operator's alert webhook secret and the token in its
 * URL's path, delivered to a receiver that keeps failing) and wrong ones
 * are tried; then its whole output is searched for each of them.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectMqtt } from '../lib/mqtt.js';

const main = fileURLToPath(new URL('../../gateway/main.js', import.meta.url));

describe('secrets and the gateway log', function () {
  // Opening a new embedded store takes a minute on a loaded machine: the start is waited for up to 150 s.
  this.timeout(240000);

  it('writes no token, key or password to its output, however they are used', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vf-secrets-'));
    // API_PORT is taken by something else more often than not on a CI box: the gateway falls back to a free port.
    const child = spawn(process.execPath, [main], { env: { ...process.env, DATA_DIR: dir, API_PORT: '8080', DATABASE_URL: '', MQTT_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const secrets: [string, string][] = [];
    // The operator's webhook receiver: down (503), so the gateway retries and says so in its log.
    const receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(503).end());
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      for (let i = 0; i < 1500 && !/admin API token is in/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      const api = /operator API on (http:\/\/[\d.:]+)/.exec(out)?.[1];
      const broker = /embedded MQTT broker on (mqtt:\/\/[\d.:]+)/.exec(out)?.[1];
      assert.ok(api && broker, out);
      const file = join(dir, 'admin-token');
      assert.equal(statSync(file).mode & 0o777, 0o600, 'the token file is the owner\'s alone');
      const token = readFileSync(file, 'utf8').trim();
      assert.match(token, /^vf_/);
      secrets.push(['admin token', token]);
      const call = async (method: string, path: string, body?: unknown, bearer = token): Promise<{ status: number; json: Record<string, unknown> }> => {
        const res = await fetch(api + path, { method, headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
        return { status: res.status, json: (await res.json()) as Record<string, unknown> };
      };

      const p = await call('POST', '/machines', { id: 'vm-secret' });
      assert.equal(p.status, 201);
      const commandKey = String(p.json['commandKey']);
      const mqttPassword = String(p.json['mqttPassword']);
      assert.match(commandKey, /^[0-9a-f]{64}$/);
      assert.ok(mqttPassword.length >= 16);
      secrets.push(['command key', commandKey], ['MQTT password', mqttPassword]);

      // Wrong secrets are not logged either (a typo of the real one is often most of it).
      const wrongToken = token.slice(0, -4) + 'XXXX';
      secrets.push(['wrong token', wrongToken]);
      assert.equal((await call('GET', '/machines', undefined, wrongToken)).status, 401);
      const wrongPassword = mqttPassword.slice(0, -4) + 'YYYY';
      secrets.push(['wrong MQTT password', wrongPassword]);
      await assert.rejects(connectMqtt(broker, { clientId: 'vm-secret', username: 'vm-secret', password: wrongPassword }));

      // The machine logs in and takes a key rotation: the new key travels inside the signed command.
      const machine = await connectMqtt(broker, { clientId: 'vm-secret', username: 'vm-secret', password: mqttPassword });
      // The rotation itself, not whatever reaches the topic first.
      const got = new Promise<Buffer>((resolve) =>
        machine.on('message', (_t, payload) => {
          if (/"type":"rotate-key"/.test(Buffer.from(payload).toString())) resolve(Buffer.from(payload));
        }),
      );
      await machine.subscribeAsync('fleet/vm-secret/commands', { qos: 1 });
      await machine.publishAsync('fleet/vm-secret/status', JSON.stringify({ v: 1, online: true }), { qos: 1, retain: true });
      const rotation = await call('POST', '/machines/vm-secret/commands', { type: 'rotate-key' });
      assert.ok(rotation.status === 201 || rotation.status === 202, JSON.stringify(rotation.json)); // sent now, or once the status message is stored
      const command = (await got).toString();
      const body = JSON.parse(command.slice(command.indexOf('\n') + 1)) as { args: { key: string } };
      assert.match(body.args.key, /^[0-9a-f]{64}$/);
      secrets.push(['rotated key', body.args.key], ['command signature', command.split('\n')[0]!.split(' ')[2]!]);
      // The operator's own alert webhook, its URL carrying a token in the path, signed with a secret; an empty slot alerts.
      const pathToken = 'hook-path-token-5f1e2d3c4b5a6978';
      const hookSecret = 'operator-hook-secret-0a1b2c3d';
      secrets.push(['webhook path token', pathToken], ['webhook secret', hookSecret]);
      const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/${pathToken}`;
      assert.equal((await call('PUT', '/alert-webhook', { url: hookUrl, secret: hookSecret })).status, 200);
      const slots = [{ code: 'A1', product: 'Chips', qty: 0, capacity: 10, price: 125 }];
      await machine.publishAsync('fleet/vm-secret/telemetry', JSON.stringify({ v: 1, t: 1, fw: 'test', state: 'IDLE', slots }), { qos: 1 });
      // Bad input that the gateway does log (a rejection with its detail).
      await machine.publishAsync('fleet/vm-secret/events', `{"v":1,"events":[{"seq":1,"t":0,"type":"x","key":"${commandKey}"`, { qos: 1 });
      await machine.endAsync();
      // Until the gateway has logged that rejection (bounded): the log is read only once it holds everything asserted below.
      for (let i = 0; i < 600 && !(/rejected \(malformed-json/.test(out) && /operator default's webhook http:\/\/127\.0\.0\.1:\d+ answered 503/.test(out)); i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      child.kill('SIGINT');
      receiver.close();
    }
    assert.equal(await closed, 0, out);
    rmSync(dir, { recursive: true, force: true });
    // The log has what an operator needs, so its silence about secrets is not an empty log's.
    assert.match(out, /embedded MQTT broker on/);
    assert.match(out, /rejected \(malformed-json/);
    assert.match(out, /operator default's webhook http:\/\/127\.0\.0\.1:\d+ answered 503; retrying/);
    assert.ok(secrets.length === 9);
    for (const [what, secret] of secrets) {
      assert.ok(secret.length >= 16, `${what} is a real secret`);
      assert.ok(!out.includes(secret), `the ${what} appears in the gateway's output:\n${out}`);
    }
  });
});
