/**
 * vendctl rollout end to end against a running gateway (npm run gateway:
 * gateway/main.js on the embedded default, its broker with logins and
 * ACLs), machines at protocol level each logged in as itself
 * (bench/lib/update-fleet.ts): an image uploaded with vendctl, tags set,
 * a rollout to a tag followed by `rollout watch` to its end (0, its bars
 * full), one to a machine that rolls back followed to its halt (1, the
 * machine and its reason shown), list, show, cancel, and what vendctl
 * refuses before asking the gateway. The bars themselves, pure.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bench/lib/mosquitto.js';
import { UpdateFleet } from '../../bench/lib/update-fleet.js';
import { bar, renderRollout, type WatchedRollout } from '../../tools/vendctl-rollout.js';
import { eventually } from './backends.js';
import { simImage } from './firmware-fixtures.js';

const gatewayMain = fileURLToPath(new URL('../../gateway/main.js', import.meta.url));
const vendctl = fileURLToPath(new URL('../../tools/vendctl.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [vendctl, '--json', ...args], { env, maxBuffer: 16 * 1024 * 1024, timeout: 90000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const json = <T>(r: Run): T => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
};

const zero = { pending: 0, downloading: 0, waiting: 0, rebooting: 0, confirmed: 0, 'rolled-back': 0, failed: 0 };

describe('vendctl rollout: the bars', () => {
  it('draws confirmed, failed, under way and not started, always the same width', () => {
    assert.equal(bar({ ...zero, confirmed: 5, failed: 1, downloading: 2, pending: 2 }, 10, 10), '#####x>>..');
    assert.equal(bar({ ...zero, pending: 900 }, 900, 30), '.'.repeat(30));
    assert.equal(bar({ ...zero, confirmed: 900 }, 900, 30), '#'.repeat(30));
    assert.equal(bar(zero, 0, 8), ' '.repeat(8), 'an empty wave');
    for (let n = 0; n <= 7; n++) assert.equal(bar({ ...zero, confirmed: n, 'rolled-back': 7 - n }, 7, 30).length, 30);
  });

  it('shows a rollout: a line per wave, one overall, and who failed and why', () => {
    const r: WatchedRollout = {
      id: 'r0123456789ab',
      image: { version: '1.4.0' },
      state: 'halted',
      wave: 2,
      waveCount: 2,
      total: 10,
      counts: { ...zero, confirmed: 3, 'rolled-back': 2, pending: 5 },
      reason: 'wave 2 of 2: 2 of 9 machines failed or rolled back',
      waves: [
        { wave: 1, percent: 10, size: 1, counts: { ...zero, confirmed: 1 }, state: 'done' },
        { wave: 2, percent: 100, size: 9, counts: { ...zero, confirmed: 2, 'rolled-back': 2, pending: 5 }, state: 'current' },
      ],
      problems: [{ machine: 'vm-0007', state: 'rolled-back', reason: 'probation: broker' }],
      active: [],
    };
    const text = renderRollout(r);
    assert.match(text, /^rollout r0123456789ab of 1\.4\.0: halted, wave 2 of 2 \(wave 2 of 2: 2 of 9/);
    assert.match(text, /\n {2}wave 1 +10 % {2}\[#{30}\] +1\/1 +confirmed 1\n/);
    assert.match(text, /\n {2}wave 2 +100 % {2}\[#{7}x{7}\.{16}\] +4\/9 +confirmed 2, rolled-back 2\n/);
    assert.match(text, /\n {2}overall +\[#{9}x{6}\.{15}\] +5\/10 +confirmed 3, rolled-back 2\n/);
    assert.match(text, /\n {2}rolled-back vm-0007: probation: broker$/);
  });
});

describe('vendctl rollout against a running gateway', function () {
  this.timeout(240000);
  let dir: string;
  let dataDir: string;
  let child: ChildProcess;
  let log = '';
  let closed: Promise<number | null>;
  let env: NodeJS.ProcessEnv;
  let fleet: UpdateFleet | undefined;
  const machines = ['vm-0101', 'vm-0102', 'vm-0103', 'vm-0104'];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vf-vendctl-rollout-'));
    dataDir = join(dir, 'data');
    const port = await freePort();
    const base: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, API_PORT: String(port), GATEWAY_CLIENT_ID: `vf-ro-${process.pid}` };
    for (const k of ['MQTT_URL', 'DATABASE_URL', 'VENDFLEET_RELEASE_KEYS']) delete base[k];
    child = spawn(process.execPath, [gatewayMain], { env: base, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    closed = new Promise((resolve) => child.on('close', (code) => resolve(code)));
    const url = await eventually('the operator API', async () => /operator API on (http:\/\/[\d.:]+)/.exec(log)?.[1], 120000);
    const tokenFile = join(dataDir, 'admin-token');
    await eventually('the first admin token', async () => (existsSync(tokenFile) && readFileSync(tokenFile, 'utf8').trim().length > 0 ? true : undefined));
    env = { ...process.env, VENDFLEET_URL: url, VENDFLEET_TOKEN: readFileSync(tokenFile, 'utf8').trim() };
    // A release key the gateway knows, and an image of 1.1.0.
    assert.equal((await run(['firmware', 'keygen', join(dir, 'release')], env)).code, 0);
    copyFileSync(join(dir, 'release.pub.pem'), join(dataDir, 'release-keys.pem'));
    writeFileSync(join(dir, 'fw.js'), simImage('1.1.0', { size: 20000, seed: 7 }));
    json(await run(['firmware', 'upload', join(dir, 'fw.js'), '--version', '1.1.0', '--key', join(dir, 'release.pem')], env));
    // The machines, provisioned with vendctl, each on its own login.
    const made = new Map<string, { commandKey: string; mqttPassword: string }>();
    for (const m of machines) made.set(m, json(await run(['provision', m], env)));
    const brokerUrl = /embedded MQTT broker on (mqtt:\/\/[\d.:]+)/.exec(log)![1]!;
    fleet = await UpdateFleet.connect(
      brokerUrl,
      machines.map((m) => ({ id: m, key: made.get(m)!.commandKey, running: '1.0.0', script: m === 'vm-0104' ? ('rollback' as const) : ('confirm' as const) })),
      { passwords: new Map(machines.map((m) => [m, made.get(m)!.mqttPassword])) },
    );
    await fleet.hello();
    await eventually('the machines on 1.0.0', async () => {
      const list = json<{ machines: { id: string; firmware: string | null }[] }>(await run(['machines'], env)).machines;
      return list.filter((x) => x.firmware === '1.0.0').length === 4 ? true : undefined;
    }, 30000);
  });
  after(async () => {
    await fleet?.close();
    child?.kill('SIGINT');
    if (closed) assert.equal(await closed, 0, log);
  });

  it('tags machines, rolls an image out to a tag, and watches it to its end', async () => {
    for (const m of machines.slice(0, 3)) assert.deepEqual(json<{ tags: string[] }>(await run(['tags', m, 'lobby,floor-2'], env)).tags, ['floor-2', 'lobby']);
    const bad = await run(['tags', 'vm-0101', 'Lobby!'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /400 bad-request/);
    const r = json<{ id: string; total: number; waves: { size: number }[] }>(await run(['rollout', 'create', '--version', '1.1.0', '--tag', 'lobby', '--waves', '34,100', '--halt-at', '1'], env));
    assert.deepEqual([r.total, r.waves.map((w) => w.size)], [3, [2, 1]]);
    const w = await run(['rollout', 'watch', r.id, '--every', '100', '--for', '60'], env);
    assert.equal(w.code, 0, w.stderr + w.stdout);
    const lastPicture = w.stdout.trim().split('\n\n').at(-1)!;
    assert.match(lastPicture, new RegExp(`^rollout ${r.id} of 1\\.1\\.0: done, wave 2 of 2`));
    assert.match(lastPicture, /\n {2}overall +\[#{30}\] +3\/3 +confirmed 3$/);
    assert.ok(w.stdout.split('\n\n').length >= 2, 'it drew the rollout as it went');
    // Their telemetry after the restart says so too (it may land a moment after the event that confirmed).
    const versions = async (): Promise<string> => JSON.stringify(json<{ machines: { id: string; firmware: string | null }[] }>(await run(['machines'], env)).machines.map((x) => [x.id, x.firmware]));
    const want = JSON.stringify([['vm-0101', '1.1.0'], ['vm-0102', '1.1.0'], ['vm-0103', '1.1.0'], ['vm-0104', '1.0.0']]);
    await eventually('the versions shown', async () => ((await versions()) === want ? true : undefined), 20000);
  });

  it('watches a rollout to its halt, shows the machine that rolled back and why, and cancels it', async () => {
    const r = json<{ id: string }>(await run(['rollout', 'create', '--version', '1.1.0', '--machines', 'vm-0104', '--halt-at', '1'], env));
    const w = await run(['rollout', 'watch', r.id, '--every', '100', '--for', '60'], env);
    assert.equal(w.code, 1, w.stdout);
    assert.match(w.stderr, new RegExp(`rollout ${r.id} halted: vendctl rollout resume or cancel it`));
    assert.match(w.stdout, /rolled-back vm-0104: probation: broker/);
    const shown = json<{ state: string; problems: { machine: string; state: string; reason: string }[] }>(await run(['rollout', 'show', r.id], env));
    assert.deepEqual([shown.state, shown.problems.map((p) => [p.machine, p.state, p.reason])], ['halted', [['vm-0104', 'rolled-back', 'probation: broker']]]);
    const listed = json<{ rollouts: { id: string; state: string }[] }>(await run(['rollout', 'list', '--unfinished'], env)).rollouts;
    assert.deepEqual(listed.map((x) => [x.id, x.state]), [[r.id, 'halted']]);
    // One unfinished rollout per machine: the halted one holds vm-0104.
    const busy = await run(['rollout', 'create', '--version', '1.1.0', '--machines', 'vm-0104'], env);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, new RegExp(`409 in-rollout: .*vm-0104 \\(${r.id}\\)`));
    assert.equal(json<{ state: string }>(await run(['rollout', 'cancel', r.id], env)).state, 'cancelled');
    const again = await run(['rollout', 'pause', r.id], env);
    assert.match(again.stderr, /409 rollout-state: rollout r[0-9a-f]{12} is cancelled/);
    const gone = await run(['rollout', 'show', 'r000000000000'], env);
    assert.match(gone.stderr, /404 unknown-rollout/);
    const machinesOf = json<{ machines: { machine: string; state: string }[] }>(await run(['rollout', 'machines', r.id, '--state', 'rolled-back'], env));
    assert.deepEqual(machinesOf.machines.map((m) => [m.machine, m.state]), [['vm-0104', 'rolled-back']]);
  });

  it('refuses what it cannot ask for before asking', async () => {
    const cases: [string[], RegExp][] = [
      [['rollout', 'create', '--all'], /names its image: --image SHA256 or --version V/],
      [['rollout', 'create', '--version', '1.1.0', '--all', '--tag', 'x'], /one target/],
      [['rollout', 'create', '--version', '1.1.0', '--halt-at', '0%'], /--halt-at is a share of a wave \(20%\) or a number of machines \(3\), not 0%/],
      [['rollout', 'create', '--version', '1.1.0', '--waves', '1,ten,100'], /--waves is a whole number, not ten/],
      [['rollout', 'show'], /rollout show needs a rollout id/],
      [['rollout', 'explode'], /rollout create \| list/],
      [['rollout', 'watch', 'r000000000001', '--every', 'soon'], /--every is a whole number/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args, env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    // The gateway's own checks: waves that do not end at 100.
    const r = await run(['rollout', 'create', '--version', '1.1.0', '--all', '--waves', '10,50'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /400 bad-rollout: waves: the last wave is 100/);
  });
});
