/**
 * The two setups every gateway test runs against: the embedded default
 * (aedes in this process, PGlite in memory) and production parts (a
 * Mosquitto of this test process's own and the machine's PostgreSQL;
 * MQTT_URL / DATABASE_URL override), each test run in a schema of its own.
 *
 * Why not the machine's Mosquitto on 1883: two test runs at once (CI beside
 * a developer's `npm test`) publish the same topics at the same moment, and
 * each run's gateway, in a share group of its own, then also counts the
 * other run's messages; tests that count rejections exactly failed on it.
 */
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { openDb, type Db, type Queryable } from '../../gateway/store/db.js';
import { strict as assert } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import type { MachineHost } from '../../hal-sim/host.js';
import { startMosquitto } from '../../bench/lib/mosquitto.js';

export interface Backend {
  name: string;
  mqttUrl: string;
  db: Db;
  /** A fresh store of the same kind (a second gateway, a restart). */
  reopen(): Promise<Db>;
  shareGroup?: string;
  close(): Promise<void>;
}

export const PRODUCTION_DB = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

let ownBroker: Promise<string> | undefined;

/**
 * The production backend's broker: MQTT_URL when set, else one Mosquitto for this
 * test process, started at first use and killed when the process exits.
 */
export function productionMqtt(): Promise<string> {
  const given = process.env['MQTT_URL'];
  if (given !== undefined) return Promise.resolve(given);
  // Gone with this process however it ends (a run killed by a signal too), and no reason for it to stay alive.
  ownBroker ??= startMosquitto().then(({ url, process: p }: { url: string; process: ChildProcess }) => {
    p.unref();
    return url;
  });
  return ownBroker;
}
export const BACKENDS: { name: string; open(): Promise<Backend> }[] = [
  {
    name: 'embedded (aedes + PGlite)',
    async open() {
      const broker: EmbeddedBroker = await startEmbeddedBroker({ port: 0 });
      const db = await openDb();
      return {
        name: 'embedded',
        mqttUrl: broker.url,
        db,
        reopen: async () => db,
        async close() {
          await db.close();
          await broker.close();
        },
      };
    },
  },
  {
    name: 'production (Mosquitto + PostgreSQL)',
    async open() {
      const schema = `t_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
      const mqttUrl = await productionMqtt();
      const db = await openDb({ url: PRODUCTION_DB, schema });
      const extra: Db[] = [];
      return {
        name: 'production',
        mqttUrl,
        db,
        // Its own group per test: a gateway another test failed to close cannot take this one's messages.
        shareGroup: `vf${process.pid}x${Math.floor(Math.random() * 1e9)}`,
        reopen: async () => {
          const d = await openDb({ url: PRODUCTION_DB, schema });
          extra.push(d);
          return d;
        },
        async close() {
          for (const d of extra) await d.close();
          await db.exec(`DROP SCHEMA ${schema} CASCADE`);
          await db.close();
        },
      };
    },
  },
];

/** Poll `check` until it returns a value or `ms` pass. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 10000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A `SELECT count(*) AS n ...` as a number. */
export async function count(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  return Number((await db.query<{ n: string }>(sql, params)).rows[0]!.n);
}

/** Run the machine until the gateway has acknowledged everything (at most `maxMs` of machine time); its last event. */
export async function synced(host: MachineHost, maxMs = 900000): Promise<number> {
  for (let t = 0; t < maxMs; t += 1000) {
    const st = await host.status();
    if (st.journal.unsynced === 0 && st.uplink?.state === 'online') return st.journal.lastSeq;
    await host.run(1000);
  }
  const st = await host.status();
  throw new Error(`still ${st.journal.unsynced} unsynced events, uplink ${JSON.stringify(st.uplink)}`);
}

/** Every event of the machine stored once, every sale and its revenue as the machine counted them. */
export async function assertExactlyOnce(db: Queryable, host: MachineHost, id: string): Promise<void> {
  const st = await host.status();
  assert.equal(await count(db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]), st.journal.lastSeq, `${id}: every event stored once`);
  assert.equal(await count(db, 'SELECT count(*) AS n FROM sales WHERE machine_id = $1', [id]), st.counters.sales, `${id}: every sale stored`);
  const revenue = Number((await db.query<{ r: string | null }>('SELECT sum(price) AS r FROM sales WHERE machine_id = $1', [id])).rows[0]!.r ?? 0);
  assert.equal(revenue, st.counters.revenue, `${id}: revenue`);
}
