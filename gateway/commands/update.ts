/**
 * The `update` command on the gateway (docs/updates.md "The command"). An
 * operator names an image (its SHA-256 or its version), never its facts:
 * the gateway fills in version, size, SHA-256 and journal format from the
 * registry, so a command can only name bytes the registry holds, signed by
 * a release key. A version not newer than what the machine says it runs is
 * refused unless `downgrade` is asked for; a machine in an unfinished
 * rollout takes updates from that rollout only.
 *
 * The machine's reports (update-begin, update events) move the command on:
 * under way (`running`: the machine took it; it no longer expires), then
 * final (`applied` when the new image confirmed, `failed`, `rolled-back`).
 * The newest report of each machine is kept (machine_updates) for the
 * rollouts and alerts to read. All of it in the ingest transaction.
 */
import { compareVersions, isVersion, SHA256_HEX, VERSION_RULE } from '../firmware/image.js';
import { getImage, getImageByVersion } from '../firmware/store.js';
import type { Queryable } from '../store/db.js';

/** What an operator may say in an update command's arguments. */
const ARGS = new Set(['sha256', 'version', 'downgrade', 'force']);

/** The arguments a machine gets (docs/updates.md "The command"). */
export interface UpdateArgs {
  version: string;
  size: number;
  sha256: string;
  journal: number;
  source: 'mqtt';
  downgrade?: true;
  force?: true;
}

export type UpdateProblem = 'bad-args' | 'unknown-image' | 'downgrade' | 'in-rollout';

export class UpdateArgsError extends Error {
  constructor(
    message: string,
    readonly code: UpdateProblem,
  ) {
    super(message);
  }
}

/** The version a machine says it runs (telemetry `fw`, else its status's), when it is one. */
export async function runningVersion(db: Queryable, machine: string): Promise<string | undefined> {
  const r = await db.query<{ fw: unknown }>(
    `SELECT COALESCE(CASE WHEN jsonb_typeof(telemetry) = 'object' THEN telemetry->>'fw' END,
                     CASE WHEN jsonb_typeof(status) = 'object' THEN status->>'fw' END) AS fw
     FROM machine_state WHERE machine_id = $1`,
    [machine],
  );
  const fw = r.rows[0]?.fw;
  return typeof fw === 'string' && isVersion(fw) ? fw : undefined;
}

/**
 * The machine's arguments for an operator's (or a rollout's) `update`:
 * UpdateArgsError when the arguments are not an image's name and the two
 * flags, name no image, would downgrade without `downgrade`, or the machine
 * is in another rollout (`rollout`: the one asking, if any).
 */
export async function resolveUpdate(tx: Queryable, machine: string, args: Record<string, unknown>, rollout?: string): Promise<UpdateArgs> {
  for (const k of Object.keys(args)) {
    if (!ARGS.has(k)) throw new UpdateArgsError(`an update names an image (sha256 or version) and may say downgrade and force; "${k.slice(0, 40)}" is the gateway's to fill in or not an argument`, 'bad-args');
  }
  const { sha256, version, downgrade, force } = args;
  for (const [name, v] of [['downgrade', downgrade], ['force', force]] as const) {
    if (v !== undefined && typeof v !== 'boolean') throw new UpdateArgsError(`${name} is true or false`, 'bad-args');
  }
  if (sha256 === undefined && version === undefined) throw new UpdateArgsError('an update names its image: sha256 (64 hex digits) or version', 'bad-args');
  if (sha256 !== undefined && (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256))) throw new UpdateArgsError('sha256 is 64 lower-case hex digits', 'bad-args');
  if (version !== undefined && (typeof version !== 'string' || !isVersion(version))) throw new UpdateArgsError(`version: ${VERSION_RULE}`, 'bad-args');
  const image = sha256 !== undefined ? await getImage(tx, sha256) : await getImageByVersion(tx, version as string);
  if (!image) throw new UpdateArgsError(`the registry has no image ${sha256 !== undefined ? sha256 : `of version ${String(version)}`}`, 'unknown-image');
  if (version !== undefined && image.version !== version) throw new UpdateArgsError(`image ${image.sha256} is version ${image.version}, not ${String(version)}`, 'bad-args');
  const running = await runningVersion(tx, machine);
  if (running !== undefined && compareVersions(image.version, running) <= 0 && downgrade !== true) {
    throw new UpdateArgsError(`${machine} runs ${running}; ${image.version} is not newer: say downgrade: true to install it anyway (admin)`, 'downgrade');
  }
  const other = await tx.query<{ rollout_id: string }>('SELECT rollout_id FROM rollout_machines WHERE machine_id = $1 AND active AND rollout_id IS DISTINCT FROM $2', [machine, rollout ?? null]);
  if (other.rows[0]) throw new UpdateArgsError(`${machine} is in rollout ${other.rows[0].rollout_id}, which updates it: pause or cancel that first`, 'in-rollout');
  return {
    version: image.version,
    size: image.size,
    sha256: image.sha256,
    journal: image.journal,
    source: 'mqtt',
    ...(downgrade === true ? { downgrade: true as const } : {}),
    ...(force === true ? { force: true as const } : {}),
  };
}

