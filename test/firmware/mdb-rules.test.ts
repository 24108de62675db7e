/**
 * Rules of ../shared/reference/mdb.md that no other test showed, one test a
 * rule (the ids are those of docs/mdb.md, "Rules and the tests that show
 * them"): the drivers against the simulated peripherals on a virtual clock,
 * with the wire's times kept, so a timing rule is checked on the wire. Runs
 * in Node and under XS.
 */
import { BillValidator, type BillCallbacks } from '../../firmware/mdb/bill.js';
import type { WordSerialOptions, WordSerialPort } from '../../firmware/board.js';
import { parseConfig } from '../../firmware/config.js';
import { MdbBus } from '../../firmware/mdb/bus.js';
import { CashlessReader, type CashlessCallbacks } from '../../firmware/mdb/cashless.js';
import { CoinChanger, ROUTE_CASHBOX, ROUTE_TUBES, type ChangerCallbacks } from '../../firmware/mdb/changer.js';
import { CHAR_TIME_MS, MAX_BLOCK, RESPONSE_TIMEOUT_MS, checksum } from '../../firmware/mdb/frame.js';
import { REPLY_CORRUPT, REPLY_DATA, REPLY_TIMEOUT, WordLink, type ReplyKind } from '../../firmware/mdb/link.js';
import type { PeripheralTiming } from '../../firmware/mdb/peripheral.js';
import { SimBillValidator } from '../../hal-sim/mdb/bill.js';
import { SimCashlessReader } from '../../hal-sim/mdb/cashless.js';
import { SimCoinChanger } from '../../hal-sim/mdb/changer.js';
import { deepEqual, equal, ok, throws } from '../lib/assert.js';
import { Wired } from '../lib/wired.js';

const TIMING: PeripheralTiming = { pollIntervalMs: 100, nonResponseMs: 2000, resetIntervalMs: 10000, justResetWaitMs: 500 };
const noLog = (): void => {};
const SLOT = { code: 'A1', product: 'Chips', price: 125, qty: 5 };
const USD_COINS = [
  { value: 5, tube: 20 },
  { value: 10, tube: 20 },
  { value: 25, tube: 20 },
  { value: 100, tube: null },
];

/** One word on the wire and when its last bit left (ms on the virtual clock). */
interface Timed {
  dir: 'vmc' | 'periph';
  word: number;
  at: number;
}

/** Keep the wire's times as well as Wired's words. */
function timedWire(w: Wired): Timed[] {
  const out: Timed[] = [];
  const plain = w.bus.trace;
  w.bus.trace = (dir, word, atUs) => {
    plain?.(dir, word, atUs);
    out.push({ dir, word, at: atUs / 1000 });
  };
  return out;
}

/** Times (ms) at which the VMC sent an address byte with this value (address | command). */
function commandTimes(wire: readonly Timed[], addressByte: number): number[] {
  return wire.filter((x) => x.dir === 'vmc' && x.word === (0x100 | addressByte)).map((x) => x.at);
}

/** The VMC's blocks to one device as hex strings (address byte first, checksum dropped). */
function blocks(w: Wired, address: number): string[] {
  const out: string[] = [];
  let cur: number[] | undefined;
  for (const x of w.wire) {
    if (x.dir !== 'vmc') continue;
    if (x.word & 0x100) {
      if (cur) out.push(hex(cur.slice(0, -1)));
      cur = (x.word & 0xf8) === address ? [x.word & 0xff] : undefined;
    } else if (cur) {
      // The VMC's own ACK/RET/NAK after a data answer is not part of its block.
      if (cur.length >= 2 && checksum(cur, 0, cur.length - 1) === cur[cur.length - 1]) {
        out.push(hex(cur.slice(0, -1)));
        cur = undefined;
      } else cur.push(x.word);
    }
  }
  if (cur && cur.length >= 2) out.push(hex(cur.slice(0, -1)));
  return out;
}

function hex(bytes: readonly number[]): string {
  return bytes.map((b) => (b < 16 ? '0' : '') + b.toString(16).toUpperCase()).join(' ');
}

