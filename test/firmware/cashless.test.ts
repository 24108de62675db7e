/**
 * The cashless reader: the driver against the simulated reader's real
 * bytes, the card records in the journal and their checkpoint, the card
 * session in the purchase state machine, and the whole machine (wiring.ts)
 * on a wired board (telemetry, DEX, recovery after a cut). Portable: these run in
 * Node and inside XS.
 */
import type { Board, DigitalInput, DigitalInputOptions, PwmOutput, SelectionPanelOptions } from '../../firmware/board.js';
import { parseConfig, type SlotConfig } from '../../firmware/config.js';
import { DISPENSE_JAM, DISPENSE_OK } from '../../firmware/dispense/dispenser.js';
import { describeRecord } from '../../firmware/uplink/describe.js';
import * as Checkpoint from '../../firmware/journal/checkpoint.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { R_CARD_APPROVED, R_CARD_RESULT, R_CHECKPOINT, RECORD_NAMES } from '../../firmware/journal/records.js';
import { CardOutcome, CardVend, Counter } from '../../firmware/journal/vocabulary.js';
import { MdbBus } from '../../firmware/mdb/bus.js';
import { CashlessReader, type CashlessCallbacks } from '../../firmware/mdb/cashless.js';
import { checksum } from '../../firmware/mdb/frame.js';
import { WordLink } from '../../firmware/mdb/link.js';
import type { PeripheralTiming } from '../../firmware/mdb/peripheral.js';
import { Inventory } from '../../firmware/vend/inventory.js';
import { VendMachine } from '../../firmware/vend/machine.js';
import { wire, type MachineParts } from '../../firmware/wiring.js';
import { SimDropSensor, SimMotor } from '../../hal-sim/dispense.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';
import { SimCashlessReader, type SimCashlessOptions } from '../../hal-sim/mdb/cashless.js';
import { SimCoinChanger } from '../../hal-sim/mdb/changer.js';
import { Random } from '../../hal-sim/scheduler.js';
import { deepEqual, equal, ok } from '../lib/assert.js';
import { Recorder } from '../lib/recorder.js';
import { Wired } from '../lib/wired.js';

const TIMING: PeripheralTiming = { pollIntervalMs: 100, nonResponseMs: 5000, resetIntervalMs: 10000, justResetWaitMs: 500 };
const noLog = (): void => {};

class ReaderLog implements CashlessCallbacks {
  events: string[] = [];
  readonly readerReady = (): void => {
    this.events.push('ready');
  };
  readonly readerLost = (): void => {
    this.events.push('lost');
  };
  readonly sessionBegan = (funds: number): void => {
    this.events.push(`session ${funds}`);
  };
  readonly sessionCancelRequested = (): void => {
    this.events.push('cancel request');
  };
  readonly vendApproved = (amount: number): void => {
    this.events.push(`approved ${amount}`);
  };
  readonly vendDenied = (): void => {
    this.events.push('denied');
  };
  readonly vendReported = (success: boolean): void => {
    this.events.push(success ? 'reported success' : 'reported failure');
  };
  readonly sessionEnded = (): void => {
    this.events.push('end session');
  };
  readonly readerCancelled = (): void => {
    this.events.push('cancelled');
  };
  readonly readerStatus = (code: number): void => {
    this.events.push(`status ${code}`);
  };
}

/** `machineCurrency`: the machine's ISO 4217 numeric code the driver checks the reader's against (0: unchecked). */
function readerRig(options: Partial<SimCashlessOptions> = {}, machineCurrency = 0): { w: Wired; sim: SimCashlessReader; drv: CashlessReader; log: ReaderLog } {
  const w = new Wired();
  const sim = new SimCashlessReader(w.scheduler, w.bus, { funds: 1000, currency: 840, decimals: 2, ...options });
  const link = new WordLink({ serial: w.serial, timers: w.timers });
  const bus = new MdbBus(link, w.clock, w.timers);
  const log = new ReaderLog();
  const drv = new CashlessReader({ decimals: 2, currency: machineCurrency, timing: TIMING, log: noLog, identity: { serial: 'VM-7', version: 0x0100 }, ...log });
  drv.setPrices(100, 250);
  drv.setEnabled(true);
  bus.add(drv);
  return { w, sim, drv, log };
}

/** The VMC's blocks (address byte first, checksum dropped) as hex strings. */
function vmcBlocks(w: Wired): string[] {
  const out: string[] = [];
  let cur: number[] | undefined;
  for (const x of w.wire) {
    if (x.dir !== 'vmc') continue;
    if (x.word & 0x100) {
      if (cur) out.push(hexOf(cur.slice(0, -1)));
      cur = [x.word & 0xff];
    } else if (cur) {
      cur.push(x.word);
    }
  }
  if (cur) out.push(hexOf(cur.slice(0, -1)));
  return out;
}

function hexOf(bytes: readonly number[]): string {
  return bytes.map((b) => (b < 16 ? '0' : '') + b.toString(16).toUpperCase()).join(' ');
}

/** The VMC's blocks to the reader, without its own ACK/NAK/RET words and without POLLs. */
function commands(w: Wired): string[] {
  return vmcBlocks(w)
    .map((b) => b.split(' '))
    .filter((b) => b[0] !== '12')
    .map((b) => {
      // Drop trailing control words (ACK 00 / RET AA / NAK FF) the VMC sent after a data answer.
      const n = expectedLength(b);
      return b.slice(0, n).join(' ');
    });
}

