/**
 * Money and stock invariants of a simulated machine, checked against both the
 * firmware's books and the physical truth the simulator keeps (used by the
 * simulation tests and, through cut-check.ts, by the bench).
 */
import type { FirmwareStatus } from '../firmware/vend/report.js';
import type { MachineHost } from './host.js';

export async function checkInvariants(host: MachineHost, where = ''): Promise<FirmwareStatus> {
  const st = await host.status();
  const rig = host.rig;
  const c = st.counters;
  const fail = (msg: string): never => {
    throw new Error(`${where ? where + ': ' : ''}${msg}\nstatus: ${JSON.stringify({ state: st.state, credit: st.credit, escrow: st.escrow, counters: c })}`);
  };
  const moneyIn = c.coinsToTubes + c.coinsToCashbox + c.billsStacked;
  // Every cent taken in was sold, paid back, or is still the customer's credit.
  if (moneyIn !== c.revenue + c.coinsPaidOut + st.credit) fail(`books do not balance: in ${moneyIn} != revenue ${c.revenue} + paid out ${c.coinsPaidOut} + credit ${st.credit}`);
  // Once the changer has reported everything, the firmware credited exactly the coins it took,
  // except coins a power cut caught before the VMC acknowledged them (those may be missing).
  const credited = c.coinsToTubes + c.coinsToCashbox;
  if (rig.changer && rig.quiet() && (rig.changer.acceptedValue < credited || rig.changer.acceptedValue > credited + rig.coinsAtRisk)) {
    fail(`changer took ${rig.changer.acceptedValue} in coins but the firmware credited ${credited} (${rig.coinsAtRisk} unacknowledged at power cuts)`);
  }
  // The firmware paid out exactly what the changer physically handed over.
  if (rig.changer && rig.changer.paidValue !== c.coinsPaidOut) fail(`changer paid ${rig.changer.paidValue} but the firmware recorded ${c.coinsPaidOut}`);
  if (rig.changer && rig.changer.paidOut.length !== c.coinsPaidOutCount) fail(`changer paid ${rig.changer.paidOut.length} coins, firmware recorded ${c.coinsPaidOutCount}`);
  // Bills credited are bills in the stacker.
  const stackedValue = rig.validator ? rig.validator.stackedBills.reduce((a, b) => a + b, 0) : 0;
  if (stackedValue !== c.billsStacked) fail(`stacker holds ${stackedValue} but the firmware credited ${c.billsStacked}`);
  // Every sale (cash or card) is a product that fell, and no product fell unsold; a vend a power cut
  // interrupted before its outcome was recorded is not charged and may have delivered.
  const uncertain = c.uncertainVends;
  const unsold = rig.delivered.length - c.sales - c.cashlessSales;
  if (unsold < 0 || unsold > uncertain) fail(`${rig.delivered.length} products delivered but ${c.sales} cash and ${c.cashlessSales} card sales recorded (${uncertain} uncertain vends)`);
  // The firmware's stock matches the spirals' (up to those uncertain vends), and its tube counts the changer's.
  let stockDrift = 0;
  for (const s of st.slots) {
    const physical = rig.motor(s.code).stock;
    if (s.qty < physical) fail(`slot ${s.code}: firmware says ${s.qty}, spiral holds ${physical}`);
    stockDrift += s.qty - physical;
  }
  if (stockDrift !== unsold) fail(`stock drift ${stockDrift} differs from the ${unsold} uncharged deliveries`);
  if (rig.changer) {
    for (const t of st.tubes) {
      if (rig.changer.tubes[t.type] !== t.count) fail(`tube ${t.value}: firmware says ${t.count}, changer holds ${rig.changer.tubes[t.type]}`);
      if (rig.quiet() && rig.changer.tubes[t.type] !== t.journaled) fail(`tube ${t.value}: the journal says ${t.journaled}, changer holds ${rig.changer.tubes[t.type]}`);
    }
  }
  // The card was charged for every card sale, never twice: beyond the sales, only what the books
  // owe back (a reset before VEND FAILURE, a power cut mid-vend) may have been charged.
  if (rig.reader && rig.quiet()) {
    const charged = rig.reader.chargedValue;
    if (charged < c.cashlessRevenue || charged > c.cashlessRevenue + c.cashlessUnrefunded) {
      fail(`the reader charged ${charged} for ${c.cashlessRevenue} of card sales (${c.cashlessUnrefunded} recorded as owed back)`);
    }
  }
  if (st.credit < 0) fail('negative credit');
  if (st.journal.dropped !== 0) fail(`${st.journal.dropped} journal records could not be written`);
  return st;
}
