/**
 * A whole simulated vending machine's hardware, built from a machine
 * description (the bench-scenario `machine` object): MDB bus with a coin
 * changer and a bill validator, one spiral motor per slot, the drop sensor,
 * the display. All of it runs on one virtual clock.
 */
import { CURRENCIES } from './currency.js';
import { SimDisplay, SimDropSensor, SimMotor } from './dispense.js';
import { SimMdbBus } from './mdb/bus.js';
import { SimBillValidator } from './mdb/bill.js';
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
  changer?: { coins: { value: number; tube: number | null }[] };
  bills?: number[];
  cashless?: { funds: number; approve?: boolean };
  changePolicy?: 'refuse' | 'overpay';
}

export class Rig {
  readonly spec: MachineSpec;
  readonly scheduler = new Scheduler();
  readonly random: Random;
  readonly bus: SimMdbBus;
  readonly changer: SimCoinChanger | undefined;
  readonly validator: SimBillValidator | undefined;
  readonly sensor = new SimDropSensor();
  readonly motors: SimMotor[];
  readonly display = new SimDisplay();
  /** Panel lamps by name (1 = lit). */
  readonly lamps: Record<string, 0 | 1> = {};
  /** Slot codes of the products that fell into the chute, in order. */
  readonly delivered: string[] = [];
  readonly decimals: number;

  constructor(spec: MachineSpec, seed = 1) {
    this.spec = spec;
    this.random = new Random(seed);
    const currency = CURRENCIES[spec.currency];
    if (!currency) throw new Error(`unknown currency ${spec.currency}`);
    this.decimals = currency.decimals;
    this.bus = new SimMdbBus(this.scheduler);
    if (spec.changer) {
      this.changer = new SimCoinChanger(this.scheduler, this.bus, { coins: spec.changer.coins, currency: currency.numeric, decimals: currency.decimals });
    }
    if (spec.bills && spec.bills.length > 0) {
      this.validator = new SimBillValidator(this.scheduler, this.bus, { bills: spec.bills, currency: currency.numeric, decimals: currency.decimals });
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
    return config;
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
    return !this.motors.some((m) => m.running);
  }
}