class ChangerLog implements ChangerCallbacks {
  events: string[] = [];
  readonly changerReady = (): void => void this.events.push('ready');
  readonly changerLost = (): void => void this.events.push('lost');
  readonly coinDeposited = (type: number, value: number, routing: number): void =>
    void this.events.push(`coin ${type} ${value} ${routing === ROUTE_TUBES ? 'tubes' : routing === ROUTE_CASHBOX ? 'cashbox' : routing}`);
  readonly coinRejected = (type: number): void => void this.events.push(`rejected ${type}`);
  readonly coinsDispensedManually = (type: number, count: number): void => void this.events.push(`manual ${type}x${count}`);
  readonly changerStatus = (code: number): void => void this.events.push(`status ${code}`);
  readonly coinReturnPressed = (): void => void this.events.push('return lever');
  readonly payoutStarting = (): void => {};
}

function changerRig(level: 2 | 3 = 2): { w: Wired; wire: Timed[]; sim: SimCoinChanger; drv: CoinChanger; log: ChangerLog } {
  const w = new Wired();
  const wire = timedWire(w);
  const sim = new SimCoinChanger(w.scheduler, w.bus, { coins: USD_COINS, currency: 840, decimals: 2, level });
  const bus = new MdbBus(new WordLink({ serial: w.serial, timers: w.timers }), w.clock, w.timers);
  const log = new ChangerLog();
  const drv = new CoinChanger({ decimals: 2, currency: 840, timing: TIMING, log: noLog, ...log });
  bus.add(drv);
  return { w, wire, sim, drv, log };
}

class BillLog implements BillCallbacks {
  events: string[] = [];
  readonly billReady = (): void => void this.events.push('ready');
  readonly billLost = (): void => void this.events.push('lost');
  readonly billEscrowed = (_t: number, value: number): void => void this.events.push(`escrow ${value}`);
  readonly billStacked = (_t: number, value: number): void => void this.events.push(`stacked ${value}`);
  readonly billReturned = (_t: number, value: number): void => void this.events.push(`returned ${value}`);
  readonly billStatus = (code: number): void => void this.events.push(`status ${code}`);
}

function billRig(stackUs?: number): { w: Wired; sim: SimBillValidator; drv: BillValidator; log: BillLog } {
  const w = new Wired();
  const sim = new SimBillValidator(w.scheduler, w.bus, { bills: [100, 500, 1000], currency: 840, decimals: 2, ...(stackUs === undefined ? {} : { stackUs }) });
  const bus = new MdbBus(new WordLink({ serial: w.serial, timers: w.timers }), w.clock, w.timers);
  const log = new BillLog();
  const drv = new BillValidator({ decimals: 2, currency: 840, timing: { ...TIMING, nonResponseMs: 5000 }, log: noLog, ...log });
  bus.add(drv);
  return { w, sim, drv, log };
}

/**
 * A peripheral at address 0x40 (a universal satellite: no simulated device
 * sits there) that answers every block, and every RET, with `answer` as
 * data: the bytes, then their checksum with the mode bit.
 */
function scriptedAnswer(w: Wired, answer: readonly number[]): void {
  const words = [...answer, checksum(answer, 0, answer.length) | 0x100];
  let seen = 0;
  w.bus.attach({
    receive(word: number): void {
      if (word & 0x100) seen = (word & 0xf8) === 0x40 ? 1 : 0;
      else if (seen > 0) seen++;
      // The block is the address byte and its checksum; a RET asks for the answer again.
      if (seen === 2 || (seen > 2 && word === 0xaa)) w.bus.peripheralWrite(words, 500);
    },
  });
}

