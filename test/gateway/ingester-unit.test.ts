/**
 * The ingester's timing on a virtual clock (test/lib/virtual-time.ts),
 * against a store that fails on cue the way a real one does: an outage
 * error (PostgreSQL unreachable: ECONNREFUSED and no answer to a ping; or
 * shutting down: SQLSTATE 57P01), a data error (SQLSTATE 22P05, what
 * PostgreSQL says of text jsonb cannot hold), a connection lost while the
 * store still answers. The store is the ingester's boundary (IngestStore);
 * the real one is tried against PGlite and PostgreSQL in ingest.test.ts,
 * faults.test.ts and poison.test.ts. Here: backoff doubling to its 2 s cap,
 * nothing lost or written twice when the store comes back, and a poisoned
 * batch split until the one bad event is alone, refused and acknowledged
 * while its neighbours are stored; in virtual time, so exactly and at once.
 */
import { strict as assert } from 'node:assert';
import { Ingester } from '../../gateway/ingest/ingester.js';
import type { MachineEvent, RefusedEvent } from '../../gateway/ingest/messages.js';
import type { EventMessage, IngestBatch, IngestStore, WriteCounts, WriteHooks } from '../../gateway/ingest/store.js';
import { VirtualTime } from '../lib/virtual-time.js';

/** An error as pg or PGlite throws it. */
const storeError = (message: string, code: string): Error => Object.assign(new Error(message), { code });
const UNREACHABLE = (): Error => storeError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED');
const SHUTTING_DOWN = (): Error => storeError('terminating connection due to administrator command', '57P01');
const RESET = (): Error => storeError('read ECONNRESET', 'ECONNRESET');
const UNTRANSLATABLE = (): Error => storeError('unsupported Unicode escape sequence', '22P05');

const key = (machine: string, seq: number): string => `${machine}/${seq}`;

/**
 * A fleet store in memory with the real one's contract: a write is all or
 * nothing, an event number is stored once (a resend is not inserted again).
 * `failure` decides, write by write, whether it throws and what.
 */
class FakeStore implements IngestStore {
  readonly events = new Map<string, MachineEvent>();
  readonly refused = new Map<string, RefusedEvent>();
  /** How many committed writes held each event or refused event (1 each: nothing written twice). */
  readonly written = new Map<string, number>();
  /** Every write tried: when (virtual time), how many events and refused events it held, whether it committed. */
  readonly writes: { at: number; events: string[]; refused: string[]; ok: boolean }[] = [];
  /** The store as a whole is down: writes fail with this, and a ping goes unanswered. */
  down: (() => Error) | undefined;
  /** Why this write fails (undefined: it does not). */
  failure: (batch: IngestBatch<EventMessage>) => Error | undefined = () => undefined;

  constructor(
    private readonly time: VirtualTime,
    private readonly machines: string[],
  ) {}

  async knownMachines(ids: readonly string[]): Promise<string[]> {
    if (this.down) throw this.down();
    return ids.filter((id) => this.machines.includes(id));
  }

  async ping(): Promise<boolean> {
    return this.down === undefined;
  }

  async write<M extends EventMessage>(batch: IngestBatch<M>, hooks: WriteHooks<M>): Promise<WriteCounts> {
    const events = batch.messages.flatMap((m) => m.events.map((e) => key(m.machine, e.seq)));
    const refused = batch.messages.flatMap((m) => m.refused.map((r) => key(m.machine, r.seq)));
    // An ingester that writes without end would never let the event loop turn (this store answers at once):
    // stopped here, the test fails on its bound instead of hanging.
    if (this.writes.length >= 1000) return new Promise<never>(() => {});
    const error = this.down?.() ?? this.failure(batch);
    this.writes.push({ at: this.time.now(), events, refused, ok: error === undefined });
    if (error) throw error;
    const counts = { inserted: 0, refused: 0 };
    for (const m of batch.messages) {
      for (const e of m.events) {
        const k = key(m.machine, e.seq);
        const stored = this.events.get(k);
        if (stored && JSON.stringify(stored) !== JSON.stringify(e)) hooks.conflict(m, `${k} differs`);
        if (stored) continue;
        this.events.set(k, e);
        this.written.set(k, (this.written.get(k) ?? 0) + 1);
        counts.inserted++;
      }
      for (const r of m.refused) {
        const k = key(m.machine, r.seq);
        if (this.refused.has(k)) continue;
        this.refused.set(k, r);
        this.written.set(k, (this.written.get(k) ?? 0) + 1);
        counts.refused++;
      }
    }
    return counts;
  }
}

