/**
 * A firmware update on the machine, from the `update` command to the new
 * image's probation (docs/updates.md): checks the command against the
 * board's slots and the running image, journals each step before it
 * happens, fetches the image (download.ts), switches at a safe moment, and
 * after the restart either confirms the new image or reports the rollback.
 *
 * The journal holds the open update (journal/update-books.ts), so whichever
 * image boots after a power cut, a crash or a restart knows what it was
 * doing: resume the download, run the probation, or report the rollback.
 */
import type { Board, FirmwareSlots } from '../board.js';
import type { UpdateSettings } from '../config.js';
import { REFUSED_BUSY, REFUSED_DOWNGRADE, REFUSED_JOURNAL_FORMAT, REFUSED_NO_SLOTS, REFUSED_ON_PROBATION, REFUSED_STORAGE_FULL, REFUSED_TOO_LARGE } from '../command/vocabulary.js';
import type { Journal } from '../journal/journal.js';
import type { Ledger } from '../journal/ledger.js';
import { UPDATE_DOWNGRADE, UPDATE_FORCE } from '../journal/records.js';
import { DOWNLOADING } from '../journal/update-books.js';
import { UPDATE_REASONS, UpdatePhase, UpdateReason } from '../journal/vocabulary.js';
import { sameBytes } from '../crypto/hmac.js';
import { toHex } from '../text/hex.js';
import { Download, DownloadEnd } from './download.js';
import { formatVersion, parseVersion } from './version.js';

/** What an `update` command names (command/commander.ts has checked the shapes). */
export interface UpdateArgs {
  version: number;
  size: number;
  sha256: Uint8Array;
  journal: number;
  downgrade: boolean;
  force: boolean;
}

export interface UpdaterOptions {
  readonly board: Board;
  readonly journal: Journal;
  readonly ledger: Ledger;
  readonly settings: UpdateSettings;
  /** The running image's version and the journal format it reads and writes. */
  readonly running: string;
  readonly journalFormat: number;
  /** No credit, vend, payout, card session, bill in escrow or remote vend open. */
  idle(): boolean;
  /** "Updating, back in a minute" on the display. */
  showUpdating(): void;
  /** Every payment device configured has answered since boot. */
  devicesReady(): boolean;
  /** The calendar time (Unix seconds), where the machine knows it. */
  wallNow(): number | undefined;
}

/** Progress for telemetry (docs/updates.md). */
export interface UpdateStatus {
  n: number;
  version: string;
  state: 'downloading' | 'waiting' | 'probation';
  offset: number;
  size: number;
  /** While downloading, since this boot: the connection came back and the download carried on (`resumes`); requests asked again after a timeout or a gap (`retries`). */
  resumes?: number;
  retries?: number;
}

/** How often a waiting update looks for its safe moment, and a probation at its conditions. */
const CHECK_MS = 1000;

export class Updater {
  /** The uplink: asks the gateway for image bytes; false while offline. Set once the uplink exists. */
  request: ((image: string, offset: number, length: number) => boolean) | undefined;
  /** The uplink: online and every event acknowledged. */
  synced: (() => boolean) | undefined;
  /** The uplink: online. */
  connected: (() => boolean) | undefined;
  private readonly o: UpdaterOptions;
  private readonly slots: FirmwareSlots | undefined;
  private download: Download | undefined;
  private imageHex = '';
  private timer: number | undefined;
  private probationStart = -1;
  private readonly onCheck = (): void => this.check();

  constructor(options: UpdaterOptions) {
    this.o = options;
    this.slots = options.board.firmware;
  }

