/**
 * The chunk server (docs/updates.md "Fetching over MQTT"): a machine asks
 * on fleet/{id}/update/get for `length` bytes of an image from `offset`,
 * and gets them on fleet/{id}/update/chunk, framed as
 *
 *   sha256[0..8] | offset u32 LE | bytes
 *
 * or a refusal (offset 0xFFFFFFFF, a reason as the data): unknown-image,
 * not-offered, bad-request, past-end. It serves an image to a machine only while the
 * registry says it is offered to that machine, answers each request once,
 * and keeps nothing per request: only each machine's byte allowance (a
 * token bucket, rate.ts). A request beyond the allowance is dropped
 * unanswered; the machine asks again after its timeout, as for a lost one.
 *
 * A machine's requests are answered in the order they came (one at a time
 * per machine; machines in parallel): a machine has several in flight, and
 * a refusal says nothing of which request it answers, so one that overtook
 * a chunk (a request past the end overtaking the last, short chunk) would
 * end the download as refused instead of short.
 */
import { isMachineId } from '../machine-id.js';
import { REAL_CLOCK, type Clock } from '../time.js';
import { SHA256_HEX } from './image.js';
import { ByteBuckets } from './rate.js';

/** The most a request may ask for. */
export const MAX_CHUNK_BYTES = 4096;
/** A request is a short JSON object: anything longer is refused unread. */
export const MAX_REQUEST_BYTES = 512;
/** The offset field of a refusal. */
export const REFUSAL_OFFSET = 0xffffffff;
export const CHUNK_HEADER_BYTES = 12;
/** What a refusal costs a machine's allowance: answering nonsense is not free either. */
const REFUSAL_COST = 64;

export const REQUEST_FILTER = 'fleet/+/update/get';

export type Refusal = 'unknown-image' | 'not-offered' | 'bad-request' | 'past-end';

/** What the chunk server needs of the registry (FirmwareRegistry has it). */
export interface ImageSource {
  /** Is this machine one of this store's? Others are not answered: on a broker shared with another fleet, another gateway's machines are that gateway's to answer. */
  knows(machine: string): Promise<boolean>;
  offered(machine: string, sha256: string): Promise<boolean>;
  size(sha256: string): Promise<number | undefined>;
  bytes(sha256: string): Promise<Buffer | undefined>;
}

