/**
 * An append-only log of small binary records on a flash partition
 * (`embedded:storage/flash` shape: erased bytes read 0xFF, writes aligned to
 * `writeAlign`, erase by block).
 *
 * The partition is a ring of blocks. Each block starts with a header
 * (magic, block sequence, erase count, first event sequence, CRC) and holds
 * whole records; a record never spans blocks. A record is
 *   type u8 | length u16 | seq u32 | time u32 | payload | CRC-32
 * padded to the write alignment. A checkpoint (the whole ledger, supplied by
 * the owner) opens a block every few blocks, so recovery replays from the
 * newest checkpoint only, and the oldest block can be erased once a newer
 * checkpoint exists and the gateway has acknowledged its events.
 *
 * Nothing is ever overwritten in place: after a power cut a record is either
 * whole (its CRC holds) or ignored. A block whose free space is not clean
 * (a torn record, a bit flip) is sealed and writing continues in a fresh one.
 * Wear is even because blocks are reused strictly in ring order.
 *
 * Every write is read back. A write the chip refuses ("write failed") or
 * that reads back otherwise (a stuck bit) is cleared to zeros, so it never
 * passes for a record, and its block is sealed: the record goes into the
 * next block. A block whose erase or header fails is bad: the head skips it
 * (for this boot; recovery finds it again). Block sequence numbers count
 * every block the head passes, bad ones too, so a block of the run is the
 * one whose sequence is the head's minus its distance behind it.
 *
 * About 700 lines kept in one file on purpose: appending, sealing, the ring's
 * reuse and recovery all read and write the same private block table and
 * head, and the power-cut campaigns (hal-sim/power-cuts.ts) test them
 * together; split, that state would have to be exposed between files.
 */
import type { FlashPartition } from '../board.js';
import { u16, u32 } from './bytes.js';
import { crc32 } from './crc32.js';
import { R_CHECKPOINT, isMeta } from './records.js';

export const MAGIC = 0x314a4656; // "VFJ1"
export const BLOCK_HEADER = 20;
export const RECORD_HEAD = 11;
export const RECORD_TAIL = 4;
export const RECORD_OVERHEAD = RECORD_HEAD + RECORD_TAIL;

/** Called for each valid record during recovery, oldest first. */
export type RecordVisitor = (type: number, seq: number, time: number, data: Uint8Array, offset: number, length: number) => void;

/** What the owner must supply: the checkpoint payload, written into `out`; returns its length. */
export type CheckpointWriter = (out: Uint8Array) => number;

export interface LogOptions {
  /** A checkpoint opens a block when this many blocks went by since the last one (default: sized so checkpoints cost at most ~15 % of the space). */
  checkpointEveryBlocks?: number;
  /** Free space below which the log reports itself nearly full (default: one block). */
  reserveBytes?: number;
}

export interface RecoveryReport {
  /** No journal was found: the partition is new or was wiped. */
  fresh: boolean;
  /** Valid records replayed. */
  records: number;
  /** Corrupt regions skipped and events missing from the sequence. */
  corrupt: number;
  /** Records with one flipped bit, repaired from their CRC. */
  repaired: number;
  missing: number;
  /** First byte of a torn record at the very end of the log (-1: none). */
  tornType: number;
  /** Blocks in use. */
  blocks: number;
}

export interface LogStats {
  /** Bytes handed to flash writes, headers and padding included. */
  bytesWritten: number;
  /** Bytes of events as logged: type, sequence, time and payload. */
  eventBytes: number;
  events: number;
  checkpoints: number;
  erases: number;
  /** Erases done by `eraseAhead` at a quiet moment. */
  erasesAhead: number;
  /** Erases an append had to do itself (a record waited for them). */
  erasesInline: number;
  /** Writes and erases that failed (refused, or read back otherwise) since boot. */
  faults: number;
}

/** Block flags. */
const ERASED = 1;
const BAD = 2;


const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

