/**
 * check-imports: every import in the project's TypeScript goes along an edge
 * we chose, between top-level folders and between firmware/ subfolders.
 *
 *   node dist/tools/check-imports.js [--print]
 *
 * Reads every .ts file of the repository (not node_modules, dist or dot
 * folders) with the compiler's parser and collects each `import ... from`,
 * `export ... from`, `import()` (dynamic, and in types) and `import x =
 * require()`. Each becomes an edge: folder to folder (firmware, hal-sim,
 * gateway, tools, bench, test, types), or to `(node)` (Node built-ins),
 * `(npm)` (a package.json dependency) or `(sdk)` (a Moddable SDK module, as
 * tools/check-manifests.ts's SDK_PROVIDERS lists them); inside firmware/,
 * also subfolder to subfolder (a root file such as main.ts is a unit of its
 * own). An edge missing from the tables below fails, and so does a table
 * entry nothing uses any more: the tables are the tree as it is, reviewed.
 * The RULES hold whatever the tables say.
 *
 * --print lists the edges of the tree as it is, marks those new to the
 * tables and those gone from the tree, and prints the tables ready to paste
 * (the comments on unusual edges are kept by hand). Exit status: 0 all
 * edges allowed, 1 not, 2 bad usage.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { REPO, SDK_PROVIDERS } from './check-manifests.js';

/**
 * Top-level folders: what each may import besides itself. Pseudo-folders:
 * (node) Node built-ins, (npm) package.json dependencies, (sdk) Moddable SDK modules.
 */
export const FOLDER_EDGES: Readonly<Record<string, readonly string[]>> = {
  firmware: ['(sdk)'],
  // The SDK declarations refer to one another (embedded:io/* inside embedded:network/*).
  types: ['(sdk)'],
  // hal-sim -> (npm): mqtt-packet, the simulated machine's network speaks MQTT on the wire.
  'hal-sim': ['firmware', '(node)', '(npm)'],
  // Only GATEWAY_USES_FIRMWARE.
  gateway: ['firmware', '(node)', '(npm)'],
  // The fleet tool and the hil bench start a gateway of their own.
  tools: ['firmware', 'gateway', 'hal-sim', '(node)', '(npm)'],
  bench: ['firmware', 'gateway', 'hal-sim', '(node)', '(npm)'],
  // test -> bench: bench/lib holds the Mosquitto launcher and the cuttable TCP proxy both use.
  test: ['bench', 'firmware', 'gateway', 'hal-sim', 'tools', '(node)', '(npm)'],
};

/**
 * firmware/ subfolders, and root files (named with .ts): what each may
 * import besides itself. Every unit of the tree is listed, leaves with [].
 * Regenerate with --print after moving firmware files (issue 14 moves
 * journal/describe.ts to uplink/, text helpers to text/, and adds main.ts
 * wiring), then put back the comments that still hold.
 */
export const FIRMWARE_EDGES: Readonly<Record<string, readonly string[]>> = {
  'board.ts': [],
  'config.ts': [],
  // image.ts: image descriptions (docs/updates.md), read by the simulator's board and host and the tools; versions by update/version.ts's rule.
  'image.ts': ['update'],
  // listeners.ts: where each payment device's events go (the drivers' options, the parts that listen).
  'listeners.ts': ['mdb', 'vend'],
  'main.ts': ['board.ts', 'config.ts', 'version.ts', 'wiring.ts', 'uplink', 'vend'],
  // version.ts: the image's version, stamped into each image built (hal-sim/images.ts).
  'version.ts': [],
  // wiring.ts builds the machine: it is the one unit that knows every part.
  // wiring.ts -> dex: the machine's ISO 4217 numeric currency (dex/currency.ts's table), for the drivers to check the devices' against.
  'wiring.ts': ['board.ts', 'config.ts', 'listeners.ts', 'version.ts', 'dex', 'dispense', 'journal', 'mdb', 'update', 'vend'],
  // bench -> dex: the bench protocol's line check is the DEX CRC-16 (one implementation).
  bench: ['dex', 'text'],
  // command -> update: the update command's arguments are checked by the one version rule and handed to the updater.
  command: ['board.ts', 'crypto', 'journal', 'text', 'update'],
  crypto: ['text'],
  // dex -> money: the audit file's tube values run over the 16 coin types.
  dex: ['journal', 'money', 'text'],
  dispense: ['board.ts'],
  // journal -> command: the checkpoint keeps the settings commands change (command/vocabulary.ts numbers them);
  // journal -> money: the 16 coin types (money/coins.ts).
  journal: ['board.ts', 'command', 'money'],
  // mdb -> money: the 16 coin types (money/coins.ts), one constant for drivers, journal and change-maker.
  mdb: ['board.ts', 'money'],
  money: [],
  // platform -> command: esp32/sntp.ts takes the wall-clock floor from command/wall.ts.
  platform: ['board.ts', 'main.ts', 'bench', 'command', 'text'],
  text: [],
  // uplink -> command: describe.ts names commands' types and outcomes; -> dispense: a dispense failure's reason; -> money: the coin types.
  uplink: ['board.ts', 'config.ts', 'command', 'dispense', 'journal', 'money', 'text', 'update'],
  // vend -> update: remote actions hand the update command to the updater; reports carry its progress.
  vend: ['board.ts', 'config.ts', 'command', 'dex', 'dispense', 'journal', 'mdb', 'money', 'update', 'uplink'],
  // update: fetching, checking and installing firmware images (docs/updates.md); the image's hash is crypto's SHA-256.
  // update -> journal and command: an update's steps are journaled, its refusals are command outcomes.
  update: ['board.ts', 'command', 'config.ts', 'crypto', 'journal', 'text'],
};

