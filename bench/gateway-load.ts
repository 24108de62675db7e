/**
 * Gateway load: publisher connections stand in for machines and publish
 * event messages (QoS 1, about 200 bytes) as fast as the broker takes them;
 * the gateway ingests into PostgreSQL or PGlite. Measured: events persisted
 * per second, receive-to-commit p99, and what a connected machine costs the
 * broker in memory, up to 10,000 connections.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RawClient } from './raw-client.js';
import { startMosquitto } from './lib/mosquitto.js';
import { Gateway } from '../gateway/gateway.js';
import { openDb, type Db } from '../gateway/store/db.js';

/** The bench's own Mosquitto with the shipped queue settings that matter here. */
export function startBenchMosquitto(): ReturnType<typeof startMosquitto> {
  return startMosquitto({ conf: ['max_queued_messages 1000000', 'max_queued_bytes 0', 'max_inflight_messages 1000', 'max_connections -1', 'set_tcp_nodelay true'] });
}

export interface LoadResult {
  persistedPerSecond: number;
  p99Ms: number;
  p50Ms: number;
  duplicates: number;
  rejected: number;
  /** CPU time of the gateway process per 1,000 messages persisted, ms. */
  gatewayCpuMsPer1000: number;
}

const GENERATOR = fileURLToPath(new URL('./load-generator.js', import.meta.url));

/** Start the load generator process and wait until its publishers are connected. */
export async function startGenerator(port: number, machines: number, window: number, kind: string, prefix: string, rate = 0): Promise<{ stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [GENERATOR, String(port), String(machines), String(window), kind, prefix, ...(rate > 0 ? [String(rate)] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`load generator exited (${code}) before it was ready`)));
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Messages persisted per second with `machines` publishers (another process) each keeping `window` messages in flight;
 * with `rate`, the publishers together send that many a second instead, round robin (the gateway's cost per message at a fixed rate).
 */
export async function ingestLoad(options: { mqttUrl: string; db: Db; machines: number; window: number; seconds: number; kind?: 'events' | 'telemetry'; rate?: number }): Promise<LoadResult> {
  const telemetry = options.kind === 'telemetry';
  // A clean session per run: nothing queued from an earlier run reaches this one.
  const gateway = await Gateway.start({ mqttUrl: options.mqttUrl, db: options.db });
  const prefix = `load${process.hrtime.bigint() % 100000n}`;
  const ids = Array.from({ length: options.machines }, (_, i) => `${prefix}-${i}`);
  await gateway.addMachines(ids);
  const generator = await startGenerator(Number(new URL(options.mqttUrl).port), options.machines, options.window, telemetry ? 'telemetry' : 'events', prefix, options.rate ?? 0);
  try {
    const stats = gateway.ingester.stats;
    await new Promise((r) => setTimeout(r, 3000));
    gateway.ingester.resetLatency();
    const persisted = (): number => (telemetry ? stats.telemetry : stats.events);
    const e0 = persisted();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, options.seconds * 1000));
    const e1 = persisted();
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    return {
      persistedPerSecond: ((e1 - e0) * 1000) / (t1 - t0),
      p99Ms: gateway.ingester.latency(99),
      p50Ms: gateway.ingester.latency(50),
      duplicates: stats.duplicates,
      rejected: Object.values(stats.rejected).reduce((a, b) => a + (b ?? 0), 0),
      gatewayCpuMsPer1000: (cpu.user + cpu.system) / (e1 - e0),
    };
  } finally {
    await generator.stop();
    await gateway.close();
  }
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

export interface FleetConnections {
  connected: number;
  brokerBytesPerConnection: number;
  /** Machines whose first events the gateway stored and acknowledged. */
  acknowledged: number;
  /** Seconds from the last machine connecting to the last acknowledgement. */
  ackSeconds: number;
  /** Machines the store shows online while connected, and offline after their last wills. */
  onlineInStore: number;
  offlineAfterWills: number;
}

/**
 * `n` machines at the protocol level, connected at once to a broker process
 * with a gateway on `db`: each connects with its last will, subscribes to its
 * acknowledgements, publishes its retained online status, a telemetry message
 * and its first events, as the firmware does after boot, and waits for the
 * acknowledgement. Then every connection drops without a goodbye, so the
 * broker publishes 10,000 last wills and the store must mark them offline.
 */
export async function connectionsLoad(broker: { port: number; url: string; process: ChildProcess }, db: Db, n: number): Promise<FleetConnections> {
  const gateway = await Gateway.start({ mqttUrl: broker.url, db });
  const prefix = `fleet${process.hrtime.bigint() % 100000n}`;
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  await gateway.addMachines(ids);
  const before = rssKiB(broker.process.pid!);
  const clients: RawClient[] = [];
  let acknowledged = 0;
  let lastAck = 0;
  for (let i = 0; i < n; i += 500) {
    const batch = ids.slice(i, i + 500).map((id) => new RawClient(broker.port, id, { topic: `fleet/${id}/status`, payload: '{"v":1,"online":false}' }));
    await Promise.all(batch.map((c) => c.connected));
    for (const [k, c] of batch.entries()) {
      const id = ids[i + k]!;
      let done = false;
      c.onMessage = (topic, payload) => {
        const m = JSON.parse(payload.toString()) as { to?: number };
        if (!done && topic === `fleet/${id}/acks` && m.to === 3) {
          done = true;
          acknowledged++;
          lastAck = performance.now();
        }
      };
      c.subscribe(`fleet/${id}/acks`);
      c.publish(`fleet/${id}/status`, '{"v":1,"online":true,"fw":"0.1.0"}', true);
      c.publish(`fleet/${id}/telemetry`, '{"v":1,"t":1,"state":"IDLE","slots":[{"code":"A1","qty":7}],"tubes":[{"value":25,"count":41}],"errors":[]}');
      c.publish(`fleet/${id}/events`, '{"v":1,"events":[{"seq":1,"t":0,"type":"boot"},{"seq":2,"t":0,"type":"door-closed"},{"seq":3,"t":1,"type":"coin-in","value":25}]}');
    }
    clients.push(...batch);
  }
  const allConnected = performance.now();
  for (let i = 0; i < 600 && acknowledged < n; i++) await new Promise((r) => setTimeout(r, 100));
  const after = rssKiB(broker.process.pid!);
  const connected = clients.filter((c) => !c.socket.destroyed).length;
  await gateway.ingester.flush();
  const online = await db.query<{ n: string }>('SELECT count(*) AS n FROM machine_state WHERE online AND machine_id = ANY($1::text[])', [ids]);
  for (const c of clients) c.close();
  let offline = 0;
  for (let i = 0; i < 300 && offline < n; i++) {
    await new Promise((r) => setTimeout(r, 100));
    await gateway.ingester.flush();
    offline = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM machine_state WHERE NOT online AND machine_id = ANY($1::text[])', [ids])).rows[0]!.n);
  }
  await gateway.close();
  return {
    connected,
    brokerBytesPerConnection: ((after - before) * 1024) / n,
    acknowledged,
    ackSeconds: acknowledged > 0 ? Math.max(0, lastAck - allConnected) / 1000 : 0,
    onlineInStore: Number(online.rows[0]!.n),
    offlineAfterWills: offline,
  };
}

export { openDb };
