/**
 * The firmware update the journal holds open (docs/updates.md): what UPDATE
 * BEGIN named, the phase reached and where the download stands, so that
 * after a power cut, a restart into the new image or a rollback, the
 * firmware knows what it was doing. The ledger owns one and hands it the
 * three update records; it rides in the checkpoint as the CP_UPDATE section.
 */
import { CP_UPDATE, get, put, putRun, R_UPDATE, R_UPDATE_BEGIN, R_UPDATE_PROGRESS, run, size } from './records.js';
import { UpdatePhase } from './vocabulary.js';

/** The phase of an update still downloading (no UPDATE yet). */
export const DOWNLOADING = 0;

export class UpdateBooks {
  /** The open update's command number; 0: none open. */
  n = 0;
  version = 0;
  size = 0;
  journal = 0;
  flags = 0;
  /** DOWNLOADING, or the UpdatePhase reached (DOWNLOADED, INSTALLING). */
  phase = DOWNLOADING;
  /** Bytes in the slot at the last progress record, and the hash state there. */
  offset = 0;
  readonly sha256 = new Uint8Array(32);
  readonly state = new Uint8Array(32);

  apply(type: number, d: Uint8Array, o: number): void {
    if (type === R_UPDATE_BEGIN) {
      this.n = get(d, o, R_UPDATE_BEGIN, 'n');
      this.version = get(d, o, R_UPDATE_BEGIN, 'version');
      this.size = get(d, o, R_UPDATE_BEGIN, 'size');
      this.journal = get(d, o, R_UPDATE_BEGIN, 'journal');
      this.flags = get(d, o, R_UPDATE_BEGIN, 'flags');
      this.sha256.set(run(d, o, R_UPDATE_BEGIN, 'sha256'));
      this.phase = DOWNLOADING;
      this.offset = 0;
      this.state.fill(0);
    } else if (type === R_UPDATE_PROGRESS) {
      if (get(d, o, R_UPDATE_PROGRESS, 'n') !== this.n) return;
      this.offset = get(d, o, R_UPDATE_PROGRESS, 'offset');
      this.state.set(run(d, o, R_UPDATE_PROGRESS, 'state'));
    } else if (type === R_UPDATE) {
      if (get(d, o, R_UPDATE, 'n') !== this.n) return;
      const phase = get(d, o, R_UPDATE, 'phase');
      if (phase === UpdatePhase.DOWNLOADED || phase === UpdatePhase.INSTALLING) this.phase = phase;
      else this.n = 0;
    }
  }

  /** Bytes of the CP_UPDATE section. */
  static readonly SIZE = size(CP_UPDATE);

  save(v: DataView, out: Uint8Array, o: number): number {
    put(v, CP_UPDATE, 'n', this.n, o);
    put(v, CP_UPDATE, 'version', this.version, o);
    put(v, CP_UPDATE, 'size', this.size, o);
    put(v, CP_UPDATE, 'journal', this.journal, o);
    put(v, CP_UPDATE, 'flags', this.flags, o);
    put(v, CP_UPDATE, 'phase', this.phase, o);
    put(v, CP_UPDATE, 'offset', this.offset, o);
    putRun(out, CP_UPDATE, 'sha256', this.sha256, o);
    putRun(out, CP_UPDATE, 'state', this.state, o);
    return o + UpdateBooks.SIZE;
  }

  load(d: Uint8Array, o: number): void {
    this.n = get(d, o, CP_UPDATE, 'n');
    this.version = get(d, o, CP_UPDATE, 'version');
    this.size = get(d, o, CP_UPDATE, 'size');
    this.journal = get(d, o, CP_UPDATE, 'journal');
    this.flags = get(d, o, CP_UPDATE, 'flags');
    this.phase = get(d, o, CP_UPDATE, 'phase');
    this.offset = get(d, o, CP_UPDATE, 'offset');
    this.sha256.set(run(d, o, CP_UPDATE, 'sha256'));
    this.state.set(run(d, o, CP_UPDATE, 'state'));
  }
}
