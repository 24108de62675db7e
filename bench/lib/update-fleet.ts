/**
 * Machines at protocol level for firmware updates: no firmware, a small
 * state machine each, all on one MQTT connection. Each checks the signed
 * commands on its topic with its own key, and answers an `update` command
 * as docs/updates.md "What the machine reports" says a machine does:
 * update-begin, the image fetched in chunks from the gateway's chunk server
 * (fleet/{id}/update/get and /chunk, the real path, its SHA-256 checked),
 * telemetry with its progress, downloaded, installing, and then, by its
 * script, confirmed on the new image or rolled back to the old one. Events
 * are numbered per machine as a journal numbers them. One connection for
 * all, or, with their MQTT passwords (a broker with logins and ACLs), one
 * each. For the rollout
 * tests (test/gateway/rollouts*.test.ts) and bench (bench/lib/rollout.ts).
 *
 * Scripts:
 *   confirm   the whole way, the new image confirms
 *   rollback  the new image fails its probation: the old one boots and reports `rolled-back`
 *   fail      the download ends without an image (`failed`, bad-hash)
 *   refuse    the command is refused (`command` event, outcome refused, reason busy)
 *   silent    takes the command and says nothing more
 *   manual    nothing on its own: the test calls `report` and `telemetry`
 */
import { createHash } from 'node:crypto';
import mqtt from 'mqtt';
import { verifyCommand, type CommandBody } from '../../gateway/commands/envelope.js';

export type Script = 'confirm' | 'rollback' | 'fail' | 'refuse' | 'silent' | 'manual';

export interface SimMachine {
  readonly id: string;
  readonly key: Buffer;
  script: Script;
  /** The image it runs, and whether that image is valid (false: on probation). */
  running: string;
  valid: boolean;
  /** The journal's next sequence number. */
  seq: number;
  /** Every command it took (signature good, for it). */
  readonly commands: CommandBody[];
  /** Refusals of its chunk requests (not-offered, unknown-image...). */
  readonly refusals: string[];
  /** What its updates ended with. */
  readonly outcomes: string[];
  /** Events sent and not acknowledged yet, by number (a journal keeps them until the gateway has them). */
  readonly unacked: Map<number, Record<string, unknown>>;
}

interface Download {
  n: number;
  version: string;
  sha256: string;
  size: number;
  offset: number;
  parts: Buffer[];
}

export interface UpdateFleetOptions {
  /** Each machine's MQTT password: one connection each, logged in as itself. */
  passwords?: ReadonlyMap<string, string>;
  /** Bytes asked for per chunk request (4096). */
  chunk?: number;
  /** A chunk request unanswered this long is asked again (2,000 ms). */
  retryMs?: number;
}

const CHUNK_REFUSAL = 0xffffffff;

export class UpdateFleet {
  readonly machines = new Map<string, SimMachine>();
  private readonly downloads = new Map<string, Download>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private readonly chunk: number;
  private readonly retryMs: number;

  /** The connection of each machine (the one shared, or its own). */
  private readonly clients = new Map<string, mqtt.MqttClient>();

  private constructor(options: UpdateFleetOptions) {
    this.chunk = options.chunk ?? 4096;
    this.retryMs = options.retryMs ?? 2000;
  }

