/**
 * check-manifests: the ESP32 manifests are complete and the firmware fits.
 *
 *   node dist/tools/check-manifests.js [--no-heap] [--print] [manifest.json ...]
 *
 * (default: manifests/esp32/manifest.json and manifests/esp32-bench/manifest.json).
 * For each manifest:
 *
 * - modules: the import graph from the manifest's `creation.main`, computed
 *   from the TypeScript sources with the compiler's parser. Every module a
 *   source imports at run time (type-only imports are erased) must be
 *   listed under the specifier XS will ask for (a relative import resolves
 *   against the importer's specifier, so specifiers mirror the source tree),
 *   mapped to that very file; every SDK module imported must come from a
 *   manifest the build includes (SDK_PROVIDERS); nothing listed may be
 *   missing on disk or unreachable from the entry; every local module is
 *   preloaded (their objects then live in flash, not RAM);
 * - partitions: the partition table has the journal's data partition under
 *   the label the board opens, inside the flash, nothing overlapping; and
 *   two OTA app slots with otadata for firmware updates (tools/check-ota.ts);
 * - sdkconfig: the bootloader's rollback is on and the application
 *   description carries FIRMWARE_VERSION (tools/check-ota.ts);
 * - configuration: the board's settings (`config`) pass the device's own
 *   checks (firmware/platform/esp32/settings.ts) and the machine file in
 *   `data` passes the firmware's (firmware/config.ts);
 * - heap: the firmware's heap at rest measured under XS, by the bench's own
 *   code (`npm run bench -- --xs-only --json`, `xs.codeHeapSlots` and
 *   `xs.stateHeapSlots`) and by the same steps on the manifest's sample
 *   machine with its uplink, split as the board keeps it (hal-sim/xs/heap.ts):
 *   the running firmware's state, RAM on the board, must stay within
 *   `vendfleet.ramAtRestSlots`, and the loaded modules' code and tables,
 *   preloaded into flash, within `vendfleet.codeSlots`, whose bytes must fit
 *   the application slot; the creation heap (RAM) must be at least twice the
 *   RAM budget.
 *
 * Exit status 0 when every check passes, 1 when one fails, 2 on bad usage.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseConfig } from '../firmware/config.js';
import { FIRMWARE_VERSION } from '../firmware/version.js';
import { readSettings } from '../firmware/platform/esp32/settings.js';
import { sampleHeapAtRest, type HeapSplit } from '../hal-sim/xs/heap.js';
import { checkSdkconfig, checkSlots, type OtaLayout } from './check-ota.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_MANIFESTS = ['manifests/esp32/manifest.json', 'manifests/esp32-bench/manifest.json'];

/**
 * Which SDK manifest provides each SDK module the device code may import
 * (checked against the Moddable SDK's manifests). A module imported but
 * provided by none of the manifest's includes would be missing from the
 * build; one not in this table is unknown to the project.
 */
export const SDK_PROVIDERS: Readonly<Record<string, readonly string[]>> = {
  'mc/config': ['(mcconfig)'],
  timer: ['$(MODDABLE)/examples/manifest_base.json'],
  time: ['$(MODDABLE)/examples/manifest_base.json'],
  Resource: ['$(MODDABLE)/examples/manifest_base.json'],
  preference: ['$(MODDABLE)/examples/manifest_base.json'],
  'embedded:io/digital': ['$(MODDABLE)/modules/io/manifest.json'],
  'embedded:io/pwm': ['$(MODDABLE)/modules/io/manifest.json'],
  'embedded:io/serial': ['$(MODDABLE)/modules/io/manifest.json'],
  'embedded:io/i2c': ['$(MODDABLE)/modules/io/manifest.json'],
  'embedded:io/smbus': ['$(MODDABLE)/modules/io/manifest.json'],
  'embedded:io/socket/tcp': ['$(MODDABLE)/modules/io/manifest.json'],
  'embedded:io/socket/udp': ['$(MODDABLE)/modules/io/manifest.json'],
  'embedded:network/interface/wifi': ['$(MODDABLE)/modules/io/manifest.json'],
  'embedded:storage/flash': ['$(MODDABLE)/modules/io/flash/manifest.json'],
  'embedded:network/mqtt/client': ['$(MODDABLE)/examples/io/tcp/mqttclient/manifest_mqttclient.json'],
  'embedded:network/dns/resolver/udp': ['$(MODDABLE)/examples/io/udp/dns/manifest_dns.json', '$(MODDABLE)/examples/io/tcp/mqttclient/manifest_mqttclient.json'],
  'embedded:sensor/Temperature/TMP102': ['$(MODDABLE)/modules/drivers/sensors/tmp102/manifest.json'],
  ota: ['$(MODDABLE)/build/devices/esp32/modules/ota/manifest.json'],
};

