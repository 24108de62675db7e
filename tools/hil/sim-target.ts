/** Bench target backed by hal-sim: the firmware bundle in Node (`sim`) or inside XS (`xs`). */
import { MachineHost } from '../../hal-sim/host.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { benchGateway } from './bench-gateway.js';
import type { BenchTarget, Observation, StepOutcome } from './runner.js';
import type { Scenario, Step } from './scenario.js';

let machineCounter = 0;

export class SimBenchTarget implements BenchTarget {
  readonly name: string;
  private readonly host: MachineHost;
  private readonly startUs: number;

  private constructor(name: string, host: MachineHost) {
    this.name = name;
    this.host = host;
    this.startUs = host.rig.scheduler.now;
  }

  static async open(target: TargetName, scenario: Scenario, options: { seed?: number; onLog?: (level: string, message: string, atMs: number) => void } = {}): Promise<SimBenchTarget> {
    const hostOptions: Parameters<typeof MachineHost.start>[1] = { target, seed: options.seed ?? 1 };
    if (options.onLog) hostOptions.onLog = options.onLog;
    if (scenario.steps.some((s) => s.action === 'network')) {
      // A machine on a network needs someone to acknowledge it: the embedded gateway.
      const { url, gateway } = await benchGateway();
      const id = `bench-${(machineCounter++).toString(36)}-${Date.now().toString(36)}`;
      await gateway.addMachines([id]);
      hostOptions.network = { url };
      hostOptions.machineId = id;
    }
    const host = await MachineHost.start(scenario.machine, hostOptions);
    return new SimBenchTarget(target, host);
  }

  async apply(step: Exclude<Step, { action: 'expect' }>): Promise<StepOutcome> {
    const host = this.host;
    switch (step.action) {
      case 'select':
        host.select(step.code, step.quantity);
        await host.runUntilIdle(step.settleMs);
        return {};
      case 'insertCoin': {
        if (!host.insertCoin(step.value)) return { failure: `the changer was not accepting coins; the ${step.value} came back` };
        await host.runUntilIdle(step.settleMs);
        return {};
      }
      case 'insertBill':
        // A refused bill is handed back at once; that is observable (billsReturned), not a bench failure.
        host.insertBill(step.value);
        await host.runUntilIdle(step.settleMs);
        return {};
      case 'cancel':
        host.cancel();
        await host.runUntilIdle(step.settleMs);
        return {};
      case 'wait':
        await host.run(step.ms);
        return {};
      case 'jam':
        host.jam(step.code);
        return {};
      case 'tapCard':
        // A reader that is not taking cards (cash held, out of service) ignores the tap: observable, not a bench failure.
        host.tapCard();
        await host.runUntilIdle(step.settleMs);
        return {};
      case 'powerCut':
        // Power fails now; the machine comes back from its flash journal.
        await host.powerCut();
        return {};
      case 'network':
        host.setNetwork(step.up);
        if (step.up) await this.settleUplink(step.settleMs);
        else await host.runUntilIdle(step.settleMs);
        return {};
    }
  }

  /** After the link returns: run until the uplink is back and has sent its backlog (at most `maxMs`). */
  private async settleUplink(maxMs: number): Promise<void> {
    const host = this.host;
    // Reconnects back off up to 5 minutes, so give it that long.
    const end = host.rig.scheduler.now + Math.max(maxMs, 360000) * 1000;
    for (;;) {
      await host.runUntilIdle(1000);
      const st = await host.status();
      if ((st.uplink?.state === 'online' && st.journal.unsynced === 0) || host.rig.scheduler.now >= end) return;
      await host.run(500);
    }
  }

  async observe(): Promise<Observation> {
    const host = this.host;
    const rig = host.rig;
    const st = await host.status();
    const slots: Record<string, number> = {};
    for (const s of st.slots) slots[s.code] = s.qty;
    const tubes: Record<string, number> = {};
    for (const t of st.tubes) tubes[String(t.value)] = (tubes[String(t.value)] ?? 0) + t.count;
    return {
      state: st.state,
      credit: st.credit,
      dispensed: rig.delivered.slice(),
      changePaid: rig.changer?.paidValue ?? 0,
      changeCoins: rig.changer?.paidOut.length ?? 0,
      billsReturned: rig.validator?.billsReturned ?? 0,
      slots,
      tubes,
      // Sales paid by card are sales too; the firmware keeps them apart from cash.
      sales: st.counters.sales + st.counters.cashlessSales,
      revenue: st.counters.revenue + st.counters.cashlessRevenue,
      cardSales: st.counters.cashlessSales,
      cardRevenue: st.counters.cashlessRevenue,
      ...(rig.reader ? { cardCharged: rig.reader.chargedValue } : {}),
      unsynced: st.journal.unsynced,
      display: rig.display.lines.slice(),
      elapsedMs: (rig.scheduler.now - this.startUs) / 1000,
    };
  }

  async close(): Promise<void> {
    await this.host.close();
  }
}
