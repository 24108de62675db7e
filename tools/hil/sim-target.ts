/** Bench target backed by hal-sim: the firmware bundle in Node (`sim`) or inside XS (`xs`). */
import { randomBytes } from 'node:crypto';
import type { FirmwareStatus } from '../../firmware/vend/report.js';
import { MachineHost } from '../../hal-sim/host.js';
import { ExecPeripheral } from '../../hal-sim/mdb/exec.js';
import type { DeviceName, ExternalFactories } from '../../hal-sim/rig.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { benchGateway } from './bench-gateway.js';
import { BenchUpdates } from './bench-updates.js';
import type { BenchTarget, Observation, StepOutcome } from './runner.js';
import type { Scenario, Step, UpdateStep } from './scenario.js';

let machineCounter = 0;

/** Programs playing devices of the machine (`--peripheral cashless=exec:<command>`, docs/bench-peripheral.md). */
export interface PeripheralPrograms {
  commands: Partial<Record<DeviceName, string>>;
  /** Real time per answer, ms (default: the adapter's). */
  answerMs?: number;
  trace?: (device: DeviceName, direction: 'in' | 'out' | 'err', line: string) => void;
}

const DEVICE_IN_SCENARIO: Record<DeviceName, { key: string; fitted: (s: Scenario) => boolean }> = {
  changer: { key: 'changer', fitted: (s) => s.machine.changer !== undefined },
  bill: { key: 'bills', fitted: (s) => (s.machine.bills?.length ?? 0) > 0 },
  cashless: { key: 'cashless', fitted: (s) => s.machine.cashless !== undefined },
};

/** The factories that start the programs, and the list their failures go to. */
function peripheralFactories(scenario: Scenario, programs: PeripheralPrograms, failures: string[]): ExternalFactories {
  const out: ExternalFactories = {};
  for (const [name, command] of Object.entries(programs.commands) as [DeviceName, string][]) {
    // The program replaces a device the scenario describes (its funds, its coins); it does not add one.
    const d = DEVICE_IN_SCENARIO[name];
    if (!d.fitted(scenario)) throw new Error(`--peripheral ${name}: the scenario's machine has no ${name} (machine.${d.key}) for the program to play`);
    const trace = programs.trace;
    out[name] = (bus) =>
      new ExecPeripheral(bus, {
        device: name,
        command,
        ...(programs.answerMs !== undefined ? { answerMs: programs.answerMs } : {}),
        onFailure: (m) => failures.push(m),
        ...(trace ? { trace: (dir: 'in' | 'out' | 'err', line: string) => trace(name, dir, line) } : {}),
      });
  }
  return out;
}

/**
 * A machine in a scenario with `update` steps fetches at a bench's pace (64 KiB a second in
 * 4 KiB chunks, a request asked again after 30 s) and keeps the default probation (2 minutes).
 */
const UPDATE_SETTINGS = { bytesPerSecond: 65536, chunkBytes: 4096, inFlight: 4, requestTimeoutMs: 30000 };
/**
 * Machine time per real time while connected, in a scenario with `update` steps: ten times
 * real time keeps the firmware's timeouts (a chunk request's, the probation's wait for the
 * gateway's acknowledgements) well above the real broker's and gateway's round trips.
 */
const UPDATE_SPEED = 10;
/** The real time an `update` step may take at most, whatever its machine time. */
const UPDATE_REAL_MS = 90_000;
/** Bytes in the slot when a download has journaled its first progress (where it resumes after a power cut). */
const FIRST_PROGRESS = 65536;

export class SimBenchTarget implements BenchTarget {
  readonly name: string;
  private readonly host: MachineHost;
  private readonly startUs: number;
  /** With `update` steps: the gateway's side of them. */
  private readonly updates: BenchUpdates | undefined;
  /** What went wrong with the programs playing devices (the first fails the step it happened in). */
  private readonly programFailures: string[];

  private constructor(name: string, host: MachineHost, updates: BenchUpdates | undefined, programFailures: string[]) {
    this.name = name;
    this.host = host;
    this.updates = updates;
    this.programFailures = programFailures;
    this.startUs = host.rig.scheduler.now;
  }

