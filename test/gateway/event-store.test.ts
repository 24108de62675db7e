/**
 * `events` by month on both stores: migration 13 moves an existing table's
 * rows into months; the upkeep, on a virtual clock, makes months ahead and
 * archives and drops those past the retention; a resend of archived events
 * is acknowledged and not stored again, while a journal that started over
 * is still a conflict; archive files load back once, and a damaged one loads
 * nothing; two gateways writing the same events at once store them once.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Ingester } from '../../gateway/ingest/ingester.js';
import { ingestStore, RESEND_WINDOW } from '../../gateway/ingest/store.js';
import { ArchiveError, ARCHIVE_HEADER, checkArchive, loadArchive } from '../../gateway/store/event-archive.js';
import { addMonths, eventMonths, monthOf } from '../../gateway/store/event-partitions.js';
import { EventUpkeep, releaseMonth } from '../../gateway/store/event-upkeep.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate, MIGRATIONS } from '../../gateway/store/migrations.js';
import { VirtualTime } from '../lib/virtual-time.js';
import { BACKENDS, count, type Backend } from './backends.js';

function events(from: number, to: number, t = 1000): string {
  const list = [];
  for (let s = from; s <= to; s++) list.push(s % 2 ? { seq: s, t: t + s, type: 'vend-ok', slot: 'A1', price: 125 } : { seq: s, t: t + s, type: 'coin-in', coinType: 2, routing: 'tubes', value: 25 });
  return JSON.stringify({ v: 1, events: list });
}

const DAY = 86400000;

for (const backend of BACKENDS) {
  describe(`events by month: ${backend.name}`, function () {
    this.timeout(120000);
    let b: Backend;
    let dir: string;

    beforeEach(async () => {
      b = await backend.open();
      dir = mkdtempSync(join(tmpdir(), 'vf-archive-'));
    });

    afterEach(async () => {
      await b?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('migration 13 moves the rows of an existing events table into months, and the sales view still reads them', async () => {
      // The store as version 12 left it (operators, before events were partitioned).
      await migrate(b.db, 12);
      await addMachines(b.db, ['old-1', 'old-2']);
      const at = ['2025-03-31T23:59:59.999999Z', '2025-04-01T00:00:00Z', '2025-11-15T12:00:00Z'];
      for (let i = 0; i < at.length; i++) {
        await b.db.query(
          `INSERT INTO events (machine_id, seq, type, machine_time, body, received_at) VALUES ('old-1', $1, 'vend-ok', $1, $3::jsonb, $2)`,
          // The body is the event as it came (checked), its number, time and type included.
          [i + 1, at[i], JSON.stringify({ seq: i + 1, t: i + 1, type: 'vend-ok', slot: 'A1', price: 150 })],
        );
      }
      await b.db.query(`INSERT INTO events (machine_id, seq, type, machine_time, body) VALUES ('old-2', 7, 'boot', 7, '{"seq":7,"t":7,"type":"boot"}')`);
      const applied = await migrate(b.db);
      assert.deepEqual(applied, MIGRATIONS.filter((m) => m.version > 12).map((m) => m.version));
      const months = await eventMonths(b.db);
      const now = monthOf(Date.now());
      for (const m of ['2025-03', '2025-04', '2025-11', now, addMonths(now, 1)]) assert.ok(months.includes(m), `${m} in ${months.join(' ')}`);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 4);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events_202503'), 1, 'the last microsecond of March is March');
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events_202504'), 1);
      const sales = (await b.db.query<{ n: string; r: string }>(`SELECT count(*) AS n, sum(price) AS r FROM sales WHERE machine_id = 'old-1'`)).rows[0]!;
      assert.deepEqual([Number(sales.n), Number(sales.r)], [3, 450]);
      const marks = (await b.db.query<{ machine_id: string; high: string }>('SELECT machine_id, high FROM event_marks ORDER BY machine_id')).rows;
      assert.deepEqual(marks.map((m) => [m.machine_id, Number(m.high)]), [['old-1', 3], ['old-2', 7]]);
      assert.equal(await count(b.db, `SELECT count(*) AS n FROM pg_class WHERE relname = 'events_unpartitioned'`), 0);
      // What was stored before is a duplicate now, and a different event under its number a conflict.
      const acks: [number, number][] = [];
      const ingester = new Ingester(ingestStore(b.db), (_m, from, to) => acks.push([from, to]), { flushMs: 10000 });
      ingester.known(['old-1']);
      ingester.submit('fleet/old-1/events', Buffer.from(JSON.stringify({ v: 1, events: [{ seq: 2, t: 2, type: 'vend-ok', slot: 'A1', price: 150 }] })));
      ingester.submit('fleet/old-1/events', Buffer.from(JSON.stringify({ v: 1, events: [{ seq: 3, t: 3, type: 'boot' }] })));
      await ingester.flush();
      assert.deepEqual(acks, [[2, 2]], JSON.stringify(ingester.stats));
      assert.equal(ingester.stats.rejected['seq-conflict'], 1);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 4);
      await ingester.close();
    });

    it('on a virtual clock: months made ahead, a month past the retention archived and dropped; resends of it acknowledged, not stored again; loaded back once', async () => {
      await migrate(b.db);
      const ids = ['arc-a', 'arc-b', 'arc-w'];
      await addMachines(b.db, ids);
      const acks: [string, number, number][] = [];
      const ingester = new Ingester(ingestStore(b.db), (m, from, to) => acks.push([m, from, to]), { flushMs: 10000 });
      ingester.known(ids);
      const put = (m: string, body: string): void => ingester.submit(`fleet/${m}/events`, Buffer.from(body));
      put('arc-a', events(1, 50));
      put('arc-b', events(1, 10));
      // A machine far along its journal: a journal that started over is told apart from a late resend.
      put('arc-w', events(RESEND_WINDOW + 1, RESEND_WINDOW + 20));
      await ingester.flush();
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 80);
      const revenue = Number((await b.db.query<{ r: string }>('SELECT sum(price) AS r FROM sales')).rows[0]!.r);

      const real = monthOf(Date.now());
      const time = new VirtualTime(Date.now());
      const logs: string[] = [];
      const upkeep = new EventUpkeep(b.db, { retentionMonths: 1, archiveDir: dir, monthsAhead: 2, everyMs: 10 * DAY, clock: time, timers: time, onLog: (_l, m) => logs.push(m) });
      upkeep.start();
      const first = await upkeep.run();
      assert.deepEqual(first.dropped, []);
      let months = await eventMonths(b.db);
      for (const m of [real, addMonths(real, 1), addMonths(real, 2)]) assert.ok(months.includes(m), `${m} made ahead: ${months.join(' ')}`);
      // A month stays until it ended `retention` months ago: 40 days on, this month has not.
      await time.advance(40 * DAY);
      assert.deepEqual((await upkeep.run()).dropped, []);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 80);
      await time.advance(60 * DAY);
      const later = monthOf(time.now());
      await upkeep.run();
      months = await eventMonths(b.db);
      assert.ok(!months.includes(real), `${real} dropped: ${months.join(' ')}`);
      assert.ok(months.includes(addMonths(later, 2)), 'still made ahead as time goes on');
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 0);
      const file = join(dir, `events_${real.replace('-', '')}.csv.gz`);
      assert.ok(logs.some((l) => l.includes(`${real} archived to ${file} (80 events`)), logs.join('\n'));
      // The file: gzip CSV with a header, one line an event, and its sha256sum line beside it.
      const bytes = readFileSync(file);
      assert.equal(readFileSync(`${file}.sha256`, 'utf8'), `${createHash('sha256').update(bytes).digest('hex')}  events_${real.replace('-', '')}.csv.gz\n`);
      const lines = gunzipSync(bytes).toString('utf8').trimEnd().split('\n');
      assert.equal(lines[0], ARCHIVE_HEADER);
      assert.equal(lines.length, 81);
      assert.match(lines[1]!, /^arc-a,1,vend-ok,1001,\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z,"\{""t"": 1001, .*""price"": 125\}"$/);
      const rec = (await b.db.query<{ rows: string; sha256: string; loaded_at: string | null }>('SELECT rows, sha256, loaded_at FROM event_archives WHERE month = $1', [real])).rows[0]!;
      assert.deepEqual([Number(rec.rows), rec.sha256, rec.loaded_at], [80, createHash('sha256').update(bytes).digest('hex'), null]);

      // After a long outage the machines send again what they never heard acknowledged: the month holding it
      // is gone, yet it is a duplicate (acknowledged, not stored); what follows it is new.
      const before = ingester.stats.duplicates;
      put('arc-a', events(41, 50));
      put('arc-a', events(51, 55));
      put('arc-w', events(RESEND_WINDOW + 15, RESEND_WINDOW + 20));
      // A journal wiped and numbering from 1 again, far below what was stored: a conflict, never acknowledged.
      put('arc-w', JSON.stringify({ v: 1, events: [{ seq: 1, t: 3, type: 'boot' }] }));
      await ingester.flush();
      const recent = acks.slice(-2).sort();
      assert.deepEqual(recent, [
        ['arc-a', 41, 55],
        ['arc-w', RESEND_WINDOW + 15, RESEND_WINDOW + 20],
      ]);
      assert.equal(ingester.stats.duplicates - before, 10 + 6 + 1);
      assert.equal(ingester.stats.rejected['seq-conflict'], 1);
      assert.equal(await count(b.db, `SELECT count(*) AS n FROM events WHERE machine_id = 'arc-a'`), 5);
      assert.equal(await count(b.db, `SELECT count(*) AS n FROM events WHERE machine_id = 'arc-w'`), 0);

      // Damaged files load nothing, with the reason.
      const damaged = join(dir, 'damaged', `events_${real.replace('-', '')}.csv.gz`);
      const save = (data: Buffer, sum = true): void => {
        rmSync(join(dir, 'damaged'), { recursive: true, force: true });
        mkdirSync(join(dir, 'damaged'));
        writeFileSync(damaged, data);
        if (sum) writeFileSync(`${damaged}.sha256`, `${createHash('sha256').update(data).digest('hex')}  events_${real.replace('-', '')}.csv.gz\n`);
      };
      const refused = async (why: RegExp): Promise<void> => {
        await assert.rejects(loadArchive(b.db, damaged), (e: Error) => e instanceof ArchiveError && why.test(e.message));
        assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 5, 'nothing loaded');
      };
      const flipped = Buffer.from(bytes);
      flipped[Math.floor(bytes.length / 2)]! ^= 0x40;
      save(bytes);
      writeFileSync(damaged, flipped);
      await refused(/checksum mismatch/);
      save(bytes.subarray(0, bytes.length - 40));
      await refused(/cannot read it/);
      save(bytes, false);
      await refused(/no checksum file/);
      const text = gunzipSync(bytes).toString('utf8').split('\n');
      text[40] = text[40]!.replace(/^arc-a,(\d+),/, 'arc-a,x$1,');
      save(gzipSync(text.join('\n')));
      await refused(/line 41: bad sequence number/);
      text[40] = text[40]!.replace(/^arc-a,x(\d+),/, 'arc-a,$1,').replace(/,"\{/, ',"[{');
      save(gzipSync(text.join('\n')));
      await refused(/line 41: the body is not JSON/);
      save(gzipSync(ARCHIVE_HEADER.replace('body', 'bodies') + '\n'));
      await refused(/header/);
      await assert.rejects(checkArchive(join(dir, 'events.csv.gz')), ArchiveError);

      // The real file loads back once: the rows already there (none) and a second load add nothing.
      assert.deepEqual(await checkArchive(file), { month: real, rows: 80, sha256: rec.sha256 });
      const loaded = await loadArchive(b.db, file);
      assert.deepEqual(loaded, { month: real, rows: 80, loaded: 80 });
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 85);
      assert.deepEqual(await loadArchive(b.db, file), { month: real, rows: 80, loaded: 0 });
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 85);
      assert.equal(await count(b.db, `SELECT count(*) AS n FROM (SELECT machine_id, seq FROM events GROUP BY 1, 2 HAVING count(*) > 1) d`), 0, 'no (machine, seq) twice');
      assert.equal(Number((await b.db.query<{ r: string }>(`SELECT sum(price) AS r FROM sales WHERE machine_id <> 'arc-a' OR seq <= 50`)).rows[0]!.r), revenue, 'the sales as they were');
      // Loaded back, the month is held: upkeep leaves it until it is released, then takes it out again.
      const held = await upkeep.run();
      assert.deepEqual(held.held, [real]);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 85);
      assert.equal(await releaseMonth(b.db, real), true);
      const again = await upkeep.run();
      assert.deepEqual(again.dropped, [real]);
      assert.equal(again.archived[0]!.rows, 85);
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events'), 0);
      await upkeep.close();
      assert.equal(time.pending, 0, 'its timer cleared');
      await ingester.close();
    });

    it('two gateways writing the same events at the same moment store them once', async () => {
      await migrate(b.db);
      await addMachines(b.db, ['twin']);
      const other = await b.reopen();
      const stores = [ingestStore(b.db), ingestStore(other)];
      const acked: number[] = [];
      const ingesters = stores.map((s) => new Ingester(s, (_m, _from, to) => acked.push(to), { flushMs: 10000 }));
      for (const i of ingesters) i.known(['twin']);
      for (let round = 0; round < 20; round++) {
        const body = Buffer.from(events(round * 10 + 1, round * 10 + 10));
        for (const i of ingesters) i.submit('fleet/twin/events', body);
        await Promise.all(ingesters.map((i) => i.flush()));
      }
      assert.equal(await count(b.db, `SELECT count(*) AS n FROM events WHERE machine_id = 'twin'`), 200);
      assert.equal(await count(b.db, `SELECT count(*) AS n FROM (SELECT seq FROM events WHERE machine_id = 'twin' GROUP BY seq HAVING count(*) > 1) d`), 0);
      assert.equal(acked.length, 40, 'both acknowledge (the second finds them stored)');
      assert.equal(ingesters[0]!.stats.events + ingesters[1]!.stats.events, 200);
      for (const i of ingesters) await i.close();
    });
  });
}
