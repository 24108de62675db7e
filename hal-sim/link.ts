/**
 * A slow link between the simulated machine and its broker (hal-sim/network.ts,
 * `NetworkOptions.link`), on the machine's virtual clock: each direction is a
 * FIFO that serialises packets at `bitsPerSecond`. A packet of N bytes takes
 * N*8/bitsPerSecond of the link after the packets queued before it, and
 * arrives when its last byte has crossed (plus `delayMs` of propagation).
 * When the link drops, whatever is queued on it is lost, as the bytes in a
 * dying TCP connection's buffers are.
 *
 * Bytes are MQTT packet bytes (fixed header, variable header, payload) as the
 * network generates and parses them: no TCP/IP framing, no TLS records.
 */
import type { EventId, Scheduler } from './scheduler.js';

export interface LinkOptions {
  /** The rate of each direction (the two are independent, as on a full-duplex modem link). */
  bitsPerSecond: number;
  /** One-way propagation delay added to every packet (default 0). */
  delayMs?: number;
  /**
   * The link goes down every `everyMs` of machine time (at everyMs, 2*everyMs, ...) for `forMs`:
   * the connection dies without a word, and connecting fails until it is back.
   */
  drops?: { everyMs: number; forMs: number };
}

export interface DirectionStats {
  /** Packets and bytes that entered the link (lost ones included). */
  packets: number;
  bytes: number;
  /** Of those, lost to a drop before their last byte crossed. */
  lostPackets: number;
  lostBytes: number;
  /** PUBLISH packets by topic: packets and bytes that entered the link, lost ones included. */
  topics: Map<string, { packets: number; bytes: number }>;
}

function directionStats(): DirectionStats {
  return { packets: 0, bytes: 0, lostPackets: 0, lostBytes: 0, topics: new Map() };
}

/** One direction: a FIFO of packets serialised at a fixed rate on a scheduler's clock. */
export class LinkQueue {
  readonly stats: DirectionStats = directionStats();
  private scheduler: Scheduler;
  private readonly usPerByte: number;
  private readonly delayUs: number;
  /** When the last byte queued so far will have left (virtual us, fractional: no rounding drift). */
  private freeAt = 0;
  private readonly queued = new Map<EventId, number>();

  constructor(scheduler: Scheduler, bitsPerSecond: number, delayMs = 0) {
    if (!(bitsPerSecond > 0)) throw new RangeError('a link needs a rate above 0 bits per second');
    if (!(delayMs >= 0)) throw new RangeError('a link delay cannot be negative');
    this.scheduler = scheduler;
    this.usPerByte = 8e6 / bitsPerSecond;
    this.delayUs = delayMs * 1000;
  }

  /**
   * A packet of `bytes` enters the link now; `arrived` runs (on the scheduler) when its last byte
   * has crossed. `topic`: a PUBLISH's topic, counted per topic. Returns the virtual time it arrives.
   */
  send(bytes: number, arrived: () => void, topic?: string): number {
    const start = Math.max(this.scheduler.now, this.freeAt);
    this.freeAt = start + bytes * this.usPerByte;
    const at = this.freeAt + this.delayUs;
    const id = this.scheduler.at(at, () => {
      this.queued.delete(id);
      arrived();
    });
    this.queued.set(id, bytes);
    const s = this.stats;
    s.packets++;
    s.bytes += bytes;
    if (topic !== undefined) {
      const t = s.topics.get(topic);
      if (t) {
        t.packets++;
        t.bytes += bytes;
      } else s.topics.set(topic, { packets: 1, bytes });
    }
    return at;
  }

  /** Packets queued and not arrived. */
  get pending(): number {
    return this.queued.size;
  }

  /** The link dropped: everything on it is lost, and it is free from now. */
  drop(): void {
    for (const [id, bytes] of this.queued) {
      this.scheduler.cancel(id);
      this.stats.lostPackets++;
      this.stats.lostBytes += bytes;
    }
    this.queued.clear();
    this.freeAt = this.scheduler.now;
  }

  /** A new clock takes over (the machine lost its power): what was queued is lost. */
  rewire(scheduler: Scheduler): void {
    this.drop();
    this.scheduler = scheduler;
    this.freeAt = scheduler.now;
  }
}

/** Whether a link with `drops` is up at virtual time `us`, and when that next changes. */
export function dropState(drops: { everyMs: number; forMs: number }, us: number): { up: boolean; nextUs: number } {
  const every = drops.everyMs * 1000;
  const down = drops.forMs * 1000;
  const k = Math.floor(us / every);
  const into = us - k * every;
  if (k >= 1 && into < down) return { up: false, nextUs: k * every + down };
  return { up: true, nextUs: (k + 1) * every };
}

/** Both directions of a link, and its drop schedule. */
export class Link {
  readonly up: LinkQueue;
  readonly down: LinkQueue;
  readonly options: LinkOptions;

  constructor(options: LinkOptions, scheduler: Scheduler) {
    const d = options.drops;
    if (d && !(d.everyMs > 0 && d.forMs > 0 && d.forMs < d.everyMs)) throw new RangeError('link drops need 0 < forMs < everyMs');
    this.options = options;
    this.up = new LinkQueue(scheduler, options.bitsPerSecond, options.delayMs);
    this.down = new LinkQueue(scheduler, options.bitsPerSecond, options.delayMs);
  }

  drop(): void {
    this.up.drop();
    this.down.drop();
  }

  rewire(scheduler: Scheduler): void {
    this.up.rewire(scheduler);
    this.down.rewire(scheduler);
  }
}

/** Bytes of an MQTT packet whose remaining length is `remaining`: the type byte, the length's varint, the rest. */
export function mqttPacketBytes(remaining: number): number {
  return 1 + (remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4) + remaining;
}
