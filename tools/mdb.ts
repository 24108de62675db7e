/**
 * mdb: MDB wire tools for bench engineers.
 *
 *   npm run mdb -- decode <file|-> [--hex] [--flagged] [--strict]
 *   npm run mdb -- record [--seconds N] [--coins 25,25,100] [--bills 100] [--select A1] [--seed N] [--out file]
 *
 * `decode` reads a capture (docs/mdb-trace.md) and prints each frame decoded,
 * then a summary. Exit status: 0 clean, 1 protocol violations (with
 * --strict, warnings such as non-responses too), 2 unusable input or usage.
 *
 * `record` runs the simulated machine (hal-sim, target sim) through a
 * purchase and writes the wire as a capture: a reference for the bench.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { MachineHost } from '../hal-sim/host.js';
import { usSnackMachine } from '../hal-sim/machines.js';
import { CaptureError, WireCapture, parseCapture, type Frame } from './mdb/capture.js';
import { decodeCapture, formatDecoded, formatSummary } from './mdb/decode.js';

const USAGE = `usage: npm run mdb -- <command>
  decode <file|-> [--hex] [--flagged] [--strict]
      print each frame of a capture decoded, then a summary
      --hex      append each frame's bytes   --flagged  only frames with flags
      --strict   warnings (non-responses, unknown commands) fail too
      exit status: 0 clean, 1 violations, 2 unusable input
  record [--seconds N] [--coins 25,25,100] [--bills 100] [--select A1] [--seed N] [--out FILE]
      run the simulated machine through a purchase and write its MDB wire as a capture`;

function fail(message: string): never {
  process.stderr.write(`mdb: ${message}\n`);
  process.exit(2);
}

interface Args {
  positional: string[];
  flags: Map<string, string>;
  switches: Set<string>;
}

const SWITCHES = new Set(['hex', 'flagged', 'strict']);

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { positional: [], flags: new Map(), switches: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '-h' || t === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    if (t.startsWith('--')) {
      const name = t.slice(2);
      if (SWITCHES.has(name)) {
        a.switches.add(name);
        continue;
      }
      const v = argv[++i];
      if (v === undefined) fail(`--${name} needs a value\n${USAGE}`);
      a.flags.set(name, v);
    } else a.positional.push(t);
  }
  return a;
}

function readInput(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(`cannot read ${path === '-' ? 'standard input' : path}${code ? ` (${code})` : ''}`);
  }
}

function decode(a: Args): number {
  if (a.positional.length !== 2) fail(`decode needs one capture file (or - for standard input)\n${USAGE}`);
  const unknown = [...a.flags.keys()];
  if (unknown.length) fail(`decode has no option --${unknown[0]}\n${USAGE}`);
  const path = a.positional[1]!;
  let frames: Frame[];
  try {
    frames = parseCapture(readInput(path));
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    const shown = e.errors.slice(0, 20).map((x) => `  ${path}:${x.line}: ${x.message}`);
    if (e.errors.length > 20) shown.push(`  ... and ${e.errors.length - 20} more`);
    fail(`unreadable capture (format: docs/mdb-trace.md)\n${shown.join('\n')}`);
  }
  if (frames.length === 0) fail(`${path}: no frames in the capture`);
  const result = decodeCapture(frames);
  const lines: string[] = [];
  const hex = a.switches.has('hex');
  for (const d of result.frames) {
    if (a.switches.has('flagged') && d.flags.length === 0) continue;
    lines.push(formatDecoded(d, { hex }));
  }
  lines.push('', ...formatSummary(result.summary));
  process.stdout.write(lines.join('\n') + '\n');
  const s = result.summary;
  return s.violations > 0 || (a.switches.has('strict') && s.warnings > 0) ? 1 : 0;
}


function numberList(v: string | undefined, fallback: number[], what: string): number[] {
  if (v === undefined) return fallback;
  if (v === '') return [];
  const list = v.split(',').map((x) => Number(x.trim()));
  if (list.some((n) => !Number.isInteger(n) || n <= 0)) fail(`--${what} takes values in cents separated by commas, e.g. 25,100`);
  return list;
}

async function record(a: Args): Promise<number> {
  if (a.positional.length !== 1) fail(`record takes no file argument (use --out FILE)\n${USAGE}`);
  for (const k of a.flags.keys()) if (!['seconds', 'coins', 'bills', 'select', 'seed', 'out'].includes(k)) fail(`record has no option --${k}\n${USAGE}`);
  for (const k of a.switches) fail(`record has no option --${k}\n${USAGE}`);
  const seconds = Number(a.flags.get('seconds') ?? '10');
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) fail('--seconds takes a number of seconds (0 < N <= 3600)');
  const seed = Number(a.flags.get('seed') ?? '1');
  if (!Number.isInteger(seed) || seed < 0) fail('--seed takes a non-negative integer');
  const spec = usSnackMachine();
  const coins = numberList(a.flags.get('coins'), [25, 25, 100], 'coins');
  const bills = numberList(a.flags.get('bills'), [], 'bills');
  const select = a.flags.get('select') ?? 'A1';
  const slot = spec.slots.find((s) => s.code === select);
  if (!slot) fail(`--select: the bench machine has slots ${spec.slots.map((s) => s.code).join(', ')}`);
  const known = spec.changer!.coins.map((c) => c.value);
  for (const c of coins) if (!known.includes(c)) fail(`--coins: the changer takes ${known.join(', ')}`);
  for (const b of bills) if (!spec.bills!.includes(b)) fail(`--bills: the validator takes ${spec.bills!.join(', ')}`);

  const capture = new WireCapture();
  const host = await MachineHost.start(spec, { target: 'sim', seed, onWire: (dir, word, atUs) => capture.add(dir, word, atUs) });
  const done: string[] = [];
  try {
    host.select(select);
    await host.runUntilIdle();
    done.push(`select ${select} (${slot.price})`);
    for (const b of bills) {
      host.insertBill(b);
      await host.runUntilIdle();
      done.push(`bill ${b}`);
    }
    for (const c of coins) {
      host.insertCoin(c);
      await host.runUntilIdle();
      done.push(`coin ${c}`);
    }
    const endMs = seconds * 1000;
    if (host.nowMs < endMs) await host.run(endMs - host.nowMs);
    else process.stderr.write(`mdb: the purchase took ${(host.nowMs / 1000).toFixed(1)} s, longer than --seconds ${seconds}: the capture covers all of it\n`);
  } finally {
    await host.close();
  }
  const rig = host.rig;
  const header = [
    'vendfleet MDB capture (format: docs/mdb-trace.md), recorded by `npm run mdb -- record` on the simulated machine',
    `machine: USD, changer coins ${known.join('/')} (100 has no tube), bills ${spec.bills!.join('/')}; seed ${seed}`,
    `customer: ${done.join(', ')}; delivered ${rig.delivered.join(',') || 'nothing'}, change paid ${rig.changer!.paidOut.join('+') || 'none'}`,
    `${capture.frames.length} frames over ${(host.nowMs / 1000).toFixed(3)} s; time in seconds at each frame's first byte`,
  ];
  const text = capture.toText(header);
  const out = a.flags.get('out');
  if (out) {
    writeFileSync(out, text);
    process.stderr.write(`mdb: wrote ${capture.frames.length} frames (${(host.nowMs / 1000).toFixed(1)} s) to ${out}\n`);
  } else process.stdout.write(text);
  return 0;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const cmd = a.positional[0];
  if (cmd === 'decode') process.exitCode = decode(a);
  else if (cmd === 'record') process.exitCode = await record(a);
  else fail(cmd ? `unknown command ${cmd}\n${USAGE}` : USAGE);
}

main().catch((e: unknown) => {
  process.stderr.write(`mdb: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