/** The firmware files gateway/ may import, and why. */
export const GATEWAY_USES_FIRMWARE: Readonly<Record<string, string>> = {
  // The largest command the firmware takes: the API refuses bigger ones before signing.
  'firmware/command/command.ts': 'MAX_COMMAND_BYTES',
  // The one version rule (a machine journals a version in 32 bits) and the journal format this tree's firmware writes.
  'firmware/update/version.ts': 'parseVersion',
  'firmware/version.ts': 'JOURNAL_FORMAT',
};

/**
 * What is bundled into scripts for the XS engine (rollup.config.mjs) or built
 * for the board: nothing these reach at run time may import Node or npm.
 */
export const PORTABLE = ['firmware/', 'hal-sim/guest/', 'bench/xs/', 'test/firmware/', 'test/xs/harness.ts'];

/** One import as written. */
export interface ImportSite {
  /** Repository-relative, with forward slashes. */
  file: string;
  line: number;
  specifier: string;
  /** `import type` / `export type` / `import('x').T`: erased when compiled. */
  typeOnly: boolean;
}

/** Where an import leads: a repository file, or a kind of module outside the repository. */
export type Target = { kind: 'file'; path: string } | { kind: '(node)' | '(npm)' | '(sdk)' } | { kind: 'unknown'; why: string };

/** Every import of one file's text. */
export function importsOf(file: string, text: string): ImportSite[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: ImportSite[] = [];
  const add = (node: ts.Node, specifier: string, typeOnly: boolean): void => {
    found.push({ file, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, specifier, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node, node.moduleSpecifier.text, node.importClause?.isTypeOnly === true);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node, node.moduleSpecifier.text, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      add(node, ts.isStringLiteral(e) ? e.text : '(computed)', node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      add(node, arg && ts.isStringLiteral(arg) ? arg.text : '(computed)', false);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      add(node, ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal) ? arg.literal.text : '(computed)', true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The repository's .ts files, repository-relative. */
export function sourceFiles(root = REPO): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      if (e.name.startsWith('.') || e.name === 'node_modules' || e.name === 'dist') continue;
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts')) out.push(path);
    }
  };
  walk('');
  return out.sort();
}

/** Every import of the given files (by default, of the repository). */
export function repositoryImports(root = REPO, files = sourceFiles(root)): ImportSite[] {
  return files.flatMap((f) => importsOf(f, readFileSync(join(root, f), 'utf8')));
}

/** The package names package.json depends on. */
export function packageNames(root = REPO): Set<string> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  return new Set([...Object.keys(pkg['dependencies'] ?? {}), ...Object.keys(pkg['devDependencies'] ?? {})]);
}

export function resolveImport(site: ImportSite, packages: ReadonlySet<string>): Target {
  const s = site.specifier;
  if (s === '(computed)') return { kind: 'unknown', why: 'a computed specifier cannot be checked' };
  if (s.startsWith('.')) {
    const path = posix.normalize(posix.join(posix.dirname(site.file), s));
    if (path.startsWith('../')) return { kind: 'unknown', why: 'outside the repository' };
    // Sources import the compiled name: x.js is x.ts.
    return { kind: 'file', path: path.replace(/\.js$/, '.ts') };
  }
  if (s.startsWith('node:') || isBuiltin(s)) return { kind: '(node)' };
  const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!;
  if (packages.has(name)) return { kind: '(npm)' };
  if (s in SDK_PROVIDERS) return { kind: '(sdk)' };
  return { kind: 'unknown', why: 'neither Node, a package.json dependency nor a Moddable SDK module known to tools/check-manifests.ts' };
}

