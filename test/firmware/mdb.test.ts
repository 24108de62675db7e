import { BillValidator, type BillCallbacks } from '../../firmware/mdb/bill.js';
import { MdbBus } from '../../firmware/mdb/bus.js';
import { CoinChanger, ROUTE_CASHBOX, ROUTE_TUBES, type ChangerCallbacks } from '../../firmware/mdb/changer.js';
import { checksum } from '../../firmware/mdb/frame.js';
import { REPLY_ACK, REPLY_CORRUPT, REPLY_DATA, REPLY_TIMEOUT, WordLink, type ReplyKind } from '../../firmware/mdb/link.js';
import type { PeripheralTiming } from '../../firmware/mdb/peripheral.js';
import { SimBillValidator } from '../../hal-sim/mdb/bill.js';
import { SimCoinChanger } from '../../hal-sim/mdb/changer.js';
import { deepEqual, equal, ok } from '../lib/assert.js';
import { Wired } from '../lib/wired.js';

const USD_COINS = [
  { value: 5, tube: 20 },
  { value: 10, tube: 20 },
  { value: 25, tube: 20 },
  { value: 100, tube: null },
];

function hexBytes(s: string): number[] {
  return s.split(' ').map((x) => parseInt(x, 16));
}

class ChangerLog implements ChangerCallbacks {
  events: string[] = [];
  readonly changerReady = (): void => {
    this.events.push('ready');
  };
  readonly changerLost = (): void => {
    this.events.push('lost');
  };
  readonly coinDeposited = (type: number, value: number, routing: number): void => {
    this.events.push(`coin ${type} ${value} ${routing === ROUTE_TUBES ? 'tubes' : routing === ROUTE_CASHBOX ? 'cashbox' : routing}`);
  };
  readonly coinRejected = (type: number): void => {
    this.events.push(`rejected ${type}`);
  };
  readonly coinsDispensedManually = (type: number, count: number): void => {
    this.events.push(`manual ${type}x${count}`);
  };
  readonly changerStatus = (code: number): void => {
    this.events.push(`status ${code}`);
  };
  readonly coinReturnPressed = (): void => {
    this.events.push('return lever');
  };
  /** Tube counts each payout started from (kept apart from `events`). */
  payoutStarts: number[][] = [];
  readonly payoutStarting = (tubes: Uint8Array): void => {
    this.payoutStarts.push(Array.from(tubes));
  };
}

const TIMING: PeripheralTiming = { pollIntervalMs: 100, nonResponseMs: 2000, resetIntervalMs: 10000, justResetWaitMs: 500 };
const noLog = (): void => {};

/** `device`: the simulated changer's currency, decimals and coins (default USD cents); `machineCurrency`: what the driver checks against (0: unchecked). */
function changerRig(
  device: { currency?: number; decimals?: number; coins?: { value: number; tube: number | null }[] } = {},
  machineCurrency = 0,
): { w: Wired; sim: SimCoinChanger; drv: CoinChanger; log: ChangerLog; link: WordLink } {
  const w = new Wired();
  const sim = new SimCoinChanger(w.scheduler, w.bus, { coins: device.coins ?? USD_COINS, currency: device.currency ?? 840, decimals: device.decimals ?? 2 });
  const link = new WordLink({ serial: w.serial, timers: w.timers });
  const bus = new MdbBus(link, w.clock, w.timers);
  const log = new ChangerLog();
  const drv = new CoinChanger({ decimals: 2, currency: machineCurrency, timing: TIMING, log: noLog, ...log });
  bus.add(drv);
  return { w, sim, drv, log, link };
}

describe('MDB framing', () => {
  it('computes the checksums of the worked examples', () => {
    const cases: [string, number][] = [
      ['02 00 01 05 02 00 07 01 02 05 14 FF', 0x2c],
      ['13 00 00 3C 00 01', 0x50],
      ['0C FF FF FF FF', 0x08],
      ['11 00 03 00 00 00', 0x14],
    ];
    for (const [bytes, chk] of cases) {
      const b = hexBytes(bytes);
      equal(checksum(b, 0, b.length), chk, bytes);
    }
  });
});

