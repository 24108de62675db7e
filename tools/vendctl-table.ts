/**
 * vendctl's listings as text tables for people; `--json` gives the API's
 * answer as it came, for scripts. The table is built from the answer itself
 * (its list of objects, one row each, a column per plain field), so a field
 * the API gains shows up without a change here.
 */

/** Listing commands: `vendctl CMD` (or `vendctl CMD ACTION` for the two-word ones) prints a table unless --json. */
export const LISTINGS: ReadonlySet<string> = new Set([
  'machines', 'slots', 'products', 'coins', 'sales', 'commands', 'audits', 'alerts', 'operators',
  'picklist', 'forecast', 'route', 'firmware list', 'rollout list', 'rollout machines', 'tokens list',
  'planogram show', 'planogram assign', 'planogram apply',
]);

const WIDEST = 40;

type Row = Record<string, unknown>;

const isRow = (v: unknown): v is Row => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One cell: scalars as they are, null as '-', short lists joined, anything bigger left to --json. */
function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.every((x) => typeof x !== 'object' || x === null) ? v.map(cell).join(',') : `[${v.length}]`;
  return '{..}';
}

function clip(s: string): string {
  const one = s.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return one.length > WIDEST ? `${one.slice(0, WIDEST - 1)}~` : one;
}

/** The columns: plain fields of the rows in the order first seen; a nested object's plain fields as `a.b`. */
function columns(rows: Row[]): string[] {
  const nested = new Set<string>();
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (isRow(v)) nested.add(k);
  const seen = new Set<string>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) {
      if (isRow(v)) {
        for (const [k2, v2] of Object.entries(v)) if (!isRow(v2)) seen.add(`${k}.${k2}`);
      } else if (!nested.has(k)) seen.add(k);
    }
  }
  return [...seen];
}

function value(r: Row, column: string): unknown {
  const dot = column.indexOf('.');
  if (dot < 0 || column in r) return r[column];
  const inner = r[column.slice(0, dot)];
  return isRow(inner) ? inner[column.slice(dot + 1)] : undefined;
}

/** Rows as an aligned table with a header line. */
export function table(rows: Row[]): string {
  if (rows.length === 0) return '(none)';
  const cols = columns(rows);
  const cells = rows.map((r) => cols.map((c) => clip(cell(value(r, c)))));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (parts: string[]): string => parts.map((p, i) => p.padEnd(width[i]!)).join('  ').trimEnd();
  return [line(cols), ...cells.map(line)].join('\n');
}

/**
 * An API answer as text: its lists of objects as tables (titled by their key
 * when there is more than one), then its other plain fields as `key: value`.
 * Undefined when the answer holds no list of objects: print it as JSON.
 */
export function renderListing(answer: unknown): string | undefined {
  if (Array.isArray(answer)) return answer.every(isRow) ? table(answer) : undefined;
  if (!isRow(answer)) return undefined;
  const lists = Object.entries(answer).filter(([, v]) => Array.isArray(v) && v.every(isRow)) as [string, Row[]][];
  if (lists.length === 0) return undefined;
  const out: string[] = [];
  for (const [k, rows] of lists) {
    if (lists.length > 1) out.push(`${k}:`);
    out.push(table(rows));
  }
  const rest = Object.entries(answer).filter(([k, v]) => !lists.some(([l]) => l === k) && !isRow(v));
  if (rest.length > 0) out.push('', ...rest.map(([k, v]) => `${k}: ${clip(cell(v))}`));
  return out.join('\n');
}
