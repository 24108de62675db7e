/**
 * The host side of the HAL bridge: runs the rig's virtual clock, turns
 * hardware activity into guest events (UART words, sensor edges, key
 * presses), applies the guest's outputs (UART writes, motor PWM, display)
 * and wakes the guest when its timers are due.
 *
 * The VMC's UART is modelled like the ESP32's: received words are handed
 * over when the line has been idle for one character time (the RX timeout
 * interrupt) or earlier if the firmware runs for another reason.
 *
 * About 630 lines kept in one file on purpose: the clock, the wake-ups and the
 * event hand-over are one loop whose ordering is what makes a run
 * deterministic; the peripherals, flash and network it drives are elsewhere.
 */
import type { ImageDescription } from '../firmware/image.js';
import type { FirmwareStatus } from '../firmware/vend/report.js';
import { AppSlots, applySlotOp, type ResetCause, type SlotGuestOp } from './firmware-slots.js';
import { CHAR_US } from './mdb/bus.js';
import { FlashFault, FlashImage, PowerCut, fromHex, imageRuns, type FlashGeometry, type FlashOp } from './guest/flash-image.js';
import type { GuestEvent, GuestReply, HostMessage } from './guest/protocol.js';
import { SimNetwork, type NetworkOptions } from './network.js';
import { Rig, type ExternalFactories, type MachineSpec, type PhysicalState } from './rig.js';
import type { EventId } from './scheduler.js';
import { createTransport, firmwareBundle, type GuestTransport, type TargetName } from './transport.js';

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
  /**
   * Target xs only: the board's speed in XS computrons a millisecond of machine time (100,000 for the 100 million a
   * second docs/benchmarks.md assumes). Each message to the firmware then takes its computrons of virtual time,
   * during which nothing the firmware would do happens (its timers and the bus wait, as on a busy board); the
   * bridge's own compute is included. Off by default (the firmware's compute takes no time).
   */
  boardComputronsPerMs?: number;
  /** Every MDB word on the wire. */
  onWire?: (direction: 'vmc' | 'periph', word: number, atUs: number) => void;
  /** Extra firmware configuration (overrides what the machine description gives). */
  config?: Record<string, unknown>;
  /** The journal's flash partition: its geometry (default 1 MiB of 4 KiB blocks), or an image to boot from. */
  flash?: FlashGeometry | FlashImage;
  /**
   * The application slots to boot from (they outlive the host, as `flash` does);
   * default: slot 0 holding the firmware bundle, valid, and slot 1 erased.
   */
  slots?: AppSlots;
  /** A stand-in gateway acknowledging every journal event this often (ms of machine time); off by default. */
  autoAckMs?: number;
  /** Boot in this physical state (after a power cut) instead of as the machine description says. */
  physical?: PhysicalState;
  /** Every flash write and erase the firmware makes, before it reaches the partition. */
  onFlashOp?: (host: MachineHost, op: FlashOp, index: number) => void;
  /** Connect the machine's uplink to a real MQTT broker. */
  network?: NetworkOptions;
  /** Devices played by something outside the simulator (programs on the bench), rebuilt with the rig after a power cut. */
  peripherals?: ExternalFactories;
  /**
   * The board's wall clock (Unix ms), read for every message to the firmware: 'host' is this
   * process's real clock (npm start: the machine runs faster than real time, the gateway that signs
   * its commands does not); a number starts a virtual wall clock there that moves with the board
   * clock (deterministic runs; default DEFAULT_WALL_START); a function maps the board clock (ms) to
   * the wall clock (tests of a board clock that runs at another rate than the world's).
   */
  wallClock?: 'host' | number | ((boardMs: number) => number);
}

/** Where a virtual wall clock starts by default: 2025-01-01T00:00:00Z. */
export const DEFAULT_WALL_START = Date.UTC(2025, 0, 1);

/** A 1 MiB journal: about 6,000 unacknowledged cash sales, weeks offline for a busy machine. */
/** Real milliseconds of virtual time a connected machine may run ahead in one go. */
const MAX_LEAD_MS = 20;

export const DEFAULT_FLASH: FlashGeometry = { size: 1024 * 1024, blockLength: 4096, writeAlign: 4 };
/** How long the machine stays dark after a power cut. */
const OFF_US = 2_000_000;

/** The firmware bundle as the first image in slot 0 (encoded once). */
let bundleImage: Uint8Array | undefined;
export function defaultImage(): Uint8Array {
  return (bundleImage ??= new TextEncoder().encode(firmwareBundle()));
}

