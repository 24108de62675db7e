/**
 * vendctl archive: the events months on the store and in archive files.
 * Works on the store directly (DATABASE_URL, or the embedded store in
 * DATA_DIR: stop the gateway first, PGlite takes one process), like
 * `token`: an operator on the database host loads files kept there.
 *
 *   vendctl archive list [--dir DIR]      months in the store, archived months, files in DIR
 *   vendctl archive check FILE            checksum and every row, nothing written
 *   vendctl archive load FILE             into events (once: a second load adds nothing); the month is held
 *   vendctl archive release YYYY-MM       upkeep may archive and drop the loaded month again
 */
import { join } from 'node:path';
import { openDb } from '../gateway/store/db.js';
import { ArchiveError, archiveFiles, checkArchive, loadArchive } from '../gateway/store/event-archive.js';
import { eventMonths, partitionName } from '../gateway/store/event-partitions.js';
import { releaseMonth } from '../gateway/store/event-upkeep.js';
import { migrate } from '../gateway/store/migrations.js';

export const ARCHIVE_USAGE = `  archive list [--dir DIR] | archive check FILE | archive load FILE | archive release YYYY-MM   (on the store: DATABASE_URL or DATA_DIR)`;

export async function archiveCommand(args: string[], flags: Map<string, string>, fail: (message: string, code?: number) => never): Promise<void> {
  const [, action, arg] = args;
  const dataDir = process.env['DATA_DIR'] ?? 'data';
  const dir = flags.get('dir') ?? process.env['EVENTS_ARCHIVE_DIR'] ?? join(dataDir, 'archive');
  const out = (s: string): void => void process.stdout.write(s + '\n');
  if (action === 'check') {
    if (!arg) fail('archive check FILE');
    try {
      const c = await checkArchive(arg);
      out(`${arg}: ${c.month}, ${c.rows} events, sha256 ${c.sha256}: sound`);
    } catch (e) {
      if (e instanceof ArchiveError) fail(e.message, 1);
      throw e;
    }
    return;
  }
  if (!['list', 'load', 'release'].includes(action ?? '')) fail(ARCHIVE_USAGE);
  const url = process.env['DATABASE_URL'];
  const db = await openDb(url ? { url } : { dataDir: join(dataDir, 'pglite') });
  try {
    await migrate(db);
    if (action === 'list') {
      out('in the store:');
      for (const m of await eventMonths(db)) {
        const n = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${partitionName(m)}`);
        out(`  ${m}  ${n.rows[0]!.n} events`);
      }
      const rec = await db.query<{ month: string; file: string | null; rows: string | null; archived_at: Date | null; loaded_at: Date | null }>(
        'SELECT month, file, rows, archived_at, loaded_at FROM event_archives ORDER BY month',
      );
      out('archived:');
      for (const r of rec.rows) {
        const when = r.archived_at ? `dropped ${r.archived_at.toISOString()}` : 'not dropped';
        out(`  ${r.month}  ${r.file ? `${r.rows} events in ${r.file}` : 'no file'}; ${when}${r.loaded_at ? `; loaded back ${r.loaded_at.toISOString()} (held)` : ''}`);
      }
      out(`files in ${dir}:`);
      for (const f of await archiveFiles(dir)) out(`  ${f.month}  ${f.file}  ${f.bytes} bytes`);
    } else if (action === 'load') {
      if (!arg) fail('archive load FILE');
      try {
        const r = await loadArchive(db, arg);
        out(`${arg}: ${r.rows} events, ${r.loaded} loaded (${r.rows - r.loaded} were there); ${r.month} held until: vendctl archive release ${r.month}`);
      } catch (e) {
        if (e instanceof ArchiveError) fail(`${e.message}; nothing loaded`, 1);
        throw e;
      }
    } else {
      if (!arg || !/^\d{4}-\d{2}$/.test(arg)) fail('archive release YYYY-MM');
      if (!(await releaseMonth(db, arg))) fail(`${arg} is not a month loaded back`, 1);
      out(`${arg} released: the gateway's upkeep archives and drops it again when it is past the retention`);
    }
  } finally {
    await db.close();
  }
}
