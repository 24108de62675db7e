/**
 * vendctl rollout ...: firmware rollouts over the gateway's API, and a text
 * progress bar per wave and overall that follows one to its end.
 *
 *   vendctl rollout create --image SHA256 | --version V [--all | --machines a,b | --tag T | --percent P]
 *                          [--waves 1,10,100] [--halt-at 20% | --halt-at 3] [--parallel N] [--timeout S] [--downgrade] [--force]
 *   vendctl rollout list [--unfinished] | show ID | machines ID [--state S] | pause ID | resume ID | cancel ID
 *   vendctl rollout watch ID [--every MS] [--for S]
 *
 * watch ends when the rollout does: 0 when it is done, 1 when it halted or
 * was cancelled (or is still running after --for seconds, default 3600).
 */
import { parseHalt } from '../gateway/rollouts/plan.js';

export const ROLLOUT_USAGE = `  rollout create --image SHA256|--version V [--all|--machines ID,ID|--tag T|--percent P] [--waves 1,10,100] [--halt-at 20%|N] [--operator OP]
                 [--parallel N] [--timeout S] [--downgrade] [--force]
  rollout list [--unfinished] | rollout show|machines|pause|resume|cancel ID [--state S] | rollout watch ID [--every MS] [--for S]
  tags ID [TAG,TAG]   (show or set a machine's tags)`;

type Fail = (message: string, code?: number) => never;

export interface RolloutRequest {
  method: string;
  path: string;
  body?: unknown;
}

const STATES = ['pending', 'downloading', 'waiting', 'rebooting', 'confirmed', 'rolled-back', 'failed'] as const;
type Counts = Record<(typeof STATES)[number], number>;

/** What watch reads of GET /rollouts/{id}. */
export interface WatchedRollout {
  id: string;
  image: { version: string };
  state: string;
  wave: number;
  waveCount: number;
  total: number;
  counts: Counts;
  reason: string | null;
  waves: { wave: number; percent: number; size: number; counts: Counts; state: string }[];
  problems: { machine: string; state: string; reason: string | null }[];
  active: { machine: string; state: string; percent: number | null }[];
}

function whole(text: string | undefined, what: string, fail: Fail): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(text)) fail(`${what} is a whole number, not ${text}`);
  return Number(text);
}

/** The request for every rollout subcommand but watch. */
export function rolloutRequest(args: string[], flags: Map<string, string>, fail: Fail): RolloutRequest {
  const [, action, id] = args;
  const rid = (): string => encodeURIComponent(id ?? fail(`rollout ${action} needs a rollout id`));
  switch (action) {
    case 'create': {
      const targets = (['all', 'machines', 'tag', 'percent'] as const).filter((k) => flags.has(k));
      if (targets.length > 1) fail('one target: --all, --machines, --tag or --percent');
      const image = flags.get('image');
      const version = flags.get('version');
      if ((image === undefined) === (version === undefined)) fail('rollout create names its image: --image SHA256 or --version V');
      const target =
        targets[0] === 'machines'
          ? { machines: flags.get('machines')!.split(',').filter((m) => m !== '') }
          : targets[0] === 'tag'
            ? { tag: flags.get('tag') }
            : targets[0] === 'percent'
              ? { percent: whole(flags.get('percent')?.replace(/%$/, ''), '--percent', fail) }
              : { all: true };
      const waves = flags.get('waves')?.split(',').map((w) => whole(w.replace(/%$/, ''), '--waves', fail));
      const haltText = flags.get('halt-at');
      const halt = haltText === undefined ? undefined : (parseHalt(haltText) ?? fail(`--halt-at is a share of a wave (20%) or a number of machines (3), not ${haltText}`));
      const parallel = whole(flags.get('parallel'), '--parallel', fail);
      const timeoutS = whole(flags.get('timeout'), '--timeout', fail);
      const body = {
        ...(image !== undefined ? { sha256: image } : { version }),
        target,
        ...(waves ? { waves } : {}),
        ...(halt ? { halt } : {}),
        ...(parallel !== undefined ? { parallel } : {}),
        ...(timeoutS !== undefined ? { timeoutS } : {}),
        ...(flags.has('downgrade') ? { downgrade: true } : {}),
        ...(flags.has('force') ? { force: true } : {}),
        // A platform admin names the operator whose machines it updates.
        ...(flags.has('operator') ? { operator: flags.get('operator') } : {}),
      };
      return { method: 'POST', path: '/rollouts', body };
    }
    case 'list':
      return { method: 'GET', path: `/rollouts${flags.has('unfinished') ? '?state=unfinished' : ''}` };
    case 'show':
      return { method: 'GET', path: `/rollouts/${rid()}` };
    case 'machines': {
      const state = flags.get('state');
      return { method: 'GET', path: `/rollouts/${rid()}/machines${state ? `?state=${encodeURIComponent(state)}` : ''}` };
    }
    case 'pause':
    case 'resume':
    case 'cancel':
      return { method: 'POST', path: `/rollouts/${rid()}/${action}` };
    default:
      return fail(`rollout create | list | show | machines | pause | resume | cancel | watch\n${ROLLOUT_USAGE}`);
  }
}

