/**
 * Changer level 3 (identification, feature enable, alternative payout,
 * diagnostic status), bill validator level 1/2 identification, and the MDB
 * recovery rules (non-response times, RESET pacing, re-init, escrow settled
 * by the stacker count), each driver wired straight to its simulated
 * peripheral. Portable: also runs inside XS.
 */
import { BillValidator, type BillCallbacks } from '../../firmware/mdb/bill.js';
import { MdbBus } from '../../firmware/mdb/bus.js';
import {
  CoinChanger,
  DIAG_INHIBITED,
  DIAG_OK,
  DIAG_POWERING_UP,
  FEATURE_ALTERNATIVE_PAYOUT,
  FEATURE_EXTENDED_DIAGNOSTICS,
  ROUTE_CASHBOX,
  ROUTE_TUBES,
  diagnosticIsError,
  diagnosticText,
  type ChangerCallbacks,
} from '../../firmware/mdb/changer.js';
import { WordLink } from '../../firmware/mdb/link.js';
import { emptyIdentity, parseIdentity, type MdbIdentity, type PeripheralTiming } from '../../firmware/mdb/peripheral.js';
import { SimBillValidator, type SimBillOptions } from '../../hal-sim/mdb/bill.js';
import { SimCoinChanger, type SimChangerOptions } from '../../hal-sim/mdb/changer.js';
import { deepEqual, equal, ok } from '../lib/assert.js';
import { Wired } from '../lib/wired.js';

const USD_COINS = [
  { value: 5, tube: 20 },
  { value: 10, tube: 20 },
  { value: 25, tube: 20 },
  { value: 100, tube: null },
];

const CHANGER_TIMING: PeripheralTiming = { pollIntervalMs: 100, nonResponseMs: 2000, resetIntervalMs: 10000, justResetWaitMs: 500 };
const BILL_TIMING: PeripheralTiming = { pollIntervalMs: 100, nonResponseMs: 5000, resetIntervalMs: 10000, justResetWaitMs: 500 };

class ChangerLog implements ChangerCallbacks {
  events: string[] = [];
  /** Board time of each event, same order. */
  times: number[] = [];
  payoutStarts: number[][] = [];
  identified: string[] = [];
  diagnostics: number[][] = [];
  constructor(private readonly w: Wired) {}
  private push(e: string): void {
    this.events.push(e);
    this.times.push(this.w.scheduler.nowMs);
  }
  readonly changerReady = (): void => {
    this.push('ready');
  };
  readonly changerLost = (): void => {
    this.push('lost');
  };
  readonly coinDeposited = (type: number, value: number, routing: number): void => {
    this.push(`coin ${type} ${value} ${routing === ROUTE_TUBES ? 'tubes' : routing === ROUTE_CASHBOX ? 'cashbox' : routing}`);
  };
  readonly coinRejected = (type: number): void => {
    this.push(`rejected ${type}`);
  };
  readonly coinsDispensedManually = (type: number, count: number): void => {
    this.push(`manual ${type}x${count}`);
  };
  readonly changerStatus = (code: number): void => {
    this.push(`status ${code}`);
  };
  readonly coinReturnPressed = (): void => {
    this.push('return lever');
  };
  readonly payoutStarting = (tubes: Uint8Array): void => {
    this.payoutStarts.push(Array.from(tubes.subarray(0, 4)));
  };
  readonly changerIdentified = (identity: MdbIdentity): void => {
    this.identified.push(`${identity.manufacturer}/${identity.model}/${identity.serial}/${identity.software}`);
  };
  readonly changerDiagnostic = (codes: Uint16Array, count: number): void => {
    this.diagnostics.push(Array.from(codes.subarray(0, count)));
  };
}

class BillLog implements BillCallbacks {
  events: string[] = [];
  times: number[] = [];
  identified: string[] = [];
  constructor(private readonly w: Wired) {}
  private push(e: string): void {
    this.events.push(e);
    this.times.push(this.w.scheduler.nowMs);
  }
  readonly billReady = (): void => {
    this.push('ready');
  };
  readonly billLost = (): void => {
    this.push('lost');
  };
  readonly billEscrowed = (_t: number, value: number): void => {
    this.push(`escrow ${value}`);
  };
  readonly billStacked = (_t: number, value: number): void => {
    this.push(`stacked ${value}`);
  };
  readonly billReturned = (_t: number, value: number): void => {
    this.push(`returned ${value}`);
  };
  readonly billStatus = (code: number): void => {
    this.push(`status ${code}`);
  };
  readonly billIdentified = (identity: MdbIdentity): void => {
    this.identified.push(`${identity.manufacturer}/${identity.model}/${identity.serial}/${identity.software}`);
  };
}

