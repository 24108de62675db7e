/**
 * The ingester's record of event messages still waiting for the store: a
 * resend is recognised only when every one of its numbers waits as the same
 * event, refused events included (a message whose events were all refused
 * has no good events at all).
 */
import { strict as assert } from 'node:assert';
import { WaitingEvents, type EventMessage } from '../../gateway/ingest/waiting.js';

function message(from: number, to: number, refusedAt: number[] = [], type = 'coin-in'): EventMessage {
  const events: { seq: number; t: number; type: string }[] = [];
  const refused: { seq: number; t: number; type: string }[] = [];
  for (let seq = from; seq <= to; seq++) (refusedAt.includes(seq) ? refused : events).push({ seq, t: seq, type });
  return { machine: 'vm-1', from, to, events, refused };
}

describe('waiting event messages', () => {
  it('recognises a resend across messages, refused events included', () => {
    const w = new WaitingEvents();
    w.add(message(1, 5, [1, 2, 3, 4, 5]));
    w.add(message(6, 10, [8]));
    assert.equal(w.covers('vm-1', message(1, 5, [1, 2, 3, 4, 5])), true, 'all refused');
    assert.equal(w.covers('vm-1', message(3, 9, [3, 4, 5, 8])), true, 'across two messages');
    assert.equal(w.covers('vm-1', message(3, 11)), false, 'beyond what waits');
    assert.equal(w.covers('vm-1', message(6, 7, [], 'boot')), false, 'a different event under a waiting number');
    assert.equal(w.covers('vm-2', message(1, 2)), false, 'another machine');
  });

  it('forgets what went out, keeps what was put back', () => {
    const w = new WaitingEvents();
    const a = message(1, 5);
    const b = message(6, 10);
    w.add(a);
    w.add(b);
    w.settle([a, b], [b]);
    assert.equal(w.covers('vm-1', message(1, 5)), false);
    assert.equal(w.covers('vm-1', message(6, 10)), true);
  });
});