describe('MDB link layer', () => {
  function linkRig(): { w: Wired; sim: SimCoinChanger; link: WordLink; outcomes: [ReplyKind, number[]][]; send: (bytes: number[], accept?: boolean) => void } {
    const w = new Wired();
    const sim = new SimCoinChanger(w.scheduler, w.bus, { coins: USD_COINS, currency: 840, decimals: 2 });
    const link = new WordLink({ serial: w.serial, timers: w.timers });
    const outcomes: [ReplyKind, number[]][] = [];
    const send = (bytes: number[], accept = true): void => {
      link.send(Uint8Array.from(bytes), bytes.length, (kind, data, length) => {
        outcomes.push([kind, Array.from(data.subarray(0, length))]);
        return accept;
      });
    };
    return { w, sim, link, outcomes, send };
  }

  it('sets the mode bit on the address byte only and acknowledges good data', () => {
    const { w, outcomes, send } = linkRig();
    send([0x09]);
    w.run(50);
    equal(outcomes.length, 1);
    equal(outcomes[0]![0], REPLY_DATA);
    equal(outcomes[0]![1].length, 23);
    const vmc = w.wire.filter((x) => x.dir === 'vmc').map((x) => x.word);
    // 0x09 with the mode bit, its checksum, then the VMC's ACK (no mode bit).
    deepEqual(vmc, [0x109, 0x09, 0x00]);
    const periph = w.wire.filter((x) => x.dir === 'periph');
    ok(periph.slice(0, -1).every((x) => (x.word & 0x100) === 0), 'only the last peripheral word has the mode bit');
    ok((periph[periph.length - 1]!.word & 0x100) !== 0);
  });

  it('reports a lone ACK from the peripheral', () => {
    const { w, outcomes, send } = linkRig();
    send([0x08]);
    w.run(20);
    deepEqual(outcomes, [[REPLY_ACK, []]]);
  });

  it('asks for a retransmission on a bad checksum and delivers the good copy once', () => {
    const { w, sim, outcomes, send, link } = linkRig();
    sim.injectFault({ kind: 'garble', command: 1, count: 1 });
    send([0x09]);
    w.run(80);
    equal(outcomes.length, 1);
    equal(outcomes[0]![0], REPLY_DATA);
    equal(link.stats.retransmits, 1);
    const vmc = w.wire.filter((x) => x.dir === 'vmc').map((x) => x.word);
    deepEqual(vmc, [0x109, 0x09, 0xaa, 0x00]);
  });

  it('gives up after the allowed retransmissions with a NAK', () => {
    const { w, sim, outcomes, send } = linkRig();
    sim.injectFault({ kind: 'garble-all', command: 1, count: 1 });
    send([0x09]);
    w.run(150);
    deepEqual(outcomes, [[REPLY_CORRUPT, []]]);
    const vmc = w.wire.filter((x) => x.dir === 'vmc').map((x) => x.word);
    deepEqual(vmc, [0x109, 0x09, 0xaa, 0xaa, 0xff]);
  });

  it('times out within t-response when the peripheral is silent', () => {
    const { w, sim, outcomes, send } = linkRig();
    sim.injectFault({ kind: 'silence', count: 1 });
    const t0 = w.scheduler.nowMs;
    send([0x0b]);
    w.run(30);
    deepEqual(outcomes, [[REPLY_TIMEOUT, []]]);
    // Two words on the wire (2.3 ms) plus the 5 ms response time.
    const vmc = w.wire.filter((x) => x.dir === 'vmc');
    equal(vmc.length, 2);
    void t0;
  });

  it('NAKs data the driver refuses, so the peripheral keeps it for the next POLL', () => {
    const { w, sim, outcomes, send } = linkRig();
    // Drain the power-up "just reset" and enable coins.
    send([0x0b]);
    w.run(20);
    send([0x0c, 0xff, 0xff, 0, 0]);
    w.run(20);
    sim.insertCoin(25);
    send([0x0b], false);
    w.run(20);
    send([0x0b]);
    w.run(20);
    const polls = outcomes.filter((o) => o[0] === REPLY_DATA).map((o) => o[1]);
    deepEqual(polls.slice(1), [
      [0x52, 21],
      [0x52, 21],
    ]);
    equal(sim.stats.naksFromVmc, 1);
  });
});

