/**
 * The fleet on a 3-node RabbitMQ cluster of the bench's own (issue 16):
 * protocol-level machines (bench/cluster-machines.ts, their own process)
 * spread over the three nodes' MQTT ports, two real gateways consuming the
 * uplink over AMQP (quorum queues) into PostgreSQL (a schema of the bench's
 * own). Measured at the fleet's average rate (1,150 messages a second) and
 * at three times that: publish to the gateway's acknowledgement (sent after
 * the commit, back through the broker), and the gateways' receive-to-commit.
 * Then, at the average rate, the node holding the ingest queue's leader, one
 * gateway's connection and a third of the machines is killed (SIGKILL):
 * how long nothing is stored, and how many messages the broker had
 * acknowledged to a machine are missing from the store at the end (goal 0).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Gateway } from '../../gateway/gateway.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import type { Figures } from './figures.js';
import { RabbitCluster, type RabbitNode } from './rabbitmq.js';

const PG_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const MACHINES = fileURLToPath(new URL('../cluster-machines.js', import.meta.url));
/** The fleet's average rate (issue 16: 100,000 machines), messages a second. */
export const FLEET_AVERAGE = 1150;

interface Report {
  p50: number;
  p99: number;
  pubackP50: number;
  pubackP99: number;
  max: number;
  samples: number;
  published: number;
  committed: number;
  drops: number;
  reconnects: number;
  skipped: number;
  connected: number;
  unconfirmed: number;
}

class Machines {
  private buffered = '';
  private readonly lines: ((line: string) => void)[] = [];

  private constructor(readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    child.stdout.on('data', (d: Buffer) => {
      this.buffered += d.toString();
      for (let at = this.buffered.indexOf('\n'); at >= 0; at = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, at);
        this.buffered = this.buffered.slice(at + 1);
        this.lines.shift()?.(line);
      }
    });
  }

  static async start(nodes: RabbitNode[], n: number, prefix: string): Promise<{ machines: Machines; connected: number }> {
    const child = spawn(process.execPath, [MACHINES, nodes.map((x) => x.mqttPort).join(','), String(n), prefix], { stdio: ['pipe', 'pipe', 'inherit'] });
    const m = new Machines(child);
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the machines' process exited (${code})`))));
    const ready = await Promise.race([m.next(), exited]);
    return { machines: m, connected: Number(ready.split(' ')[1]) };
  }

  private next(): Promise<string> {
    return new Promise((resolve) => this.lines.push(resolve));
  }

  say(cmd: string): void {
    this.child.stdin.write(cmd + '\n');
  }

  async ask<T>(cmd: string): Promise<T> {
    const line = this.next();
    this.say(cmd);
    return JSON.parse(await line) as T;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.say('stop');
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  // The node's Erlang VM is the shell script's child (beam.smp); its process group holds both.
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return [pid, ...children].reduce((a, p) => a + Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0), 0) / 1024;
  } catch {
    return 0;
  }
}