export class MachineHost {
  rig: Rig;
  transport!: GuestTransport;
  /** The journal partition: it outlives the firmware (and the power). */
  readonly flash: FlashImage;
  /** The power failed at a flash operation: the firmware is gone until `reboot()`. */
  dead: PhysicalState | undefined;
  /** Power cuts so far. */
  cuts = 0;
  /** The machine's network link (with `network` in the options). */
  readonly network: SimNetwork | undefined;
  /** The application slots and their bootloader: which image boots (hal-sim/firmware-slots.ts). */
  readonly slots: AppSlots;
  /** The description of the image running now. */
  image!: ImageDescription;
  private pace: { realMs: number; virtualUs: number } | undefined;
  /** Scheduler steps while connected, and when this machine last let the event loop turn (real ms). */
  private steps = 0;
  private slice = performance.now();
  readonly logs: { atMs: number; level: string; message: string }[] = [];
  private events: GuestEvent[] = [];
  private rx: number[] = [];
  private rxFlush: EventId | undefined;
  private wake: EventId | undefined;
  private wakeAtUs = -1;
  private needDelivery = false;
  private readonly onLog: ((level: string, message: string, atMs: number) => void) | undefined;
  private readonly options: HostOptions;
  private readonly spec: MachineSpec;
  /** Guest deliveries so far. */
  deliveries = 0;
  /** Restarts the firmware asked for (reboot commands, rollbacks). */
  restarts = 0;
  /** Resets after an exception escaped an image on probation (hal-sim/firmware-slots.ts). */
  crashes = 0;
  /** The controller resets at the next step (a restart, a rollback, a crash). */
  private resetPending: ResetCause | undefined;
  private transportOpen = false;

  private constructor(spec: MachineSpec, rig: Rig, options: HostOptions) {
    this.spec = spec;
    this.rig = rig;
    this.options = options;
    this.slots = options.slots ?? new AppSlots(defaultImage());
    this.onLog = options.onLog;
    const f = options.flash;
    this.flash = f instanceof FlashImage ? f : new FlashImage(f ?? DEFAULT_FLASH);
    const onFlashOp = options.onFlashOp;
    if (onFlashOp) this.flash.onOp = (op, index) => onFlashOp(this, op, index);
    this.network = options.network ? new SimNetwork(options.network, rig.scheduler, (ev) => this.input(ev)) : undefined;
    this.wire();
  }

  private wire(): void {
    const rig = this.rig;
    rig.bus.toMaster = (word) => this.received(word);
    if (this.options.onWire) rig.bus.trace = this.options.onWire;
    rig.sensor.onChange = (level) => this.input(['drop', level]);
    const every = this.options.autoAckMs;
    if (every) {
      const tick = (): void => {
        this.acknowledge();
        rig.scheduler.after(every * 1000, tick);
      };
      rig.scheduler.after(every * 1000, tick);
    }
  }

  /** Build the rig, start the firmware on it, and let it bring its peripherals up. */
  static async start(spec: MachineSpec, options: HostOptions = {}): Promise<MachineHost> {
    const seed = options.seed ?? 1;
    const external = options.peripherals ?? {};
    const rig = options.physical ? Rig.restore(spec, seed, options.physical, options.physical.atUs + OFF_US, external) : new Rig(spec, seed, external);
    const host = new MachineHost(spec, rig, options);
    try {
      // Slots that have booted before lost their power in between.
      await host.boot(host.slots.boots > 0 ? 'power' : undefined);
    } catch (e) {
      await host.closeTransport();
      await rig.closeExternal();
      throw e;
    }
    return host;
  }

  /** The cabinet warms up or cools down. */
  setTemperature(celsius: number): void {
    this.rig.cabinetC = celsius;
    this.input(['temp', celsius]);
  }

  /** The bootloader picks an image (`cause`: why the controller reset); the host evaluates it and starts the firmware. */
  private async boot(cause?: ResetCause): Promise<void> {
    const booted = this.slots.boot(cause);
    this.image = booted.description;
    try {
      this.transport = createTransport(this.options.target ?? 'sim', new TextDecoder().decode(booted.bytes));
      this.transportOpen = true;
    } catch (e) {
      // An image that throws while it is evaluated: on probation a crash (the bootloader goes back), else a bug.
      if (!this.slots.probation) throw e;
      this.crashed(e);
      await this.settle();
      return;
    }
    const g = this.flash.geometry;
    this.events.push(['temp', this.rig.cabinetC]);
    const net = this.network;
    await this.send({
      t: this.nowMs,
      boot: { ...this.rig.firmwareConfig(this.options.machineId), ...(net ? { uplink: { host: net.host, port: net.port, ...(net.brokers.length > 1 ? { brokers: [...net.brokers] } : {}) } } : {}), ...this.options.config },
      flash: { size: g.size, blockLength: g.blockLength, writeAlign: g.writeAlign, runs: imageRuns(this.flash.bytes), faults: this.flash.faults, erases: [...this.flash.eraseCounts] },
      slots: this.slots.info(),
    });
    if (this.resetPending) return this.settle();
    await this.runUntilReady();
  }

