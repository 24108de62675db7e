/**
 * Rollouts as operators see them (docs/updates.md "Rollouts"): create one
 * (an image, its targets, waves, a halt threshold), list them, read one
 * with its waves, counts per state and the machines that failed or rolled
 * back, and pause, resume or cancel it. The engine (engine.ts) moves them
 * on; this module only writes what an operator asks, in one transaction
 * each, holding the rollout's row so that a step never sees half of it.
 */
import { randomBytes } from 'node:crypto';
import type { CommandService } from '../commands/service.js';
import { isVersion, SHA256_HEX } from '../firmware/image.js';
import { getImage, getImageByVersion } from '../firmware/store.js';
import { isMachineId } from '../machine-id.js';
import type { Db } from '../store/db.js';
import { DEFAULT_OPERATOR } from '../store/operators.js';
import { DEFAULT_HALT, DEFAULT_PARALLEL, DEFAULT_TIMEOUT_S, DEFAULT_WAVES, haltAt, MAX_TARGETS, order, selectPercent, TAG, waveSizes, wavesProblem, type Halt, type Target } from './plan.js';
import { BAD, MACHINE_STATES, TERMINAL, type MachineState } from './progress.js';
import * as sql from './store.js';
import type { EntryRecord, RolloutRecord, RolloutState } from './store.js';

export type RolloutErrorCode = 'bad-rollout' | 'unknown-rollout' | 'unknown-image' | 'unknown-machine' | 'in-rollout' | 'no-machines' | 'rollout-state';

