/**
 * The firmware downloader against a gateway played by the test, on a
 * virtual clock: chunks in order into a slot that records what it was given,
 * the pace and the window, lost and repeated chunks, a link that drops, a
 * resume from journaled progress, and every way an image can be wrong.
 * Runs in Node and under XS.
 */
import { Sha256 } from '../../firmware/crypto/sha256.js';
import { CHUNK_HEADER, Download, DownloadEnd, PROGRESS_BYTES, REFUSAL_OFFSET, type DownloadOptions } from '../../firmware/update/download.js';
import { formatVersion, parseVersion } from '../../firmware/update/version.js';
import { deepEqual, equal, ok } from '../lib/assert.js';
import { VirtualTimers } from '../lib/virtual-timers.js';

/** An image of `size` bytes from a small PRNG, and its SHA-256. */
function image(size: number, seed = 7): { bytes: Uint8Array; sha: Uint8Array } {
  const bytes = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return { bytes, sha: new Sha256().update(bytes).digest() };
}

/** The slot: what was written, in order, and whether it was completed or cancelled. */
class RecordingSlot {
  readonly bytes: number[] = [];
  completed = 0;
  cancelled = 0;
  failAt = -1;
  write(buffer: Uint8Array): void {
    if (this.failAt >= 0 && this.bytes.length + buffer.length > this.failAt) throw new Error('flash write failed');
    for (let i = 0; i < buffer.length; i++) this.bytes.push(buffer[i]!);
  }
  cancel(): void {
    this.cancelled++;
  }
  complete(): void {
    this.completed++;
  }
}

interface Request {
  offset: number;
  length: number;
}

/** A download and the gateway's side of it: requests queue up; `serve` answers them as the test says. */
class Rig {
  readonly timers = new VirtualTimers();
  readonly slot = new RecordingSlot();
  readonly requests: Request[] = [];
  /** When each request went out (virtual ms). */
  readonly sentAt: number[] = [];
  readonly progress: { offset: number; state: Uint8Array }[] = [];
  ends: number[] = [];
  linkUp = true;
  maxOutstanding = 0;
  readonly download: Download;
  readonly served: Uint8Array;

  constructor(
    readonly img: { bytes: Uint8Array; sha: Uint8Array },
    options: Partial<DownloadOptions> = {},
    served?: Uint8Array,
  ) {
    this.served = served ?? img.bytes;
    this.download = new Download({
      image: img.sha,
      size: img.bytes.length,
      offset: 0,
      slot: this.slot,
      clock: { now: () => this.timers.now },
      timers: this.timers,
      chunk: 1024,
      inFlight: 4,
      bytesPerSecond: 8192,
      timeoutMs: 5000,
      request: (offset, length) => {
        if (!this.linkUp) return false;
        this.requests.push({ offset, length });
        this.sentAt.push(this.timers.now);
        this.maxOutstanding = Math.max(this.maxOutstanding, this.requests.length);
        return true;
      },
      progress: (offset, state) => this.progress.push({ offset, state: state.slice() }),
      done: (end) => this.ends.push(end),
      ...options,
    });
  }

  /** The chunk the gateway sends for a request (the served image's bytes there, fewer at its end). */
  chunkFor(r: Request, sha = this.img.sha): Uint8Array {
    const data = this.served.subarray(r.offset, Math.min(this.served.length, r.offset + r.length));
    const out = new Uint8Array(CHUNK_HEADER + data.length);
    out.set(sha.subarray(0, 8));
    out[8] = r.offset & 0xff;
    out[9] = (r.offset >>> 8) & 0xff;
    out[10] = (r.offset >>> 16) & 0xff;
    out[11] = r.offset >>> 24;
    out.set(data, CHUNK_HEADER);
    return out;
  }

  /** Answer every queued request (each through `deliver`, which may drop or repeat it), then let 50 ms pass. */
  serve(deliver: (r: Request, chunk: Uint8Array) => void = (_r, c) => this.download.chunk(c)): void {
    const batch = this.requests.splice(0);
    for (const r of batch) deliver(r, this.chunkFor(r));
    this.timers.advance(50);
  }

