/**
 * The uplink: MQTT to the fleet (docs/uplink.md). The journal is the outbox:
 * events are read from flash from the sync cursor on, published in
 * consecutive batches, and the cursor advances only over ranges the gateway
 * acknowledges after its database commit. RAM holds a window counter, never
 * the backlog, so a week offline costs flash, not heap.
 *
 * Reconnects back off exponentially (1 s doubling to 5 min) with jitter, so
 * a fleet coming back after an outage does not arrive all at once. Given a
 * list of brokers (a cluster's nodes), each new attempt after a connection
 * failed or dropped goes to the next address in the list.
 *
 * Without acknowledgements the gateway is slow, down, or lost what it was
 * sent: after 20 s the first batch from the cursor goes again as a probe,
 * and only that one until acknowledgements make progress, the wait doubling
 * (jittered) up to 5 min. A gateway whose store is down holds what it was
 * sent; a full window again at every timeout only piled up copies to write.
 * The probe carries only events sent before (newer ones wait in flash), so
 * a gateway still holding them can tell it is the same and drop it.
 */
import type { Board, MqttClient, TimerId } from '../board.js';
import type { UplinkSettings } from '../config.js';
import { describeRecord, type Described } from './describe.js';
import type { Journal } from '../journal/journal.js';
import { decodeUtf8, encodeUtf8 } from '../text/utf8.js';

/** Where and how (the machine configuration's `uplink`). */
export type UplinkConfig = UplinkSettings;

export interface UplinkSource {
  readonly machineId: string;
  readonly firmware: string;
  readonly journal: Journal;
  readonly codes: readonly string[];
  /** The telemetry body (without v and t). */
  telemetry(): { [key: string]: unknown };
  /** A message on the machine's commands topic (the bytes as they came). */
  command?(payload: Uint8Array): void;
  /** Telemetry interval now in force (a command may have changed it), ms. */
  telemetryIntervalMs?(): number;
  /** A message on the machine's update/chunk topic (docs/updates.md): a firmware image's bytes. */
  updateChunk?(payload: Uint8Array): void;
  /** The connection is up (again): an update asks again for what it was waiting for. */
  online?(): void;
}

export interface UplinkStatus {
  state: 'offline' | 'connecting' | 'online';
  connects: number;
  published: number;
  acks: number;
  resends: number;
  telemetrySent: number;
}

/** Events per message and unacknowledged events in flight. */
const BATCH = 20;
const WINDOW = 100;
/** No acknowledgement progress for this long: send again from the cursor (then twice as long each time, up to the max). */
const ACK_TIMEOUT_MS = 20000;
const ACK_TIMEOUT_MAX_MS = 300000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 300000;
/** Telemetry after a change waits this long, so a sale's burst of events makes one message. */
const TELEMETRY_DEBOUNCE_MS = 10000;

export class Uplink {
  readonly status: UplinkStatus = { state: 'offline', connects: 0, published: 0, acks: 0, resends: 0, telemetrySent: 0 };
  private readonly board: Board;
  private readonly config: UplinkConfig;
  private readonly source: UplinkSource;
  private readonly topic: string;
  private client: MqttClient | undefined;
  private nextSeq = 0;
  private failures = 0;
  /** The broker addresses, and the one connected to or tried now. */
  private readonly brokers: readonly { host: string; port: number }[];
  private broker = 0;
  /** Acknowledgement timeouts in a row without progress; while above 0 only a probe (one batch) is in flight. */
  private ackTimeouts = 0;
  /** The newest event published since boot: a probe resends no further, so it is the same as what the gateway may hold. */
  private sentTo = 0;
  private retryTimer: TimerId | undefined;
  private ackTimer: TimerId | undefined;
  private telemetryTimer: TimerId | undefined;
  private telemetryDue = false;
  private random: number;
  /** Callbacks of an older connection are ignored. */
  private generation = 0;