export class FlashLog {
  readonly blockCount: number;
  readonly blockLength: number;
  readonly align: number;
  readonly stats: LogStats = { bytesWritten: 0, eventBytes: 0, events: 0, checkpoints: 0, erases: 0, erasesAhead: 0, erasesInline: 0, faults: 0 };
  /** Sequence number of the last event written (0: none yet). */
  lastSeq = 0;
  /** Time of the newest record seen or written. */
  lastTime = 0;
  /** Events up to this sequence number are acknowledged; their blocks may be erased. */
  synced = 0;
  private readonly flash: FlashPartition;
  private readonly checkpointWriter: CheckpointWriter;
  private readonly options: LogOptions;
  /** Block sequence per block; -1: not part of the log (free). */
  private readonly blockSeq: Float64Array;
  private readonly firstSeq: Float64Array;
  private readonly eraseCount: Uint32Array;
  private readonly hasCheckpoint: Uint8Array;
  /** ERASED: erased ahead of need; BAD: failed (RAM only: after a reboot a free block is erased again, a bad one found again). */
  private readonly flags: Uint8Array;
  /** Blocks flagged BAD. */
  badBlocks = 0;
  /** The head went round the ring without finding a block that works. */
  private broken = false;
  private readonly scratch: Uint8Array;
  private readonly view: DataView;
  private head = -1;
  private headOffset = 0;
  /** Blocks in the live run (head back to tail). */
  private used = 0;
  private tail = -1;
  private topBlockSeq = 0;
  private blocksSinceCheckpoint = 0;
  private checkpointEvery = 1;
  /** recover() has read the partition: until then no block is known to be free. */
  private recovered = false;

  constructor(flash: FlashPartition, checkpointWriter: CheckpointWriter, options: LogOptions = {}) {
    const st = flash.status();
    this.flash = flash;
    this.checkpointWriter = checkpointWriter;
    this.options = options;
    this.blockLength = st.blockLength;
    this.blockCount = Math.floor(st.size / st.blockLength);
    this.align = Math.max(1, st.writeAlign);
    if (BLOCK_HEADER % this.align !== 0) throw new RangeError(`flash write alignment ${this.align} does not divide the block header`);
    if (this.blockCount < 4) throw new RangeError(`journal partition too small: ${this.blockCount} blocks of ${this.blockLength} bytes; at least 4`);
    this.blockSeq = new Float64Array(this.blockCount).fill(-1);
    this.firstSeq = new Float64Array(this.blockCount);
    this.eraseCount = new Uint32Array(this.blockCount);
    this.hasCheckpoint = new Uint8Array(this.blockCount);
    this.flags = new Uint8Array(this.blockCount);
    this.scratch = new Uint8Array(this.blockLength);
    this.view = new DataView(this.scratch.buffer);
  }

  /** Largest payload a record may carry. */
  get maxPayload(): number {
    return Math.min(0xffff, this.blockLength - BLOCK_HEADER - RECORD_OVERHEAD - this.align);
  }

  /** Fix the checkpoint spacing from the size of a checkpoint payload. */
  planCheckpoints(checkpointBytes: number): void {
    if (checkpointBytes > this.maxPayload) throw new RangeError(`a checkpoint of ${checkpointBytes} bytes does not fit a ${this.blockLength}-byte flash block`);
    const usable = this.blockLength - BLOCK_HEADER;
    const every = this.options.checkpointEveryBlocks ?? Math.max(1, Math.ceil(((checkpointBytes + RECORD_OVERHEAD) * 6.5) / usable));
    // Two checkpoint spans plus room to turn over must fit.
    if (every * 2 + 2 > this.blockCount) throw new RangeError(`journal partition of ${this.blockCount} blocks is too small for checkpoints every ${every} blocks`);
    this.checkpointEvery = every;
  }

  // ---- recovery ---------------------------------------------------------------------