/** The top-level folder of a repository path ('(root)' for a file at the top). */
export function folderOf(path: string): string {
  const i = path.indexOf('/');
  return i < 0 ? '(root)' : path.slice(0, i);
}

/** The firmware unit of a path under firmware/: its subfolder, or the root file's name. */
export function firmwareUnitOf(path: string): string | undefined {
  if (!path.startsWith('firmware/')) return undefined;
  const rest = path.slice('firmware/'.length);
  const i = rest.indexOf('/');
  return i < 0 ? rest : rest.slice(0, i);
}

/** An import seen as an edge of one of the tables. */
export interface Edge {
  table: 'folders' | 'firmware' | 'gateway-firmware';
  from: string;
  to: string;
  site: ImportSite;
}

export interface Problem {
  site: ImportSite;
  edge: string;
  why: string;
}

/**
 * Files that import a module by a computed name, and what they import: the
 * check cannot follow those, so each is named here with its reason.
 */
export const COMPUTED_IMPORTS: Readonly<Record<string, string>> = {
  // The heap split of another built worktree runs that tree's own simulator host (docs/benchmarks.md: before and after a change).
  'bench/lib/heap-split.ts': 'dist/hal-sim/host.js of the worktree given with --heap-root',
  // The change-making sweep compares this tree's planner with another build's (docs/benchmarks.md: before and after).
  'bench/change-sweep.ts': 'firmware/money/change.js of this tree, or the build given with --planner',
};

/** The edges of the given imports (imports within one unit are not edges). */
export function edgesOf(sites: readonly ImportSite[], packages: ReadonlySet<string>): { edges: Edge[]; unknown: Problem[] } {
  const edges: Edge[] = [];
  const unknown: Problem[] = [];
  for (const site of sites) {
    const target = resolveImport(site, packages);
    const from = folderOf(site.file);
    if (site.specifier === '(computed)' && COMPUTED_IMPORTS[site.file] !== undefined) continue;
    if (target.kind === 'unknown') {
      unknown.push({ site, edge: `${from} -> ?`, why: target.why });
      continue;
    }
    const to = target.kind === 'file' ? folderOf(target.path) : target.kind;
    if (to !== from) edges.push({ table: 'folders', from, to, site });
    if (target.kind !== 'file') continue;
    const fu = firmwareUnitOf(site.file);
    const tu = firmwareUnitOf(target.path);
    if (fu !== undefined && tu !== undefined && fu !== tu) edges.push({ table: 'firmware', from: fu, to: tu, site });
    if (from === 'gateway' && to === 'firmware') edges.push({ table: 'gateway-firmware', from, to: target.path, site });
  }
  return { edges, unknown };
}

export interface Rule {
  text: string;
  broken: (e: Edge) => boolean;
}

/** What must hold whatever the tables say. */
export const RULES: readonly Rule[] = [
  {
    text: 'firmware imports only firmware/ and the Moddable SDK: no Node, no npm, nothing of the host side',
    broken: (e) => e.table === 'folders' && e.from === 'firmware' && e.to !== 'types' && e.to !== '(sdk)',
  },
  {
    text: 'gateway imports from firmware/ only the files GATEWAY_USES_FIRMWARE lists',
    broken: (e) => e.table === 'gateway-firmware' && !(e.to in GATEWAY_USES_FIRMWARE),
  },
  { text: 'bench and tools do not import test/', broken: (e) => e.table === 'folders' && (e.from === 'bench' || e.from === 'tools') && e.to === 'test' },
  { text: 'hal-sim imports neither tools/ nor test/', broken: (e) => e.table === 'folders' && e.from === 'hal-sim' && (e.to === 'tools' || e.to === 'test') },
  {
    text: 'test imports from bench/ only bench/lib (what tests and bench share)',
    broken: (e) => e.table === 'folders' && e.from === 'test' && e.to === 'bench' && !(resolvedPath(e) ?? '').startsWith('bench/lib/'),
  },
];

/** The repository file an edge leads to. */
function resolvedPath(e: Edge): string | undefined {
  const s = e.site.specifier;
  return s.startsWith('.') ? posix.normalize(posix.join(posix.dirname(e.site.file), s)) : undefined;
}