/** An event message as the firmware publishes it (docs/uplink.md). */
function events(from: number, to: number): Buffer {
  const list = [];
  for (let s = from; s <= to; s++) list.push({ seq: s, t: 1000 + s, type: 'coin-in', coinType: 2, routing: 'tubes', value: 25 });
  return Buffer.from(JSON.stringify({ v: 1, events: list }));
}

/** The ingester on virtual time with a fake store; acknowledgements collected as [machine, from, to]. */
function setup(machines = ['vm-1', 'vm-2', 'vm-3']): { time: VirtualTime; store: FakeStore; ingester: Ingester; acks: [string, number, number][]; logs: string[] } {
  const time = new VirtualTime();
  const store = new FakeStore(time, machines);
  const acks: [string, number, number][] = [];
  const logs: string[] = [];
  const ingester = new Ingester(store, (machine, from, to) => acks.push([machine, from, to]), {
    clock: time,
    timers: time,
    onLog: (level, message) => logs.push(`${level}: ${message}`),
  });
  return { time, store, ingester, acks, logs };
}

/** Each machine's numbers from..to acknowledged exactly once, and nothing else. */
function assertAckedOnce(acks: [string, number, number][], expected: Record<string, [number, number]>): void {
  const seen = new Map<string, number>();
  for (const [machine, from, to] of acks) for (let s = from; s <= to; s++) seen.set(key(machine, s), (seen.get(key(machine, s)) ?? 0) + 1);
  const want = new Map<string, number>();
  for (const [machine, [from, to]] of Object.entries(expected)) for (let s = from; s <= to; s++) want.set(key(machine, s), 1);
  assert.deepEqual([...seen].sort(), [...want].sort(), 'every event acknowledged once');
}

