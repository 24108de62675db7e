/**
 * The coin changer driver (firmware/mdb/changer.ts, payout.ts) word for word
 * against a scripted changer (test/lib/wire-script.ts): init, POLL reports,
 * the coin-return lever, DISPENSE payouts, the level 3 init and alternative
 * payout, and silence. Byte values from shared/reference/mdb.md ("Coin
 * changer (0x08)"). Named "wire/changer: ..." so docs/mdb.md can cite them.
 */
import { MdbBus } from '../../firmware/mdb/bus.js';
import { CoinChanger, ROUTE_CASHBOX, ROUTE_TUBES } from '../../firmware/mdb/changer.js';
import { WordLink } from '../../firmware/mdb/link.js';
import type { PeripheralTiming } from '../../firmware/mdb/peripheral.js';
import { deepEqual, equal, ok } from '../lib/assert.js';
import { WireScript, asciiWords, times, zeros } from '../lib/wire-script.js';

const TIMING: PeripheralTiming = { pollIntervalMs: 100, nonResponseMs: 2000, resetIntervalMs: 10000, justResetWaitMs: 500 };

/** Level 2, USD (BCD 1840), scale 5, 2 decimals, tubes for types 0..2; 5c, 10c, 25c, $1 (credit 0x14 = 20 x 5c). */
const SETUP_L2 = `< 02 18 40 05 02 00 07 01 02 05 14 ${zeros(12)} CHK`;
/** The same changer at level 3. */
const SETUP_L3 = `< 03 18 40 05 02 00 07 01 02 05 14 ${zeros(12)} CHK`;
/** No tube full; 10, 11 and 12 coins in the tubes of types 0..2. */
const TUBES = `< 00 00 0A 0B 0C ${zeros(13)} CHK`;
const POLL_IDLE = ['> 10B 0B', '< 100'];

/** RESET, "just reset", SETUP (level 2): up to the 500 ms wait before TUBE STATUS. */
const INIT_L2 = ['> 108 08 @reset', '< 100', '> 10B 0B', '< 0B 10B', '> 00', '> 109 09', SETUP_L2, '> 00'];
/** TUBE STATUS then COIN TYPE accepting types 0..3, manual dispense for the tube types 0..2. */
const READY = ['> 10A 0A @tubes', TUBES, '> 00', '> 10C 00 0F 00 07 22', '< 100'];

interface Rig {
  s: WireScript;
  changer: CoinChanger;
  events: string[];
  link: WordLink;
  /** The next this many coinDeposited calls throw (the machine could not take the coin). */
  throwOnCoin: number;
}

function rig(accepting = true): Rig {
  const s = new WireScript();
  const link = new WordLink({ serial: s.port, timers: s.clock });
  const bus = new MdbBus(link, s.clock, s.clock);
  const events: string[] = [];
  const changer = new CoinChanger({
    decimals: 2,
    currency: 840,
    timing: TIMING,
    log: () => {},
    changerReady: () => void events.push('ready'),
    changerLost: () => void events.push('lost'),
    coinDeposited: (type, value, routing) => {
      if (r.throwOnCoin > 0) {
        r.throwOnCoin--;
        throw new Error('journal full');
      }
      events.push(`coin ${type} ${value} ${routing === ROUTE_TUBES ? 'tubes' : routing === ROUTE_CASHBOX ? 'cashbox' : routing}`);
    },
    coinRejected: (type) => void events.push(`rejected ${type}`),
    coinsDispensedManually: (type, count, value) => void events.push(`manual ${type}x${count} ${value}`),
    changerStatus: (code) => void events.push(`status ${code}`),
    coinReturnPressed: () => void events.push('return lever'),
    payoutStarting: (tubes) => void events.push(`payout from ${Array.from(tubes.subarray(0, 3)).join(',')}`),
  });
  const r: Rig = { s, changer, events, link, throwOnCoin: 0 };
  changer.setAccepting(accepting);
  // Plugged in once the transcript plays: its first words are the RESET.
  s.clock.set(() => bus.add(changer), 0);
  return r;
}

function ready(): Rig {
  const r = rig();
  r.s.run([...INIT_L2, ...READY, ...POLL_IDLE]);
  return r;
}