describe('MDB rules: link layer', () => {
  // [MDB-LINK-1]
  it('opens its port at 9600 baud, whatever the board description says', () => {
    const w = new Wired();
    const Base = w.serial.io;
    let baud: number | undefined;
    const serial: WordSerialPort = {
      baud: 19200,
      io: class extends Base {
        constructor(options: WordSerialOptions) {
          baud = options.baud;
          super(options);
        }
      },
    };
    void new WordLink({ serial, timers: w.timers });
    equal(baud, 9600);
  });

  // [MDB-LINK-4]
  it('takes an answer of 36 bytes with its checksum, and asks again (RET, then NAK) for a longer one', () => {
    for (const [length, kind] of [
      [MAX_BLOCK - 1, REPLY_DATA],
      [MAX_BLOCK, REPLY_CORRUPT],
    ] as const) {
      const w = new Wired();
      const answer = Array.from({ length }, (_, i) => (i * 7 + 1) & 0x7f);
      scriptedAnswer(w, answer);
      const link = new WordLink({ serial: w.serial, timers: w.timers });
      const outcomes: [ReplyKind, number][] = [];
      link.send(Uint8Array.of(0x43), 1, (k, _data, n) => void outcomes.push([k, n]));
      w.run(200);
      deepEqual(outcomes, [[kind, kind === REPLY_DATA ? length : 0]], `${length} data bytes`);
      const controls = w.wire.filter((x) => x.dir === 'vmc').slice(2).map((x) => x.word);
      deepEqual(controls, kind === REPLY_DATA ? [0x00] : [0xaa, 0xaa, 0xff], `the VMC's answer to ${length} data bytes`);
    }
  });

  // [MDB-LINK-7]
  it('takes silence as a NAK only once t-response has passed after its own last word', () => {
    const w = new Wired();
    const sim = new SimCoinChanger(w.scheduler, w.bus, { coins: USD_COINS, currency: 840, decimals: 2 });
    sim.injectFault({ kind: 'silence', count: 1 });
    const link = new WordLink({ serial: w.serial, timers: w.timers });
    let at = -1;
    const t0 = w.scheduler.nowMs;
    link.send(Uint8Array.of(0x0b), 1, (k) => {
      if (k === REPLY_TIMEOUT) at = w.scheduler.nowMs;
    });
    w.run(50);
    // POLL and its checksum leave the UART (two characters), then the peripheral has 5 ms.
    const earliest = 2 * CHAR_TIME_MS + RESPONSE_TIMEOUT_MS;
    ok(at - t0 >= earliest - 0.001, `timeout after ${(at - t0).toFixed(3)} ms, before ${earliest.toFixed(3)} ms`);
    // It waits two characters longer: an answer's first word is seen only once it has arrived (one
    // character), and the UART reports it a character later (docs/mdb.md, "Wire transcripts").
    ok(at - t0 <= earliest + 2 * CHAR_TIME_MS + 0.001, `timeout after ${(at - t0).toFixed(3)} ms, later than needed`);
  });

  // [MDB-LINK-8], [MDB-TIME-1]
  it('sends its blocks without gaps and answers every data block within t-response (changer init, deposits, a payout)', () => {
    const { w, wire, sim, drv } = changerRig(3);
    drv.setAccepting(true);
    w.run(1000);
    sim.injectFault({ kind: 'garble', command: 3, count: 1 });
    sim.insertCoin(25);
    sim.insertCoin(10);
    w.run(500);
    ok(drv.payoutValue(35, () => {}));
    w.run(3000);
    let answered = 0;
    for (let i = 0; i < wire.length; i++) {
      const x = wire[i]!;
      // The last word of a peripheral's data block (a lone ACK or NAK needs no answer).
      if (x.dir !== 'periph' || !(x.word & 0x100) || i === 0 || wire[i - 1]!.dir !== 'periph') continue;
      const next = wire[i + 1];
      ok(next !== undefined && next.dir === 'vmc' && !(next.word & 0x100), `an ACK, RET or NAK follows the data block ending at ${x.at} ms`);
      // The trace has the end of a character: the answer must start within 5 ms.
      ok(next!.at - CHAR_TIME_MS - x.at <= RESPONSE_TIMEOUT_MS, `answered ${(next!.at - CHAR_TIME_MS - x.at).toFixed(3)} ms after the data block`);
      answered++;
    }
    ok(answered >= 12, `data blocks answered: ${answered}`);
    // Within a VMC block each word follows the one before at once: one character time, no gap.
    let gaps = 0;
    for (let i = 1; i < wire.length; i++) {
      const x = wire[i]!;
      const prev = wire[i - 1]!;
      if (x.dir !== 'vmc' || prev.dir !== 'vmc' || x.word & 0x100) continue;
      ok(x.at - prev.at - CHAR_TIME_MS <= 1, `${(x.at - prev.at - CHAR_TIME_MS).toFixed(3)} ms between two words of a VMC block`);
      gaps++;
    }
    ok(gaps >= 40, `words checked: ${gaps}`);
  });
});

