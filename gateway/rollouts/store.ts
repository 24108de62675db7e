/**
 * Rollouts in the fleet store (migration 11), the only place their SQL
 * lives: a rollout and its machines, their states and counts, and what the
 * engine reads in one go for a step (each started machine's newest update
 * report, its telemetry's update object, its command's status). The same
 * SQL runs on PGlite and PostgreSQL.
 */
import type { Queryable } from '../store/db.js';
import type { Halt, Target } from './plan.js';
import type { MachineState } from './progress.js';

/** running: starting machines; paused: by an operator; halted: too many failures in a wave; done and cancelled are final. */
export type RolloutState = 'running' | 'paused' | 'halted' | 'done' | 'cancelled';
export const UNFINISHED: readonly RolloutState[] = ['running', 'paused', 'halted'];

export interface RolloutRecord {
  id: string;
  /** The operator whose machines it updates (docs/tenants.md). */
  operator: string;
  sha256: string;
  version: string;
  target: Target;
  waves: number[];
  halt: Halt;
  parallel: number;
  timeoutS: number;
  downgrade: boolean;
  force: boolean;
  state: RolloutState;
  /** The current wave, from 0. */
  wave: number;
  /** Failures in the current wave an operator accepted by resuming a halt. */
  waveBadBase: number;
  reason: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  endedAt: string | null;
}

export interface EntryRecord {
  machine: string;
  wave: number;
  position: number;
  state: MachineState;
  bytes: number | null;
  size: number | null;
  reason: string | null;
  commandId: string | null;
  n: number | null;
  baseSeq: number;
  progressAt: number | null;
  seen: string;
}

interface RolloutRow {
  id: string;
  operator_id: string;
  sha256: string;
  version: string;
  target: Target;
  waves: number[];
  halt: Halt;
  parallel: number;
  timeout_s: number;
  downgrade: boolean;
  force: boolean;
  state: RolloutState;
  wave: number;
  wave_bad_base: number;
  reason: string | null;
  created_by: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  ended_at: Date | string | null;
}

const ROLLOUT_COLUMNS = 'id, operator_id, sha256, version, target, waves, halt, parallel, timeout_s, downgrade, force, state, wave, wave_bad_base, reason, created_by, created_at, updated_at, ended_at';
const iso = (d: Date | string): string => new Date(d).toISOString();
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function rollout(r: RolloutRow): RolloutRecord {
  return {
    id: r.id,
    operator: r.operator_id,
    sha256: r.sha256,
    version: r.version,
    target: r.target,
    waves: r.waves,
    halt: r.halt,
    parallel: Number(r.parallel),
    timeoutS: Number(r.timeout_s),
    downgrade: r.downgrade,
    force: r.force,
    state: r.state,
    wave: Number(r.wave),
    waveBadBase: Number(r.wave_bad_base),
    reason: r.reason,
    createdBy: r.created_by,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    endedAt: r.ended_at === null ? null : iso(r.ended_at),
  };
}

interface EntryRow {
  machine_id: string;
  wave: number;
  position: number;
  state: MachineState;
  bytes: string | number | null;
  size: string | number | null;
  reason: string | null;
  command_id: string | null;
  n: string | number | null;
  base_seq: string | number;
  progress_at: string | number | null;
  seen: string;
}

const ENTRY_COLUMNS = 'e.machine_id, e.wave, e.position, e.state, e.bytes, e.size, e.reason, e.command_id, e.n, e.base_seq, e.progress_at, e.seen';

function entry(r: EntryRow): EntryRecord {
  return {
    machine: r.machine_id,
    wave: Number(r.wave),
    position: Number(r.position),
    state: r.state,
    bytes: num(r.bytes),
    size: num(r.size),
    reason: r.reason,
    commandId: r.command_id,
    n: num(r.n),
    baseSeq: Number(r.base_seq),
    progressAt: num(r.progress_at),
    seen: r.seen,
  };
}

export interface NewRollout {
  id: string;
  operator: string;
  sha256: string;
  version: string;
  target: Target;
  waves: readonly number[];
  halt: Halt;
  parallel: number;
  timeoutS: number;
  downgrade: boolean;
  force: boolean;
  createdBy: string | null;
}