  private async closeTransport(): Promise<void> {
    if (!this.transportOpen) return;
    this.transportOpen = false;
    await this.transport.close();
  }

  /** The power fails now (or failed at a flash operation): everything not physical is lost. */
  async powerCut(): Promise<void> {
    if (!this.dead) this.dead = this.rig.physical(true);
    await this.reboot();
  }

  /**
   * The controller resets without a power cut (the firmware restarts itself, a rollback, a
   * crash, or a test's watchdog): the peripherals keep their state, the bootloader chooses.
   */
  async reset(cause: Exclude<ResetCause, 'power'>): Promise<void> {
    this.resetPending = cause;
    await this.settle();
  }

  /** Carry out a reset the firmware caused (a restart, a rollback, a crash on probation). */
  private async settle(): Promise<void> {
    const why = this.resetPending;
    if (!why) return;
    this.resetPending = undefined;
    if (why === 'restart') this.restarts++;
    else if (why === 'crash') this.crashes++;
    await this.reboot(why);
  }

  /** An exception escaped an image on probation: on a board, a panic and a reset. */
  private crashed(error: unknown): void {
    const text = error instanceof Error ? error.message : String(error);
    this.logs.push({ atMs: this.nowMs, level: 'error', message: `crash on probation (${this.image.version}): ${text.split('\n')[0]}` });
    this.resetPending = 'crash';
    this.needDelivery = false;
  }

  /** Power comes back after a cut (or the controller resets): a fresh rig in the physical state left, the bootloader's image booting. */
  async reboot(why: ResetCause = 'power'): Promise<void> {
    const state = this.dead ?? this.rig.physical(true);
    if (why === 'power') this.cuts++;
    await this.closeTransport();
    // The simulator rebuilds the machine's hardware: an external device's program ends and starts afresh, as after a power cycle.
    await this.rig.closeExternal();
    this.rig = Rig.restore(this.spec, (this.options.seed ?? 1) + (this.cuts + this.restarts + this.crashes) * 7919, state, state.atUs + OFF_US, this.options.peripherals ?? {});
    this.dead = undefined;
    this.resetPending = undefined;
    this.events = [];
    this.rx = [];
    this.rxFlush = undefined;
    this.wake = undefined;
    this.wakeAtUs = -1;
    this.needDelivery = false;
    this.pace = undefined;
    this.network?.rewire(this.rig.scheduler, (ev) => this.input(ev));
    this.wire();
    await this.boot(why);
  }

  /** The machine's link to the broker goes down or comes back (bench `network` steps). */
  setNetwork(up: boolean): void {
    if (!this.network) throw new Error('this machine has no network (start it with `network`)');
    this.network.setLink(up);
  }

