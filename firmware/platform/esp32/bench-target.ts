/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The bench protocol's target on an ESP32 controller (docs/bench-protocol.md,
 * "For the board's bench build"): what this board can do by itself on a
 * bench, and a plain `unsupported` for what needs bench hardware it does not
 * drive (coin and bill injectors, a card simulator, a beam blocker).
 *
 * - `setup` runs the firmware on the scenario's slots on an erased journal
 *   (the same board, a new firmware instance). The MDB peripherals are the
 *   ones on the bus: the board cannot load tubes or choose bills, so a
 *   machine that names them is answered `unsupported` after the firmware
 *   has started, saying so. The machine is kept in NVS so that a `powerCut`
 *   restarts into the same scenario, from its journal.
 * - `select` and `cancel` go through the selection panel, as a key press.
 * - `powerCut` is a watchdog-style restart: `{"rebooting":true}`, then
 *   System.restart() once the answer has left.
 * - `network` is a switch in software between the firmware and its broker
 *   (the board's MQTT connections are cut and refused; Wi-Fi stays up);
 *   after `up` it waits, up to `settleMs`, until the uplink is online again
 *   and the gateway has acknowledged the backlog.
 * - `status` is the firmware's, except `dispensed`, which this board counts
 *   itself from the drop sensor and the motor it was driving (an instrument
 *   independent of the firmware's books). Change and returned bills have no
 *   instrument here: they are the firmware's counters, and the answer says
 *   so in `instruments`.
 */
import Preference from 'preference';
import Timer from 'timer';
import { FIRMWARE_VERSION, start, type Firmware } from '../../main.js';
import type { BenchAction, BenchInfo, BenchMachine, BenchStatus } from '../../bench/protocol.js';
import { benchErr, benchOk, type BenchDone, type BenchTarget, type StepData } from '../../bench/target.js';
import { decodeUtf8, encodeUtf8 } from '../../text/utf8.js';
import type { Esp32Board } from './board.js';

const DOMAIN = 'vfbench';
const KEY = 'machine';
/** How often settling looks at the firmware. */
const SETTLE_POLL_MS = 100;
/** Room for the answer to leave the UART before the restart. */
const RESTART_DELAY_MS = 300;
/** How long setup waits for the payment devices to come up before answering anyway. */
const READY_MS = 15000;
/** The uplink's longest reconnect back-off, and some. */
const RECONNECT_MS = 360000;

type Config = { [key: string]: unknown };

export class Esp32BenchTarget implements BenchTarget {
  readonly info: BenchInfo = { bench: 'esp32', clock: 'real', firmware: FIRMWARE_VERSION };
  private readonly board: Esp32Board;
  private readonly base: Config;
  private firmware: Firmware | undefined;
  private codes: string[] = [];
  private dispensed: string[] = [];
  private since = 0;

  /** `base`: the manifest's machine, for what a scenario does not say (machine id, uplink). */
  constructor(board: Esp32Board, base: Config) {
    this.board = board;
    this.base = base;
    board.onBeam = (broken, motor) => {
      if (broken && motor >= 0) this.dispensed.push(this.codes[motor] ?? String(motor));
    };
  }

  /** The scenario machine a powerCut left running, if any (kept in NVS by setup). */
  static savedMachine(): Config | undefined {
    const saved = Preference.get(DOMAIN, KEY);
    if (!(saved instanceof ArrayBuffer)) return undefined;
    try {
      const config: unknown = JSON.parse(decodeUtf8(saved));
      return typeof config === 'object' && config !== null && !Array.isArray(config) ? (config as Config) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Run this configuration (at boot: the saved scenario's, or the manifest's machine). */
  run(config: Config): void {
    this.firmware?.stop();
    this.board.quiesce();
    this.firmware = start(this.board, config);
    const slots = config['slots'];
    this.codes = Array.isArray(slots) ? slots.map((s: unknown) => String((s as Config)['code'])) : [];
    this.dispensed = [];
    this.since = this.board.clock.now();
  }

  setup(machine: BenchMachine, options: { network: boolean; seed: number }, done: BenchDone): void {
    const cannot: string[] = [];
    if (machine.changer) cannot.push('the changer\'s coin types and tube levels');
    if (machine.bills) cannot.push('the bill validator\'s bills');
    if (machine.cashless) cannot.push('a card reader\'s funds');
    const uplink = this.base['uplink'];
    if (options.network && uplink === undefined) cannot.push('a network (the machine file has no uplink)');
    const config: Config = {
      machineId: this.base['machineId'] ?? 'bench',
      currency: machine.currency,
      changePolicy: machine.changePolicy ?? 'refuse',
      slots: machine.slots.map((s) => ({
        code: s.code,
        product: s.product,
        price: s.price,
        qty: s.qty,
        capacity: s.capacity ?? Math.max(s.qty, 10),
        category: s.category ?? 'General',
      })),
      ...(options.network && uplink !== undefined ? { uplink } : {}),
    };
    try {
      this.firmware?.stop();
      this.firmware = undefined;
      this.board.quiesce();
      this.eraseJournal();
      Preference.set(DOMAIN, KEY, encodeUtf8(JSON.stringify(config)));
      this.run(config);
    } catch (e) {
      done(benchErr('failed', `the firmware did not start: ${e instanceof Error ? e.message : String(e)}`));
      return;
    }
    if (cannot.length > 0) {
      done(benchErr('unsupported', `this bench cannot set ${cannot.join(', ')}; the firmware runs the scenario's slots with the peripherals on the bus`));
      return;
    }
    this.settle(READY_MS, true, () => done(benchOk()));
  }

  apply(action: BenchAction, done: BenchDone<StepData>): void {
    const panel = this.board.panelListener;
    switch (action.action) {
      case 'select':
        if (!panel) return done(benchErr('nomachine', 'no firmware is running'));
        panel.onSelect(action.code, action.quantity);
        return this.settle(action.settleMs, false, () => done(benchOk()));
      case 'cancel':
        if (!panel) return done(benchErr('nomachine', 'no firmware is running'));
        panel.onCancel();
        return this.settle(action.settleMs, false, () => done(benchOk()));
      case 'wait':
        Timer.set(() => done(benchOk()), action.ms);
        return;
      case 'powerCut':
        done(benchOk({ rebooting: true }));
        Timer.set(() => this.board.restart(), RESTART_DELAY_MS);
        return;
      case 'insertCoin':
      case 'insertBill':
        return done(benchErr('unsupported', 'this bench has no coin or bill injector: insert it by hand, or fit one'));
      case 'tapCard':
        return done(benchErr('unsupported', 'this bench has no card reader simulator'));
      case 'jam':
        return done(benchErr('unsupported', 'this bench has no beam blocker on the drop sensor'));
      case 'network': {
        const firmware = this.firmware;
        if (!firmware) return done(benchErr('nomachine', 'no firmware is running'));
        if (firmware.status().uplink === undefined) return done(benchErr('failed', 'this scenario was set up without a network ("network": true in setup)'));
        this.board.setNetwork(action.up);
        if (!action.up) return this.settle(action.settleMs, false, () => done(benchOk()));
        // Reconnects back off up to 5 minutes: give it that long, as the simulator does.
        return this.synced(Math.max(action.settleMs, RECONNECT_MS), () => done(benchOk()));
      }
    }
  }

  status(done: BenchDone<BenchStatus>): void {
    const firmware = this.firmware;
    if (!firmware) return done(benchErr('nomachine', 'no firmware is running'));
    const st = firmware.status();
    const slots: Record<string, number> = {};
    for (const s of st.slots) slots[s.code] = s.qty;
    const tubes: Record<string, number> = {};
    for (const t of st.tubes) tubes[String(t.value)] = (tubes[String(t.value)] ?? 0) + t.count;
    const c = st.counters;
    const status: BenchStatus & { instruments: string } = {
      state: st.state,
      credit: st.credit,
      dispensed: this.dispensed.slice(),
      changePaid: c.coinsPaidOut,
      changeCoins: c.coinsPaidOutCount,
      billsReturned: c.billsReturned,
      slots,
      tubes,
      sales: c.sales + c.cashlessSales,
      revenue: c.revenue + c.cashlessRevenue,
      cardSales: c.cashlessSales,
      cardRevenue: c.cashlessRevenue,
      unsynced: st.journal.unsynced,
      display: st.display.slice(),
      elapsedMs: Math.round(this.board.clock.now() - this.since),
      instruments: 'dispensed: the board\'s drop sensor; changePaid, changeCoins, billsReturned: the firmware\'s counters (no payout or bill instruments)',
    };
    done(benchOk(status));
  }

  end(done: BenchDone): void {
    Preference.delete(DOMAIN, KEY);
    done(benchOk());
  }

  private eraseJournal(): void {
    const flash = this.board.openFlash('journal');
    const { size, blockLength } = flash.status();
    flash.eraseBlock(0, size / blockLength - 1);
    flash.close();
  }

  /**
   * Answer once the machine is idle (nothing under way, no spiral turning;
   * with `ready`, its payment devices up too) or `maxMs` has passed.
   */
  /** Until the uplink is online and nothing is left unacknowledged (or `maxMs`). */
  private synced(maxMs: number, then: () => void): void {
    const until = this.board.clock.now() + maxMs;
    const look = (): void => {
      const st = this.firmware?.status();
      const done = st !== undefined && st.uplink?.state === 'online' && st.journal.unsynced === 0;
      if (done || this.board.clock.now() >= until) then();
      else Timer.set(look, SETTLE_POLL_MS);
    };
    Timer.set(look, SETTLE_POLL_MS);
  }

  private settle(maxMs: number, ready: boolean, then: () => void): void {
    const until = this.board.clock.now() + maxMs;
    const look = (): void => {
      const st = this.firmware?.status();
      const idle = st !== undefined && (st.ready || !ready) && !st.busy && this.board.motorRunning < 0;
      if (idle || this.board.clock.now() >= until) then();
      else Timer.set(look, SETTLE_POLL_MS);
    };
    Timer.set(look, SETTLE_POLL_MS);
  }
}
