/**
 * vendctl's output for people: listings as tables built from the API's
 * answers (nothing shown as [object Object] or undefined, hostile text kept
 * on one line), progress written once per change off a terminal, and a
 * command followed to its outcome on an injected clock.
 */
import { strict as assert } from 'node:assert';
import { countedBody, followCommand, Progress, type FollowedCommand } from '../../tools/vendctl-progress.js';
import { renderListing, table } from '../../tools/vendctl-table.js';

class Sink {
  text = '';
  isTTY: boolean;
  constructor(tty: boolean) {
    this.isTTY = tty;
  }
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

describe('vendctl output: tables', () => {
  it('lays out a listing: a column per plain field, nested fields as a.b, null as -, the other fields below', () => {
    const text = renderListing({
      machines: [
        { id: 'vm-0001', online: true, operator: 'acme', firmware: '1.2.0', location: { lat: 39.7, lon: -104.9 }, tags: ['lobby', 'floor-2'] },
        { id: 'vm-0002', online: false, operator: 'acme', firmware: null, location: null, tags: [] },
      ],
      nextCursor: null,
    })!;
    const lines = text.split('\n');
    assert.match(lines[0]!, /^id +online +operator +firmware +location\.lat +location\.lon +tags$/);
    assert.match(lines[1]!, /^vm-0001 +true +acme +1\.2\.0 +39\.7 +-104\.9 +lobby,floor-2$/);
    assert.match(lines[2]!, /^vm-0002 +false +acme +- +- +- *$/);
    assert.equal(lines.at(-1), 'nextCursor: -');
    assert.doesNotMatch(text, /\[object Object\]|undefined|NaN/);
    // Columns line up: every row's second field starts where the header's does.
    const at = lines[0]!.indexOf('online');
    assert.equal(lines[1]!.indexOf('true'), at);
    assert.equal(lines[2]!.indexOf('false'), at);
  });

  it('titles each list when an answer has several, and says (none) for an empty one', () => {
    const text = renderListing({ commands: [], rollouts: [{ id: 'r1', state: 'done' }] })!;
    assert.equal(text, 'commands:\n(none)\nrollouts:\nid  state\nr1  done');
  });

  it('keeps hostile text to one clipped line a cell', () => {
    const t = table([{ name: `a\nb\u001b[2Jc${'x'.repeat(80)}` }]);
    const row = t.split('\n')[1]!;
    assert.equal(t.split('\n').length, 2);
    assert.doesNotMatch(row, /[\u0000-\u001f]/);
    assert.equal(row.length, 40);
    assert.ok(row.endsWith('~'));
  });

  it('leaves answers without a list of objects to JSON', () => {
    assert.equal(renderListing({ id: 'vm-0001', online: true }), undefined);
    assert.equal(renderListing('text'), undefined);
    assert.equal(renderListing({ values: [1, 2] }), undefined);
  });
});

describe('vendctl output: progress', () => {
  it('off a terminal writes the bar at each quarter once, and the steps once each', () => {
    const s = new Sink(false);
    const p = new Progress(s);
    for (let sent = 0; sent <= 1000; sent += 50) p.count('uploading', sent, 1000);
    const bars = s.text.trim().split('\n');
    assert.deepEqual(bars.map((l) => /(\d+) %/.exec(l)![1]), ['0', '25', '50', '75', '100']);
    assert.match(bars[4]!, /^uploading \[#{30}\] 100 % 1000\/1000 bytes$/);
    const w = new Sink(false);
    const q = new Progress(w);
    q.step('queued', 0);
    q.step('queued', 500);
    q.step('delivered', 900);
    q.done('applied');
    assert.equal(w.text, 'queued\ndelivered\napplied\n');
  });

  it('on a terminal redraws one line in place', () => {
    const s = new Sink(true);
    const p = new Progress(s);
    p.step('waiting', 1000);
    p.step('waiting', 2000);
    p.done('done');
    assert.equal(s.text, '\r\u001b[Kwaiting (1 s)\r\u001b[Kwaiting (2 s)\r\u001b[Kdone\n');
  });

  it('counts a body as it is read', async () => {
    const bytes = new Uint8Array(200_000).map((_, i) => i & 0xff);
    const seen: number[] = [];
    const body = countedBody(bytes, (n) => seen.push(n), 65536);
    const back = new Uint8Array(await new Response(body).arrayBuffer());
    assert.deepEqual(back, bytes);
    assert.deepEqual(seen, [65536, 131072, 196608, 200000]);
  });
});

describe('vendctl output: following a command', () => {
  it('polls until the command is final, backing off, each status change a step', async () => {
    let now = 0;
    const statuses = ['queued', 'queued', 'delivered', 'running', 'applied'];
    const asked: number[] = [];
    const get = async (path: string): Promise<FollowedCommand> => {
      assert.equal(path, '/commands/c%2F1');
      asked.push(now);
      return { id: 'c/1', type: 'audit', status: statuses.shift()! };
    };
    const s = new Sink(false);
    const r = await followCommand(get, 'c/1', 60_000, new Progress(s), () => now, async (ms) => void (now += ms));
    assert.equal(r.final, true);
    assert.equal(r.command.status, 'applied');
    assert.deepEqual(asked, [0, 250, 750, 1750, 3750]);
    assert.equal(s.text, 'command c/1 (audit) queued: the machine has not taken it yet\ncommand c/1 (audit) delivered: waiting for the machine to act\ncommand c/1 (audit) running on the machine\ncommand c/1 (audit): applied\n');
  });

  it('gives up after its time, saying the status it last saw', async () => {
    let now = 0;
    const s = new Sink(false);
    const r = await followCommand(async () => ({ id: 'c1', type: 'vend', status: 'delivered' }), 'c1', 5000, new Progress(s), () => now, async (ms) => void (now += ms));
    assert.equal(r.final, false);
    assert.equal(now, 5000);
    assert.match(s.text, /command c1 \(vend\) still delivered after 5 s\n$/);
  });
});