/** Every word on the wire with its time (ms), alongside Wired's own record. */
function timedWire(w: Wired): { dir: 'vmc' | 'periph'; word: number; ms: number }[] {
  const out: { dir: 'vmc' | 'periph'; word: number; ms: number }[] = [];
  const inner = w.bus.trace;
  w.bus.trace = (dir, word, atUs) => {
    inner?.(dir, word, atUs);
    out.push({ dir, word, ms: atUs / 1000 });
  };
  return out;
}

function changerRig(options: Partial<SimChangerOptions> = {}): { w: Wired; sim: SimCoinChanger; drv: CoinChanger; log: ChangerLog; logs: string[] } {
  const w = new Wired();
  const sim = new SimCoinChanger(w.scheduler, w.bus, { coins: USD_COINS, currency: 840, decimals: 2, level: 3, ...options });
  const link = new WordLink({ serial: w.serial, timers: w.timers });
  const bus = new MdbBus(link, w.clock, w.timers);
  const log = new ChangerLog(w);
  const logs: string[] = [];
  const drv = new CoinChanger({ decimals: 2, timing: CHANGER_TIMING, log: (_level, message) => logs.push(message), ...log });
  bus.add(drv);
  return { w, sim, drv, log, logs };
}

function billRig(options: Partial<SimBillOptions> = {}): { w: Wired; sim: SimBillValidator; drv: BillValidator; log: BillLog; logs: string[] } {
  const w = new Wired();
  const sim = new SimBillValidator(w.scheduler, w.bus, { bills: [100, 500, 1000], currency: 840, decimals: 2, ...options });
  const link = new WordLink({ serial: w.serial, timers: w.timers });
  const bus = new MdbBus(link, w.clock, w.timers);
  const log = new BillLog(w);
  const logs: string[] = [];
  const drv = new BillValidator({ decimals: 2, timing: BILL_TIMING, log: (_level, message) => logs.push(message), ...log });
  bus.add(drv);
  return { w, sim, drv, log, logs };
}

/**
 * The VMC's commands to one device as hex ("0F 01 00 00 00 03"): the address
 * byte and the words that follow it before anyone else speaks, checksum
 * dropped (the VMC's own ACK/NAK/RET come after the peripheral's answer).
 */
function commands(w: Wired, address: number): string[] {
  const out: string[] = [];
  const wire = w.wire;
  for (let i = 0; i < wire.length; i++) {
    const x = wire[i]!;
    if (x.dir !== 'vmc' || !(x.word & 0x100) || (x.word & 0xf8) !== address) continue;
    const block = [x.word & 0xff];
    for (let j = i + 1; j < wire.length && wire[j]!.dir === 'vmc' && !(wire[j]!.word & 0x100); j++) block.push(wire[j]!.word);
    block.pop();
    out.push(block.map((b) => (b < 16 ? '0' : '') + b.toString(16).toUpperCase()).join(' '));
  }
  return out;
}

/** Time of the peripheral's last word before `t`. */
function lastAnswer(wire: { dir: 'vmc' | 'periph'; word: number; ms: number }[], t: number): number {
  let at = -Infinity;
  for (const x of wire) if (x.dir === 'periph' && x.ms <= t) at = x.ms;
  return at;
}

function resetTimes(wire: { dir: 'vmc' | 'periph'; word: number; ms: number }[], address: number): number[] {
  return wire.filter((x) => x.dir === 'vmc' && x.word === (0x100 | address)).map((x) => x.ms);
}

