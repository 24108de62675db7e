/**
 * Rollouts and machine tags over the operator API (gateway/api/rollout-routes.ts,
 * fleet-routes.ts), on both stores, without a broker: who may do what, each
 * target (a list, a tag, a percentage, every machine), the refusals and
 * their codes, the answers' shapes, and tags (set, listed, a filter). What
 * rollouts do to machines is rollouts.test.ts's; hostile input in every
 * field is api-fuzz.test.ts's.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, type Backend } from './backends.js';
import { keysFile, signed, simImage, testKey } from './firmware-fixtures.js';

for (const backend of BACKENDS) {
  describe(`rollouts and tags over the API: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    const tokens: Record<string, string> = {};
    const key = testKey();
    const image = simImage('2.0.0', { size: 5000, seed: 11 });
    const machines = Array.from({ length: 40 }, (_, i) => `vm-${String(i + 1).padStart(2, '0')}`);
    let pokes = 0;

    const call = async (method: 'GET' | 'POST' | 'PUT', url: string, role: string, payload?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
      const r = await api.inject({ method, url, headers: { authorization: `Bearer ${tokens[role]}` }, ...(payload !== undefined ? { payload: payload as object } : {}) });
      return { status: r.statusCode, body: r.json() };
    };
    const refused = (r: { status: number; body: Record<string, unknown> }, status: number, error: string, message?: RegExp): void => {
      assert.deepEqual([r.status, r.body['error']], [status, error], JSON.stringify(r.body));
      if (message) assert.match(String(r.body['message']), message);
    };

    before(async () => {
      b = await backend.open();
      await migrate(b.db);
      commands = new CommandService(b.db, () => {});
      for (const m of machines) await commands.provision(m);
      const firmware = new FirmwareRegistry(b.db, { keyFiles: [{ path: keysFile(key), optional: false }] });
      await firmware.upload(signed(image, '2.0.0', key));
      api = await buildApi({ db: b.db, commands, firmware, rolloutEngine: { poke: () => void pokes++ } });
      for (const role of ['admin', 'operator', 'viewer'] as const) tokens[role] = (await createToken(b.db, `ro ${role}`, role)).token;
    });
    after(async () => {
      await api?.close();
      commands?.close();
      await b?.close();
    });

    it('sets, lists and filters by tags; refuses bad ones', async () => {
      const set = await call('PUT', '/machines/vm-01/tags', 'operator', { tags: ['lobby', 'floor-2', 'lobby'] });
      assert.deepEqual([set.status, set.body['tags']], [200, ['floor-2', 'lobby']]);
      await call('PUT', '/machines/vm-02/tags', 'operator', { tags: ['lobby'] });
      refused(await call('PUT', '/machines/vm-03/tags', 'viewer', { tags: ['x'] }), 403, 'forbidden');
      refused(await call('PUT', '/machines/vm-03/tags', 'operator', { tags: ['Lobby'] }), 400, 'bad-request', /pattern/);
      refused(await call('PUT', '/machines/vm-03/tags', 'operator', { tags: Array.from({ length: 17 }, (_, i) => `t${i}`) }), 400, 'bad-request', /16/);
      refused(await call('PUT', '/machines/vm-99/tags', 'operator', { tags: ['x'] }), 404, 'unknown-machine');
      const listed = (await call('GET', '/machines?tag=lobby', 'viewer')).body['machines'] as { id: string; tags: string[]; firmware: string | null }[];
      assert.deepEqual(listed.map((m) => [m.id, m.tags, m.firmware]), [['vm-01', ['floor-2', 'lobby'], null], ['vm-02', ['lobby'], null]]);
      assert.deepEqual((await call('GET', '/machines/vm-01', 'viewer')).body['tags'], ['floor-2', 'lobby']);
      // Replaced, not added to.
      assert.deepEqual((await call('PUT', '/machines/vm-01/tags', 'operator', { tags: [] })).body['tags'], []);
      await call('PUT', '/machines/vm-01/tags', 'operator', { tags: ['lobby'] });
    });

    it('lets admins start one, viewers read, operators pause and cancel, admins resume', async () => {
      const body = { version: '2.0.0', target: { tag: 'lobby' }, waves: [50, 100], halt: { count: 1 } };
      refused(await call('POST', '/rollouts', 'operator', body), 403, 'forbidden');
      const before = pokes;
      const made = await call('POST', '/rollouts', 'admin', body);
      assert.equal(made.status, 201, JSON.stringify(made.body));
      assert.ok(pokes > before, 'the engine told');
      const r = made.body as { id: string; state: string; total: number; waves: { wave: number; size: number; state: string; haltAt: number }[]; image: { sha256: string }; target: unknown; createdBy: string };
      assert.match(r.id, /^r[0-9a-f]{12}$/);
      assert.deepEqual([r.state, r.total, r.image.sha256, r.target, r.createdBy], ['running', 2, sha256Hex(image), { kind: 'tag', tag: 'lobby' }, 'ro admin']);
      assert.deepEqual(r.waves.map((w) => [w.wave, w.size, w.state, w.haltAt]), [[1, 1, 'current', 1], [2, 1, 'waiting', 1]]);
      const list = (await call('GET', '/rollouts', 'viewer')).body['rollouts'] as { id: string; counts: Record<string, number> }[];
      assert.deepEqual(list.map((x) => [x.id, x.counts['pending']]), [[r.id, 2]]);
      const ms = (await call('GET', `/rollouts/${r.id}/machines?state=pending`, 'viewer')).body['machines'] as { machine: string; wave: number }[];
      assert.deepEqual(ms.map((m) => m.machine).sort(), ['vm-01', 'vm-02']);
      refused(await call('POST', `/rollouts/${r.id}/pause`, 'viewer'), 403, 'forbidden');
      assert.equal((await call('POST', `/rollouts/${r.id}/pause`, 'operator')).body['state'], 'paused');
      refused(await call('POST', `/rollouts/${r.id}/resume`, 'operator'), 403, 'forbidden');
      assert.equal((await call('POST', `/rollouts/${r.id}/resume`, 'admin')).body['state'], 'running');
      assert.equal((await call('POST', `/rollouts/${r.id}/cancel`, 'operator')).body['state'], 'cancelled');
      refused(await call('POST', `/rollouts/${r.id}/cancel`, 'operator'), 409, 'rollout-state', /is cancelled/);
      refused(await call('GET', '/rollouts/r000000000000', 'viewer'), 404, 'unknown-rollout');
      refused(await call('GET', '/rollouts/not-a-rollout', 'viewer'), 400, 'bad-request');
      assert.deepEqual(((await call('GET', '/rollouts?state=unfinished', 'viewer')).body['rollouts'] as unknown[]).length, 0);
    });

    it('selects a percentage of the fleet by the rollout, and a list; refuses machines in an unfinished rollout', async () => {
      const pct = await call('POST', '/rollouts', 'admin', { sha256: sha256Hex(image), target: { percent: 25 }, waves: [100] });
      assert.equal(pct.status, 201, JSON.stringify(pct.body));
      const total = pct.body['total'] as number;
      assert.ok(total >= 3 && total <= 18, `${total} of 40 for 25 %`);
      const chosen = ((await call('GET', `/rollouts/${String(pct.body['id'])}/machines`, 'viewer')).body['machines'] as { machine: string }[]).map((m) => m.machine);
      const other = machines.find((m) => !chosen.includes(m))!;
      const clash = await call('POST', '/rollouts', 'admin', { version: '2.0.0', target: { machines: [chosen[0], other] } });
      refused(clash, 409, 'in-rollout', new RegExp(`1 of these machines are in an unfinished rollout already: ${chosen[0]} \\(${String(pct.body['id'])}\\)`));
      refused(await call('POST', '/rollouts', 'admin', { version: '2.0.0', target: { all: true } }), 409, 'in-rollout');
      const list = await call('POST', '/rollouts', 'admin', { version: '2.0.0', target: { machines: [other] }, parallel: 1, timeoutS: 600, force: true });
      assert.deepEqual([list.status, list.body['total'], list.body['parallel'], list.body['timeoutS'], list.body['force']], [201, 1, 1, 600, true]);
      for (const id of [pct.body['id'], list.body['id']]) await call('POST', `/rollouts/${String(id)}/cancel`, 'admin');
    });

    it('refuses what cannot be rolled out, with a code each', async () => {
      const cases: [unknown, number, string, RegExp][] = [
        [{ target: { all: true } }, 400, 'bad-rollout', /name the image/],
        [{ version: '9.9.9', target: { all: true } }, 404, 'unknown-image', /of version 9\.9\.9/],
        [{ sha256: sha256Hex(image), version: '1.0.0', target: { all: true } }, 400, 'bad-rollout', /is version 2\.0\.0, not 1\.0\.0/],
        [{ version: '2.0.0', target: { machines: ['vm-01', 'vm-77'] } }, 404, 'unknown-machine', /no machine vm-77/],
        [{ version: '2.0.0', target: { tag: 'nobody-has-it' } }, 422, 'no-machines', /selects no machine \(machines tagged nobody-has-it\)/],
        [{ version: '2.0.0', target: { all: true }, waves: [10, 50] }, 400, 'bad-rollout', /the last wave is 100/],
        [{ version: '2.0.0', target: { all: true }, waves: [50, 10, 100] }, 400, 'bad-rollout', /waves rise/],
        [{ version: '2.0.0', target: {} }, 400, 'bad-request', /fewer than 1|must NOT have fewer/],
        [{ version: '2.0.0', target: { all: true, tag: 'x' } }, 400, 'bad-request', /more than 1/],
        [{ version: '2.0.0', target: { all: false } }, 400, 'bad-request', /allowed values/],
        [{ version: '2.0.0', target: { percent: 0 } }, 400, 'bad-request', />= 1/],
        [{ version: '2.0.0', target: { all: true }, halt: { percent: 20, count: 3 } }, 400, 'bad-request', /more than 1/],
        [{ version: '2.0.0', target: { all: true }, timeoutS: 5 }, 400, 'bad-request', />= 60/],
        [{ version: '2.0.0', target: { all: true }, size: 5 }, 400, 'bad-request', /additional properties/],
      ];
      for (const [body, status, error, message] of cases) refused(await call('POST', '/rollouts', 'admin', body), status, error, message);
    });
  });
}