describe('coin changer driver', () => {
  it('runs the init sequence and learns coins and tubes', () => {
    const { w, drv, log } = changerRig();
    w.run(1000);
    ok(drv.ready, 'ready');
    deepEqual(log.events, ['ready']);
    deepEqual(Array.from(drv.values.subarray(0, 4)), [5, 10, 25, 100]);
    deepEqual(Array.from(drv.tubes.subarray(0, 4)), [20, 20, 20, 0]);
    equal(drv.setup.currency, 840);
    equal(drv.setup.routable, 0b0111);
    // RESET, then "just reset" polled, SETUP, TUBE STATUS no earlier than 500 ms after reset.
    const cmds = w.wire.filter((x) => x.dir === 'vmc' && x.word & 0x100).map((x) => x.word & 0xff);
    deepEqual(cmds.slice(0, 5), [0x08, 0x0b, 0x09, 0x0a, 0x0c]);
  });

  it('does not enable a changer in another currency, or one whose coins are not whole cents; COIN TYPE enables nothing', () => {
    const eur = changerRig({ currency: 978 }, 840);
    eur.drv.setAccepting(true);
    eur.w.run(1500);
    ok(!eur.drv.ready);
    equal(eur.drv.refused, 'currency');
    deepEqual(eur.log.events, [], 'the machine never hears of it');
    equal(eur.sim.acceptMask, 0, 'COIN TYPE 0000');
    equal(eur.sim.insertCoin(25), false, 'a coin comes straight back');
    // Three decimals: 0.005, 0.010, 0.025 are not whole cents.
    const mills = changerRig({ decimals: 3, coins: [{ value: 5, tube: 10 }, { value: 10, tube: 10 }, { value: 25, tube: 10 }] }, 840);
    mills.drv.setAccepting(true);
    mills.w.run(1500);
    equal(mills.drv.refused, 'scaling');
    equal(mills.sim.acceptMask, 0);
    // Three decimals whose coins are whole cents (0.050, 0.100, 0.250) are fine.
    const fine = changerRig({ decimals: 3, coins: [{ value: 50, tube: 10 }, { value: 100, tube: 10 }, { value: 250, tube: 10 }] }, 840);
    fine.drv.setAccepting(true);
    fine.w.run(1500);
    ok(fine.drv.ready);
    equal(fine.drv.refused, '');
    deepEqual(Array.from(fine.drv.values.subarray(0, 3)), [5, 10, 25]);
    equal(fine.sim.acceptMask, 0b111);
  });

  it('credits each deposit exactly once, even when the POLL answer needs retransmission', () => {
    const { w, sim, drv, log } = changerRig();
    drv.setAccepting(true);
    w.run(1000);
    ok(sim.acceptMask !== 0, 'acceptance enabled');
    sim.injectFault({ kind: 'garble', command: 3, count: 1 });
    sim.insertCoin(25);
    w.run(300);
    sim.injectFault({ kind: 'garble-all', command: 3, count: 1 });
    sim.insertCoin(100);
    w.run(500);
    deepEqual(log.events, ['ready', 'coin 2 25 tubes', 'coin 3 100 cashbox']);
    equal(drv.tubes[2], 21);
  });

  it('re-initialises after the changer resets by itself', () => {
    const { w, sim, drv, log } = changerRig();
    drv.setAccepting(true);
    w.run(1000);
    sim.spontaneousReset();
    equal(sim.acceptMask, 0);
    w.run(1500);
    deepEqual(log.events, ['ready', 'lost', 'ready']);
    ok(sim.acceptMask !== 0, 'acceptance restored');
    equal(drv.health.justResets, 2);
  });

  it('verifies a payout against the tube counts', () => {
    const { w, sim, drv } = changerRig();
    w.run(1000);
    let paid: number[] = [];
    let value = -1;
    ok(drv.payout([0, 1, 2, 0], (p, v) => {
      paid = Array.from(p.subarray(0, 4));
      value = v;
    }));
    w.run(3000);
    equal(value, 60);
    deepEqual(paid, [0, 1, 2, 0]);
    deepEqual(sim.paidOut, [10, 25, 25]);
    deepEqual(Array.from(drv.tubes.subarray(0, 3)), [20, 19, 18]);
  });

  it('does not repeat a DISPENSE whose answer was lost, and still accounts for it', () => {
    const { w, sim, drv } = changerRig();
    w.run(1000);
    sim.injectFault({ kind: 'drop-reply', command: 5, count: 1 });
    let value = -1;
    drv.payout([3, 0, 0, 0], (_p, v) => (value = v));
    w.run(3000);
    deepEqual(sim.paidOut, [5, 5, 5]);
    equal(value, 15);
  });

  it('reports a short payout when a tube jams', () => {
    const { w, sim, drv } = changerRig();
    w.run(1000);
    sim.jamPayoutAfter = 1;
    let value = -1;
    drv.payout([0, 0, 3, 0], (_p, v) => (value = v));
    w.run(3000);
    equal(value, 25);
    deepEqual(sim.paidOut, [25]);
  });

  it('goes offline after 2 s of silence and resets no more than every 10 s', () => {
    const { w, sim, drv, log } = changerRig();
    w.run(1000);
    sim.powered = false;
    w.run(25000);
    ok(!drv.ready);
    ok(log.events.includes('lost'));
    const resets = w.wire.filter((x) => x.dir === 'vmc' && x.word === 0x108).length;
    // One at boot, then at most one every 10 s while silent.
    ok(resets <= 4, `resets: ${resets}`);
    sim.powered = true;
    sim.spontaneousReset();
    w.run(11000);
    ok(drv.ready, 'back after the device returns');
  });
});

