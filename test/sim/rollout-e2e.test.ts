/**
 * Rollouts end to end, on both targets: a real gateway (broker, store,
 * registry, chunk server, rollout engine, alert engine, operator API) and a
 * few simulated machines running the real firmware. The test plays the
 * operator only: it uploads a signed image and starts a rollout over the
 * API; the engine sends the update commands wave by wave, the machines
 * fetch, check, install and confirm (or roll back) by themselves, and the
 * gateway's rollout, machine list and alerts say what happened.
 *
 * Time: the machines run on their virtual clocks (ten times real time
 * while connected), stepped together; the engine steps in real time (its
 * timers), and its clock, which times a machine out, is the machines'
 * virtual time, so that a timeout means as much machine time as it says.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import type mqtt from 'mqtt';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { verifyCommand, type CommandBody } from '../../gateway/commands/envelope.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { Gateway } from '../../gateway/gateway.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import type { MachineView, RolloutView } from '../../gateway/rollouts/service.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { MachineHost } from '../../hal-sim/host.js';
import { buildImage } from '../../hal-sim/images.js';
import { keysFile, signed, testKey } from '../gateway/firmware-fixtures.js';
import { connectMqtt } from '../lib/mqtt.js';
import { usMachine } from './fixtures.js';

interface Running {
  version: string;
  probation: boolean;
  rolledBack?: { version: string; reason: string };
}

const running = async (host: MachineHost): Promise<Running> => (await host.runInGuest('return vendfleetGuest.board.firmware.running;')) as Running;

/** Machine time per round: every machine runs this much, then the gateway's clock moves as far. */
const STEP_MS = 500;

