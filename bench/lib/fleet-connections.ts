/**
 * The whole fleet connected to one Mosquitto (issue 16): N protocol-level
 * machines (bench/fleet-machines.ts, a process of its own) each with its
 * will, acks subscription and retained status, one gateway on a PostgreSQL
 * database of the bench's own, then the fleet's average load and three
 * times it: publish-to-acknowledgement latency of event messages (the ack
 * is sent after the commit), and what a connected machine costs Mosquitto
 * and the gateway in memory. `npm run bench -- --connections-only`.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Gateway } from '../../gateway/gateway.js';
import { openDb } from '../../gateway/store/db.js';
import type { ConnectedReport, FleetSettings, LoadReport } from '../fleet-machines.js';
import type { Figures } from './figures.js';
import { startMosquitto, stopMosquitto } from './mosquitto.js';

const MACHINES = fileURLToPath(new URL('../fleet-machines.js', import.meta.url));
const ACL = fileURLToPath(new URL('../../../gateway/deploy/acl', import.meta.url));

/** Each machine's telemetry every 300 s (the firmware's default interval). */
export const TELEMETRY_INTERVAL_S = 300;
/** 100 sales a day of 7 events (three coins, vend-start, vend-ok, payout-start, payout-done), one event a message. */
export const EVENTS_PER_DAY = 700;

/** The fleet's average message rate for `machines`: telemetry plus sale events (1,143/s at 100,000). */
export function averageRate(machines: number): { rate: number; telemetryShare: number } {
  const telemetry = machines / TELEMETRY_INTERVAL_S;
  const events = (machines * EVENTS_PER_DAY) / 86400;
  return { rate: telemetry + events, telemetryShare: telemetry / (telemetry + events) };
}

export interface KernelLimits {
  portRange: string;
  fileMax: number;
  nrOpen: number;
  /** This process's open-file limit, soft/hard, before anything is raised. */
  nofile: string;
}

export function kernelLimits(): KernelLimits {
  const read = (p: string): string => readFileSync(p, 'utf8').trim().replace(/\s+/g, ' ');
  const limits = /Max open files\s+(\S+)\s+(\S+)/.exec(read('/proc/self/limits'));
  return {
    portRange: read('/proc/sys/net/ipv4/ip_local_port_range'),
    fileMax: Number(read('/proc/sys/fs/file-max')),
    nrOpen: Number(read('/proc/sys/fs/nr_open')),
    nofile: limits ? `${limits[1]}/${limits[2]}` : '?',
  };
}

/** Descriptors Mosquitto needs besides its machines' (listener, epoll, the gateway's connections, stdio), with room. */
const RESERVE_FDS = 64;

/**
 * The open-file limit the broker and the machines' process get: `want` if
 * prlimit may raise the hard limit that far (root with CAP_SYS_RESOURCE),
 * otherwise the hard limit this process has (a sandbox without that
 * capability cannot go past it), with prlimit's complaint.
 */
