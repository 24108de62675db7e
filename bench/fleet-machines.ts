/**
 * Many machines at the protocol level in one process, for the fleet bench
 * (bench/lib/fleet-connections.ts starts it under a raised open-file limit):
 *
 *   node dist/bench/fleet-machines.js '<json settings>'
 *
 * Each machine connects as the firmware does: a clean session with its
 * retained last will (offline) and a keepalive, subscribes to its `acks`,
 * publishes its retained online status, then pings once a keepalive. The
 * connections spread over source addresses 127.0.0.2, .3, ... (at most
 * PER_ADDRESS each): one source address has only the ephemeral port range
 * (about 28,000 ports) to connect from.
 *
 * Driven over stdin and stdout, one JSON object a line: it prints
 * {"type":"connected",...} once every machine is connected (or failed), then
 * answers {"cmd":"load","rate":R,"seconds":S,"telemetryShare":f} with
 * {"type":"load",...} (R messages a second, a share f of them telemetry,
 * the rest sale events one a message; publish-to-acknowledgement latency of
 * every event message), and {"cmd":"close"} by dropping every connection
 * without a goodbye (the broker publishes the wills) and exiting.
 */
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { connectPacket, decode, PINGREQ, publishPacket, pubackPacket, subscribePacket, type Incoming } from './lib/mqtt-wire.js';

export interface FleetSettings {
  port: number;
  machines: number;
  prefix: string;
  keepaliveS: number;
  /** Connections being set up at once. */
  connecting: number;
  /** Machines per source address. */
  perAddress: number;
}

export interface ConnectedReport {
  type: 'connected';
  connected: number;
  failed: Record<string, number>;
  seconds: number;
  addresses: string[];
  rssKiB: number;
}

export interface LoadReport {
  type: 'load';
  seconds: number;
  eventMessages: number;
  telemetry: number;
  acked: number;
  unacked: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Connections lost during the phase. */
  dropped: number;
  rssKiB: number;
}

/** The seven events of a cash sale, one a message, as the journal records them. */
function saleEvent(seq: number, t: number): string {
  const head = `"seq":${seq},"t":${t}`;
  switch ((seq - 1) % 7) {
    case 0:
      return `{${head},"type":"coin-in","coinType":3,"routing":"tubes","value":100}`;
    case 1:
      return `{${head},"type":"coin-in","coinType":2,"routing":"tubes","value":25}`;
    case 2:
      return `{${head},"type":"coin-in","coinType":2,"routing":"cashbox","value":25}`;
    case 3:
      return `{${head},"type":"vend-start","slot":"B4","price":125}`;
    case 4:
      return `{${head},"type":"vend-ok","slot":"B4","price":125}`;
    case 5:
      return `{${head},"type":"payout-start","asked":25,"tubes":[40,38,22,17]}`;
    default:
      return `{${head},"type":"payout-done","paid":25,"coins":1,"perType":{"2":1}}`;
  }
}

