/**
 * The cashless reader driver (firmware/mdb/cashless.ts) word for word
 * against a scripted reader (test/lib/wire-script.ts): init, a session with
 * an approved vend, denial, VEND CANCEL, VEND FAILURE, "command out of
 * sequence" and a missing END SESSION. Byte values from
 * shared/reference/mdb.md ("Cashless device #1 (0x10)"). Named
 * "wire/cashless: ..." so docs/mdb.md can cite them.
 */
import { MdbBus } from '../../firmware/mdb/bus.js';
import { CashlessReader } from '../../firmware/mdb/cashless.js';
import { WordLink } from '../../firmware/mdb/link.js';
import type { PeripheralTiming } from '../../firmware/mdb/peripheral.js';
import { deepEqual, equal, ok } from '../lib/assert.js';
import { WireScript, asciiWords, times } from '../lib/wire-script.js';

const TIMING: PeripheralTiming = { pollIntervalMs: 100, nonResponseMs: 5000, resetIntervalMs: 10000, justResetWaitMs: 500 };

const POLL_IDLE = ['> 112 12', '< 100'];
/** Reader config: level 2, USD, scale 1, 2 decimals, max response 5 s, no options. */
const CONFIG = '< 01 02 18 40 01 02 05 00 CHK';
/** The VMC's identity as the driver sends it: "VFL", serial blank, model "VENDFLEET", version 0000. */
const VMC_ID = `56 46 4C ${asciiWords('', 12)} ${asciiWords('VENDFLEET', 12)} 00 00`;
const READER_ID = `< 09 ${asciiWords('RDR', 3)} ${asciiWords('R-9', 12)} ${asciiWords('CARD', 12)} 01 00 CHK`;
/**
 * RESET, POLL (00 just reset), SETUP config (VMC level 2, no display: 11 00 02 00 00 00),
 * SETUP max/min price ($3.00 / $0.60), EXPANSION REQUEST ID, READER ENABLE.
 */
const INIT = [
  '> 110 10 @reset',
  '< 100',
  '> 112 12',
  '< 00 100',
  '> 00',
  '> 111 00 02 00 00 00 13',
  CONFIG,
  '> 00',
  '> 111 01 01 2C 00 3C 7B',
  '< 100',
  `> 117 00 ${VMC_ID} 7C`,
  READER_ID,
  '> 00',
  '> 114 01 15',
  '< 100',
  ...POLL_IDLE,
];
/** Begin session, level 2: funds $2.00, media id, payment type, payment data. */
const BEGIN = ['> 112 12', '< 03 00 C8 00 00 00 01 00 00 00 CHK', '> 00'];

function rig(): { s: WireScript; reader: CashlessReader; events: string[] } {
  const s = new WireScript();
  const link = new WordLink({ serial: s.port, timers: s.clock });
  const bus = new MdbBus(link, s.clock, s.clock);
  const events: string[] = [];
  const reader = new CashlessReader({
    decimals: 2,
    currency: 840,
    timing: TIMING,
    log: () => {},
    readerReady: () => void events.push('ready'),
    readerLost: () => void events.push('lost'),
    sessionBegan: (funds) => void events.push(`session ${funds}`),
    sessionCancelRequested: () => void events.push('cancel request'),
    vendApproved: (amount) => void events.push(`approved ${amount}`),
    vendDenied: () => void events.push('denied'),
    vendReported: (success) => void events.push(`reported ${success ? 'success' : 'failure'}`),
    sessionEnded: () => void events.push('ended'),
    readerCancelled: () => void events.push('cancelled'),
    readerStatus: (code) => void events.push(`status ${code}`),
  });
  reader.setPrices(60, 300);
  reader.setEnabled(true);
  s.clock.set(() => bus.add(reader), 0);
  return { s, reader, events };
}

function ready(): ReturnType<typeof rig> {
  const r = rig();
  r.s.run(INIT);
  return r;
}