describe('MDB rules: timing', () => {
  // [MDB-TIME-3]
  it('polls each ready device every poll period, which the configuration keeps within 25..200 ms', () => {
    for (const bad of [24, 201]) throws(() => parseConfig({ slots: [SLOT], pollIntervalMs: bad }), /pollIntervalMs must be between 25 and 200/);
    for (const period of [25, 200]) {
      equal(parseConfig({ slots: [SLOT], pollIntervalMs: period }).pollIntervalMs, period);
      const w = new Wired();
      const wire = timedWire(w);
      const timing = { ...TIMING, pollIntervalMs: period };
      new SimCoinChanger(w.scheduler, w.bus, { coins: USD_COINS, currency: 840, decimals: 2 });
      new SimBillValidator(w.scheduler, w.bus, { bills: [100, 500], currency: 840, decimals: 2 });
      const bus = new MdbBus(new WordLink({ serial: w.serial, timers: w.timers }), w.clock, w.timers);
      const changer = new CoinChanger({ decimals: 2, currency: 840, timing, log: noLog, ...new ChangerLog() });
      const bill = new BillValidator({ decimals: 2, currency: 840, timing: { ...timing, nonResponseMs: 5000 }, log: noLog, ...new BillLog() });
      bus.add(changer);
      bus.add(bill);
      w.run(2000);
      ok(changer.ready && bill.ready);
      const from = w.scheduler.nowMs;
      w.run(5000);
      for (const poll of [0x0b, 0x33]) {
        const at = commandTimes(wire, poll).filter((t) => t >= from);
        ok(at.length >= 5000 / period - 2, `${at.length} POLLs of ${poll.toString(16)} in 5 s at ${period} ms`);
        for (let i = 1; i < at.length; i++) {
          const gap = at[i]! - at[i - 1]!;
          ok(gap >= 25 - 0.01 && gap <= 200 + 0.01, `POLL ${poll.toString(16)}: ${gap.toFixed(1)} ms after the previous one at ${period} ms`);
        }
      }
    }
  });
});

