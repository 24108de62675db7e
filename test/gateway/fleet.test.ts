/**
 * `npm start`: the embedded broker, gateway and store with a simulated
 * fleet, a live summary, and a clean stop on Ctrl-C, also when port 1883 is
 * already taken on this machine.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const fleet = fileURLToPath(new URL('../../tools/fleet.js', import.meta.url));
const vendctl = fileURLToPath(new URL('../../tools/vendctl.js', import.meta.url));
/** The package's bin, as `npx vendctl` runs it (from the source tree: it runs the built vendctl). */
const bin = fileURLToPath(new URL('../../../tools/bin/vendctl.mjs', import.meta.url));
const root = fileURLToPath(new URL('../../../', import.meta.url));

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
}

function run(args: string[], interruptAfterLine?: RegExp): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fleet, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let interrupted = false;
    const take = (chunk: Buffer): void => {
      out += chunk.toString();
      if (interruptAfterLine && !interrupted && interruptAfterLine.test(out)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('npm start (the simulated fleet)', function () {
  this.timeout(120000);

  it('runs broker, gateway, store and machines, summarises live, and stops after --duration', async () => {
    // A real broker may hold 1883 on this machine (Mosquitto does in CI): the fleet must still start.
    const taken = await portTaken(1883);
    const r = await run(['--machines', '3', '--duration', '8']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /MQTT broker {3}mqtt:\/\/127\.0\.0\.1:\d+/);
    if (taken) assert.match(r.out, /1883 is taken/);
    assert.match(r.out, /fleet store {3}PGlite/);
    assert.match(r.out, /machines online 3\/3 \| sales \d+/);
    const sales = [...r.out.matchAll(/\| sales (\d+) \|/g)].map((m) => Number(m[1]));
    assert.ok(sales.at(-1)! > 0, `sales ${sales.join(', ')}`);
    assert.match(r.out, /unsynced 0 \| rejected 0\nroute driver: \d+ restocks.*\nstopped/);
  });

  it('stops cleanly on Ctrl-C', async () => {
    const r = await run(['--machines', '2'], /machines online 2\/2/);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Ctrl-C: letting the machines finish their customers, then stopping/);
    assert.match(r.out, /stopped\n$/);
  });

  it('keeps a fleet bigger than the CPU can run at full speed live: all come online, Ctrl-C still stops it', async () => {
    // 40 machines at 100x real time are more than two cores simulate: each must slow down, not sprint to catch up and starve the rest.
    const r = await run(['--machines', '40'], /machines online 40\/40/);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /machines online 40\/40 \| sales \d+/);
    assert.match(r.out, /stopped\n$/);
  });

  it('serves the operator API with a first admin token, and vendctl sells through it', async () => {
    const child = spawn(process.execPath, [fleet, '--machines', '2', '--api-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      for (let i = 0; i < 600 && !/machines online 2\/2/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      const url = /operator API {2}(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      const token = /admin token {3}(vf_[\w-]+)/.exec(out)?.[1];
      assert.ok(url && token, out);
      const run = promisify(execFile);
      const env = { ...process.env, VENDFLEET_URL: url, VENDFLEET_TOKEN: token };
      // The package's bin (npx vendctl): listings as tables for people, --json for scripts.
      const table = (await run(process.execPath, [bin, 'machines'], { env })).stdout;
      assert.match(table, /^id +.*online/m, table);
      assert.match(table, /^vm-0001 /m, table);
      assert.match(table, /^vm-0002 /m, table);
      assert.doesNotMatch(table, /\[object Object\]|undefined|NaN/, table);
      const machines = JSON.parse((await run(process.execPath, [bin, 'machines', '--json'], { env })).stdout) as { machines: { id: string; online: boolean }[] };
      assert.deepEqual(machines.machines.map((m) => m.id), ['vm-0001', 'vm-0002']);
      const products = JSON.parse((await run(process.execPath, [vendctl, 'products', 'vm-0001', '--json'], { env })).stdout) as { items: { slot: string }[] };
      const slot = products.items[0]!.slot;
      const bought = JSON.parse((await run(process.execPath, [vendctl, 'purchase', 'vm-0001', slot, '1', '--key', 'test-order-1'], { env })).stdout) as { status: string; dispensed: number };
      assert.equal(bought.status, 'dispensed');
      assert.equal(bought.dispensed, 1);
      const again = JSON.parse((await run(process.execPath, [vendctl, 'purchase', 'vm-0001', slot, '1', '--key', 'test-order-1'], { env })).stdout) as unknown;
      assert.deepEqual(again, bought);
      await assert.rejects(run(process.execPath, [vendctl, 'machines'], { env: { ...env, VENDFLEET_TOKEN: 'vf_wrong' } }), /unauthorized/);
      // An audit read by command, followed to the machine's outcome (--wait), then the EVA-DTS file downloaded as it came.
      const sent = await run(process.execPath, [vendctl, 'send', 'vm-0001', 'audit', '--wait', '--for', '60'], { env });
      assert.equal((JSON.parse(sent.stdout) as { status: string }).status, 'applied', sent.stderr);
      assert.match(sent.stderr, /^command [0-9a-f-]+ \(audit\): applied$/m, sent.stderr);
      let audits: { audits: { id: number; crc: string }[] } = { audits: [] };
      for (let i = 0; i < 100 && audits.audits.length === 0; i++) {
        audits = JSON.parse((await run(process.execPath, [vendctl, 'audits', 'vm-0001', '--json'], { env })).stdout) as typeof audits;
        if (audits.audits.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(audits.audits[0]?.crc, 'ok', JSON.stringify(audits));
      const dex = (await run(process.execPath, [vendctl, 'dex', String(audits.audits[0]!.id)], { env })).stdout;
      assert.match(dex, /^DXS\*VFL0000000\*VA\*V0\/6\*1\r\nST\*001\*0001\r\n[\s\S]*\r\nVA1\*\d+\*[1-9]\d*\*[\s\S]*\r\nDXE\*1\*1\r\n$/);
      // Another maker's file uploaded by an operator.
      const up = JSON.parse((await run(process.execPath, [vendctl, 'upload', join(root, '../shared/fixtures/dex/jof-sample.eva_dts')], { env })).stdout) as { crc: string; summary: { paidVends: { init: { value: number } } } };
      assert.equal(up.crc, 'ok');
      assert.equal(up.summary.paidVends.init.value, 143500);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await closed, 0, out);
  });

  it('refuses bad options with the usage', async () => {
    const r = await run(['--machines', 'lots']);
    assert.equal(r.code, 2);
    assert.match(r.out, /--machines needs an integer from 1 to 500/);
  });
});