  /**
   * Find the log on the partition and replay it from the newest checkpoint
   * (or, for audits and tests, from the oldest block still there).
   */
  recover(visit: RecordVisitor, fromOldest = false): RecoveryReport {
    const n = this.blockCount;
    const report: RecoveryReport = { fresh: true, records: 0, corrupt: 0, repaired: 0, missing: 0, tornType: -1, blocks: 0 };
    let maxErase = 0;
    for (let b = 0; b < n; b++) {
      const h = new Uint8Array(this.flash.read(BLOCK_HEADER + 1, b * this.blockLength));
      const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
      // A header with records after it was written whole: one flipped bit is repaired.
      if (validHeader(dv, h) || (h[BLOCK_HEADER] !== 0xff && repairHeader(dv, h) && ++report.repaired > 0)) {
        this.blockSeq[b] = dv.getUint32(4, true);
        this.eraseCount[b] = dv.getUint32(8, true);
        this.firstSeq[b] = dv.getUint32(12, true);
        if (this.eraseCount[b]! > maxErase) maxErase = this.eraseCount[b]!;
      }
    }
    // Blocks whose header is gone wore at least as much as any other.
    for (let b = 0; b < n; b++) if (this.blockSeq[b]! < 0) this.eraseCount[b] = maxErase;
    this.recovered = true;
    let head = -1;
    for (let b = 0; b < n; b++) if (this.blockSeq[b]! >= 0 && (head < 0 || this.blockSeq[b]! > this.blockSeq[head]!)) head = b;
    if (head < 0) return report;
    report.fresh = false;
    // The live run: walking back from the head, the blocks whose sequence is the head's minus
    // their distance (blocks between them are bad; anything else is older than the run). A
    // block with a damaged header between two of the run is bridged (its records still count).
    const run: number[] = [head];
    for (let d = 1, expected = this.blockSeq[head]! - 1; d < n && expected >= 1; d++, expected--) {
      const p = (head + n - d) % n;
      const q = (p + n - 1) % n;
      if (this.blockSeq[p] === expected) run.unshift(p);
      else if (this.blockSeq[p]! < 0 && run[0] === (p + 1) % n && q !== head && this.blockSeq[q] === expected - 1) {
        this.blockSeq[p] = expected;
        this.firstSeq[p] = this.firstSeq[run[0]!]!;
        run.unshift(p);
      }
    }
    // A head whose header was damaged after it was written: the block after the
    // newest good header holds records that continue the log.
    const after = (head + 1) % n;
    if (this.blockSeq[after]! < 0 && run.length < n) {
      const h = new Uint8Array(this.flash.read(RECORD_HEAD, after * this.blockLength + BLOCK_HEADER));
      const len = u16(h, 1);
      if (h[0] !== 0xff && len <= this.maxPayload) {
        const rec = new Uint8Array(this.flash.read(RECORD_OVERHEAD + len, after * this.blockLength + BLOCK_HEADER));
        const seq = u32(rec, 3);
        if (this.recordAt(rec, 0, rec.length) > 0 && seq >= this.firstSeq[head]!) {
          this.blockSeq[after] = this.blockSeq[head]! + 1;
          this.firstSeq[after] = isMeta(rec[0]!) ? seq + 1 : seq;
          run.push(after);
          head = after;
        }
      }
    }
    const inRun = new Uint8Array(n);
    for (const b of run) inRun[b] = 1;
    for (let b = 0; b < n; b++) if (!inRun[b]) this.blockSeq[b] = -1;
    this.topBlockSeq = this.blockSeq[head]!;
    this.tail = run[0]!;
    for (let b = this.tail; b !== head; b = (b + 1) % n) {
      if (!inRun[b]) {
        this.flags[b] = BAD;
        this.badBlocks++;
      }
    }
    this.head = head;
    this.used = run.length;
    report.blocks = run.length;
    // Newest block that opens with a valid checkpoint.
    let start = -1;
    for (let i = run.length - 1; i >= 0; i--) {
      const b = run[i]!;
      const base = b * this.blockLength;
      const h = new Uint8Array(this.flash.read(RECORD_HEAD, base + BLOCK_HEADER));
      const len = u16(h, 1);
      if (h[0] !== R_CHECKPOINT || len > this.maxPayload) continue;
      const rec = new Uint8Array(this.flash.read(RECORD_OVERHEAD + len, base + BLOCK_HEADER));
      if (this.recordAt(rec, 0, rec.length) === 0) continue;
      // Older checkpoints do not matter: this one covers every block before it.
      this.hasCheckpoint[b] = 1;
      start = i;
      break;
    }
    this.blocksSinceCheckpoint = run.length - 1 - Math.max(0, start);
    if (start < 0 || fromOldest) start = 0;
    let lastSeq = -1;
    for (let i = start; i < run.length; i++) {
      const b = run[i]!;
      const buf = new Uint8Array(this.flash.read(this.blockLength, b * this.blockLength));
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      let off = BLOCK_HEADER;
      const end = this.blockLength;
      let clean = false;
      while (off + RECORD_OVERHEAD <= end) {
        if (buf[off] === 0xff && allErased(buf, off, end)) {
          clean = true;
          break;
        }
        const len = this.recordAt(buf, off, end);
        if (len > 0) {
          const type = buf[off]!;
          const seq = dv.getUint32(off + 3, true);
          const time = dv.getUint32(off + 7, true);
          const payloadLength = dv.getUint16(off + 1, true);
          if (lastSeq < 0) lastSeq = isMeta(type) ? seq : seq - 1;
          const fresh = isMeta(type) ? seq >= lastSeq : seq > lastSeq;
          if (fresh) {
            if (!isMeta(type)) {
              if (seq > lastSeq + 1) report.missing += seq - lastSeq - 1;
              lastSeq = seq;
            }
            if (time > this.lastTime) this.lastTime = time;
            report.records++;
            visit(type, seq, time, buf, off + RECORD_HEAD, payloadLength);
          } else {
            report.corrupt++;
          }
          off += len;
          continue;
        }
        // Not a record: torn or damaged. Look for the next whole record.
        const torn = buf[off]!;
        const next = this.nextWhole(buf, off, end);
        if (next < 0) {
          // Nothing whole after it: in the head block, a write the power cut tore (never repaired: it may not have been finished).
          if (b === head) {
            report.tornType = torn;
            break;
          }
          // The last record of an older block was written whole (a newer block followed): it ends where the
          // erased rest of the block starts, or up to a CRC's width later if its last bytes happen to read 0xFF.
          let data = end;
          while (data > off && buf[data - 1] === 0xff) data--;
          let fixed = false;
          for (let e = alignUp(data, this.align); !fixed && e <= end && e <= data + 4 + this.align; e += this.align) fixed = this.repair(buf, off, e);
          if (fixed) {
            report.repaired++;
            continue;
          }
          // One bit cleared in the erased rest of the block is no record at all: nothing was lost.
          let cleared = 0;
          for (let i = off; i < data && cleared < 2; i++) cleared += popcount(~buf[i]! & 0xff);
          if (cleared > 1) report.corrupt++;
          break;
        }
        // A whole record follows, so this one was written completely and damaged since:
        // its length is known, and a single flipped bit can be found with the CRC.
        if (this.repair(buf, off, next)) {
          report.repaired++;
          continue;
        }
        report.corrupt++;
        off = next;
      }
      if (b === head) this.headOffset = clean ? off : this.blockLength;
    }
    if (lastSeq > 0) this.lastSeq = lastSeq;
    return report;
  }