export class RolloutError extends Error {
  constructor(
    readonly code: RolloutErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface NewRolloutRequest {
  /** The image: its SHA-256, or its version. */
  sha256?: string | undefined;
  version?: string | undefined;
  target: Target;
  waves?: readonly number[] | undefined;
  halt?: Halt | undefined;
  parallel?: number | undefined;
  timeoutS?: number | undefined;
  downgrade?: boolean | undefined;
  force?: boolean | undefined;
  createdBy?: string | undefined;
  /** The operator whose machines it updates (default: the default operator); its target reaches only them. */
  operator?: string | undefined;
}

export type Counts = Record<MachineState, number>;

/** A rollout in a list. */
export interface RolloutSummary {
  id: string;
  operator: string;
  image: { sha256: string; version: string };
  target: Target;
  state: RolloutState;
  /** The wave under way, from 1, of waveCount. */
  wave: number;
  waveCount: number;
  total: number;
  counts: Counts;
  reason: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  endedAt: string | null;
}

export interface WaveView {
  wave: number;
  /** The share of the targets the rollout reaches with this wave. */
  percent: number;
  size: number;
  counts: Counts;
  /** Failures and rollbacks that halt it. */
  haltAt: number;
  state: 'done' | 'current' | 'waiting';
}

export interface MachineView {
  machine: string;
  wave: number;
  state: MachineState;
  bytes: number | null;
  size: number | null;
  percent: number | null;
  reason: string | null;
  command: string | null;
}

/** A rollout with its waves, and the machines that need a look (failed, rolled back) or are under way. */
export interface RolloutView extends RolloutSummary {
  waves: WaveView[];
  halt: Halt;
  parallel: number;
  timeoutS: number;
  downgrade: boolean;
  force: boolean;
  problems: MachineView[];
  active: MachineView[];
}

const zero = (): Counts => Object.fromEntries(MACHINE_STATES.map((s) => [s, 0])) as Counts;

export function machineView(e: EntryRecord): MachineView {
  const percent = e.bytes !== null && e.size !== null && e.size > 0 ? Math.min(100, Math.floor((100 * e.bytes) / e.size)) : null;
  return { machine: e.machine, wave: e.wave + 1, state: e.state, bytes: e.bytes, size: e.size, percent, reason: e.reason, command: e.commandId };
}

export class Rollouts {
  constructor(
    private readonly db: Db,
    private readonly commands: CommandService,
    /** Told of every change an operator makes (the engine steps at once rather than at its next tick). */
    private readonly onChange: () => void = () => {},
  ) {}

  /** Check, plan and store a rollout; the engine starts its first machines. */
  async create(req: NewRolloutRequest): Promise<RolloutView> {
    const waves = req.waves ?? DEFAULT_WAVES;
    const problem = wavesProblem(waves);
    if (problem) throw new RolloutError('bad-rollout', `waves: ${problem}`);
    const halt = req.halt ?? DEFAULT_HALT;
    if ('count' in halt ? !(Number.isInteger(halt.count) && halt.count >= 1 && halt.count <= 100000) : !(Number.isInteger(halt.percent) && halt.percent >= 1 && halt.percent <= 100)) {
      throw new RolloutError('bad-rollout', 'halt: a whole number of machines (1 to 100000) or a whole percentage of a wave (1 to 100)');
    }
    const parallel = req.parallel ?? DEFAULT_PARALLEL;
    const timeoutS = req.timeoutS ?? DEFAULT_TIMEOUT_S;
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 10000) throw new RolloutError('bad-rollout', 'parallel: 1 to 10000 machines at once');
    if (!Number.isInteger(timeoutS) || timeoutS < 60 || timeoutS > 30 * 86400) throw new RolloutError('bad-rollout', 'timeoutS: 60 s to 30 days');
    const target = checkTarget(req.target);
    if (req.sha256 === undefined && req.version === undefined) throw new RolloutError('bad-rollout', 'name the image: sha256 or version');
    if (req.sha256 !== undefined && !SHA256_HEX.test(req.sha256)) throw new RolloutError('bad-rollout', 'sha256: 64 lower-case hex digits');
    if (req.version !== undefined && !isVersion(req.version)) throw new RolloutError('bad-rollout', 'version: MAJOR.MINOR.PATCH');
    const image = req.sha256 !== undefined ? await getImage(this.db, req.sha256) : await getImageByVersion(this.db, req.version!);
    if (!image) throw new RolloutError('unknown-image', `the registry has no image ${req.sha256 ?? `of version ${req.version}`}`);
    if (req.version !== undefined && image.version !== req.version) throw new RolloutError('bad-rollout', `image ${image.sha256} is version ${image.version}, not ${req.version}`);

    const id = `r${randomBytes(6).toString('hex')}`;
    const operator = req.operator ?? DEFAULT_OPERATOR;
    const { found, missing } = await sql.machinesFor(this.db, target, operator);
    if (missing.length > 0) throw new RolloutError('unknown-machine', `no machine ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''}`);
    const chosen = target.kind === 'percent' ? selectPercent(id, found, target.percent) : found;
    if (chosen.length === 0) throw new RolloutError('no-machines', `the target selects no machine (${describeTarget(target)})`);
    if (chosen.length > MAX_TARGETS) throw new RolloutError('bad-rollout', `${chosen.length} machines: a rollout takes at most ${MAX_TARGETS}`);
    const sizes = waveSizes(chosen.length, waves);
    const plan: { machine: string; wave: number }[] = [];
    let k = 0;
    let inWave = 0;
    for (const m of order(id, chosen)) {
      while (k < sizes.length - 1 && inWave >= sizes[k]!) {
        k++;
        inWave = 0;
      }
      plan.push({ machine: m, wave: k });
      inWave++;
    }
    try {
      await this.db.transaction(async (tx) => {
        const busy = await sql.activeRollouts(tx, chosen);
        if (busy.size > 0) {
          const named = [...busy].slice(0, 10).map(([m, r]) => `${m} (${r})`);
          throw new RolloutError('in-rollout', `${busy.size} of these machines are in an unfinished rollout already: ${named.join(', ')}${busy.size > 10 ? ', ...' : ''}; a machine is in one rollout at a time`);
        }
        await sql.insertRollout(
          tx,
          { id, operator, sha256: image.sha256, version: image.version, target, waves, halt, parallel, timeoutS, downgrade: req.downgrade === true, force: req.force === true, createdBy: req.createdBy ?? null },
          plan,
        );
      });
    } catch (e) {
      // Another rollout took one of them between the check and the insert.
      if ((e as { code?: string }).code === '23505') throw new RolloutError('in-rollout', 'a machine of these joined another rollout meanwhile; a machine is in one rollout at a time');
      throw e;
    }
    this.onChange();
    return this.get(id);
  }

  /** Rollouts, newest first; `operator`'s only when given (null or absent: every operator's). */
  async list(options: { limit?: number; unfinished?: boolean; operator?: string | null } = {}): Promise<RolloutSummary[]> {
    const list = await sql.listRollouts(this.db, options);
    const counts = await sql.stateCounts(this.db, list.map((r) => r.id));
    return list.map((r) => summary(r, counts.filter((c) => c.rollout === r.id)));
  }

  /** A rollout, if `operator`'s (null: any operator's); else unknown-rollout. */
  async get(id: string, operator: string | null = null): Promise<RolloutView> {
    const r = await sql.getRollout(this.db, id, false, operator);
    if (!r) throw new RolloutError('unknown-rollout', `no rollout ${id}`);
    const counts = await sql.stateCounts(this.db, [id]);
    const s = summary(r, counts);
    const waves: WaveView[] = r.waves.map((percent, w) => {
      const c = zero();
      for (const x of counts) if (x.wave === w) c[x.state] += x.n;
      const size = MACHINE_STATES.reduce((n, st) => n + c[st], 0);
      const state = w < r.wave || (w === r.wave && r.state === 'done') ? 'done' : w === r.wave ? 'current' : 'waiting';
      return { wave: w + 1, percent, size, counts: c, haltAt: haltAt(r.halt, size), state };
    });
    const problems = (await sql.entries(this.db, id, { states: [...BAD], limit: 200 })).map(machineView);
    const active = (await sql.entries(this.db, id, { states: ['downloading', 'waiting', 'rebooting'], limit: 200 })).map(machineView);
    return { ...s, waves, halt: r.halt, parallel: r.parallel, timeoutS: r.timeoutS, downgrade: r.downgrade, force: r.force, problems, active };
  }

  /** A rollout's machines in order (those in `states` if given). */
  async machines(id: string, options: { states?: readonly MachineState[]; limit?: number; operator?: string | null } = {}): Promise<MachineView[]> {
    if (!(await sql.getRollout(this.db, id, false, options.operator ?? null))) throw new RolloutError('unknown-rollout', `no rollout ${id}`);
    return (await sql.entries(this.db, id, options)).map(machineView);
  }

  /** No more machines start; those under way go on. */
  async pause(id: string, operator: string | null = null): Promise<RolloutView> {
    await this.change(id, operator, ['running'], 'pause', () => ({ state: 'paused', reason: 'paused by an operator' }));
    return this.get(id);
  }

  /** Start machines again; after a halt, the failures so far in its wave are accepted (the threshold counts anew). */
  async resume(id: string, operator: string | null = null): Promise<RolloutView> {
    await this.change(id, operator, ['paused', 'halted'], 'resume', (now, bad) => ({ state: 'running', reason: null, ...(now.state === 'halted' ? { waveBadBase: bad } : {}) }));
    return this.get(id);
  }

  /**
   * Stop for good: no machine starts again, the update commands under way
   * are called off and their offers withdrawn (a machine that has the image
   * already may still install it; machines that confirmed stay as they are).
   */
  async cancel(id: string, operator: string | null = null): Promise<RolloutView> {
    await this.change(id, operator, ['running', 'paused', 'halted'], 'cancel', () => ({ state: 'cancelled', reason: 'cancelled by an operator' }), true);
    return this.get(id);
  }

  private async change(
    id: string,
    operator: string | null,
    from: readonly RolloutState[],
    verb: string,
    to: (now: RolloutRecord, bad: number) => { state: RolloutState; reason: string | null; waveBadBase?: number },
    callOff = false,
  ): Promise<RolloutRecord> {
    const { record, settlement } = await this.db.transaction(async (tx) => {
      const now = await sql.getRollout(tx, id, true, operator);
      if (!now) throw new RolloutError('unknown-rollout', `no rollout ${id}`);
      if (!from.includes(now.state)) throw new RolloutError('rollout-state', `rollout ${id} is ${now.state}: only a ${from.join(' or ')} rollout can ${verb}`);
      const wave = await sql.entries(tx, id, { states: [...BAD] });
      const bad = wave.filter((e) => e.wave === now.wave).length;
      let settlement;
      if (callOff) {
        const open = await sql.openCommands(tx, id);
        settlement = await this.commands.cancelWithin(tx, open.map((o) => o.commandId));
        const entries = await sql.entries(tx, id, { states: MACHINE_STATES.filter((s) => s !== 'pending' && !TERMINAL.has(s)) });
        await sql.writeEntries(tx, id, entries.map((e) => ({ machine: e.machine, state: 'failed', bytes: e.bytes, size: e.size, reason: 'cancelled', progressAt: e.progressAt, seen: e.seen })));
        // Started and not heard from yet: pending, but called off too.
        const sent = (await sql.entries(tx, id, { states: ['pending'] })).filter((e) => e.commandId !== null);
        await sql.writeEntries(tx, id, sent.map((e) => ({ machine: e.machine, state: 'failed', bytes: null, size: null, reason: 'cancelled', progressAt: e.progressAt, seen: e.seen })));
      }
      return { record: await sql.setState(tx, id, to(now, bad)), settlement };
    });
    if (settlement) this.commands.settled(settlement);
    this.onChange();
    return record;
  }
}

function summary(r: RolloutRecord, counts: readonly { wave: number; state: MachineState; n: number }[]): RolloutSummary {
  const c = zero();
  for (const x of counts) c[x.state] += x.n;
  return {
    id: r.id,
    operator: r.operator,
    image: { sha256: r.sha256, version: r.version },
    target: r.target,
    state: r.state,
    wave: Math.min(r.wave, r.waves.length - 1) + 1,
    waveCount: r.waves.length,
    total: MACHINE_STATES.reduce((n, s) => n + c[s], 0),
    counts: c,
    reason: r.reason,
    createdBy: r.createdBy,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    endedAt: r.endedAt,
  };
}

/** The target as stored: checked again here, whatever the route's schema let through. */
function checkTarget(t: Target): Target {
  switch (t?.kind) {
    case 'all':
      return { kind: 'all' };
    case 'machines': {
      const list = [...new Set(t.machines)];
      if (!Array.isArray(t.machines) || list.length === 0 || list.length > MAX_TARGETS || !list.every((m) => typeof m === 'string' && isMachineId(m))) {
        throw new RolloutError('bad-rollout', `machines: 1 to ${MAX_TARGETS} machine ids`);
      }
      return { kind: 'machines', machines: list.sort() };
    }
    case 'tag':
      if (typeof t.tag !== 'string' || !TAG.test(t.tag)) throw new RolloutError('bad-rollout', 'tag: 1 to 32 of a-z, 0-9, _ . - (starting with a letter or digit)');
      return { kind: 'tag', tag: t.tag };
    case 'percent':
      if (!Number.isInteger(t.percent) || t.percent < 1 || t.percent > 100) throw new RolloutError('bad-rollout', 'percent: a whole percentage of the fleet, 1 to 100');
      return { kind: 'percent', percent: t.percent };
    default:
      throw new RolloutError('bad-rollout', 'target: all, machines, tag or percent');
  }
}

export function describeTarget(t: Target): string {
  switch (t.kind) {
    case 'all':
      return 'every machine';
    case 'machines':
      return `${t.machines.length} machine${t.machines.length === 1 ? '' : 's'}`;
    case 'tag':
      return `machines tagged ${t.tag}`;
    case 'percent':
      return `${t.percent} % of the fleet`;
  }
}
