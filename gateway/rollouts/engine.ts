/**
 * The rollout engine: moves every unfinished rollout on, from what is in
 * the store (docs/updates.md "Rollouts"). A step of a rollout, in one
 * transaction holding its row:
 *
 * - each started machine's state from what was heard of its update
 *   (progress.ts); one heard of nothing for `timeoutS` has failed
 *   ('timeout') and its command is called off;
 * - a running rollout halts when failures and rollbacks in its current
 *   wave reach the threshold; it moves to the next wave when every machine
 *   of this one is at an end (confirmed, rolled back, failed), and is done
 *   after the last;
 * - which pending machines of the current wave start, up to `parallel`
 *   under way at once.
 *
 * Machines start after the commit, each with its `update` command in a
 * transaction of its own that also marks it started (or, when another
 * gateway or an operator got there first, sends nothing). State lives in
 * the store only: an engine that starts again (a gateway restart) goes on
 * where the store says, and several gateways may run one each. Time is the
 * gateway's clock and timers (gateway/time.ts), virtual in tests.
 */
import { CommandError, type CommandService } from '../commands/service.js';
import type { Db, Queryable } from '../store/db.js';
import { REAL_CLOCK, REAL_TIMERS, type Clock, type TimerId, type Timers } from '../time.js';
import { describeHalt, haltAt } from './plan.js';
import { BAD, progressOf, TERMINAL } from './progress.js';
import * as sql from './store.js';
import type { EntryRecord, RolloutRecord } from './store.js';

export interface RolloutEngineOptions {
  clock?: Clock;
  timers?: Timers;
  /** Every rollout is looked at this often (5,000 ms), besides whenever poked. */
  tickMs?: number;
  /** A poke (a report came in, an operator changed a rollout) steps this soon after (200 ms): pokes in between are one step. */
  pokeMs?: number;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** Thrown inside a command's transaction when the machine is no longer to start: nothing is sent. */
class NotStarted extends Error {}

/** The longest a rollout's command may stay valid (the command service's limit). */
const MAX_TTL_S = 30 * 86400;

export class RolloutEngine {
  /** Steps taken, machines started, halts: for tests and the bench. */
  readonly stats = { steps: 0, started: 0, halts: 0, timeouts: 0 };
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly tickMs: number;
  private readonly pokeMs: number;
  private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  private tick: TimerId | undefined;
  private soon: TimerId | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** Rollouts this engine has stepped: the first step after a start gives machines under way their whole timeout again. */
  private readonly stepped = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly commands: CommandService,
    options: RolloutEngineOptions = {},
  ) {
    this.clock = options.clock ?? REAL_CLOCK;
    this.timers = options.timers ?? REAL_TIMERS;
    this.tickMs = options.tickMs ?? 5000;
    this.pokeMs = options.pokeMs ?? 200;
    this.log = options.onLog ?? (() => {});
  }

  /** Step every unfinished rollout now and every tickMs. */
  start(): void {
    if (this.tick !== undefined || this.closed) return;
    this.tick = this.timers.repeat(() => this.poke(0), this.tickMs);
    this.poke(0);
  }

  /** Something changed: step soon. */
  poke(ms = this.pokeMs): void {
    if (this.closed || this.soon !== undefined) return;
    this.soon = this.timers.set(() => {
      this.soon = undefined;
      void this.pass();
    }, ms);
  }