/** XS slots are 16 bytes on the 32-bit ESP32. */
export const SLOT_BYTES = 16;

/** The manifest's `vendfleet` budgets, in XS slots. */
export interface HeapBudget {
  /** The running firmware's state at rest: RAM on the board. */
  ramAtRestSlots?: number;
  /** The preloaded modules' code and tables: flash on the board, inside the application slot. */
  codeSlots?: number;
  /** The single budget before the split (refused: say which part). */
  heapAtRestSlots?: number;
}

/** A manifest with its local includes merged in (the SDK's are only recorded), for platform esp32. */
export interface LoadedManifest {
  path: string;
  vars: Record<string, string>;
  /** Local modules: specifier -> absolute path without extension. */
  modules: Map<string, string>;
  /** SDK modules listed explicitly: specifier -> path as written. */
  sdkModules: Map<string, string>;
  sdkIncludes: Set<string>;
  preload: Set<string>;
  creation: { [key: string]: unknown };
  config: { [key: string]: unknown };
  data: string[];
  budget: HeapBudget | undefined;
  problems: string[];
}

type Json = { [key: string]: unknown };
const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
const show = (p: string): string => (p.startsWith(REPO + '/') ? relative(REPO, p) : p);

/** mcconfig's variable substitution; unknown variables (the SDK's) stay as they are. */
function substitute(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\(([^)]+)\)/g, (whole, name: string) => vars[name] ?? whole);
}

function isSdk(path: string): boolean {
  return path.includes('$(');
}

export function loadManifest(path: string, inherited: Record<string, string> = {}, into?: LoadedManifest): LoadedManifest {
  const file = resolve(path);
  const m: LoadedManifest = into ?? {
    path: file,
    vars: {},
    modules: new Map(),
    sdkModules: new Map(),
    sdkIncludes: new Set(),
    preload: new Set(),
    creation: {},
    config: {},
    data: [],
    budget: undefined,
    problems: [],
  };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    m.problems.push(`${show(file)}: cannot read the manifest: ${(e as Error).message}`);
    return m;
  }
  if (!isJson(json)) {
    m.problems.push(`${show(file)}: a manifest must be a JSON object`);
    return m;
  }
  const dir = dirname(file);
  const vars = { ...inherited };
  // Build variables: mcconfig resolves a value starting with "./" against the manifest's directory.
  const build = json['build'];
  if (isJson(build)) {
    for (const [name, value] of Object.entries(build)) {
      if (typeof value !== 'string') continue;
      const v = substitute(value, vars);
      vars[name] = v.startsWith('./') ? resolve(dir, v) : v;
    }
  }
  Object.assign(m.vars, vars);
  const local = (p: string): string => {
    const v = substitute(p, vars);
    return isAbsolute(v) ? v : resolve(dir, v);
  };
  const parts: Json[] = [json];
  const esp32 = isJson(json['platforms']) ? (json['platforms'] as Json)['esp32'] : undefined;
  if (isJson(esp32)) parts.push(esp32);
  for (const part of parts) {
    for (const inc of strings(part['include'])) {
      const v = substitute(inc, vars);
      if (isSdk(v)) m.sdkIncludes.add(v);
      else loadManifest(local(inc), vars, m);
    }
  }
  for (const part of parts) {
    const modules = part['modules'];
    if (isJson(modules)) {
      for (const [specifier, value] of Object.entries(modules)) {
        if (specifier === '~') continue; // removals from the SDK's manifests
        for (const p of strings(value)) {
          const v = substitute(p, vars);
          if (specifier === '*') {
            if (isSdk(v)) continue;
            m.problems.push(`${show(file)}: "*" module ${p}: list the firmware's modules under their specifiers`);
            continue;
          }
          if (isSdk(v)) m.sdkModules.set(specifier, v);
          else m.modules.set(specifier, local(p));
        }
      }
    }
    for (const p of strings(part['preload'])) m.preload.add(p);
    if (isJson(part['creation'])) Object.assign(m.creation, part['creation']);
    if (isJson(part['config'])) Object.assign(m.config, part['config']);
    const data = part['data'];
    if (isJson(data)) for (const p of strings(data['*'])) if (!isSdk(substitute(p, vars))) m.data.push(local(p));
  }
  const own = json['vendfleet'];
  if (isJson(own)) {
    const budget: HeapBudget = { ...m.budget };
    for (const key of ['ramAtRestSlots', 'codeSlots', 'heapAtRestSlots'] as const) {
      const v = own[key];
      if (typeof v === 'number') budget[key] = v;
    }
    m.budget = budget;
  }
  return m;
}