/** Machines of these already in an unfinished rollout: machine → rollout. */
export async function activeRollouts(db: Queryable, machines: readonly string[]): Promise<Map<string, string>> {
  const r = await db.query<{ machine_id: string; rollout_id: string }>('SELECT machine_id, rollout_id FROM rollout_machines WHERE active AND machine_id = ANY($1::text[]) ORDER BY machine_id', [machines]);
  return new Map(r.rows.map((x) => [x.machine_id, x.rollout_id]));
}

export async function insertRollout(tx: Queryable, r: NewRollout, plan: readonly { machine: string; wave: number }[]): Promise<RolloutRecord> {
  const row = await tx.query<RolloutRow>(
    `INSERT INTO rollouts (id, sha256, version, target, waves, halt, parallel, timeout_s, downgrade, force, state, created_by, operator_id)
     VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9, $10, 'running', $11, $12) RETURNING ${ROLLOUT_COLUMNS}`,
    [r.id, r.sha256, r.version, JSON.stringify(r.target), JSON.stringify(r.waves), JSON.stringify(r.halt), r.parallel, r.timeoutS, r.downgrade, r.force, r.createdBy, r.operator],
  );
  await tx.query(
    `INSERT INTO rollout_machines (rollout_id, machine_id, wave, position)
     SELECT $1, m, w, p FROM unnest($2::text[], $3::int[], $4::int[]) AS u(m, w, p)`,
    [r.id, plan.map((p) => p.machine), plan.map((p) => p.wave), plan.map((_, i) => i)],
  );
  return rollout(row.rows[0]!);
}

/** A rollout, if it is `operator`'s (null: any operator's). */
export async function getRollout(db: Queryable, id: string, lock = false, operator: string | null = null): Promise<RolloutRecord | undefined> {
  // FOR UPDATE: one step or operator change of a rollout at a time, across gateways.
  const r = await db.query<RolloutRow>(`SELECT ${ROLLOUT_COLUMNS} FROM rollouts WHERE id = $1 AND ($2::text IS NULL OR operator_id = $2)${lock ? ' FOR UPDATE' : ''}`, [id, operator]);
  return r.rows[0] ? rollout(r.rows[0]) : undefined;
}

/** Rollouts, newest first; `unfinished`: running, paused or halted only; `operator`'s only if given (null: every operator's). */
export async function listRollouts(db: Queryable, options: { limit?: number; unfinished?: boolean; operator?: string | null } = {}): Promise<RolloutRecord[]> {
  const r = await db.query<RolloutRow>(
    `SELECT ${ROLLOUT_COLUMNS} FROM rollouts WHERE ($1::boolean IS NOT TRUE OR state = ANY($2::text[])) AND ($4::text IS NULL OR operator_id = $4) ORDER BY created_at DESC, id DESC LIMIT $3`,
    [options.unfinished ?? false, UNFINISHED, options.limit ?? 100, options.operator ?? null],
  );
  return r.rows.map(rollout);
}

/** Machines per wave and state, for these rollouts. */
export async function stateCounts(db: Queryable, ids: readonly string[]): Promise<{ rollout: string; wave: number; state: MachineState; n: number }[]> {
  const r = await db.query<{ rollout_id: string; wave: number; state: MachineState; n: string | number }>(
    'SELECT rollout_id, wave, state, count(*) AS n FROM rollout_machines WHERE rollout_id = ANY($1::text[]) GROUP BY rollout_id, wave, state',
    [ids],
  );
  return r.rows.map((x) => ({ rollout: x.rollout_id, wave: Number(x.wave), state: x.state, n: Number(x.n) }));
}

/** A rollout's machines in order, those in `states` if given. */
export async function entries(db: Queryable, id: string, options: { states?: readonly MachineState[]; limit?: number } = {}): Promise<EntryRecord[]> {
  const r = await db.query<EntryRow>(
    `SELECT ${ENTRY_COLUMNS} FROM rollout_machines e WHERE e.rollout_id = $1 AND ($2::text[] IS NULL OR e.state = ANY($2::text[])) ORDER BY e.wave, e.position LIMIT $3`,
    [id, options.states ?? null, options.limit ?? 1000000],
  );
  return r.rows.map(entry);
}