describe('identification parsing', () => {
  it('reads manufacturer, serial, model, BCD software version and option bits', () => {
    const bytes = [
      ...'CNI'.split('').map((c) => c.charCodeAt(0)),
      ...'0000123456  '.split('').map((c) => c.charCodeAt(0)),
      ...'CF7900'.split('').map((c) => c.charCodeAt(0)),
      0, 0, 0, 0, 0, 0,
      0x01, 0x23,
      0x00, 0x00, 0x00, 0x0b,
    ];
    const id = emptyIdentity();
    ok(parseIdentity(Uint8Array.from(bytes), 0, bytes.length, true, id));
    deepEqual([id.known, id.manufacturer, id.serial, id.model, id.software, id.features, id.enabled], [true, 'CNI', '0000123456', 'CF7900', '0123', 0x0b, 0]);
    // Without option bits (bill validator 37 00), and too short.
    const noOpts = emptyIdentity();
    ok(parseIdentity(Uint8Array.from(bytes), 0, 29, false, noOpts));
    equal(noOpts.features, 0);
    ok(!parseIdentity(Uint8Array.from(bytes), 0, 28, true, emptyIdentity()), 'a short answer is refused');
    // At an offset (a cashless PERIPHERAL ID starts with its 0x09 byte), unprintables shown as '?'.
    const withHeader = Uint8Array.from([0x09, ...bytes]);
    withHeader[2] = 0x07;
    const id2 = emptyIdentity();
    ok(parseIdentity(withHeader, 1, withHeader.length, true, id2));
    equal(id2.manufacturer, 'C?I');
  });

  it('names diagnostic codes and tells errors from states', () => {
    equal(diagnosticText(DIAG_OK), 'OK');
    equal(diagnosticText(DIAG_INHIBITED), 'inhibited by VMC');
    equal(diagnosticText(0x0400), 'keypad shifted');
    equal(diagnosticText(0x0510), 'manual fill/payout active');
    equal(diagnosticText(0x1130), 'discriminator: coin jam in sensor');
    equal(diagnosticText(0x1400), 'dispenser error (payout/tube jam)');
    equal(diagnosticText(0x15ee), 'coin cassette/tube error');
    equal(diagnosticText(0x0900), 'unknown');
    ok(!diagnosticIsError(DIAG_POWERING_UP) && !diagnosticIsError(DIAG_INHIBITED));
    ok(diagnosticIsError(0x1000) && diagnosticIsError(0x1504));
  });
});

