/**
 * The host side of the HAL bridge: runs the rig's virtual clock, turns
 * hardware activity into guest events (UART words, sensor edges, key
 * presses), applies the guest's outputs (UART writes, motor PWM, display)
 * and wakes the guest when its timers are due.
 *
 * The VMC's UART is modelled like the ESP32's: received words are handed
 * over when the line has been idle for one character time (the RX timeout
 * interrupt) or earlier if the firmware runs for another reason.
 */
import type { FirmwareStatus } from '../firmware/vend/controller.js';
import { CHAR_US } from './mdb/bus.js';
import type { GuestEvent, GuestReply, HostMessage } from './guest/protocol.js';
import { Rig, type MachineSpec } from './rig.js';
import type { EventId } from './scheduler.js';
import { createTransport, type GuestTransport, type TargetName } from './transport.js';

export class GuestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestError';
  }
}

export interface HostOptions {
  target?: TargetName;
  seed?: number;
  machineId?: string;
  /** Firmware log lines. */
  onLog?: (level: string, message: string, atMs: number) => void;
  /** Every MDB word on the wire. */
  onWire?: (direction: 'vmc' | 'periph', word: number, atUs: number) => void;
  /** Extra firmware configuration (overrides what the machine description gives). */
  config?: Record<string, unknown>;
}

export class MachineHost {
  readonly rig: Rig;
  readonly transport: GuestTransport;
  readonly logs: { atMs: number; level: string; message: string }[] = [];
  private events: GuestEvent[] = [];
  private rx: number[] = [];
  private rxFlush: EventId | undefined;
  private wake: EventId | undefined;
  private wakeAtUs = -1;
  private needDelivery = false;
  private readonly onLog: ((level: string, message: string, atMs: number) => void) | undefined;
  /** Guest deliveries so far. */
  deliveries = 0;

  private constructor(rig: Rig, transport: GuestTransport, options: HostOptions) {
    this.rig = rig;
    this.transport = transport;
    this.onLog = options.onLog;
    rig.bus.toMaster = (word) => this.received(word);
    if (options.onWire) rig.bus.trace = options.onWire;
    rig.sensor.onChange = (level) => this.input(['drop', level]);
  }

  /** Build the rig, start the firmware on it, and let it bring its peripherals up. */
  static async start(spec: MachineSpec, options: HostOptions = {}): Promise<MachineHost> {
    const rig = new Rig(spec, options.seed ?? 1);
    const transport = createTransport(options.target ?? 'sim');
    const host = new MachineHost(rig, transport, options);
    try {
      await host.send({ t: 0, boot: { ...rig.firmwareConfig(options.machineId), ...options.config } });
      await host.runUntilReady();
    } catch (e) {
      await transport.close();
      throw e;
    }
    return host;
  }

  get nowMs(): number {
    return this.rig.scheduler.nowMs;
  }

  // ---- the customer and the world --------------------------------------------------------

  select(code: string, quantity = 1): void {
    this.input(['select', code, quantity]);
  }

  cancel(): void {
    this.input(['cancel']);
  }

  insertCoin(value: number): boolean {
    const changer = this.rig.changer;
    if (!changer) throw new Error('this machine has no coin changer');
    return changer.insertCoin(value);
  }

  insertBill(value: number): boolean {
    const validator = this.rig.validator;
    if (!validator) throw new Error('this machine has no bill validator');
    return validator.insertBill(value);
  }

  jam(code: string): void {
    this.rig.motor(code).jams++;
  }

  // ---- running -------------------------------------------------------------------------------

  /** Let the machine run for `ms` of virtual time. */
  async run(ms: number): Promise<void> {
    await this.runUntil(this.rig.scheduler.now + Math.round(ms * 1000));
  }