/** What a step reads of a started, unfinished machine besides its entry. */
export interface HeardRow {
  machine: string;
  report: { seq: number; n: number; version: string; phase: string; size: number | null; reason: string | null } | undefined;
  telemetry: unknown;
  telemetryAt: number | undefined;
  command: { status: string; outcome: Record<string, unknown> | null } | undefined;
}

/** For the started machines of a rollout that are not done: their newest report, telemetry update and command. */
export async function heard(tx: Queryable, id: string): Promise<HeardRow[]> {
  const r = await tx.query<{
    machine_id: string;
    seq: string | null;
    rn: string | null;
    version: string | null;
    phase: string | null;
    size: string | null;
    reason: string | null;
    upd: unknown;
    telemetry_at: Date | string | null;
    status: string | null;
    outcome: Record<string, unknown> | null;
  }>(
    `SELECT e.machine_id, u.seq, u.n AS rn, u.version, u.phase, u.size, u.reason,
            CASE WHEN jsonb_typeof(s.telemetry) = 'object' THEN s.telemetry->'update' END AS upd, s.telemetry_at,
            c.status, c.outcome
     FROM rollout_machines e
     LEFT JOIN machine_updates u ON u.machine_id = e.machine_id
     LEFT JOIN machine_state s ON s.machine_id = e.machine_id
     LEFT JOIN commands c ON c.id = e.command_id
     WHERE e.rollout_id = $1 AND e.command_id IS NOT NULL AND (e.state NOT IN ('confirmed', 'rolled-back', 'failed') OR e.reason = 'timeout')`,
    [id],
  );
  return r.rows.map((x) => ({
    machine: x.machine_id,
    report: x.seq === null ? undefined : { seq: Number(x.seq), n: Number(x.rn), version: x.version ?? '', phase: x.phase ?? '', size: num(x.size), reason: x.reason },
    telemetry: x.upd,
    telemetryAt: x.telemetry_at === null ? undefined : new Date(x.telemetry_at).getTime(),
    command: x.status === null ? undefined : { status: x.status, outcome: x.outcome },
  }));
}

/** New states of machines (one statement for all). */
export async function writeEntries(tx: Queryable, id: string, list: readonly { machine: string; state: MachineState; bytes: number | null; size: number | null; reason: string | null; progressAt: number | null; seen: string }[]): Promise<void> {
  if (list.length === 0) return;
  await tx.query(
    `UPDATE rollout_machines e SET state = u.state, bytes = u.bytes, size = u.size, reason = u.reason, progress_at = u.progress_at, seen = u.seen, updated_at = now()
     FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], $8::text[]) AS u(m, state, bytes, size, reason, progress_at, seen)
     WHERE e.rollout_id = $1 AND e.machine_id = u.m`,
    [id, list.map((x) => x.machine), list.map((x) => x.state), list.map((x) => x.bytes), list.map((x) => x.size), list.map((x) => x.reason), list.map((x) => x.progressAt), list.map((x) => x.seen)],
  );
}

/**
 * A pending machine starts: the command sent for it. Only while the
 * rollout runs and the machine is still pending (another gateway may have
 * started it, an operator paused): false otherwise, and the caller's
 * transaction (the command's) is to be rolled back.
 */
export async function markStarted(tx: Queryable, id: string, machine: string, command: { id: string; n: number }, baseSeq: number, at: number): Promise<boolean> {
  const r = await tx.query(
    `UPDATE rollout_machines SET command_id = $3, n = $4, base_seq = $5, progress_at = $6, seen = '', updated_at = now()
     WHERE rollout_id = $1 AND machine_id = $2 AND state = 'pending' AND command_id IS NULL AND active
       AND EXISTS (SELECT 1 FROM rollouts WHERE id = $1 AND state = 'running')
     RETURNING machine_id`,
    [id, machine, command.id, command.n, baseSeq, at],
  );
  return r.rows.length > 0;
}

