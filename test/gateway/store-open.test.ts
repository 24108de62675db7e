/**
 * In-memory stores (PGlite): after the second in a process, each starts from
 * a copy of a fresh data directory instead of running initdb again
 * (gateway/store/db.ts). Each must still be its own, empty database.
 */
import { strict as assert } from 'node:assert';
import { openDb, type Db } from '../../gateway/store/db.js';

describe('in-memory stores opened one after another', function () {
  this.timeout(120000);

  it('each starts empty and is its own, also once they start from the copy', async () => {
    const dbs: Db[] = [];
    const tables = async (db: Db): Promise<string[]> =>
      (await db.query<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")).rows.map((r) => r.t);
    try {
      // Three: the first two are made by initdb (unless this process made the copy before), the third comes from the copy.
      for (let i = 0; i < 3; i++) {
        const db = await openDb();
        assert.deepEqual(await tables(db), [], `store ${i + 1} starts empty`);
        await db.exec(`CREATE TABLE only_in_${i} (n int); INSERT INTO only_in_${i} VALUES (${i})`);
        dbs.push(db);
      }
      for (const [i, db] of dbs.entries()) {
        assert.deepEqual(await tables(db), [`only_in_${i}`], `store ${i + 1} holds its own table only`);
        assert.deepEqual((await db.query<{ n: number }>(`SELECT n FROM only_in_${i}`)).rows, [{ n: i }]);
      }
    } finally {
      for (const db of dbs) await db.close();
    }
  });
});