// ---- the machine's reports ---------------------------------------------------------------------

/** update-begin is `begin`; the rest are the update event's phases. */
export const UPDATE_PHASES = ['begin', 'downloaded', 'failed', 'installing', 'confirmed', 'rolled-back'] as const;
export type UpdatePhase = (typeof UPDATE_PHASES)[number];

/** An update's report as kept: the newest per machine. */
export interface UpdateReport {
  machine: string;
  seq: number;
  n: number;
  version: string;
  phase: UpdatePhase;
  sha256?: string | undefined;
  size?: number | undefined;
  reason?: string | undefined;
  body: Record<string, unknown>;
}

/** Where a report takes the command it names: still under way, or its final status. */
export const PHASE_STATUS: Readonly<Record<UpdatePhase, 'running' | 'applied' | 'failed' | 'rolled-back'>> = {
  begin: 'running',
  downloaded: 'running',
  installing: 'running',
  confirmed: 'applied',
  failed: 'failed',
  'rolled-back': 'rolled-back',
};

/** An update-begin or update event (checked by the ingest contract) as a report; undefined for anything else. */
export function reportOf(machine: string, type: string, body: Record<string, unknown>): UpdateReport | undefined {
  const { seq, n, version } = body;
  if (typeof seq !== 'number' || typeof n !== 'number' || typeof version !== 'string') return undefined;
  if (type === 'update-begin') {
    const { sha256, size } = body;
    return { machine, seq, n, version, phase: 'begin', sha256: typeof sha256 === 'string' ? sha256 : undefined, size: typeof size === 'number' ? size : undefined, body };
  }
  if (type !== 'update') return undefined;
  const phase = body['phase'];
  if (typeof phase !== 'string' || phase === 'begin' || !(UPDATE_PHASES as readonly string[]).includes(phase)) return undefined;
  const reason = body['reason'];
  return { machine, seq, n, version, phase: phase as UpdatePhase, reason: typeof reason === 'string' ? reason : undefined, body };
}

/** Keep each machine's newest report (an older one arriving late, through another gateway, changes nothing). */
export async function storeReports(tx: Queryable, reports: readonly UpdateReport[]): Promise<void> {
  const newest = new Map<string, UpdateReport>();
  for (const r of reports) if ((newest.get(r.machine)?.seq ?? -1) < r.seq) newest.set(r.machine, r);
  const list = [...newest.values()];
  if (list.length === 0) return;
  await tx.query(
    `INSERT INTO machine_updates (machine_id, seq, n, version, sha256, size, phase, reason, at)
     SELECT m, s, n, v, h, z, p, r, now() FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[]) AS u(m, s, n, v, h, z, p, r)
     ON CONFLICT (machine_id) DO UPDATE SET seq = EXCLUDED.seq, n = EXCLUDED.n, version = EXCLUDED.version,
       -- The image's SHA-256 and size come with update-begin only: the steps after keep them.
       sha256 = CASE WHEN EXCLUDED.phase = 'begin' OR machine_updates.n <> EXCLUDED.n THEN EXCLUDED.sha256 ELSE machine_updates.sha256 END,
       size = CASE WHEN EXCLUDED.phase = 'begin' OR machine_updates.n <> EXCLUDED.n THEN EXCLUDED.size ELSE machine_updates.size END,
       phase = EXCLUDED.phase, reason = EXCLUDED.reason, at = now()
     WHERE machine_updates.seq < EXCLUDED.seq`,
    [
      list.map((r) => r.machine),
      list.map((r) => r.seq),
      list.map((r) => r.n),
      list.map((r) => r.version),
      list.map((r) => r.sha256 ?? null),
      list.map((r) => r.size ?? null),
      list.map((r) => r.phase),
      list.map((r) => r.reason ?? null),
    ],
  );
}

/** Each command's newest report in a batch: (machine, n) → the report with the highest sequence number. */
export function newestPerCommand(reports: readonly UpdateReport[]): UpdateReport[] {
  const out = new Map<string, UpdateReport>();
  for (const r of reports) {
    const k = `${r.machine}\u0000${r.n}`;
    if ((out.get(k)?.seq ?? -1) < r.seq) out.set(k, r);
  }
  return [...out.values()];
}

/** The machine's newest update report, if it made one. */
export async function latestReport(db: Queryable, machine: string): Promise<Omit<UpdateReport, 'body' | 'machine'> & { at: string } | undefined> {
  const r = await db.query<{ seq: string; n: string; version: string; phase: UpdatePhase; sha256: string | null; size: string | null; reason: string | null; at: Date | string }>(
    'SELECT seq, n, version, phase, sha256, size, reason, at FROM machine_updates WHERE machine_id = $1',
    [machine],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return {
    seq: Number(row.seq),
    n: Number(row.n),
    version: row.version,
    phase: row.phase,
    sha256: row.sha256 ?? undefined,
    size: row.size === null ? undefined : Number(row.size),
    reason: row.reason ?? undefined,
    at: new Date(row.at).toISOString(),
  };
}