/** Machines about to start: the version they run and their newest update report's number. */
export async function startFacts(db: Queryable, machines: readonly string[]): Promise<Map<string, { fw: unknown; reportSeq: number }>> {
  const r = await db.query<{ id: string; fw: unknown; seq: string | null }>(
    `SELECT m.id, COALESCE(CASE WHEN jsonb_typeof(s.telemetry) = 'object' THEN s.telemetry->>'fw' END, CASE WHEN jsonb_typeof(s.status) = 'object' THEN s.status->>'fw' END) AS fw, u.seq
     FROM machines m LEFT JOIN machine_state s ON s.machine_id = m.id LEFT JOIN machine_updates u ON u.machine_id = m.id
     WHERE m.id = ANY($1::text[])`,
    [machines],
  );
  return new Map(r.rows.map((x) => [x.id, { fw: x.fw, reportSeq: Number(x.seq ?? 0) }]));
}

/** A machine's own entry changed outside a step (it ran the version already; its command was refused before sending). */
export async function settleEntry(tx: Queryable, id: string, machine: string, state: MachineState, reason: string | null): Promise<void> {
  await tx.query(`UPDATE rollout_machines SET state = $3, reason = $4, updated_at = now() WHERE rollout_id = $1 AND machine_id = $2 AND state = 'pending'`, [id, machine, state, reason]);
}

export async function setState(tx: Queryable, id: string, change: { state?: RolloutState; wave?: number; waveBadBase?: number; reason?: string | null }): Promise<RolloutRecord> {
  const ended = change.state === 'done' || change.state === 'cancelled';
  const r = await tx.query<RolloutRow>(
    `UPDATE rollouts SET state = COALESCE($2, state), wave = COALESCE($3, wave), wave_bad_base = COALESCE($4, wave_bad_base),
       reason = CASE WHEN $5::boolean THEN $6 ELSE reason END, updated_at = now(), ended_at = CASE WHEN $7::boolean THEN now() ELSE ended_at END
     WHERE id = $1 RETURNING ${ROLLOUT_COLUMNS}`,
    [id, change.state ?? null, change.wave ?? null, change.waveBadBase ?? null, change.reason !== undefined, change.reason ?? null, ended],
  );
  // A finished rollout holds no machine: each may be in another one from now on.
  if (ended) await tx.query('UPDATE rollout_machines SET active = false WHERE rollout_id = $1 AND active', [id]);
  return rollout(r.rows[0]!);
}

/** Started machines not at an end: their commands (a cancel calls them off). */
export async function openCommands(tx: Queryable, id: string): Promise<{ machine: string; commandId: string }[]> {
  const r = await tx.query<{ machine_id: string; command_id: string }>(
    `SELECT machine_id, command_id FROM rollout_machines WHERE rollout_id = $1 AND command_id IS NOT NULL AND state NOT IN ('confirmed', 'rolled-back', 'failed')`,
    [id],
  );
  return r.rows.map((x) => ({ machine: x.machine_id, commandId: x.command_id }));
}

/**
 * The machines of `operator` a target names (a list: those it has, and those
 * it does not: another operator's are missing too), has (a tag), or every
 * machine of it (all, and a percentage to choose from).
 */
export async function machinesFor(db: Queryable, target: Target, operator: string): Promise<{ found: string[]; missing: string[] }> {
  if (target.kind === 'machines') {
    const r = await db.query<{ id: string }>('SELECT id FROM machines WHERE id = ANY($1::text[]) AND operator_id = $2 ORDER BY id', [target.machines, operator]);
    const found = r.rows.map((x) => x.id);
    return { found, missing: target.machines.filter((m) => !found.includes(m)) };
  }
  if (target.kind === 'tag') {
    const r = await db.query<{ machine_id: string }>(
      'SELECT t.machine_id FROM machine_tags t JOIN machines m ON m.id = t.machine_id WHERE t.tag = $1 AND m.operator_id = $2 ORDER BY t.machine_id',
      [target.tag, operator],
    );
    return { found: r.rows.map((x) => x.machine_id), missing: [] };
  }
  const r = await db.query<{ id: string }>('SELECT id FROM machines WHERE operator_id = $1 ORDER BY id', [operator]);
  return { found: r.rows.map((x) => x.id), missing: [] };
}