  /**
   * Repair a record occupying [off, next) that differs from what was written
   * in one bit (CRC-32 tells single-bit errors apart at these lengths).
   * Returns true with the record fixed in `buf`.
   */
  private repair(buf: Uint8Array, off: number, next: number): boolean {
    const span = next - off;
    for (let len = Math.max(0, span - RECORD_OVERHEAD - this.align + 1); len <= span - RECORD_OVERHEAD; len++) {
      if (alignUp(RECORD_OVERHEAD + len, this.align) !== span || len > 0xffff) continue;
      const end = off + RECORD_OVERHEAD + len;
      const oldLo = buf[off + 1]!;
      const oldHi = buf[off + 2]!;
      const lenFlips = popcount((oldLo ^ (len & 0xff)) | ((oldHi ^ (len >> 8)) << 8));
      if (lenFlips > 1) continue;
      buf[off + 1] = len & 0xff;
      buf[off + 2] = len >> 8;
      if (lenFlips === 1) {
        if (this.recordAt(buf, off, end) > 0) return true;
      } else {
        for (let i = off; i < end; i++) {
          if (i === off + 1 || i === off + 2) continue;
          for (let bit = 0; bit < 8; bit++) {
            buf[i]! ^= 1 << bit;
            if (this.recordAt(buf, off, end) > 0) return true;
            buf[i]! ^= 1 << bit;
          }
        }
      }
      buf[off + 1] = oldLo;
      buf[off + 2] = oldHi;
    }
    return false;
  }

  /** Offset of the first whole record after the bad one at `off`, or -1. */
  private nextWhole(buf: Uint8Array, off: number, end: number): number {
    for (let o = off + this.align; o + RECORD_OVERHEAD <= end; o += this.align) {
      if (buf[o] !== 0xff && this.recordAt(buf, o, end) > 0) return o;
    }
    return -1;
  }