/** The source file behind a module path (no extension): TypeScript first, then JavaScript. */
function sourceOf(base: string): string | undefined {
  for (const ext of ['.ts', '.js']) if (existsSync(base + ext) && !base.endsWith('.d')) return base + ext;
  return undefined;
}

export interface RuntimeImport {
  specifier: string;
  line: number;
}

/** Imports that survive compilation (verbatimModuleSyntax: `import type` and `export type` go, the rest stays). */
export function runtimeImports(file: string): RuntimeImport[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS);
  const found: RuntimeImport[] = [];
  const at = (node: ts.Node): number => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      if (statement.importClause?.isTypeOnly) continue;
      if (ts.isStringLiteral(statement.moduleSpecifier)) found.push({ specifier: statement.moduleSpecifier.text, line: at(statement) });
    } else if (ts.isExportDeclaration(statement) && statement.moduleSpecifier) {
      if (statement.isTypeOnly) continue;
      if (ts.isStringLiteral(statement.moduleSpecifier)) found.push({ specifier: statement.moduleSpecifier.text, line: at(statement) });
    }
  }
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      found.push({ specifier: arg && ts.isStringLiteral(arg) ? arg.text : '(dynamic import)', line: at(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

export interface ModuleReport {
  entry: string;
  /** Local modules reached from the entry: specifier -> file. */
  reached: Map<string, string>;
  /** SDK modules imported: specifier -> the first importer. */
  sdk: Map<string, string>;
  problems: string[];
}

export function checkModules(m: LoadedManifest): ModuleReport {
  const where = show(m.path);
  const problems: string[] = [];
  const entry = typeof m.creation['main'] === 'string' ? m.creation['main'] : '';
  const reached = new Map<string, string>();
  const sdk = new Map<string, string>();
  if (!entry) {
    problems.push(`${where}: creation.main (the entry module's specifier) is missing`);
    return { entry, reached, sdk, problems };
  }
  // Everything listed must be on disk.
  for (const [specifier, base] of m.modules) {
    if (!sourceOf(base)) problems.push(`${where}: module "${specifier}" is listed as ${show(base)}, but neither ${show(base)}.ts nor .js exists`);
  }
  const queue: string[] = [entry];
  while (queue.length > 0) {
    const specifier = queue.shift()!;
    if (reached.has(specifier)) continue;
    const base = m.modules.get(specifier);
    if (base === undefined) continue; // reported by the importer
    const file = sourceOf(base);
    if (!file) continue;
    reached.set(specifier, file);
    for (const imp of runtimeImports(file)) {
      const what = `${show(file)}:${imp.line} imports "${imp.specifier}"`;
      if (imp.specifier === '(dynamic import)' || imp.specifier.startsWith('node:')) {
        problems.push(`${what}: not possible on the device`);
        continue;
      }
      if (imp.specifier.startsWith('./') || imp.specifier.startsWith('../')) {
        // XS resolves against the importer's specifier; the file must be the one beside the importer.
        const wanted = posix.normalize(posix.join(posix.dirname(specifier), imp.specifier)).replace(/\.m?js$/, '');
        const fileBase = resolve(dirname(file), imp.specifier).replace(/\.m?js$/, '');
        const listed = m.modules.get(wanted);
        if (listed === undefined) {
          const hint = sourceOf(fileBase) ? ` (${show(sourceOf(fileBase)!)}): add "${wanted}": "${manifestPath(m, fileBase)}" to "modules" and "preload"` : ` and no ${show(fileBase)}.ts exists`;
          problems.push(`${what}: module "${wanted}" is not listed in ${where}${hint}`);
        } else if (resolve(listed) !== resolve(fileBase)) {
          problems.push(`${what}: module "${wanted}" is listed as ${show(listed)}, but the import means ${show(fileBase)}`);
        } else {
          queue.push(wanted);
        }
        continue;
      }
      if (m.modules.has(imp.specifier)) {
        queue.push(imp.specifier);
        continue;
      }
      if (!sdk.has(imp.specifier)) sdk.set(imp.specifier, show(file));
      if (m.sdkModules.has(imp.specifier)) continue;
      const providers = SDK_PROVIDERS[imp.specifier];
      if (!providers) {
        problems.push(`${what}: not a module of this project, and not one of the SDK modules the check knows (tools/check-manifests.ts SDK_PROVIDERS)`);
      } else if (!providers.some((p) => p === '(mcconfig)' || m.sdkIncludes.has(p))) {
        problems.push(`${what}: ${where} includes none of the manifests that provide it (${providers.join(', ')})`);
      }
    }
  }
  for (const [specifier, base] of m.modules) {
    if (!reached.has(specifier) && sourceOf(base)) problems.push(`${where}: module "${specifier}" (${show(base)}) is listed but not imported from the entry "${entry}": remove it`);
  }
  for (const specifier of reached.keys()) {
    if (!m.preload.has(specifier)) problems.push(`${where}: module "${specifier}" is not preloaded: add it to "preload" (its code and objects then stay in flash)`);
  }
  for (const specifier of m.preload) {
    if (!reached.has(specifier) && !m.modules.has(specifier) && !m.sdkModules.has(specifier) && !SDK_PROVIDERS[specifier]) {
      problems.push(`${where}: "preload" names "${specifier}", which is not a module of the build`);
    }
  }
  return { entry, reached, sdk, problems };
}

/** How the manifest would write a path: through $(VENDFLEET) when it defines it. */
function manifestPath(m: LoadedManifest, base: string): string {
  const root = m.vars['VENDFLEET'];
  if (root && resolve(base).startsWith(resolve(root) + '/')) return `$(VENDFLEET)/${relative(resolve(root), base)}`;
  return relative(dirname(m.path), base);
}

// ---- partitions -------------------------------------------------------------

export interface Partition {
  name: string;
  type: string;
  subtype: string;
  offset: number;
  size: number;
}

function parseSize(v: string): number {
  const s = v.trim();
  if (/^0x[0-9a-f]+$/i.test(s)) return parseInt(s, 16);
  const m = /^(\d+)\s*([KM]?)$/i.exec(s);
  if (!m) return NaN;
  return Number(m[1]) * (m[2]!.toUpperCase() === 'M' ? 1 << 20 : m[2] ? 1024 : 1);
}

/** An ESP-IDF partition CSV (name, type, subtype, offset, size, flags); empty offsets follow the previous partition. */
export function parsePartitions(text: string): Partition[] {
  const out: Partition[] = [];
  let next = 0x9000;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [name = '', type = '', subtype = '', offset = '', size = ''] = line.split(',').map((f) => f.trim());
    let at = offset ? parseSize(offset) : next;
    if (!offset && type === 'app') at = Math.ceil(at / 0x10000) * 0x10000;
    const length = parseSize(size);
    out.push({ name, type, subtype, offset: at, size: length });
    next = at + length;
  }
  return out;
}

export function checkPartitions(m: LoadedManifest, label: string): { problems: string[]; journal: Partition | undefined; ota?: OtaLayout } {
  const where = show(m.path);
  const problems: string[] = [];
  const file = m.vars['PARTITIONS_FILE'];
  if (!file || isSdk(file)) return { problems: [`${where}: build.PARTITIONS_FILE must name the project's partition table`], journal: undefined };
  if (!existsSync(file)) return { problems: [`${where}: the partition table ${show(file)} does not exist`], journal: undefined };
  const table = parsePartitions(readFileSync(file, 'utf8'));
  const flash = Number(m.vars['FLASH_SIZE_MB'] ?? '4') * (1 << 20);
  for (const p of table) {
    if (!Number.isFinite(p.offset) || !Number.isFinite(p.size) || p.size <= 0) problems.push(`${show(file)}: partition "${p.name}" has an unreadable offset or size`);
    else if (p.offset + p.size > flash) problems.push(`${show(file)}: partition "${p.name}" ends at 0x${(p.offset + p.size).toString(16)}, beyond the ${flash >> 20} MiB flash`);
    if (p.type === 'app' && p.offset % 0x10000 !== 0) problems.push(`${show(file)}: app partition "${p.name}" must start on a 64 KiB boundary`);
  }
  const sorted = [...table].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (a.offset + a.size > b.offset) problems.push(`${show(file)}: partitions "${a.name}" and "${b.name}" overlap`);
  }
  const journal = table.find((p) => p.name === label);
  if (!journal) problems.push(`${show(file)}: no partition labelled "${label}" (config.journal): the board opens the journal by that label`);
  else {
    if (journal.type !== 'data') problems.push(`${show(file)}: partition "${label}" must be of type data`);
    if (journal.size % 4096 !== 0 || journal.offset % 4096 !== 0) problems.push(`${show(file)}: partition "${label}" must start and end on 4 KiB erase blocks`);
    if (journal.size < 64 * 1024) problems.push(`${show(file)}: partition "${label}" has ${journal.size} bytes; the journal needs at least 64 KiB`);
  }
  // Firmware updates: two app slots and otadata (tools/check-ota.ts).
  const slots = checkSlots(table, show(file));
  problems.push(...slots.problems);
  return { problems, journal, ...(slots.layout ? { ota: slots.layout } : {}) };
}

// ---- configuration ----------------------------------------------------------------

export function checkConfiguration(m: LoadedManifest): { problems: string[]; machine: Json | undefined; journalLabel: string } {
  const where = show(m.path);
  const problems: string[] = [];
  let journalLabel = 'journal';
  let machineFile = 'machine.json';
  try {
    const settings = readSettings(m.config);
    journalLabel = settings.journal;
    machineFile = settings.machine;
  } catch (e) {
    problems.push(`${where}: config: ${(e as Error).message}`);
  }
  const file = m.data.map((d) => [d, d + '.json']).flat().find((d) => d.endsWith('/' + machineFile) && existsSync(d));
  let machine: Json | undefined;
  if (!file) problems.push(`${where}: config.machine is "${machineFile}", but no "data" entry provides that file`);
  else {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      parseConfig(parsed);
      machine = parsed as Json;
    } catch (e) {
      problems.push(`${show(file)}: not a valid machine configuration: ${(e as Error).message}`);
    }
  }
  return { problems, machine, journalLabel };
}