  /** Take an `update` command: 0 when it is under way (or resumed), else a REFUSED_* reason. */
  update(n: number, a: UpdateArgs): number {
    const slots = this.slots;
    if (!slots) return REFUSED_NO_SLOTS;
    if (slots.running.probation) return REFUSED_ON_PROBATION;
    const books = this.o.ledger.update;
    if (books.n !== 0) {
      // The same image again (a command sent twice, a rollout repeated): it carries on.
      return books.size === a.size && sameBytes(books.sha256, a.sha256) ? 0 : REFUSED_BUSY;
    }
    const running = parseVersion(this.o.running);
    if (a.version <= running && !a.downgrade) return REFUSED_DOWNGRADE;
    if (a.size > slots.slotSize) return REFUSED_TOO_LARGE;
    // After a rollback this firmware reads what the new image wrote: it must know that format.
    if (a.journal > this.o.journalFormat) return REFUSED_JOURNAL_FORMAT;
    // The open update rides in every checkpoint: it must still fit a flash block (a very large machine's may not).
    if (this.o.ledger.checkpointBytes(true) > this.o.journal.log.maxPayload) return REFUSED_STORAGE_FULL;
    const flags = (a.force ? UPDATE_FORCE : 0) | (a.downgrade ? UPDATE_DOWNGRADE : 0);
    this.o.journal.updateBegin(n, a.version, a.size, a.journal, flags, a.sha256);
    this.fetch();
    return 0;
  }

  /** After recovery: carry on with whatever update the journal holds open. */
  boot(): void {
    const slots = this.slots;
    const books = this.o.ledger.update;
    if (!slots) return;
    const running = slots.running;
    if (running.probation) {
      this.probationStart = this.o.board.clock.now();
      this.o.board.log('info', `update: ${running.version} on probation for ${this.o.settings.probationMs} ms`);
      this.arm();
      return;
    }
    if (books.n === 0) return;
    if (running.rolledBack) {
      const i = UPDATE_REASONS.indexOf(running.rolledBack.reason);
      this.o.board.log('warn', `update: ${running.rolledBack.version} rolled back (${running.rolledBack.reason})`);
      this.o.journal.update(books.n, UpdatePhase.ROLLED_BACK, i > 0 ? i : UpdateReason.OTHER, books.version);
      return;
    }
    if (books.phase === DOWNLOADING) {
      this.fetch();
      return;
    }
    if (books.phase === UpdatePhase.DOWNLOADED) {
      // Complete, and the machine restarted before the switch: the board boots the new image next time.
      this.arm();
      return;
    }
    // Switching, yet the previous image runs and says no rollback: the slot did not take.
    this.o.journal.update(books.n, UpdatePhase.FAILED, UpdateReason.SLOT_FAILED, books.version);
  }

  /** A message on the update/chunk topic. */
  chunk(payload: Uint8Array): void {
    this.download?.chunk(payload);
  }

  /** The uplink is online again. */
  linkUp(): void {
    this.download?.linkUp();
  }

  status(): UpdateStatus | undefined {
    const books = this.o.ledger.update;
    const running = this.slots?.running;
    if (running?.probation) return { n: books.n, version: running.version, state: 'probation', offset: books.size, size: books.size };
    if (books.n === 0) return undefined;
    const downloading = books.phase === DOWNLOADING;
    const d = this.download;
    const st: UpdateStatus = {
      n: books.n,
      version: formatVersion(books.version),
      state: downloading ? 'downloading' : 'waiting',
      offset: downloading ? (d?.offset ?? books.offset) : books.size,
      size: books.size,
    };
    if (downloading && d) {
      st.resumes = d.resumes;
      st.retries = d.retries;
    }
    return st;
  }