describe('MDB rules: coin changer', () => {
  // [MDB-TIME-5]
  it('waits 500 ms after the reset before the first TUBE STATUS, at power-up and after the changer resets itself', () => {
    for (const level of [2, 3] as const) {
      const { w, wire, sim, drv } = changerRig(level);
      w.run(1000);
      ok(drv.ready, `level ${level} ready`);
      const reset = commandTimes(wire, 0x08)[0]!;
      const setup = commandTimes(wire, 0x09)[0]!;
      const tubes = commandTimes(wire, 0x0a)[0]!;
      ok(setup - reset < 400, `level ${level}: SETUP ${setup - reset} ms after RESET, so the wait is the rule's`);
      ok(tubes - reset >= 500, `level ${level}: TUBE STATUS ${(tubes - reset).toFixed(1)} ms after RESET`);
      // The changer resets itself: "just reset" on a POLL starts the 500 ms.
      w.run(30000);
      sim.spontaneousReset();
      const before = commandTimes(wire, 0x0a).length;
      w.run(1500);
      ok(drv.ready, `level ${level} ready again`);
      const report = wire.find((x) => x.dir === 'periph' && x.at > wire[wire.length - 1]!.at - 1500 && (x.word & 0xff) === 0x0b)!;
      const again = commandTimes(wire, 0x0a)[before]!;
      ok(again - report.at >= 500 - 2 * CHAR_TIME_MS, `level ${level}: TUBE STATUS ${(again - report.at).toFixed(1)} ms after "just reset"`);
    }
  });

  // [MDB-CHG-5]
  it('reports coins paid out with the manual buttons, with the tube count, and credits nothing', () => {
    const { w, sim, drv, log } = changerRig();
    drv.setAccepting(true);
    w.run(1000);
    // 1 010 0001 00010010: two 10c coins paid by hand, 18 left in the tube.
    sim.report(0xa1, 18);
    w.run(500);
    deepEqual(log.events, ['ready', 'manual 1x2']);
    equal(drv.tubes[1], 18);
  });

  // [MDB-CHG-2]
  it('enables no token and credits none: SETUP credit FF is not money', () => {
    const w = new Wired();
    const sim = new SimCoinChanger(w.scheduler, w.bus, { coins: [...USD_COINS, { value: 0, tube: null, token: true }], currency: 840, decimals: 2 });
    const bus = new MdbBus(new WordLink({ serial: w.serial, timers: w.timers }), w.clock, w.timers);
    const log = new ChangerLog();
    const drv = new CoinChanger({ decimals: 2, currency: 840, timing: TIMING, log: noLog, ...log });
    bus.add(drv);
    drv.setAccepting(true);
    w.run(1000);
    equal(drv.credits[4], 0xff);
    equal(drv.values[4], 0);
    equal(sim.acceptMask, 0b01111, 'every coin but the token');
    // 01 00 0100: a token reported as deposited to the cash box anyway.
    sim.report(0x44, 0);
    ok(sim.insertCoin(25));
    w.run(500);
    deepEqual(log.events, ['ready', 'rejected 4', 'coin 2 25 tubes']);
  });

  // [MDB-CHG-4]
  it('takes the tube counts, not the full flags: a tube reported full with no coins has none', () => {
    const w = new Wired();
    // Capacity 0: every tube reads "full" with a count of 0, the faulty-sensor case.
    const sim = new SimCoinChanger(w.scheduler, w.bus, { coins: USD_COINS.map((c) => ({ ...c, tube: c.tube === null ? null : 0 })), tubeCapacity: 0, currency: 840, decimals: 2 });
    const bus = new MdbBus(new WordLink({ serial: w.serial, timers: w.timers }), w.clock, w.timers);
    const drv = new CoinChanger({ decimals: 2, currency: 840, timing: TIMING, log: noLog, ...new ChangerLog() });
    bus.add(drv);
    w.run(1000);
    ok(drv.ready);
    equal(drv.tubeFull, 0b0111, 'the changer says full');
    deepEqual(Array.from(drv.tubes.subarray(0, 4)), [0, 0, 0, 0]);
    let value = -1;
    ok(drv.payout([0, 0, 1, 0], (_p, v) => (value = v)));
    w.run(3000);
    equal(value, 0, 'nothing paid from a tube with no coins');
    equal(sim.paidOut.length, 0);
  });

  // [MDB-CHG-8]
  it('dispenses at most 15 coins of a type per DISPENSE', () => {
    const { w, sim, drv } = changerRig();
    w.run(1000);
    let value = -1;
    ok(drv.payout([18, 0, 0, 0], (_p, v) => (value = v)));
    w.run(8000);
    equal(value, 90);
    equal(sim.paidOut.length, 18);
    deepEqual(blocks(w, 0x08).filter((b) => b.startsWith('0D')), ['0D F0', '0D 30']);
  });

  // [MDB-CHG-5]
  it('credits no rejected coin and no slug', () => {
    const { w, sim, drv, log } = changerRig();
    drv.setAccepting(true);
    w.run(1000);
    // 01 11 0010: a 25c coin rejected; 001 00011: three slugs.
    sim.report(0x72, 20);
    sim.report(0x23);
    ok(sim.insertCoin(25));
    w.run(500);
    deepEqual(log.events, ['ready', 'rejected 2', 'coin 2 25 tubes']);
    equal(drv.tubes[2], 21);
  });
});