  /** Length (padded) of the valid record at `off`, or 0. */
  private recordAt(buf: Uint8Array, off: number, end: number): number {
    if (off + RECORD_OVERHEAD > end) return 0;
    const type = buf[off]!;
    if (type === 0xff) return 0;
    const total = RECORD_HEAD + u16(buf, off + 1) + RECORD_TAIL;
    if (off + total > end) return 0;
    if (u32(buf, off + total - 4) !== crc32(buf, off, off + total - 4)) return 0;
    return alignUp(total, this.align);
  }

  /**
   * Visit events from `fromSeq` on, oldest first, at most `max` of them (the
   * uplink reads its backlog from flash, never from RAM). Returns how many.
   */
  readEvents(fromSeq: number, max: number, visit: RecordVisitor): number {
    const n = this.blockCount;
    if (this.head < 0 || fromSeq > this.lastSeq || max <= 0) return 0;
    // The block holding fromSeq: the newest whose first event is not after it.
    let b = this.tail;
    for (let p = this.tail, i = 0; i < n; p = this.succ(p), i++) {
      if (this.blockSeq[p]! < 0) break;
      if (this.firstSeq[p]! <= fromSeq) b = p;
      if (p === this.head) break;
    }
    let sent = 0;
    for (let i = 0; i < n && sent < max; b = this.succ(b), i++) {
      if (this.blockSeq[b]! < 0) break;
      const buf = new Uint8Array(this.flash.read(this.blockLength, b * this.blockLength));
      const end = b === this.head ? this.headOffset : this.blockLength;
      let off = BLOCK_HEADER;
      while (off + RECORD_OVERHEAD <= end && sent < max) {
        const len = this.recordAt(buf, off, end);
        if (len === 0) {
          // Damaged or torn: go on from the next whole record, as recovery does.
          off = this.nextWhole(buf, off, end);
          if (off < 0) break;
          continue;
        }
        const type = buf[off]!;
        const seq = u32(buf, off + 3);
        if (!isMeta(type) && seq >= fromSeq) {
          visit(type, seq, u32(buf, off + 7), buf, off + RECORD_HEAD, u16(buf, off + 1));
          sent++;
        }
        off += len;
      }
      if (b === this.head) break;
    }
    return sent;
  }

  // ---- appending -------------------------------------------------------------------------

  /**
   * Append an event (a new sequence number) or a meta record. Returns false
   * only when there is no room left: every older block holds events the
   * gateway has not acknowledged.
   */
  append(type: number, time: number, payload: Uint8Array, length: number): boolean {
    const meta = isMeta(type);
    const total = alignUp(RECORD_OVERHEAD + length, this.align);
    if (length > this.maxPayload) throw new RangeError(`journal record of ${length} bytes is too long`);
    const seq = meta ? this.lastSeq : this.lastSeq + 1;
    // A block opened with a checkpoint may lack room for this record: then the next one (no checkpoint) has it.
    // A failed write sealed its block: the record goes into the next one.
    do {
      for (let opened = 0; this.head < 0 || this.headOffset + total > this.blockLength; opened++) {
        if (opened === 2 || !this.openBlock(time)) return false;
      }
    } while (!this.write(type, seq, time, payload, length));
    if (!meta) {
      this.lastSeq = seq;
      this.stats.events++;
      this.stats.eventBytes += 9 + length;
    }
    return true;
  }

  /** Write a record at the head; false (the block sealed) if the write failed. */
  private write(type: number, seq: number, time: number, payload: Uint8Array, length: number): boolean {
    const s = this.scratch;
    const v = this.view;
    const total = RECORD_OVERHEAD + length;
    const padded = alignUp(total, this.align);
    s[0] = type;
    v.setUint16(1, length, true);
    v.setUint32(3, seq, true);
    v.setUint32(7, time, true);
    if (payload !== s) s.set(payload.subarray(0, length), RECORD_HEAD);
    v.setUint32(RECORD_HEAD + length, crc32(s, 0, RECORD_HEAD + length), true);
    s.fill(0xff, total, padded);
    const at = this.head * this.blockLength + this.headOffset;
    this.stats.bytesWritten += padded;
    if (!this.program(s, padded, at)) {
      // Clearing bits always works on NOR (unless the chip refuses): what is left is no record.
      s.fill(0, 0, padded);
      this.program(s, padded, at);
      this.headOffset = this.blockLength;
      return false;
    }
    this.headOffset += padded;
    if (time > this.lastTime) this.lastTime = time;
    return true;
  }