// ---- heap -------------------------------------------------------------------------

export interface HeapFigures {
  /** `npm run bench -- --xs-only --json`: xs.heapAtRestSlots, xs.codeHeapSlots, xs.stateHeapSlots (its one-slot machine, no uplink). */
  bench: HeapSplit;
  /** The same steps on the manifest's sample machine, with its uplink configured. */
  sample: HeapSplit;
}

/** The bench's own measurement, run as the bench runs it. */
export function benchHeapAtRest(): HeapSplit {
  const run = spawnSync(process.execPath, [join(REPO, 'dist/bench/run.js'), '--xs-only', '--json'], { encoding: 'utf8', timeout: 170000 });
  if (run.status !== 0) throw new Error(`npm run bench -- --xs-only failed: ${run.stderr || run.error?.message || `exit ${run.status}`}`);
  const figures = JSON.parse(run.stdout) as Record<string, number>;
  const [total, code, state] = [figures['xs.heapAtRestSlots'], figures['xs.codeHeapSlots'], figures['xs.stateHeapSlots']];
  if (typeof total !== 'number' || typeof code !== 'number' || typeof state !== 'number') throw new Error('the bench reported no xs.heapAtRestSlots, xs.codeHeapSlots and xs.stateHeapSlots');
  return { total, code, state };
}