function expectedLength(b: string[]): number {
  switch (b[0]) {
    case '11':
      return 6;
    case '13':
      return b[1] === '00' || b[1] === '05' ? 6 : b[1] === '02' ? 4 : 2;
    case '14':
      return 2;
    case '17':
      return b[1] === '00' ? 31 : 2;
    default:
      return 1;
  }
}

describe('cashless reader driver', () => {
  it('runs the init sequence: RESET, just reset, SETUP config, max/min prices, EXPANSION ID, READER ENABLE', () => {
    const { w, drv, log } = readerRig();
    w.run(1000);
    ok(drv.ready, 'ready');
    deepEqual(log.events, ['ready']);
    const cmds = commands(w);
    equal(cmds[0], '10', 'RESET first');
    equal(cmds[1], '11 00 02 00 00 00', 'SETUP config data: VMC level 2, no display');
    equal(cmds[2], '11 01 00 FA 00 64', 'max 2.50, min 1.00');
    equal(cmds[3]!.slice(0, 5), '17 00', 'EXPANSION REQUEST ID');
    equal(cmds[3]!.split(' ').length, 31, 'the VMC sends its 29-byte identity');
    equal(cmds[4], '14 01', 'READER ENABLE');
    equal(drv.setup.level, 2);
    equal(drv.setup.currency, 840);
    equal(drv.setup.maxResponseS, 5);
    ok(drv.multiVend);
    equal(drv.identity.model, 'SIMREADER');
    equal(drv.identity.software, '0123');
  });

  it('sends the worked VEND REQUEST bytes (price 0x003C, item 1, CHK 0x50)', () => {
    const { w, sim, drv } = readerRig();
    w.run(1000);
    ok(sim.tap());
    w.run(300);
    ok(drv.session);
    equal(drv.funds, 1000);
    ok(drv.vendRequest(60, 1));
    w.run(200);
    const block = [0x13, 0x00, 0x00, 0x3c, 0x00, 0x01];
    ok(vmcBlocks(w).some((b) => b.startsWith('13 00 00 3C 00 01')), 'VEND REQUEST on the wire');
    equal(checksum(block, 0, block.length), 0x50);
    const words = w.wire.filter((x) => x.dir === 'vmc').map((x) => x.word);
    const at = words.indexOf(0x113);
    deepEqual(words.slice(at, at + 7), [0x113, 0x00, 0x00, 0x3c, 0x00, 0x01, 0x50]);
  });

  it('goes through a card sale: begin session, approval, VEND SUCCESS, SESSION COMPLETE, END SESSION', () => {
    const { w, sim, drv, log } = readerRig();
    w.run(1000);
    sim.tap();
    w.run(300);
    ok(drv.vendRequest(125, 3));
    w.run(600);
    drv.vendResult(true, 3);
    w.run(300);
    drv.sessionComplete();
    w.run(400);
    deepEqual(log.events, ['ready', 'session 1000', 'approved 125', 'reported success', 'end session']);
    deepEqual(sim.charged, [125]);
    equal(sim.funds, 875);
    ok(!drv.session);
    ok(!drv.busy);
    ok(commands(w).includes('13 02 00 03'), 'VEND SUCCESS item 3');
    ok(commands(w).includes('13 04'), 'SESSION COMPLETE');
  });

  it('reports a denial, and VEND FAILURE has the reader refund', () => {
    const { w, sim, drv, log } = readerRig({ funds: 100 });
    w.run(1000);
    sim.tap();
    w.run(300);
    drv.vendRequest(125, 1);
    w.run(600);
    drv.vendRequest(100, 2);
    w.run(600);
    drv.vendResult(false, 0);
    w.run(300);
    deepEqual(log.events, ['ready', 'session 100', 'denied', 'approved 100', 'reported failure']);
    deepEqual(sim.charged, []);
    equal(sim.refunds, 1);
  });

  it('withdraws a request: dropped if it has not left, VEND CANCEL (and a denial) if it has', () => {
    const { w, sim, drv, log } = readerRig({ approveUs: 2_000_000 });
    w.run(1000);
    sim.tap();
    w.run(300);
    drv.vendRequest(125, 1);
    ok(drv.vendCancel(), 'not sent yet: simply dropped');
    w.run(300);
    ok(!commands(w).some((c) => c.startsWith('13 00')), 'no VEND REQUEST went out');
    drv.vendRequest(125, 1);
    w.run(300);
    ok(!drv.vendCancel(), 'out already: VEND CANCEL');
    w.run(400);
    ok(commands(w).includes('13 01'));
    deepEqual(log.events, ['ready', 'session 1000', 'denied']);
    equal(sim.approvals, 0);
  });

  it('converts scale factor and decimals to the machine minor units', () => {
    // Reader counts in units of 0.50 (scale 5, one decimal); the machine in cents.
    const { w, sim, drv, log } = readerRig({ scale: 5, readerDecimals: 1, funds: 1000 });
    w.run(1000);
    sim.tap();
    w.run(300);
    equal(drv.funds, 1000);
    equal(sim.maxPrice, 5, 'max 2.50 is 5 units');
    equal(sim.minPrice, 2, 'min 1.00 is 2 units');
    drv.vendRequest(125, 1);
    w.run(600);
    // 1.25 is not a whole number of units: the request rounds up, never charging less than the price.
    deepEqual(log.events, ['ready', 'session 1000', 'approved 150']);
  });

  it('takes chained messages in order (begin session and cancel request in one POLL)', () => {
    const { w, sim, log } = readerRig();
    w.run(1000);
    sim.tap();
    sim.cancelAtReader();
    w.run(300);
    deepEqual(log.events, ['ready', 'session 1000', 'cancel request']);
    const chained = w.wire.filter((x) => x.dir === 'periph').map((x) => x.word & 0xff);
    ok(hexOf(chained).includes('03 03 E8 12 34 56 78 00 00 00 04'), 'both messages in one answer');
  });

  it('takes an approval exactly once when its POLL answer needs retransmission', () => {
    const { w, sim, drv, log } = readerRig();
    w.run(1000);
    sim.tap();
    w.run(300);
    drv.vendRequest(125, 1);
    sim.injectFault({ kind: 'garble', command: 2, count: 1 });
    w.run(600);
    deepEqual(log.events, ['ready', 'session 1000', 'approved 125']);
    ok(sim.stats.retransmits >= 1);
  });

  it('a "just reset" between approval and success ends the session, and the reader counts the vend as a success', () => {
    const { w, sim, drv, log } = readerRig();
    w.run(1000);
    sim.armFault({ after: 'approval', kind: 'reset' });
    sim.tap();
    w.run(300);
    drv.vendRequest(125, 1);
    w.run(1500);
    deepEqual(log.events, ['ready', 'session 1000', 'approved 125', 'lost', 'ready']);
    deepEqual(sim.charged, [125], 'reset after approval = success');
    ok(!drv.session);
    drv.vendResult(true, 1);
    ok(!drv.busy, 'nothing to report to a reader without a session');
  });

  it('resets the reader on "command out of sequence"', () => {
    const { w, sim, drv, log } = readerRig();
    w.run(1000);
    sim.tap();
    w.run(300);
    // VEND SUCCESS with no approved vend: the reader says out of sequence.
    drv.vendResult(true, 1);
    w.run(12000);
    equal(sim.outOfSequence, 1);
    deepEqual(log.events, ['ready', 'session 1000', 'lost', 'ready']);
    ok(drv.ready);
    ok(commands(w).filter((c) => c === '10').length === 2, 'a second RESET');
  });

  it('goes offline after 5 s of silence, resets at most every 10 s, and comes back', () => {
    const { w, sim, drv, log } = readerRig();
    w.run(1000);
    sim.silence(31000);
    w.run(6000);
    ok(!drv.ready, 'offline after the non-response time');
    deepEqual(log.events, ['ready', 'lost']);
    w.run(20000);
    const resets = commands(w).filter((c) => c === '10').length;
    ok(resets <= 4, `resets: ${resets}`);
    // Silent until 32 s; the next RESET (10 s after the last) brings it back.
    w.run(15000);
    ok(drv.ready, 'back');
    deepEqual(log.events, ['ready', 'lost', 'ready']);
  });

  it("waits the reader's own maximum response time when it is longer than 5 s", () => {
    const { w, sim, drv } = readerRig({ maxResponseS: 10 });
    w.run(1000);
    sim.silence(8000);
    w.run(8500);
    ok(drv.ready, 'still up after 8 s of silence');
    sim.silence(12000);
    w.run(11000);
    ok(!drv.ready, 'offline past 10 s');
  });

  it('speaks level 1 to a level-1 reader: no EXPANSION, three-byte begin session', () => {
    const { w, sim, drv, log } = readerRig({ level: 1 });
    w.run(1000);
    ok(drv.ready);
    ok(!commands(w).some((c) => c.startsWith('17')), 'no EXPANSION');
    sim.tap();
    w.run(300);
    deepEqual(log.events, ['ready', 'session 1000']);
  });

  it('READER CANCEL is answered with CANCELLED', () => {
    const { w, drv, log } = readerRig();
    w.run(1000);
    drv.cancelReader();
    w.run(300);
    ok(commands(w).includes('14 02'));
    deepEqual(log.events, ['ready', 'cancelled']);
  });

  it('RESETs a reader that never sends END SESSION after SESSION COMPLETE (MDB 4.2 7.4.9); a price change then reaches it', () => {
    const { w, sim, drv, log } = readerRig({ endSession: false });
    w.run(1000);
    sim.tap();
    w.run(300);
    ok(drv.vendRequest(125, 1));
    w.run(600);
    drv.vendResult(true, 1);
    w.run(300);
    drv.sessionComplete();
    w.run(400);
    deepEqual(log.events, ['ready', 'session 1000', 'approved 125', 'reported success']);
    ok(commands(w).includes('13 04'), 'SESSION COMPLETE sent');
    // The operator changes a price: SETUP max/min waits while the reader's session is open.
    drv.setPrices(100, 300);
    w.run(1000);
    equal(sim.maxPrice, 250, 'not sent while the session is open');
    equal(commands(w).filter((c) => c === '10').length, 1, 'no RESET yet: within the non-response time');
    // Past the 5 s non-response time: RESET, the session is gone on both sides, and the new prices go out in the init.
    w.run(5000);
    equal(commands(w).filter((c) => c === '10').length, 2, 'a second RESET');
    ok(!drv.session, 'session cleared');
    ok(drv.ready, 'back and ready');
    equal(sim.maxPrice, 300, 'max price 3.00 reached the reader');
    equal(sim.minPrice, 100);
    deepEqual(log.events, ['ready', 'session 1000', 'approved 125', 'reported success', 'lost', 'ready']);
    deepEqual(sim.charged, [125], 'charged once');
    // And the next card works.
    ok(sim.tap());
    w.run(300);
    equal(log.events[log.events.length - 1], 'session 875');
  });

  it('a reader that does send END SESSION is not reset, and the price change follows the session', () => {
    const { w, sim, drv, log } = readerRig();
    w.run(1000);
    sim.tap();
    w.run(300);
    drv.sessionComplete();
    drv.setPrices(100, 300);
    w.run(8000);
    equal(commands(w).filter((c) => c === '10').length, 1, 'one RESET: the first');
    equal(sim.maxPrice, 300);
    deepEqual(log.events, ['ready', 'session 1000', 'end session']);
  });

  it('does not enable a reader in another currency: READER DISABLE, no ready, a tap opens no session', () => {
    const { w, sim, drv, log } = readerRig({ currency: 978 }, 840);
    w.run(2000);
    equal(drv.setup.currency, 978);
    ok(!drv.ready, 'not ready for the machine');
    equal(drv.refused, 'currency');
    ok(!sim.enabled, 'never enabled');
    ok(commands(w).includes('14 00'), 'READER DISABLE');
    ok(!commands(w).includes('14 01'), 'never READER ENABLE');
    equal(sim.tap(), false, 'a disabled reader takes no card');
    ok(!drv.vendRequest(125, 1));
    deepEqual(log.events, []);
    // Still polled: it is there, only refused.
    const polls = vmcBlocks(w).filter((b) => b === '12').length;
    w.run(1000);
    ok(vmcBlocks(w).filter((b) => b === '12').length > polls, 'still polled');
  });

  it('enables a reader in the machine currency', () => {
    const { w, sim, drv, log } = readerRig({ currency: 840 }, 840);
    w.run(1000);
    ok(drv.ready);
    equal(drv.refused, '');
    ok(sim.enabled);
    deepEqual(log.events, ['ready']);
  });

  it('does not enable a reader whose units cannot express every price; enables it once they can', () => {
    // Units of 0.50 (scale 5, one decimal); the prices are multiples of 0.25.
    const { w, sim, drv, log } = readerRig({ scale: 5, readerDecimals: 1 }, 840);
    drv.setPrices(100, 250, 25);
    w.run(1000);
    equal(drv.refused, 'scaling');
    ok(!sim.enabled);
    deepEqual(log.events, []);
    // The operator reprices in whole 0.50s: now every price is a whole number of units.
    drv.setPrices(100, 250, 50);
    w.run(500);
    equal(drv.refused, '');
    ok(drv.ready);
    ok(sim.enabled);
    deepEqual(log.events, ['ready']);
    // And back: a price of 1.25 makes it unusable again, as a loss to the machine.
    drv.setPrices(100, 250, 25);
    w.run(500);
    ok(!sim.enabled);
    deepEqual(log.events, ['ready', 'lost']);
  });

  it('disables and enables the reader when the machine says so', () => {
    const { w, sim, drv } = readerRig();
    w.run(1000);
    ok(sim.enabled);
    drv.setEnabled(false);
    w.run(300);
    ok(!sim.enabled);
    equal(sim.tap(), false, 'a disabled reader takes no card');
    drv.setEnabled(true);
    w.run(300);
    ok(sim.tap());
  });
});

