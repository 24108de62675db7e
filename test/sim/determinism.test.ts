/**
 * The simulator replays exactly from a seed, and the firmware behaves
 * identically in Node and in the XS engine: the same bytes on the MDB wire,
 * at the same microsecond.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { MachineHost } from '../../hal-sim/host.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { usMachine } from './fixtures.js';

async function session(target: TargetName, seed: number): Promise<{ digest: string; words: number; display: string }> {
  const hash = createHash('sha256');
  let words = 0;
  const host = await MachineHost.start(usMachine(), {
    target,
    seed,
    onWire: (dir, word, at) => {
      words++;
      hash.update(`${dir}${word}@${at};`);
    },
  });
  try {
    host.select('B4');
    await host.runUntilIdle();
    host.insertBill(100);
    await host.runUntilIdle();
    host.insertCoin(100);
    await host.runUntilIdle();
    host.jam('A1');
    host.select('A1');
    await host.runUntilIdle();
    host.insertCoin(25);
    await host.runUntilIdle();
    await host.run(31000);
    const display = host.rig.display.history.map((h) => `${h.atMs}:${h.lines.join('|')}`).join('\n');
    return { digest: hash.digest('hex'), words, display };
  } finally {
    await host.close();
  }
}

describe('determinism', () => {
  it('replays the same MDB trace from the same seed', async () => {
    const a = await session('sim', 7);
    const b = await session('sim', 7);
    assert.ok(a.words > 500, `${a.words} words on the wire`);
    assert.equal(a.digest, b.digest);
    assert.equal(a.display, b.display);
  });

  it('a different seed changes the physical timing', async () => {
    const a = await session('sim', 7);
    const c = await session('sim', 8);
    assert.notEqual(a.digest, c.digest);
  });

  it('the firmware under XS puts the same bytes on the wire at the same times as in Node', async () => {
    const node = await session('sim', 7);
    const xs = await session('xs', 7);
    assert.equal(xs.words, node.words);
    assert.equal(xs.digest, node.digest);
    assert.equal(xs.display, node.display);
  });
});