export { sampleHeapAtRest };

export function checkHeap(m: LoadedManifest, heap: HeapFigures, appSlotBytes?: number): string[] {
  const where = show(m.path);
  const problems: string[] = [];
  const ram = m.budget?.ramAtRestSlots;
  const code = m.budget?.codeSlots;
  if (m.budget?.heapAtRestSlots !== undefined) {
    problems.push(`${where}: vendfleet.heapAtRestSlots is the single budget from before the split: declare vendfleet.ramAtRestSlots (the running state, RAM on the board) and vendfleet.codeSlots (the preloaded code, flash) instead`);
  }
  if (ram === undefined) problems.push(`${where}: vendfleet.ramAtRestSlots (the RAM budget: the running firmware's state at rest, XS slots) is missing`);
  if (code === undefined) problems.push(`${where}: vendfleet.codeSlots (the flash budget: the preloaded modules' code and tables, XS slots) is missing`);
  const machines = [
    ['the bench (npm run bench -- --xs-only: xs.stateHeapSlots, xs.codeHeapSlots)', heap.bench],
    ['the sample machine with its uplink', heap.sample],
  ] as const;
  if (ram !== undefined) {
    for (const [what, split] of machines) {
      if (split.state > ram) {
        problems.push(
          `${where}: the running firmware's state at rest under XS is ${split.state} slots for ${what}, over the RAM budget of ${ram} (vendfleet.ramAtRestSlots): ` +
            'this is RAM on the board; find what the firmware now holds at run time (instances, closures made at start, arrays), or raise the budget and creation.heap together',
        );
      }
    }
  }
  if (code !== undefined) {
    for (const [what, split] of machines) {
      if (split.code > code) {
        problems.push(
          `${where}: the firmware's code and tables under XS are ${split.code} slots for ${what}, over the flash budget of ${code} (vendfleet.codeSlots): ` +
            'they are preloaded into flash on the board; raise the budget if the application slot has room (it is checked against the slot), or find what code grew',
        );
      }
    }
    if (appSlotBytes !== undefined && code * SLOT_BYTES > appSlotBytes / 4) {
      problems.push(`${where}: vendfleet.codeSlots ${code} is ${code * SLOT_BYTES} bytes at ${SLOT_BYTES} a slot, more than a quarter of the ${appSlotBytes / 1024} KiB application slot, which also holds ESP-IDF, the XS engine, the SDK's modules and the byte code`);
    }
  }
  const heapCreation = m.creation['heap'];
  const initial = isJson(heapCreation) ? heapCreation['initial'] : undefined;
  const incremental = isJson(heapCreation) ? heapCreation['incremental'] : undefined;
  if (typeof initial !== 'number') problems.push(`${where}: creation.heap.initial is missing`);
  else if (ram !== undefined && initial < 2 * ram) problems.push(`${where}: creation.heap.initial ${initial} is less than twice the RAM budget at rest (${2 * ram}): XS needs room for garbage between collections`);
  if (incremental !== 0) problems.push(`${where}: creation.heap.incremental must be 0 (a fixed heap: the budget is the heap)`);
  if (m.creation['static'] !== 0) problems.push(`${where}: creation.static must be 0 (separate chunk and slot heaps, as sized)`);
  return problems;
}

