/**
 * npm start [-- --target sim|xs] [--customers N] [--seed N] [--trace]
 *
 * The main job on the embedded default: one simulated vending machine, the
 * real firmware bundle driving it over real MDB bytes, a few scripted
 * customers (and optionally random ones), and a running account of what
 * happens: what the display says, what goes in, what comes out.
 */
import { money, visit } from '../hal-sim/customers.js';
import { MachineHost } from '../hal-sim/host.js';
import type { MachineSpec } from '../hal-sim/rig.js';
import { Random } from '../hal-sim/scheduler.js';
import type { TargetName } from '../hal-sim/transport.js';

interface Options {
  target: TargetName;
  customers: number;
  seed: number;
  trace: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { target: 'sim', customers: 0, seed: 1, trace: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) fail(`${a} needs a non-negative integer`);
      return n;
    };
    if (a === '--target') {
      const t = argv[++i];
      if (t !== 'sim' && t !== 'xs') fail('--target is sim or xs');
      o.target = t;
    } else if (a === '--customers') o.customers = value();
    else if (a === '--seed') o.seed = value();
    else if (a === '--trace') o.trace = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm start -- [--target sim|xs] [--customers N] [--seed N] [--trace]\n');
      process.exit(0);
    } else fail(`unknown option ${a}`);
  }
  return o;
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(2);
}