// ---- the journal ---------------------------------------------------------------------------

const SMALL = { size: 16 * 1024, blockLength: 1024, writeAlign: 4 };
const CODES = ['A1', 'B2'];

function books(flash = new FlashImage(SMALL)): { journal: Journal; ledger: Ledger; flash: FlashImage } {
  const clock = { now: (): number => 0 };
  const ledger = new Ledger(new Uint16Array([5, 5]), new Uint8Array(2), layoutHash(CODES), { prices: new Int32Array([125, 100]), cashless: true });
  const journal = new Journal(flash, ledger, clock);
  journal.open();
  return { journal, ledger, flash };
}

describe('card records in the journal', () => {
  it('counts a card sale as cashless, leaves the cash books alone, and closes the vend with its result', () => {
    const { journal, ledger } = books();
    journal.cardApproved(0, 125);
    equal(ledger.cardVend, CardVend.APPROVED);
    journal.vendStart(0, 125);
    journal.vendOk(0, 125);
    equal(ledger.cardVend, CardVend.DELIVERED);
    equal(ledger.total[Counter.CASHLESS_SALES], 1);
    equal(ledger.total[Counter.CASHLESS_VALUE], 125);
    equal(ledger.total[Counter.SALES], 0, 'not a cash sale');
    equal(ledger.total[Counter.REVENUE], 0);
    equal(ledger.credit, 0, 'credit untouched');
    equal(ledger.qty[0], 4);
    equal(ledger.slotSales[0], 1);
    ok(ledger.balanced());
    journal.cardResult(CardOutcome.SUCCESS, 0, 125);
    equal(ledger.cardVend, CardVend.NONE);
    const described: string[] = [];
    journal.log.readEvents(1, 100, (type, seq, time, d, o, len) => {
      if (type === R_CARD_APPROVED || type === R_CARD_RESULT) described.push(JSON.stringify(describeRecord(type, seq, time, d, o, len, CODES)));
    });
    deepEqual(described.map((s) => JSON.parse(s) as Record<string, unknown>).map((e) => [e['type'], e['slot'], e['amount'], e['outcome']]), [
      ['card-approved', 'A1', 125, undefined],
      ['card-result', 'A1', 125, 'success'],
    ]);
    equal(RECORD_NAMES[R_CARD_APPROVED], 'card-approved');
  });

  it('counts what the reader kept without a product as owed back', () => {
    const { journal, ledger } = books();
    journal.cardApproved(1, 100);
    journal.vendStart(1, 100);
    journal.vendFailed(1, DISPENSE_JAM);
    equal(ledger.cardVend, CardVend.FAILED);
    journal.cardResult(CardOutcome.UNREFUNDED, 1, 100);
    equal(ledger.total[Counter.CASHLESS_UNREFUNDED], 100);
    equal(ledger.total[Counter.CASHLESS_SALES], 0);
    equal(ledger.cardVend, CardVend.NONE);
  });

  it('rebuilds the card state from flash and keeps it in checkpoints (version 5 on)', () => {
    const { journal, ledger, flash } = books();
    journal.cardApproved(0, 125);
    journal.vendStart(0, 125);
    journal.vendOk(0, 125);
    const again = books(new FlashImage(SMALL, flash.bytes));
    equal(again.ledger.cardVend, CardVend.DELIVERED);
    equal(again.ledger.cardAmount, 125);
    equal(again.ledger.total[Counter.CASHLESS_VALUE], 125);
    const cp = new Uint8Array(ledger.checkpointLength);
    const n = ledger.save(cp);
    equal(n, ledger.checkpointLength);
    equal(cp[0], Checkpoint.VERSION, 'the newest checkpoint version');
    const loaded = new Ledger(new Uint16Array(2), new Uint8Array(2), layoutHash(CODES), { cashless: true });
    ok(loaded.load(cp, 0, n));
    equal(loaded.cardVend, CardVend.DELIVERED);
    equal(loaded.cardSlot, 0);
    equal(loaded.cardAmount, 125);
    equal(loaded.total[Counter.CASHLESS_SALES], 1);
    equal(loaded.qty[0], 4);
    void R_CHECKPOINT;
    journal.cardResult(CardOutcome.SOLD_RESET, 0, 125);
  });

  it('a 100-slot machine with a reader still fits its checkpoint in a 4 KiB block', () => {
    const ledger = new Ledger(new Uint16Array(100), new Uint8Array(100), 1, { cashless: true });
    const journal = new Journal(new FlashImage({ size: 64 * 1024, blockLength: 4096, writeAlign: 4 }), ledger, { now: () => 0 });
    journal.open();
    ok(ledger.checkpointLength <= journal.log.maxPayload, `${ledger.checkpointLength} bytes`);
  });

  it('a machine without a reader keeps version 4 layout; a version 4 checkpoint still loads', () => {
    const { journal, ledger } = books();
    journal.coinIn(2, 1, 25);
    journal.vendStart(1, 100);
    const v6 = new Uint8Array(ledger.checkpointLength);
    const n = ledger.save(v6);
    const plain = new Ledger(new Uint16Array(2), new Uint8Array(2), layoutHash(CODES));
    equal(plain.checkpointLength, n - Checkpoint.CASHLESS_BLOCK, 'no reader: the checkpoint does not grow');
    // The same books as version 4 wrote them: no clock state (version 6), no update state (7), no cashless block.
    const v4 = v6.slice(0, n - Checkpoint.CLOCK_STATE - Checkpoint.UPDATE_NONE - Checkpoint.CASHLESS_BLOCK);
    v4[0] = 4;
    const loaded = new Ledger(new Uint16Array(2), new Uint8Array(2), layoutHash(CODES));
    ok(loaded.load(v4, 0, v4.length), 'a version 4 checkpoint loads');
    equal(loaded.credit, 25);
    equal(loaded.openVend, 1);
    equal(loaded.total[Counter.CASHLESS_SALES], 0);
    equal(loaded.cardVend, CardVend.NONE);
    deepEqual(Array.from(loaded.qty), Array.from(ledger.qty));
    equal(loaded.commandHigh, ledger.commandHigh);
    ok(!loaded.load(v4, 0, v4.length - Checkpoint.AUDIT_STATE), 'a short one is refused');
  });
});