export function raisableNofile(want: number, limits: KernelLimits): { nofile: number; refused?: string } {
  const r = spawnSync('prlimit', [`--nofile=${want}:${want}`, 'true'], { encoding: 'utf8' });
  if (r.status === 0) return { nofile: want };
  const hard = Number(limits.nofile.split('/')[1]);
  return { nofile: Number.isFinite(hard) ? Math.min(want, hard) : 1024, refused: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** User + system CPU of a process, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 10;
}

export interface PhaseResult extends LoadReport {
  label: string;
  rate: number;
  /** What the gateway stored meanwhile (phase and the wait for its last acks). */
  eventsStored: number;
  telemetryStored: number;
  rejected: number;
  /** CPU share of one core over the phase. */
  brokerCpu: number;
  gatewayCpu: number;
  /** Gateway CPU per 1,000 messages stored (ms). */
  gatewayCpuMsPer1000: number;
}

export interface FleetResult {
  limits: KernelLimits;
  nofile: number;
  /** Why the open-file limit could not be raised as far as asked, if it could not. */
  refused: string | undefined;
  /** The fleet asked for (its rates are the loads'), and the machines connected (at most what the limit lets one Mosquitto hold). */
  requested: number;
  machines: number;
  connected: number;
  failed: Record<string, number>;
  addresses: string[];
  connectSeconds: number;
  /** From the last connection until the store showed every connected machine online. */
  onlineSeconds: number;
  onlineInStore: number;
  brokerKiB: { before: number; connected: number; loaded: number };
  gatewayKiB: { before: number; connected: number; loaded: number };
  generatorKiB: number;
  phases: PhaseResult[];
  offlineAfterWills: number;
  willsSeconds: number;
}

export interface FleetOptions {
  /** The fleet whose rates the loads are; as many of its machines connect as one Mosquitto can hold here. */
  machines: number;
  /** Seconds of each load. */
  seconds: number;
  /** The loads as multiples of the fleet's average rate (1 and 3). */
  scales?: number[];
  /** Connect at most this many of the fleet's machines (the loads stay the whole fleet's): tells the connections' cost from the rate's. */
  connect?: number;
  /** Messages a second instead of the average rate (a quick test). */
  rate?: number;
  pgUrl: string;
  perAddress?: number;
  keepaliveS?: number;
  log?: (line: string) => void;
}

function waitLine<T>(lines: AsyncIterator<string>, type: string): Promise<T> {
  return (async () => {
    for (;;) {
      const r = await lines.next();
      if (r.done) throw new Error(`the machines' process ended before "${type}"`);
      const m = JSON.parse(r.value) as { type: string };
      if (m.type === type) return m as T;
    }
  })();
}

export async function fleetConnections(o: FleetOptions): Promise<FleetResult> {
  const log = o.log ?? (() => {});
  const limits = kernelLimits();
  // One descriptor a connection on either side, and room for the rest.
  const raised = raisableNofile(Math.min(limits.nrOpen, o.machines + 20000), limits);
  const nofile = raised.nofile;
  const machines = Math.min(o.machines, o.connect ?? o.machines, nofile - RESERVE_FDS);
  if (raised.refused && nofile - RESERVE_FDS < Math.min(o.machines, o.connect ?? o.machines)) log(`  open files: prlimit cannot raise the limit past ${nofile} here (${raised.refused}): one Mosquitto holds at most ${machines} machines`);
  const admin = new pg.Client({ connectionString: o.pgUrl });
  await admin.connect();
  const database = `vf_fleet_${process.pid}_${Date.now() % 100000}`;
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(o.pgUrl);
  url.pathname = `/${database}`;
  const db = await openDb({ url: url.toString() });
  let mosquitto: Awaited<ReturnType<typeof startMosquitto>> | undefined;
  let gateway: Gateway | undefined;
  let child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  // The shipped ACL (each machine its own topics, by its user name); no password file (docs/benchmarks.md).
  const dir = mkdtempSync(join(tmpdir(), 'vf-fleet-'));
  try {
    chmodSync(dir, 0o755);
    copyFileSync(ACL, join(dir, 'acl'));
    mosquitto = await startMosquitto({
      nofile,
      dir,
      conf: ['max_queued_messages 1000000', 'max_queued_bytes 0', 'max_inflight_messages 1000', 'max_connections -1', 'set_tcp_nodelay true', 'message_size_limit 65536', `acl_file ${join(dir, 'acl')}`],
    });
    const bpid = mosquitto.process.pid!;
    gateway = await Gateway.start({ mqttUrl: mosquitto.url, db, username: 'gateway' });
    const prefix = `vm${Date.now() % 100000}`;
    const ids = Array.from({ length: machines }, (_, i) => `${prefix}-${i}`);
    for (let i = 0; i < ids.length; i += 10000) await gateway.addMachines(ids.slice(i, i + 10000));
    const brokerBefore = rssKiB(bpid);
    const gatewayBefore = rssKiB(process.pid);
    const settings: FleetSettings = { port: mosquitto.port, machines, prefix, keepaliveS: o.keepaliveS ?? 60, connecting: 500, perAddress: o.perAddress ?? 10000 };
    log(`  connecting ${machines} machines (open files ${nofile} for Mosquitto and the machines' process) ...`);
    child = spawn('prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, MACHINES, JSON.stringify(settings)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const c = await waitLine<ConnectedReport>(lines, 'connected');
    log(`  ${c.connected} connected in ${c.seconds.toFixed(1)} s${Object.keys(c.failed).length > 0 ? `, failed: ${JSON.stringify(c.failed)}` : ''}`);
    // Every online status stored before the loads, so they measure the loads alone.
    const tc = performance.now();
    const onlineNow = async (): Promise<number> => {
      await gateway!.ingester.flush();
      return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM machine_state WHERE online')).rows[0]!.n);
    };
    let online = await onlineNow();
    for (let k = 0; k < 600 && online < c.connected; k++) {
      await new Promise((r) => setTimeout(r, 500));
      online = await onlineNow();
    }
    const onlineSeconds = (performance.now() - tc) / 1000;
    log(`  ${online} online in the store ${onlineSeconds.toFixed(1)} s later`);
    const brokerConnected = rssKiB(bpid);
    const gatewayConnected = rssKiB(process.pid);
    const phases: PhaseResult[] = [];
    const average = averageRate(o.machines);
    for (const scale of o.scales ?? [1, 3]) {
      const rate = o.rate ?? average.rate * scale;
      const stats = gateway.ingester.stats;
      const e0 = stats.events;
      const t0 = stats.telemetry;
      const r0 = Object.values(stats.rejected).reduce((a, b) => a + (b ?? 0), 0);
      const b0 = cpuMs(bpid);
      const g0 = process.cpuUsage();
      const w0 = performance.now();
      child.stdin.write(JSON.stringify({ cmd: 'load', rate, seconds: o.seconds, telemetryShare: average.telemetryShare }) + '\n');
      const r = await waitLine<LoadReport>(lines, 'load');
      await gateway.ingester.flush();
      const wall = performance.now() - w0;
      const g = process.cpuUsage(g0);
      const label = o.rate !== undefined ? `${Math.round(rate)}/s` : `${scale}x average`;
      const phase: PhaseResult = {
        ...r,
        label,
        rate,
        eventsStored: stats.events - e0,
        telemetryStored: stats.telemetry - t0,
        rejected: Object.values(stats.rejected).reduce((a, b) => a + (b ?? 0), 0) - r0,
        brokerCpu: (cpuMs(bpid) - b0) / wall,
        gatewayCpu: (g.user + g.system) / 1000 / wall,
        gatewayCpuMsPer1000: (g.user + g.system) / Math.max(1, stats.events - e0 + stats.telemetry - t0),
      };
      phases.push(phase);
      log(`  ${label} (${Math.round(rate)} messages/s): p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, ${r.acked}/${r.eventMessages} acked`);
    }
    const brokerLoaded = rssKiB(bpid);
    const gatewayLoaded = rssKiB(process.pid);
    // Every connection drops without a goodbye: the broker publishes the wills.
    const tw = performance.now();
    child.stdin.write('{"cmd":"close"}\n');
    await waitLine(lines, 'closed');
    const offlineNow = async (): Promise<number> => {
      await gateway!.ingester.flush();
      return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM machine_state WHERE NOT online')).rows[0]!.n);
    };
    let offline = await offlineNow();
    for (let k = 0; k < 600 && offline < c.connected; k++) {
      await new Promise((r) => setTimeout(r, 500));
      offline = await offlineNow();
    }
    return {
      limits,
      nofile,
      refused: raised.refused,
      requested: o.machines,
      machines,
      connected: c.connected,
      failed: c.failed,
      addresses: c.addresses,
      connectSeconds: c.seconds,
      onlineSeconds,
      onlineInStore: online,
      brokerKiB: { before: brokerBefore, connected: brokerConnected, loaded: brokerLoaded },
      gatewayKiB: { before: gatewayBefore, connected: gatewayConnected, loaded: gatewayLoaded },
      generatorKiB: c.rssKiB,
      phases,
      offlineAfterWills: offline,
      willsSeconds: (performance.now() - tw) / 1000,
    };
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await gateway?.close();
    if (mosquitto) await stopMosquitto(mosquitto.process, mosquitto.port, 'SIGKILL');
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database}`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function fleetConnectionsBench(f: Figures, options: { machines: number; seconds: number; pgUrl: string; connect?: number }): Promise<void> {
  f.out('');
  f.out(`The fleet on one Mosquitto: ${options.machines.toLocaleString('en')} protocol-level machines (will, acks subscription, retained status, keepalive 60 s), one gateway on PostgreSQL, all on this machine`);
  const r = await fleetConnections({ ...options, log: f.out });
  f.out(`  kernel: ephemeral ports ${r.limits.portRange}, fs.file-max ${r.limits.fileMax}, fs.nr_open ${r.limits.nrOpen}; bench open files ${r.limits.nofile} (soft/hard), ${r.refused ? `not raisable (${r.refused})` : `raised to ${r.nofile} for Mosquitto and the machines' process (prlimit)`}; source addresses ${r.addresses[0]} to ${r.addresses[r.addresses.length - 1]}`);
  if (r.refused && r.machines < Math.min(r.requested, options.connect ?? r.requested)) f.out(`  open files: the hard limit is ${r.nofile} and cannot be raised here (${r.refused}; no CAP_SYS_RESOURCE): one Mosquitto process holds at most ${r.machines} machines, so ${r.machines} of the ${r.requested} connect and the loads are the ${r.requested}-machine fleet's rates spread over them`);
  const k = `fleet.${r.requested}`;
  f.record(`${k}.connected`, r.connected, `machines connected at once (of ${r.machines} tried)`);
  if (Object.keys(r.failed).length > 0) f.out(`  failed connections: ${JSON.stringify(r.failed)}`);
  f.record(`${k}.connectSeconds`, r.connectSeconds, 'seconds to connect them all (500 at a time)', 's', 1);
  f.record(`${k}.onlineSeconds`, r.onlineSeconds, 'seconds more until the store showed them all online', 's', 1);
  f.record(`${k}.online`, r.onlineInStore, 'online in the store');
  const per = (a: number, b: number): number => Math.round(((b - a) * 1024) / Math.max(1, r.connected));
  f.record(`${k}.brokerBytesPerMachine`, per(r.brokerKiB.before, r.brokerKiB.connected), `Mosquitto RSS per machine, connected (bytes; ${Math.round(r.brokerKiB.before / 1024)} to ${Math.round(r.brokerKiB.connected / 1024)} MiB)`);
  f.record(`${k}.gatewayBytesPerMachine`, per(r.gatewayKiB.before, r.gatewayKiB.connected), `gateway RSS per machine, connected (bytes; ${Math.round(r.gatewayKiB.before / 1024)} to ${Math.round(r.gatewayKiB.connected / 1024)} MiB)`);
  for (const p of r.phases) {
    const pk = `${k}.${p.label.replace(/\W+/g, '')}`;
    f.out(`  ${p.label}: ${Math.round(p.rate)} messages/s for ${p.seconds} s (${p.eventMessages} event messages, ${p.telemetry} telemetry)`);
    f.record(`${pk}.p50Ms`, p.p50Ms, '  publish to commit (ack received) p50 (ms)', '', 1);
    f.record(`${pk}.p99Ms`, p.p99Ms, '  publish to commit p99 (ms; goal under 1,000)', '', 1);
    f.record(`${pk}.maxMs`, p.maxMs, '  slowest (ms)', '', 1);
    f.record(`${pk}.unacked`, p.unacked, '  event messages not acknowledged within 10 s after');
    f.record(`${pk}.rejected`, p.rejected, '  messages the gateway rejected');
    f.record(`${pk}.stored`, p.eventsStored + p.telemetryStored, '  messages stored meanwhile (events and telemetry)');
    f.record(`${pk}.dropped`, p.dropped, '  connections lost');
    f.record(`${pk}.sentPerSecond`, Math.round((p.eventMessages + p.telemetry) / p.seconds), '  messages sent per second (the machines\' process kept up?)');
    f.record(`${pk}.brokerCpu`, p.brokerCpu, '  Mosquitto CPU (share of one core)');
    f.record(`${pk}.gatewayCpu`, p.gatewayCpu, '  gateway CPU (share of one core)');
    f.record(`${pk}.gatewayCpuMsPer1000`, p.gatewayCpuMsPer1000, '  gateway CPU per 1,000 messages stored (ms)', '', 1);
  }
  f.record(`${k}.brokerBytesPerMachineLoaded`, per(r.brokerKiB.before, r.brokerKiB.loaded), 'Mosquitto RSS per machine after the loads (bytes)');
  f.record(`${k}.gatewayBytesPerMachineLoaded`, per(r.gatewayKiB.before, r.gatewayKiB.loaded), 'gateway RSS per machine after the loads (bytes)');
  if (r.machines < r.requested) {
    const at = (bytes: number): number => Math.round((bytes * r.requested) / 1024 / 1024);
    f.record(`${k}.brokerMiBAtRequested`, at(per(r.brokerKiB.before, r.brokerKiB.loaded)), `Mosquitto memory for ${r.requested} machines at that rate (MiB, linear)`);
    f.record(`${k}.gatewayMiBAtRequested`, at(per(r.gatewayKiB.before, r.gatewayKiB.loaded)), `gateway memory for ${r.requested} machines at that rate (MiB, linear)`);
  }
  f.record(`${k}.generatorMiB`, Math.round(r.generatorKiB / 1024), "the machines' process RSS, connected (MiB)");
  f.record(`${k}.offlineAfterWills`, r.offlineAfterWills, 'offline in the store after every connection dropped (wills)');
  f.record(`${k}.willsSeconds`, r.willsSeconds, 'seconds from the drop until then', 's', 1);
}
