/**
 * GET /machines/{id}/telemetry: a machine's temperature and coin tube
 * counts per bucket from the stored telemetry reports (mean temperature,
 * the newest tube counts), empty buckets as gaps, what a machine reported
 * that is not a number or a tube left out; ranges that need too many
 * buckets, backwards ranges and bad parameters refused with a 400, an
 * unknown machine a 404.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { ensureTelemetryPartition } from '../../gateway/store/migrations.js';
import { closeApi, openApi, setTelemetry } from './api-harness.js';
import { BACKENDS, type Backend } from './backends.js';

const DAY = '2026-03-10';
/** Reports as stored (received time, body); the last two hold what no machine should send. */
const REPORTS: [string, string][] = [
  ['10:05', '{"temperature":4.0,"tubes":[{"value":5,"count":10},{"value":25,"count":20}]}'],
  ['10:40', '{"temperature":5.0,"tubes":[{"value":5,"count":12},{"value":25,"count":18}]}'],
  ['12:10', '{"temperature":6.5,"tubes":[{"value":25,"count":15},{"value":100,"count":3}]}'],
  ['12:20', '{"temperature":"hot","tubes":"lots"}'],
  ['12:30', '{"tubes":[{"value":-1,"count":2},{"value":5,"count":1.5},null,"x",{"value":100,"count":4}]}'],
];

for (const backend of BACKENDS) {
  describe(`a machine's telemetry over time: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let viewer: string;
    const machine = `ts${process.pid % 10000}x${Math.floor(Math.random() * 1e6)}`;
    const get = (url: string) => api.inject({ method: 'GET', url, headers: { authorization: `Bearer ${viewer}` } });

    before(async () => {
      ({ b, commands, api } = await openApi(backend, [machine]));
      viewer = (await createToken(b.db, 'telemetry viewer', 'viewer')).token;
      await ensureTelemetryPartition(b.db, new Date(`${DAY}T00:00:00Z`));
      for (const [at, body] of REPORTS) await b.db.query('INSERT INTO telemetry (machine_id, received_at, body) VALUES ($1, $2, $3::jsonb)', [machine, `${DAY}T${at}:00Z`, body]);
      await setTelemetry(b.db, machine, { currency: 'EUR', decimals: 2 });
    });
    after(() => closeApi({ api, commands, b }));

    it('gives per hour the mean temperature and the newest tube counts, empty hours as gaps', async () => {
      const res = await get(`/machines/${machine}/telemetry?bucket=hour&from=${DAY}T10:00:00Z&to=${DAY}T13:00:00Z`);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), {
        machine,
        bucket: 'hour',
        from: `${DAY}T10:00:00.000Z`,
        to: `${DAY}T13:00:00.000Z`,
        currency: 'EUR',
        decimals: 2,
        coins: [5, 25, 100],
        points: [
          { t: `${DAY}T10:00:00.000Z`, reports: 2, temperature: 4.5, tubes: [12, 18, null] },
          { t: `${DAY}T11:00:00.000Z`, reports: 0, temperature: null, tubes: [null, null, null] },
          // 12:20 said no number and no list; 12:30's list holds one real tube.
          { t: `${DAY}T12:00:00.000Z`, reports: 3, temperature: 6.5, tubes: [null, null, 4] },
        ],
      });
    });

    it('gives a day as one bucket, and minutes each on their own', async () => {
      // The day's newest tube list (12:30) holds the 100 only: its coins are that one.
      const day = (await get(`/machines/${machine}/telemetry?bucket=day&from=${DAY}T00:00:00Z&to=${DAY}T23:59:00Z`)).json() as { coins: number[]; points: unknown[] };
      assert.deepEqual(day.coins, [100]);
      assert.deepEqual(day.points, [{ t: `${DAY}T00:00:00.000Z`, reports: 5, temperature: 5.2, tubes: [4] }]);
      const minutes = (await get(`/machines/${machine}/telemetry?bucket=minute&from=${DAY}T10:00:00Z&to=${DAY}T11:00:00Z`)).json() as { coins: number[]; points: { reports: number }[] };
      assert.equal(minutes.points.length, 60);
      assert.deepEqual(minutes.coins, [5, 25]);
      assert.deepEqual(minutes.points.flatMap((p, i) => (p.reports > 0 ? [i] : [])), [5, 40]);
    });

    it('refuses ranges of too many buckets, backwards ranges and bad parameters (400), an unknown machine (404)', async () => {
      const refused = async (url: string, status: number, message?: RegExp): Promise<void> => {
        const res = await get(url);
        assert.equal(res.statusCode, status, `${url}: ${res.body}`);
        if (message) assert.match((res.json() as { message: string }).message, message, url);
      };
      // 2000 minutes pass, 2001 do not; the message says what to do.
      assert.equal((await get(`/machines/${machine}/telemetry?bucket=minute&from=${DAY}T00:00:00Z&to=2026-03-11T09:20:00Z`)).statusCode, 200);
      await refused(`/machines/${machine}/telemetry?bucket=minute&from=${DAY}T00:00:00Z&to=2026-03-11T09:21:00Z`, 400, /^2001 minutes asked for, at most 2000: use a bigger bucket/);
      await refused(`/machines/${machine}/telemetry?bucket=day&from=2000-01-01T00:00:00Z&to=2026-03-11T00:00:00Z`, 400, /days asked for, at most 2000/);
      await refused(`/machines/${machine}/telemetry?bucket=hour&from=${DAY}T13:00:00Z&to=${DAY}T10:00:00Z`, 400, /"from" must be before "to"/);
      await refused(`/machines/${machine}/telemetry?bucket=hour&from=${DAY}T10:00:00Z&to=${DAY}T10:00:00Z`, 400);
      await refused(`/machines/${machine}/telemetry?bucket=week`, 400);
      await refused(`/machines/${machine}/telemetry?from=yesterday`, 400);
      await refused(`/machines/${machine}/telemetry?from=${'9'.repeat(5000)}`, 400);
      await refused(`/machines/${machine}/telemetry?limit=5`, 400);
      await refused(`/machines/${machine}/telemetry?bucket=%00`, 400);
      await refused('/machines/no-such-machine/telemetry', 404);
      await refused('/machines/..%2F..%2Fetc/telemetry', 400);
      assert.equal((await api.inject({ method: 'GET', url: `/machines/${machine}/telemetry` })).statusCode, 401);
    });
  });
}
