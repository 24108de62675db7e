/**
 * Where one machine of a rollout stands, pure: from what the gateway has
 * heard of its update (docs/updates.md "What the machine reports"): its
 * newest update report (update-begin, update events), the `update` object
 * of its last telemetry, and the status of the command the rollout sent.
 *
 *   pending      not started, or the command sent and nothing heard yet
 *   downloading  update-begin, or telemetry `downloading` (bytes and size)
 *   waiting      downloaded, waiting for a safe moment
 *   rebooting    installing, or the new image on probation
 *   confirmed    the new image confirmed (or the machine ran it already)
 *   rolled-back  the previous image booted instead (reason)
 *   failed       refused, failed, expired, cancelled, timed out (reason)
 *
 * A machine never moves back: telemetry older than an event says less,
 * and is overruled. Telemetry is the machine's word, read defensively.
 */

export const MACHINE_STATES = ['pending', 'downloading', 'waiting', 'rebooting', 'confirmed', 'rolled-back', 'failed'] as const;
export type MachineState = (typeof MACHINE_STATES)[number];

export const TERMINAL: ReadonlySet<MachineState> = new Set(['confirmed', 'rolled-back', 'failed']);
/** Failures that halt a wave. */
export const BAD: ReadonlySet<MachineState> = new Set(['rolled-back', 'failed']);

const RANK: Record<MachineState, number> = { pending: 0, downloading: 1, waiting: 2, rebooting: 3, confirmed: 4, 'rolled-back': 4, failed: 4 };

/** A machine's entry as the rollout keeps it. */
export interface Entry {
  state: MachineState;
  bytes: number | null;
  size: number | null;
  reason: string | null;
  /** The number of the update command sent (null: not started). */
  n: number | null;
  /** The machine's update report number when it started: reports up to it are of an earlier update. */
  baseSeq: number;
}

/** What was heard of the machine's update. */
export interface Heard {
  report?: { seq: number; n: number; version: string; phase: string; size: number | null; reason: string | null } | undefined;
  /** The `update` object of the last telemetry, as stored, and when that telemetry was stored (ms). */
  telemetry?: unknown;
  telemetryAt?: number | undefined;
  command?: { status: string; outcome: Record<string, unknown> | null } | undefined;
}

export interface Progress {
  state: MachineState;
  bytes: number | null;
  size: number | null;
  reason: string | null;
  /** What was heard, in short: when it differs from the last step's, the machine was heard from. */
  seen: string;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/** The telemetry's update object when it is one of the three states with sane figures; undefined otherwise. */
export function telemetryUpdate(v: unknown): { n: number; version: string; state: 'downloading' | 'waiting' | 'probation'; offset: number | null; size: number | null } | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const u = v as Record<string, unknown>;
  const state = u['state'];
  if (!isCount(u['n']) || typeof u['version'] !== 'string' || (state !== 'downloading' && state !== 'waiting' && state !== 'probation')) return undefined;
  const offset = isCount(u['offset']) ? u['offset'] : null;
  const size = isCount(u['size']) && u['size'] > 0 ? u['size'] : null;
  return { n: u['n'], version: u['version'].slice(0, 20), state, offset: offset !== null && size !== null ? Math.min(offset, size) : offset, size };
}

/** A command's final status as a machine state, or undefined while it is open. */
function fromCommand(c: { status: string; outcome: Record<string, unknown> | null }): { state: MachineState; reason: string | null } | undefined {
  const reason = typeof c.outcome?.['reason'] === 'string' ? (c.outcome['reason'] as string).slice(0, 120) : undefined;
  switch (c.status) {
    case 'queued':
    case 'delivered':
    case 'running':
      return undefined;
    case 'applied':
      return { state: 'confirmed', reason: null };
    case 'rolled-back':
      return { state: 'rolled-back', reason: reason ?? null };
    case 'refused':
    case 'rejected':
      return { state: 'failed', reason: reason ? `${c.status}: ${reason}` : c.status };
    case 'cancelled':
      return { state: 'failed', reason: 'cancelled' };
    default:
      // failed, expired, unsupported, stale, interrupted
      return { state: 'failed', reason: c.status === 'failed' && reason ? reason : c.status };
  }
}

const PHASE_STATE: Record<string, MachineState> = { begin: 'downloading', downloaded: 'waiting', installing: 'rebooting', confirmed: 'confirmed', failed: 'failed', 'rolled-back': 'rolled-back' };

/** Where a started machine stands now (`version`: the rollout's image). */
export function progressOf(entry: Entry, heard: Heard, version: string): Progress {
  const r = heard.report;
  const report = r && r.seq > entry.baseSeq && (r.n === entry.n || r.version === version) ? r : undefined;
  const t = telemetryUpdate(heard.telemetry);
  const tel = t && (t.n === entry.n || t.version === version) ? t : undefined;
  const seen = `${report?.seq ?? '-'}/${tel ? (heard.telemetryAt ?? '-') : '-'}/${heard.command?.status ?? '-'}`;

  let next: Progress = { state: 'pending', bytes: null, size: null, reason: null, seen };
  const lift = (p: Omit<Progress, 'seen'>): void => {
    if (RANK[p.state] > RANK[next.state] || (RANK[p.state] === RANK[next.state] && !TERMINAL.has(next.state))) next = { ...p, seen };
  };
  if (report) {
    const state = PHASE_STATE[report.phase] ?? 'pending';
    lift({ state, bytes: state === 'downloading' ? 0 : null, size: report.size, reason: TERMINAL.has(state) && state !== 'confirmed' ? (report.reason ?? report.phase).slice(0, 120) : null });
  }
  if (tel && !TERMINAL.has(next.state)) {
    const state: MachineState = tel.state === 'downloading' ? 'downloading' : tel.state === 'waiting' ? 'waiting' : 'rebooting';
    if (RANK[state] >= RANK[next.state]) next = { state, bytes: state === 'downloading' ? tel.offset : null, size: tel.size ?? next.size, reason: null, seen };
  }
  const c = heard.command ? fromCommand(heard.command) : undefined;
  if (c && !TERMINAL.has(next.state)) next = { state: c.state, bytes: null, size: next.size, reason: c.reason, seen };

  // Never back: what the entry says already holds unless something further along came.
  if (TERMINAL.has(entry.state) && entry.reason !== 'timeout') return { state: entry.state, bytes: entry.bytes, size: entry.size, reason: entry.reason, seen };
  if (entry.state === 'failed' && entry.reason === 'timeout') return TERMINAL.has(next.state) && next.reason !== 'cancelled' ? next : { ...entryProgress(entry), seen };
  if (RANK[next.state] < RANK[entry.state]) return { ...entryProgress(entry), seen };
  return next;
}

function entryProgress(e: Entry): Omit<Progress, 'seen'> {
  return { state: e.state, bytes: e.bytes, size: e.size, reason: e.reason };
}