describe('ingester timing, on a virtual clock against a store that fails on cue', () => {
  for (const outage of [
    { name: 'PostgreSQL unreachable (ECONNREFUSED, no answer to a ping)', error: UNREACHABLE },
    { name: 'PostgreSQL shutting down (SQLSTATE 57P01)', error: SHUTTING_DOWN },
  ]) {
    it(`backs off 250 ms doubling to the 2 s cap while the store is down (${outage.name}), then stores everything once`, async () => {
      const { time, store, ingester, acks, logs } = setup();
      store.down = outage.error;
      ingester.known(['vm-1', 'vm-2']);
      ingester.submit('fleet/vm-1/events', events(1, 5));
      ingester.submit('fleet/vm-2/events', events(1, 3));
      await time.until('seven tries', () => store.writes.length >= 7, 10000);
      const gaps = store.writes.slice(1).map((w, i) => w.at - store.writes[i]!.at);
      assert.deepEqual(gaps, [250, 500, 1000, 2000, 2000, 2000], 'the wait doubles from 250 ms and stops at maxRetryMs');
      assert.ok(store.writes.every((w) => !w.ok));
      assert.deepEqual(acks, [], 'nothing acknowledged while nothing is stored');
      assert.equal(ingester.stats.refusedEvents, 0, 'nothing refused for an outage');
      assert.deepEqual(ingester.stats.rejected, {});
      assert.equal(ingester.health().storeAvailable, false);
      assert.equal(logs.filter((l) => l.startsWith('error: store unavailable')).length, 1, 'the outage is said once, when it starts');

      // The machines hear nothing and send again, and go on: resends are dropped as waiting, new events queue.
      ingester.submit('fleet/vm-1/events', events(1, 5));
      ingester.submit('fleet/vm-1/events', events(6, 8));
      ingester.submit('fleet/vm-3/events', events(1, 2));
      assert.equal(ingester.stats.waitingDuplicates, 1);
      await time.advance(700);
      const tries = store.writes.length;
      store.down = undefined;
      const back = time.now();
      await time.until('the held-back events committed', () => ingester.waiting === 0, 5000);
      const commit = store.writes.find((w) => w.ok)!;
      assert.ok(commit.at - back <= 2000, `stored ${commit.at - back} ms after the store came back (at most the 2 s cap)`);
      assert.equal(store.writes.length, tries + 1, 'one try once the store is back: everything in one batch');
      assert.deepEqual(
        [...store.events.keys()].sort(),
        ['vm-1/1', 'vm-1/2', 'vm-1/3', 'vm-1/4', 'vm-1/5', 'vm-1/6', 'vm-1/7', 'vm-1/8', 'vm-2/1', 'vm-2/2', 'vm-2/3', 'vm-3/1', 'vm-3/2'],
        'nothing lost',
      );
      assert.ok([...store.written.values()].every((n) => n === 1), 'nothing written twice');
      assertAckedOnce(acks, { 'vm-1': [1, 8], 'vm-2': [1, 3], 'vm-3': [1, 2] });
      assert.equal(ingester.health().storeAvailable, true);
      assert.ok(logs.some((l) => l.startsWith('info: store available again')));

      // Back to the batching delay: the next message goes out 10 ms after it came, not after a backoff.
      const at = time.now();
      ingester.submit('fleet/vm-2/events', events(4, 4));
      await time.until('the next message stored', () => store.events.has('vm-2/4'), 5000);
      assert.equal(store.writes.at(-1)!.at - at, 10);
      await ingester.close();
    });
  }

  it('splits a batch the store refuses until the poisoned event is alone, refuses it and stores its neighbours, without waiting', async () => {
    const { time, store, ingester, acks } = setup();
    ingester.known(['vm-1', 'vm-2', 'vm-3']);
    // The store cannot take vm-2's event 7 (the real one: text jsonb cannot hold); everything else it takes.
    store.failure = (batch) => (batch.messages.some((m) => m.machine === 'vm-2' && m.events.some((e) => e.seq === 7)) ? UNTRANSLATABLE() : undefined);
    ingester.submit('fleet/vm-1/events', events(1, 4));
    ingester.submit('fleet/vm-2/events', events(5, 9));
    ingester.submit('fleet/vm-3/events', events(1, 3));
    ingester.submit('fleet/vm-2/events', events(10, 11));
    const first = await time.until('all written', () => ingester.waiting === 0 && store.refused.size > 0, 1000);
    assert.equal(first, 10, 'the first try after the batching delay; every split written at once, no backoff');
    assert.ok(store.writes.every((w) => w.at === store.writes[0]!.at));

    // Each refused write held event 7, each smaller than the last, down to 7 alone.
    const refused = store.writes.filter((w) => !w.ok);
    assert.ok(refused.every((w) => w.events.includes('vm-2/7')));
    assert.ok(refused.length >= 3, `refused ${refused.length} times: the batch, the message, the event`);
    for (let i = 1; i < refused.length; i++) assert.ok(refused[i]!.events.length < refused[i - 1]!.events.length, 'smaller each time');
    assert.deepEqual(refused.at(-1)!.events, ['vm-2/7']);

    // Refused with the store's reason, recorded under its number; its neighbours stored; nothing twice.
    assert.deepEqual([...store.refused.keys()], ['vm-2/7']);
    assert.match(store.refused.get('vm-2/7')!.reason, /the store refused it: unsupported Unicode escape sequence \(SQLSTATE 22P05\)/);
    assert.deepEqual(
      [...store.events.keys()].sort(),
      ['vm-1/1', 'vm-1/2', 'vm-1/3', 'vm-1/4', 'vm-2/10', 'vm-2/11', 'vm-2/5', 'vm-2/6', 'vm-2/8', 'vm-2/9', 'vm-3/1', 'vm-3/2', 'vm-3/3'],
    );
    assert.ok([...store.written.values()].every((n) => n === 1), 'nothing written twice');
    assert.equal(ingester.stats.refusedEvents, 1);
    assert.equal(ingester.stats.rejected['bad-event'], 1);
    // Event 7 is acknowledged with the others: the machine never sends it again, and nothing waits behind it.
    assertAckedOnce(acks, { 'vm-1': [1, 4], 'vm-2': [5, 11], 'vm-3': [1, 3] });
    assert.equal(ingester.health().storeAvailable, true, 'a data error is not an outage');
    await ingester.close();
  });

  it('tries a write that fails while the store still answers 5 times (50 ms doubling), then refuses it as the data', async () => {
    const { time, store, ingester, acks } = setup();
    ingester.known(['vm-1']);
    // The connection drops whenever event 2 is written, yet the store answers pings: suspect, not an outage.
    store.failure = (batch) => (batch.messages.some((m) => m.events.some((e) => e.seq === 2)) ? RESET() : undefined);
    ingester.submit('fleet/vm-1/events', events(1, 3));
    await time.until('event 2 refused', () => store.refused.size === 1 && ingester.waiting === 0, 10000);
    const alone = store.writes.filter((w) => !w.ok && w.events.length === 1);
    assert.equal(alone.length, 6, 'event 2 alone: a first try and 5 more');
    assert.deepEqual(
      alone.slice(1).map((w, i) => w.at - alone[i]!.at),
      [50, 100, 200, 400, 800],
    );
    assert.deepEqual([...store.events.keys()], ['vm-1/1', 'vm-1/3']);
    assert.deepEqual([...store.refused.keys()], ['vm-1/2']);
    assert.equal(ingester.stats.storeErrors, 0, 'never taken for an outage');
    assertAckedOnce(acks, { 'vm-1': [1, 3] });
    await ingester.close();
  });

  it('leaves no timer behind when closed, with messages held back for an outage', async () => {
    const { time, store, ingester, acks } = setup();
    store.down = UNREACHABLE;
    ingester.known(['vm-1']);
    ingester.submit('fleet/vm-1/events', events(1, 2));
    await time.until('a retry waiting', () => store.writes.length >= 2, 5000);
    assert.ok(time.pending >= 2, 'the retry and the stall watchdog');
    await ingester.close();
    assert.equal(time.pending, 0, 'the retry and the watchdog cleared');
    assert.deepEqual(acks, []);
    // Shut: what arrives now is neither stored nor acknowledged (the machine sends it again).
    ingester.submit('fleet/vm-1/events', events(3, 3));
    assert.equal(ingester.stats.shed, 1);
  });
});