// ---- all of it ----------------------------------------------------------------------

export interface ManifestReport {
  manifest: LoadedManifest;
  modules: ModuleReport;
  journal: Partition | undefined;
  problems: string[];
  lines: string[];
}

export function checkManifest(path: string, heap: HeapFigures | undefined): ManifestReport {
  const m = loadManifest(path);
  const modules = checkModules(m);
  const config = checkConfiguration(m);
  const parts = checkPartitions(m, config.journalLabel);
  const sdkconfig = checkSdkconfig(m.vars['SDKCONFIGPATH'], show(m.path));
  const problems = [...m.problems, ...modules.problems, ...config.problems, ...parts.problems, ...sdkconfig, ...(heap ? checkHeap(m, heap, parts.ota?.slotSize) : [])];
  const lines = [`${show(m.path)} (entry ${modules.entry || '?'})`];
  lines.push(`  modules: ${modules.reached.size} of the project's reached from the entry${modules.problems.length ? '' : ', all listed and preloaded'}; from the SDK: ${[...modules.sdk.keys()].sort().join(', ')}`);
  if (parts.journal) lines.push(`  journal partition "${parts.journal.name}": ${parts.journal.size / 1024} KiB at 0x${parts.journal.offset.toString(16)}`);
  if (parts.ota) lines.push(`  app slots ota_0 and ota_1: ${parts.ota.slotSize / 1024} KiB each; otadata at 0x${parts.ota.otadata.offset.toString(16)}${sdkconfig.length ? '' : '; rollback on, image version ' + FIRMWARE_VERSION}`);
  if (config.machine) lines.push(`  machine configuration: ${(config.machine['slots'] as unknown[]).length} slots, valid`);
  if (heap) {
    const used = (worst: number, budget: number | undefined): string => (budget ? `; budget ${budget} (${Math.round((100 * worst) / budget)}% used, ${budget - worst} slots left)` : '; no budget');
    const ram = m.budget?.ramAtRestSlots;
    const code = m.budget?.codeSlots;
    const worstCode = Math.max(heap.bench.code, heap.sample.code);
    lines.push(`  heap at rest under XS, above an empty engine: bench ${heap.bench.total} slots, sample machine ${heap.sample.total} slots, of which`);
    lines.push(`    running state (RAM on the board): bench ${heap.bench.state}, sample machine ${heap.sample.state}${used(Math.max(heap.bench.state, heap.sample.state), ram)}`);
    const share = parts.ota ? `, ${((100 * worstCode * SLOT_BYTES) / parts.ota.slotSize).toFixed(1)}% of the ${parts.ota.slotSize / 1024} KiB app slot` : '';
    lines.push(`    code and tables (preloaded, flash on the board): ${worstCode} (${Math.round((worstCode * SLOT_BYTES) / 1024)} KiB at ${SLOT_BYTES} bytes a slot${share})${used(worstCode, code)}`);
  }
  return { manifest: m, modules, journal: parts.journal, problems, lines };
}

