/**
 * EVA-DTS files the machines send on fleet/{machine}/audit after an audit
 * read (docs/dex.md): `{"v":1,"read":N,"t":T}` on the first line, the file
 * after it. Rare and a few kilobytes each, so they skip the event
 * batching: each is parsed and stored on its own.
 *
 * They arrive on a connection of their own (gateway.ts), acknowledged to
 * the broker once the file is committed or refused for good: while the
 * store is down only that connection waits (the broker queues audit files
 * for it), never the events, telemetry and status of the fleet. What the
 * store refuses for its content is refused like a malformed file, with the
 * reason recorded (`rejections`, reason bad-audit), and acknowledged.
 */
import { DexError } from '../dex/parse.js';
import { AuditError, storeAudit } from '../dex/store.js';
import { isMachineId } from '../machine-id.js';
import type { Db } from '../store/db.js';
import { classifyStoreError, describeStoreError } from '../store/errors.js';
import { countRejections } from './store.js';

export const MAX_AUDIT_PAYLOAD = 64 * 1024;
/** A store failure neither clearly the store's nor the file's: this many tries, then the file's. */
const SUSPECT_TRIES = 3;

export type AuditOutcome = 'stored' | 'duplicate' | 'refused' | 'held';

export interface AuditIntakeStats {
  stored: number;
  duplicates: number;
  refused: number;
  storeErrors: number;
}

export interface AuditIntakeOptions {
  /** Called after each stored file (alerts, the dashboard). */
  onStored?: (machine: string, auditId: number) => void;
  /** First and longest wait between tries while the store is down, ms. */
  retryMs?: number;
  maxRetryMs?: number;
}

/** The machine of an audit topic, or undefined when the topic is not one. */
export function auditMachine(topic: string): string | undefined {
  const p = topic.split('/');
  return p.length === 3 && p[0] === 'fleet' && p[2] === 'audit' && isMachineId(p[1]!) ? p[1] : undefined;
}

export class AuditIntake {
  readonly stats: AuditIntakeStats = { stored: 0, duplicates: 0, refused: 0, storeErrors: 0 };
  private closed = false;
  private wake: (() => void) | undefined;
  /** Since when a file has waited for the store (undefined: none waits). */
  private waitingSince: number | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void,
    private readonly options: AuditIntakeOptions = {},
  ) {}

  /** Store one message; resolves when it is committed, refused for good, or held because the gateway is closing. */
  async take(machine: string, payload: Uint8Array): Promise<AuditOutcome> {
    const refuse = (why: string): AuditOutcome => {
      this.stats.refused++;
      if (this.stats.refused <= 5 || this.stats.refused % 100 === 0) this.log('warn', `audit from ${machine} refused: ${why}`);
      void this.record(`${machine}: ${why}`);
      return 'refused';
    };
    if (payload.length > MAX_AUDIT_PAYLOAD) return refuse(`${payload.length} bytes, more than ${MAX_AUDIT_PAYLOAD}`);
    // A JSON header line, then the file as the machine wrote it.
    const cut = payload.indexOf(0x0a);
    if (cut < 0) return refuse('no header line');
    if (cut > 1024) return refuse(`a header line of ${cut} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(0, cut)));
    } catch (e) {
      return refuse(`header is not JSON (${(e as Error).message.slice(0, 80)})`);
    }
    const b = body as { v?: unknown; read?: unknown };
    if (typeof body !== 'object' || body === null || b.v !== 1) return refuse('not a version 1 audit message');
    if (typeof b.read !== 'number' || !Number.isInteger(b.read) || b.read < 1 || b.read > 0x7fffffff) return refuse('read must be a positive integer');
    if (payload.length === cut + 1) return refuse('no file after the header');
    // Byte for byte, so that a stray non-ASCII byte is refused on its own line by the parser.
    const dex = Buffer.from(payload.buffer, payload.byteOffset + cut + 1, payload.length - cut - 1).toString('latin1');
    let suspect = 0;
    for (let delay = this.options.retryMs ?? 500; ; delay = Math.min(delay * 2, this.options.maxRetryMs ?? 30000)) {
      if (this.closed) return 'held';
      try {
        const r = await storeAudit(this.db, { machineId: machine, source: 'machine', readNumber: b.read, text: dex });
        this.stored();
        if (r.duplicate) {
          this.stats.duplicates++;
          return 'duplicate';
        }
        this.stats.stored++;
        this.log('info', `audit: read ${b.read} of ${machine} stored (${r.summary.products.length} selections${r.warnings.length > 0 ? `; ${r.warnings.join('; ')}` : ''})`);
        this.options.onStored?.(machine, r.id);
        return 'stored';
      } catch (e) {
        if (e instanceof DexError || e instanceof AuditError) {
          this.stored();
          return refuse(e.message);
        }
        if (this.closed) return 'held';
        const fault = await classifyStoreError(e, this.db);
        const why = describeStoreError(e);
        if (fault === 'data' || (fault === 'suspect' && ++suspect > SUSPECT_TRIES)) {
          this.stored();
          return refuse(`the store refused it: ${why}`);
        }
        // The store is away: this file waits (and with it only the audit connection), unacknowledged.
        this.stats.storeErrors++;
        const first = this.waitingSince === undefined;
        this.waitingSince ??= Date.now();
        this.lastError = why;
        if (first || this.stats.storeErrors % 10 === 0) this.log('warn', `audit from ${machine}: store failed (${why}); retrying in ${delay} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }

  private stored(): void {
    this.waitingSince = undefined;
    this.lastError = undefined;
  }

  /** True while a file waits for the store (its connection is held). */
  get busy(): boolean {
    return this.waitingSince !== undefined;
  }

  health(): { waitingMs: number; lastError: string | undefined } {
    return { waitingMs: this.waitingSince === undefined ? 0 : Date.now() - this.waitingSince, lastError: this.lastError };
  }

  /** Refusals are counted in the store by reason, like ingest's; a store that is away loses only the count. */
  private async record(detail: string): Promise<void> {
    try {
      await countRejections(this.db, 'bad-audit', 1, detail);
    } catch {
      // Counted in memory and logged already.
    }
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }
}