for (const target of ['sim', 'xs'] as const) {
  describe(`rollouts on machines running the firmware (${target})`, function () {
    this.timeout(600000);
    const release = testKey();
    let broker: EmbeddedBroker;
    let db: Db;
    let gw: Gateway;
    let registry: FirmwareRegistry;
    let api: FastifyInstance;
    let admin: string;
    let watcher: mqtt.MqttClient;
    const hosts: MachineHost[] = [];
    /** Each machine's command key, and every command signed with it seen on its commands topic. */
    const keys = new Map<string, Buffer>();
    const seen = new Map<string, CommandBody[]>();
    /** The gateway's clock: the machines' virtual time (they start together and run in rounds). */
    let fleetMs = 0;
    const start = Date.UTC(2026, 0, 5, 9, 0, 0);
    const clock = { now: (): number => start + fleetMs };

    before(async () => {
      broker = await startEmbeddedBroker({ port: 0 });
      db = await openDb();
      await migrate(db);
      registry = new FirmwareRegistry(db, { keyFiles: [{ path: keysFile(release), optional: false }] });
      gw = await Gateway.start({
        mqttUrl: broker.url,
        db,
        // The rolled-back alert, evaluated on each report; no sweeper (nothing here goes silent).
        alerts: { sweepMs: 0 },
        updates: { source: registry, bytesPerSecond: 1 << 20, burstBytes: 1 << 18 },
        firmware: registry,
        rollouts: { clock, tickMs: 1000, pokeMs: 50 },
      });
      api = await buildApi({ db, commands: gw.commands, firmware: registry, alerts: gw.alerts, rolloutEngine: gw.rollouts });
      admin = (await createToken(db, 'rollout e2e', 'admin')).token;
      watcher = await connectMqtt(broker.url);
      watcher.on('message', (topic, payload) => {
        const id = topic.split('/')[1] ?? '';
        const key = keys.get(id);
        const body = key ? verifyCommand(Buffer.from(payload), key) : undefined;
        if (body) seen.set(id, [...(seen.get(id) ?? []), body]);
      });
      await watcher.subscribeAsync('fleet/+/commands', { qos: 1 });
    });
    after(async () => {
      for (const h of hosts) await h.close();
      await watcher?.endAsync();
      await api?.close();
      await gw?.close();
      await db?.close();
      await broker?.close();
    });

    async function call<T>(method: 'GET' | 'POST', url: string, payload?: object): Promise<{ status: number; body: T }> {
      const r = await api.inject({ method, url, headers: { authorization: `Bearer ${admin}` }, ...(payload ? { payload } : {}) });
      return { status: r.statusCode, body: r.json() as T };
    }
    const rollout = async (id: string): Promise<RolloutView> => (await call<RolloutView>('GET', `/rollouts/${id}`)).body;
    const entries = async (id: string): Promise<MachineView[]> => (await call<{ machines: MachineView[] }>('GET', `/rollouts/${id}/machines`)).body.machines;
    /** The version each machine runs, as the gateway's machine list says. */
    async function firmware(ids: readonly string[]): Promise<(string | null)[]> {
      const list = (await call<{ machines: { id: string; firmware: string | null }[] }>('GET', '/machines')).body.machines;
      return ids.map((m) => list.find((x) => x.id === m)?.firmware ?? null);
    }
    const updatesSeen = (id: string): CommandBody[] => (seen.get(id) ?? []).filter((c) => c.type === 'update');

    /** Machines provisioned by the gateway (their command keys in their configuration), online, the gateway knowing them on 0.1.0. */
    async function fleet(name: string, n: number): Promise<{ ids: string[]; hosts: Map<string, MachineHost> }> {
      const made = new Map<string, MachineHost>();
      for (let i = 0; i < n; i++) {
        const id = `vm-ro-${target}-${process.pid}-${name}${i}`;
        const p = await gw.commands.provision(id);
        keys.set(id, Buffer.from(p.commandKey, 'hex'));
        const host = await MachineHost.start(usMachine(), {
          target,
          machineId: id,
          // Ten times real time while connected: a request's 30 s timeout (virtual) is 3 s of the real broker's and gateway's time.
          network: { url: broker.url, speed: 10 },
          config: {
            commandKey: p.commandKey,
            commandKeyId: p.commandKeyId,
            update: { bytesPerSecond: 65536, chunkBytes: 4096, inFlight: 4, requestTimeoutMs: 30000, probationMs: 60000 },
          },
        });
        hosts.push(host);
        made.set(id, host);
      }
      const ids = [...made.keys()];
      await until(made, 'every machine online, on 0.1.0 in the machine list', async () => (await firmware(ids)).every((v) => v === '0.1.0'));
      return { ids, hosts: made };
    }

    /** Run the machines in rounds until `check` holds: bounded in machine time and in real time. */
    async function until(machines: Map<string, MachineHost>, what: string, check: () => Promise<boolean>, machineMs = 900_000): Promise<void> {
      const realEnd = Date.now() + 240_000;
      for (let t = 0; t < machineMs && Date.now() < realEnd; t += STEP_MS) {
        if (await check()) return;
        await Promise.all([...machines.values()].map((h) => h.run(STEP_MS)));
        fleetMs += STEP_MS;
      }
      assert.ok(await check(), `${what} (after ${fleetMs} ms of machine time)`);
    }

    async function upload(version: string, bad?: 'no-broker'): Promise<string> {
      const bytes = Buffer.from(buildImage(bad ? { version, bad } : { version }).bytes);
      await registry.upload(signed(bytes, version, release));
      return sha256Hex(bytes);
    }

    /** Each machine's update reports as the gateway stored them: phase and reason. */
    async function phases(id: string): Promise<string[]> {
      const r = await db.query<{ body: Record<string, unknown> }>("SELECT body FROM events WHERE machine_id = $1 AND type = 'update' ORDER BY seq", [id]);
      return r.rows.map((e) => `${String(e.body['phase'])}${e.body['reason'] ? ` ${String(e.body['reason'])}` : ''}`);
    }

    it('0.1.0 to 0.2.0 in two waves: wave 2 starts once wave 1 has confirmed, and every machine ends confirmed on 0.2.0', async () => {
      const { ids, hosts: machines } = await fleet('good', 3);
      const sha = await upload('0.2.0');
      const made = await call<RolloutView>('POST', '/rollouts', { version: '0.2.0', target: { machines: ids }, waves: [50, 100], timeoutS: 600 });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const id = made.body.id;
      assert.deepEqual(made.body.waves.map((w) => w.size), [2, 1]);
      const order = await entries(id);
      const [w1, w2] = [1, 2].map((w) => order.filter((e) => e.wave === w).map((e) => e.machine)) as [string[], string[]];

      let wave1Views = 0;
      await until(machines, 'the rollout is done', async () => {
        // What the machines of wave 2 were sent, read before the rollout: a command seen means the engine had moved on by then.
        const early = w2.filter((m) => updatesSeen(m).length > 0);
        const v = await rollout(id);
        if (v.wave === 1 && v.state === 'running') {
          wave1Views++;
          assert.deepEqual(early, [], `wave 2 was sent updates while wave 1 was under way: ${JSON.stringify(v.counts)}`);
        }
        return v.state === 'done';
      });
      assert.ok(wave1Views > 0, 'wave 1 was seen under way');

      const v = await rollout(id);
      assert.deepEqual([v.counts.confirmed, v.total, v.problems, v.active], [3, 3, [], []]);
      assert.deepEqual(v.waves.map((w) => [w.state, w.counts.confirmed]), [['done', 2], ['done', 1]]);
      assert.ok((await entries(id)).every((e) => e.state === 'confirmed' && e.reason === null && e.command !== null), 'each confirmed by its own update');
      // Each machine got one update command, naming 0.2.0 and its bytes, and ran it to its end.
      for (const m of ids) {
        assert.deepEqual(updatesSeen(m).map((c) => [c.args['version'], c.args['sha256']]), [['0.2.0', sha]], m);
        assert.deepEqual(await phases(m), ['downloaded', 'installing', 'confirmed'], m);
        assert.deepEqual(await registry.offersTo(m), [], `${m}: nothing left offered`);
      }
      // Wave 2's commands were made after every command of wave 1 was applied (the store's clock, one for both).
      const times = await db.query<{ machine_id: string; status: string; created_at: Date; updated_at: Date }>("SELECT machine_id, status, created_at, updated_at FROM commands WHERE type = 'update' AND machine_id = ANY($1::text[])", [ids]);
      const lastApplied = Math.max(...times.rows.filter((c) => w1.includes(c.machine_id)).map((c) => new Date(c.updated_at).getTime()));
      assert.ok(times.rows.every((c) => c.status === 'applied'));
      for (const c of times.rows.filter((x) => w2.includes(x.machine_id))) assert.ok(new Date(c.created_at).getTime() >= lastApplied, `${c.machine_id}: started before wave 1 ended`);
      for (const [m, host] of machines) {
        assert.equal(host.image.version, '0.2.0', m);
        assert.equal((await running(host)).probation, false, `${m}: confirmed on the machine`);
      }
      await until(machines, 'the machine list shows 0.2.0 everywhere', async () => (await firmware(ids)).every((x) => x === '0.2.0'));
      for (const h of machines.values()) await h.close();
    });

    it('a bad image: wave 1 rolls back by itself, the rollout halts at its threshold, wave 2 is never told, and every machine runs a good image', async () => {
      const { ids, hosts: machines } = await fleet('bad', 3);
      const sha = await upload('0.3.0', 'no-broker');
      const made = await call<RolloutView>('POST', '/rollouts', { version: '0.3.0', target: { machines: ids }, waves: [50, 100], halt: { count: 2 }, timeoutS: 600 });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const id = made.body.id;
      const order = await entries(id);
      const [w1, w2] = [1, 2].map((w) => order.filter((e) => e.wave === w).map((e) => e.machine)) as [string[], string[]];

      await until(machines, 'the rollout halts', async () => (await rollout(id)).state === 'halted');
      // Stepped again, halted: nobody more starts.
      await gw.rollouts!.pass();
      await gw.rollouts!.pass();
      const v = await rollout(id);
      assert.equal(v.reason, 'wave 1 of 2: 2 of 2 machines failed or rolled back (halts at 2 failed or rolled back: 2)');
      assert.equal(gw.rollouts!.stats.timeouts, 0, 'halted by the rollbacks, not by the clock');
      assert.deepEqual(v.problems.map((p) => [p.machine, p.state, p.reason]).sort(), w1.map((m) => [m, 'rolled-back', 'probation: broker']).sort());
      assert.deepEqual(v.waves.map((w) => [w.state, w.counts['rolled-back'], w.counts.pending]), [['current', 2, 0], ['waiting', 0, 1]]);
      for (const m of w1) {
        assert.deepEqual(updatesSeen(m).map((c) => c.args['sha256']), [sha], `${m}: sent the bad image once`);
        assert.deepEqual(await phases(m), ['downloaded', 'installing', 'rolled-back probation: broker'], m);
        const host = machines.get(m)!;
        assert.deepEqual((await running(host)).rolledBack, { version: '0.3.0', reason: 'probation: broker' }, `${m}: the bad image ran and the old one came back`);
      }
      // Wave 2: no command made, none on its topic, nothing started on the machine.
      const made2 = await db.query<{ n: string }>('SELECT count(*) AS n FROM commands WHERE machine_id = ANY($1::text[])', [w2]);
      assert.equal(Number(made2.rows[0]!.n), 0, 'no command for wave 2');
      for (const m of w2) {
        assert.deepEqual(seen.get(m) ?? [], [], `${m}: nothing on its commands topic`);
        assert.equal((await machines.get(m)!.status()).update, undefined, `${m}: no update under way`);
      }
      assert.ok((await entries(id)).filter((e) => e.wave === 2).every((e) => e.state === 'pending' && e.command === null));
      // The rollbacks opened their alerts; every machine runs 0.1.0, confirmed, and the machine list says so.
      await until(machines, 'a rolled-back alert for each machine of wave 1', async () => {
        const open = (await call<{ alerts: { machine: string; subject: string }[] }>('GET', '/alerts?kind=rolled-back')).body.alerts;
        return w1.every((m) => open.some((a) => a.machine === m && a.subject === '0.3.0'));
      });
      const alerted = (await call<{ alerts: { machine: string }[] }>('GET', '/alerts?kind=rolled-back')).body.alerts.map((a) => a.machine);
      assert.deepEqual(alerted.filter((m) => w2.includes(m)), [], 'no alert for wave 2');
      for (const [m, host] of machines) {
        assert.equal(host.image.version, '0.1.0', m);
        assert.equal((await running(host)).probation, false, m);
      }
      await until(machines, 'the machine list shows 0.1.0 everywhere', async () => (await firmware(ids)).every((x) => x === '0.1.0'));
      // The operator calls it off: the machines of wave 2 are never started.
      const cancelled = await call<RolloutView>('POST', `/rollouts/${id}/cancel`);
      assert.deepEqual([cancelled.status, cancelled.body.state, cancelled.body.counts.pending], [200, 'cancelled', 1]);
      for (const h of machines.values()) await h.close();
    });
  });
}
