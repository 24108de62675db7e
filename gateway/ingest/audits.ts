/**
 * EVA-DTS files the machines send on fleet/{machine}/audit after an audit
 * read (docs/dex.md): `{"v":1,"read":N,"t":T}` on the first line, the file
 * after it. Rare and a few kilobytes each, so they skip the event
 * batching: each is parsed and stored on its own, and the broker gets its
 * PUBACK only once the file is committed (or refused for good), so a store
 * outage delays audits without losing them.
 */
import { DexError } from '../dex/parse.js';
import { AuditError, storeAudit } from '../dex/store.js';
import { MACHINE_ID } from '../machine-id.js';
import type { Db } from '../store/db.js';

export const MAX_AUDIT_PAYLOAD = 64 * 1024;

export type AuditOutcome = 'stored' | 'duplicate' | 'refused';

export interface AuditIntakeStats {
  stored: number;
  duplicates: number;
  refused: number;
}

/** The machine of an audit topic, or undefined when the topic is not one. */
export function auditMachine(topic: string): string | undefined {
  const p = topic.split('/');
  return p.length === 3 && p[0] === 'fleet' && p[2] === 'audit' && MACHINE_ID.test(p[1]!) ? p[1] : undefined;
}

export class AuditIntake {
  readonly stats: AuditIntakeStats = { stored: 0, duplicates: 0, refused: 0 };
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void,
    /** Called after each stored file (alerts, the dashboard). */
    private readonly onStored?: (machine: string, auditId: number) => void,
  ) {}

  /** Store one message; resolves when it is committed or refused for good (never rejects). */
  async take(machine: string, payload: Uint8Array): Promise<AuditOutcome> {
    const refuse = (why: string): AuditOutcome => {
      this.stats.refused++;
      if (this.stats.refused <= 5 || this.stats.refused % 100 === 0) this.log('warn', `audit from ${machine} refused: ${why}`);
      return 'refused';
    };
    if (payload.length > MAX_AUDIT_PAYLOAD) return refuse(`${payload.length} bytes, more than ${MAX_AUDIT_PAYLOAD}`);
    // A JSON header line, then the file as the machine wrote it.
    const cut = payload.indexOf(0x0a);
    if (cut < 0) return refuse('no header line');
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
    for (let delay = 500; ; delay = Math.min(delay * 2, 30000)) {
      try {
        const r = await storeAudit(this.db, { machineId: machine, source: 'machine', readNumber: b.read, text: dex });
        if (r.duplicate) {
          this.stats.duplicates++;
          return 'duplicate';
        }
        this.stats.stored++;
        this.log('info', `audit: read ${b.read} of ${machine} stored (${r.summary.products.length} selections${r.warnings.length > 0 ? `; ${r.warnings.join('; ')}` : ''})`);
        this.onStored?.(machine, r.id);
        return 'stored';
      } catch (e) {
        if (e instanceof DexError) return refuse(e.message);
        if (e instanceof AuditError) return refuse(e.message);
        if (this.closed) return 'refused';
        // The store is away: keep the message unacknowledged and try again.
        this.log('warn', `audit from ${machine}: store failed (${(e as Error).message}); retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  close(): void {
    this.closed = true;
  }
}