export async function clusterBench(f: Figures, options: { machines: number; seconds: number }): Promise<void> {
  f.out('');
  f.out(`RabbitMQ cluster (3 nodes, this machine): ${options.machines} protocol-level machines over the nodes' MQTT ports, two gateways on AMQP into PostgreSQL`);
  const started = Date.now();
  const cluster = await RabbitCluster.start(3);
  f.out(`    (cluster up in ${((Date.now() - started) / 1000).toFixed(0)} s; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`);
  const [n1, n2, n3] = cluster.nodes as [RabbitNode, RabbitNode, RabbitNode];
  const schema = `bench_cluster_${process.pid}`;
  const dbs: Db[] = [];
  const gws: Gateway[] = [];
  let machines: Machines | undefined;
  try {
    for (const urls of [[n1, n2, n3], [n2, n3, n1]]) {
      const db = await openDb({ url: PG_URL, schema });
      dbs.push(db);
      // gw0 declares the queues on n1: their leaders are there (the node killed below).
      gws.push(await Gateway.start({ amqp: { urls: urls.map((n) => n.amqpUrl) }, db, shareGroup: `vfb${process.pid}`, alerts: false, rollouts: false, probeTimeoutMs: 15000 }));
    }
    const prefix = `cb${process.pid}`;
    const ids = Array.from({ length: options.machines }, (_, i) => `${prefix}-${i}`);
    for (let i = 0; i < ids.length; i += 5000) await gws[0]!.addMachines(ids.slice(i, i + 5000));
    gws[1]!.ingester.known(ids);
    const rss0 = cluster.nodes.map((n) => rssMiB(n.process?.pid));
    const connectStart = Date.now();
    const m = await Machines.start(cluster.nodes, options.machines, prefix);
    machines = m.machines;
    const connectSeconds = (Date.now() - connectStart) / 1000;
    const rss1 = cluster.nodes.map((n) => rssMiB(n.process?.pid));
    f.record('cluster.machines', m.connected, 'machines connected and subscribed to their acks');
    f.record('cluster.connectSeconds', connectSeconds, 'seconds to connect and subscribe them all (batches of 200)', 's', 1);
    f.record('cluster.nodeMiBPerThousand', ((rss1.reduce((a, b) => a + b, 0) - rss0.reduce((a, b) => a + b, 0)) * 1000) / options.machines, 'memory of the three nodes per 1,000 machines (MiB)', '', 0);
    const stored = (): number => gws.reduce((a, g) => a + g.ingester.stats.events, 0);

    for (const [label, rate] of [['average', FLEET_AVERAGE], ['x3', 3 * FLEET_AVERAGE]] as const) {
      machines.say(`rate ${rate}`);
      await sleep(5000);
      machines.say('mark');
      for (const g of gws) g.ingester.resetLatency();
      const s0 = stored();
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      await sleep(options.seconds * 1000);
      const r = await machines.ask<Report>('report');
      const cpu = process.cpuUsage(cpu0);
      const perSecond = ((stored() - s0) * 1000) / (performance.now() - t0);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      f.record(`cluster.${label}.perSecond`, Math.round(perSecond), `${label === 'average' ? 'the fleet average' : '3x the average'} (${rate}/s offered): events stored per second`);
      f.record(`cluster.${label}.p50Ms`, r.p50, `  publish to the gateway's ack (after commit) p50 (ms)`, '', 1);
      f.record(`cluster.${label}.p99Ms`, r.p99, `  publish to the gateway's ack p99 (ms)`, '', 1);
      f.record(`cluster.${label}.pubackP50Ms`, r.pubackP50, `  publish to the broker's PUBACK p50 (ms)`, '', 1);
      f.record(`cluster.${label}.pubackP99Ms`, r.pubackP99, `  publish to the broker's PUBACK p99 (ms)`, '', 1);
      f.record(`cluster.${label}.commitP99Ms`, Math.max(...gws.map((g) => g.ingester.latency(99))), `  gateways' receive-to-commit p99 (ms)`, '', 1);
      f.record(`cluster.${label}.gatewayCpuPercent`, (cpuMs * 100) / (performance.now() - t0), `  the gateways' process: CPU, % of one core (load average ${loadavg()[0]!.toFixed(1)})`, '', 0);
      f.record(`cluster.${label}.gatewayCpuMsPer1000`, (cpuMs * 1000) / Math.max(1, stored() - s0), `  the gateways' CPU per 1,000 events stored (ms)`, '', 0);
      if (r.skipped > 0) f.out(`    (${r.skipped} messages not offered: every machine's window was full)`);
    }

    // A node dies under the average load: the queues' leader, gw0's connection, a third of the machines.
    machines.say(`rate ${FLEET_AVERAGE}`);
    await sleep(5000);
    machines.say('mark');
    const before = await machines.ask<Report>('report');
    const samples: [number, number][] = [];
    const sampler = setInterval(() => samples.push([performance.now(), stored()]), 50);
    await sleep(2000);
    const killedAt = performance.now();
    await cluster.kill(n1);
    // Every machine back (on n2 or n3), bounded.
    let back = -1;
    for (let i = 0; i < 180; i++) {
      await sleep(500);
      const r = await machines.ask<Report>('report');
      if (r.connected === m.connected && r.drops > before.drops) {
        back = performance.now() - killedAt;
        break;
      }
    }
    await sleep(Math.max(0, options.seconds * 1000 - (performance.now() - killedAt)));
    clearInterval(sampler);
    machines.say('rate 0');
    // The longest stretch with nothing stored, from the kill on.
    let pause = 0;
    let last = killedAt;
    let count = samples.find(([t]) => t >= killedAt)?.[1] ?? 0;
    for (const [t, n] of samples) {
      if (t < killedAt) continue;
      if (n > count) {
        pause = Math.max(pause, t - last);
        last = t;
        count = n;
      }
    }
    const firstAfter = samples.find(([t, n]) => t > killedAt && n > (samples.find(([t2]) => t2 >= killedAt)?.[1] ?? 0));
    const during = await machines.ask<Report>('report');
    f.out(`    (load average ${loadavg()[0]!.toFixed(1)} after the kill)`);
    // Everything sent again and acknowledged, or given up on after two minutes.
    let final = await machines.ask<{ open: Record<string, number[]>; unconfirmed: number; published: number }>('final');
    for (let i = 0; i < 120 && final.unconfirmed > 0; i++) {
      await sleep(1000);
      final = await machines.ask('final');
    }
    // The queues drained: nothing more stored for 3 s.
    for (let quiet = 0, was = -1; quiet < 3; ) {
      for (const g of gws) await g.ingester.flush();
      const now = stored();
      quiet = now === was ? quiet + 1 : 0;
      was = now;
      await sleep(1000);
    }
    let lost = 0;
    for (const [id, seqs] of Object.entries(final.open)) {
      const r = await dbs[0]!.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE machine_id = $1 AND seq = ANY($2::int[])', [id, seqs]);
      lost += seqs.length - Number(r.rows[0]!.n);
    }
    const total = Number((await dbs[0]!.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE machine_id LIKE $1', [`${prefix}-%`])).rows[0]!.n);
    f.record('cluster.kill.firstStoreMs', firstAfter ? firstAfter[0] - killedAt : -1, 'node killed: first event stored after the kill (ms)', '', 0);
    f.record('cluster.kill.pauseMs', pause, 'node killed: longest stretch with nothing stored (ms)', '', 0);
    f.record('cluster.kill.p99Ms', during.p99, 'node killed: publish to ack p99, messages sent from 2 s before (ms)', '', 0);
    f.record('cluster.kill.drops', during.drops - before.drops, 'machine connections the kill dropped');
    f.record('cluster.kill.reconnects', during.reconnects - before.reconnects, 'machines reconnected to another node');
    f.record('cluster.kill.allBackMs', back, 'node killed: every machine connected again after (ms; -1: not within 90 s)', '', 0);
    f.record('cluster.kill.lost', lost, 'messages the broker acknowledged and the store lacks (goal 0)');
    f.record('cluster.kill.unconfirmed', final.unconfirmed, 'messages the broker never acknowledged at the end (a machine resends)');
    f.record('cluster.kill.stored', total, `events stored once each, of ${final.published} published`);
  } finally {
    await machines?.stop();
    for (const g of gws) await g.close();
    if (dbs[0]) await dbs[0].exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
    for (const d of dbs) await d.close();
    await cluster.close();
  }
}
