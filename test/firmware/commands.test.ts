import * as Checkpoint from '../../firmware/journal/checkpoint.js';
import { REFUSED_TOO_LARGE } from '../../firmware/command/vocabulary.js';
import { formatVersion } from '../../firmware/update/version.js';
import { Commander, type CommandTarget } from '../../firmware/command/commander.js';
import { HmacSha256 } from '../../firmware/crypto/hmac.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { R_COMMAND, R_COMMAND_REJECTED, R_KEY, RECORD_NAMES } from '../../firmware/journal/records.js';
import { Counter } from '../../firmware/journal/vocabulary.js';
import { describeRecord } from '../../firmware/uplink/describe.js';
import { encodeUtf8 } from '../../firmware/text/utf8.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';
import { deepEqual, equal, ok } from '../lib/assert.js';

const CODES = ['A1', 'A2', 'B1'];
const KEY = new Uint8Array(32).map((_, i) => i + 1);
const T0 = 1764000000;

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
  return s;
}

/** What the gateway sends: the header line with the signature, then the signed JSON. */
function signed(body: object, key = KEY, kid = 1): Uint8Array {
  const text = new Uint8Array(encodeUtf8(JSON.stringify(body)));
  const sig = hex(new HmacSha256(key).sign(text));
  const head = new Uint8Array(encodeUtf8(`VF1 ${kid} ${sig}\n`));
  const out = new Uint8Array(head.length + text.length);
  out.set(head);
  out.set(text, head.length);
  return out;
}

interface Bench {
  flash: FlashImage;
  journal: Journal;
  ledger: Ledger;
  commander: Commander;
  clock: { t: number; now(): number };
  /** The board's wall clock (Unix ms; undefined: the board does not know the time). */
  wall: { ms: number | undefined };
  calls: string[];
  prices: Int32Array;
  qty: Uint16Array;
}

function boot(flash = new FlashImage({ size: 16 * 1024, blockLength: 1024, writeAlign: 4 }), wall: { ms: number | undefined } = { ms: undefined }): Bench {
  const clock = { t: 0, now(): number { return this.t; } };
  const qty = new Uint16Array([5, 5, 0]);
  const prices = new Int32Array([100, 150, 200]);
  const capacity = new Uint16Array([10, 10, 10]);
  const ledger = new Ledger(qty, new Uint8Array(3), layoutHash(CODES), { prices, capacity });
  const journal = new Journal(flash, ledger, clock);
  journal.open();
  const calls: string[] = [];
  const target: CommandTarget = {
    journal,
    ledger,
    codes: CODES,
    maxQuantity: 5,
    wallClock: { now: () => wall.ms },
    canReboot: true,
    canAudit: true,
    audit: (issued) => {
      const read = ledger.auditReads + 1;
      journal.auditRead(read, issued);
      calls.push(`audit ${read}`);
      return read;
    },
    commandApplied: () => calls.push('applied'),
    remoteVend: (n, _issued, slot, quantity, price) => {
      calls.push(`vend ${n} ${CODES[slot]} x${quantity} at ${price}`);
      return 0;
    },
    report: () => calls.push('report'),
    reboot: () => calls.push('reboot'),
    update: (n, a) => {
      calls.push(`update ${n} ${formatVersion(a.version)} ${a.size} ${a.journal}${a.force ? ' force' : ''}${a.downgrade ? ' downgrade' : ''}`);
      return a.size > 1_000_000 ? REFUSED_TOO_LARGE : 0;
    },
  };
  return { flash, journal, ledger, commander: new Commander(target, 'vm-7', { kid: 1, key: KEY }), clock, wall, calls, prices, qty };
}

/** The journal's command outcomes and rejections, described as the gateway will see them. */
function outcomes(b: Bench): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  b.journal.log.readEvents(1, 1000, (type, seq, time, d, o, len) => {
    if (type === R_COMMAND || type === R_COMMAND_REJECTED) out.push(describeRecord(type, seq, time, d, o, len, CODES));
    return true;
  });
  return out;
}

const cmd = (n: number, type: string, args: object = {}, extra: object = {}): object => ({ machine: 'vm-7', n, type, issued: T0 + n, expires: T0 + n + 300, args, ...extra });