  /** The gateway acknowledges journal events up to `seq` (default: all of them). */
  acknowledge(seq = 0xffffffff): void {
    this.input(['ack', seq]);
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

  /** A coin goes into the changer. False when it was not accepting coins; an external changer is told, and decides. */
  insertCoin(value: number): boolean {
    const external = this.rig.external.changer;
    if (external) {
      external.event('insertCoin', [value]);
      return true;
    }
    const changer = this.rig.changer;
    if (!changer) throw new Error('this machine has no coin changer');
    return changer.insertCoin(value);
  }

  insertBill(value: number): boolean {
    const external = this.rig.external.bill;
    if (external) {
      external.event('insertBill', [value]);
      return true;
    }
    const validator = this.rig.validator;
    if (!validator) throw new Error('this machine has no bill validator');
    return validator.insertBill(value);
  }

  jam(code: string): void {
    this.rig.motor(code).jams++;
  }

  /** The customer presents the card to the cashless reader. False when the reader is not taking cards (disabled, busy, silent). */
  tapCard(): boolean {
    const external = this.rig.external.cashless;
    if (external) {
      // An external reader is told the card's funds as the machine description gives them, and decides.
      external.event('tapCard', [this.spec.cashless?.funds ?? 0]);
      return true;
    }
    const reader = this.rig.reader;
    if (!reader) throw new Error('this machine has no cashless reader');
    return reader.tap();
  }

  /** The customer cancels at the reader (pulls the card). */
  cancelCard(): void {
    const reader = this.rig.reader;
    if (!reader) throw new Error('this machine has no cashless reader');
    reader.cancelAtReader();
  }

  // ---- running -------------------------------------------------------------------------------

  /** Let the machine run for `ms` of virtual time. */
  async run(ms: number): Promise<void> {
    await this.runUntil(this.rig.scheduler.now + Math.round(ms * 1000));
  }

  async runUntil(tUs: number): Promise<void> {
    const scheduler = this.rig.scheduler;
    for (;;) {
      if (this.dead) return;
      // An external peripheral is answering what reached it: the clock waits for it (it lets go in bounded real time).
      const held = this.rig.bus.takeHolds();
      if (held) {
        await held;
        continue;
      }
      if (this.resetPending) await this.settle();
      if (this.needDelivery) await this.deliver();
      if (this.dead) return;
      const paced = this.pacedLimit();
      const limit = Math.min(tUs, paced);
      // Counted across calls: a caller running the machine in short steps must not starve the sockets either.
      if (paced !== Infinity && ++this.steps % 256 === 0 && performance.now() - this.slice > 10) {
        // Connected machines share the process's event loop with real sockets (and each other): take turns.
        await new Promise((r) => setImmediate(r));
        this.slice = performance.now();
      }
      if (scheduler.step(limit) !== Infinity) continue;
      if (limit >= tUs) break;
      // Real I/O is under way: let real time catch up with the machine's.
      scheduler.advanceTo(limit);
      await new Promise((r) => setTimeout(r, 1));
    }
    scheduler.advanceTo(tUs);
    if (this.needDelivery) await this.deliver();
  }

  /** How far virtual time may run now: unlimited without open connections, else `speed` times real time. */
  private pacedLimit(): number {
    const net = this.network;
    if (!net || !net.active) {
      this.pace = undefined;
      return Infinity;
    }
    const now = performance.now();
    const at = this.rig.scheduler.now;
    if (!this.pace) this.pace = { realMs: now, virtualUs: at };
    const limit = this.pace.virtualUs + (now - this.pace.realMs) * 1000 * net.speed;
    // A machine that fell behind (the CPU is shared by many) does not sprint to catch up, which
    // would starve the others and make them fall behind in turn: it goes on at its pace from here.
    const most = at + MAX_LEAD_MS * 1000 * net.speed;
    if (limit > most) {
      this.pace = { realMs: now, virtualUs: most };
      return most;
    }
    return limit;
  }

  /**
   * Run until the machine is idle or waiting for the customer: no hardware
   * activity and nothing under way in the firmware. At most `maxMs`.
   */
  async runUntilIdle(maxMs = 60000): Promise<FirmwareStatus> {
    const end = this.rig.scheduler.now + maxMs * 1000;
    for (;;) {
      await this.runUntil(Math.min(end, this.rig.scheduler.now + 20_000));
      if (this.dead) throw new GuestError('the power failed; reboot() first');
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
      // A device refused for its currency is as far as it will get.
      const r = st.refused;
      const rig = this.rig;
      const devices = (!rig.has('changer') || st.devices.changer || r?.changer) && (!rig.has('bill') || st.devices.bill || r?.bill) && (!rig.has('cashless') || st.devices.cashless === true || r?.cashless);
      if (devices && st.state !== 'ERROR' && !st.busy && this.rig.quiet()) return;
    }
  }

  async status(): Promise<FirmwareStatus> {
    if (this.dead) throw new GuestError('the power failed; reboot() first');
    await this.settle();
    const reply = await this.send({ t: this.nowMs, status: true });
    if (this.resetPending) {
      // It crashed (on probation) or rolled back answering: the status is the next image's.
      await this.settle();
      return this.status();
    }
    if (!reply.status) throw new GuestError('the firmware returned no status');
    return reply.status;
  }

  /**
   * Run a function body inside the guest, next to the firmware, with its
   * Board at `vendfleetGuest.board`: for a test playing a part of the
   * firmware that is not built yet. What it does to the board reaches the
   * host at once, in order; a reset it causes (a rollback) happens before
   * this returns. Returns the body's return value (through JSON).
   */
  async runInGuest(body: string): Promise<unknown> {
    if (this.dead) throw new GuestError('the power failed; reboot() first');
    await this.settle();
    const text = await this.transport.run(`return { r: (function () {\n${body}\n})() };`);
    await this.send({ t: this.nowMs });
    await this.settle();
    return (JSON.parse(text) as { r?: unknown }).r;
  }

  async close(): Promise<void> {
    this.network?.drop();
    await this.closeTransport();
    await this.rig.closeExternal();
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

  /** The board's wall clock now (Unix ms). */
  get wallMs(): number {
    const w = this.options.wallClock ?? DEFAULT_WALL_START;
    return w === 'host' ? Date.now() : typeof w === 'number' ? w + this.nowMs : w(this.nowMs);
  }

  private async send(message: HostMessage): Promise<GuestReply> {
    if (this.dead) return { ops: [], wake: -1 };
    message.w = Math.floor(this.wallMs);
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
    let reply: GuestReply;
    try {
      reply = await this.transport.deliver(message);
    } catch (e) {
      // The engine itself gave up (XS: the image did not evaluate, or ran away).
      if (!this.slots.probation) throw e;
      this.crashed(e);
      return { ops: [], wake: -1 };
    }
    const speed = this.options.boardComputronsPerMs;
    if (speed !== undefined) {
      const meter = this.transport.meter?.();
      if (!meter) throw new Error('boardComputronsPerMs needs the xs target (its compute is metered)');
      this.rig.scheduler.busy((meter.last.compute / speed) * 1000)
    }
    this.apply(reply);
    if (reply.error) {
      if (this.slots.probation && !this.dead) {
        this.crashed(reply.error);
        return { ops: [], wake: -1 };
      }
      throw new GuestError(`firmware exception at t=${this.nowMs} ms: ${reply.error}`);
    }
    return reply;
  }

  private apply(reply: GuestReply): void {
    const rig = this.rig;
    const atMs = this.nowMs;
    for (const op of reply.ops) {
      if (this.dead) return;
      switch (op[0]) {
        case 'fw':
        case 'fe':
          this.flashOp(op);
          break;
        case 'mq':
          this.mqttOp(op);
          break;
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
        case 'restart':
          this.resetPending = 'restart';
          this.needDelivery = false;
          break;
        case 'slot':
          // A rollback restarts the controller, and a cut ends it: nothing after either happens.
          if (this.slotOp(op)) return;
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

  private mqttOp(op: Extract<GuestReply['ops'][number], ['mq', ...unknown[]]>): void {
    const net = this.network;
    if (!net) {
      // No network: a connection attempt simply fails.
      if (op[1] === 'open') this.rig.scheduler.after(5_000_000, () => this.input(['mq', 'down']));
      return;
    }
    switch (op[1]) {
      case 'open': {
        const o = op[2];
        net.open({ host: o.host, port: o.port, id: o.id, keepalive: o.keepalive, ...(o.user !== undefined ? { user: o.user } : {}), ...(o.password !== undefined ? { password: o.password } : {}), ...(o.will ? { will: o.will } : {}) });
        break;
      }
      case 'pub':
        net.publish(op[2], op[3], op[4], op[5]);
        break;
      case 'sub':
        net.subscribe(op[2]);
        break;
      case 'close':
        net.close();
        break;
    }
  }

  /** Carry out the firmware's slot operation; true when the controller stops (a rollback, a power cut). */
  private slotOp(op: SlotGuestOp): boolean {
    try {
      if (!applySlotOp(this.slots, op)) return false;
      this.resetPending = 'restart';
      this.needDelivery = false;
      return true;
    } catch (e) {
      if (!(e instanceof PowerCut)) throw new GuestError(`the slots refused what the firmware's side let through (${op[1]}): ${(e as Error).message}`);
      this.dead = this.rig.physical(true);
      return true;
    }
  }

  /** Carry out the firmware's flash operation on the real partition; a cut there ends this life. */
  private flashOp(op: ['fw', number, string] | ['fe', number, number]): void {
    try {
      if (op[0] === 'fw') {
        const data = new Uint8Array(op[2].length >> 1);
        fromHex(op[2], data, 0);
        this.flash.write(data, op[1]);
      } else {
        this.flash.eraseBlock(op[1], op[2]);
      }
    } catch (e) {
      // A fault the partition injects failed the mirror's op alike: the firmware has seen it.
      if (e instanceof FlashFault) return;
      if (!(e instanceof PowerCut)) throw e;
      this.dead = this.rig.physical(true);
    }
  }
}