  /** One connection for all of them, subscribed to their commands and chunks. */
  static async connect(url: string, machines: readonly { id: string; key: Buffer | string; running: string; script?: Script }[], options: UpdateFleetOptions = {}): Promise<UpdateFleet> {
    const fleet = new UpdateFleet(options);
    const connect = async (extra: mqtt.IClientOptions, topics: string[]): Promise<mqtt.MqttClient> => {
      const c = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clientId: `vf-update-fleet-${process.pid}-${Math.floor(Math.random() * 1e9)}`, ...extra });
      c.on('message', (topic, payload) => fleet.message(topic, Buffer.from(payload)));
      await c.subscribeAsync(topics, { qos: 1 });
      return c;
    };
    const shared = options.passwords ? undefined : await connect({}, ['fleet/+/commands', 'fleet/+/update/chunk', 'fleet/+/acks']);
    for (const m of machines) {
      fleet.machines.set(m.id, { id: m.id, key: Buffer.isBuffer(m.key) ? m.key : Buffer.from(m.key, 'hex'), script: m.script ?? 'confirm', running: m.running, valid: true, seq: 1, commands: [], refusals: [], outcomes: [], unacked: new Map() });
      const password = options.passwords?.get(m.id) ?? '';
      fleet.clients.set(m.id, shared ?? (await connect({ username: m.id, password, clientId: m.id }, ['commands', 'update/chunk', 'acks'].map((k) => `fleet/${m.id}/${k}`))));
    }
    return fleet;
  }

  private client(id: string): mqtt.MqttClient {
    return this.clients.get(id)!;
  }

  /** Each machine online (its status) with its version in telemetry. */
  async hello(): Promise<void> {
    for (const m of this.machines.values()) {
      await this.client(m.id).publishAsync(`fleet/${m.id}/status`, JSON.stringify({ v: 1, online: true, fw: m.running }), { qos: 1 });
      await this.telemetry(m.id);
    }
  }

  /** Journal events, numbered in order, in one message. */
  async report(id: string, ...events: Record<string, unknown>[]): Promise<void> {
    const m = this.machine(id);
    const list = events.map((e) => ({ seq: m.seq++, t: Math.floor(Date.now() / 1000) % 0xffffffff, ...e }));
    for (const e of list) m.unacked.set(e.seq, e);
    await this.client(id).publishAsync(`fleet/${id}/events`, JSON.stringify({ v: 1, events: list }), { qos: 1 });
  }

  /** Send again every event not acknowledged (as a machine does when its gateway comes back). */
  async resend(): Promise<number> {
    let n = 0;
    for (const m of this.machines.values()) {
      const list = [...m.unacked.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e);
      // Consecutive runs, as the uplink sends them.
      for (let i = 0; i < list.length; ) {
        let j = i + 1;
        while (j < list.length && list[j]!['seq'] === (list[j - 1]!['seq'] as number) + 1) j++;
        await this.client(m.id).publishAsync(`fleet/${m.id}/events`, JSON.stringify({ v: 1, events: list.slice(i, j) }), { qos: 1 });
        n += j - i;
        i = j;
      }
    }
    return n;
  }

  /** Telemetry: its version, and an update's progress when given. */
  async telemetry(id: string, update?: Record<string, unknown>): Promise<void> {
    const m = this.machine(id);
    await this.client(id).publishAsync(`fleet/${id}/telemetry`, JSON.stringify({ v: 1, t: m.seq, fw: m.running, ...(update ? { update } : {}) }), { qos: 1 });
  }

  machine(id: string): SimMachine {
    const m = this.machines.get(id);
    if (!m) throw new Error(`no simulated machine ${id}`);
    return m;
  }

  private message(topic: string, payload: Buffer): void {
    const [, id, kind] = topic.split('/');
    const m = this.machines.get(id ?? '');
    if (!m) return;
    if (kind === 'commands') {
      const c = verifyCommand(payload, m.key);
      if (!c || c.machine !== m.id) return;
      m.commands.push(c);
      if (c.type === 'update') void this.take(m, c).catch(() => {});
    } else if (kind === 'update') {
      this.chunkIn(m, payload);
    } else if (kind === 'acks') {
      try {
        const a = JSON.parse(payload.toString('utf8')) as { from?: unknown; to?: unknown };
        if (typeof a.from === 'number' && typeof a.to === 'number') for (let s = a.from; s <= a.to && s - a.from < 100000; s++) m.unacked.delete(s);
      } catch {
        // not an ack
      }
    }
  }

  /** An update command, as the script says. */
  private async take(m: SimMachine, c: CommandBody): Promise<void> {
    const a = c.args as { version: string; size: number; sha256: string; journal: number };
    if (m.script === 'manual') return;
    if (m.script === 'refuse') {
      m.outcomes.push('refused');
      await this.report(m.id, { type: 'command', n: c.n, issued: c.issued, command: 'update', outcome: 'refused', reason: 'busy' });
      return;
    }
    await this.report(m.id, { type: 'update-begin', n: c.n, version: a.version, size: a.size, sha256: a.sha256, journal: a.journal });
    if (m.script === 'silent') return;
    if (m.script === 'fail') {
      m.outcomes.push('failed');
      await this.report(m.id, { type: 'update', n: c.n, phase: 'failed', version: a.version, reason: 'bad-hash' });
      return;
    }
    this.downloads.set(m.id, { n: c.n, version: a.version, sha256: a.sha256, size: a.size, offset: 0, parts: [] });
    this.ask(m);
  }

  private ask(m: SimMachine): void {
    const d = this.downloads.get(m.id);
    if (!d) return;
    clearTimeout(this.retries.get(m.id));
    this.client(m.id).publish(`fleet/${m.id}/update/get`, JSON.stringify({ image: d.sha256, offset: d.offset, length: Math.min(this.chunk, d.size - d.offset) }), { qos: 0 });
    // A lost request or chunk, or one over the gateway's allowance: asked again.
    this.retries.set(m.id, setTimeout(() => this.ask(m), this.retryMs));
  }

  private chunkIn(m: SimMachine, payload: Buffer): void {
    const d = this.downloads.get(m.id);
    if (!d || payload.length < 12 || payload.subarray(0, 8).toString('hex') !== d.sha256.slice(0, 16)) return;
    const offset = payload.readUInt32LE(8);
    const data = payload.subarray(12);
    if (offset === CHUNK_REFUSAL) {
      clearTimeout(this.retries.get(m.id));
      this.downloads.delete(m.id);
      m.refusals.push(data.toString('utf8'));
      m.outcomes.push('failed');
      void this.report(m.id, { type: 'update', n: d.n, phase: 'failed', version: d.version, reason: 'source-refused' });
      return;
    }
    if (offset !== d.offset) return;
    d.parts.push(Buffer.from(data));
    d.offset += data.length;
    if (d.offset < d.size) {
      void this.telemetry(m.id, { n: d.n, version: d.version, state: 'downloading', offset: d.offset, size: d.size });
      this.ask(m);
      return;
    }
    clearTimeout(this.retries.get(m.id));
    this.downloads.delete(m.id);
    void this.install(m, d);
  }

  /** Downloaded: checked, installed at once (a protocol machine is always at a safe moment), then the script's end. */
  private async install(m: SimMachine, d: Download): Promise<void> {
    const sha = createHash('sha256').update(Buffer.concat(d.parts)).digest('hex');
    if (sha !== d.sha256) {
      m.outcomes.push('failed');
      await this.report(m.id, { type: 'update', n: d.n, phase: 'failed', version: d.version, reason: 'bad-hash' });
      return;
    }
    await this.report(m.id, { type: 'update', n: d.n, phase: 'downloaded', version: d.version }, { type: 'update', n: d.n, phase: 'installing', version: d.version });
    const old = m.running;
    // The restart: the new image runs on probation.
    m.running = d.version;
    m.valid = false;
    await this.telemetry(m.id, { n: d.n, version: d.version, state: 'probation' });
    if (m.script === 'rollback') {
      // Its probation failed: the bootloader boots the old image, which says so.
      m.running = old;
      m.valid = true;
      m.outcomes.push('rolled-back');
      await this.report(m.id, { type: 'update', n: d.n, phase: 'rolled-back', version: d.version, reason: 'probation: broker' });
      await this.telemetry(m.id);
      return;
    }
    m.valid = true;
    m.outcomes.push('confirmed');
    await this.report(m.id, { type: 'update', n: d.n, phase: 'confirmed', version: d.version });
    await this.telemetry(m.id);
  }

  async close(): Promise<void> {
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
    for (const c of new Set(this.clients.values())) await c.endAsync();
  }
}