describe('coin changer level 3', () => {
  it('runs the level 3 init: SETUP, identification, feature enable, diagnostic, tubes, coin type', () => {
    const { w, sim, drv, log } = changerRig();
    w.run(1000);
    ok(drv.ready, 'ready');
    deepEqual(commands(w, 0x08).slice(0, 8), ['08', '0B', '09', '0F 00', '0F 01 00 00 00 03', '0F 05', '0A', '0C 00 00 00 07']);
    equal(drv.setup.level, 3);
    const id = drv.identity;
    deepEqual([id.known, id.manufacturer, id.serial, id.model, id.software], [true, 'VFL', '000000012345', 'SIM-CHANGER3', '0142']);
    equal(id.features, FEATURE_ALTERNATIVE_PAYOUT | FEATURE_EXTENDED_DIAGNOSTICS);
    equal(id.enabled, FEATURE_ALTERNATIVE_PAYOUT | FEATURE_EXTENDED_DIAGNOSTICS);
    equal(sim.enabledFeatures, 0b11, 'the changer has the options enabled');
    ok(drv.canPayoutValue);
    deepEqual(log.identified, ['VFL/SIM-CHANGER3/000000012345/0142']);
    // Just after the reset the changer is still powering up.
    deepEqual(Array.from(drv.diagnostic.codes.subarray(0, drv.diagnostic.count)), [DIAG_POWERING_UP]);
    deepEqual(log.events, ['ready']);
  });

  it('enables only the options it uses and that the changer offers', () => {
    const { w, sim, drv } = changerRig({ identity: { features: 0b1100 } });
    w.run(1000);
    ok(drv.ready);
    ok(commands(w, 0x08).includes('0F 01 00 00 00 00'), 'FEATURE ENABLE asks for nothing');
    equal(drv.identity.enabled, 0);
    equal(sim.enabledFeatures, 0);
    ok(!drv.canPayoutValue, 'no alternative payout without the option');
    ok(!drv.payoutValue(50, () => {}), 'payoutValue refused');
  });

  it('asks again for the diagnostic while powering up, then every 30 s while idle, and at once on trouble', () => {
    const { w, sim, drv, log } = changerRig();
    drv.setAccepting(true);
    w.run(3000);
    deepEqual(log.diagnostics, [[DIAG_POWERING_UP], [DIAG_OK]]);
    const before = commands(w, 0x08).filter((c) => c === '0F 05').length;
    equal(before, 2);
    w.run(61000);
    const idle = commands(w, 0x08).filter((c) => c === '0F 05').length - before;
    equal(idle, 2, 'two more in a minute');
    equal(log.diagnostics.length, 2, 'the same answer is not reported again');
    drv.setAccepting(false);
    sim.diagnosticOverride = [0x1130, DIAG_INHIBITED];
    sim.reportStatus(0x0c);
    w.run(400);
    deepEqual(log.diagnostics[2], [0x1130, DIAG_INHIBITED], 'a coin jam brings a diagnostic request');
    ok(drv.diagnosticError);
    sim.diagnosticOverride = [0x0520];
    const tubeReads = commands(w, 0x08).filter((c) => c === '0A').length;
    drv.requestDiagnostic();
    w.run(400);
    equal(commands(w, 0x08).filter((c) => c === '0A').length, tubeReads + 1, '"new inventory" reads the tubes');
    ok(!drv.diagnosticError);
  });

  it('pays a value with the alternative payout: coins chosen by the changer, counted by PAYOUT STATUS', () => {
    const { w, sim, drv, log } = changerRig();
    w.run(2000);
    let paid: number[] = [];
    let value = -1;
    ok(drv.payoutValue(60, (p, v) => {
      paid = Array.from(p.subarray(0, 4));
      value = v;
    }));
    ok(drv.paying);
    w.run(320);
    ok(drv.paidSoFar > 0 && drv.paidSoFar < 60, `progress under way: ${drv.paidSoFar}`);
    w.run(3000);
    equal(value, 60);
    deepEqual(paid, [0, 1, 2, 0]);
    deepEqual(sim.paidOut, [25, 25, 10]);
    deepEqual(log.payoutStarts, [[20, 20, 20, 0]], 'tubes read before the PAYOUT');
    deepEqual(Array.from(drv.tubes.subarray(0, 3)), sim.tubes.slice(0, 3), 'tube counts match the changer');
    deepEqual(Array.from(drv.tubes.subarray(0, 3)), [20, 19, 18]);
    equal(drv.paidSoFar, 60, 'and ends at the value paid');
    const cmds = commands(w, 0x08);
    ok(cmds.includes('0F 02 0C'), 'PAYOUT of 12 scale units');
    ok(cmds.includes('0F 04') && cmds.includes('0F 03'));
    equal(cmds.filter((c) => c.startsWith('0F 02')).length, 1);
    ok(!cmds.some((c) => c.startsWith('0D')), 'no DISPENSE');
    ok(!drv.paying);
  });

  it('splits a value above 255 scale units into several PAYOUTs', () => {
    const { w, sim, drv } = changerRig({ coins: [{ value: 5, tube: 100 }, { value: 10, tube: 100 }, { value: 25, tube: 100 }, { value: 100, tube: null }] });
    w.run(2000);
    let value = -1;
    let paid: number[] = [];
    ok(drv.payoutValue(1500, (p, v) => {
      value = v;
      paid = Array.from(p.subarray(0, 4));
    }));
    w.run(15000);
    equal(value, 1500);
    deepEqual(paid, [0, 0, 60, 0]);
    equal(sim.paidValue, 1500);
    deepEqual(commands(w, 0x08).filter((c) => c.startsWith('0F 02')), ['0F 02 FF', '0F 02 2D']);
    deepEqual(Array.from(drv.tubes.subarray(0, 3)), sim.tubes.slice(0, 3));
  });

  it('pays what the tubes allow when the value cannot be paid exactly, and rounds to scale units', () => {
    const { w, sim, drv } = changerRig({ coins: [{ value: 5, tube: 0 }, { value: 10, tube: 0 }, { value: 25, tube: 20 }, { value: 100, tube: null }] });
    w.run(2000);
    let value = -1;
    ok(drv.payoutValue(63, (_p, v) => (value = v)));
    w.run(3000);
    equal(value, 50, 'two quarters; 63 is asked as 12 units (60)');
    deepEqual(sim.paidOut, [25, 25]);
    ok(commands(w, 0x08).includes('0F 02 0C'));
  });

  it('a PAYOUT whose answer was lost is not repeated; PAYOUT STATUS still counts it', () => {
    const { w, sim, drv } = changerRig();
    w.run(2000);
    let value = -1;
    ok(drv.payoutValue(35, (_p, v) => (value = v)));
    // The next expansion command is the PAYOUT itself (the tubes are read first with 0A).
    sim.injectFault({ kind: 'drop-reply', command: 7, count: 1 });
    w.run(3000);
    equal(value, 35);
    deepEqual(sim.paidOut, [25, 10]);
    equal(sim.altPayouts.length, 1, 'one PAYOUT acted on');
    equal(commands(w, 0x08).filter((c) => c.startsWith('0F 02')).length, 1, 'not sent twice');
  });

  it('a refused PAYOUT is asked again', () => {
    const { w, sim, drv } = changerRig();
    w.run(2000);
    let value = -1;
    ok(drv.payoutValue(25, (_p, v) => (value = v)));
    sim.injectFault({ kind: 'nak', command: 7, count: 1 });
    w.run(3000);
    equal(value, 25);
    equal(sim.altPayouts.length, 1);
    equal(commands(w, 0x08).filter((c) => c.startsWith('0F 02')).length, 2);
  });

  it('a PAYOUT STATUS that never comes through: the tube counts settle the payout', () => {
    const { w, sim, drv, logs } = changerRig();
    w.run(2000);
    let value = -1;
    let paid: number[] = [];
    ok(drv.payoutValue(40, (p, v) => {
      value = v;
      paid = Array.from(p.subarray(0, 4));
    }));
    // Every data answer to an expansion command from now on is garbled, retransmissions too.
    sim.injectFault({ kind: 'garble-all', command: 7, count: 1000 });
    w.run(40000);
    equal(value, 40);
    deepEqual(paid, [1, 1, 1, 0]);
    equal(sim.paidValue, 40);
    ok(logs.some((l) => l.includes('no PAYOUT STATUS')), logs.join('\n'));
  });

  it('a tube jam stops the payout: what left is reported, and the diagnostic says why', () => {
    const { w, sim, drv, log } = changerRig();
    w.run(2000);
    sim.jamPayoutAfter = 1;
    let value = -1;
    ok(drv.payoutValue(75, (_p, v) => (value = v)));
    w.run(3000);
    equal(value, 25);
    deepEqual(sim.paidOut, [25]);
    ok(log.events.includes('status 7'), 'tube jam reported on POLL');
    ok(drv.diagnosticError, 'diagnostic asked after the jam');
    deepEqual(Array.from(drv.diagnostic.codes.subarray(0, drv.diagnostic.count)), [0x1400]);
    deepEqual(Array.from(drv.tubes.subarray(0, 3)), sim.tubes.slice(0, 3));
  });

  it('the changer resets in the middle of an alternative payout: settled from the tube counts', () => {
    // The reset lands just before a PAYOUT VALUE POLL: the changer, its RAM gone, answers "done"
    // and PAYOUT STATUS answers zeros; only the next POLL says "just reset".
    const { w, sim, drv, log, logs } = changerRig();
    w.run(2000);
    let value = -1;
    let paid: number[] = [];
    ok(drv.payoutValue(65, (p, v) => {
      value = v;
      paid = Array.from(p.subarray(0, 4));
    }));
    for (let i = 0; i < 100 && sim.paidOut.length < 2; i++) w.run(10);
    sim.spontaneousReset();
    w.run(3000);
    equal(sim.paidValue, 50, 'two quarters left before the reset');
    equal(value, 50);
    deepEqual(paid, [0, 0, 2, 0]);
    ok(!logs.some((l) => l.includes('disagree')), 'the zeros were never taken for the payout');
    deepEqual(log.events, ['ready', 'lost', 'ready']);
    ok(drv.identity.known, 'identified again');
    equal(sim.enabledFeatures, 0b11, 'options enabled again after the reset');
  });

  it('the changer goes silent in the middle of an alternative payout and comes back: nothing lost or doubled', () => {
    const { w, sim, drv, log } = changerRig();
    w.run(2000);
    let value = -1;
    ok(drv.payoutValue(60, (_p, v) => (value = v)));
    for (let i = 0; i < 100 && sim.paidOut.length < 1; i++) w.run(10);
    // The cable comes loose: the changer goes on paying but the VMC hears nothing.
    sim.powered = false;
    w.run(15000);
    equal(value, -1, 'not settled while the changer is away');
    ok(!drv.ready);
    ok(drv.paying);
    sim.powered = true;
    w.run(12000);
    ok(drv.ready, 'back');
    equal(sim.paidValue, 60);
    equal(value, 60);
    deepEqual(log.events, ['ready', 'lost', 'ready']);
    deepEqual(Array.from(drv.tubes.subarray(0, 3)), sim.tubes.slice(0, 3));
  });

  it('DISPENSE payouts still work at level 3', () => {
    const { w, sim, drv } = changerRig();
    w.run(2000);
    let value = -1;
    ok(drv.payout([0, 1, 2, 0], (_p, v) => (value = v)));
    w.run(3000);
    equal(value, 60);
    deepEqual(sim.paidOut, [10, 25, 25]);
  });

  it('an expansion step that stays unanswered is skipped, not retried for ever', () => {
    const { w, sim, drv, logs } = changerRig();
    sim.injectFault({ kind: 'nak', command: 7, count: 3 });
    w.run(1500);
    ok(drv.ready);
    ok(!drv.identity.known);
    ok(!drv.canPayoutValue);
    ok(logs.some((l) => l.includes('no answer to EXPANSION IDENTIFICATION')));
    ok(!commands(w, 0x08).some((c) => c.startsWith('0F 01')), 'no FEATURE ENABLE without an identification');
  });
});