  /** Write `length` bytes of `data` at `at` and read them back: false if the chip refused or they differ. */
  private program(data: Uint8Array, length: number, at: number): boolean {
    try {
      this.flash.write(data.subarray(0, length), at);
    } catch (e) {
      // The chip refused (Moddable ESP32: "write failed", "erase failed"); anything else passes through.
      if (!(e instanceof Error) || !e.message.endsWith(' failed')) throw e;
      this.stats.faults++;
      return false;
    }
    const back = new Uint8Array(this.flash.read(length, at));
    for (let i = 0; i < length; i++) {
      if (back[i] !== data[i]) {
        this.stats.faults++;
        return false;
      }
    }
    return true;
  }

  /**
   * Move the head to the next good block in the ring, erasing it first; open
   * with a checkpoint when due. False if the tail holds unacknowledged events,
   * or no block works.
   */
  private openBlock(time: number): boolean {
    const n = this.blockCount;
    for (let next = (this.head + 1) % n, i = 0; i < n && next !== this.head; next = (next + 1) % n, i++) {
      // Every block passed takes a sequence number, bad or not (recovery counts on it).
      this.topBlockSeq++;
      if (this.flags[next]! & BAD) continue;
      if (this.blockSeq[next]! >= 0) {
        if (!this.reclaimable(next)) {
          this.topBlockSeq = this.blockSeq[this.head]!;
          return false;
        }
        this.release(next);
      }
      if (!(this.flags[next]! & ERASED)) {
        this.stats.erasesInline++;
        if (!this.erase(next)) continue;
      }
      this.flags[next] = 0;
      const h = this.scratch;
      const v = this.view;
      v.setUint32(0, MAGIC, true);
      v.setUint32(4, this.topBlockSeq, true);
      v.setUint32(8, this.eraseCount[next]!, true);
      v.setUint32(12, this.lastSeq + 1, true);
      v.setUint32(16, crc32(h, 0, 16), true);
      this.stats.bytesWritten += BLOCK_HEADER;
      if (!this.program(h, BLOCK_HEADER, next * this.blockLength)) {
        this.flags[next] = BAD;
        this.badBlocks++;
        continue;
      }
      this.used++;
      this.blockSeq[next] = this.topBlockSeq;
      this.firstSeq[next] = this.lastSeq + 1;
      this.hasCheckpoint[next] = 0;
      if (this.tail < 0) this.tail = next;
      this.head = next;
      this.headOffset = BLOCK_HEADER;
      this.blocksSinceCheckpoint++;
      if (this.blocksSinceCheckpoint >= this.checkpointEvery || !this.anyCheckpointAfter(this.tail, true)) {
        const len = this.checkpointWriter(this.scratch.subarray(RECORD_HEAD));
        if (!this.write(R_CHECKPOINT, this.lastSeq, time, this.scratch, len)) continue;
        this.hasCheckpoint[next] = 1;
        this.blocksSinceCheckpoint = 0;
        this.stats.checkpoints++;
      }
      return true;
    }
    this.topBlockSeq = this.head < 0 ? 0 : this.blockSeq[this.head]!;
    this.broken = true;
    return false;
  }

  /** The tail block leaves the log (reclaimed). */
  private release(b: number): void {
    this.blockSeq[b] = -1;
    this.hasCheckpoint[b] = 0;
    this.tail = this.succ(b);
    this.used--;
  }

  /** The next block after `b` that is not bad. */
  private succ(b: number): number {
    const n = this.blockCount;
    for (let i = 0; i < n; i++) {
      b = (b + 1) % n;
      if (!(this.flags[b]! & BAD)) break;
    }
    return b;
  }

  private erase(b: number): boolean {
    try {
      this.flash.eraseBlock(b);
    } catch (e) {
      // The chip refused (Moddable ESP32: "write failed", "erase failed"); anything else passes through.
      if (!(e instanceof Error) || !e.message.endsWith(' failed')) throw e;
      this.stats.faults++;
      this.flags[b] = BAD;
      this.badBlocks++;
      return false;
    }
    this.stats.erases++;
    this.eraseCount[b] = this.eraseCount[b]! + 1;
    return true;
  }