/** A machine's telemetry as the firmware's report writes it (ten slots, four tubes). */
function telemetry(seq: number, t: number): string {
  const slots: string[] = [];
  for (let s = 0; s < 10; s++) {
    slots.push(`{"code":"${s < 5 ? 'A' : 'B'}${(s % 5) + 1}","product":"Product ${s}","category":"snacks","qty":${(seq + s) % 12},"capacity":12,"price":${100 + 25 * s}}`);
  }
  const sales = Math.floor(seq / 7);
  return (
    `{"v":1,"t":${t},"fw":"0.1.0","state":"IDLE","slots":[${slots.join(',')}],` +
    `"tubes":[{"value":5,"count":40},{"value":10,"count":38},{"value":25,"count":22},{"value":100,"count":17}],` +
    `"counters":{"sales":${sales},"revenue":${sales * 125},"cashIn":${sales * 150},"coinsToCashbox":${sales},"billsStacked":0,"paidOut":${sales * 25},"failedVends":0,"uncertainVends":0,"boots":1,"remoteSales":0,"remoteRevenue":0,"commandsRejected":0},` +
    `"locked":false,"intervalS":300,"journal":{"lastSeq":${seq},"unsynced":0,"fill":0.12,"level":"ok"},"temperature":4.5,"errors":[]}`
  );
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function rssKiB(): number {
  return Math.round(process.memoryUsage.rss() / 1024);
}

function send(line: object): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function main(): Promise<void> {
  const s = JSON.parse(process.argv[2] ?? '') as FleetSettings;
  const n = s.machines;
  const ids = Array.from({ length: n }, (_, i) => `${s.prefix}-${i}`);
  const sockets: (Socket | undefined)[] = new Array<Socket | undefined>(n).fill(undefined);
  const tails: (Buffer | undefined)[] = new Array<Buffer | undefined>(n).fill(undefined);
  const ready = new Uint8Array(n);
  const nextId = new Uint16Array(n);
  const seqs = new Uint32Array(n);
  /** When each machine last sent a packet (its keepalive counts from there). */
  const lastSent = new Float64Array(n);
  const failed: Record<string, number> = {};
  const addresses = Array.from({ length: Math.ceil(n / s.perAddress) }, (_, k) => `127.0.0.${2 + k}`);
  /** (machine, seq) of an event message not yet acknowledged → when it was published. */
  const pending = new Map<number, number>();
  let latencies: number[] = [];
  let acked = 0;
  let dropped = 0;
  let connected = 0;
  let settled = 0;
  let started = 0;
  let onSettled: () => void = () => {};
  const t0 = performance.now();
  const journalTime = (): number => Math.floor((performance.now() - t0) / 1000) + 1000;

  const id = (i: number): number => {
    nextId[i] = (nextId[i]! % 65535) + 1;
    return nextId[i]!;
  };

  const packet = (i: number, p: Incoming): void => {
    const sock = sockets[i]!;
    if (p.type === 'connack') {
      lastSent[i] = performance.now();
      if (p.code !== 0) {
        failed[`connack ${p.code}`] = (failed[`connack ${p.code}`] ?? 0) + 1;
        sock.destroy();
        return;
      }
      sock.write(subscribePacket(id(i), `fleet/${ids[i]}/acks`));
      sock.write(publishPacket(id(i), `fleet/${ids[i]}/status`, '{"v":1,"online":true,"fw":"0.1.0"}', true));
    } else if (p.type === 'suback' || p.type === 'puback') {
      // Ready once the subscription (id 1) and the retained status (id 2) are both answered.
      if (ready[i]! < 2 && p.id <= 2) {
        ready[i]!++;
        if (ready[i] === 2) {
          connected++;
          settled++;
          onSettled();
        }
      }
    } else if (p.type === 'publish') {
      if (p.qos > 0) sock.write(pubackPacket(p.id));
      const a = JSON.parse(p.payload.toString()) as { from?: number; to?: number };
      const now = performance.now();
      for (let q = a.from ?? 0; q <= (a.to ?? -1); q++) {
        const key = i * 4294967296 + q;
        const at = pending.get(key);
        if (at === undefined) continue;
        pending.delete(key);
        latencies.push(now - at);
        acked++;
      }
    }
  };

  const open = (i: number): void => {
    started++;
    const sock = connect({ port: s.port, host: '127.0.0.1', localAddress: addresses[Math.floor(i / s.perAddress)]! });
    sockets[i] = sock;
    sock.setNoDelay(true);
    let erred = false;
    sock.on('connect', () => {
      sock.write(connectPacket({ clientId: ids[i]!, username: ids[i]!, keepaliveS: s.keepaliveS, will: { topic: `fleet/${ids[i]}/status`, payload: '{"v":1,"online":false}' } }));
    });
    sock.on('data', (d: Buffer) => {
      tails[i] = decode(tails[i], d, (p) => packet(i, p));
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      erred = true;
      if (ready[i] !== 2) failed[e.code ?? e.message] = (failed[e.code ?? e.message] ?? 0) + 1;
    });
    sock.on('close', () => {
      sockets[i] = undefined;
      if (ready[i] === 2) {
        ready[i] = 3;
        connected--;
        dropped++;
      } else if (ready[i]! < 2) {
        // Failed before it was ready (counted by its error, or here if the broker just closed it).
        if (!erred) failed['closed by the broker'] = (failed['closed by the broker'] ?? 0) + 1;
        ready[i] = 4;
        settled++;
        onSettled();
      }
    });
  };

  // Keepalive: a machine that has sent nothing for three quarters of its keepalive pings, as
  // the firmware's client does when idle (the broker drops a client silent for one and a half).
  const idleMs = 750 * s.keepaliveS;
  const pinger = setInterval(() => {
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      if (ready[i] === 2 && now - lastSent[i]! >= idleMs) {
        sockets[i]!.write(PINGREQ);
        lastSent[i] = now;
      }
    }
  }, 1000);

  // Connect, `connecting` at a time.
  await new Promise<void>((resolve) => {
    onSettled = () => {
      if (started < n) open(started);
      if (settled >= n) resolve();
    };
    for (let k = 0; k < Math.min(s.connecting, n); k++) open(k);
  });
  send({ type: 'connected', connected, failed, seconds: (performance.now() - t0) / 1000, addresses, rssKiB: rssKiB() } satisfies ConnectedReport);

  // A stride coprime with n walks every machine in a scattered order.
  let stride = Math.max(1, Math.floor(n * 0.618));
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  while (gcd(stride, n) !== 1) stride++;
  let cursor = 0;

  const load = async (rate: number, seconds: number, telemetryShare: number): Promise<LoadReport> => {
    latencies = [];
    acked = 0;
    const dropped0 = dropped;
    let eventMessages = 0;
    let telemetrySent = 0;
    let owed = 0;
    let telemetryOwed = 0;
    let last = performance.now();
    const end = last + seconds * 1000;
    const tick = (): void => {
      const now = performance.now();
      owed += (rate * (now - last)) / 1000;
      last = now;
      for (let tries = 0; owed >= 1 && tries < n; tries++) {
        const i = cursor;
        cursor = (cursor + stride) % n;
        if (ready[i] !== 2) continue;
        owed--;
        telemetryOwed += telemetryShare;
        const t = journalTime();
        if (telemetryOwed >= 1) {
          telemetryOwed--;
          sockets[i]!.write(publishPacket(id(i), `fleet/${ids[i]}/telemetry`, telemetry(seqs[i]!, t)));
          lastSent[i] = performance.now();
          telemetrySent++;
        } else {
          const seq = ++seqs[i]!;
          pending.set(i * 4294967296 + seq, performance.now());
          sockets[i]!.write(publishPacket(id(i), `fleet/${ids[i]}/events`, `{"v":1,"events":[${saleEvent(seq, t)}]}`));
          lastSent[i] = performance.now();
          eventMessages++;
        }
      }
    };
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (performance.now() >= end) {
          clearInterval(timer);
          resolve();
        } else tick();
      }, 5);
    });
    // The last acknowledgements, bounded.
    for (let k = 0; k < 200 && pending.size > 0; k++) await new Promise((r) => setTimeout(r, 50));
    const unacked = pending.size;
    pending.clear();
    const sorted = latencies.sort((a, b) => a - b);
    return {
      type: 'load',
      seconds,
      eventMessages,
      telemetry: telemetrySent,
      acked,
      unacked,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : 0,
      dropped: dropped - dropped0,
      rssKiB: rssKiB(),
    };
  };

  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const cmd = JSON.parse(line) as { cmd: string; rate?: number; seconds?: number; telemetryShare?: number };
    if (cmd.cmd === 'load') send(await load(cmd.rate ?? 0, cmd.seconds ?? 0, cmd.telemetryShare ?? 0));
    else if (cmd.cmd === 'close') break;
  }
  clearInterval(pinger);
  for (const sock of sockets) sock?.destroy();
  send({ type: 'closed' });
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`fleet-machines: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