export interface ChunkServerOptions {
  /** Each machine's average allowance (65,536 bytes a second) and burst (32,768 bytes), chunk headers and refusals included. */
  bytesPerSecond?: number;
  burstBytes?: number;
  clock?: Clock;
  /** Requests being looked up at once, at most (1,000); more are dropped. */
  maxPending?: number;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export interface ChunkStats {
  requests: number;
  chunks: number;
  /** Image bytes sent. */
  bytes: number;
  refused: Record<Refusal, number>;
  /** Dropped: over the machine's allowance. */
  limited: number;
  /** Dropped: not a request topic of a valid machine id (nowhere to answer), or a machine this store does not know. */
  ignored: number;
  /** Dropped: too many requests waiting on the store, or the store failed. */
  dropped: number;
}

export interface ChunkRequest {
  image: string;
  offset: number;
  length: number;
}

/** The machine a request topic belongs to, or undefined when it is not fleet/{valid id}/update/get. */
export function requestMachine(topic: string): string | undefined {
  const p = topic.split('/');
  return p.length === 4 && p[0] === 'fleet' && p[2] === 'update' && p[3] === 'get' && isMachineId(p[1]!) ? p[1] : undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A request as the machine sent it, or why it is not one. */
export function parseRequest(payload: Uint8Array): ChunkRequest | { problem: string; image?: string } {
  if (payload.byteLength > MAX_REQUEST_BYTES) return { problem: `longer than ${MAX_REQUEST_BYTES} bytes` };
  let v: unknown;
  try {
    v = JSON.parse(UTF8.decode(payload));
  } catch {
    return { problem: 'not JSON in UTF-8' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { problem: 'not a JSON object' };
  const { image, offset, length } = v as Record<string, unknown>;
  if (typeof image !== 'string' || !SHA256_HEX.test(image)) return { problem: 'image is not 64 lower-case hex digits' };
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset >= REFUSAL_OFFSET) return { problem: 'offset is not a whole number from 0 to 2^32-2', image };
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 1 || length > MAX_CHUNK_BYTES) return { problem: `length is not a whole number from 1 to ${MAX_CHUNK_BYTES}`, image };
  return { image, offset, length };
}

/** sha256[0..8] | offset u32 LE | data. */
export function chunkFrame(image: string | undefined, offset: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc(CHUNK_HEADER_BYTES + data.byteLength);
  if (image !== undefined) out.write(image.slice(0, 16), 0, 'hex');
  out.writeUInt32LE(offset, 8);
  out.set(data, CHUNK_HEADER_BYTES);
  return out;
}

/** A refusal: offset 0xFFFFFFFF and the reason; the image's first 8 bytes when the request named one, else zeros. */
export function refusalFrame(image: string | undefined, reason: Refusal): Buffer {
  return chunkFrame(image, REFUSAL_OFFSET, Buffer.from(reason, 'utf8'));
}

export class ChunkServer {
  readonly stats: ChunkStats = { requests: 0, chunks: 0, bytes: 0, refused: { 'unknown-image': 0, 'not-offered': 0, 'bad-request': 0, 'past-end': 0 }, limited: 0, ignored: 0, dropped: 0 };
  private readonly source: ImageSource;
  private readonly publish: (topic: string, payload: Buffer) => void;
  private readonly buckets: ByteBuckets;
  private readonly maxPending: number;
  private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  private readonly clock: Clock;
  private pending = 0;
  private lastFailureLog = -Infinity;
  /** Each machine's last request still being answered: the next one waits for it. */
  private readonly turns = new Map<string, Promise<void>>();

  constructor(source: ImageSource, publish: (topic: string, payload: Buffer) => void, options: ChunkServerOptions = {}) {
    this.source = source;
    this.publish = publish;
    this.clock = options.clock ?? REAL_CLOCK;
    this.buckets = new ByteBuckets({ bytesPerSecond: options.bytesPerSecond ?? 65536, burst: options.burstBytes ?? 32768, clock: this.clock });
    this.maxPending = options.maxPending ?? 1000;
    this.log = options.onLog ?? (() => {});
  }

  /** Answer one request (or drop it); never rejects. Resolves once the answer is handed to publish. */
  async request(topic: string, payload: Uint8Array): Promise<void> {
    const machine = requestMachine(topic);
    if (machine === undefined) {
      this.stats.ignored++;
      return;
    }
    this.stats.requests++;
    const req = parseRequest(payload);
    const answer = `fleet/${machine}/update/chunk`;
    if ('problem' in req) {
      if (this.buckets.take(machine, REFUSAL_COST))
        return this.inTurn(machine, async () => {
          if (await this.source.knows(machine)) this.refuse(answer, req.image, 'bad-request');
          else this.stats.ignored++;
        });
      this.stats.limited++;
      return;
    }
    // Charged for what it asked, before any lookup: a machine over its allowance costs no query.
    if (!this.buckets.take(machine, CHUNK_HEADER_BYTES + req.length)) {
      this.stats.limited++;
      return;
    }
    if (this.pending >= this.maxPending) {
      this.stats.dropped++;
      return;
    }
    this.pending++;
    return this.inTurn(machine, () => this.serve(machine, answer, req));
  }

  /** Run `answer` once the machine's requests before it are answered; a failure is logged and holds up nobody. */
  private inTurn(machine: string, answer: () => Promise<void>): Promise<void> {
    const turn = (this.turns.get(machine) ?? Promise.resolve()).then(answer).catch((e: Error) => this.log('error', `updates: answering ${machine} failed: ${e.message}`));
    this.turns.set(machine, turn);
    void turn.then(() => {
      if (this.turns.get(machine) === turn) this.turns.delete(machine);
    });
    return turn;
  }

  /** Look the request up and answer it: the chunk, a refusal, or nothing when the store fails. */
  private async serve(machine: string, answer: string, req: ChunkRequest): Promise<void> {
    try {
      if (!(await this.source.knows(machine))) {
        this.stats.ignored++;
        return;
      }
      const size = await this.source.size(req.image);
      if (size === undefined) return this.refuse(answer, req.image, 'unknown-image');
      if (!(await this.source.offered(machine, req.image))) return this.refuse(answer, req.image, 'not-offered');
      // The image ends before the offset: the machine's command named a larger size (it ends the download as short-image).
      if (req.offset >= size) return this.refuse(answer, req.image, 'past-end');
      const bytes = await this.source.bytes(req.image);
      // Deleted between the two lookups.
      if (!bytes) return this.refuse(answer, req.image, 'unknown-image');
      const data = bytes.subarray(req.offset, Math.min(bytes.length, req.offset + req.length));
      this.stats.chunks++;
      this.stats.bytes += data.length;
      this.publish(answer, chunkFrame(req.image, req.offset, data));
    } catch (e) {
      // The store is away: no answer, the machine asks again. Said once in a while, not per request.
      this.stats.dropped++;
      const now = this.clock.now();
      if (now - this.lastFailureLog >= 10000) {
        this.lastFailureLog = now;
        this.log('warn', `updates: a chunk request went unanswered: ${(e as Error).message}`);
      }
    } finally {
      this.pending--;
    }
  }

  private refuse(topic: string, image: string | undefined, reason: Refusal): void {
    this.stats.refused[reason]++;
    this.publish(topic, refusalFrame(image, reason));
  }
}