// ---- the state machine ---------------------------------------------------------------------

const SLOTS: SlotConfig[] = [
  { code: 'A1', product: 'Chips', price: 125, qty: 5, capacity: 10, category: 'Snacks' },
  { code: 'B4', product: 'Coke', price: 175, qty: 1, capacity: 10, category: 'Drinks' },
];

function machine(): { m: VendMachine; p: Recorder } {
  const p = new Recorder();
  const m = new VendMachine(new Inventory(SLOTS), { policy: 'refuse', sessionTimeoutMs: 30000, maxCredit: 2000, maxQuantity: 5 }, p);
  m.setReady(true);
  return { m, p };
}

describe('card sessions in the purchase state machine', () => {
  it('requests the selection, dispenses on approval without touching credit, and closes the session', () => {
    const { m, p } = machine();
    m.cardSession(1000, true);
    equal(m.state, 'ACCEPTING_PAYMENT');
    m.select(0, 1);
    deepEqual(p.log, ['request 0 125']);
    ok(m.busy, 'waiting for the approval');
    ok(m.cardApproved(125));
    equal(m.state, 'DISPENSING');
    ok(m.cardVending);
    m.dispensed(DISPENSE_OK);
    deepEqual(p.log, ['request 0 125', 'dispense 0', 'sold 0 125', 'session complete']);
    equal(m.state, 'IDLE');
    equal(m.credit, 0);
    ok(!m.card);
  });

  it('a selection made first is requested as soon as the card is presented', () => {
    const { m, p } = machine();
    m.select(0, 1);
    equal(m.state, 'PRODUCT_SELECTED');
    m.cardSession(-1, true);
    deepEqual(p.log, ['request 0 125']);
  });

  it('keeps the session after a denial, for another choice', () => {
    const { m, p } = machine();
    m.cardSession(100, true);
    m.select(1, 1);
    m.cardDenied();
    equal(m.state, 'ACCEPTING_PAYMENT');
    ok(m.card);
    equal(m.selection, -1);
    deepEqual(p.notices, ['card-denied']);
    m.select(0, 1);
    deepEqual(p.log, ['request 1 175', 'request 0 125']);
  });

  it('cancel while waiting for approval sends VEND CANCEL, then ends the session on the denial', () => {
    const { m, p } = machine();
    m.cardSession(1000, true);
    m.select(0, 1);
    m.cancel();
    deepEqual(p.log, ['request 0 125', 'vend cancel']);
    equal(m.state, 'ACCEPTING_PAYMENT');
    m.cardDenied();
    equal(m.state, 'IDLE');
    deepEqual(p.log, ['request 0 125', 'vend cancel', 'session complete']);
  });

  it('an approval that crosses the cancel is not vended', () => {
    const { m, p } = machine();
    m.cardSession(1000, true);
    m.select(0, 1);
    m.cancel();
    equal(m.cardApproved(125), false, 'the caller has the reader refund it');
    equal(m.state, 'IDLE');
    ok(!p.log.includes('dispense 0'));
  });

  it('a jam ends the card vend without a sale', () => {
    const { m, p } = machine();
    m.cardSession(1000, true);
    m.select(0, 1);
    m.cardApproved(125);
    m.dispensed(DISPENSE_JAM);
    deepEqual(p.log, ['request 0 125', 'dispense 0', 'failed 0', 'session complete']);
    deepEqual(p.notices, ['jam']);
    equal(m.state, 'IDLE');
  });

  it('a multi-vend is one approval per item with a multivend reader, refused with one that is not', () => {
    const a = machine();
    a.m.cardSession(1000, true);
    a.m.select(0, 2);
    a.m.cardApproved(125);
    a.m.dispensed(DISPENSE_OK);
    equal(a.m.state, 'DISPENSING', 'asking for the second item');
    a.m.cardApproved(125);
    a.m.dispensed(DISPENSE_OK);
    deepEqual(a.p.log, ['request 0 125', 'dispense 0', 'sold 0 125', 'request 0 125', 'dispense 0', 'sold 0 125', 'session complete']);
    const b = machine();
    b.m.cardSession(1000, false);
    b.m.select(0, 2);
    deepEqual(b.p.notices, ['card-one-item']);
    deepEqual(b.p.log, []);
    ok(b.m.card, 'the session stays for a single item');
  });

  it('does not mix cash and card: a session is refused while coins are held; a coin ends an idle session', () => {
    const { m, p } = machine();
    m.coin(25);
    m.cardSession(1000, true);
    ok(!m.card);
    deepEqual(p.log, ['session complete']);
    deepEqual(p.notices, ['card-refused']);
    equal(m.credit, 25);
    const b = machine();
    b.m.cardSession(1000, true);
    b.m.coin(100);
    ok(!b.m.card, 'cash won');
    deepEqual(b.p.log, ['session complete']);
    equal(b.m.state, 'ACCEPTING_PAYMENT');
    equal(b.m.credit, 100);
  });

  it('the reader ending its session returns to the selection; a vend under way finishes', () => {
    const { m, p } = machine();
    m.select(0, 1);
    m.cardSession(1000, true);
    m.cardEnded();
    equal(m.state, 'PRODUCT_SELECTED');
    const b = machine();
    b.m.cardSession(1000, true);
    b.m.select(0, 1);
    b.m.cardApproved(125);
    b.m.cardEnded();
    equal(b.m.state, 'DISPENSING');
    b.m.dispensed(DISPENSE_OK);
    equal(b.m.state, 'IDLE');
    deepEqual(b.p.log, ['request 0 125', 'dispense 0', 'sold 0 125']);
    void p;
  });
});