  constructor(board: Board, config: UplinkConfig, source: UplinkSource) {
    this.board = board;
    this.config = config;
    this.source = source;
    this.topic = `fleet/${source.machineId}/`;
    this.brokers = config.brokers && config.brokers.length > 0 ? config.brokers : [{ host: config.host, port: config.port }];
    // A per-machine seed for the jitter (no Math.random: runs replay exactly in the simulator).
    let h = 0x9e3779b9;
    for (let i = 0; i < source.machineId.length; i++) h = Math.imul(h ^ source.machineId.charCodeAt(i), 0x85ebca6b);
    this.random = (h ^ source.journal.log.lastSeq) >>> 0 || 1;
  }

  start(): void {
    if (!this.board.openMqtt) {
      this.board.log('warn', 'uplink: this board has no MQTT client');
      return;
    }
    this.connect();
  }

  stop(): void {
    this.clearTimers();
    this.client?.close();
    this.client = undefined;
    this.status.state = 'offline';
  }

  /** Something the fleet watches changed without a journal event (a device went away or came back). */
  stateChanged(): void {
    this.telemetrySoon();
  }

  /** The journal got a new event: send it if online, and telemetry soon. */
  eventRecorded(): void {
    if (this.status.state === 'online') this.pump();
    this.telemetrySoon();
  }

  private connect(): void {
    const open = this.board.openMqtt;
    if (!open) return;
    this.status.state = 'connecting';
    const c = this.config;
    const at = this.brokers[this.broker % this.brokers.length]!;
    const gen = ++this.generation;
    const mine = (fn: () => void) => (): void => {
      if (gen === this.generation) fn();
    };
    try {
      this.client = open.call(this.board, {
        host: at.host,
        port: at.port,
        id: this.source.machineId,
        keepalive: c.keepaliveS,
        ...(c.user !== undefined ? { user: c.user } : {}),
        ...(c.password !== undefined ? { password: encodeUtf8(c.password) } : {}),
        will: { topic: this.topic + 'status', message: encodeUtf8(JSON.stringify({ v: 1, online: false })), QoS: 1, retain: true },
        onWritable: mine(() => this.writable()),
        onReadable: (count, info) => {
          if (gen === this.generation) this.readable(count, info.topic);
        },
        onClose: mine(() => this.lost('connection closed')),
        onError: mine(() => this.lost('connection failed')),
      });
    } catch (e) {
      this.lost(e instanceof Error ? e.message : 'open failed');
    }
  }

  private writable(): void {
    if (this.status.state !== 'connecting' || !this.client) return;
    this.status.state = 'online';
    this.status.connects++;
    this.failures = 0;
    this.client.subscribe([
      { topic: this.topic + 'acks', QoS: 1 },
      { topic: this.topic + 'commands', QoS: 1 },
      // QoS 0: a lost chunk is asked for again by the updater, never held for by the broker.
      { topic: this.topic + 'update/chunk', QoS: 0 },
    ]);
    this.publish('status', { v: 1, online: true, fw: this.source.firmware, boot: this.source.journal.bootSeq }, true);
    const at = this.brokers[this.broker % this.brokers.length]!;
    this.board.log('info', `uplink: online (${at.host}:${at.port}); ${this.source.journal.status().unsynced} events to send`);
    this.nextSeq = this.source.journal.ledger.synced + 1;
    this.pump();
    this.sendTelemetry();
    this.source.online?.();
  }

