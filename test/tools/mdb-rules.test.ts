/**
 * docs/mdb.md's table of MDB rules cannot drift: every test it cites is a
 * test (an `it(...)` of that title in the named file), every scenario and
 * source file it names exists, every id is unique and well formed, a row
 * without a test says why (n/a, not kept), every `[MDB-...]` id the code or
 * the tests cite is in the table, and a test that says which rule it shows
 * is cited in that rule's row.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SELF = 'test/tools/mdb-rules.test.ts';

/** What the checker reads: a file of the repository by its path, undefined when there is none. */
type Source = (path: string) => string | undefined;

interface Row {
  id: string;
  line: number;
  /** Test file (repository path) -> titles cited. */
  cites: Map<string, string[]>;
}

const PREFIXES: Record<string, string> = { 'fw/': 'test/firmware/', 'sim/': 'test/sim/', 'tools/': 'test/tools/', 'scen/': 'test/scenarios/' };
const ID = /^MDB-(LINK|TIME|CHG|BILL|CL)-\d+$/;
const CITED_ID = /\[(MDB-[A-Z]+-\d+)\]/g;

/** The titles of a test file's `it(...)` calls, as the test runner sees them. */
function testTitles(text: string): Set<string> {
  const titles = new Set<string>();
  for (const m of text.matchAll(/\bit\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g)) titles.add(m[2]!.replace(/\\(.)/g, '$1'));
  return titles;
}

/** Everything wrong with the rules table of `doc`, one line a problem, and its rows. */
function checkRules(doc: string, source: Source, code: readonly [string, string][]): { problems: string[]; rows: Row[] } {
  const problems: string[] = [];
  const rows: Row[] = [];
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.startsWith('## Rules and the tests that show them'));
  if (start < 0) return { problems: ['docs/mdb.md: no "## Rules and the tests that show them" section'], rows };
  const titles = new Map<string, Set<string> | undefined>();
  const titlesOf = (path: string): Set<string> | undefined => {
    if (!titles.has(path)) {
      const text = source(path);
      titles.set(path, text === undefined ? undefined : testTitles(text));
    }
    return titles.get(path);
  };
  const seen = new Set<string>();
  for (let n = start + 1; n < lines.length && !lines[n]!.startsWith('## '); n++) {
    const line = lines[n]!;
    if (!line.startsWith('| MDB-')) continue;
    const at = `docs/mdb.md:${n + 1}`;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length !== 4) {
      problems.push(`${at}: ${cells.length} cells, expected id | rule | where | test`);
      continue;
    }
    const [id, rule, where, test] = cells as [string, string, string, string];
    if (!ID.test(id)) problems.push(`${at}: id ${id} is not MDB-(LINK|TIME|CHG|BILL|CL)-n`);
    if (seen.has(id)) problems.push(`${at}: id ${id} twice`);
    seen.add(id);
    if (rule.length < 10) problems.push(`${at}: ${id} states no rule`);
    // Source files; a function named beside one (`judge`) is not a file.
    for (const m of where.matchAll(/`([^`]+\.ts)`/g)) {
      const file = m[1]!;
      const path = file.includes('/') ? file : `firmware/mdb/${file}`;
      if (source(path) === undefined) problems.push(`${at}: ${id}: no file ${path}`);
    }
    const row: Row = { id, line: n + 1, cites: new Map() };
    rows.push(row);
    let file: string | undefined;
    let count = 0;
    for (const m of test.matchAll(/`([^`]+)`|“([^”]*)”/g)) {
      if (m[1] !== undefined) {
        if (file !== undefined && !file.endsWith('.json') && row.cites.get(file)!.length === 0) problems.push(`${at}: ${id}: ${file} cited without a test title`);
        const prefix = Object.keys(PREFIXES).find((p) => m[1]!.startsWith(p));
        if (prefix === undefined) {
          problems.push(`${at}: ${id}: ${m[1]} is not under fw/, sim/, tools/ or scen/`);
          file = undefined;
          continue;
        }
        file = PREFIXES[prefix]! + m[1]!.slice(prefix.length) + (prefix === 'scen/' ? '.json' : '');
        if (!row.cites.has(file)) row.cites.set(file, []);
        if (source(file) === undefined) problems.push(`${at}: ${id}: no file ${file}`);
        else if (prefix === 'scen/') count++;
        continue;
      }
      const title = m[2]!;
      if (file === undefined || file.endsWith('.json')) {
        problems.push(`${at}: ${id}: “${title}” names no test file before it`);
        continue;
      }
      row.cites.get(file)!.push(title);
      const known = titlesOf(file);
      if (known === undefined) continue;
      if (!known.has(title)) problems.push(`${at}: ${id}: ${file} has no test “${title}”`);
      else count++;
    }
    if (file !== undefined && !file.endsWith('.json') && row.cites.get(file)!.length === 0) problems.push(`${at}: ${id}: ${file} cited without a test title`);
    if (count === 0 && !/^\*\*(n\/a|not kept)\*\*/.test(test)) problems.push(`${at}: ${id}: no test cited, and no **n/a** or **not kept** saying why`);
  }
  if (rows.length === 0) problems.push('docs/mdb.md: the rules section has no rows');
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const [path, text] of code) {
    for (const m of text.matchAll(CITED_ID)) {
      if (!byId.has(m[1]!)) problems.push(`${path}: cites ${m[1]}, which docs/mdb.md does not list`);
    }
    // A test that names its rules right above it must be cited in their rows.
    for (const m of text.matchAll(/\/\/ ((?:\[MDB-[A-Z]+-\d+\](?:, )?)+)\s*\n\s*it\(\s*(['"`])((?:\\.|(?!\2)[^\\])*)\2/g)) {
      const title = m[3]!.replace(/\\(.)/g, '$1');
      for (const id of m[1]!.matchAll(CITED_ID)) {
        const row = byId.get(id[1]!);
        if (row && !(row.cites.get(path) ?? []).includes(title)) problems.push(`${path}: “${title}” shows ${id[1]}, whose row does not cite it`);
      }
    }
  }
  return { problems, rows };
}

function repoFile(path: string): string | undefined {
  const full = join(root, path);
  return existsSync(full) && statSync(full).isFile() ? readFileSync(full, 'utf8') : undefined;
}

/** The TypeScript sources that may cite rule ids: firmware, simulator, tests (this file's examples aside). */
function codeFiles(): [string, string][] {
  const out: [string, string][] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(root, dir))) {
      const path = `${dir}/${name}`;
      if (statSync(join(root, path)).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && path !== SELF) out.push([path, readFileSync(join(root, path), 'utf8')]);
    }
  };
  for (const dir of ['firmware', 'hal-sim', 'test']) walk(dir);
  return out;
}