describe('ingester settlement (a source that acknowledges to its broker after the commit: AMQP)', () => {
  it('settles a message only once it is committed, not while the store is down; a split message once all its parts are; rejects at once', async () => {
    const { time, store, ingester } = setup();
    ingester.known(['vm-1', 'vm-2']);
    const settled: string[] = [];
    const on = (name: string) => (outcome: 'stored' | 'dropped'): void => void settled.push(`${name} ${outcome}`);
    store.down = UNREACHABLE;
    ingester.submit('fleet/vm-1/events', events(1, 3), on('a'));
    ingester.submit('fleet/vm-9/events', events(1, 1), on('unknown'));
    ingester.submit('fleet/vm-1/events', Buffer.from('not json'), on('garbage'));
    await time.until('a few failed tries', () => ingester.stats.storeErrors >= 3, 10000);
    assert.deepEqual(settled.sort(), ['garbage stored'], 'garbage is done with at once; the rest waits for the store');
    store.down = undefined;
    await time.until('stored', () => ingester.waiting === 0, 5000);
    assert.deepEqual(settled.sort(), ['a stored', 'garbage stored', 'unknown stored'], 'settled after the commit (the unknown machine when the store said so)');
    assert.ok(store.events.has('vm-1/3'));

    // A poisoned event splits its message into single events: settled once, after the last part.
    settled.length = 0;
    store.failure = (batch) => (batch.messages.some((m) => m.machine === 'vm-2' && m.events.some((e) => e.seq === 2)) ? UNTRANSLATABLE() : undefined);
    ingester.submit('fleet/vm-2/events', events(1, 4), on('split'));
    await time.until('written', () => ingester.waiting === 0 && store.refused.size > 0, 5000);
    assert.deepEqual(settled, ['split stored'], 'once, when every part is done with');
    assert.deepEqual([...store.events.keys()].filter((k) => k.startsWith('vm-2/')).sort(), ['vm-2/1', 'vm-2/3', 'vm-2/4']);

    await ingester.close();
    ingester.submit('fleet/vm-1/events', events(4, 4), on('late'));
    assert.deepEqual(settled.at(-1), 'late dropped', 'closed: let go, for the broker to hand over again');
  });
});