function allowed(e: Edge): boolean {
  if (e.table === 'folders') return FOLDER_EDGES[e.from]?.includes(e.to) === true;
  if (e.table === 'firmware') return FIRMWARE_EDGES[e.from]?.includes(e.to) === true;
  return e.to in GATEWAY_USES_FIRMWARE;
}

const tableName = { folders: 'FOLDER_EDGES', firmware: 'FIRMWARE_EDGES', 'gateway-firmware': 'GATEWAY_USES_FIRMWARE' } as const;

/**
 * Files that end up in an XS script or on the board which import Node or npm at run
 * time, found by following run-time imports from everything under PORTABLE.
 */
export function portabilityProblems(sites: readonly ImportSite[], packages: ReadonlySet<string>): Problem[] {
  const byFile = new Map<string, ImportSite[]>();
  for (const s of sites) {
    const list = byFile.get(s.file);
    if (list) list.push(s);
    else byFile.set(s.file, [s]);
  }
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const queue: { file: string; via: string }[] = [];
  for (const file of byFile.keys()) if (PORTABLE.some((p) => file.startsWith(p))) queue.push({ file, via: file });
  while (queue.length > 0) {
    const { file, via } = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const site of byFile.get(file) ?? []) {
      if (site.typeOnly) continue;
      const target = resolveImport(site, packages);
      if (target.kind === '(node)' || target.kind === '(npm)') {
        const reached = via === file ? '' : ` (reached from ${via})`;
        problems.push({ site, edge: `${folderOf(file)} -> ${target.kind}`, why: `runs under XS or on the board, so imports neither Node nor npm${reached}` });
      } else if (target.kind === 'file') queue.push({ file: target.path, via });
    }
  }
  return problems;
}

export interface ImportReport {
  edges: Edge[];
  /** Imports that break a rule or go along no allowed edge. */
  problems: Problem[];
  /** Table entries no import uses. */
  unused: string[];
}

/** `files`: every source file, so that FIRMWARE_EDGES is checked to name each firmware unit once. */
export function checkImports(sites: readonly ImportSite[], packages: ReadonlySet<string>, files?: readonly string[]): ImportReport {
  const { edges, unknown } = edgesOf(sites, packages);
  const problems: Problem[] = [...unknown];
  const units = new Set(files ? firmwareUnits(files) : []);
  for (const unit of units) {
    if (!(unit in FIRMWARE_EDGES)) {
      const site: ImportSite = { file: `firmware/${unit}`, line: 1, specifier: '', typeOnly: false };
      problems.push({ site, edge: unit, why: 'a firmware unit missing from FIRMWARE_EDGES: add it with what it may import' });
    }
  }
  for (const e of edges) {
    const edge = `${e.from} -> ${e.to}`;
    const rule = RULES.find((r) => r.broken(e));
    if (rule) problems.push({ site: e.site, edge, why: `breaks the rule: ${rule.text}` });
    else if (!allowed(e)) problems.push({ site: e.site, edge, why: `not an allowed edge (${tableName[e.table]} in tools/check-imports.ts)` });
  }
  problems.push(...portabilityProblems(sites, packages));
  const used = new Set(edges.map((e) => `${e.table} ${e.from} -> ${e.to}`));
  const unused: string[] = [];
  for (const [table, entries] of [
    ['folders', FOLDER_EDGES],
    ['firmware', FIRMWARE_EDGES],
  ] as const) {
    for (const [from, tos] of Object.entries(entries)) for (const to of tos) if (!used.has(`${table} ${from} -> ${to}`)) unused.push(`${tableName[table]}: ${from} -> ${to}`);
  }
  for (const file of Object.keys(GATEWAY_USES_FIRMWARE)) if (!used.has(`gateway-firmware gateway -> ${file}`)) unused.push(`GATEWAY_USES_FIRMWARE: ${file}`);
  if (files) for (const unit of Object.keys(FIRMWARE_EDGES)) if (!units.has(unit)) unused.push(`FIRMWARE_EDGES: ${unit} (no such unit under firmware/)`);
  return { edges, problems, unused };
}

/** The firmware units (subfolders and root files) the files make up. */
export function firmwareUnits(files: readonly string[]): string[] {
  const units = new Set<string>();
  for (const f of files) {
    const unit = firmwareUnitOf(f);
    if (unit !== undefined) units.add(unit);
  }
  return [...units].sort(byName);
}

export function formatProblem(p: Problem): string {
  return `${p.site.file}:${p.site.line}: ${p.edge} ('${p.site.specifier}'): ${p.why}`;
}