/**
 * The "modules" and "preload" a manifest needs for its entry (what --print
 * writes, to paste): the entry's import graph followed through the source
 * tree, where a module's specifier is its path under $(VENDFLEET).
 */
export function expectedModules(m: LoadedManifest): { modules: Record<string, string>; preload: string[] } {
  const root = m.vars['VENDFLEET'] ?? REPO;
  const entry = typeof m.creation['main'] === 'string' ? m.creation['main'] : '';
  const found = new Map<string, string>();
  const queue = entry ? [entry] : [];
  while (queue.length > 0) {
    const specifier = queue.shift()!;
    if (found.has(specifier)) continue;
    const file = sourceOf(join(root, specifier));
    if (!file) continue;
    found.set(specifier, file);
    for (const imp of runtimeImports(file)) {
      if (imp.specifier.startsWith('./') || imp.specifier.startsWith('../')) queue.push(posix.normalize(posix.join(posix.dirname(specifier), imp.specifier)).replace(/\.m?js$/, ''));
    }
  }
  const modules: Record<string, string> = {};
  for (const [specifier, file] of [...found].sort((a, b) => a[0].localeCompare(b[0]))) modules[specifier] = manifestPath(m, file.replace(/\.(ts|js)$/, ''));
  return { modules, preload: Object.keys(modules) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a.startsWith('--') && a !== '--no-heap' && a !== '--print');
  if (unknown.length > 0) {
    process.stderr.write(`check-manifests: unknown option ${unknown[0]}\nusage: node dist/tools/check-manifests.js [--no-heap] [--print] [manifest.json ...]\n`);
    process.exit(2);
  }
  const paths = args.filter((a) => !a.startsWith('--'));
  const manifests = (paths.length > 0 ? paths : DEFAULT_MANIFESTS.map((p) => join(REPO, p)).filter((p) => existsSync(p))).map((p) => resolve(p));
  if (args.includes('--print')) {
    for (const p of manifests) process.stdout.write(`${show(p)}\n${JSON.stringify(expectedModules(loadManifest(p)), null, 2)}\n`);
    return;
  }
  let heap: HeapFigures | undefined;
  if (!args.includes('--no-heap')) {
    const first = loadManifest(manifests[0]!);
    const machine = checkConfiguration(first).machine;
    if (!machine) throw new Error(`${show(first.path)}: no valid sample machine to measure`);
    heap = { bench: benchHeapAtRest(), sample: await sampleHeapAtRest(machine) };
  }
  let failed = 0;
  for (const p of manifests) {
    const report = checkManifest(p, heap);
    process.stdout.write(report.lines.join('\n') + '\n');
    for (const problem of report.problems) process.stdout.write(`  FAIL ${problem}\n`);
    failed += report.problems.length;
  }
  process.stdout.write(failed === 0 ? 'manifests: ok\n' : `manifests: ${failed} problem${failed === 1 ? '' : 's'}\n`);
  process.exit(failed === 0 ? 0 : 1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`check-manifests: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  });
}

