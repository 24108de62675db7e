/**
 * DATABASE_READ_URL: the API's read-only routes read from a real streaming
 * replica and everything that writes goes to the primary. A primary and its
 * replica of the test's own (pg-replica.ts). Replay on the replica is
 * paused to tell the two apart: a sale stored on the primary is not in the
 * API's answers until replay resumes, then it is (waited for, bounded),
 * while a route that writes succeeds at once and reads its own write back.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { ingestStore } from '../../gateway/ingest/store.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import { eventually } from './backends.js';
import { startReplicaPair, type ReplicaPair } from './pg-replica.js';

describe('API reads from a streaming replica (DATABASE_READ_URL)', function () {
  this.timeout(120000);
  let pair: ReplicaPair;
  let db: Db;
  let reads: Db;
  let control: pg.Client;
  let commands: CommandService;
  let api: FastifyInstance;
  let viewer: string;
  let operator: string;
  const machine = 'replica-m1';
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const salesNow = async (): Promise<number> => {
    const r = await api.inject({ method: 'GET', url: `/machines/${machine}/sales`, headers: as(viewer) });
    assert.equal(r.statusCode, 200, r.body);
    return (r.json() as { sales: number }).sales;
  };
  const replayed = async (): Promise<string> => (await control.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s')).rows[0]!.s;

  before(async () => {
    pair = await startReplicaPair();
    db = await openDb({ url: pair.primaryUrl });
    reads = await openDb({ url: pair.replicaUrl, readOnly: true });
    control = new pg.Client({ connectionString: pair.replicaUrl });
    await control.connect();
    await migrate(db);
    commands = new CommandService(db, () => {});
    await commands.provision(machine);
    viewer = (await createToken(db, 'replica viewer', 'viewer')).token;
    operator = (await createToken(db, 'replica operator', 'operator')).token;
    api = await buildApi({ db, readDb: reads, commands });
    // The schema and the machine reach the replica.
    await eventually('the replica to have the machine', async () => ((await reads.query('SELECT 1 FROM machines WHERE id = $1', [machine])).rows.length > 0 ? true : undefined), 30000);
  });
  after(async () => {
    await api?.close();
    commands?.close();
    await control?.end();
    await reads?.close();
    await db?.close();
    pair?.stop();
  });

  it('reads with a connection to the replica, writes with one to the primary', async () => {
    assert.equal((await reads.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, true, 'the read store is a standby');
    assert.equal((await db.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false, 'the store written to is the primary');
    await assert.rejects(reads.query("INSERT INTO machines (id) VALUES ('nope')"), /read-only/);
  });

  it('serves the read-only routes from the replica: a sale shows once replay catches up', async () => {
    const store = ingestStore(db);
    const sale = (seq: number) => ({ seq, t: seq, type: 'vend-ok', body: { slot: 'A1', price: 120 } });
    await store.write({ at: new Date(), messages: [{ machine, to: 1, events: [sale(1)], refused: [] }], telemetry: [], statuses: [], rejections: new Map() }, { conflict: () => {} });
    await eventually('the first sale through the replica', async () => ((await salesNow()) === 1 ? true : undefined), 30000);

    await control.query('SELECT pg_wal_replay_pause()');
    await eventually('replay to pause', async () => ((await replayed()) === 'paused' ? true : undefined), 30000);
    await store.write({ at: new Date(), messages: [{ machine, to: 2, events: [sale(2)], refused: [] }], telemetry: [], statuses: [], rejections: new Map() }, { conflict: () => {} });
    assert.equal(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM sales WHERE machine_id = $1', [machine])).rows[0]!.n), 2, 'the primary has both');
    assert.equal(await salesNow(), 1, 'the API reads the paused replica');
    const summary = await api.inject({ method: 'GET', url: '/fleet/summary', headers: as(viewer) });
    assert.equal((summary.json() as { today: { sales: number } }).today.sales, 1, 'the summary too (from the rollup, as replicated)');

    // A route that writes goes to the primary (the replica would refuse it) and reads its own write back from there.
    const put = await api.inject({ method: 'PUT', url: `/machines/${machine}/tags`, headers: as(operator), payload: { tags: ['north'] } });
    assert.equal(put.statusCode, 200, put.body);
    assert.deepEqual((put.json() as { tags: string[] }).tags, ['north']);
    const got = await api.inject({ method: 'GET', url: `/machines/${machine}`, headers: as(viewer) });
    assert.deepEqual((got.json() as { tags: string[] }).tags, [], 'the machine as the paused replica has it');

    await control.query('SELECT pg_wal_replay_resume()');
    await eventually('the second sale through the replica', async () => ((await salesNow()) === 2 ? true : undefined), 30000);
    const again = await api.inject({ method: 'GET', url: `/machines/${machine}`, headers: as(viewer) });
    assert.deepEqual((again.json() as { tags: string[] }).tags, ['north']);
  });
});