describe('bill validator driver', () => {
  class BillLog implements BillCallbacks {
    events: string[] = [];
    readonly billReady = (): void => {
      this.events.push('ready');
    };
    readonly billLost = (): void => {
      this.events.push('lost');
    };
    readonly billEscrowed = (_t: number, value: number): void => {
      this.events.push(`escrow ${value}`);
    };
    readonly billStacked = (_t: number, value: number): void => {
      this.events.push(`stacked ${value}`);
    };
    readonly billReturned = (_t: number, value: number): void => {
      this.events.push(`returned ${value}`);
    };
    readonly billStatus = (code: number): void => {
      this.events.push(`status ${code}`);
    };
  }

  function billRig(): { w: Wired; sim: SimBillValidator; drv: BillValidator; log: BillLog } {
    const w = new Wired();
    const sim = new SimBillValidator(w.scheduler, w.bus, { bills: [100, 500, 1000], currency: 840, decimals: 2 });
    const link = new WordLink({ serial: w.serial, timers: w.timers });
    const bus = new MdbBus(link, w.clock, w.timers);
    const log = new BillLog();
    const drv = new BillValidator({ decimals: 2, timing: { ...TIMING, nonResponseMs: 5000 }, log: noLog, ...log });
    bus.add(drv);
    return { w, sim, drv, log };
  }

  it('initialises, takes a bill into escrow and stacks it on request', () => {
    const { w, sim, drv, log } = billRig();
    drv.setAccepting(true, 500);
    w.run(1000);
    ok(drv.ready);
    deepEqual(Array.from(drv.values.subarray(0, 3)), [100, 500, 1000]);
    equal(sim.enableMask, 0b011, 'only bills up to the limit');
    ok(sim.insertBill(500));
    w.run(1000);
    deepEqual(log.events, ['ready', 'escrow 500']);
    drv.decide(true);
    w.run(2000);
    deepEqual(log.events, ['ready', 'escrow 500', 'stacked 500']);
    equal(sim.stacked, 1);
  });

  it('returns a bill from escrow', () => {
    const { w, sim, drv, log } = billRig();
    drv.setAccepting(true, 1000);
    w.run(1000);
    sim.insertBill(1000);
    w.run(1000);
    drv.decide(false);
    w.run(2000);
    deepEqual(log.events, ['ready', 'escrow 1000', 'returned 1000']);
    equal(sim.billsReturned, 1);
    equal(sim.stacked, 0);
  });

  it('treats a reset with a bill in escrow as a returned bill', () => {
    const { w, sim, drv, log } = billRig();
    drv.setAccepting(true, 1000);
    w.run(1000);
    sim.insertBill(100);
    w.run(1000);
    sim.spontaneousReset();
    w.run(1500);
    deepEqual(log.events, ['ready', 'escrow 100', 'returned 100', 'lost', 'ready']);
  });
});
