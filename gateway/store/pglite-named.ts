/**
 * Named statements on PGlite. Its query() sends every statement to be parsed,
 * analysed and planned again, inside WebAssembly: for ingest's statements,
 * sent with every batch, that was about half of a batch's time (issue 16).
 * PGlite has no named statements in its API, so a named one is made with SQL
 * (PREPARE, once per store) and run with EXECUTE, its values written as
 * literals. A value that has no plain literal form here (a NUL in a text, a
 * number that is not finite, an object, a Date) sends the statement the
 * usual way instead, with parameters, so nothing can be taken differently.
 */

/** What of a PGlite (or one of its transactions) this needs. */
export interface SimpleQueries {
  exec(sql: string): Promise<{ rows: unknown[] }[]>;
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

/** Text as the body of an E'' literal: backslashes and quotes doubled (E'' reads backslashes whatever standard_conforming_strings says). */
function quoted(text: string): string {
  return `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/** An array in PostgreSQL's array syntax ({"a",NULL,3}), or undefined when an item has no plain form. */
function arrayText(items: readonly unknown[]): string | undefined {
  const out: string[] = [];
  for (const x of items) {
    if (x === null || x === undefined) out.push('NULL');
    else if (typeof x === 'number') {
      if (!Number.isFinite(x)) return undefined;
      out.push(String(x));
    } else if (typeof x === 'string' || typeof x === 'boolean' || typeof x === 'bigint') {
      out.push(`"${String(x).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`);
    } else return undefined;
  }
  return `{${out.join(',')}}`;
}

/** A parameter as an SQL literal for EXECUTE (typed by the prepared statement), or undefined. */
export function literal(v: unknown): string | undefined {
  if (v === null || v === undefined) return 'NULL';
  let text: string | undefined;
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') text = String(v);
  else if (typeof v === 'number') text = Number.isFinite(v) ? String(v) : undefined;
  else if (Array.isArray(v)) text = arrayText(v);
  // A NUL would end the query text: such a value goes as a parameter (where the store refuses it as before).
  if (text === undefined || text.includes('\u0000')) return undefined;
  return quoted(text);
}

/** The statements one PGlite store has prepared (they last as long as it does; PREPARE is not undone by a rollback). */
export class NamedStatements {
  /** By name: its text, and its PREPARE (shared: two callers at once must not both make it). */
  private readonly prepared = new Map<string, { sql: string; ready: Promise<unknown> }>();

  /**
   * Run `sql` as the named statement `name` through `q` (the store, or a transaction of it); undefined when
   * its values cannot go as literals, and the caller sends it with parameters.
   */
  async run<R>(q: SimpleQueries, name: string, sql: string, params: readonly unknown[]): Promise<{ rows: R[] } | undefined> {
    if (!NAME.test(name)) throw new Error(`bad statement name ${JSON.stringify(name)}`);
    const values: string[] = [];
    for (const p of params) {
      const v = literal(p);
      if (v === undefined) return undefined;
      values.push(v);
    }
    await this.prepare(q, name, sql);
    const results = await q.exec(`EXECUTE "${name}"${values.length > 0 ? `(${values.join(', ')})` : ''}`);
    return { rows: (results[results.length - 1]?.rows ?? []) as R[] };
  }

  private async prepare(q: SimpleQueries, name: string, sql: string): Promise<void> {
    const made = this.prepared.get(name);
    if (made !== undefined) {
      if (made.sql !== sql) throw new Error(`statement name ${name} is used for two statements`);
      // Made, or being made by another caller; one that failed is tried again here.
      if (await made.ready.then(() => true, () => false)) return;
    }
    const mine = { sql, ready: q.exec(`PREPARE "${name}" AS ${sql}`) };
    this.prepared.set(name, mine);
    try {
      await mine.ready;
    } catch (e) {
      if (this.prepared.get(name) === mine) this.prepared.delete(name);
      throw e;
    }
  }
}