  async runUntil(tUs: number): Promise<void> {
    const scheduler = this.rig.scheduler;
    for (;;) {
      if (this.needDelivery) await this.deliver();
      if (scheduler.step(tUs) === Infinity) break;
    }
    scheduler.advanceTo(tUs);
    if (this.needDelivery) await this.deliver();
  }

  /**
   * Run until the machine is idle or waiting for the customer: no hardware
   * activity and nothing under way in the firmware. At most `maxMs`.
   */
  async runUntilIdle(maxMs = 60000): Promise<FirmwareStatus> {
    const end = this.rig.scheduler.now + maxMs * 1000;
    for (;;) {
      await this.runUntil(Math.min(end, this.rig.scheduler.now + 20_000));
      if (this.rig.quiet()) {
        const st = await this.status();
        if (!st.busy) return st;
      }
      if (this.rig.scheduler.now >= end) return this.status();
    }
  }

  /** Run until every peripheral the rig has is initialised (at most 10 s). */
  private async runUntilReady(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await this.run(100);
      const st = await this.status();
      const devices = (!this.rig.changer || st.devices.changer) && (!this.rig.validator || st.devices.bill);
      if (devices && st.state !== 'ERROR' && !st.busy && this.rig.quiet()) return;
    }
  }

  async status(): Promise<FirmwareStatus> {
    const reply = await this.send({ t: this.nowMs, status: true });
    if (!reply.status) throw new GuestError('the firmware returned no status');
    return reply.status;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  // ---- the bridge ---------------------------------------------------------------------------

  private input(ev: GuestEvent): void {
    this.events.push(ev);
    this.needDelivery = true;
  }

  private received(word: number): void {
    this.rx.push(word);
    this.rig.scheduler.cancel(this.rxFlush);
    this.rxFlush = this.rig.scheduler.after(CHAR_US, () => {
      this.rxFlush = undefined;
      this.needDelivery = true;
    });
  }

  private async deliver(): Promise<void> {
    this.needDelivery = false;
    await this.send({ t: this.nowMs });
  }

  private async send(message: HostMessage): Promise<GuestReply> {
    if (this.rx.length > 0) {
      this.events.push(['rx', this.rx]);
      this.rx = [];
      this.rig.scheduler.cancel(this.rxFlush);
      this.rxFlush = undefined;
    }
    if (this.events.length > 0) {
      message.ev = this.events;
      this.events = [];
    }
    this.deliveries++;
    const reply = await this.transport.deliver(message);
    this.apply(reply);
    if (reply.error) throw new GuestError(`firmware exception at t=${this.nowMs} ms: ${reply.error}`);
    return reply;
  }

  private apply(reply: GuestReply): void {
    const rig = this.rig;
    const atMs = this.nowMs;
    for (const op of reply.ops) {
      switch (op[0]) {
        case 'tx':
          rig.bus.masterWrite(op[1]);
          break;
        case 'pwm':
          rig.motors[op[1]]?.setDuty(op[2]);
          break;
        case 'show':
          rig.display.show(op[1], atMs);
          break;
        case 'lamp':
          rig.lamps[op[1]] = op[2];
          break;
        case 'log':
          if (this.logs.length >= 5000) this.logs.shift();
          this.logs.push({ atMs, level: op[1], message: op[2] });
          this.onLog?.(op[1], op[2], atMs);
          break;
      }
    }
    const scheduler = rig.scheduler;
    if (reply.wake < 0) {
      scheduler.cancel(this.wake);
      this.wake = undefined;
      this.wakeAtUs = -1;
      return;
    }
    // Never earlier than the guest's deadline, and always strictly later than now.
    const at = Math.max(Math.ceil(reply.wake * 1000), scheduler.now + 1);
    if (at === this.wakeAtUs && this.wake !== undefined) return;
    scheduler.cancel(this.wake);
    this.wakeAtUs = at;
    this.wake = scheduler.at(at, () => {
      this.wake = undefined;
      this.wakeAtUs = -1;
      this.needDelivery = true;
    });
  }
}
