/**
 * Archive files of `events` months: `events_YYYYMM.csv.gz`, gzip of CSV
 * (RFC 4180) with a header line, one event a line, ordered by machine and
 * number, and beside it `events_YYYYMM.csv.gz.sha256` in sha256sum's format
 * (`sha256sum -c` checks it). Both are written to a temporary name, synced
 * and renamed, so a file under its own name is whole. Loading one back
 * checks the checksum and reads the whole file before writing anything, then
 * writes it in one transaction; rows already in `events` (a second load) are
 * skipped. docs/architecture.md "The event store".
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { isMachineId } from '../machine-id.js';
import type { Db, Queryable } from './db.js';
import { addMonths, ensureEventMonth, monthStart, partitionName, type Month } from './event-partitions.js';

export const ARCHIVE_HEADER = 'machine_id,seq,type,machine_time,received_at,body';
const FILE = /^events_(\d{4})(\d{2})\.csv\.gz$/;
const PAGE = 5000;

/** A file that cannot be loaded: what is wrong with it. Nothing was written. */
export class ArchiveError extends Error {}

export interface ArchiveFile {
  month: Month;
  file: string;
  rows: number;
  bytes: number;
  sha256: string;
  /** Highest number archived, per machine. */
  highest: Map<string, number>;
}

export function archiveFileName(m: Month): string {
  return `${partitionName(m)}.csv.gz`;
}

/** The month an archive file holds, from its name. */
export function monthOfArchive(file: string): Month | undefined {
  const r = FILE.exec(basename(file));
  return r ? `${r[1]}-${r[2]}` : undefined;
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One CSV line's fields (RFC 4180 quoting; a record never spans lines here: jsonb text escapes its newlines). */
function csvFields(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return undefined;
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
    } else {
      const c = line.indexOf(',', i);
      const end = c < 0 ? line.length : c;
      const v = line.slice(i, end);
      if (v.includes('"')) return undefined;
      out.push(v);
      i = end;
    }
    if (i === line.length) return out;
    if (line[i] !== ',') return undefined;
    i++;
  }
}

