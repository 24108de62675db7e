/**
 * A whole simulated vending machine's hardware, built from a machine
 * description (the bench-scenario `machine` object): MDB bus with a coin
 * changer, a bill validator and a cashless reader, one spiral motor per
 * slot, the drop sensor, the display. All of it runs on one virtual clock.
 */
import { CURRENCIES } from './currency.js';
import { SimDisplay, SimDropSensor, SimMotor } from './dispense.js';
import { SimMdbBus, type ExternalPeripheral } from './mdb/bus.js';
import { SimBillValidator } from './mdb/bill.js';
import { SimCashlessReader, type SimCashlessFault } from './mdb/cashless.js';
import { SimCoinChanger } from './mdb/changer.js';
import { Random, Scheduler } from './scheduler.js';

export interface SlotSpec {
  code: string;
  product: string;
  price: number;
  qty: number;
  category?: string;
  capacity?: number;
}

export interface MachineSpec {
  currency: string;
  slots: SlotSpec[];
  /** `currency` on a device: the ISO 4217 code it reports in its SETUP (default: the machine's). */
  changer?: { coins: { value: number; tube: number | null }[]; currency?: string };
  bills?: number[];
  /** The bill validator's own currency (a scenario writes it `"bills": { "values": [...], "currency": "EUR" }`). */
  billsCurrency?: string;
  cashless?: CashlessSpec;
  changePolicy?: 'refuse' | 'overpay';
}

/** The MDB devices a rig can fit. */
export type DeviceName = 'changer' | 'bill' | 'cashless';
export const DEVICE_NAMES: readonly DeviceName[] = ['changer', 'bill', 'cashless'];

/** Builds an external peripheral on a rig's bus (a program on the bench, hal-sim/mdb/exec.ts) in place of the simulated device. */
export type ExternalFactory = (bus: SimMdbBus, scheduler: Scheduler) => ExternalPeripheral;
export type ExternalFactories = Partial<Record<DeviceName, ExternalFactory>>;

/**
 * The bench format's cashless reader: the card's funds and whether it
 * approves vends; the rest are simulator extensions (a slower approval, a
 * fault armed for a moment of the first vend).
 */
export interface CashlessSpec {
  funds: number;
  approve?: boolean;
  /** Time the reader takes to approve or deny, ms (default 300). */
  approveMs?: number;
  fault?: CashlessFaultName;
  /** The currency the reader reports (default: the machine's). */
  currency?: string;
  /** false: the reader never sends END SESSION after SESSION COMPLETE. */
  endSession?: boolean;
}

/** `<what>-after-<when>`: the reader resets, or goes silent until the power is cycled, right after it. */
export type CashlessFaultName = 'reset-after-approval' | 'silent-after-approval' | 'reset-after-success' | 'silent-after-success' | 'silent-after-cancel';
export const CASHLESS_FAULTS: readonly CashlessFaultName[] = ['reset-after-approval', 'silent-after-approval', 'reset-after-success', 'silent-after-success', 'silent-after-cancel'];

export function cashlessFault(name: CashlessFaultName): SimCashlessFault {
  return { kind: name.startsWith('reset') ? 'reset' : 'silence', after: name.endsWith('approval') ? 'approval' : name.endsWith('cancel') ? 'cancel' : 'success' };
}

/** A device's own currency (ISO 4217 numeric), the machine's when it names none. */
function deviceCurrency(code: string | undefined, machine: number): number {
  if (code === undefined) return machine;
  const c = CURRENCIES[code];
  if (!c) throw new Error(`unknown currency ${code}`);
  return c.numeric;
}

/**
 * What survives a power cut: coins and bills where they physically are,
 * products in the spirals and in the customers' hands. Peripheral RAM does
 * not: coins the VMC had not acknowledged are counted as lost at the cut.
 */