describe('coin changer level 2', () => {
  it('sends no level 3 command and keeps its init sequence', () => {
    const { w, drv, log } = changerRig({ level: 2 });
    w.run(65000);
    ok(drv.ready);
    deepEqual(commands(w, 0x08).slice(0, 5), ['08', '0B', '09', '0A', '0C 00 00 00 07']);
    ok(!commands(w, 0x08).some((c) => c.startsWith('0F')), 'nothing above level 2');
    ok(!drv.identity.known);
    equal(drv.diagnostic.count, 0);
    ok(!drv.canPayoutValue);
    ok(!drv.payoutValue(25, () => {}));
    deepEqual(log.events, ['ready']);
  });

  it('comes back as level 3 when the changer is swapped for one', () => {
    const { w, sim, drv } = changerRig({ level: 2 });
    w.run(1000);
    ok(!drv.identity.known);
    sim.level = 3;
    sim.spontaneousReset();
    w.run(1500);
    ok(drv.ready);
    equal(drv.setup.level, 3);
    ok(drv.identity.known);
    ok(drv.canPayoutValue);
  });
});

describe('bill validator identification', () => {
  it('level 1: identification without option bits, no feature enable', () => {
    const { w, drv, log } = billRig();
    drv.setAccepting(true, 1000);
    w.run(1000);
    ok(drv.ready);
    deepEqual(commands(w, 0x30).slice(0, 6), ['30', '33', '31', '37 00', '36', '34 00 07 00 07']);
    ok(!commands(w, 0x30).some((c) => c.startsWith('37 01') || c.startsWith('37 02')), 'nothing above level 1');
    const id = drv.identity;
    deepEqual([id.known, id.manufacturer, id.serial, id.model, id.software, id.features], [true, 'VFL', '000000067890', 'SIM-BILL2', '0210', 0]);
    deepEqual(log.identified, ['VFL/SIM-BILL2/000000067890/0210']);
  });

  it('level 2: identification with option bits, then feature enable for what it uses (nothing)', () => {
    const { w, sim, drv } = billRig({ level: 2 });
    drv.setAccepting(true, 1000);
    w.run(1000);
    ok(drv.ready);
    equal(drv.setup.level, 2);
    deepEqual(commands(w, 0x30).slice(0, 7), ['30', '33', '31', '37 02', '37 01 00 00 00 00', '36', '34 00 07 00 07']);
    equal(drv.identity.features, 1, 'file transport offered');
    equal(drv.identity.enabled, 0, 'and not enabled');
    equal(sim.enabledFeatures, 0);
    equal(drv.identity.model, 'SIM-BILL2');
  });

  it('a validator that does not answer the identification still comes up', () => {
    const { w, sim, drv, logs } = billRig();
    sim.injectFault({ kind: 'silence', command: 7, count: 3 });
    w.run(1500);
    ok(drv.ready);
    ok(!drv.identity.known);
    ok(logs.some((l) => l.includes('no answer to EXPANSION IDENTIFICATION')));
  });
});

