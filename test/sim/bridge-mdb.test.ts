/**
 * The simulator's MDB port (hal-sim/guest/bridge-board.ts, `board.mdb.io`):
 * one class for every board, which finds its board in the options the MDB
 * link spreads from `board.mdb`. Words written go out on the board the port
 * was opened on, words received go to the port opened last, and a port
 * opened without the board's description is refused.
 */
import { strict as assert } from 'node:assert';
import { BridgeBoard } from '../../hal-sim/guest/bridge-board.js';

describe('the simulated board\'s MDB port', () => {
  it('is one class for every board, each port writing on its own board and hearing the port opened last', () => {
    const a = new BridgeBoard();
    const b = new BridgeBoard();
    assert.equal(a.mdb.io, b.mdb.io, 'no class made per board');
    const heardA: number[] = [];
    const portA = new a.mdb.io({ ...a.mdb, onReadable: (n) => heardA.push(n) });
    const portB = new b.mdb.io({ ...b.mdb, onReadable: () => assert.fail('b received nothing') });
    portA.write(0x108);
    portA.write(0x08);
    assert.deepEqual(a.takeOps(), [['tx', [0x108, 0x08]]]);
    assert.deepEqual(b.takeOps(), [], 'the other board sent nothing');
    portB.write(0x1ff + 0x200);
    assert.deepEqual(b.takeOps(), [['tx', [0x1ff]]], 'a word is 9 bits');
    a.apply(['rx', [0x00, 0x100]]);
    assert.deepEqual(heardA, [2]);
    assert.equal(portA.read(), 0x00);
    assert.equal(portA.read(), 0x100);
    assert.equal(portA.read(), undefined);
    // A port opened later takes the words over; closing the old one leaves it so.
    const heardLater: number[] = [];
    const later = new a.mdb.io({ ...a.mdb, onReadable: (n) => heardLater.push(n) });
    portA.close();
    a.apply(['rx', [0x0b]]);
    assert.deepEqual(heardA, [2]);
    assert.deepEqual(heardLater, [1]);
    assert.equal(later.read(), 0x0b);
    later.close();
    a.apply(['rx', [0x0b]]);
    assert.deepEqual(heardLater, [1], 'nobody listens once the last port closed');
  });

  it('refuses a port opened without the board\'s description', () => {
    const board = new BridgeBoard();
    assert.throws(() => new board.mdb.io({ onReadable: () => {} }), (e: unknown) => e instanceof TypeError && /new board\.mdb\.io\(\{ \.\.\.board\.mdb, onReadable \}\)/.test(e.message));
  });
});
