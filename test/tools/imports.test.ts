/**
 * The import-edge check (tools/check-imports.ts): the tree imports only
 * along the edges its tables allow, and the tables hold no edge the tree has
 * dropped; then imports written on purpose across the lines (Node in the
 * firmware, a subfolder edge nobody chose, test/ from bench, a type import
 * of the gateway in the firmware, a computed import(), Node reached from a
 * file bundled for XS) each fail with file:line and the edge.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from '../../tools/check-manifests.js';
import { checkImports, formatProblem, importsOf, packageNames, repositoryImports, sourceFiles, type ImportSite } from '../../tools/check-imports.js';

const CLI = join(REPO, 'dist/tools/check-imports.js');

/** Imports of in-memory files, as the checker reads files on disk. */
function sitesOf(files: Record<string, string>): ImportSite[] {
  return Object.entries(files).flatMap(([file, text]) => importsOf(file, text));
}

/** What the checker says about these files, one line per problem. */
function problems(files: Record<string, string>): string[] {
  return checkImports(sitesOf(files), packageNames(), Object.keys(files)).problems.map(formatProblem);
}

describe('import edges (tools/check-imports.ts)', () => {
  it('the tree imports only along the allowed edges', () => {
    const files = sourceFiles();
    assert.ok(files.includes('firmware/main.ts') && files.includes('tools/check-imports.ts'), 'the walk found the sources');
    const report = checkImports(repositoryImports(REPO, files), packageNames(), files);
    assert.ok(report.edges.length > 100, `only ${report.edges.length} imports between units`);
    // On failure the list names each import: file:line: from -> to ('specifier'): why.
    assert.deepEqual(report.problems.map(formatProblem), []);
  });

  it('the tables allow no edge the tree no longer has', () => {
    const files = sourceFiles();
    const report = checkImports(repositoryImports(REPO, files), packageNames(), files);
    assert.deepEqual(report.unused, [], 'remove these from tools/check-imports.ts (node dist/tools/check-imports.js --print shows the edges as they are)');
  });

  it('reads static, export-from, dynamic and type-position imports, with their lines', () => {
    const sites = importsOf(
      'tools/x.ts',
      [
        "import a from 'node:fs';",
        "import type { B } from './b.js';",
        "export { c } from '../hal-sim/c.js';",
        "export type { D } from './d.js';",
        "const e = await import('./e.js');",
        "let f: import('./f.js').F;",
        'const g = await import(name);',
        "import h = require('./h.js');",
      ].join('\n'),
    );
    assert.deepEqual(
      sites.map((s) => [s.line, s.specifier, s.typeOnly]),
      [
        [1, 'node:fs', false],
        [2, './b.js', true],
        [3, '../hal-sim/c.js', false],
        [4, './d.js', true],
        [5, './e.js', false],
        [6, './f.js', true],
        [7, '(computed)', false],
        [8, './h.js', false],
      ],
    );
  });

  it('fails each import across the lines, naming file:line and the edge', () => {
    assert.deepEqual(
      problems({
        'firmware/vend/a.ts': "import { x } from '../money/x.js';\nimport { readFileSync } from 'node:fs';\nlet g: import('../../gateway/gateway.js').Gateway;",
        'firmware/money/x.ts': "export { y } from '../vend/a.js';",
        'bench/b.ts': "\nconst t = await import('../test/lib/assert.js');",
        'hal-sim/c.ts': "import type { Step } from '../tools/hil/scenario.js';",
        'gateway/d.ts': "import { MAX_COMMAND_BYTES } from '../firmware/command/command.js';\nimport { Controller } from '../firmware/vend/controller.js';\nimport { MachineHost } from '../hal-sim/host.js';",
        'test/e.test.ts': "import { vend } from '../bench/lib/bench-machine.js';\nimport { outageCatchUp } from '../bench/outage.js';",
        'tools/f.ts': "import pad from 'left-pad';\nconst m = await import(process.argv[2]!);\nimport { z } from '../../shared/z.js';",
        // COMPUTED_IMPORTS names this file: its computed import passes, a second file's does not.
        'bench/lib/heap-split.ts': 'const h = await import(process.argv[2]!);',
      }),
      [
        "tools/f.ts:1: tools -> ? ('left-pad'): neither Node, a package.json dependency nor a Moddable SDK module known to tools/check-manifests.ts",
        "tools/f.ts:2: tools -> ? ('(computed)'): a computed specifier cannot be checked",
        "tools/f.ts:3: tools -> ? ('../../shared/z.js'): outside the repository",
        "firmware/vend/a.ts:2: firmware -> (node) ('node:fs'): breaks the rule: firmware imports only firmware/ and the Moddable SDK: no Node, no npm, nothing of the host side",
        "firmware/vend/a.ts:3: firmware -> gateway ('../../gateway/gateway.js'): breaks the rule: firmware imports only firmware/ and the Moddable SDK: no Node, no npm, nothing of the host side",
        "firmware/money/x.ts:1: money -> vend ('../vend/a.js'): not an allowed edge (FIRMWARE_EDGES in tools/check-imports.ts)",
        "bench/b.ts:2: bench -> test ('../test/lib/assert.js'): breaks the rule: bench and tools do not import test/",
        "hal-sim/c.ts:1: hal-sim -> tools ('../tools/hil/scenario.js'): breaks the rule: hal-sim imports neither tools/ nor test/",
        "gateway/d.ts:2: gateway -> firmware/vend/controller.ts ('../firmware/vend/controller.js'): breaks the rule: gateway imports from firmware/ only the files GATEWAY_USES_FIRMWARE lists",
        "gateway/d.ts:3: gateway -> hal-sim ('../hal-sim/host.js'): not an allowed edge (FOLDER_EDGES in tools/check-imports.ts)",
        "test/e.test.ts:2: test -> bench ('../bench/outage.js'): breaks the rule: test imports from bench/ only bench/lib (what tests and bench share)",
        "firmware/vend/a.ts:2: firmware -> (node) ('node:fs'): runs under XS or on the board, so imports neither Node nor npm",
      ],
    );
  });

  it('follows run-time imports from what is bundled for XS, and lets type imports through', () => {
    assert.deepEqual(
      problems({
        'test/firmware/a.test.ts': "import { ok } from '../lib/check.js';\nimport type { Readable } from 'node:stream';",
        'test/lib/check.ts': "import { strict } from 'node:assert';",
        'test/lib/types.ts': "import { strict } from 'node:assert';",
      }),
      ["test/lib/check.ts:1: test -> (node) ('node:assert'): runs under XS or on the board, so imports neither Node nor npm (reached from test/firmware/a.test.ts)"],
    );
  });

  it('wants every firmware unit in its table', () => {
    assert.deepEqual(problems({ 'firmware/vend/a.ts': '', 'firmware/ledger/b.ts': "import { a } from '../vend/a.js';" }), [
      "firmware/ledger:1: ledger (''): a firmware unit missing from FIRMWARE_EDGES: add it with what it may import",
      "firmware/ledger/b.ts:1: ledger -> vend ('../vend/a.js'): not an allowed edge (FIRMWARE_EDGES in tools/check-imports.ts)",
    ]);
  });

  it('runs as a command: ok on the tree, --print lists the edges and the tables', () => {
    const ok = spawnSync(process.execPath, [CLI], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^imports: ok \(\d+ imports along \d+ allowed edges\)$/m);
    const print = spawnSync(process.execPath, [CLI, '--print'], { encoding: 'utf8' });
    assert.equal(print.status, 0, print.stderr);
    assert.match(print.stdout, /^ {2}gateway -> firmware\/command\/command\.ts +1 {2}e\.g\. gateway\/commands\/service\.ts:\d+$/m);
    assert.match(print.stdout, /^export const FIRMWARE_EDGES: Readonly<Record<string, readonly string\[\]>> = \{$/m);
    assert.match(print.stdout, /^ {2}money: \[\],$/m);
    const bad = spawnSync(process.execPath, [CLI, '--frobnicate'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /usage: node dist\/tools\/check-imports\.js \[--print\]/);
  });
});