  private fetch(): void {
    const slots = this.slots!;
    const books = this.o.ledger.update;
    const s = this.o.settings;
    let writer;
    try {
      writer = slots.open({ byteLength: books.size, offset: books.offset });
    } catch (e) {
      this.o.board.log('error', `update: the slot would not open: ${e instanceof Error ? e.message : String(e)}`);
      this.o.journal.update(books.n, UpdatePhase.FAILED, UpdateReason.SLOT_FAILED, books.version);
      return;
    }
    this.imageHex = toHex(books.sha256);
    const n = books.n;
    this.download = new Download({
      image: books.sha256,
      size: books.size,
      offset: books.offset,
      state: books.offset > 0 ? books.state : undefined,
      slot: writer,
      clock: this.o.board.clock,
      timers: this.o.board.timers,
      chunk: s.chunkBytes,
      inFlight: s.inFlight,
      bytesPerSecond: s.bytesPerSecond,
      timeoutMs: s.requestTimeoutMs,
      request: (offset, length) => this.request?.(this.imageHex, offset, length) ?? false,
      progress: (offset, state) => {
        this.o.journal.updateProgress(n, offset, state);
      },
      done: (end) => this.downloaded(n, end),
    });
    this.download.start();
  }

  private downloaded(n: number, end: number): void {
    const books = this.o.ledger.update;
    this.download = undefined;
    if (books.n !== n) return;
    if (end !== DownloadEnd.COMPLETE) {
      this.o.board.log('warn', `update: ${formatVersion(books.version)} not installed (${UPDATE_REASONS[end]})`);
      this.o.journal.update(n, UpdatePhase.FAILED, end, books.version);
      return;
    }
    this.o.journal.update(n, UpdatePhase.DOWNLOADED, 0, books.version);
    this.o.board.log('info', `update: ${formatVersion(books.version)} downloaded and checked; waiting for a safe moment`);
    this.arm();
  }

  private arm(): void {
    if (this.timer !== undefined) this.o.board.timers.clear(this.timer);
    this.timer = this.o.board.timers.set(this.onCheck, CHECK_MS);
  }

  private check(): void {
    this.timer = undefined;
    if (this.probationStart >= 0) {
      this.probation();
      return;
    }
    const books = this.o.ledger.update;
    if (books.n === 0 || books.phase !== UpdatePhase.DOWNLOADED) return;
    if (!this.o.idle() || ((books.flags & UPDATE_FORCE) === 0 && this.inServiceHours()) || !this.o.board.restart) {
      this.arm();
      return;
    }
    // Journal before effect: the restart is the effect.
    this.o.journal.update(books.n, UpdatePhase.INSTALLING, 0, books.version);
    this.o.showUpdating();
    this.o.board.log('info', `update: restarting into ${formatVersion(books.version)}`);
    this.o.board.timers.set(() => this.o.board.restart?.(), 0);
  }

  private probation(): void {
    const slots = this.slots!;
    const books = this.o.ledger.update;
    const devices = this.o.devicesReady();
    const broker = this.connected?.() ?? false;
    const synced = this.synced?.() ?? false;
    if (devices && broker && synced) {
      slots.markValid();
      this.probationStart = -1;
      this.o.board.log('info', `update: ${slots.running.version} confirmed`);
      if (books.n !== 0) this.o.journal.update(books.n, UpdatePhase.CONFIRMED, 0, books.version);
      return;
    }
    if (this.o.board.clock.now() - this.probationStart < this.o.settings.probationMs) {
      this.arm();
      return;
    }
    const reason = !devices ? UpdateReason.PROBATION_DEVICES : !broker ? UpdateReason.PROBATION_BROKER : UpdateReason.PROBATION_SYNC;
    this.o.board.log('error', `update: ${slots.running.version} failed its probation (${UPDATE_REASONS[reason]}); back to the previous image`);
    this.probationStart = -1;
    slots.rollback(UPDATE_REASONS[reason]!);
  }

  /** Inside the operator's service hours, by the machine's calendar time (unknown time: not inside). */
  private inServiceHours(): boolean {
    const s = this.o.settings;
    if (s.serviceFrom === undefined || s.serviceTo === undefined) return false;
    const wall = this.o.wallNow();
    if (wall === undefined) return false;
    const minute = (((Math.floor(wall / 60) + s.utcOffsetMinutes) % 1440) + 1440) % 1440;
    return s.serviceFrom <= s.serviceTo ? minute >= s.serviceFrom && minute < s.serviceTo : minute >= s.serviceFrom || minute < s.serviceTo;
  }
}