describe('remote commands on the machine', () => {
  it('update: takes a well-formed command to the updater, refuses bad arguments, and journals what the updater says', () => {
    const b = boot();
    const sha = 'ab'.repeat(32);
    const good = { version: '0.2.0', size: 5000, sha256: sha, journal: 1, source: 'mqtt' };
    b.commander.receive(signed(cmd(1, 'update', good)));
    b.commander.receive(signed(cmd(2, 'update', { ...good, size: 2_000_000, force: true })));
    const bad: object[] = [
      { ...good, version: '0.2' },
      { ...good, version: '256.0.0' },
      { ...good, size: 0 },
      { ...good, size: -5 },
      { ...good, size: 1.5 },
      { ...good, sha256: 'AB'.repeat(32) },
      { ...good, sha256: 'ab'.repeat(31) },
      { ...good, sha256: 42 },
      { ...good, journal: -1 },
      { ...good, journal: undefined },
      { ...good, source: 'http' },
      { ...good, force: 'yes' },
      { ...good, downgrade: 1 },
    ];
    bad.forEach((args, i) => b.commander.receive(signed(cmd(10 + i, 'update', args))));
    deepEqual(
      b.calls.filter((c) => c.startsWith('update')),
      ['update 1 0.2.0 5000 1', 'update 2 0.2.0 2000000 1 force'],
    );
    const o = outcomes(b);
    deepEqual(
      o.map((e) => [e['n'], e['command'], e['outcome'], e['reason'] ?? '']),
      [[1, 'update', 'applied', ''], [2, 'update', 'refused', 'too-large'], ...bad.map((_, i) => [10 + i, 'update', 'refused', 'bad-args'])],
    );
  });

  it('applies a signed price change once, journaled, and refuses the same command again', () => {
    const b = boot();
    b.commander.receive(signed(cmd(1, 'set-prices', { prices: { A1: 125, B1: 250 } })));
    equal(b.prices[0], 125);
    equal(b.prices[2], 250);
    equal(b.prices[1], 150);
    b.commander.receive(signed(cmd(1, 'set-prices', { prices: { A1: 999 } })));
    equal(b.prices[0], 125, 'a replay changes nothing');
    const o = outcomes(b);
    equal(o.length, 2);
    equal(o[0]!['type'], 'command');
    equal(o[0]!['outcome'], 'applied');
    equal(o[0]!['value'], 2);
    equal(o[1]!['type'], 'command-rejected');
    equal(o[1]!['reason'], 'replay');
  });

  it('turns away forged, wrongly keyed, malformed and misaddressed commands before parsing or applying them', () => {
    const b = boot();
    const good = signed(cmd(2, 'set-prices', { prices: { A1: 1 } }));
    const forged = good.slice();
    forged[forged.length - 3] ^= 1; // the body changed after signing
    b.commander.receive(forged);
    b.commander.receive(signed(cmd(3, 'lock'), new Uint8Array(32).fill(9)));
    b.commander.receive(signed(cmd(4, 'lock'), KEY, 2));
    b.commander.receive(new Uint8Array(encodeUtf8('{"machine":"vm-7","n":5,"type":"lock"}')));
    b.commander.receive(signed({ machine: 'vm-7', n: 6, type: 'lock', issued: 10, expires: 5 }));
    b.commander.receive(signed(cmd(7, 'lock', {}, { machine: 'vm-8' })));
    b.commander.receive(new Uint8Array(5000));
    equal(b.prices[0], 100);
    equal(b.ledger.locked, false);
    const reasons = outcomes(b).map((e) => e['reason']);
    equal(reasons.join(','), 'bad-signature,bad-signature,unknown-key,malformed,malformed,wrong-machine,oversized');
    equal(b.ledger.total[Counter.COMMANDS_REJECTED], 7);
  });

  it('refuses a command that expired, once the machine has learnt the time from a signed one', () => {
    const b = boot();
    b.commander.receive(signed(cmd(10, 'report')));
    equal(b.commander.wallNow(), T0 + 10);
    b.clock.t = 600 * 1000;
    b.commander.receive(signed(cmd(11, 'lock')));
    equal(b.ledger.locked, false);
    equal(outcomes(b)[1]!['reason'], 'expired');
    b.commander.receive(signed({ ...cmd(12, 'lock'), issued: T0 + 600, expires: T0 + 900 }));
    equal(b.ledger.locked, true);
  });

  it('never lets a stale command overwrite a newer one, and takes late ones within the window', () => {
    const b = boot();
    b.commander.receive(signed(cmd(20, 'set-prices', { prices: { A1: 300 } })));
    b.commander.receive(signed(cmd(18, 'set-prices', { prices: { A1: 111, A2: 222 } })));
    equal(b.prices[0], 300, 'A1 keeps the newer price');
    equal(b.prices[1], 222, 'A2 had no newer one');
    b.commander.receive(signed(cmd(17, 'set-prices', { prices: { A1: 5 } })));
    const o = outcomes(b);
    equal(o[1]!['outcome'], 'applied');
    equal(o[2]!['outcome'], 'stale');
    b.commander.receive(signed(cmd(18, 'lock')));
    equal(outcomes(b)[3]!['reason'], 'replay');
    // Far behind the window: too old to tell, refused.
    b.commander.receive(signed(cmd(60, 'report')));
    b.commander.receive(signed(cmd(19, 'report')));
    equal(outcomes(b)[5]!['reason'], 'replay');
  });

  it('restocks slot by slot, back in service, and refuses a restock beyond capacity as a whole', () => {
    const b = boot();
    b.ledger.fault[2] = 1;
    b.commander.receive(signed(cmd(30, 'restock', { slots: { B1: { qty: 8, capacity: 12, price: 180, sku: 4711 } } })));
    equal(b.qty[2], 8);
    equal(b.ledger.capacity[2], 12);
    equal(b.prices[2], 180);
    equal(b.ledger.sku[2], 4711);
    equal(b.ledger.fault[2], 0);
    b.commander.receive(signed(cmd(31, 'restock', { slots: { A1: { qty: 3 }, A2: { qty: 11 } } })));
    equal(b.qty[0], 5, 'nothing applied when one slot is wrong');
    const o = outcomes(b);
    equal(o[1]!['outcome'], 'refused');
    equal(o[1]!['reason'], 'bad-args');
  });

  it('checks every argument: unknown slots, wrong types, negative and huge numbers, unknown settings', () => {
    const b = boot();
    const bad: [string, object][] = [
      ['set-prices', { prices: { Z9: 100 } }],
      ['set-prices', { prices: { A1: -1 } }],
      ['set-prices', { prices: { A1: 1e12 } }],
      ['set-prices', { prices: { A1: '100' } }],
      ['set-prices', { prices: [] }],
      ['set-prices', {}],
      ['set-config', { sessionTimeoutMs: 10 }],
      ['set-config', { colour: 'red' }],
      ['set-config', { changePolicy: 'greedy' }],
      ['vend', { slot: 'A1', quantity: 0 }],
      ['vend', { slot: 'A1', quantity: 99 }],
      ['vend', { slot: "A1'; DROP TABLE events;--" }],
      ['rotate-key', { kid: 2, key: 'abcd' }],
    ];
    bad.forEach(([type, args], i) => b.commander.receive(signed(cmd(40 + i, type, args))));
    const o = outcomes(b);
    equal(o.length, bad.length);
    for (const e of o) equal(e['outcome'], 'refused', JSON.stringify(e));
    equal(b.prices[0], 100);
    equal(b.calls.filter((c) => c.startsWith('vend')).length, 0);
  });

  it('locks, changes settings, reports, asks for a vend and reboots through its target; an unknown type is unsupported', () => {
    const b = boot();
    b.commander.receive(signed(cmd(50, 'lock')));
    equal(b.ledger.locked, true);
    b.commander.receive(signed(cmd(51, 'set-config', { telemetryIntervalMs: 60000, changePolicy: 'overpay' })));
    equal(b.ledger.settings[1], 60000);
    equal(b.ledger.settings[4], 2);
    b.commander.receive(signed(cmd(52, 'unlock')));
    equal(b.ledger.locked, false);
    b.commander.receive(signed(cmd(53, 'report')));
    b.commander.receive(signed(cmd(54, 'vend', { slot: 'A2', quantity: 2 })));
    b.commander.receive(signed(cmd(55, 'reboot')));
    b.commander.receive(signed(cmd(56, 'make-coffee')));
    equal(b.calls.filter((c) => c !== 'applied').join(' | '), 'report | vend 54 A2 x2 at 150 | reboot');
    const o = outcomes(b);
    equal(o[o.length - 1]!['outcome'], 'unsupported');
  });

  it('reads the audit data on command: each read numbered and journaled once, a replay refused', () => {
    const b = boot();
    b.commander.receive(signed(cmd(60, 'audit')));
    b.commander.receive(signed(cmd(61, 'audit')));
    b.commander.receive(signed(cmd(61, 'audit')));
    equal(b.calls.filter((c) => c.startsWith('audit')).join(' | '), 'audit 1 | audit 2');
    equal(b.ledger.auditReads, 2);
    const o = outcomes(b);
    equal(o.map((e) => `${e['type']} ${e['outcome'] ?? e['reason']} ${e['value'] ?? ''}`).join(' | '), 'command applied 1 | command applied 2 | command-rejected replay ');
  });

  it('rotates the key: the new one is kept on flash (never sent), the old one refused, across a reboot', () => {
    const b = boot();
    const next = new Uint8Array(32).fill(0x5a);
    b.commander.receive(signed(cmd(60, 'rotate-key', { kid: 2, key: hex(next) })));
    equal(b.ledger.keyId, 2);
    let sent = false;
    b.journal.log.readEvents(1, 1000, (type) => {
      if (type === R_KEY) sent = true;
      return true;
    });
    ok(!sent, 'the key record is not an event');
    equal(RECORD_NAMES[R_KEY], 'key');
    b.commander.receive(signed(cmd(61, 'lock')));
    equal(b.ledger.locked, false, 'the old key no longer works');
    const again = boot(b.flash);
    equal(again.ledger.keyId, 2);
    again.commander.receive(signed(cmd(62, 'lock'), next, 2));
    equal(again.ledger.locked, true);
    again.commander.receive(signed(cmd(62, 'lock'), next, 2));
    equal(outcomes(again).pop()!['reason'], 'replay', 'the window survives the reboot');
    // 61 was turned away unverified, so it never counted as seen: signed properly now, it is late, and stale.
    again.commander.receive(signed(cmd(61, 'unlock'), next, 2));
    equal(outcomes(again).pop()!['outcome'], 'stale');
    equal(again.ledger.locked, true);
  });

  it('journals a burst of rejections, then counts the rest without writing them', () => {
    const b = boot();
    for (let i = 0; i < 100; i++) b.commander.receive(new Uint8Array(encodeUtf8(`VF1 1 ${'0'.repeat(64)}\n{}`)));
    const o = outcomes(b);
    equal(o.length, 8);
    equal(b.commander.stats.rejected, 100);
    equal(b.commander.stats.suppressed, 92);
    b.clock.t = 61 * 1000;
    b.commander.receive(new Uint8Array(encodeUtf8(`VF1 1 ${'0'.repeat(64)}\n{}`)));
    const last = outcomes(b).pop()!;
    equal(last['suppressed'], 92, 'the next record says how many were not written');
    equal(b.ledger.total[Counter.COMMANDS_REJECTED], 101);
  });
});

