/**
 * Fetches a firmware image in chunks over the machine's MQTT connection and
 * writes it, strictly in order, into the inactive application slot
 * (docs/updates.md, "Fetching over MQTT" and "Resume").
 *
 * The machine sets the pace: at most `inFlight` requests are outstanding, and a
 * token bucket holds the requests to `bytesPerSecond` so that an update takes
 * only its share of a slow link and sales telemetry never waits behind it.
 * A chunk is taken only at the offset the slot has reached; a duplicate, a
 * chunk for another image or one past a gap is not written (a gap means a
 * chunk was lost: ask again from the slot's offset, go-back-N). A request
 * that no chunk answers within `timeoutMs` is asked again. Every
 * `PROGRESS_BYTES` the hash state is handed out to be journaled, so after a
 * power cut the download resumes there.
 *
 * The hash is checked before `complete()`: nothing half-written or wrong is
 * ever made bootable.
 *
 * Memory: the hasher's buffers and a few numbers; a chunk's bytes go from
 * the message straight into the slot.
 */
import type { Clock, TimerId, Timers } from '../board.js';
import { sameBytes } from '../crypto/hmac.js';
import { Sha256, SHA256_LENGTH } from '../crypto/sha256.js';

/** Progress is journaled at multiples of this many bytes (a multiple of the hash block and of flash blocks). */
export const PROGRESS_BYTES = 0x10000;
/** The chunk header: 8 bytes of the image's SHA-256, then the offset (u32 little-endian). */
export const CHUNK_HEADER = 12;
/** The offset of a refusal: its data is the gateway's reason. */
export const REFUSAL_OFFSET = 0xffffffff;
/** A refusal's reason when the request's offset is at or past the image's end: "past-end". */
const PAST_END = Uint8Array.of(0x70, 0x61, 0x73, 0x74, 0x2d, 0x65, 0x6e, 0x64);

function isPastEnd(payload: Uint8Array): boolean {
  if (payload.length !== CHUNK_HEADER + PAST_END.length) return false;
  for (let i = 0; i < PAST_END.length; i++) if (payload[CHUNK_HEADER + i] !== PAST_END[i]) return false;
  return true;
}

/** The largest chunk a request may ask for (docs/updates.md). */
export const MAX_CHUNK = 4096;

/** How a download ended (UpdateReason in vocabulary terms; 0: the image is in the slot, verified and bootable). */
export const DownloadEnd = Object.freeze({
  COMPLETE: 0,
  /** The bytes do not hash to the image's SHA-256. */
  BAD_HASH: 1,
  /** The source's image ended before the size the command gave. */
  SHORT_IMAGE: 2,
  /** The gateway refused to serve it (unknown image, not offered). */
  SOURCE_REFUSED: 3,
  /** The slot refused a write or the completion. */
  SLOT_FAILED: 4,
  /** Cancelled (by a newer command, or the machine stopped). */
  CANCELLED: 5,
});

/** The slot being written, as the board opened it (Board.firmware: Moddable's OTA shape). */
export interface SlotWriter {
  write(buffer: Uint8Array): void;
  cancel(): void;
  complete(): void;
}

export interface DownloadOptions {
  /** The image's SHA-256 (32 bytes). */
  readonly image: Uint8Array;
  readonly size: number;
  /** Bytes already in the slot (0, or a progress point) and the hash state there (`Sha256.save`). */
  readonly offset: number;
  readonly state?: Uint8Array | undefined;
  readonly slot: SlotWriter;
  readonly clock: Clock;
  readonly timers: Timers;
  /** Bytes a request asks for (at most MAX_CHUNK). */
  readonly chunk: number;
  /** Requests outstanding at most. */
  readonly inFlight: number;
  /** The pace requests are held to. */
  readonly bytesPerSecond: number;
  /** A request unanswered this long is asked again. */
  readonly timeoutMs: number;
  /** Send a request for `length` bytes at `offset`; false when the link is down (asked again on `linkUp`). */
  request(offset: number, length: number): boolean;
  /** `offset` bytes are in the slot and hash to `state` there: journal it, to resume from after a power cut. */
  progress(offset: number, state: Uint8Array): void;
  /** The download ended (a DownloadEnd). */
  done(end: number): void;
}

export class Download {
  /** Bytes in the slot. */
  private written: number;
  /** The next byte to ask for. */
  private asked: number;
  /** Requests outstanding, and when the oldest unanswered one went out. */
  private outstanding = 0;
  private waitingSince = 0;
  private tokens: number;
  private refilled: number;
  private timer: TimerId | undefined;
  private finished = false;
  private readonly hash = new Sha256();
  /** The one timer callback, made once (not a closure per chunk). */
  private readonly onTimer = (): void => this.tick();
  private readonly o: DownloadOptions;
  /** Chunks not written (duplicates, out of order, another image's), requests asked again: reported. */
  ignored = 0;
  retries = 0;
  /** Times the connection came back and the download carried on from the slot's offset (reported). */
  resumes = 0;
  /** Bytes that arrived in chunks, written or not (bytes sent per byte of image, in the benchmark). */
  received = 0;

  constructor(options: DownloadOptions) {
    this.o = options;
    this.written = options.offset;
    this.asked = options.offset;
    if (options.offset > 0) this.hash.resume(options.state!, 0, options.offset);
    this.tokens = options.chunk;
    this.refilled = options.clock.now();
  }

  get offset(): number {
    return this.written;
  }

  get active(): boolean {
    return !this.finished;
  }

