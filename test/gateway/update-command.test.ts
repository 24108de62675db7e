/**
 * The `update` command on the gateway (docs/updates.md "The command"), on
 * both setups, machines played at protocol level through the real broker
 * (bench/lib/update-fleet.ts: each checks its signed commands, fetches the
 * image from the chunk server, reports as a machine does): only admins may
 * send one; the operator names an image and the gateway fills in its facts;
 * a downgrade needs the flag; the image is offered when the command is
 * issued and withdrawn when it is final (confirmed, refused, rolled back,
 * expired, cancelled), and served in between only. The machine's update
 * events are stored, its firmware version shown, a rollback alerted.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { UpdateFleet } from '../../bench/lib/update-fleet.js';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import type { CommandRecord } from '../../gateway/commands/service.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { Gateway } from '../../gateway/gateway.js';
import { BACKENDS, count, eventually, type Backend } from './backends.js';
import { keysFile, signed, simImage, testKey } from './firmware-fixtures.js';

for (const backend of BACKENDS) {
  describe(`the update command: ${backend.name}`, function () {
    this.timeout(90000);
    let b: Backend;
    let gw: Gateway;
    let api: FastifyInstance;
    let registry: FirmwareRegistry;
    let fleet: UpdateFleet;
    const tokens: Record<string, string> = {};
    const key = testKey();
    const tag = `u${process.pid % 10000}${Math.floor(Math.random() * 1e5)}`;
    const id = { good: `${tag}-good`, refuse: `${tag}-refuse`, back: `${tag}-back`, manual: `${tag}-manual`, away: `${tag}-away`, cancel: `${tag}-cancel` };
    const newer = simImage('1.1.0', { size: 9000, seed: 2 });
    const older = simImage('0.9.0', { size: 7000, seed: 3 });
    const same = simImage('1.0.0', { size: 7000, seed: 5 });
    const sha = sha256Hex(newer);

    const call = async (method: 'GET' | 'POST', url: string, role: string, payload?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
      const r = await api.inject({ method, url, headers: { authorization: `Bearer ${tokens[role]}` }, ...(payload !== undefined ? { payload: payload as object } : {}) });
      return { status: r.statusCode, body: r.json() };
    };
    const send = (machine: string, args: Record<string, unknown>, role = 'admin', ttlS?: number): ReturnType<typeof call> =>
      call('POST', `/machines/${machine}/commands`, role, { type: 'update', args, ...(ttlS !== undefined ? { ttlS } : {}) });
    const settled = async (c: string, status: string): Promise<CommandRecord> =>
      eventually(`command ${c} ${status}`, async () => {
        await gw.ingester.flush();
        const r = await gw.commands.get(c);
        return r?.status === status ? r : undefined;
      }, 20000);

    before(async () => {
      b = await backend.open();
      registry = new FirmwareRegistry(b.db, { keyFiles: [{ path: keysFile(key), optional: false }] });
      gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup, updates: { source: registry }, firmware: registry, rollouts: false, alerts: { sweepMs: 0 } });
      await registry.upload(signed(newer, '1.1.0', key));
      await registry.upload(signed(older, '0.9.0', key));
      await registry.upload(signed(same, '1.0.0', key));
      const keys: Record<string, string> = {};
      for (const m of Object.values(id)) keys[m] = (await gw.commands.provision(m)).commandKey;
      api = await buildApi({ db: b.db, commands: gw.commands, alerts: gw.alerts, firmware: registry });
      for (const role of ['admin', 'operator', 'viewer']) tokens[role] = (await createToken(b.db, `update ${role}`, role as 'admin')).token;
      const scripts = { [id.good]: 'confirm', [id.refuse]: 'refuse', [id.back]: 'rollback', [id.manual]: 'manual', [id.cancel]: 'manual' } as const;
      fleet = await UpdateFleet.connect(b.mqttUrl, Object.entries(scripts).map(([m, script]) => ({ id: m, key: keys[m]!, running: '1.0.0', script })));
      await fleet.hello();
      await eventually('the machines online, on 1.0.0', async () => {
        await gw.ingester.flush();
        return (await count(b.db, `SELECT count(*) AS n FROM machine_state WHERE online AND telemetry->>'fw' = '1.0.0' AND machine_id LIKE $1`, [`${tag}-%`])) === 5 ? true : undefined;
      });
    });
    after(async () => {
      await fleet?.close();
      await api?.close();
      await gw?.close();
      await b?.close();
    });

    it('is for admins only', async () => {
      for (const role of ['operator', 'viewer']) {
        const r = await send(id.good, { version: '1.1.0' }, role);
        assert.equal(r.status, 403, role);
        assert.equal(r.body['error'], 'forbidden');
      }
      assert.deepEqual(await registry.offersTo(id.good), [], 'nothing offered on a refusal');
    });

    it('takes an image named, never its facts, and refuses what names no image', async () => {
      const cases: [Record<string, unknown>, number, string, RegExp][] = [
        [{}, 422, 'bad-args', /names its image/],
        [{ version: '1.1.0', size: 5 }, 422, 'bad-args', /"size" is the gateway's to fill in/],
        [{ sha256: sha, source: 'http' }, 422, 'bad-args', /"source"/],
        [{ version: '1.1' }, 422, 'bad-args', /MAJOR\.MINOR\.PATCH/],
        [{ sha256: sha.toUpperCase() }, 422, 'bad-args', /64 lower-case hex/],
        [{ version: '1.1.0', downgrade: 'yes' }, 422, 'bad-args', /downgrade is true or false/],
        [{ version: '9.9.9' }, 404, 'unknown-image', /no image of version 9\.9\.9/],
        [{ sha256: 'ab'.repeat(32) }, 404, 'unknown-image', /no image/],
        [{ sha256: sha, version: '0.9.0' }, 422, 'bad-args', /is version 1\.1\.0, not 0\.9\.0/],
      ];
      for (const [args, status, error, message] of cases) {
        const r = await send(id.good, args);
        assert.deepEqual([r.status, r.body['error']], [status, error], JSON.stringify(args));
        assert.match(String(r.body['message']), message);
      }
      assert.equal(await count(b.db, "SELECT count(*) AS n FROM commands WHERE type = 'update' AND machine_id = $1", [id.good]), 0, 'none stored');
    });

    it('refuses a version not newer than the machine runs, unless downgrade is asked for', async () => {
      for (const version of ['0.9.0', '1.0.0']) {
        const r = await send(id.manual, { version });
        assert.deepEqual([r.status, r.body['error']], [409, 'downgrade'], version);
        assert.match(String(r.body['message']), new RegExp(`runs 1\\.0\\.0; ${version.replace(/\./g, '\\.')} is not newer: say downgrade: true`));
      }
      assert.deepEqual(await registry.offersTo(id.manual), [], 'nothing offered on a refusal');
      const ok = await send(id.manual, { version: '0.9.0', downgrade: true });
      assert.equal(ok.status, 202, JSON.stringify(ok.body));
      const args = ok.body['args'] as Record<string, unknown>;
      assert.deepEqual(args, { version: '0.9.0', size: older.length, sha256: sha256Hex(older), journal: 1, source: 'mqtt', downgrade: true });
      // The machine got exactly that, signed.
      await eventually('the machine has it', async () => (fleet.machine(id.manual).commands.length === 1 ? true : undefined));
      assert.deepEqual(fleet.machine(id.manual).commands[0]!.args, args);
      assert.ok(await gw.commands.cancel(String(ok.body['id'])));
      assert.deepEqual(await registry.offersTo(id.manual), [], 'withdrawn with the cancel');
    });

    it('offers the image with the command, serves it, and withdraws it once the new image confirmed', async () => {
      const r = await send(id.good, { version: '1.1.0', force: true });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      assert.deepEqual(r.body['args'], { version: '1.1.0', size: newer.length, sha256: sha, journal: 1, source: 'mqtt', force: true });
      assert.deepEqual(await registry.offersTo(id.good), [sha], 'offered when issued');
      const done = await settled(String(r.body['id']), 'applied');
      assert.equal(done.outcome?.['phase'], 'confirmed');
      assert.deepEqual(fleet.machine(id.good).refusals, [], 'every chunk served');
      assert.deepEqual(fleet.machine(id.good).outcomes, ['confirmed']);
      assert.deepEqual(await registry.offersTo(id.good), [], 'withdrawn when final');
      // Stored as events, the newest report kept, the version shown.
      assert.deepEqual(
        (await b.db.query<{ type: string; phase: string | null }>("SELECT type, body->>'phase' AS phase FROM events WHERE machine_id = $1 AND type LIKE 'update%' ORDER BY seq", [id.good])).rows.map((x) => `${x.type}:${x.phase ?? ''}`),
        ['update-begin:', 'update:downloaded', 'update:installing', 'update:confirmed'],
      );
      await eventually('telemetry says 1.1.0', async () => {
        await gw.ingester.flush();
        const m = (await call('GET', '/machines', 'viewer')).body['machines'] as { id: string; firmware: string | null }[];
        return m.find((x) => x.id === id.good)?.firmware === '1.1.0' ? true : undefined;
      });
      const detail = (await call('GET', `/machines/${id.good}`, 'viewer')).body;
      assert.equal(detail['firmware'], '1.1.0');
      assert.deepEqual([(detail['update'] as Record<string, unknown>)['phase'], (detail['update'] as Record<string, unknown>)['version']], ['confirmed', '1.1.0']);
      // Done: the chunk server no longer serves it to this machine.
      assert.equal(await registry.offered(id.good, sha), false);
    });

    it('withdraws the offer when the machine refuses the command', async () => {
      const r = await send(id.refuse, { sha256: sha });
      const done = await settled(String(r.body['id']), 'refused');
      assert.equal(done.outcome?.['reason'], 'busy');
      assert.deepEqual(await registry.offersTo(id.refuse), []);
    });

    it('ends in rolled-back when the previous image boots instead, withdraws, and alerts with the reason', async () => {
      const r = await send(id.back, { version: '1.1.0' });
      const done = await settled(String(r.body['id']), 'rolled-back');
      assert.equal(done.outcome?.['reason'], 'probation: broker');
      assert.deepEqual(await registry.offersTo(id.back), []);
      await gw.alerts!.idle();
      const alerts = (await call('GET', `/machines/${id.back}/alerts`, 'viewer')).body['alerts'] as { kind: string; subject: string; message: string; detail: Record<string, unknown> }[];
      const a = alerts.find((x) => x.kind === 'rolled-back');
      assert.ok(a, JSON.stringify(alerts));
      assert.equal(a.subject, '1.1.0');
      assert.equal(a.detail['reason'], 'probation: broker');
      assert.match(a.message, /Firmware 1\.1\.0 rolled back \(probation: broker\)/);
      // Another update that works: the machine reports on it, and the alert closes.
      fleet.machine(id.back).script = 'confirm';
      await eventually('its telemetry says 1.0.0 again', async () => {
        await gw.ingester.flush();
        return (await call('GET', `/machines/${id.back}`, 'viewer')).body['firmware'] === '1.0.0' ? true : undefined;
      });
      const again = await send(id.back, { version: '1.1.0' });
      assert.equal(again.status, 202, JSON.stringify(again.body));
      await settled(String(again.body['id']), 'applied');
      await gw.alerts!.idle();
      const open = (await call('GET', `/machines/${id.back}/alerts`, 'viewer')).body['alerts'] as { kind: string }[];
      assert.deepEqual(open.filter((x) => x.kind === 'rolled-back'), []);
    });

    it('keeps a command the machine took under way past its expiry, and withdraws an untaken one when it expires', async () => {
      // Taken: update-begin says so; it no longer expires, and stays offered.
      const taken = await send(id.manual, { version: '1.1.0' }, 'admin', 1);
      const c = gw.commands;
      await eventually('the machine has it', async () => (fleet.machine(id.manual).commands.length === 2 ? true : undefined));
      const body = fleet.machine(id.manual).commands[1]!;
      await fleet.report(id.manual, { type: 'update-begin', n: body.n, version: '1.1.0', size: newer.length, sha256: sha, journal: 1 });
      await settled(String(taken.body['id']), 'running');
      // Not taken: the machine is away.
      const away = await send(id.away, { version: '1.1.0' }, 'admin', 1);
      assert.equal(away.body['status'], 'queued');
      assert.deepEqual(await registry.offersTo(id.away), [sha]);
      await eventually('expired', async () => {
        await c.expire();
        return (await c.get(String(away.body['id'])))?.status === 'expired' ? true : undefined;
      }, 10000);
      assert.deepEqual(await registry.offersTo(id.away), [], 'withdrawn at expiry');
      assert.equal((await c.get(String(taken.body['id'])))?.status, 'running', 'under way: not expired');
      assert.deepEqual(await registry.offersTo(id.manual), [sha]);
      // The machine's own failure ends it.
      await fleet.report(id.manual, { type: 'update', n: body.n, phase: 'failed', version: '1.1.0', reason: 'slot-failed' });
      const failed = await settled(String(taken.body['id']), 'failed');
      assert.equal(failed.outcome?.['reason'], 'slot-failed');
      assert.deepEqual(await registry.offersTo(id.manual), []);
    });

    it('lets an operator call off an update sent by hand, under way or not: cancelled, its image no longer offered; nothing else is called off', async () => {
      const r = await send(id.cancel, { version: '1.1.0' });
      const command = String(r.body['id']);
      await eventually('the machine has it', async () => (fleet.machine(id.cancel).commands.length === 1 ? true : undefined));
      const body = fleet.machine(id.cancel).commands[0]!;
      await fleet.report(id.cancel, { type: 'update-begin', n: body.n, version: '1.1.0', size: newer.length, sha256: sha, journal: 1 });
      await settled(command, 'running');
      assert.deepEqual(await registry.offersTo(id.cancel), [sha]);
      const viewer = await call('POST', `/commands/${command}/cancel`, 'viewer');
      assert.deepEqual([viewer.status, viewer.body['error']], [403, 'forbidden']);
      const off = await call('POST', `/commands/${command}/cancel`, 'operator');
      assert.deepEqual([off.status, off.body['id'], off.body['status']], [200, command, 'cancelled'], JSON.stringify(off.body));
      assert.deepEqual(await registry.offersTo(id.cancel), [], 'withdrawn');
      assert.equal(await registry.offered(id.cancel, sha), false, 'the chunk server serves it no more');
      // What the machine says after is kept, and moves the command no more.
      await fleet.report(id.cancel, { type: 'update', n: body.n, phase: 'failed', version: '1.1.0', reason: 'source-refused' });
      await eventually('the report stored', async () => {
        await gw.ingester.flush();
        return (await count(b.db, "SELECT count(*) AS n FROM machine_updates WHERE machine_id = $1 AND phase = 'failed'", [id.cancel])) === 1 ? true : undefined;
      });
      assert.equal((await gw.commands.get(command))?.status, 'cancelled');
      const again = await call('POST', `/commands/${command}/cancel`, 'operator');
      assert.deepEqual([again.status, again.body['error']], [409, 'command-state']);
      assert.match(String(again.body['message']), /is cancelled already/);
      // Queued for a machine away: called off before it ever went out.
      const queued = await send(id.away, { version: '1.1.0' });
      assert.equal(queued.body['status'], 'queued');
      const offQueued = await call('POST', `/commands/${String(queued.body['id'])}/cancel`, 'operator');
      assert.deepEqual([offQueued.status, offQueued.body['status']], [200, 'cancelled']);
      assert.deepEqual(await registry.offersTo(id.away), []);
      // Other commands are the machine's to apply as they come; an unknown command is a 404.
      const lock = await call('POST', `/machines/${id.cancel}/commands`, 'operator', { type: 'lock' });
      const notUpdate = await call('POST', `/commands/${String(lock.body['id'])}/cancel`, 'operator');
      assert.deepEqual([notUpdate.status, notUpdate.body['error']], [422, 'bad-command']);
      assert.match(String(notUpdate.body['message']), /only an update command is called off/);
      assert.notEqual((await gw.commands.get(String(lock.body['id'])))?.status, 'cancelled');
      const unknown = await call('POST', '/commands/00000000-0000-4000-8000-000000000000/cancel', 'operator');
      assert.deepEqual([unknown.status, unknown.body['error']], [404, 'unknown-command']);
    });

    it('refuses a hostile update event on its own, and takes the rest of the message', async () => {
      const m = fleet.machine(id.manual);
      const before = m.seq;
      await fleet.report(
        id.manual,
        { type: 'update', n: 1, phase: 'confirmed', version: '1.1.0' },
        { type: 'update-begin', n: 2, version: '1.1.0', size: 10, sha256: 'XYZ', journal: 1 },
        { type: 'update', n: 3, phase: 'exploded', version: '1.1.0' },
        { type: 'update', n: 4, phase: 'failed', version: '1.1.0', reason: 'x'.repeat(121) },
        { type: 'update', n: 5, phase: 'rolled-back', version: '1.1.0', reason: 'crash' },
      );
      await eventually('stored', async () => {
        await gw.ingester.flush();
        return (await count(b.db, 'SELECT count(*) AS n FROM refused_events WHERE machine_id = $1 AND seq >= $2', [id.manual, before])) === 3 ? true : undefined;
      });
      const refused = (await b.db.query<{ reason: string }>('SELECT reason FROM refused_events WHERE machine_id = $1 AND seq >= $2 ORDER BY seq', [id.manual, before])).rows.map((x) => x.reason);
      assert.match(refused[0]!, /^sha256 must be a SHA-256/);
      assert.match(refused[1]!, /^phase must be one of downloaded, failed/);
      assert.match(refused[2]!, /^reason is 121 characters long; at most 120/);
      assert.equal(await count(b.db, "SELECT count(*) AS n FROM events WHERE machine_id = $1 AND seq >= $2 AND type = 'update'", [id.manual, before]), 2);
      const report = (await b.db.query<{ phase: string; reason: string }>('SELECT phase, reason FROM machine_updates WHERE machine_id = $1', [id.manual])).rows[0];
      assert.deepEqual(report, { phase: 'rolled-back', reason: 'crash' });
    });
  });
}