export interface PhysicalState {
  atUs: number;
  tubes: number[];
  cashbox: number[];
  paidOut: number[];
  coinsReturned: number;
  acceptedValue: number;
  /**
   * Value of accepted coins the changer still held unacknowledged when the
   * power failed, summed over all cuts: the VMC may or may not have journaled
   * them (it journals before it acknowledges), so at most this much can be
   * missing from the books.
   */
  coinsAtRisk: number;
  stackedBills: number[];
  returnedBills: number[];
  billsRefused: number;
  stock: number[];
  delivered: string[];
  /** The card's account at the reader: funds left and every amount charged (a vend approved and not yet reported counts as charged at a cut). */
  card?: { funds: number; charged: number[] };
}

export class Rig {
  readonly spec: MachineSpec;
  readonly scheduler = new Scheduler();
  readonly random: Random;
  readonly bus: SimMdbBus;
  readonly changer: SimCoinChanger | undefined;
  readonly validator: SimBillValidator | undefined;
  readonly reader: SimCashlessReader | undefined;
  readonly sensor = new SimDropSensor();
  readonly motors: SimMotor[];
  readonly display = new SimDisplay();
  /** Cabinet temperature, °C (a refrigerated machine; tests may warm it up). */
  cabinetC = 4.5;
  /** Panel lamps by name (1 = lit). */
  readonly lamps: Record<string, 0 | 1> = {};
  /** Slot codes of the products that fell into the chute, in order. */
  readonly delivered: string[] = [];
  readonly decimals: number;
  /** Coins the changer had not seen acknowledged when the power failed (value, all cuts). */
  coinsAtRisk = 0;
  /** Devices played by something outside the simulator, in place of the simulated ones. */
  readonly external: Partial<Record<DeviceName, ExternalPeripheral>> = {};

  constructor(spec: MachineSpec, seed = 1, external: ExternalFactories = {}) {
    this.spec = spec;
    this.random = new Random(seed);
    const currency = CURRENCIES[spec.currency];
    if (!currency) throw new Error(`unknown currency ${spec.currency}`);
    this.decimals = currency.decimals;
    this.bus = new SimMdbBus(this.scheduler);
    for (const name of DEVICE_NAMES) {
      const make = external[name];
      if (make) this.external[name] = make(this.bus, this.scheduler);
    }
    if (spec.changer && !external.changer) {
      this.changer = new SimCoinChanger(this.scheduler, this.bus, { coins: spec.changer.coins, currency: deviceCurrency(spec.changer.currency, currency.numeric), decimals: currency.decimals });
    }
    if (spec.bills && spec.bills.length > 0 && !external.bill) {
      this.validator = new SimBillValidator(this.scheduler, this.bus, { bills: spec.bills, currency: deviceCurrency(spec.billsCurrency, currency.numeric), decimals: currency.decimals });
    }
    if (spec.cashless && !external.cashless) {
      const c = spec.cashless;
      this.reader = new SimCashlessReader(this.scheduler, this.bus, {
        funds: c.funds,
        approve: c.approve ?? true,
        currency: deviceCurrency(c.currency, currency.numeric),
        decimals: currency.decimals,
        ...(c.endSession === false ? { endSession: false } : {}),
        ...(c.approveMs !== undefined ? { approveUs: c.approveMs * 1000 } : {}),
      });
      if (c.fault) this.reader.armFault(cashlessFault(c.fault));
    }
    this.motors = spec.slots.map((s, i) => new SimMotor(i, s, this.scheduler, this.random, this.sensor, this.delivered));
  }

  /** The firmware configuration matching this machine. */
  firmwareConfig(machineId = 'sim-0001'): Record<string, unknown> {
    const config: Record<string, unknown> = {
      machineId,
      currency: this.spec.currency,
      decimals: this.decimals,
      slots: this.spec.slots.map((s) => {
        const slot: Record<string, unknown> = { code: s.code, product: s.product, price: s.price, qty: s.qty };
        if (s.category !== undefined) slot['category'] = s.category;
        if (s.capacity !== undefined) slot['capacity'] = s.capacity;
        return slot;
      }),
    };
    if (this.spec.changePolicy) config['changePolicy'] = this.spec.changePolicy;
    if (this.spec.cashless) config['cashless'] = true;
    // A machine without bills has no validator fitted (a coin-only machine).
    if (!this.validator && !this.external.bill) config['billValidator'] = false;
    return config;
  }

