/**
 * Runs inside XS for `npm run bench`: the firmware's downloader taking an
 * image in 1 KiB chunks (docs/updates.md), with the hash checked as it goes.
 * The slot is the simplest one that keeps nothing (on the board the bytes go
 * to flash): what is measured is the downloader's own compute and heap.
 */
import type { TimerId } from '../../firmware/board.js';
import { Sha256 } from '../../firmware/crypto/sha256.js';
import { CHUNK_HEADER, Download, DownloadEnd } from '../../firmware/update/download.js';

const g = globalThis as unknown as Record<string, unknown>;
const CHUNK = 1024;

let download: Download | undefined;
let image: Uint8Array | undefined;
let next = 0;
let ended = -1;
const message = new Uint8Array(CHUNK_HEADER + CHUNK);
const timers = { set: (_fn: () => void, _ms: number): TimerId => 1, clear: (_id: TimerId): void => {} };

/** An image of `size` bytes and a download of it, requests answered by the bench. Returns 0. */
g['benchUpdateSetup'] = (size: number): number => {
  image = new Uint8Array(size);
  let x = 7;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    image[i] = x >>> 24;
  }
  const sha = new Sha256().update(image).digest();
  message.set(sha.subarray(0, 8));
  next = 0;
  ended = -1;
  download = new Download({
    image: sha,
    size,
    offset: 0,
    slot: { write: () => {}, cancel: () => {}, complete: () => {} },
    clock: { now: () => 0 },
    timers,
    chunk: CHUNK,
    inFlight: 4,
    bytesPerSecond: 1 << 30,
    timeoutMs: 10000,
    request: () => true,
    progress: () => {},
    done: (end) => {
      ended = end;
    },
  });
  download.start();
  return 0;
};

/** Hand the downloader its next `n` chunks; returns how the download ended (-1: still going). */
g['benchUpdateChunks'] = (n: number): number => {
  const img = image!;
  for (let i = 0; i < n && next < img.length; i++) {
    const length = Math.min(CHUNK, img.length - next);
    message[8] = next & 0xff;
    message[9] = (next >>> 8) & 0xff;
    message[10] = (next >>> 16) & 0xff;
    message[11] = next >>> 24;
    message.set(img.subarray(next, next + length), CHUNK_HEADER);
    download!.chunk(length === CHUNK ? message : message.subarray(0, CHUNK_HEADER + length));
    next += length;
  }
  return ended;
};

g['benchUpdateComplete'] = (): number => (ended === DownloadEnd.COMPLETE ? 1 : 0);