  private lost(why: string): void {
    const was = this.status.state;
    const client = this.client;
    this.client = undefined;
    this.generation++;
    try {
      client?.close();
    } catch {
      // Already gone.
    }
    this.status.state = 'offline';
    if (this.ackTimer !== undefined) this.board.timers.clear(this.ackTimer);
    this.ackTimer = undefined;
    if (this.retryTimer !== undefined) return;
    // That address failed or dropped: the next attempt goes to the next one (a cluster's other node).
    this.broker = (this.broker + 1) % this.brokers.length;
    // Exponential backoff with jitter between half and the whole of the step.
    const step = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.failures, 16));
    this.failures++;
    const delay = Math.round(step / 2 + (this.nextRandom() * step) / 2);
    if (was === 'online' || this.failures <= 3 || this.failures % 10 === 0) this.board.log('warn', `uplink: ${why}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    this.retryTimer = this.board.timers.set(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  private nextRandom(): number {
    // xorshift32
    let x = this.random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.random = x >>> 0;
    return this.random / 0x100000000;
  }

  /** Publish events from flash while the in-flight window has room. */
  private pump(): void {
    const journal = this.source.journal;
    const synced = journal.ledger.synced;
    if (this.nextSeq <= synced) this.nextSeq = synced + 1;
    // Probing: one batch from the cursor of events already sent; newer ones wait for acknowledgements.
    const probing = this.ackTimeouts > 0;
    while (this.client && this.status.state === 'online' && this.nextSeq <= journal.log.lastSeq && (probing ? this.nextSeq === synced + 1 && this.nextSeq <= this.sentTo : this.nextSeq - synced - 1 < WINDOW)) {
      const batch: Described[] = [];
      const codes = this.source.codes;
      journal.log.readEvents(this.nextSeq, probing ? Math.min(BATCH, this.sentTo - this.nextSeq + 1) : BATCH, (type, seq, time, d, o, len) => {
        batch.push(describeRecord(type, seq, time, d, o, len, codes));
      });
      if (batch.length === 0) break;
      const first = batch[0]!['seq'] as number;
      if (first !== this.nextSeq) {
        // The flash lost events (damage): the gateway must still hear what there is.
        this.board.log('error', `uplink: events ${this.nextSeq}..${first - 1} are missing from the journal`);
      }
      this.publish('events', { v: 1, events: batch }, false);
      this.nextSeq = (batch[batch.length - 1]!['seq'] as number) + 1;
      if (this.nextSeq - 1 > this.sentTo) this.sentTo = this.nextSeq - 1;
      this.armAckTimer();
    }
  }

  private armAckTimer(): void {
    if (this.ackTimer !== undefined) return;
    const at = this.source.journal.ledger.synced;
    let wait = ACK_TIMEOUT_MS;
    if (this.ackTimeouts > 0) {
      // Up to a quarter off at random: machines whose acknowledgements stopped together probe apart.
      const step = Math.min(ACK_TIMEOUT_MAX_MS, ACK_TIMEOUT_MS * 2 ** Math.min(this.ackTimeouts, 8));
      wait = Math.round(step - (this.nextRandom() * step) / 4);
    }
    this.ackTimer = this.board.timers.set(() => {
      this.ackTimer = undefined;
      const journal = this.source.journal;
      if (journal.ledger.synced === at && this.nextSeq > at + 1 && this.status.state === 'online') {
        // Nothing acknowledged for a while: the gateway may have lost them. Probe from the cursor.
        this.status.resends++;
        this.ackTimeouts++;
        this.nextSeq = at + 1;
        this.pump();
      } else if (this.nextSeq > journal.ledger.synced + 1) {
        this.armAckTimer();
      }
    }, wait);
  }

  private readable(count: number, topic: string): void {
    const data = this.client?.read(count);
    if (!data) return;
    if (topic === this.topic + 'commands') {
      this.source.command?.(new Uint8Array(data));
      return;
    }
    if (topic === this.topic + 'update/chunk') {
      this.source.updateChunk?.(new Uint8Array(data));
      return;
    }
    if (topic !== this.topic + 'acks') return;
    let msg: unknown;
    try {
      msg = JSON.parse(decodeUtf8(data));
    } catch {
      this.board.log('warn', 'uplink: unreadable acknowledgement');
      return;
    }
    const m = msg as { v?: unknown; from?: unknown; to?: unknown };
    if (m.v !== 1 || typeof m.from !== 'number' || typeof m.to !== 'number' || m.from > m.to) return;
    this.status.acks++;
    const journal = this.source.journal;
    // Ranges arrive in the order sent; one that starts beyond the cursor waits for the resend.
    if (m.from <= journal.ledger.synced + 1 && m.to > journal.ledger.synced) {
      journal.acknowledge(Math.min(m.to, journal.log.lastSeq));
      // Progress: the gateway is taking events again, so the whole window may go.
      this.ackTimeouts = 0;
      if (this.ackTimer !== undefined) this.board.timers.clear(this.ackTimer);
      this.ackTimer = undefined;
      if (this.nextSeq > journal.ledger.synced + 1) this.armAckTimer();
      this.pump();
    }
  }

  private telemetrySoon(): void {
    if (this.telemetryDue) return;
    this.telemetryDue = true;
    if (this.telemetryTimer !== undefined) this.board.timers.clear(this.telemetryTimer);
    this.telemetryTimer = this.board.timers.set(() => this.sendTelemetry(), TELEMETRY_DEBOUNCE_MS);
  }

  /**
   * An EVA-DTS audit file (asked for by command) on the `audit` topic. The
   * read is journaled, so the gateway hears of it from the events even if
   * this message were lost; the "since initialisation" figures of the next
   * read cover the gap.
   */
  sendAudit(read: number, file: Uint8Array): boolean {
    const client = this.client;
    if (this.status.state !== 'online' || !client) return false;
    // A JSON header line, then the file's bytes as they are (no string of the whole file on the heap).
    const head = new Uint8Array(encodeUtf8(JSON.stringify({ v: 1, read, t: this.source.journal.now() }) + '\n'));
    const payload = new Uint8Array(head.length + file.length);
    payload.set(head);
    payload.set(file, head.length);
    try {
      client.write(payload.buffer, { topic: this.topic + 'audit', QoS: 1, retain: false });
    } catch (e) {
      this.lost(e instanceof Error ? e.message : 'write failed');
      return false;
    }
    return true;
  }

  /**
   * Ask the gateway for `length` bytes of image `image` (hex SHA-256) at
   * `offset`, QoS 0 (docs/updates.md). False while offline: the updater
   * asks again when the connection is back.
   */
  requestUpdate(image: string, offset: number, length: number): boolean {
    const client = this.client;
    if (this.status.state !== 'online' || !client) return false;
    try {
      client.write(encodeUtf8(`{"image":"${image}","offset":${offset},"length":${length}}`), { topic: this.topic + 'update/get', QoS: 0, retain: false });
    } catch (e) {
      this.lost(e instanceof Error ? e.message : 'write failed');
      return false;
    }
    return true;
  }

  /** The gateway has acknowledged every event written so far (an update's probation waits for this). */
  get synced(): boolean {
    return this.status.state === 'online' && this.source.journal.ledger.synced >= this.source.journal.log.lastSeq;
  }

  /** A full state report now (asked for by command), whatever the schedule. */
  reportNow(): void {
    this.sendTelemetry();
  }

  private sendTelemetry(): void {
    if (this.telemetryTimer !== undefined) this.board.timers.clear(this.telemetryTimer);
    this.telemetryDue = false;
    this.telemetryTimer = this.board.timers.set(() => this.sendTelemetry(), this.source.telemetryIntervalMs?.() ?? this.config.telemetryIntervalMs);
    if (this.status.state !== 'online') return;
    this.publish('telemetry', { v: 1, t: this.source.journal.now(), ...this.source.telemetry() }, false);
    this.status.telemetrySent++;
  }

  private publish(kind: string, body: unknown, retain: boolean): void {
    const client = this.client;
    if (!client) return;
    try {
      client.write(encodeUtf8(JSON.stringify(body)), { topic: this.topic + kind, QoS: 1, retain });
      if (kind === 'events') this.status.published++;
    } catch (e) {
      this.lost(e instanceof Error ? e.message : 'write failed');
    }
  }

  private clearTimers(): void {
    for (const t of [this.retryTimer, this.ackTimer, this.telemetryTimer]) if (t !== undefined) this.board.timers.clear(t);
    this.retryTimer = this.ackTimer = this.telemetryTimer = undefined;
  }
}