describe('MDB rules: bill validator', () => {
  // [MDB-BILL-5]
  it('credits bills stacked or sent to the recycler, and nothing for the other routes or insert attempts', () => {
    const { w, sim, drv, log } = billRig();
    drv.setAccepting(true, 1000);
    w.run(1000);
    ok(drv.ready);
    // 1 011 0001: a 5.00 bill to the recycler; 100 disabled bill rejected; 101 recycler manual fill;
    // 110 manual dispense; 111 recycler to cash box; 010 00011: three insert attempts while disabled.
    sim.report(0xb1, 0xc0, 0xd2, 0xe1, 0xf0, 0x43);
    w.run(500);
    deepEqual(log.events, ['ready', 'stacked 500']);
  });

  // [MDB-TIME-6]
  it('waits up to 30 s for the result of ESCROW: a bill stacked in 25 s is credited, no reset', () => {
    const { w, sim, drv, log } = billRig(25_000_000);
    drv.setAccepting(true, 1000);
    w.run(1000);
    ok(sim.insertBill(500));
    w.run(1000);
    drv.decide(true);
    w.run(40000);
    deepEqual(log.events, ['ready', 'escrow 500', 'stacked 500']);
    equal(w.wire.filter((x) => x.dir === 'vmc' && x.word === 0x130).length, 1, 'only the power-up RESET');
  });

  // [MDB-TIME-6]
  it('RESETs a validator that has not reported the bill 30 s after ESCROW; the stacker count says it was not stacked', () => {
    const { w, sim, drv, log } = billRig(40_000_000);
    drv.setAccepting(true, 1000);
    w.run(1000);
    ok(sim.insertBill(500));
    w.run(1000);
    drv.decide(true);
    w.run(29000);
    deepEqual(log.events, ['ready', 'escrow 500'], 'still waiting');
    w.run(3000);
    equal(w.wire.filter((x) => x.dir === 'vmc' && x.word === 0x130).length, 2, 'RESET once the 30 s are over');
    w.run(20000);
    deepEqual(log.events, ['ready', 'escrow 500', 'lost', 'returned 500', 'ready']);
    equal(sim.stacked, 0);
    equal(sim.billsReturned, 1, 'the reset handed the bill back');
    ok(drv.ready);
  });
});

describe('MDB rules: cashless reader', () => {
  // [MDB-CL-6]
  it('takes BEGIN SESSION funds FFFF as unknown, not as 655.35', () => {
    const w = new Wired();
    const sim = new SimCashlessReader(w.scheduler, w.bus, { funds: 1000, fundsUnknown: true, currency: 840, decimals: 2 });
    const bus = new MdbBus(new WordLink({ serial: w.serial, timers: w.timers }), w.clock, w.timers);
    const events: string[] = [];
    const log: CashlessCallbacks = {
      readerReady: () => void events.push('ready'),
      readerLost: () => void events.push('lost'),
      sessionBegan: (funds) => void events.push(`session ${funds}`),
      sessionCancelRequested: () => {},
      vendApproved: (amount) => void events.push(`approved ${amount}`),
      vendDenied: () => void events.push('denied'),
      vendReported: () => {},
      sessionEnded: () => {},
    };
    const drv = new CashlessReader({ decimals: 2, currency: 840, timing: { ...TIMING, nonResponseMs: 5000 }, log: noLog, ...log });
    drv.setPrices(100, 250);
    drv.setEnabled(true);
    bus.add(drv);
    w.run(1000);
    ok(sim.tap());
    w.run(300);
    deepEqual(events, ['ready', 'session -1']);
    equal(drv.funds, -1);
    ok(drv.vendRequest(150, 3), 'a vend can still be requested');
    w.run(600);
    deepEqual(events, ['ready', 'session -1', 'approved 150']);
  });
});