  /** Step every unfinished rollout once (joins a pass under way, then runs one more). Never throws: failures are logged. */
  async pass(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          for (const r of await sql.listRollouts(this.db, { unfinished: true, limit: 1000 })) {
            if (this.closed) return;
            await this.step(r.id);
          }
        } catch (e) {
          this.log('warn', `rollouts: a step failed (${(e as Error).message}); again at the next tick`);
        }
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** One step of one rollout (see the file's comment). */
  async step(id: string): Promise<void> {
    const now = this.clock.now();
    const fresh = !this.stepped.has(id);
    const out = await this.db.transaction(async (tx) => {
      const r = await sql.getRollout(tx, id, true);
      if (!r || (r.state !== 'running' && r.state !== 'paused' && r.state !== 'halted')) return undefined;
      const all = await sql.entries(tx, id);
      const byMachine = new Map(all.map((e) => [e.machine, e]));
      const changes: Parameters<typeof sql.writeEntries>[2][number][] = [];
      const callOff: string[] = [];
      for (const h of await sql.heard(tx, id)) {
        const e = byMachine.get(h.machine);
        if (!e) continue;
        const p = progressOf(e, h, r.version);
        // Heard from (or, the first step after a start, given the benefit of the doubt: this engine was not listening).
        const progressAt = p.seen !== e.seen || fresh || e.progressAt === null ? now : e.progressAt;
        let next = { ...p, progressAt };
        if (!TERMINAL.has(next.state) && now - progressAt >= r.timeoutS * 1000) {
          next = { ...next, state: 'failed', reason: 'timeout' };
          if (e.commandId) callOff.push(e.commandId);
          this.stats.timeouts++;
        }
        if (next.state !== e.state || next.bytes !== e.bytes || next.size !== e.size || next.reason !== e.reason || next.progressAt !== e.progressAt || next.seen !== e.seen) {
          changes.push({ machine: e.machine, ...next });
          Object.assign(e, next);
        }
      }
      await sql.writeEntries(tx, id, changes);
      const settlement = await this.commands.cancelWithin(tx, callOff);
      const rollout = await this.waves(tx, r, all);
      const starts = rollout.state === 'running' ? this.toStart(rollout, all) : [];
      return { rollout, starts, settlement };
    });
    this.stats.steps++;
    this.stepped.add(id);
    if (!out) return;
    this.commands.settled(out.settlement);
    if (out.starts.length > 0) await this.startMachines(out.rollout, out.starts);
  }

  /** Halt, move to the next wave, or finish, as the current wave's machines say. */
  private async waves(tx: Queryable, r: RolloutRecord, all: readonly EntryRecord[]): Promise<RolloutRecord> {
    if (r.state !== 'running') return r;
    const inWave = (w: number): EntryRecord[] => all.filter((e) => e.wave === w);
    const wave = inWave(r.wave);
    const bad = wave.filter((e) => BAD.has(e.state)).length;
    const limit = haltAt(r.halt, wave.length);
    if (wave.length > 0 && bad - r.waveBadBase >= limit) {
      this.stats.halts++;
      const reason = `wave ${r.wave + 1} of ${r.waves.length}: ${bad} of ${wave.length} machines failed or rolled back (halts at ${describeHalt(r.halt)}: ${limit})`;
      this.log('warn', `rollouts: ${r.id} halted: ${reason}`);
      return sql.setState(tx, r.id, { state: 'halted', reason });
    }
    let w = r.wave;
    while (w < r.waves.length && inWave(w).every((e) => TERMINAL.has(e.state))) w++;
    if (w >= r.waves.length) {
      this.log('info', `rollouts: ${r.id} done`);
      return sql.setState(tx, r.id, { state: 'done', wave: r.waves.length - 1, reason: null });
    }
    if (w !== r.wave) return sql.setState(tx, r.id, { wave: w, waveBadBase: 0 });
    return r;
  }

  /** Pending machines of the current wave that may start, in order, up to `parallel` under way. */
  private toStart(r: RolloutRecord, all: readonly EntryRecord[]): EntryRecord[] {
    const underWay = all.filter((e) => e.commandId !== null && !TERMINAL.has(e.state)).length;
    const free = r.parallel - underWay;
    if (free <= 0) return [];
    return all.filter((e) => e.wave === r.wave && e.state === 'pending' && e.commandId === null).slice(0, free);
  }

  /** Send each machine its update command (a machine running the version already is confirmed without one). */
  private async startMachines(r: RolloutRecord, list: readonly EntryRecord[]): Promise<void> {
    const facts = await sql.startFacts(this.db, list.map((e) => e.machine));
    let settledAtOnce = false;
    for (const e of list) {
      if (this.closed) return;
      const f = facts.get(e.machine);
      if (f?.fw === r.version) {
        await sql.settleEntry(this.db, r.id, e.machine, 'confirmed', 'runs this version already');
        settledAtOnce = true;
        continue;
      }
      try {
        await this.commands.issue(
          e.machine,
          'update',
          { sha256: r.sha256, ...(r.downgrade ? { downgrade: true } : {}), ...(r.force ? { force: true } : {}) },
          {
            ttlS: Math.min(r.timeoutS, MAX_TTL_S),
            rollout: r.id,
            within: async (tx, command, n) => {
              if (!(await sql.markStarted(tx, r.id, e.machine, { id: command, n }, f?.reportSeq ?? 0, this.clock.now()))) throw new NotStarted();
            },
          },
        );
        this.stats.started++;
      } catch (err) {
        if (err instanceof NotStarted) continue;
        if (err instanceof CommandError) {
          // Refused before it went out (a newer version on the machine, no key...): this machine fails, the rollout goes on.
          await sql.settleEntry(this.db, r.id, e.machine, 'failed', `${err.code}: ${err.message}`.slice(0, 200));
          settledAtOnce = true;
          continue;
        }
        throw err;
      }
    }
    if (settledAtOnce) this.poke();
  }

  /** Stop stepping; a pass under way finishes (bounded by the store's own timeouts). */
  async close(): Promise<void> {
    this.closed = true;
    this.timers.clear(this.tick);
    this.timers.clear(this.soon);
    this.tick = undefined;
    this.soon = undefined;
    await this.running?.catch(() => {});
  }
}