describe('docs/mdb.md: the MDB rules and their tests', () => {
  it('cites only tests, files and scenarios that exist, and every rule id the code cites', () => {
    const { problems, rows } = checkRules(readFileSync(join(root, 'docs/mdb.md'), 'utf8'), repoFile, codeFiles());
    assert.deepEqual(problems, []);
    // Each section of the reference has its rules.
    for (const part of ['LINK', 'TIME', 'CHG', 'BILL', 'CL']) assert.ok(rows.filter((r) => r.id.startsWith(`MDB-${part}-`)).length >= 5, `rules of ${part}`);
  });

  it('reports a title that is not a test, an id twice, a row with no test, a missing file and an id the table lacks', () => {
    const files: Record<string, string> = {
      'test/firmware/a.test.ts': "it('does one thing', () => {});\nit(\"isn't shy\", () => {});\n// [MDB-CHG-1]\nit('is not cited', () => {});\n",
      'firmware/mdb/link.ts': '// [MDB-LINK-1] kept here\n// [MDB-LINK-9] and a rule the table lacks\n',
    };
    const doc = [
      '## Rules and the tests that show them',
      '| id | rule | where | test |',
      '|---|---|---|---|',
      "| MDB-LINK-1 | A rule that is long enough. | `link.ts` | `fw/a.test.ts` “does one thing”, “isn't shy” |",
      '| MDB-LINK-1 | The same id again, twice. | `nowhere.ts` | `fw/a.test.ts` “does two things” |',
      '| MDB-CHG-1 | A rule with no test at all. | — | nothing yet |',
      '| MDB-CL-2 | A rule in a missing file. | — | `fw/b.test.ts` “anything”; `scen/nope` |',
      '| MDB-XX-3 | A bad id for a rule. | — | **n/a**: not used |',
      '## Next section',
      '| MDB-BILL-1 | after the section: not read | — | — |',
    ].join('\n');
    const { problems } = checkRules(doc, (p) => files[p], Object.entries(files));
    assert.deepEqual(problems, [
      'docs/mdb.md:5: id MDB-LINK-1 twice',
      'docs/mdb.md:5: MDB-LINK-1: no file firmware/mdb/nowhere.ts',
      'docs/mdb.md:5: MDB-LINK-1: test/firmware/a.test.ts has no test “does two things”',
      'docs/mdb.md:5: MDB-LINK-1: no test cited, and no **n/a** or **not kept** saying why',
      'docs/mdb.md:6: MDB-CHG-1: no test cited, and no **n/a** or **not kept** saying why',
      'docs/mdb.md:7: MDB-CL-2: no file test/firmware/b.test.ts',
      'docs/mdb.md:7: MDB-CL-2: no file test/scenarios/nope.json',
      'docs/mdb.md:7: MDB-CL-2: no test cited, and no **n/a** or **not kept** saying why',
      'docs/mdb.md:8: id MDB-XX-3 is not MDB-(LINK|TIME|CHG|BILL|CL)-n',
      'test/firmware/a.test.ts: “is not cited” shows MDB-CHG-1, whose row does not cite it',
      'firmware/mdb/link.ts: cites MDB-LINK-9, which docs/mdb.md does not list',
    ]);
  });
});
