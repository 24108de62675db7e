/**
 * The gateway against the embedded default and against real Mosquitto and
 * PostgreSQL: events stored once and acknowledged only after commit, resends
 * harmless, telemetry and status into the machine's state, bad input counted
 * and refused without poisoning good messages, a store outage held back.
 */
import { strict as assert } from 'node:assert';
import type mqtt from 'mqtt';
import { connectMqtt } from '../lib/mqtt.js';
import { Gateway } from '../../gateway/gateway.js';
import { Ingester } from '../../gateway/ingest/ingester.js';
import { ingestStore } from '../../gateway/ingest/store.js';
import type { Db } from '../../gateway/store/db.js';
import { dropOldTelemetry, ensureTelemetryPartition, migrate, MIGRATIONS } from '../../gateway/store/migrations.js';
import { BACKENDS, count, eventually, type Backend } from './backends.js';

function events(from: number, to: number, type = 'coin-in'): string {
  const list = [];
  // Events as the uplink contract has them (docs/uplink.md).
  const fields = type === 'vend-ok' ? { slot: 'A1', price: 125 } : { coinType: 2, routing: 'tubes', value: 25 };
  for (let s = from; s <= to; s++) list.push({ seq: s, t: 1000 + s, type, ...fields });
  return JSON.stringify({ v: 1, events: list });
}


async function publish(c: mqtt.MqttClient, topic: string, payload: string | Buffer): Promise<void> {
  await c.publishAsync(topic, payload, { qos: 1 });
}


