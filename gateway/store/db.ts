/**
 * The fleet store's connection: the same SQL runs on PostgreSQL (production,
 * `DATABASE_URL`) and on PGlite, PostgreSQL compiled to WebAssembly and run
 * in this process (the embedded default: nothing to install).
 */
import { PGlite } from '@electric-sql/pglite';
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { NamedStatements } from './pglite-named.js';

/** How a statement is sent. */
export interface QueryOptions {
  /**
   * A name for a statement sent over and over (ingest's, each batch): PostgreSQL then parses and plans it
   * once per connection instead of every time; on PGlite, once per store (pglite-named.ts). One name, one
   * text: the same name with another is refused.
   */
  name?: string;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptions): Promise<{ rows: R[] }>;
}

/** The driver's form of a statement: named (parsed once per connection) or not. */
function statement(sql: string, params: unknown[], options: QueryOptions | undefined): pg.QueryConfig {
  const values = params.map(arrayParam);
  return options?.name === undefined ? { text: sql, values } : { name: options.name, text: sql, values };
}

/**
 * A list of strings and numbers as the text the driver would make of it (pg's arrayString: every item
 * quoted, `{"a","b","1"}`), made with one join instead of a string added to per item: ingest and the
 * alert engine send lists of hundreds of machine ids and numbers with every batch, and that
 * concatenation (then flattened to be measured and written) was most of what the driver allocated
 * (issue 16). Anything else, or an item that needs escaping, is left to the driver as it was.
 */
export function arrayParam(v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  const list: readonly unknown[] = v;
  if (list.length === 0) return '{}';
  for (let i = 0; i < list.length; i++) {
    const x = list[i];
    if (typeof x === 'string') {
      if (x.includes('"') || x.includes('\\')) return v;
    } else if (typeof x !== 'number') return v;
  }
  return `{"${list.join('","')}"}`;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Run `fn` in one transaction; it commits if `fn` resolves, rolls back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  /** PGlite's API has none: made with PREPARE and run with EXECUTE (pglite-named.ts). */
  private readonly named = new NamedStatements();
  constructor(private readonly db: PGlite) {}

  async query<R>(sql: string, params: unknown[] = [], options?: QueryOptions): Promise<{ rows: R[] }> {
    if (options?.name !== undefined) {
      const r = await this.named.run<R>(this.db, options.name, sql, params);
      if (r) return r;
    }
    const r = await this.db.query<R>(sql, params);
    return { rows: r.rows };
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) =>
      fn({
        query: async <R>(sql: string, params: unknown[] = [], options?: QueryOptions) => {
          if (options?.name !== undefined) {
            const r = await this.named.run<R>(tx, options.name, sql, params);
            if (r) return r;
          }
          return { rows: (await tx.query<R>(sql, params)).rows };
        },
      }),
    );
  }

  async exec(sql: string): Promise<void> {
    await this.db.exec(sql);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

class PostgresDb implements Db {
  readonly kind = 'postgres' as const;
  constructor(private readonly pool: pg.Pool) {}

  async query<R>(sql: string, params: unknown[] = [], options?: QueryOptions): Promise<{ rows: R[] }> {
    const r = await this.pool.query(statement(sql, params, options));
    return { rows: r.rows as R[] };
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out client whose connection dies emits 'error' (the pool only listens while it is idle):
    // without a listener that is an uncaught exception. The transaction fails through its next query anyway.
    let broken: Error | undefined;
    const onError = (e: Error): void => {
      broken = e;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const out = await fn({ query: async <R>(sql: string, params: unknown[] = [], options?: QueryOptions) => ({ rows: (await client.query(statement(sql, params, options))).rows as R[] }) });
      await client.query('COMMIT');
      return out;
    } catch (e) {
      if (!broken) {
        await client.query('ROLLBACK').catch((r: Error) => {
          broken = r;
        });
      }
      throw e;
    } finally {
      client.off('error', onError);
      // A broken connection is destroyed, not returned to the pool.
      client.release(broken);
    }
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export interface OpenOptions {
  /** postgres://… for PostgreSQL; otherwise PGlite. */
  url?: string | undefined;
  /** PGlite only: a directory to keep the data in (default: in memory). */
  dataDir?: string | undefined;
  /** PostgreSQL only: schema to use (tests isolate themselves with one each). */
  schema?: string | undefined;
  /**
   * PostgreSQL only: a connection for reads (DATABASE_READ_URL, a streaming replica): every transaction is
   * read-only, so a write sent here by mistake fails on a primary too, and the schema is not created (a
   * replica cannot: it comes from the primary).
   */
  readOnly?: boolean | undefined;
}

export async function openDb(options: OpenOptions = {}): Promise<Db> {
  if (options.url && /^postgres(ql)?:\/\//.test(options.url)) {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`bad schema name ${schema}`);
    const settings = [...(schema ? [`-c search_path=${schema}`] : []), ...(options.readOnly ? ['-c default_transaction_read_only=on'] : [])];
    const pool = new pg.Pool({
      connectionString: options.url,
      max: 4,
      ...(settings.length > 0 ? { options: settings.join(' ') } : {}),
    });
    // Errors on idle clients (the server restarting) must not crash the gateway; the next query reconnects.
    pool.on('error', () => {});
    if (schema && !options.readOnly) {
      const c = await pool.connect();
      try {
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } finally {
        c.release();
      }
    }
    return new PostgresDb(pool);
  }
  if (options.url) throw new Error(`DATABASE_URL must be a postgres:// URL, got ${options.url}`);
  if (options.readOnly) throw new Error('a read-only store is a PostgreSQL replica: give its postgres:// URL');
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    return new PgliteDb(await PGlite.create(options.dataDir));
  }
  return new PgliteDb(await freshInMemory());
}

/**
 * In-memory stores opened in this process: the first is made by initdb; the second too, and its
 * untouched data directory is kept as a tarball that every later one starts from. initdb under
 * WebAssembly costs seconds; starting from the copy takes about half the CPU and a third of the time
 * (the test suite opens a store in most of its files, in one process); a process with one store
 * (npm start) keeps nothing.
 */
let inMemoryOpens = 0;
let freshDataDir: Promise<Blob | File> | undefined;

async function freshInMemory(): Promise<PGlite> {
  if (freshDataDir) {
    const template = await freshDataDir.catch(() => undefined);
    if (template) return PGlite.create({ loadDataDir: template });
  }
  const db = await PGlite.create();
  if (++inMemoryOpens === 2 && !freshDataDir) {
    // Dumped before anybody writes to it: the copy is what initdb made, nothing more.
    freshDataDir = db.dumpDataDir('none');
    await freshDataDir.catch(() => (freshDataDir = undefined));
  }
  return db;
}