  /**
   * Erase the block the head moves to next, if it needs it and may be
   * erased, so that the append which opens it only writes. A NOR erase takes
   * tens of milliseconds with the flash cache off; the owner calls this when
   * the machine is quiet (between MDB exchanges), not while a coin waits for
   * its ACK. Wear is unchanged: it is the erase the append would have done.
   * A power cut during or after it loses nothing: the block was free, or an
   * acknowledged tail with a newer checkpoint. Returns true if it erased.
   */
  eraseAhead(): boolean {
    if (!this.recovered) return false;
    // A block whose erase fails is bad: go on to the next, so worn blocks are found before a sale needs one.
    let i = 0;
    for (; i < this.blockCount && !this.worn; i++) {
      const next = this.succ(this.head);
      if (this.flags[next]) break;
      if (this.blockSeq[next]! >= 0) {
        if (!this.reclaimable(next)) break;
        this.release(next);
      }
      if (this.erase(next)) {
        this.stats.erasesAhead++;
        this.flags[next] = ERASED;
        return true;
      }
    }
    return i > 0;
  }

  /** The tail block may go: its events are acknowledged and a newer checkpoint exists. */
  private reclaimable(b: number): boolean {
    if (b !== this.tail || b === this.head) return false;
    const after = this.succ(b);
    if (this.blockSeq[after]! < 0) return false;
    if (this.firstSeq[after]! - 1 > this.synced) return false;
    return this.anyCheckpointAfter(b, false);
  }

  private anyCheckpointAfter(b: number, inclusive: boolean): boolean {
    if (b < 0) return false;
    const n = this.blockCount;
    // The level is checked at every wake-up: no call per block while no block is bad.
    const bad = this.badBlocks > 0;
    for (let p = inclusive ? b : this.succ(b), i = 0; i < n; p = bad ? this.succ(p) : (p + 1) % n, i++) {
      if (this.blockSeq[p]! < 0) return false;
      if (this.hasCheckpoint[p]) return true;
      if (p === this.head) return false;
    }
    return false;
  }

  // ---- state -------------------------------------------------------------------------------

  /** Bytes that can still be written without erasing unacknowledged events. */
  room(): number {
    const n = this.blockCount;
    const usable = this.blockLength - BLOCK_HEADER;
    if (this.head < 0) return n * usable;
    let room = this.blockLength - this.headOffset + (n - this.used - this.badBlocks) * usable;
    // Blocks that would be reclaimed in turn.
    const bad = this.badBlocks > 0;
    for (let b = this.tail, i = 0; i < n && b !== this.head; b = bad ? this.succ(b) : (b + 1) % n, i++) {
      const after = bad ? this.succ(b) : (b + 1) % n;
      if (this.firstSeq[after]! - 1 > this.synced || !this.anyCheckpointAfter(b, false)) break;
      room += usable;
    }
    return room;
  }

  get reserveBytes(): number {
    return this.options.reserveBytes ?? this.blockLength;
  }

  /** Fraction of the partition holding unacknowledged history, in percent. */
  fill(): number {
    const total = this.blockCount * (this.blockLength - BLOCK_HEADER);
    return Math.round(((total - this.room()) * 100) / total);
  }

  /**
   * The partition can no longer keep the journal: the head found no block
   * that works, or too few good blocks are left for two checkpoint spans.
   */
  get worn(): boolean {
    return this.broken || this.blockCount - this.badBlocks < this.checkpointEvery * 2 + 2;
  }

  /** Erase count of every block (wear). */
  wear(): Uint32Array {
    return this.eraseCount.slice();
  }
}

function validHeader(dv: DataView, h: Uint8Array): boolean {
  return dv.getUint32(0, true) === MAGIC && dv.getUint32(16, true) === crc32(h, 0, 16);
}

function repairHeader(dv: DataView, h: Uint8Array): boolean {
  for (let i = 0; i < BLOCK_HEADER; i++) {
    for (let bit = 0; bit < 8; bit++) {
      h[i]! ^= 1 << bit;
      if (validHeader(dv, h)) return true;
      h[i]! ^= 1 << bit;
    }
  }
  return false;
}

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

function allErased(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0xff) return false;
  return true;
}