const machine: MachineSpec = {
  currency: 'USD',
  slots: [
    { code: 'A1', product: 'Chips', price: 125, qty: 5, category: 'Snacks' },
    { code: 'A2', product: 'Pretzels', price: 150, qty: 4, category: 'Snacks' },
    { code: 'B4', product: 'Coke', price: 175, qty: 6, category: 'Drinks' },
    { code: 'C2', product: 'Water', price: 100, qty: 0, category: 'Drinks' },
  ],
  changer: {
    coins: [
      { value: 5, tube: 40 },
      { value: 10, tube: 40 },
      { value: 25, tube: 40 },
      { value: 100, tube: null },
    ],
  },
  bills: [100, 500],
};

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  let host: MachineHost | undefined;
  const clock = (): string => {
    const ms = host ? Math.round(host.nowMs) : 0;
    const m = Math.floor(ms / 60000);
    const s = ((ms % 60000) / 1000).toFixed(3).padStart(6, '0');
    return `[${String(m).padStart(2, '0')}:${s}]`;
  };
  const print = (text: string): void => void process.stdout.write(text + '\n');

  print(`vendfleet: the firmware bundle on a simulated machine (target ${o.target}${o.target === 'xs' ? ', the XS engine' : ', Node'}), seed ${o.seed}`);
  print(`machine: ${machine.slots.map((s) => `${s.code} ${s.product} ${(s.price / 100).toFixed(2)} x${s.qty}`).join(', ')}`);
  print('         coin changer with 5/10/25 tubes (dollar coins to the cash box), bill validator for $1 and $5, MDB at 9600 baud');
  print('');

  host = await MachineHost.start(machine, {
    target: o.target,
    seed: o.seed,
    onLog: (level, message) => {
      if (level === 'warn' || level === 'error' || o.trace) print(`${clock()}   firmware ${level}: ${message}`);
    },
  });
  const h = host;
  const showDisplay = (): void => {
    h.rig.display.onShow = (lines) => print(`${clock()}   display  | ${lines.map((l) => l.padEnd(20)).join(' | ')} |`);
  };
  showDisplay();
  print(`${clock()}   changer and bill validator initialised over MDB; display | ${h.rig.display.lines.map((l) => l.padEnd(20)).join(' | ')} |`);

  const say = (who: string) => (text: string) => print(`${clock()} ${who} ${text}`);
  const step = async (who: string, text: string, act: () => boolean | void): Promise<void> => {
    say(who)(text);
    if (act() === false) say(who)('(it comes back)');
    await h.runUntilIdle();
  };

  print('\ncustomer 1 buys a Coke with a dollar bill and a dollar coin');
  await step('customer 1', 'presses B4', () => h.select('B4'));
  await step('customer 1', 'inserts a $1 bill', () => h.insertBill(100));
  await step('customer 1', 'inserts a $1 coin', () => h.insertCoin(100));
  print(`${clock()} customer 1 takes ${h.rig.delivered.at(-1)} and ${money(h.rig.changer!.paidValue, h)} in change`);

  print('\ncustomer 2 wants water, finds it sold out, buys two bags of chips with a $5 bill');
  await step('customer 2', 'presses C2', () => h.select('C2'));
  await step('customer 2', 'presses A1, quantity 2', () => h.select('A1', 2));
  const paid2 = h.rig.changer!.paidValue;
  await step('customer 2', 'inserts a $5 bill', () => h.insertBill(500));
  print(`${clock()} customer 2 takes ${h.rig.delivered.slice(-2).join(' and ')} and ${money(h.rig.changer!.paidValue - paid2, h)} in change`);

  print('\ncustomer 3 puts in two quarters, gets distracted and walks away');
  await step('customer 3', 'presses A2', () => h.select('A2'));
  await step('customer 3', 'inserts a quarter', () => h.insertCoin(25));
  await step('customer 3', 'inserts a quarter', () => h.insertCoin(25));
  say('customer 3')('walks away; 30 seconds pass');
  await h.run(31000);
  await h.runUntilIdle();

  print('\ncustomer 4 buys pretzels, but the spiral jams');
  h.jam('A2');
  await step('customer 4', 'presses A2', () => h.select('A2'));
  await step('customer 4', 'inserts a $1 coin', () => h.insertCoin(100));
  await step('customer 4', 'inserts two quarters', () => h.insertCoin(25) && h.insertCoin(25));
  await h.run(6000);
  await h.runUntilIdle();

  print('\ncustomer 5 changes their mind and presses cancel');
  await step('customer 5', 'inserts a $1 bill', () => h.insertBill(100));
  await step('customer 5', 'presses cancel', () => h.cancel());

  print('\ncustomer 6 puts in a $1 bill and a quarter, and the power fails');
  await step('customer 6', 'presses A1', () => h.select('A1'));
  await step('customer 6', 'inserts a $1 bill', () => h.insertBill(100));
  say('customer 6')('(the lights go out; 2 seconds later the power is back and the firmware boots from its flash journal)');
  await h.powerCut();
  showDisplay();
  print(`${clock()}   display  | ${h.rig.display.lines.map((l) => l.padEnd(20)).join(' | ')} |`);
  await step('customer 6', 'inserts a quarter', () => h.insertCoin(25));
  await step('customer 6', 'presses A1', () => h.select('A1'));

  if (o.customers > 0) {
    print(`\n${o.customers} more customers arrive`);
    const rnd = new Random(o.seed);
    for (let i = 0; i < o.customers; i++) await visit(h, rnd, { say: say(`customer ${7 + i}`) });
  }

  const st = await h.status();
  const c = st.counters;
  print('\nend of the day');
  print(`  sales ${c.sales}, revenue ${money(c.revenue, h)}; coins in ${money(c.coinsToTubes + c.coinsToCashbox, h)}, bills in ${money(c.billsStacked, h)}`);
  print(`  paid out ${money(c.coinsPaidOut, h)} in ${c.coinsPaidOutCount} coins; credit held ${money(st.credit, h)}; failed vends ${c.failedVends}`);
  print(`  stock ${st.slots.map((s) => `${s.code} ${s.qty}${s.outOfService ? ' (out of service)' : ''}`).join(', ')}`);
  print(`  tubes ${st.tubes.map((t) => `${money(t.value, h)} x${t.count}`).join(', ')}`);
  print(`  MDB link: ${st.link.blocks} blocks, ${st.link.timeouts} timeouts, ${st.link.retransmits} retransmissions`);
  const j = st.journal;
  print(`  journal: ${j.lastSeq} events, ${c.boots} reboot${c.boots === 1 ? '' : 's'}, ${j.unsynced} not yet acknowledged (no gateway yet), ${j.fill}% of the partition in use`);
  print(`  ${(h.nowMs / 1000).toFixed(1)} s of machine time`);
  await h.close();
}

main().catch((e) => {
  process.stderr.write(`demo: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