  start(): void {
    this.pump();
  }

  /** The link came back: whatever was outstanding is lost, ask again from the slot's offset. */
  linkUp(): void {
    if (this.finished) return;
    this.resumes++;
    this.rewind();
    this.pump();
  }

  /** Stop, abandoning the slot's bytes (nothing will boot them). */
  cancel(): void {
    this.end(DownloadEnd.CANCELLED);
  }

  /** A message on the chunk topic. */
  chunk(payload: Uint8Array): void {
    if (this.finished) return;
    const o = this.o;
    if (payload.length < CHUNK_HEADER) {
      this.ignored++;
      return;
    }
    for (let i = 0; i < 8; i++) {
      if (payload[i] !== o.image[i]) {
        this.ignored++;
        return;
      }
    }
    const at = (payload[8]! | (payload[9]! << 8) | (payload[10]! << 16) | (payload[11]! << 24)) >>> 0;
    if (at === REFUSAL_OFFSET) {
      // Past the end: the image is shorter than the command said, whichever answer came first.
      this.end(isPastEnd(payload) ? DownloadEnd.SHORT_IMAGE : DownloadEnd.SOURCE_REFUSED);
      return;
    }
    const length = payload.length - CHUNK_HEADER;
    this.received += length;
    if (at !== this.written) {
      this.ignored++;
      // Past a gap: a chunk was lost on the way. Everything after it will be ignored too: ask again from the gap.
      if (at > this.written && at < this.asked) {
        this.retries++;
        this.rewind();
        this.pump();
      }
      return;
    }
    const expected = Math.min(o.chunk, o.size - at);
    if (length > expected) {
      this.ignored++;
      return;
    }
    if (length < expected) {
      // Fewer bytes than asked before the end: the source's image is shorter than the command said.
      this.end(DownloadEnd.SHORT_IMAGE);
      return;
    }
    const data = payload.subarray(CHUNK_HEADER);
    try {
      o.slot.write(data);
    } catch {
      this.end(DownloadEnd.SLOT_FAILED);
      return;
    }
    this.hash.update(data);
    const before = this.written;
    this.written += length;
    if (this.outstanding > 0) this.outstanding--;
    this.waitingSince = o.clock.now();
    if (this.written === o.size) {
      this.finish();
      return;
    }
    if (Math.floor(before / PROGRESS_BYTES) !== Math.floor(this.written / PROGRESS_BYTES) && this.written % PROGRESS_BYTES === 0) {
      const state = new Uint8Array(SHA256_LENGTH);
      this.hash.save(state);
      o.progress(this.written, state);
    }
    this.pump();
  }

  private finish(): void {
    if (!sameBytes(this.hash.digest(), this.o.image)) {
      this.end(DownloadEnd.BAD_HASH);
      return;
    }
    this.finished = true;
    this.stopTimer();
    try {
      this.o.slot.complete();
    } catch {
      this.o.slot.cancel();
      this.o.done(DownloadEnd.SLOT_FAILED);
      return;
    }
    this.o.done(DownloadEnd.COMPLETE);
  }

  private end(reason: number): void {
    if (this.finished) return;
    this.finished = true;
    this.stopTimer();
    this.o.slot.cancel();
    this.o.done(reason);
  }

  private rewind(): void {
    this.asked = this.written;
    this.outstanding = 0;
  }

  /** Send what the requests in flight and the pace allow; then wait for a chunk, the pace, or the timeout. */
  private pump(): void {
    const o = this.o;
    const now = o.clock.now();
    // The bucket holds one request's worth: requests leave evenly spaced, never a window at once, so the
    // chunks never queue on a slow downlink ahead of the acknowledgements and commands sharing it.
    this.tokens = Math.min(o.chunk, this.tokens + ((now - this.refilled) * o.bytesPerSecond) / 1000);
    this.refilled = now;
    while (this.outstanding < o.inFlight && this.asked < o.size) {
      const length = Math.min(o.chunk, o.size - this.asked);
      if (this.tokens < length) break;
      if (!o.request(this.asked, length)) break;
      if (this.outstanding === 0) this.waitingSince = now;
      this.tokens -= length;
      this.asked += length;
      this.outstanding++;
    }
    this.arm(now);
  }

  /** One timer: the earlier of the pace allowing the next request and the oldest request's timeout. */
  private arm(now: number): void {
    const o = this.o;
    this.stopTimer();
    let due = Infinity;
    if (this.outstanding > 0) due = this.waitingSince + o.timeoutMs;
    else if (this.asked >= o.size) due = now + o.timeoutMs;
    if (this.outstanding < o.inFlight && this.asked < o.size) {
      const need = Math.min(o.chunk, o.size - this.asked) - this.tokens;
      due = Math.min(due, need > 0 ? now + Math.ceil((need * 1000) / o.bytesPerSecond) : now + o.timeoutMs);
    }
    this.timer = o.timers.set(this.onTimer, Math.max(1, due - now));
  }

  private tick(): void {
    this.timer = undefined;
    if (this.finished) return;
    const now = this.o.clock.now();
    if ((this.outstanding > 0 || this.asked > this.written) && now - this.waitingSince >= this.o.timeoutMs) {
      // Nothing came back in time: lost on the way, or the link is down. Ask again from the slot's offset.
      this.retries++;
      this.rewind();
      this.waitingSince = now;
    }
    this.pump();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.o.timers.clear(this.timer);
    this.timer = undefined;
  }
}
