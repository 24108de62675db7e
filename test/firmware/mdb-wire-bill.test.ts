/**
 * The bill validator driver (firmware/mdb/bill.ts) word for word against a
 * scripted validator (test/lib/wire-script.ts): init, escrow (stack and
 * return), a reset with a bill in escrow, and POLL status. Byte values from
 * shared/reference/mdb.md ("Bill validator (0x30)"). Named "wire/bill: ..."
 * so docs/mdb.md can cite them.
 */
import { BillValidator } from '../../firmware/mdb/bill.js';
import { MdbBus } from '../../firmware/mdb/bus.js';
import { WordLink } from '../../firmware/mdb/link.js';
import type { PeripheralTiming } from '../../firmware/mdb/peripheral.js';
import { deepEqual, equal, ok } from '../lib/assert.js';
import { WireScript, asciiWords, times, zeros } from '../lib/wire-script.js';

const TIMING: PeripheralTiming = { pollIntervalMs: 100, nonResponseMs: 5000, resetIntervalMs: 10000, justResetWaitMs: 500 };

/** Level 2, USD, scale 100 (0064), 2 decimals, 500 bills, no high security, escrow (FF); $1, $5, $10, $20. */
const SETUP_L2 = `< 02 18 40 00 64 02 01 F4 00 00 FF 01 05 0A 14 ${zeros(12)} CHK`;
const SETUP_L1 = `< 01 18 40 00 64 02 01 F4 00 00 FF 01 05 0A 14 ${zeros(12)} CHK`;
const ID = `${asciiWords('BVX', 3)} ${asciiWords('B-1', 12)} ${asciiWords('VAL', 12)} 02 10`;
const POLL_IDLE = ['> 133 33', '< 100'];
/** STACKER (10 bills), BILL TYPE enabling and escrowing types 0..3, first POLL. */
const STACKER_TO_READY = ['> 136 36', '< 00 0A CHK', '> 00', '> 134 00 0F 00 0F 52', '< 100', ...POLL_IDLE];
/** RESET, POLL (06 just reset), SETUP, 37 02 (identification with options, level 2), 37 01 (feature enable: none offered), then ready. */
const INIT_L2 = [
  '> 130 30 @reset0',
  '< 100',
  '> 133 33',
  '< 06 106',
  '> 00',
  '> 131 31',
  SETUP_L2,
  '> 00',
  '> 137 02 39',
  `< ${ID} 00 00 00 00 CHK`,
  '> 00',
  '> 137 01 00 00 00 00 38',
  '< 100',
  ...STACKER_TO_READY,
];

function rig(): { s: WireScript; bill: BillValidator; events: string[] } {
  const s = new WireScript();
  const link = new WordLink({ serial: s.port, timers: s.clock });
  const bus = new MdbBus(link, s.clock, s.clock);
  const events: string[] = [];
  const bill = new BillValidator({
    decimals: 2,
    currency: 840,
    timing: TIMING,
    log: () => {},
    billReady: () => void events.push('ready'),
    billLost: () => void events.push('lost'),
    billEscrowed: (type, value) => void events.push(`escrow ${type} ${value}`),
    billStacked: (type, value) => void events.push(`stacked ${type} ${value}`),
    billReturned: (type, value) => void events.push(`returned ${type} ${value}`),
    billStatus: (code) => void events.push(`status ${code}`),
  });
  bill.setAccepting(true, 2000);
  s.clock.set(() => bus.add(bill), 0);
  return { s, bill, events };
}

function ready(): ReturnType<typeof rig> {
  const r = rig();
  r.s.run(INIT_L2);
  return r;
}