  /** Serve until the download ends, at most `limit` rounds. */
  run(deliver?: (r: Request, chunk: Uint8Array) => void, limit = 100_000): void {
    for (let i = 0; i < limit && this.ends.length === 0; i++) this.serve(deliver);
    ok(this.ends.length > 0, 'the download ended');
  }
}

const sameBytes = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

describe('firmware updates: versions', () => {
  it('parses MAJOR.MINOR.PATCH into a number that orders as the versions do', () => {
    ok(parseVersion('0.1.0') < parseVersion('0.2.0'));
    ok(parseVersion('0.10.0') > parseVersion('0.9.99'));
    ok(parseVersion('1.0.0') > parseVersion('0.4095.4095'));
    equal(formatVersion(parseVersion('12.345.6')), '12.345.6');
    equal(formatVersion(parseVersion('255.4095.4095')), '255.4095.4095');
  });

  it('refuses what is not a version', () => {
    for (const bad of ['', '1', '1.2', '1.2.3.4', '01.2.3', '1.02.3', '-1.2.3', '1.2.3-rc1', ' 1.2.3', '1.2.x', '256.0.0', '0.4096.0', '0.0.99999', '1..2', '1.2.3\u0000']) {
      equal(parseVersion(bad), -1, JSON.stringify(bad));
    }
  });
});