describe("the machine's wall clock", () => {
  /** A command issued at `issued` (Unix s), valid for `ttl` seconds. */
  const at = (n: number, issued: number, ttl = 120, type = 'report'): Uint8Array => signed({ machine: 'vm-7', n, type, issued, expires: issued + ttl, args: {} });
  const last = (b: Bench): Record<string, unknown> => outcomes(b).pop()!;

  it('takes commands issued over ten minutes on a board whose own clock runs 60 times faster than the wall clock', () => {
    // The simulated fleet: the board's ticks run 60x real time, the gateway signs with the real time.
    const b = boot(undefined, { ms: T0 * 1000 });
    for (let k = 0; k <= 20; k++) {
      b.clock.t = k * 30_000 * 60;
      b.wall.ms = (T0 + k * 30) * 1000;
      b.commander.receive(at(k + 1, T0 + k * 30));
      equal(last(b)['outcome'], 'applied', `command ${k + 1}, ${k * 30} s of wall time on: ${JSON.stringify(last(b))}`);
    }
    equal(b.commander.stats.rejected, 0);
    equal(b.commander.wallNow(), T0 + 600);
  });

  it('refuses an expired command however far back the board clock is set, and no command moves the time back, across a reboot', () => {
    const wall = { ms: T0 * 1000 as number | undefined };
    const b = boot(undefined, wall);
    b.commander.receive(at(1, T0 + 600, 300));
    equal(last(b)['outcome'], 'applied', 'the gateway may be ahead of the board: its signed time wins');
    // An unauthenticated time source (SNTP) is turned back an hour.
    wall.ms = (T0 - 3600) * 1000;
    equal(b.commander.wallNow(), T0 + 600, 'never earlier than the newest signed command');
    b.commander.receive(at(2, T0, 300));
    equal(last(b)['reason'], 'expired');
    // A signed command issued earlier is taken if it is still valid, but does not turn the clock back.
    b.commander.receive(at(3, T0 - 100, 1100));
    equal(last(b)['outcome'], 'applied');
    b.commander.receive(at(4, T0, 500));
    equal(last(b)['reason'], 'expired', 'command 3 did not revive command 4');
    const again = boot(b.flash, wall);
    again.commander.receive(at(5, T0, 500));
    equal(last(again)['reason'], 'expired', 'what signed commands taught survives a reboot');
    again.commander.receive(at(3, T0 - 100, 1100));
    equal(last(again)['reason'], 'replay');
  });

  it('refuses commands while the board clock is ahead, and takes them again once it is right (nothing is kept of it)', () => {
    const b = boot(undefined, { ms: (T0 + 7200) * 1000 });
    b.commander.receive(at(1, T0, 300));
    equal(last(b)['reason'], 'expired');
    b.wall.ms = (T0 + 10) * 1000;
    b.commander.receive(at(2, T0 + 5, 300));
    equal(last(b)['outcome'], 'applied');
  });

  it('keeps the newest signed time in checkpoints (version 6 on), and still reads a version 5 checkpoint', () => {
    const b = boot(undefined, { ms: T0 * 1000 });
    b.commander.receive(at(1, T0 + 600, 300));
    const cp = new Uint8Array(b.ledger.checkpointLength);
    const n = b.ledger.save(cp);
    equal(n, cp.length);
    equal(cp[0], Checkpoint.VERSION, 'the newest checkpoint version');
    const copy = new Ledger(new Uint16Array(3), new Uint8Array(3), layoutHash(CODES));
    ok(copy.load(cp, 0, n));
    equal(copy.wallFloor, T0 + 600);
    equal(copy.wallOffset, T0 + 600);
    equal(copy.commandHigh, 1);
    // The same books as version 5 wrote them: no clock state after the audit state (nor version 7's update state).
    const v5 = cp.slice(0, n - Checkpoint.CLOCK_STATE - Checkpoint.UPDATE_NONE);
    v5[0] = 5;
    const old = new Ledger(new Uint16Array(3), new Uint8Array(3), layoutHash(CODES));
    ok(old.load(v5, 0, v5.length), 'a version 5 checkpoint loads');
    equal(old.wallFloor, 0, 'version 5 did not keep it');
    equal(old.wallOffset, T0 + 600);
    equal(old.commandHigh, 1);
    deepEqual(Array.from(old.qty), Array.from(b.ledger.qty));
  });

  it('counts on from the newest command with its own clock while the board does not know the time (not synchronised, or still near 1970)', () => {
    for (const ms of [undefined, 5000, 86_400_000 * 365]) {
      const b = boot(undefined, { ms });
      equal(b.commander.wallNow(), 0, 'no time known yet');
      b.commander.receive(at(1, T0, 300));
      equal(last(b)['outcome'], 'applied');
      b.clock.t = 200_000;
      equal(b.commander.wallNow(), T0 + 200);
      b.commander.receive(at(2, T0 + 10, 300));
      equal(last(b)['outcome'], 'applied');
      b.clock.t = 600_000;
      b.commander.receive(at(3, T0 + 20, 300));
      equal(last(b)['reason'], 'expired', `board clock ${String(ms)}`);
    }
  });
});
