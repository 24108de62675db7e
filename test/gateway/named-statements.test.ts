/**
 * Named statements (gateway/store/db.ts, pglite-named.ts): ingest sends its
 * statements by name, parsed and planned once. On PGlite that is PREPARE and
 * EXECUTE with the values written as literals, so every awkward value must
 * come back exactly as it does with parameters, and none can change the
 * statement.
 */
import { strict as assert } from 'node:assert';
import type { Db } from '../../gateway/store/db.js';
import { literal } from '../../gateway/store/pglite-named.js';
import { BACKENDS, type Backend } from './backends.js';

const ROUND_TRIP = 'SELECT $1::text AS a, $2::text[] AS b, $3::bigint[] AS c, $4::boolean[] AS d, $5::json AS e, $6::bigint AS f, $7::jsonb[] AS g';

/** Values a machine or an operator can put in front of a statement (quotes, backslashes, array syntax, an attempt at a second statement). */
const AWKWARD: unknown[][] = [
  ["it's", ['a"b', 'c\\d', '{x,y}', 'NULL', '', ' spaced ', "'; DROP TABLE probe; --"], [1, 4294967295, 9007199254740991], [true, false], '{"k":"q\\"uote\\\\ and \\u00e9"}', 42, ['{"a":"\\\\"}', '{"b":[1,2]}']],
  ["\\'); DROP TABLE probe; --", [], [], [], '[]', 0, []],
  ['é ✓ 𝄞 $$ $1 E\'\\x00\'', [null, 'x'], [null], [null], 'null', -1, [null]],
  [null, null, null, null, null, null, null],
];

describe('named statements', function () {
  this.timeout(120000);

  it('writes a value as a literal only when it has a plain form (a NUL, a number that is not finite or an object goes as a parameter)', () => {
    assert.equal(literal("it's \\ here"), "E'it''s \\\\ here'");
    assert.equal(literal(['a"b', null, 3]), String.raw`E'{"a\\"b",NULL,3}'`);
    assert.equal(literal(null), 'NULL');
    for (const bad of ['a\u0000b', ['a\u0000'], Number.NaN, Number.POSITIVE_INFINITY, [Number.NaN], { a: 1 }, [{ a: 1 }], new Date(0)]) {
      assert.equal(literal(bad), undefined, `${JSON.stringify(bad)} has no literal form`);
    }
  });

  for (const backend of BACKENDS) {
    describe(backend.name, function () {
      let b: Backend;
      let db: Db;
      beforeEach(async () => {
        b = await backend.open();
        db = b.db;
        await db.exec('CREATE TABLE probe (n int)');
      });
      afterEach(async () => {
        await b.close();
      });

      it('gives back every awkward value exactly as a statement with parameters does, and runs nothing else', async () => {
        for (const params of AWKWARD) {
          const plain = await db.query(ROUND_TRIP, params);
          // Twice: the first use prepares it, the second only runs it.
          for (let i = 0; i < 2; i++) assert.deepEqual(await db.query(ROUND_TRIP, params, { name: 'round-trip' }), plain);
          await db.transaction(async (tx) => assert.deepEqual(await tx.query(ROUND_TRIP, params, { name: 'round-trip' }), plain));
        }
        assert.deepEqual((await db.query('SELECT count(*)::int AS n FROM probe')).rows, [{ n: 0 }], 'the table is still there');
      });

      it('refuses a text with a NUL as the store does with parameters (not a statement cut short)', async () => {
        const failure = async (f: () => Promise<unknown>): Promise<string> => {
          try {
            await f();
          } catch (e) {
            return String((e as { code?: string }).code ?? (e as Error).message);
          }
          return 'no error';
        };
        const params = ['before\u0000after', [], [], [], '[]', 1, []];
        const plain = await failure(() => db.query(ROUND_TRIP, params));
        assert.notEqual(plain, 'no error');
        assert.equal(await failure(() => db.query(ROUND_TRIP, params, { name: 'round-trip' })), plain);
      });

      it('keeps a statement made in a transaction that rolled back, and makes it once when two ask at once', async () => {
        await assert.rejects(
          db.transaction(async (tx) => {
            await tx.query('INSERT INTO probe (n) SELECT unnest($1::int[])', [[1, 2]], { name: 'probe-insert' });
            throw new Error('roll back');
          }),
          /roll back/,
        );
        await db.query('INSERT INTO probe (n) SELECT unnest($1::int[])', [[3]], { name: 'probe-insert' });
        const counted = await Promise.all([1, 2, 3].map((n) => db.query<{ n: number }>('SELECT count(*)::int + $1::int AS n FROM probe', [n], { name: 'probe-count' })));
        assert.deepEqual(
          counted.map((r) => r.rows[0]!.n),
          [2, 3, 4],
          'the rolled-back rows are gone, the later one is there, and the three at once all ran',
        );
      });

      it('refuses one name for two statements', async () => {
        await db.query('SELECT $1::int AS n', [1], { name: 'one-name' });
        await assert.rejects(db.query('SELECT $1::int + 1 AS n', [1], { name: 'one-name' }), /one-name|unique|two statements/i);
      });
    });
  }
});