describe('firmware updates: the downloader', () => {
  it('writes the image in order into the slot, checks its hash, completes it, and journals progress every 64 KiB', () => {
    const r = new Rig(image(200_000));
    r.download.start();
    r.run();
    deepEqual(r.ends, [DownloadEnd.COMPLETE]);
    ok(sameBytes(r.slot.bytes, r.img.bytes), 'the slot holds the image');
    equal(r.slot.completed, 1);
    equal(r.slot.cancelled, 0);
    deepEqual(
      r.progress.map((p) => p.offset),
      [PROGRESS_BYTES, 2 * PROGRESS_BYTES, 3 * PROGRESS_BYTES],
    );
    equal(r.download.received, r.img.bytes.length, 'no byte sent twice on a clean link');
    ok(r.maxOutstanding <= 4, `at most the window outstanding (${r.maxOutstanding})`);
  });

  it('holds requests to the pace it is given', () => {
    const r = new Rig(image(64 * 1024), { bytesPerSecond: 4096 });
    r.download.start();
    r.run();
    deepEqual(r.ends, [DownloadEnd.COMPLETE]);
    // 64 KiB at 4 KiB/s, less the first chunk it may ask for at once: at least 15.75 s of virtual time.
    ok(r.timers.now >= 15_750, `took ${r.timers.now} ms`);
    ok(r.timers.now <= 17_500, `but not much more (${r.timers.now} ms)`);
  });

  it('requests leave evenly spaced, never a window at once: at the start and when the link comes back', () => {
    // 1 KiB at 4 KiB/s: one request every 250 ms at most, whatever the window allows.
    const r = new Rig(image(40 * 1024), { bytesPerSecond: 4096 });
    r.download.start();
    equal(r.requests.length, 1, 'one request at the start');
    for (let i = 0; i < 20; i++) r.serve();
    r.linkUp = false;
    r.requests.splice(0);
    r.timers.advance(20_000);
    const before = r.sentAt.length;
    r.linkUp = true;
    r.download.linkUp();
    equal(r.sentAt.length - before, 1, 'one request when the link comes back, not a window');
    equal(r.download.resumes, 1);
    r.run();
    deepEqual(r.ends, [DownloadEnd.COMPLETE]);
    ok(sameBytes(r.slot.bytes, r.img.bytes));
    const gaps = r.sentAt.slice(1).map((t, i) => t - r.sentAt[i]!);
    ok(Math.min(...gaps) >= 250, `requests at least 250 ms apart (closest ${Math.min(...gaps)} ms)`);
  });

  it('a lost chunk: the ones after it are not written, and it asks again from the gap', () => {
    const r = new Rig(image(50_000));
    let dropped = 0;
    r.download.start();
    r.run((req, c) => {
      if (req.offset === 10 * 1024 && dropped++ === 0) return;
      r.download.chunk(c);
    });
    deepEqual(r.ends, [DownloadEnd.COMPLETE]);
    ok(sameBytes(r.slot.bytes, r.img.bytes));
    ok(r.download.retries >= 1);
    ok(r.download.ignored >= 1, 'the chunks past the gap were not written');
    ok(r.download.received <= r.img.bytes.length + 4 * 1024, `at most a window sent again (${r.download.received})`);
  });

  it('duplicated chunks and chunks for another image are not written', () => {
    const r = new Rig(image(20_000));
    const other = image(20_000, 99);
    r.download.start();
    r.run((req, c) => {
      r.download.chunk(r.chunkFor(req, other.sha));
      r.download.chunk(c);
      r.download.chunk(c);
    });
    deepEqual(r.ends, [DownloadEnd.COMPLETE]);
    ok(sameBytes(r.slot.bytes, r.img.bytes));
    // Two a request, but for the last: once complete, nothing more is looked at.
    equal(r.download.ignored, 2 * Math.ceil(20_000 / 1024) - 1);
  });

  it('asks again when nothing answers within the timeout, and when the link comes back', () => {
    const r = new Rig(image(8 * 1024));
    r.download.start();
    for (let i = 0; i < 4; i++) r.timers.advance(125);
    equal(r.requests.length, 4, 'the window full, at the pace (1 KiB at 8 KiB/s: every 125 ms)');
    r.requests.splice(0); // never answered
    r.linkUp = false;
    r.timers.advance(5_000);
    equal(r.download.retries, 1, 'timed out once');
    equal(r.requests.length, 0, 'nothing sent while the link is down');
    r.timers.advance(20_000);
    r.linkUp = true;
    r.download.linkUp();
    deepEqual(r.requests[0], { offset: 0, length: 1024 }, 'asked again from the start');
    r.run();
    deepEqual(r.ends, [DownloadEnd.COMPLETE]);
    ok(sameBytes(r.slot.bytes, r.img.bytes));
  });

  it('resumes from journaled progress: only the bytes after it are asked for, and the hash still checks', () => {
    const img = image(3 * PROGRESS_BYTES + 5000);
    const first = new Rig(img);
    first.download.start();
    for (let i = 0; i < 100_000 && first.progress.length < 2; i++) first.serve();
    const at = first.progress[1]!;
    equal(at.offset, 2 * PROGRESS_BYTES);
    // The power fails here; the slot keeps its first 128 KiB.
    const second = new Rig(img, { offset: at.offset, state: at.state });
    for (let i = 0; i < at.offset; i++) second.slot.bytes.push(img.bytes[i]!);
    second.download.start();
    equal(second.requests[0]!.offset, at.offset);
    second.run();
    deepEqual(second.ends, [DownloadEnd.COMPLETE]);
    ok(sameBytes(second.slot.bytes, img.bytes));
    equal(second.download.received, img.bytes.length - at.offset);
  });

  it('a wrong hash is never completed: the slot is cancelled', () => {
    const img = image(10_000);
    const tampered = img.bytes.slice();
    tampered[9_999] ^= 1;
    const r = new Rig(img, {}, tampered);
    r.download.start();
    r.run();
    deepEqual(r.ends, [DownloadEnd.BAD_HASH]);
    equal(r.slot.completed, 0);
    equal(r.slot.cancelled, 1);
  });

  it('an image shorter than the command said is refused, the slot cancelled', () => {
    const img = image(10_000);
    const r = new Rig(img, {}, img.bytes.subarray(0, 9_000));
    r.download.start();
    r.run();
    deepEqual(r.ends, [DownloadEnd.SHORT_IMAGE]);
    equal(r.slot.completed, 0);
    equal(r.slot.cancelled, 1);
  });

  it("an image shorter than the command said, when the gateway's past-end refusals overtake its last chunk", () => {
    // The gateway looks requests up concurrently, so answers can come in any order.
    const img = image(10_000);
    // Fast enough that the window fills between answers: the last chunk and the requests past it are out together.
    const r = new Rig(img, { bytesPerSecond: 1 << 20 }, img.bytes.subarray(0, 9_000));
    r.download.start();
    const pastEnd = (): Uint8Array => {
      const reason = [0x70, 0x61, 0x73, 0x74, 0x2d, 0x65, 0x6e, 0x64]; // "past-end"
      const f = new Uint8Array(CHUNK_HEADER + reason.length);
      f.set(r.chunkFor({ offset: REFUSAL_OFFSET, length: 0 }));
      f.set(reason, CHUNK_HEADER);
      return f;
    };
    let overtaken = false;
    for (let round = 0; round < 1000 && r.ends.length === 0; round++) {
      // Let the paced requests go out until the window is full (or nothing more comes), then answer them all.
      for (let t = 0; t < 200 && r.requests.length < 4; t++) r.timers.advance(1);
      const batch = r.requests.splice(0);
      const past = batch.filter((q) => q.offset >= r.served.length).length;
      if (past > 0 && batch.some((q) => q.offset < r.served.length)) overtaken = true;
      for (let n = past; n > 0; n--) r.download.chunk(pastEnd());
      for (const q of batch.filter((q) => q.offset < r.served.length)) r.download.chunk(r.chunkFor(q));
      r.timers.advance(50);
    }
    ok(overtaken, 'a past-end refusal came before the last chunk');
    deepEqual(r.ends, [DownloadEnd.SHORT_IMAGE]);
    equal(r.slot.completed, 0);
    equal(r.slot.cancelled, 1);
  });

  it("the gateway's refusal ends it", () => {
    const r = new Rig(image(10_000));
    r.download.start();
    // The header with the refusal's offset, then the reason's text ("no").
    const refusal = new Uint8Array(CHUNK_HEADER + 2);
    refusal.set(r.chunkFor({ offset: REFUSAL_OFFSET, length: 0 }));
    refusal.set([0x6e, 0x6f], CHUNK_HEADER);
    r.download.chunk(refusal);
    deepEqual(r.ends, [DownloadEnd.SOURCE_REFUSED]);
    equal(r.slot.cancelled, 1);
  });

  it('a slot that fails a write ends it', () => {
    const r = new Rig(image(10_000));
    r.slot.failAt = 5_000;
    r.download.start();
    r.run();
    deepEqual(r.ends, [DownloadEnd.SLOT_FAILED]);
    equal(r.slot.completed, 0);
  });

  it('hostile chunk messages are not written and do not stop it', () => {
    const r = new Rig(image(6_000));
    r.download.start();
    let seed = 3;
    const noise = (n: number): Uint8Array => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = (seed = (Math.imul(seed, 48271) + 11) >>> 0) >>> 24;
      return out;
    };
    r.run((_req, c) => {
      r.download.chunk(new Uint8Array(0));
      r.download.chunk(noise(11));
      r.download.chunk(noise(4000));
      const oversized = new Uint8Array(c.length + 100);
      oversized.set(c);
      r.download.chunk(oversized);
      r.download.chunk(c);
    });
    deepEqual(r.ends, [DownloadEnd.COMPLETE]);
    ok(sameBytes(r.slot.bytes, r.img.bytes));
  });

  it('cancelled, it abandons the slot and ignores what still arrives', () => {
    const r = new Rig(image(10_000));
    r.download.start();
    r.download.cancel();
    r.serve();
    deepEqual(r.ends, [DownloadEnd.CANCELLED]);
    equal(r.slot.bytes.length, 0);
    equal(r.slot.cancelled, 1);
    ok(!r.download.active);
  });
});