  static async open(
    target: TargetName,
    scenario: Scenario,
    options: { seed?: number; onLog?: (level: string, message: string, atMs: number) => void; peripherals?: PeripheralPrograms } = {},
  ): Promise<SimBenchTarget> {
    const hostOptions: Parameters<typeof MachineHost.start>[1] = { target, seed: options.seed ?? 1 };
    if (options.onLog) hostOptions.onLog = options.onLog;
    const programFailures: string[] = [];
    if (options.peripherals) hostOptions.peripherals = peripheralFactories(scenario, options.peripherals, programFailures);
    const updating = scenario.steps.some((s) => s.action === 'update');
    let updates: BenchUpdates | undefined;
    if (updating || scenario.steps.some((s) => s.action === 'network')) {
      // A machine on a network needs someone to acknowledge it: the embedded gateway.
      const gw = await benchGateway();
      const id = `bench-${(machineCounter++).toString(36)}-${Date.now().toString(36)}`;
      await gw.gateway.addMachines([id]);
      hostOptions.network = updating ? { url: gw.url, speed: UPDATE_SPEED } : { url: gw.url };
      hostOptions.machineId = id;
      if (updating) {
        // Its own command key, as a machine is provisioned with one; the bench signs its update commands with it.
        const key = randomBytes(32);
        hostOptions.config = { commandKey: key.toString('hex'), commandKeyId: 1, update: UPDATE_SETTINGS };
        updates = new BenchUpdates(gw, id, key);
      }
    }
    const host = await MachineHost.start(scenario.machine, hostOptions);
    if (programFailures.length > 0) {
      await host.close();
      throw new Error(`while the machine started: ${programFailures[0]!}`);
    }
    return new SimBenchTarget(target, host, updates, programFailures);
  }

  async apply(step: Exclude<Step, { action: 'expect' }>): Promise<StepOutcome> {
    const outcome = await this.applyStep(step);
    // A program that failed (exited, wrote garbage, fell silent) fails the step it failed in, whatever the step made of it.
    const failed = this.programFailures[0];
    if (failed !== undefined && !outcome.failure) return { failure: failed };
    return outcome;
  }

  private async applyStep(step: Exclude<Step, { action: 'expect' }>): Promise<StepOutcome> {
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
      case 'update':
        return this.update(step);
    }
  }

  /** Send the update, then run until it has come as far as the step says (at most its settle time). */
  private async update(step: UpdateStep): Promise<StepOutcome> {
    const host = this.host;
    const updates = this.updates!;
    if (!host.network?.up) return { failure: 'the network is down: a machine takes an update over its link ({ "network": "up" } first)' };
    const end = host.rig.scheduler.now + step.settleMs * 1000;
    const realEnd = Date.now() + UPDATE_REAL_MS;
    // The command goes to a machine that is listening.
    let st = await host.status();
    while (st.uplink?.state !== 'online') {
      if (host.rig.scheduler.now >= end || Date.now() >= realEnd) return { failure: `the machine did not come online to take the update (uplink ${st.uplink?.state ?? 'none'})` };
      await host.run(250);
      st = await host.status();
    }
    const sent = await updates.send(step, host.wallMs);
    if ('failure' in sent) return sent;
    const goal = step.until === 'end' ? 'come to an end' : `reach ${step.until}`;
    for (;;) {
      await host.run(250);
      st = await host.status();
      const open = st.update?.state ?? 'none';
      const done = reached(st, step);
      if (done || open === 'none') {
        // Only what the gateway stored counts: the machine has taken the command and said so.
        const r = await updates.reports();
        if (r.outcomes.has(sent.n)) {
          if (done) return {};
          if (step.until !== 'end') return { failure: `the update came to an end before it could ${goal} (command ${r.outcomes.get(sent.n)}; reports ${JSON.stringify(r.updates)})` };
        }
      }
      const machineOver = host.rig.scheduler.now >= end;
      if (machineOver || Date.now() >= realEnd) {
        const r = await updates.reports();
        const bound = machineOver ? `${step.settleMs / 1000} s of machine time` : `${UPDATE_REAL_MS / 1000} s of real time`;
        return {
          failure: `the update did not ${goal} within ${bound} (update ${open}, uplink ${st.uplink?.state ?? 'none'}, unsynced ${st.journal.unsynced}; command ${r.outcomes.get(sent.n) ?? 'no outcome stored'}; reports ${JSON.stringify(r.updates)})`,
        };
      }
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
      ...(st.firmware !== undefined ? { firmware: st.firmware } : {}),
      update: st.update?.state ?? 'none',
      ...(await this.updateReports()),
    };
  }

  private async updateReports(): Promise<Pick<Observation, 'updateReports' | 'updateCommands'>> {
    if (!this.updates) return {};
    const r = await this.updates.reports();
    return { updateReports: r.updates, updateCommands: r.commands };
  }

  async close(): Promise<void> {
    await this.host.close();
  }
}

/**
 * Whether the machine has come as far as the step says (for `end`: no update open), and is
 * online with every event acknowledged, so that what the gateway stored is all it said.
 */
function reached(st: FirmwareStatus, step: UpdateStep): boolean {
  if (st.uplink?.state !== 'online' || st.journal.unsynced !== 0) return false;
  const u = st.update;
  switch (step.until) {
    case 'downloading':
      return u?.state === 'downloading' && u.offset >= FIRST_PROGRESS;
    case 'waiting':
      return u?.state === 'waiting';
    case 'end':
      return u === undefined;
  }
}