describe('MDB wire: coin changer', () => {
  it('wire/changer: init is RESET, POLL (just reset), SETUP, TUBE STATUS no sooner than 500 ms after the reset, COIN TYPE', () => {
    const { s, changer, events } = rig();
    s.run([...INIT_L2, ...READY, ...POLL_IDLE]);
    deepEqual(events, ['ready']);
    ok(s.timeOf('tubes') - s.timeOf('reset') >= 500, `TUBE STATUS ${s.timeOf('tubes') - s.timeOf('reset')} ms after RESET`);
    equal(changer.setup.level, 2);
    equal(changer.setup.currency, 840);
    deepEqual(Array.from(changer.values.subarray(0, 4)), [5, 10, 25, 100]);
    deepEqual(Array.from(changer.tubes.subarray(0, 3)), [10, 11, 12]);
  });

  it('wire/changer: a level 2 changer gets no EXPANSION (0F) command', () => {
    // The transcript above has none; here the changer is also left polled for a while: still none.
    const { s } = ready();
    s.run(times(10, POLL_IDLE));
  });

  it('wire/changer: COIN TYPE with acceptance off is 0C 00 00 and the manual-dispense mask', () => {
    const { s, changer } = rig(false);
    s.run([...INIT_L2, '> 10A 0A', TUBES, '> 00', '> 10C 00 00 00 07 13', '< 100', ...POLL_IDLE]);
    changer.setAccepting(true);
    s.run(['> 10C 00 0F 00 07 22', '< 100', ...POLL_IDLE]);
  });

  it('wire/changer: enabling all 16 coin types sends the reference bytes 0C FF FF FF FF 08', () => {
    const { s, events } = rig();
    const setup = `< 02 18 40 01 02 FF FF 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 CHK`;
    s.run(['> 108 08', '< 100', '> 10B 0B', '< 0B 10B', '> 00', '> 109 09', setup, '> 00', '> 10A 0A', `< 00 00 ${zeros(16)} CHK`, '> 00', '> 10C FF FF FF FF 08', '< 100', ...POLL_IDLE]);
    deepEqual(events, ['ready']);
  });

  it('wire/changer: POLL reports a coin to the tubes (01yyxxxx), one to the cash box and the coin-return lever, each once', () => {
    const { s, changer, events } = ready();
    s.run([...POLL_IDLE, '> 10B 0B', '< 52 0D CHK', '> 00', '> 10B 0B', '< 43 00 01 CHK', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'coin 2 25 tubes', 'coin 3 100 cashbox', 'return lever']);
    equal(changer.tubes[2], 13);
  });

  it('wire/changer: a rejected coin (routing 11) and slugs (001xxxxx) credit nothing', () => {
    const { s, events } = ready();
    s.run(['> 10B 0B', '< 72 00 21 CHK', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'rejected 2']);
  });

  it('wire/changer: coins paid with the manual buttons (1yyyxxxx) are reported with the tube count left', () => {
    const { s, changer, events } = ready();
    s.run(['> 10B 0B', '< A1 09 CHK', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'manual 1x2 20']);
    equal(changer.tubes[1], 9);
  });

  it('wire/changer: a deposit whose corrupt answer is retransmitted on RET is credited once', () => {
    const { s, events } = ready();
    s.run(['> 10B 0B', '< 52 0D 160', '> AA', '< 52 0D CHK', '> 00', ...POLL_IDLE]);
    deepEqual(events, ['ready', 'coin 2 25 tubes']);
  });

  it('wire/changer: a deposit whose callback threw is NAKed, comes again at the next POLL and is credited then', () => {
    const r = rig();
    const { s, events } = r;
    s.run([...INIT_L2, ...READY, ...POLL_IDLE]);
    r.throwOnCoin = 1;
    s.run(['> 10B 0B', '< 52 0D CHK', '> FF', '> 10B 0B', '< 52 0D CHK', '> 00', ...POLL_IDLE], { throws: 1 });
    deepEqual(events, ['ready', 'coin 2 25 tubes']);
  });

  it('wire/changer: a status byte (07 tube jam) is reported; 0B (just reset) while ready restarts the init', () => {
    const { s, events } = ready();
    s.run(['> 10B 0B', '< 07 107', '> 00', '> 10B 0B', '< 0B 10B', '> 00', '> 109 09', SETUP_L2, '> 00', ...READY, ...POLL_IDLE]);
    deepEqual(events, ['ready', 'status 7', 'lost', 'ready']);
  });

  it('wire/changer: a payout reads the tubes, sends DISPENSE (0D, count << 4 | type), waits out "payout busy" (02) and reads the tubes again', () => {
    const { s, changer, events } = ready();
    const paid: string[] = [];
    ok(changer.payout([0, 2], (coins, value) => void paid.push(`${Array.from(coins.subarray(0, 3)).join(',')} = ${value}`)));
    s.run([
      '> 10A 0A',
      TUBES,
      '> 00',
      '> 10D 21 2E @dispense',
      '< 100',
      '> 10B 0B',
      '< 02 102',
      '> 00',
      '> 10B 0B',
      '< 100',
      '> 10A 0A @verify',
      '< 00 00 0A 09 0C 00 00 00 00 00 00 00 00 00 00 00 00 00 CHK',
      '> 00',
      ...POLL_IDLE,
    ]);
    deepEqual(paid, ['0,2,0 = 20']);
    deepEqual(events, ['ready', 'payout from 10,11,12']);
    ok(s.timeOf('verify') - s.timeOf('dispense') >= TIMING.pollIntervalMs, 'busy watched for a poll period at least');
  });

  it('wire/changer: more than 15 coins of a type go out in DISPENSEs of at most 15 (0D F0, then 0D 20)', () => {
    const { s, changer } = ready();
    const paid: number[] = [];
    ok(changer.payout([17], (_coins, value) => void paid.push(value)));
    const before = `< 00 00 14 0B 0C ${zeros(13)} CHK`;
    const after = `< 00 00 03 0B 0C ${zeros(13)} CHK`;
    // Each DISPENSE is watched for a full poll period before "not busy" is believed.
    s.run(['> 10A 0A', before, '> 00', '> 10D F0 FD', '< 100', ...POLL_IDLE, ...POLL_IDLE, '> 10D 20 2D', '< 100', ...POLL_IDLE, ...POLL_IDLE, '> 10A 0A', after, '> 00']);
    deepEqual(paid, [85]);
  });

  it('wire/changer: a DISPENSE whose answer was lost is not sent again; the tubes say what was paid', () => {
    const { s, changer } = ready();
    const paid: number[] = [];
    ok(changer.payout([0, 2], (_coins, value) => void paid.push(value)));
    s.run(['> 10A 0A', TUBES, '> 00', '> 10D 21 2E', '< silence', ...POLL_IDLE, ...POLL_IDLE, '> 10A 0A', `< 00 00 0A 09 0C ${zeros(13)} CHK`, '> 00', ...POLL_IDLE]);
    deepEqual(paid, [20]);
  });

  it('wire/changer: level 3 init adds 0F 00 (identification), 0F 01 (feature enable: offered and used) and 0F 05 (diagnostic) before TUBE STATUS', () => {
    const { s, changer } = rig();
    const id = `< ${asciiWords('ABC', 3)} ${asciiWords('S1', 12)} ${asciiWords('M1', 12)} 01 42 00 00 00 0F CHK`;
    s.run([
      '> 108 08 @reset',
      '< 100',
      '> 10B 0B',
      '< 0B 10B',
      '> 00',
      '> 109 09',
      SETUP_L3,
      '> 00',
      '> 10F 00 0F',
      id,
      '> 00',
      // Offered 0F; this driver uses alternative payout and extended diagnostics: 03.
      '> 10F 01 00 00 00 03 13',
      '< 100',
      '> 10F 05 14',
      '< 03 00 CHK',
      '> 00',
      ...READY,
      ...POLL_IDLE,
    ]);
    equal(changer.identity.manufacturer, 'ABC');
    equal(changer.identity.software, '0142');
    equal(changer.identity.enabled, 3);
    ok(changer.canPayoutValue);
    ok(s.timeOf('tubes') - s.timeOf('reset') >= 500);
  });

  it('wire/changer: level 3 alternative payout: 0F 02 (value in scale units), 0F 04 value polls until a lone ACK, 0F 03 coins per type, tubes read before and after', () => {
    const { s, changer, events } = rig();
    const id = `< ${asciiWords('ABC', 3)} ${asciiWords('S1', 12)} ${asciiWords('M1', 12)} 01 42 00 00 00 03 CHK`;
    s.run(['> 108 08', '< 100', '> 10B 0B', '< 0B 10B', '> 00', '> 109 09', SETUP_L3, '> 00', '> 10F 00 0F', id, '> 00', '> 10F 01 00 00 00 03 13', '< 100', '> 10F 05 14', '< 03 00 CHK', '> 00', ...READY, ...POLL_IDLE]);
    const paid: string[] = [];
    // 50 cents: 10 units of 5 cents.
    ok(changer.payoutValue(50, (coins, value) => void paid.push(`${Array.from(coins.subarray(0, 3)).join(',')} = ${value}`)));
    s.run([
      '> 10A 0A',
      TUBES,
      '> 00',
      '> 10F 02 0A 1B',
      '< 100',
      '> 10B 0B',
      '< 02 102',
      '> 00',
      '> 10F 04 13',
      '< 05 105',
      '> 00',
      '> 10B 0B',
      '< 02 102',
      '> 00',
      '> 10F 04 13',
      '< 100',
      '> 10F 03 12',
      `< 00 05 ${zeros(14)} CHK`,
      '> 00',
      '> 10A 0A',
      `< 00 00 0A 06 0C ${zeros(13)} CHK`,
      '> 00',
      ...POLL_IDLE,
    ]);
    deepEqual(paid, ['0,5,0 = 50']);
    deepEqual(events, ['ready', 'payout from 10,11,12']);
  });

  it('wire/changer: silent past its non-response time (2 s) it is lost, and RESET again no sooner than 10 s after the last RESET', () => {
    const { s, events } = ready();
    s.run(['> 10B 0B @heard', '< 100', ...times(20, ['> 10B 0B', '< silence']), '> 108 08 @reset2', '< silence', '> 108 08 @reset3', '< silence']);
    deepEqual(events, ['ready', 'lost']);
    ok(s.timeOf('reset2') - s.timeOf('reset') >= 10000, 'RESETs 10 s apart');
    ok(s.timeOf('reset3') - s.timeOf('reset2') >= 10000, 'RESETs 10 s apart');
  });
});