// ---- the whole machine on a wired board --------------------------------------------------

/** A Board on the wired simulator: MDB bus, motors and drop sensor from hal-sim, flash in RAM. */
class WiredBoard implements Board {
  readonly w = new Wired();
  readonly clock = this.w.clock;
  readonly timers = this.w.timers;
  readonly mdb = this.w.serial;
  readonly sensor = new SimDropSensor();
  readonly motors: SimMotor[];
  readonly delivered: string[] = [];
  readonly logs: string[] = [];
  lines: string[] = [];
  panel: SelectionPanelOptions | undefined;
  readonly display = { columns: 20, rows: 2, show: (lines: readonly string[]): void => void (this.lines = lines.slice()) };
  private dropCallback: (() => void) | undefined;

  constructor(
    readonly flash: FlashImage,
    slots: { code: string; qty: number }[],
  ) {
    const random = new Random(7);
    this.motors = slots.map((s, i) => new SimMotor(i, s, this.w.scheduler, random, this.sensor, this.delivered));
    this.sensor.onChange = () => this.dropCallback?.();
  }

  openMotor(index: number): PwmOutput {
    const m = this.motors[index]!;
    return { resolution: 10, write: (duty: number) => m.setDuty(duty), close: () => {} };
  }
  openDropSensor(options: DigitalInputOptions): DigitalInput {
    this.dropCallback = options.onReadable;
    return { read: () => this.sensor.level, close: () => {} };
  }
  openSelectionPanel(options: SelectionPanelOptions): { close(): void } {
    this.panel = options;
    return { close: () => {} };
  }
  openIndicator(): { write(v: 0 | 1): void; close(): void } {
    return { write: () => {}, close: () => {} };
  }
  openFlash(): FlashImage {
    return this.flash;
  }
  log(level: string, message: string): void {
    this.logs.push(`${level}: ${message}`);
  }
}