async function syncAndRename(tmp: string, file: string): Promise<void> {
  const fd = await open(tmp, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
  await rename(tmp, file);
}

/**
 * Write month `m` of `events` to `dir`, page by page in key order (memory
 * stays small whatever the month's size). The partition must exist.
 */
export async function writeArchive(db: Queryable, m: Month, dir: string): Promise<ArchiveFile> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, archiveFileName(m));
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const hash = createHash('sha256');
  let bytes = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const gz = createGzip({ level: 6 });
  const written = pipeline(gz, hashing, createWriteStream(tmp, { flags: 'wx', mode: 0o640 }));
  const put = async (text: string): Promise<void> => {
    if (!gz.write(text)) await new Promise<void>((r) => gz.once('drain', r));
  };
  const highest = new Map<string, number>();
  let rows = 0;
  try {
    await put(ARCHIVE_HEADER + '\n');
    let after: [string, string, string] | undefined;
    for (;;) {
      // The received time to the microsecond, in UTC: loading it back gives the same key.
      const r = await db.query<{ machine_id: string; seq: string; type: string; machine_time: string; at: string; body: string }>(
        `SELECT machine_id, seq::text AS seq, type, machine_time::text AS machine_time,
           to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, body::text AS body
         FROM ${partitionName(m)}
         WHERE $1::text IS NULL OR (machine_id, seq, received_at) > ($1::text, $2::bigint, $3::timestamptz)
         ORDER BY machine_id, seq, received_at LIMIT ${PAGE}`,
        after ? after : [null, null, null],
      );
      let text = '';
      for (const x of r.rows) {
        text += [x.machine_id, x.seq, x.type, x.machine_time, x.at, x.body].map(csvField).join(',') + '\n';
        highest.set(x.machine_id, Math.max(highest.get(x.machine_id) ?? 0, Number(x.seq)));
      }
      rows += r.rows.length;
      if (text) await put(text);
      if (r.rows.length < PAGE) break;
      const last = r.rows.at(-1)!;
      after = [last.machine_id, last.seq, last.at];
    }
    gz.end();
    await written;
    await syncAndRename(tmp, file);
  } catch (e) {
    gz.destroy();
    await written.catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  const sha256 = hash.digest('hex');
  const sumTmp = `${file}.sha256.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(sumTmp, 'wx', 0o640);
  try {
    await fh.writeFile(`${sha256}  ${basename(file)}\n`);
  } finally {
    await fh.close();
  }
  await syncAndRename(sumTmp, `${file}.sha256`);
  return { month: m, file, rows, bytes, sha256, highest };
}

interface ArchiveRow {
  machine: string;
  seq: number;
  type: string;
  time: number;
  at: string;
  body: string;
}

/** Check the checksum, then read every row (checked), handing them over in pages. Throws ArchiveError. */
async function readArchive(file: string, month: Month, onPage?: (rows: ArchiveRow[]) => Promise<void>): Promise<{ rows: number; sha256: string }> {
  let sum: string;
  try {
    sum = await readFile(`${file}.sha256`, 'utf8');
  } catch {
    throw new ArchiveError(`${basename(file)}: no checksum file ${basename(file)}.sha256 beside it`);
  }
  const want = /^([0-9a-f]{64}) [ *](.+)\n?$/.exec(sum);
  if (!want || want[2] !== basename(file)) throw new ArchiveError(`${basename(file)}.sha256 is not a sha256sum line for ${basename(file)}`);
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(file), async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) hash.update(c);
    });
  } catch (e) {
    throw new ArchiveError(`${basename(file)}: cannot read it: ${(e as Error).message}`);
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== want[1]) throw new ArchiveError(`${basename(file)}: checksum mismatch (the file is ${sha256}, ${basename(file)}.sha256 says ${want[1]}): damaged or truncated`);
  const from = Date.parse(monthStart(month));
  const to = Date.parse(monthStart(addMonths(month, 1)));
  const gunzip = createGunzip();
  const raw = createReadStream(file);
  const source = raw.pipe(gunzip);
  // A damaged gzip stream (truncated, a flipped bit) fails here; readline then sees the end of its input.
  let failed: Error | undefined;
  source.on('error', (e) => (failed = e));
  raw.on('error', (e) => {
    failed = e;
    gunzip.destroy(e);
  });
  const lines = createInterface({ input: source, crlfDelay: Infinity });
  let n = 0;
  let page: ArchiveRow[] = [];
  const bad = (why: string): never => {
    throw new ArchiveError(`${basename(file)} line ${n}: ${why}`);
  };
  try {
    for await (const line of lines) {
      n++;
      if (n === 1) {
        if (line !== ARCHIVE_HEADER) bad(`the header is not "${ARCHIVE_HEADER}"`);
        continue;
      }
      const f = csvFields(line);
      if (!f || f.length !== 6) bad('not six CSV fields');
      const [machine, seq, type, time, at, body] = f as [string, string, string, string, string, string];
      if (!isMachineId(machine)) bad(`bad machine id`);
      if (!/^[1-9][0-9]{0,9}$/.test(seq) || Number(seq) > 0xffffffff) bad('bad sequence number');
      if (!/^[a-z][a-z0-9-]{0,31}$/.test(type)) bad('bad type');
      if (!/^[0-9]{1,10}$/.test(time)) bad('bad machine time');
      const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(at) ? Date.parse(at) : NaN;
      if (!(ms >= from && ms < to)) bad(`received time ${at} is not in ${month}`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        bad('the body is not JSON');
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) bad('the body is not a JSON object');
      page.push({ machine, seq: Number(seq), type, time: Number(time), at, body });
      if (page.length >= PAGE) {
        await onPage?.(page);
        page = [];
      }
    }
  } catch (e) {
    if (e instanceof ArchiveError) throw e;
    throw new ArchiveError(`${basename(file)}: cannot read it: ${(e as Error).message}`);
  }
  if (failed) throw new ArchiveError(`${basename(file)}: cannot read it: ${failed.message}`);
  if (n === 0) throw new ArchiveError(`${basename(file)}: empty`);
  if (page.length > 0) await onPage?.(page);
  return { rows: n - 1, sha256 };
}

/** Check an archive file whole, without loading it. */
export async function checkArchive(file: string): Promise<{ month: Month; rows: number; sha256: string }> {
  const month = monthOfArchive(file) ?? fail(file);
  return { month, ...(await readArchive(file, month)) };
}

function fail(file: string): never {
  throw new ArchiveError(`${basename(file)}: an archive file is named events_YYYYMM.csv.gz`);
}

/**
 * Load an archive file back into `events` (its month's partition is made
 * again) and hold the month, so upkeep does not drop it again until it is
 * released. Rows whose (machine, seq) is in `events` already are skipped:
 * loading twice adds nothing. All or nothing.
 */
export async function loadArchive(db: Db, file: string): Promise<{ month: Month; rows: number; loaded: number }> {
  const month = monthOfArchive(file) ?? fail(file);
  await readArchive(file, month);
  await ensureEventMonth(db, month);
  let loaded = 0;
  const { rows } = await db.transaction(async (tx) => {
    // The month's row first: upkeep takes the same lock before it drops a month, and then sees it held.
    await tx.query(
      `INSERT INTO event_archives (month, loaded_at) VALUES ($1, now()) ON CONFLICT (month) DO UPDATE SET loaded_at = now()`,
      [month],
    );
    return readArchive(file, month, async (page) => {
      const ids = [...new Set(page.map((r) => r.machine))].sort();
      // The machines' marks, locked as ingest locks them: nothing is written for them meanwhile.
      await tx.query(
        `INSERT INTO event_marks (machine_id) SELECT m FROM unnest($1::text[]) WITH ORDINALITY AS t(m, i) ORDER BY i ON CONFLICT (machine_id) DO UPDATE SET high = event_marks.high`,
        [ids],
      );
      const r = await tx.query<{ machine_id: string; seq: string }>(
        `INSERT INTO events (machine_id, seq, type, machine_time, received_at, body)
         SELECT k.m, k.s, k.ty, k.t, k.at, k.b FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::timestamptz[], $6::jsonb[]) AS k(m, s, ty, t, at, b)
         WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.machine_id = k.m AND e.seq = k.s)
         ON CONFLICT DO NOTHING
         RETURNING machine_id, seq`,
        [page.map((x) => x.machine), page.map((x) => x.seq), page.map((x) => x.type), page.map((x) => x.time), page.map((x) => x.at), page.map((x) => x.body)],
      );
      loaded += r.rows.length;
      const high = new Map<string, number>();
      for (const x of r.rows) high.set(x.machine_id, Math.max(high.get(x.machine_id) ?? 0, Number(x.seq)));
      await tx.query(
        `UPDATE event_marks SET high = GREATEST(event_marks.high, t.h) FROM unnest($1::text[], $2::bigint[]) AS t(m, h) WHERE event_marks.machine_id = t.m`,
        [[...high.keys()], [...high.values()]],
      );
    });
  });
  return { month, rows, loaded };
}

/** The archive files in `dir` (names only checked, not contents), oldest month first. */
export async function archiveFiles(dir: string): Promise<{ month: Month; file: string; bytes: number }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: { month: Month; file: string; bytes: number }[] = [];
  for (const name of names.sort()) {
    const month = monthOfArchive(name);
    if (month && FILE.test(name)) out.push({ month, file: join(dir, name), bytes: (await stat(join(dir, name))).size });
  }
  return out;
}