describe('MDB wire: cashless reader', () => {
  it('wire/cashless: init is RESET, POLL (just reset), 11 00 config, 11 01 max/min price, 17 00 request ID, 14 01 enable', () => {
    const { reader, events } = ready();
    deepEqual(events, ['ready']);
    equal(reader.setup.level, 2);
    equal(reader.setup.currency, 840);
    equal(reader.identity.manufacturer, 'RDR');
  });

  it('wire/cashless: a session: begin (funds), VEND REQUEST with the reference bytes 13 00 00 3C 00 01 50, approval, VEND SUCCESS, SESSION COMPLETE, END SESSION', () => {
    const { s, reader, events } = ready();
    s.run(BEGIN);
    ok(reader.vendRequest(60, 1));
    s.run(['> 113 00 00 3C 00 01 50', '< 100', '> 112 12', '< 05 00 3C CHK', '> 00']);
    reader.vendResult(true, 1);
    s.run(['> 113 02 00 01 16', '< 100', ...POLL_IDLE]);
    reader.sessionComplete();
    s.run(['> 113 04 17', '< 100', '> 112 12', '< 07 107', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'session 200', 'approved 60', 'reported success', 'ended']);
    equal(reader.session, false);
  });

  it('wire/cashless: VEND DENIED (06) on POLL ends the request; VEND FAILURE (13 03) reports a failed vend', () => {
    const { s, reader, events } = ready();
    s.run(BEGIN);
    ok(reader.vendRequest(60, 1));
    s.run(['> 113 00 00 3C 00 01 50', '< 100', '> 112 12', '< 06 106', '> 00', ...POLL_IDLE]);
    ok(reader.vendRequest(60, 2));
    s.run(['> 113 00 00 3C 00 02 51', '< 100', '> 112 12', '< 05 00 3C CHK', '> 00']);
    reader.vendResult(false, 2);
    s.run(['> 113 03 16', '< 100', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'session 200', 'denied', 'approved 60', 'reported failure']);
  });

  it('wire/cashless: VEND CANCEL (13 01) after the request went out is answered by VEND DENIED', () => {
    const { s, reader, events } = ready();
    s.run(BEGIN);
    ok(reader.vendRequest(60, 1));
    s.run(['> 113 00 00 3C 00 01 50', '< 100', ...POLL_IDLE]);
    equal(reader.vendCancel(), false);
    s.run(['> 113 01 14', '< 06 106', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'session 200', 'denied']);
  });

  it('wire/cashless: a VEND REQUEST lost on the wire is sent again a poll period later, the same bytes', () => {
    const { s, reader, events } = ready();
    s.run(BEGIN);
    ok(reader.vendRequest(60, 1));
    s.run(['> 113 00 00 3C 00 01 50 @first', '< silence', '> 112 12', '< 100', '> 113 00 00 3C 00 01 50 @again', '< 100', '> 112 12', '< 05 00 3C CHK', '> 00']);
    deepEqual(events, ['ready', 'session 200', 'approved 60']);
    ok(s.timeOf('again') - s.timeOf('first') >= TIMING.pollIntervalMs);
  });

  it('wire/cashless: an approval whose POLL answer was corrupt is asked for with RET and taken once', () => {
    const { s, reader, events } = ready();
    s.run(BEGIN);
    ok(reader.vendRequest(60, 1));
    s.run(['> 113 00 00 3C 00 01 50', '< 100', '> 112 12', '< 05 00 3C 142', '> AA', '< 05 00 3C CHK', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'session 200', 'approved 60']);
  });

  it('wire/cashless: chained messages in one POLL answer (begin session, then session cancel request) are taken in order', () => {
    const { s, events } = ready();
    s.run(['> 112 12', '< 03 00 C8 00 00 00 01 00 00 00 04 CHK', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'session 200', 'cancel request']);
  });

  it('wire/cashless: "command out of sequence" (0B) makes the VMC RESET the reader and run the init again', () => {
    const { s, events } = ready();
    s.run(BEGIN);
    s.run(['> 112 12', '< 0B 02 CHK', '> 00', ...INIT]);
    deepEqual(events, ['ready', 'session 200', 'lost', 'ready']);
  });

  it('wire/cashless: READER DISABLE (14 00) and ENABLE (14 01) follow the machine', () => {
    const { s, reader } = ready();
    reader.setEnabled(false);
    s.run(['> 114 00 14', '< 100', ...POLL_IDLE]);
    reader.setEnabled(true);
    s.run(['> 114 01 15', '< 100', ...POLL_IDLE]);
  });

  it('wire/cashless: no END SESSION within the non-response time after SESSION COMPLETE: the VMC RESETs the reader', () => {
    const { s, reader, events } = ready();
    s.run(BEGIN);
    reader.sessionComplete();
    s.run(['> 113 04 17 @complete', '< 100', ...times(51, POLL_IDLE), '> 110 10 @reset2', '< silence']);
    const waited = s.timeOf('reset2') - s.timeOf('complete');
    ok(waited > TIMING.nonResponseMs && waited < TIMING.nonResponseMs + 2 * TIMING.pollIntervalMs, `RESET ${waited} ms after SESSION COMPLETE`);
    deepEqual(events, ['ready', 'session 200', 'lost']);
  });
});