interface Machine {
  board: WiredBoard;
  reader: SimCashlessReader;
  changer: SimCoinChanger;
  parts: MachineParts;
}

/** `devices`: the simulated reader's own options and the changer's currency (ISO numeric; default the machine's, USD). */
function wiredMachine(
  flash = new FlashImage({ size: 64 * 1024, blockLength: 4096, writeAlign: 4 }),
  funds = 1000,
  stock = 5,
  devices: { reader?: Partial<SimCashlessOptions>; changerCurrency?: number } = {},
): Machine {
  const slots = [
    { code: 'A1', product: 'Chips', price: 125, qty: stock },
    { code: 'B2', product: 'Water', price: 100, qty: 3 },
  ];
  const board = new WiredBoard(flash, slots);
  const reader = new SimCashlessReader(board.w.scheduler, board.w.bus, { funds, currency: 840, decimals: 2, ...devices.reader });
  const changer = new SimCoinChanger(board.w.scheduler, board.w.bus, { coins: [{ value: 25, tube: 20 }], currency: devices.changerCurrency ?? 840, decimals: 2 });
  const parts = wire(board, parseConfig({ machineId: 'vm-card', currency: 'USD', slots, cashless: true }), { firmware: '' });
  board.w.run(1000);
  return { board, reader, changer, parts };
}

