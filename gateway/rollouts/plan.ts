/**
 * A rollout's plan, pure (docs/updates.md "Rollouts"): which machines a
 * target selects, the order they go in, how they split into waves, and the
 * halt threshold of a wave. Deterministic: the same rollout id and machines
 * give the same plan, so a percentage keeps selecting the same machines.
 */
import { createHash } from 'node:crypto';

/** Who a rollout is for. */
export type Target = { kind: 'all' } | { kind: 'machines'; machines: string[] } | { kind: 'tag'; tag: string } | { kind: 'percent'; percent: number };

/** When a wave halts: this many failures and rollbacks in it, or this share of its machines. */
export type Halt = { percent: number } | { count: number };

/** Waves as cumulative percentages of the targets, the last 100. */
export const DEFAULT_WAVES: readonly number[] = [1, 10, 100];
export const DEFAULT_HALT: Halt = { percent: 20 };
/** Machines updating at once, at most (a wave's halt can only stop machines not yet started). */
export const DEFAULT_PARALLEL = 50;
/** A machine started and heard nothing of for this long has failed ('timeout'). */
export const DEFAULT_TIMEOUT_S = 3600;
export const MAX_WAVES = 10;
export const MAX_TARGETS = 100000;
/** A tag: what machine_tags holds. */
export const TAG_PATTERN = '^[a-z0-9][a-z0-9_.-]{0,31}$';
export const TAG = new RegExp(TAG_PATTERN);
export const ROLLOUT_ID_PATTERN = '^r[0-9a-f]{12}$';

/** A number in [0, 1) from the SHA-256 of the rollout id and the machine id under a purpose. */
function draw(rollout: string, purpose: string, machine: string): number {
  return createHash('sha256').update(`${rollout}\u0000${purpose}\u0000${machine}`).digest().readUInt32BE(0) / 2 ** 32;
}

/** Of these machines, those a percentage selects: each by its own draw, so adding a machine never reshuffles the rest. */
export function selectPercent(rollout: string, machines: readonly string[], percent: number): string[] {
  return machines.filter((m) => draw(rollout, 'select', m) * 100 < percent);
}

/** The order machines go in: shuffled by the rollout id, so that a first wave is not always the same few machines. */
export function order(rollout: string, machines: readonly string[]): string[] {
  return machines
    .map((m) => ({ m, k: draw(rollout, 'order', m) }))
    .sort((a, b) => a.k - b.k || (a.m < b.m ? -1 : a.m > b.m ? 1 : 0))
    .map((x) => x.m);
}

/**
 * How many machines each wave has, for `total` machines: wave k ends at
 * ceil(total * waves[k] / 100) machines in all (the first at least one). A
 * small rollout may leave later waves empty; they pass at once.
 */
export function waveSizes(total: number, waves: readonly number[]): number[] {
  const sizes: number[] = [];
  let done = 0;
  for (let k = 0; k < waves.length; k++) {
    const upTo = k === waves.length - 1 ? total : Math.min(total, Math.max(k === 0 ? 1 : 0, Math.ceil((total * waves[k]!) / 100)));
    const size = Math.max(0, upTo - done);
    sizes.push(size);
    done += size;
  }
  return sizes;
}

/** Failures and rollbacks in a wave of `size` machines that halt it. */
export function haltAt(halt: Halt, size: number): number {
  return 'count' in halt ? halt.count : Math.max(1, Math.ceil((size * halt.percent) / 100));
}

/** Why these waves are not waves, or undefined: whole cumulative percentages, rising, ending at 100. */
export function wavesProblem(waves: readonly number[]): string | undefined {
  if (waves.length < 1 || waves.length > MAX_WAVES) return `1 to ${MAX_WAVES} waves`;
  for (let k = 0; k < waves.length; k++) {
    const w = waves[k]!;
    if (!Number.isInteger(w) || w < 1 || w > 100) return 'each wave is a whole percentage of the targets, 1 to 100, counted from the start (e.g. 1, 10, 100)';
    if (k > 0 && w <= waves[k - 1]!) return 'waves rise: each takes the rollout to a larger share of its targets';
  }
  if (waves[waves.length - 1] !== 100) return 'the last wave is 100: every target';
  return undefined;
}

/** The halt threshold in vendctl's words: `20%` or `3`. */
export function parseHalt(text: string): Halt | undefined {
  const pct = /^(100|[1-9][0-9]?)%$/.exec(text);
  if (pct) return { percent: Number(pct[1]) };
  const count = /^[1-9][0-9]{0,5}$/.exec(text);
  return count ? { count: Number(text) } : undefined;
}

export function describeHalt(h: Halt): string {
  return 'count' in h ? `${h.count} failed or rolled back` : `${h.percent} % failed or rolled back`;
}