describe('MDB wire: bill validator', () => {
  it('wire/bill: level 2 init is RESET, POLL (just reset), SETUP, 37 02, 37 01, STACKER, BILL TYPE', () => {
    const { bill, events } = ready();
    deepEqual(events, ['ready']);
    equal(bill.setup.scale, 100);
    deepEqual(Array.from(bill.values.subarray(0, 4)), [100, 500, 1000, 2000]);
    equal(bill.identity.manufacturer, 'BVX');
    equal(bill.stackerCount, 10);
  });

  it('wire/bill: a level 1 validator is asked 37 00 (identification without options) and no 37 01', () => {
    const { s, events } = rig();
    s.run(['> 130 30', '< 100', '> 133 33', '< 06 106', '> 00', '> 131 31', SETUP_L1, '> 00', '> 137 00 37', `< ${ID} CHK`, '> 00', ...STACKER_TO_READY]);
    deepEqual(events, ['ready']);
  });

  it('wire/bill: BILL TYPE enables only bills up to the limit; 0 disables all (34 00 00 00 00)', () => {
    const { s, bill } = ready();
    bill.setAccepting(true, 1000);
    s.run(['> 134 00 07 00 07 42', '< 100', ...POLL_IDLE]);
    bill.setAccepting(false, 0);
    s.run(['> 134 00 00 00 00 34', '< 100', ...POLL_IDLE]);
  });

  it('wire/bill: a bill in escrow (1001xxxx) is not credit; ESCROW 35 01 stacks it and only "stacked" (1000xxxx) credits it', () => {
    const { s, bill, events } = ready();
    s.run(['> 133 33', '< 91 191', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'escrow 1 500']);
    bill.decide(true);
    s.run(['> 135 01 36', '< 100', '> 133 33', '< 81 181', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'escrow 1 500', 'stacked 1 500']);
    equal(bill.stackerCount, 11);
  });

  it('wire/bill: ESCROW 35 00 returns the bill (1010xxxx): no credit', () => {
    const { s, bill, events } = ready();
    s.run(['> 133 33', '< 92 192', '> 00']);
    bill.decide(false);
    s.run(['> 135 00 35', '< 100', '> 133 33', '< A2 1A2', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'escrow 2 1000', 'returned 2 1000']);
  });

  it('wire/bill: an ESCROW refused with NAK is sent again', () => {
    const { s, bill, events } = ready();
    s.run(['> 133 33', '< 91 191', '> 00']);
    bill.decide(true);
    s.run(['> 135 01 36', '< 1FF', '> 135 01 36', '< 100', '> 133 33', '< 81 181', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'escrow 1 500', 'stacked 1 500']);
  });

  it('wire/bill: "just reset" (06) with a bill in escrow and no stack sent: the bill was returned, and the init runs again', () => {
    const { s, events } = ready();
    s.run(['> 133 33', '< 91 191', '> 00', '> 133 33', '< 06 106', '> 00', '> 131 31', SETUP_L2, '> 00', '> 137 02 39', `< ${ID} 00 00 00 00 CHK`, '> 00', '> 137 01 00 00 00 00 38', '< 100', ...STACKER_TO_READY]);
    deepEqual(events, ['ready', 'escrow 1 500', 'returned 1 500', 'lost', 'ready']);
  });

  it('wire/bill: reset after a stack whose answer was lost: the STACKER count read in the init says it was stacked', () => {
    const { s, bill, events } = ready();
    s.run(['> 133 33', '< 91 191', '> 00']);
    bill.decide(true);
    const init = ['> 131 31', SETUP_L2, '> 00', '> 137 02 39', `< ${ID} 00 00 00 00 CHK`, '> 00', '> 137 01 00 00 00 00 38', '< 100'];
    // The stack went out (and was obeyed); the answer and the "stacked" report are lost with the validator's reset.
    s.run(['> 135 01 36', '< silence', '> 135 01 36', '< 100', '> 133 33', '< 06 106', '> 00', ...init, '> 136 36', '< 00 0B CHK', '> 00', '> 134 00 0F 00 0F 52', '< 100', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'escrow 1 500', 'lost', 'stacked 1 500', 'ready']);
  });

  it('wire/bill: status bytes are reported (08 cash box out), bills tried while disabled (010xxxxx) credit nothing', () => {
    const { s, events } = ready();
    s.run(['> 133 33', '< 08 43 CHK', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'status 8']);
  });

  it('wire/bill: silent past its non-response time (5 s) it is lost, then RESET', () => {
    const { s, events } = ready();
    s.run(['> 133 33 @heard', '< 100', ...times(49, ['> 133 33', '< silence']), '> 133 33 @last', '< silence', '> 130 30 @reset', '< silence']);
    deepEqual(events, ['ready', 'lost']);
    ok(s.timeOf('last') - s.timeOf('heard') >= 4900, 'polled on for 5 s of silence');
    ok(s.timeOf('reset') - s.timeOf('reset0') >= 10000, 'RESETs 10 s apart');
  });
});