describe('recovery: non-response times and RESET pacing on the wire', () => {
  it('changer: offline 2 s after it falls silent, RESET at most every 10 s, init re-run on return', () => {
    const { w, sim, drv, log } = changerRig();
    const wire = timedWire(w);
    w.run(3000);
    const silentAt = w.scheduler.nowMs;
    sim.powered = false;
    w.run(65000);
    const lostAt = log.times[log.events.indexOf('lost')]!;
    const heardAt = lastAnswer(wire, silentAt);
    ok(lostAt - heardAt >= 2000 && lostAt - heardAt <= 2000 + 2 * CHANGER_TIMING.pollIntervalMs, `offline ${lostAt - heardAt} ms after the last answer`);
    ok(lostAt - silentAt >= 2000 - CHANGER_TIMING.pollIntervalMs && lostAt - silentAt <= 2000 + 2 * CHANGER_TIMING.pollIntervalMs, `offline after ${lostAt - silentAt} ms`);
    const resets = resetTimes(wire, 0x08).filter((t) => t > silentAt);
    ok(resets.length >= 6, `kept resetting: ${resets.length}`);
    ok(resets[0]! >= silentAt + 2000, 'no RESET before the non-response time');
    for (let i = 1; i < resets.length; i++) {
      const gap = resets[i]! - resets[i - 1]!;
      ok(gap >= 10000, `RESETs ${gap.toFixed(1)} ms apart`);
      ok(gap <= 10000 + 2 * CHANGER_TIMING.pollIntervalMs, `but not much more: ${gap.toFixed(1)} ms`);
    }
    const before = commands(w, 0x08).length;
    sim.powered = true;
    w.run(11000);
    ok(drv.ready, 'back');
    deepEqual(commands(w, 0x08).slice(before).slice(0, 6), ['08', '0B', '09', '0F 00', '0F 01 00 00 00 03', '0F 05'], 'the whole init again');
    deepEqual(log.events, ['ready', 'lost', 'ready']);
  });

  it('bill validator: offline 5 s after it falls silent, RESET at most every 10 s', () => {
    const { w, sim, drv, log } = billRig();
    const wire = timedWire(w);
    w.run(2000);
    const silentAt = w.scheduler.nowMs;
    sim.powered = false;
    w.run(45000);
    const lostAt = log.times[log.events.indexOf('lost')]!;
    const heardAt = lastAnswer(wire, silentAt);
    ok(lostAt - heardAt >= 5000 && lostAt - heardAt <= 5000 + 2 * BILL_TIMING.pollIntervalMs, `offline ${lostAt - heardAt} ms after the last answer`);
    ok(lostAt - silentAt >= 5000 - BILL_TIMING.pollIntervalMs && lostAt - silentAt <= 5000 + 2 * BILL_TIMING.pollIntervalMs, `offline after ${lostAt - silentAt} ms`);
    const resets = resetTimes(wire, 0x30).filter((t) => t > silentAt);
    ok(resets.length >= 4, `kept resetting: ${resets.length}`);
    for (let i = 1; i < resets.length; i++) ok(resets[i]! - resets[i - 1]! >= 10000, `RESETs ${(resets[i]! - resets[i - 1]!).toFixed(1)} ms apart`);
    sim.powered = true;
    w.run(11000);
    ok(drv.ready);
    deepEqual(log.events, ['ready', 'lost', 'ready']);
  });

  it('a device silent from power-up: after the non-response time, RESET at most every 10 s', () => {
    const { w, sim, drv } = changerRig();
    const wire = timedWire(w);
    sim.powered = false;
    w.run(45000);
    ok(!drv.ready);
    const resets = resetTimes(wire, 0x08).filter((t) => t >= CHANGER_TIMING.nonResponseMs);
    ok(resets.length >= 4);
    for (let i = 1; i < resets.length; i++) ok(resets[i]! - resets[i - 1]! >= 10000, `RESETs ${(resets[i]! - resets[i - 1]!).toFixed(1)} ms apart`);
    sim.powered = true;
    w.run(11000);
    ok(drv.ready);
  });

  it('a device that answers RESET but nothing else is still reset no more than every 10 s', () => {
    const { w, sim, drv } = changerRig();
    const wire = timedWire(w);
    w.run(3000);
    const from = w.scheduler.nowMs;
    // POLL and everything after it goes unanswered; RESET is acknowledged.
    for (const command of [1, 2, 3, 4, 5, 7]) sim.injectFault({ kind: 'silence', command, count: 100000 });
    w.run(60000);
    ok(!drv.ready);
    const resets = resetTimes(wire, 0x08).filter((t) => t > from);
    ok(resets.length >= 5, `resets: ${resets.length}`);
    for (let i = 1; i < resets.length; i++) ok(resets[i]! - resets[i - 1]! >= 10000, `RESETs ${(resets[i]! - resets[i - 1]!).toFixed(1)} ms apart`);
  });
});