for (const backend of BACKENDS) {
  describe(`gateway ingest: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let gw: Gateway;
    let machine: mqtt.MqttClient;
    const acks: { machine: string; from: number; to: number }[] = [];
    const id = `m${process.pid % 10000}x${Math.floor(Math.random() * 1e6)}`;

    before(async () => {
      b = await backend.open();
      gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup });
      await gw.addMachines([id, `${id}b`]);
      machine = await connectMqtt(b.mqttUrl);
      machine.on('message', (topic, payload) => {
        const m = JSON.parse(payload.toString()) as { from: number; to: number };
        acks.push({ machine: topic.split('/')[1]!, from: m.from, to: m.to });
      });
      await machine.subscribeAsync([`fleet/${id}/acks`, `fleet/${id}b/acks`], { qos: 1 });
    });

    after(async () => {
      await machine?.endAsync();
      await gw?.close();
      await b?.close();
    });

    it('applies its migrations once', async () => {
      assert.deepEqual(await migrate(b.db), [], 'a second run applies nothing');
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM schema_migrations'), MIGRATIONS.length);
    });

    it('stores each event once and acknowledges it only after the commit; resends change nothing', async () => {
      await publish(machine, `fleet/${id}/events`, events(1, 10));
      await publish(machine, `fleet/${id}/events`, events(11, 20, 'vend-ok'));
      await eventually('acknowledgements up to 20', async () => (acks.some((a) => a.to === 20) ? true : undefined));
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]), 20);
      // One ack per run of consecutive numbers in a batch: 1..10 and 11..20, or 1..20 when both went in one.
      let next = 1;
      for (const a of acks) {
        assert.equal(a.machine, id);
        assert.equal(a.from, next, `acknowledgements follow on: ${JSON.stringify(acks)}`);
        next = a.to + 1;
      }
      assert.equal(next, 21);
      const acked = acks.length;
      // The machine did not hear the acknowledgement and sends again: stored once, acknowledged again.
      await publish(machine, `fleet/${id}/events`, events(11, 20, 'vend-ok'));
      await eventually('the resend acknowledged', async () => (acks.length > acked ? true : undefined));
      assert.deepEqual([acks[acked]!.from, acks[acked]!.to], [11, 20]);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]), 20);
      const st = (await b.db.query<{ last_seq: string; events: string; online: boolean }>('SELECT last_seq, events, online FROM machine_state WHERE machine_id = $1', [id])).rows[0]!;
      assert.equal(Number(st.last_seq), 20);
      assert.equal(Number(st.events), 20);
      assert.equal(st.online, true);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM sales WHERE machine_id = $1', [id]), 10);
      assert.ok(gw.ingester.stats.duplicates >= 10);
    });

    it('never acknowledges a different event under a number already stored (a wiped journal)', async () => {
      const ackCount = acks.length;
      const before = gw.ingester.stats.rejected['seq-conflict'] ?? 0;
      // Events 1..3 again, but not the same events: a machine whose journal started over.
      const list = [1, 2, 3].map((seq) => ({ seq, t: 5, type: 'boot' }));
      await publish(machine, `fleet/${id}/events`, JSON.stringify({ v: 1, events: list }));
      await eventually('the conflict counted', async () => ((gw.ingester.stats.rejected['seq-conflict'] ?? 0) > before ? true : undefined));
      await gw.ingester.flush();
      assert.equal(acks.length, ackCount, 'no acknowledgement');
      assert.equal(await count(b.db, "SELECT count(*) AS n FROM events WHERE machine_id = $1 AND type = 'boot'", [id]), 0);
    });

    it('keeps telemetry by day and makes the newest the machine state; status says online or offline', async () => {
      await publish(machine, `fleet/${id}b/telemetry`, JSON.stringify({ v: 1, t: 50, slots: [{ code: 'A1', qty: 3 }] }));
      await publish(machine, `fleet/${id}b/telemetry`, JSON.stringify({ v: 1, t: 60, slots: [{ code: 'A1', qty: 2 }] }));
      const state = await eventually('telemetry in the machine state', async () => {
        const r = (await b.db.query<{ telemetry: { t: number } | null }>('SELECT telemetry FROM machine_state WHERE machine_id = $1', [`${id}b`])).rows[0];
        return r?.telemetry?.t === 60 ? r : undefined;
      });
      assert.equal(state.telemetry!.t, 60);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM telemetry WHERE machine_id = $1', [`${id}b`]), 2);
      await publish(machine, `fleet/${id}b/status`, JSON.stringify({ v: 1, online: false }));
      await eventually('offline', async () => ((await b.db.query<{ online: boolean }>('SELECT online FROM machine_state WHERE machine_id = $1', [`${id}b`])).rows[0]?.online === false ? true : undefined));
    });

    it('refuses bad input with a counted reason, and the good message in the same batch still lands', async () => {
      const before = { ...gw.ingester.stats.rejected };
      const ackCount = acks.length;
      await publish(machine, `fleet/${id}/events`, '{"v":1,"events":[{"seq":');
      await publish(machine, `fleet/${id}/events`, Buffer.alloc(70 * 1024, 0x20));
      await publish(machine, `fleet/${id}/events`, JSON.stringify({ v: 1, events: [{ seq: 'x', t: 1, type: 'coin-in' }] }));
      await publish(machine, `fleet/${id}/events`, JSON.stringify({ v: 1, events: [{ seq: 30, t: 1, type: 'coin-in' }, { seq: 32, t: 1, type: 'coin-in' }] }));
      await publish(machine, `fleet/${id}/events`, JSON.stringify({ v: 2, events: [] }));
      await publish(machine, `fleet/${id}/events`, JSON.stringify({ v: 1, events: [{ seq: 2 ** 40, t: 1, type: 'coin-in' }] }));
      await publish(machine, `fleet/${id}/events`, JSON.stringify({ v: 1, events: [{ seq: 40, t: 1, type: "x'; DROP TABLE events; --" }] }));
      await publish(machine, 'fleet/nobody-knows-me/events', events(1, 3));
      await publish(machine, `fleet/${id}/events`, events(21, 25));
      await eventually('the good message acknowledged', async () => (acks.some((a) => a.from === 21 && a.to === 25) ? true : undefined));
      await eventually('every refusal counted', async () => {
        const r = gw.ingester.stats.rejected;
        const grew = (k: keyof typeof r): number => (r[k] ?? 0) - (before[k] ?? 0);
        return grew('malformed-json') === 1 && grew('oversized') === 1 && grew('bad-message') === 4 && grew('bad-event') === 1 && grew('unknown-machine') === 1 ? true : undefined;
      });
      // A well-framed message whose event breaks the contract: that event is recorded as refused under its
      // number and acknowledged (nothing waits behind it); a message without a sound frame is not.
      await eventually('the refused event acknowledged', async () => (acks.some((a) => a.from === 40 && a.to === 40) ? true : undefined));
      assert.equal(acks.length, ackCount + 2, 'only the good message and the refused event were acknowledged');
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]), 25);
      const refused = (await b.db.query<{ seq: string; reason: string; raw: string }>('SELECT seq, reason, raw FROM refused_events WHERE machine_id = $1', [id])).rows;
      assert.deepEqual(refused.map((r) => Number(r.seq)), [40]);
      assert.match(refused[0]!.reason, /type/);
      assert.match(refused[0]!.raw, /DROP TABLE/, 'kept as it came, for the operator');
      await gw.ingester.flush();
      const stored = await eventually('rejections stored', async () => {
        const rows = (await b.db.query<{ reason: string; count: string }>('SELECT reason, count FROM rejections')).rows;
        return rows.length >= 4 ? rows : undefined;
      });
      assert.ok(stored.some((r) => r.reason === 'bad-message' && Number(r.count) >= 4));
      assert.ok(stored.some((r) => r.reason === 'bad-event' && Number(r.count) >= 1));
    });

    it('acknowledges nothing while the store is down, and everything once it is back', async () => {
      const db = gw.db as Db & { query: Db['query'] };
      const realTransaction = db.transaction.bind(db);
      const realQuery = db.query.bind(db);
      let failures = 0;
      const refused = (): never => {
        throw Object.assign(new Error('connection refused (injected)'), { code: 'ECONNREFUSED' });
      };
      // The whole store away: transactions and single queries (the gateway pings it to be sure).
      db.transaction = async () => {
        failures++;
        return refused();
      };
      db.query = async () => refused();
      const ackCount = acks.length;
      // The ingester's own failed tries (the alert engine's transactions, gathered after earlier telemetry, count in `failures` too).
      const errorsBefore = gw.ingester.stats.storeErrors;
      try {
        await publish(machine, `fleet/${id}/events`, events(26, 30));
        await eventually('retries', async () => (failures >= 2 && gw.ingester.stats.storeErrors >= errorsBefore + 2 ? true : undefined));
        assert.equal(acks.length, ackCount, 'no acknowledgement without a commit');
      } finally {
        db.transaction = realTransaction;
        db.query = realQuery;
      }
      await eventually('the held-back events acknowledged', async () => (acks.some((a) => a.from === 26 && a.to === 30) ? true : undefined));
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]), 30);
      assert.ok(gw.ingester.stats.storeErrors >= 2);
    });

    it('acknowledges each run of consecutive numbers once per batch, never across a gap', async () => {
      const m = `${id}c`;
      await gw.addMachines([m]);
      const got: [string, number, number][] = [];
      const ingester = new Ingester(ingestStore(b.db), (machine, from, to) => got.push([machine, from, to]), { flushMs: 10000 });
      ingester.known([m, `${id}b`]);
      const put = (from: number, to: number, who = m): void => ingester.submit(`fleet/${who}/events`, Buffer.from(events(from, to)));
      put(1, 5);
      put(6, 6);
      put(7, 9);
      put(20, 22); // events 10..19 still on their way: a gap
      put(23, 23);
      put(1, 2, `${id}b`); // another machine's numbers are its own
      put(3, 4, `${id}b`);
      await ingester.flush();
      assert.deepEqual(got, [
        [m, 1, 9],
        [m, 20, 23],
        [`${id}b`, 1, 4],
      ]);
      await ingester.close();
    });

    it('drops a resend whose events are all still waiting to be committed, and acknowledges them once that copy commits', async () => {
      const m = `${id}w`;
      await gw.addMachines([m]);
      let down = false;
      // The store as the ingester sees it: everything fails while `down` (PostgreSQL unreachable: the gateway's ping too).
      const refused = (): Promise<never> => Promise.reject(Object.assign(new Error('connection refused (injected)'), { code: 'ECONNREFUSED' }));
      const store: Db = {
        kind: b.db.kind,
        query: <R>(sql: string, params?: unknown[]) => (down ? refused() : b.db.query<R>(sql, params)),
        exec: (sql) => b.db.exec(sql),
        close: async () => {},
        transaction: (fn) => (down ? refused() : b.db.transaction(fn)),
      };
      const got: [number, number][] = [];
      // Batches of 25 rows: the first batch (1..25) commits before the second.
      const ingester = new Ingester(ingestStore(store), (_machine, from, to) => got.push([from, to]), { flushMs: 10000, maxBatchRows: 25 });
      ingester.known([m]);
      const put = (body: string): void => ingester.submit(`fleet/${m}/events`, Buffer.from(body));
      down = true;
      put(events(1, 20));
      put(events(21, 25));
      await ingester.flush();
      assert.equal(ingester.waiting, 2, 'held back while the store is down');
      // The machine heard nothing and sends again: the same events, whole or in part, are waiting.
      put(events(1, 20));
      put(events(5, 10));
      put(events(15, 25));
      assert.equal(ingester.stats.waitingDuplicates, 3);
      assert.equal(ingester.stats.waitingDuplicateEvents, 20 + 6 + 11);
      // Not the same work: events beyond those waiting, or different events under the same numbers (a wiped journal).
      put(events(21, 30));
      put(JSON.stringify({ v: 1, events: [{ seq: 3, t: 5, type: 'boot' }] }));
      assert.equal(ingester.stats.waitingDuplicates, 3);
      assert.equal(ingester.waiting, 4);
      down = false;
      await ingester.flush();
      assert.deepEqual(
        got,
        [
          [1, 25],
          [21, 30],
        ],
        'the first copy acknowledged covers the dropped resends',
      );
      assert.equal(ingester.stats.duplicates, 6, 'only 21..25 again, and the different event 3, were not inserted');
      assert.equal(ingester.stats.rejected['seq-conflict'], 1);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [m]), 30);
      // Committed, so no longer waiting: a later resend is written (and found stored) and acknowledged again.
      put(events(1, 20));
      assert.equal(ingester.stats.waitingDuplicates, 3);
      await ingester.flush();
      assert.deepEqual(got.at(-1), [1, 20]);
      assert.equal(ingester.stats.duplicates, 26);
      await ingester.close();
    });

    it('never lets an older telemetry report replace a newer one in the machine state (gateways racing)', async () => {
      const m = `${id}o`;
      await gw.addMachines([m]);
      const ingester = new Ingester(ingestStore(b.db), () => {}, { flushMs: 10000 });
      ingester.known([m]);
      const report = (t: number): Buffer => Buffer.from(JSON.stringify({ v: 1, t, slots: [{ code: 'A1', qty: t }] }));
      ingester.submit(`fleet/${m}/telemetry`, report(50));
      await ingester.flush();
      // Another gateway stored an older report later (one batch each, as two processes would).
      ingester.submit(`fleet/${m}/telemetry`, report(40));
      await ingester.flush();
      const state = async (): Promise<number> => Number((await b.db.query<{ t: string }>("SELECT telemetry->>'t' AS t FROM machine_state WHERE machine_id = $1", [m])).rows[0]!.t);
      assert.equal(await state(), 50);
      ingester.submit(`fleet/${m}/telemetry`, report(60));
      await ingester.flush();
      assert.equal(await state(), 60);
      // Both reports are kept in the telemetry history all the same.
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM telemetry WHERE machine_id = $1', [m]), 3);
      await ingester.close();
    });

    it('bounds every transaction, telemetry included, and holds the source back while too much waits', async () => {
      const pressure: boolean[] = [];
      const ingester = new Ingester(ingestStore(b.db), () => {}, { flushMs: 10000, maxBatchRows: 3, onPressure: (high) => pressure.push(high) });
      ingester.known([`${id}b`]);
      for (let i = 0; i < 7; i++) ingester.submit(`fleet/${id}b/telemetry`, Buffer.from(JSON.stringify({ v: 1, t: 100 + i })));
      assert.deepEqual(pressure, [true], 'more than two batches waiting: the source is told to stop');
      await ingester.flush();
      assert.equal(ingester.stats.telemetry, 7);
      assert.equal(ingester.stats.batches, 3, 'transactions of 3, 3 and 1 rows');
      assert.deepEqual(pressure, [true, false]);
      await ingester.close();
    });

    it('drops telemetry days older than the retention', async () => {
      const old = new Date(Date.now() - 40 * 86400000);
      const name = await ensureTelemetryPartition(b.db, old);
      const dropped = await dropOldTelemetry(b.db, 30);
      assert.ok(dropped.includes(name), `dropped ${dropped.join(', ')}`);
      const today = await ensureTelemetryPartition(b.db, new Date());
      assert.ok(!(await dropOldTelemetry(b.db, 30)).includes(today));
    });
  });
}
