/**
 * DEX audit files in the fleet store: the file exactly as received (for
 * download and re-reading with a better parser later) beside what the
 * parser read from it. A machine's read sent again is stored once. Each file
 * is one operator's (its machine's), or for a file of no machine its
 * uploader's (docs/tenants.md).
 */
import type { Queryable } from '../store/db.js';
import { parseDex, type CheckStatus, type DexSummary, type Totals } from './parse.js';
import { describeStoreError, faultOf } from '../store/errors.js';

export type AuditSource = 'machine' | 'upload';

export interface StoreAuditInput {
  /** A fleet machine the file belongs to (it must exist). */
  machineId?: string | undefined;
  source: AuditSource;
  /** The machine's number for this read: with machineId, a resend of it is not stored again. */
  readNumber?: number | undefined;
  text: string;
  /** The operator of a file tied to no machine (null or absent: a platform admin's); a machine's file is its operator's. */
  operator?: string | null | undefined;
}

export interface StoredAudit {
  id: number;
  /** The read was stored before (same machine and read number); id is that audit's. */
  duplicate: boolean;
  summary: DexSummary;
  warnings: string[];
}

export interface AuditRecord {
  id: number;
  machineId: string | null;
  source: AuditSource;
  readNumber: number | null;
  serial: string | null;
  /** The read time the file gives (the machine's clock, taken as UTC). */
  readAt: string | null;
  receivedAt: string;
  crc: CheckStatus;
  warnings: string[];
  /** VA1, for comparing reads at a glance. */
  paidVends: Totals | null;
}

export interface AuditDetail extends AuditRecord {
  summary: DexSummary;
}

export class AuditError extends Error {
  constructor(
    readonly code: 'unknown-machine' | 'bad-read-number' | 'refused-by-store',
    message: string,
  ) {
    super(message);
  }
}

interface Row {
  id: string | number;
  machine_id: string | null;
  source: AuditSource;
  read_number: number | null;
  serial: string | null;
  read_at: Date | string | null;
  received_at: Date | string;
  crc: CheckStatus;
  warnings: string[] | null;
  paid_vends: Totals | null;
}

const COLUMNS = `id, machine_id, source, read_number, serial, read_at, received_at, crc, summary->'warnings' AS warnings, summary->'paidVends' AS paid_vends`;

function record(r: Row): AuditRecord {
  return {
    id: Number(r.id),
    machineId: r.machine_id,
    source: r.source,
    readNumber: r.read_number === null ? null : Number(r.read_number),
    serial: r.serial,
    readAt: r.read_at === null ? null : new Date(r.read_at).toISOString(),
    receivedAt: new Date(r.received_at).toISOString(),
    crc: r.crc,
    warnings: Array.isArray(r.warnings) ? r.warnings : [],
    paidVends: r.paid_vends ?? null,
  };
}

/** The file's read time as a timestamp: it has no zone, so it is taken as UTC. */
function readTimestamp(readAt: string | null): string | null {
  if (!readAt) return null;
  return readAt.includes('T') ? `${readAt}Z` : `${readAt}T00:00:00Z`;
}

/** Parse (a malformed file throws its DexError) and store; a machine's read already stored is not stored again. */
export async function storeAudit(db: Queryable, input: StoreAuditInput): Promise<StoredAudit> {
  const { summary } = parseDex(input.text);
  const warnings = [...summary.warnings];
  const machineId = input.machineId ?? null;
  const readNumber = input.readNumber ?? null;
  if (readNumber !== null && !(Number.isInteger(readNumber) && readNumber >= 0 && readNumber <= 2147483647)) {
    throw new AuditError('bad-read-number', `read number ${readNumber} is not an integer from 0 to 2147483647`);
  }
  let operator = input.operator ?? null;
  if (machineId !== null) {
    const m = await db.query<{ operator_id: string }>('SELECT operator_id FROM machines WHERE id = $1', [machineId]);
    if (m.rows.length === 0) throw new AuditError('unknown-machine', `no machine "${machineId}"`);
    operator = m.rows[0]!.operator_id;
  }
  const inserted = await db
    .query<{ id: string | number }>(
      `INSERT INTO audits (machine_id, source, read_number, serial, read_at, crc, summary, raw, operator_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
       ON CONFLICT DO NOTHING RETURNING id`,
      [machineId, input.source, readNumber, summary.machine?.serial ?? null, readTimestamp(summary.readAt), summary.crc.status, JSON.stringify(summary), input.text, operator],
    )
    .catch((e: unknown) => {
      // Whatever the parser let through that the store will not hold is the file's fault, not the store's.
      if (faultOf(e) === 'data') throw new AuditError('refused-by-store', `the store refused what was read from the file: ${describeStoreError(e)}`);
      throw e;
    });
  const row = inserted.rows[0];
  if (row) return { id: Number(row.id), duplicate: false, summary, warnings };
  // Only (machine, read number) can conflict: the first copy stays.
  const prior = (await db.query<{ id: string | number; raw: string }>('SELECT id, raw FROM audits WHERE machine_id = $1 AND read_number = $2', [machineId, readNumber])).rows[0];
  if (!prior) throw new Error('audit insert conflicted but no prior read was found');
  if (prior.raw !== input.text) warnings.push(`read ${readNumber} of machine "${machineId}" was stored before with different content; the first copy is kept`);
  return { id: Number(prior.id), duplicate: true, summary, warnings };
}

/** A machine's audits, newest first. */
export async function listAudits(db: Queryable, machineId: string, limit: number): Promise<AuditRecord[]> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM audits WHERE machine_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2`, [machineId, limit]);
  return r.rows.map(record);
}

/** One audit, if it is `operator`'s (null: any operator's, and the platform's own). */
export async function getAudit(db: Queryable, id: number, operator: string | null = null): Promise<AuditDetail | undefined> {
  const r = await db.query<Row & { summary: DexSummary }>(`SELECT ${COLUMNS}, summary FROM audits WHERE id = $1 AND ($2::text IS NULL OR operator_id = $2)`, [id, operator]);
  const row = r.rows[0];
  return row ? { ...record(row), summary: row.summary } : undefined;
}

/** The file as received, for download, if it is `operator`'s (null: any). */
export async function getAuditFile(db: Queryable, id: number, operator: string | null = null): Promise<{ raw: string; machineId: string | null; serial: string | null } | undefined> {
  const r = await db.query<{ raw: string; machine_id: string | null; serial: string | null }>('SELECT raw, machine_id, serial FROM audits WHERE id = $1 AND ($2::text IS NULL OR operator_id = $2)', [
    id,
    operator,
  ]);
  const row = r.rows[0];
  return row ? { raw: row.raw, machineId: row.machine_id, serial: row.serial } : undefined;
}