describe('recovery: a bill in escrow when the validator resets or falls silent', () => {
  function escrowed(level: 1 | 2 = 1): ReturnType<typeof billRig> {
    const rig = billRig({ level });
    rig.drv.setAccepting(true, 1000);
    rig.w.run(1000);
    ok(rig.sim.insertBill(500));
    rig.w.run(1000);
    deepEqual(rig.log.events, ['ready', 'escrow 500']);
    return rig;
  }

  it('silent with a bill in escrow and no decision: the RESET hands it back, no credit', () => {
    const { w, sim, drv, log } = escrowed();
    sim.powered = false;
    w.run(8000);
    deepEqual(log.events, ['ready', 'escrow 500', 'lost']);
    equal(drv.escrowValue, 500, 'still in escrow as far as the VMC knows');
    sim.powered = true;
    w.run(11000);
    deepEqual(log.events, ['ready', 'escrow 500', 'lost', 'returned 500', 'ready']);
    deepEqual(sim.returnedBills, [500]);
    equal(sim.stacked, 0);
    equal(drv.escrowValue, 0);
  });

  it('STACK sent, its answer lost, then silence: the stacker count credits the bill once', () => {
    const { w, sim, drv, log, logs } = escrowed(2);
    sim.injectFault({ kind: 'drop-reply', command: 5, count: 1 });
    drv.decide(true);
    for (let i = 0; i < 100 && sim.stacking < 0; i++) w.run(2);
    ok(sim.stacking >= 0, 'the validator took the STACK');
    sim.powered = false;
    w.run(8000);
    equal(sim.stacked, 1, 'the bill reached the stacker while nobody listened');
    deepEqual(log.events, ['ready', 'escrow 500', 'lost']);
    sim.powered = true;
    w.run(11000);
    // The VMC's RESET wiped the validator's "stacked" report; the STACKER count tells.
    deepEqual(log.events, ['ready', 'escrow 500', 'lost', 'stacked 500', 'ready']);
    deepEqual(sim.returnedBills, []);
    equal(drv.stackerCount, 1);
    ok(logs.some((l) => l.includes('the bill was stacked')));
  });

  it('reset while stacking and the bill comes back out: returned, not credited', () => {
    const { w, sim, drv, log } = escrowed();
    drv.decide(true);
    for (let i = 0; i < 100 && sim.stacking < 0; i++) w.run(2);
    w.run(300);
    ok(sim.stacking >= 0 && sim.stackedBills.length === 0, 'on its way');
    sim.spontaneousReset();
    w.run(2000);
    deepEqual(log.events, ['ready', 'escrow 500', 'lost', 'returned 500', 'ready']);
    deepEqual(sim.returnedBills, [500]);
    equal(sim.stacked, 0);
  });

  it('a reset with a bill in escrow and no STACK sent is a returned bill, at once', () => {
    const { w, sim, log } = escrowed();
    sim.spontaneousReset();
    w.run(1500);
    deepEqual(log.events, ['ready', 'escrow 500', 'returned 500', 'lost', 'ready']);
  });
});