/** A bar of `width` characters: # confirmed, x failed or rolled back, > under way, . not started. */
export function bar(c: Counts, size: number, width = 30): string {
  if (size <= 0) return ' '.repeat(width);
  const cells = (n: number): number => Math.round((n * width) / size);
  const good = cells(c.confirmed);
  const bad = Math.min(width - good, cells(c.failed + c['rolled-back']));
  const busy = Math.min(width - good - bad, cells(c.downloading + c.waiting + c.rebooting));
  return '#'.repeat(good) + 'x'.repeat(bad) + '>'.repeat(busy) + '.'.repeat(width - good - bad - busy);
}

const finished = (c: Counts): number => c.confirmed + c.failed + c['rolled-back'];

function counted(c: Counts): string {
  return STATES.filter((s) => s !== 'pending' && c[s] > 0).map((s) => `${s} ${c[s]}`).join(', ') || 'not started';
}

/** The rollout as text: a line for it, a bar per wave and one overall, and the machines that failed or rolled back. */
export function renderRollout(r: WatchedRollout): string {
  const lines = [`rollout ${r.id} of ${r.image.version}: ${r.state}, wave ${r.wave} of ${r.waveCount}${r.reason ? ` (${r.reason})` : ''}`];
  for (const w of r.waves) {
    lines.push(`  wave ${String(w.wave).padEnd(2)} ${String(w.percent).padStart(3)} %  [${bar(w.counts, w.size)}] ${String(finished(w.counts)).padStart(6)}/${String(w.size).padEnd(6)} ${w.state === 'waiting' ? 'waiting' : counted(w.counts)}`);
  }
  lines.push(`  overall        [${bar(r.counts, r.total)}] ${String(finished(r.counts)).padStart(6)}/${String(r.total).padEnd(6)} ${counted(r.counts)}`);
  const moving = r.active.filter((m) => m.percent !== null).slice(0, 5);
  if (moving.length > 0) lines.push(`  downloading: ${moving.map((m) => `${m.machine} ${m.percent} %`).join(', ')}`);
  for (const p of r.problems.slice(0, 10)) lines.push(`  ${p.state} ${p.machine}: ${p.reason ?? ''}`);
  if (r.problems.length > 10) lines.push(`  ... and ${r.problems.length - 10} more (vendctl rollout machines ${r.id} --state failed)`);
  return lines.join('\n');
}

/** Follow a rollout until it is done, halted or cancelled (or --for seconds pass); the exit status. */
export async function watchRollout(get: (path: string) => Promise<WatchedRollout>, id: string, flags: Map<string, string>, fail: Fail): Promise<number> {
  const every = whole(flags.get('every'), '--every', fail) ?? 2000;
  const forS = whole(flags.get('for'), '--for', fail) ?? 3600;
  const until = Date.now() + forS * 1000;
  const tty = process.stdout.isTTY === true;
  let last = '';
  let shown = 0;
  for (;;) {
    const r = await get(`/rollouts/${encodeURIComponent(id)}`);
    const text = renderRollout(r);
    if (text !== last) {
      // On a terminal the picture is drawn again in place; into a file or a pipe, each change once.
      if (tty && shown > 0) process.stdout.write(`\u001b[${shown}F\u001b[J`);
      process.stdout.write(`${text}\n${tty ? '' : '\n'}`);
      shown = text.split('\n').length;
      last = text;
    }
    if (r.state === 'done') return 0;
    if (r.state === 'cancelled' || r.state === 'halted') {
      process.stderr.write(`vendctl: rollout ${r.id} ${r.state}${r.state === 'halted' ? ': vendctl rollout resume or cancel it' : ''}\n`);
      return 1;
    }
    if (Date.now() >= until) {
      process.stderr.write(`vendctl: rollout ${r.id} still ${r.state} after ${forS} s\n`);
      return 1;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(every, Math.max(0, until - Date.now()))));
  }
}