  /**
   * The physical state now. With `cut`, as the power failing now leaves it:
   * a bill in escrow or being validated comes back out, one on its way to
   * the stacker gets there, unacknowledged coins are lost to the books.
   */
  physical(cut: boolean): PhysicalState {
    const c = this.changer;
    const v = this.validator;
    const state: PhysicalState = {
      atUs: this.scheduler.now,
      tubes: c ? c.tubes.slice() : [],
      cashbox: c ? c.cashbox.slice() : [],
      paidOut: c ? c.paidOut.slice() : [],
      coinsReturned: c?.coinsReturned ?? 0,
      acceptedValue: c?.acceptedValue ?? 0,
      coinsAtRisk: this.coinsAtRisk + (cut && c ? c.unreportedValue : 0),
      stackedBills: v ? v.stackedBills.slice() : [],
      returnedBills: v ? v.returnedBills.slice() : [],
      billsRefused: v?.billsRefused ?? 0,
      stock: this.motors.map((m) => m.stock),
      delivered: this.delivered.slice(),
    };
    const r = this.reader;
    if (r) {
      // The reader loses its RAM too: an approved vend not yet reported counts as a success (MDB), so it is charged.
      const owed = cut ? r.approvedOutstanding : 0;
      state.card = { funds: r.funds - owed, charged: owed > 0 ? [...r.charged, owed] : r.charged.slice() };
    }
    if (cut && v) {
      if (v.stacking >= 0) state.stackedBills.push(v.options.bills[v.stacking]!);
      else if (v.escrowed >= 0) state.returnedBills.push(v.options.bills[v.escrowed]!);
      if (v.validating >= 0) state.returnedBills.push(v.options.bills[v.validating]!);
    }
    return state;
  }

  /** A rig powered up in a given physical state, its clock starting at `atUs`. */
  static restore(spec: MachineSpec, seed: number, state: PhysicalState, atUs: number, external: ExternalFactories = {}): Rig {
    const rig = new Rig(spec, seed, external);
    rig.scheduler.now = atUs;
    rig.coinsAtRisk = state.coinsAtRisk;
    const c = rig.changer;
    if (c) {
      state.tubes.forEach((n, i) => (c.tubes[i] = n));
      state.cashbox.forEach((n, i) => (c.cashbox[i] = n));
      c.paidOut.push(...state.paidOut);
      c.coinsReturned = state.coinsReturned;
      c.acceptedValue = state.acceptedValue;
    }
    const v = rig.validator;
    if (v) {
      v.stackedBills.push(...state.stackedBills);
      v.stacked = state.stackedBills.length;
      v.returnedBills.push(...state.returnedBills);
      v.billsRefused = state.billsRefused;
    }
    const r = rig.reader;
    if (r && state.card) {
      r.funds = state.card.funds;
      r.charged.push(...state.card.charged);
      // A fault armed for the first vend belongs to the first life only.
      r.disarmFault();
    }
    state.stock.forEach((n, i) => (rig.motors[i]!.stock = n));
    rig.delivered.push(...state.delivered);
    return rig;
  }

  /** Whether the machine has this device, simulated or external. */
  has(name: DeviceName): boolean {
    if (this.external[name]) return true;
    return name === 'changer' ? this.changer !== undefined : name === 'bill' ? this.validator !== undefined : this.reader !== undefined;
  }

  /** Stop the external devices (the power is off for good, or the rig is replaced). */
  async closeExternal(): Promise<void> {
    for (const name of DEVICE_NAMES) await this.external[name]?.close();
  }

  motor(code: string): SimMotor {
    const m = this.motors.find((x) => x.code === code);
    if (!m) throw new Error(`no slot ${code}`);
    return m;
  }

  /** No hardware activity under way: nothing on the wire, nothing unreported, nothing moving. */
  quiet(): boolean {
    if (this.bus.busy()) return false;
    if (this.changer && (this.changer.pending || this.changer.busy)) return false;
    if (this.validator && this.validator.pending) return false;
    if (this.reader && this.reader.pending) return false;
    if (this.bus.held) return false;
    for (const name of DEVICE_NAMES) if (this.external[name]?.pending) return false;
    return !this.motors.some((m) => m.running);
  }
}