/** The tree's edges by table, each with its imports, in a stable order. */
function grouped(edges: readonly Edge[]): Map<string, Map<string, Map<string, ImportSite[]>>> {
  const out = new Map<string, Map<string, Map<string, ImportSite[]>>>();
  for (const e of edges) {
    let t = out.get(e.table);
    if (!t) out.set(e.table, (t = new Map()));
    let f = t.get(e.from);
    if (!f) t.set(e.from, (f = new Map()));
    const sites = f.get(e.to);
    if (sites) sites.push(e.site);
    else f.set(e.to, [e.site]);
  }
  return out;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
/** Root files (x.ts) first, then folders, then (node), (npm), (sdk): the order of the tables. */
const tableOrder = (a: string, b: string): number => kind(a) - kind(b) || byName(a, b);
const kind = (u: string): number => (u.endsWith('.ts') ? 0 : u.startsWith('(') ? 2 : 1);
const FOLDER_ORDER = ['firmware', 'types', 'hal-sim', 'gateway', 'tools', 'bench', 'test'];
const rank = (folder: string): number => (FOLDER_ORDER.includes(folder) ? FOLDER_ORDER.indexOf(folder) : FOLDER_ORDER.length);

/** --print: the edges as they are, what is new to the tables, what is gone, and the tables to paste. */
export function printEdges(report: ImportReport, files: readonly string[]): string {
  const lines: string[] = [];
  const groups = grouped(report.edges);
  for (const table of ['folders', 'firmware', 'gateway-firmware'] as const) {
    lines.push(`${tableName[table]} (edges of the tree as it is; + not in the table):`);
    const t = groups.get(table) ?? new Map<string, Map<string, ImportSite[]>>();
    for (const from of [...t.keys()].sort(byName)) {
      const tos = t.get(from)!;
      for (const to of [...tos.keys()].sort(byName)) {
        const sites = tos.get(to)!;
        const e: Edge = { table, from, to, site: sites[0]! };
        const mark = allowed(e) ? ' ' : '+';
        lines.push(`${mark} ${`${from} -> ${to}`.padEnd(44)} ${String(sites.length).padStart(4)}  e.g. ${sites[0]!.file}:${sites[0]!.line}`);
      }
    }
    lines.push('');
  }
  lines.push('In the tables, used by no import (remove):', ...(report.unused.length ? report.unused.map((u) => `- ${u}`) : ['  none']), '');
  lines.push('The tables as the tree is (paste into tools/check-imports.ts; keep the comments):');
  for (const table of ['folders', 'firmware'] as const) {
    const t = groups.get(table) ?? new Map<string, Map<string, ImportSite[]>>();
    lines.push(`export const ${tableName[table]}: Readonly<Record<string, readonly string[]>> = {`);
    // Every firmware unit, leaves too; the folders from the inside out.
    const froms = table === 'firmware' ? firmwareUnits(files).sort(tableOrder) : [...t.keys()].sort((a, b) => rank(a) - rank(b) || byName(a, b));
    for (const from of froms) {
      const key = /^[a-z]+$/.test(from) ? from : `'${from}'`;
      lines.push(`  ${key}: [${[...(t.get(from)?.keys() ?? [])].sort(tableOrder).map((to) => `'${to}'`).join(', ')}],`);
    }
    lines.push('};');
  }
  const gw = groups.get('gateway-firmware')?.get('gateway');
  lines.push(`GATEWAY_USES_FIRMWARE keys: ${gw ? [...gw.keys()].sort(byName).map((f) => `'${f}'`).join(', ') : 'none'}`);
  return lines.join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--print');
  if (unknown.length > 0) {
    process.stderr.write(`check-imports: unknown argument ${unknown[0]}\nusage: node dist/tools/check-imports.js [--print]\n`);
    process.exit(2);
  }
  const files = sourceFiles();
  const report = checkImports(repositoryImports(REPO, files), packageNames(), files);
  if (args.includes('--print')) {
    process.stdout.write(printEdges(report, files) + '\n');
    return;
  }
  for (const p of report.problems) process.stdout.write(`${formatProblem(p)}\n`);
  for (const u of report.unused) process.stdout.write(`unused ${u}: no import goes along it any more; remove it (--print shows the tree's edges)\n`);
  const n = report.problems.length + report.unused.length;
  const distinct = new Set(report.edges.map((e) => `${e.table} ${e.from} -> ${e.to}`)).size;
  process.stdout.write(n === 0 ? `imports: ok (${report.edges.length} imports along ${distinct} allowed edges)\n` : `imports: ${n} problem${n === 1 ? '' : 's'}\n`);
  process.exit(n === 0 ? 0 : 1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