function events(c: MachineParts): string[] {
  const out: string[] = [];
  c.journal.log.readEvents(1, 10000, (type) => {
    out.push(RECORD_NAMES[type] ?? `type-${type}`);
  });
  return out;
}

describe('the machine with a cashless reader', () => {
  it('sells by card: journal order approval, vend start, vend ok, result; telemetry and DEX count it', () => {
    const { board, reader, parts } = wiredMachine();
    equal(parts.reports.status().devices.cashless, true);
    ok(reader.tap());
    board.w.run(300);
    equal(parts.controller.machine.state, 'ACCEPTING_PAYMENT');
    board.panel!.onSelect('A1', 1);
    board.w.run(4000);
    deepEqual(board.delivered, ['A1']);
    deepEqual(reader.charged, [125]);
    const st = parts.reports.status();
    equal(st.state, 'IDLE');
    equal(st.counters.cashlessSales, 1);
    equal(st.counters.cashlessRevenue, 125);
    equal(st.counters.sales, 0, 'cash sales');
    ok(!st.busy);
    const ev = events(parts).filter((e) => e.startsWith('card') || e.startsWith('vend'));
    deepEqual(ev, ['card-approved', 'vend-start', 'vend-ok', 'card-result']);
    const t = parts.reports.telemetry();
    deepEqual((t['errors'] as string[]).filter((e) => e.startsWith('cashless')), []);
    const counters = t['counters'] as Record<string, number>;
    equal(counters['cashlessSales'], 1);
    equal(counters['cashlessRevenue'], 125);
    const dex = String.fromCharCode(...parts.remote.auditFile(1, 0));
    ok(dex.includes('\r\nDA1*SIM000000001*SIMREADER*0123\r\n'), 'DA1 with the reader identity');
    ok(dex.includes('\r\nDA2*125*1*125*1\r\n'), 'DA2 value and count, init and reset');
    ok(dex.includes('\r\nVA1*125*1*125*1\r\n'), 'card sales are paid vends');
    ok(dex.includes('\r\nCA2*0*0*0*0\r\n'), 'but not cash');
  });

  it('reports cashless-offline when the reader goes silent, and sells again when it is back', () => {
    const { board, reader, parts } = wiredMachine();
    reader.silence(20000);
    board.w.run(7000);
    equal(parts.reports.status().devices.cashless, false);
    ok((parts.reports.telemetry()['errors'] as string[]).includes('cashless-offline'));
    board.w.run(25000);
    equal(parts.reports.status().devices.cashless, true);
    ok(reader.tap());
    board.w.run(300);
    board.panel!.onSelect('B2', 1);
    board.w.run(4000);
    deepEqual(reader.charged, [100]);
  });

  it('counts flash faults in telemetry; with no flash block that erases it stops with "Storage fault"', () => {
    const geometry = { size: 64 * 1024, blockLength: 4096, writeAlign: 4 };
    const some = wiredMachine(new FlashImage(geometry, undefined, { failErases: [[0, 0]] }));
    const j = some.parts.reports.telemetry()['journal'] as Record<string, unknown>;
    ok((j['faults'] as number) >= 1, `block 0 refused its erase: ${JSON.stringify(j)}`);
    equal(j['level'], 'ok', 'one bad block of sixteen: the machine sells on');
    const clean = wiredMachine();
    equal((clean.parts.reports.telemetry()['journal'] as Record<string, unknown>)['faults'], undefined, 'no faults: no field');
    const worn = wiredMachine(new FlashImage(geometry, undefined, { wearLimit: 0 }));
    worn.board.w.run(5000);
    const t = worn.parts.reports.telemetry();
    equal((t['journal'] as Record<string, unknown>)['level'], 'fault');
    ok((t['errors'] as string[]).includes('journal-fault'));
    equal(worn.board.lines[1], 'Storage fault');
    equal(worn.parts.controller.machine.state, 'ERROR');
  });

  it('a reader in another currency: not enabled, a tap does nothing; telemetry, status and the display say why; coins still sell', () => {
    const { board, reader, parts, changer } = wiredMachine(undefined, 1000, 5, { reader: { currency: 978 } });
    board.w.run(1000);
    const st = parts.reports.status();
    equal(st.devices.cashless, false);
    deepEqual(st.refused, { cashless: { reason: 'currency', currency: 978, scale: 1, decimals: 2 } });
    const t = parts.reports.telemetry();
    const errors = t['errors'] as string[];
    ok(errors.includes('cashless-currency-mismatch'), errors.join());
    ok(!errors.includes('cashless-offline'), 'it answers: not offline');
    deepEqual(t['refused'], { cashless: { reason: 'currency', currency: 978, scale: 1, decimals: 2 } });
    equal(board.lines[1], 'Card: wrong currency');
    equal(reader.tap(), false, 'the reader was never enabled');
    board.w.run(300);
    equal(parts.controller.machine.state, 'IDLE');
    board.panel!.onSelect('B2', 1);
    for (let i = 0; i < 4; i++) {
      board.w.run(300);
      ok(changer.insertCoin(25), 'the changer takes the coin');
    }
    board.w.run(4000);
    deepEqual(board.delivered, ['B2']);
    deepEqual(reader.charged, []);
    equal(reader.sessions, 0);
  });

  it('a changer in another currency takes no coins and is not offline: changer-currency-mismatch', () => {
    const { board, changer, parts } = wiredMachine(undefined, 1000, 5, { changerCurrency: 978 });
    board.w.run(1000);
    const st = parts.reports.status();
    equal(st.devices.changer, false);
    equal(st.refused?.changer?.reason, 'currency');
    const errors = parts.reports.telemetry()['errors'] as string[];
    ok(errors.includes('changer-currency-mismatch') && !errors.includes('changer-offline'), errors.join());
    equal(changer.acceptMask, 0, 'COIN TYPE disabled every coin');
    equal(board.lines[1], 'Coin: wrong currency');
    equal(changer.insertCoin(25), false, 'a coin comes straight back');
  });

  it('a reader that never sends END SESSION: the machine RESETs it 5 s after SESSION COMPLETE and the new price reaches it', () => {
    const { board, reader, parts } = wiredMachine(undefined, 1000, 5, { reader: { endSession: false } });
    equal(reader.maxPrice, 125);
    ok(reader.tap());
    board.w.run(300);
    board.panel!.onSelect('A1', 1);
    board.w.run(4000);
    deepEqual(board.delivered, ['A1']);
    deepEqual(reader.charged, [125]);
    equal(parts.controller.machine.state, 'IDLE');
    // A set-prices command lands (what the commander leaves: the new price, then commandApplied).
    parts.inventory.prices[0] = 150;
    parts.remote.commandApplied();
    board.w.run(500);
    equal(reader.maxPrice, 125, 'held while the reader still has its session');
    board.w.run(5000);
    equal(reader.maxPrice, 150, 'sent in the init after the RESET');
    equal(parts.reports.status().devices.cashless, true);
    ok(board.logs.some((l) => l.includes('no END SESSION')), 'the reset is logged');
    // The next card pays the new price.
    ok(reader.tap());
    board.w.run(300);
    board.panel!.onSelect('A1', 1);
    board.w.run(4000);
    deepEqual(reader.charged, [125, 150]);
    equal(parts.reports.status().counters.cashlessRevenue, 275);
  });

  it('cancel while the reader authorises: "Cancelled" at once; a reader that then goes silent is "not responding"', () => {
    const { board, reader, parts } = wiredMachine(undefined, 1000, 5, { reader: { approveUs: 3_000_000 } });
    reader.armFault({ after: 'cancel', kind: 'silence', ms: 60000 });
    ok(reader.tap());
    board.w.run(300);
    board.panel!.onSelect('A1', 1);
    board.w.run(500);
    equal(board.lines[0], 'Card: authorising');
    board.panel!.onCancel();
    board.w.run(50);
    equal(board.lines[0], 'Cancelled', 'the cancel shows at once');
    // No VEND DENIED ever comes; the reader stops answering and is declared offline after 5 s.
    board.w.run(4000);
    equal(board.lines[0], 'Cancelled');
    board.w.run(2000);
    equal(parts.reports.status().devices.cashless, false);
    equal(board.lines.join(' '), 'Card reader not responding');
    equal(parts.controller.machine.state, 'IDLE');
    ok(!parts.controller.machine.card);
    deepEqual(board.delivered, []);
    deepEqual(reader.charged, []);
    equal(reader.approvals, 0);
  });

  it('a cut after the product fell and before VEND SUCCESS: counted once after the reboot, never vended again', () => {
    const a = wiredMachine();
    a.reader.armFault({ after: 'approval', kind: 'silence' });
    a.reader.tap();
    a.board.w.run(300);
    a.board.panel!.onSelect('A1', 1);
    a.board.w.run(3000);
    deepEqual(a.board.delivered, ['A1']);
    equal(a.parts.ledger.cardVend, CardVend.DELIVERED, 'not reported yet');
    // Power fails: the reader's approved vend counts as a success (it is charged); the journal survives.
    const owed = a.reader.approvedOutstanding;
    equal(owed, 125);
    a.parts.bus.stop();
    const b = wiredMachine(new FlashImage(a.board.flash.geometry, a.board.flash.bytes), 1000 - owed, 4);
    b.board.w.run(2000);
    const st = b.parts.reports.status();
    equal(st.counters.cashlessSales, 1, 'one sale');
    equal(st.counters.cashlessUnrefunded, 0);
    equal(b.parts.ledger.cardVend, CardVend.NONE, 'settled');
    deepEqual(b.board.delivered, [], 'nothing dispensed after the reboot');
    const results: string[] = [];
    b.parts.journal.log.readEvents(1, 10000, (type, seq, time, d, o, len) => {
      if (type === R_CARD_RESULT) results.push(String(describeRecord(type, seq, time, d, o, len, ['A1', 'B2'])['outcome']));
    });
    deepEqual(results, ['sold-reader-reset']);
    equal(st.state, 'IDLE');
  });
});
