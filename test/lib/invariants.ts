/**
 * Money and stock invariants of a simulated machine, checked against both the
 * firmware's books and the physical truth the simulator keeps.
 */
import type { FirmwareStatus } from '../../firmware/vend/controller.js';
import type { MachineHost } from '../../hal-sim/host.js';

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
  // Once the changer has reported everything, the firmware credited exactly the coins it took.
  if (rig.changer && rig.quiet() && rig.changer.acceptedValue !== c.coinsToTubes + c.coinsToCashbox) {
    fail(`changer took ${rig.changer.acceptedValue} in coins but the firmware credited ${c.coinsToTubes + c.coinsToCashbox}`);
  }
  // The firmware paid out exactly what the changer physically handed over.
  if (rig.changer && rig.changer.paidValue !== c.coinsPaidOut) fail(`changer paid ${rig.changer.paidValue} but the firmware recorded ${c.coinsPaidOut}`);
  if (rig.changer && rig.changer.paidOut.length !== c.coinsPaidOutCount) fail(`changer paid ${rig.changer.paidOut.length} coins, firmware recorded ${c.coinsPaidOutCount}`);
  // Bills credited are bills in the stacker.
  const stackedValue = rig.validator ? rig.validator.stackedBills.reduce((a, b) => a + b, 0) : 0;
  if (stackedValue !== c.billsStacked) fail(`stacker holds ${stackedValue} but the firmware credited ${c.billsStacked}`);
  // Every sale is a product that fell, and no product fell unsold.
  if (rig.delivered.length !== c.sales) fail(`${rig.delivered.length} products delivered but ${c.sales} sales recorded`);
  // The firmware's stock matches the spirals', and its tube counts the changer's.
  for (const s of st.slots) {
    const physical = rig.motor(s.code).stock;
    if (physical !== s.qty) fail(`slot ${s.code}: firmware says ${s.qty}, spiral holds ${physical}`);
  }
  if (rig.changer) {
    for (const t of st.tubes) {
      if (rig.changer.tubes[t.type] !== t.count) fail(`tube ${t.value}: firmware says ${t.count}, changer holds ${rig.changer.tubes[t.type]}`);
    }
  }
  if (st.credit < 0) fail('negative credit');
  return st;
}
