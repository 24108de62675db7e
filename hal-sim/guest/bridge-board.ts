/**
 * The firmware's Board on the host: every input arrives in a bridge message,
 * every output is collected into the reply. Timers are kept here, against
 * the clock the host sends, so virtual time works the same in Node and XS.
 */
import type {
  Board,
  DigitalInput,
  DigitalOutput,
  Indicator,
  DigitalInputOptions,
  FirmwareSlots,
  FlashPartition,
  LogLevel,
  MqttClient,
  MqttClientOptions,
  TemperatureSensor,
  PwmOutput,
  SelectionPanel,
  SelectionPanelOptions,
  TextDisplay,
  TimerId,
  Timers,
  WordSerial,
  WordSerialOptions,
  WordSerialPort,
} from '../../firmware/board.js';
import { decodeUtf8 } from '../../firmware/text/utf8.js';
import { BridgeSlots } from './bridge-slots.js';
import { FlashImage, fromHex, toHex } from './flash-image.js';
import { PWM_RESOLUTION, type GuestEvent, type GuestOp, type HostMessage, type SlotsInfo } from './protocol.js';

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A runaway timer loop in the firmware is a bug; stop it rather than hang the host. */
const MAX_TIMER_RUNS = 100000;

/** What the MDB link's options carry from `board.mdb`, which it spreads into them (firmware/board.ts WordSerialPort). */
interface BridgeMdbOptions extends WordSerialOptions {
  readonly board: BridgeBoard;
}

/**
 * `board.mdb.io`: the ECMA-419 IO class of MDB ports on this board; the port
 * opened last gets the words. One class for every board, made when the module
 * loads, which the board finds in the options: a class made in the board's
 * constructor (closing over it) was 54 slots of running state.
 */
class BridgeMdbPort implements WordSerial {
  private readonly options: WordSerialOptions;
  private readonly board: BridgeBoard;

  constructor(options: WordSerialOptions) {
    this.options = options;
    const board = (options as Partial<BridgeMdbOptions>).board;
    if (!board) throw new TypeError('an MDB port opens as new board.mdb.io({ ...board.mdb, onReadable })');
    this.board = board;
    board.attachMdb(options);
  }

  read(): number | undefined {
    return this.board.readMdb();
  }

  write(word: number): void {
    this.board.writeMdb(word);
  }

  close(): void {
    this.board.detachMdb(this.options);
  }
}

export class BridgeBoard implements Board {
  now = 0;
  readonly clock = { now: (): number => this.now };
  /** The wall clock the host sent with the last message (Unix ms), undefined until it sends one. */
  wall: number | undefined;
  readonly wallClock = { now: (): number | undefined => this.wall };
  readonly timers: Timers;
  readonly display: TextDisplay;
  /** The MDB port as data: its `io` opens a port onto the bridge's 'rx' events and 'tx' ops. */
  readonly mdb: WordSerialPort;
  private ops: GuestOp[] = [];
  private pending = new Map<TimerId, PendingTimer>();
  private nextId = 1;
  private rx: number[] = [];
  private rxHead = 0;
  private mdbListener: WordSerialOptions | undefined;
  private drop: DigitalInputOptions | undefined;
  private dropLevel: 0 | 1 = 0;
  private panel: SelectionPanelOptions | undefined;
  private txOp: number[] | undefined;
  private mqtt: MqttClientOptions | undefined;
  private cabinetC: number | undefined;
  private inbox: { topic: string; data: ArrayBuffer }[] = [];
  /** The guest's copy of the flash; every change is also sent to the host, which owns the real one. */
  private flash: FlashImage | undefined;
  /** The application slots, from the host's `slots` at boot (their bytes stay on the host). */
  firmware?: FirmwareSlots;

  constructor(columns = 20, rows = 2) {
    this.timers = {
      set: (fn, ms) => {
        const id = this.nextId++;
        this.pending.set(id, { at: this.now + (ms > 0 ? ms : 0), seq: id, fn });
        return id;
      },
      clear: (id) => {
        this.pending.delete(id);
      },
    };
    this.display = {
      columns,
      rows,
      show: (lines) => this.emit(['show', lines.slice()]),
    };
    this.mdb = Object.freeze({ io: BridgeMdbPort, board: this });
  }

  /** A port opened on `board.mdb` (BridgeMdbPort): the words go to the port opened last. */
  attachMdb(options: WordSerialOptions): void {
    this.mdbListener = options;
  }

  detachMdb(options: WordSerialOptions): void {
    if (this.mdbListener === options) this.mdbListener = undefined;
  }

  readMdb(): number | undefined {
    if (this.rxHead >= this.rx.length) return undefined;
    return this.rx[this.rxHead++];
  }

  writeMdb(word: number): void {
    // Consecutive writes travel as one 'tx' op.
    if (!this.txOp) {
      this.txOp = [];
      this.ops.push(['tx', this.txOp]);
    }
    this.txOp.push(word & 0x1ff);
  }

  openMotor(index: number): PwmOutput {
    return {
      resolution: PWM_RESOLUTION,
      write: (duty) => this.emit(['pwm', index, duty]),
      close: () => {},
    };
  }

  openDropSensor(options: DigitalInputOptions): DigitalInput {
    this.drop = options;
    return { read: () => this.dropLevel, close: () => (this.drop = undefined) };
  }

  openSelectionPanel(options: SelectionPanelOptions): SelectionPanel {
    this.panel = options;
    return { close: () => (this.panel = undefined) };
  }

  loadFlash(spec: NonNullable<HostMessage['flash']>): void {
    const image = new FlashImage({ size: spec.size, blockLength: spec.blockLength, writeAlign: spec.writeAlign }, undefined, spec.faults, spec.erases);
    for (const [offset, hex] of spec.runs) fromHex(hex, image.bytes, offset);
    image.onOp = (op) => {
      if (op.kind === 'write') this.emit(['fw', op.offset, toHex(op.data)]);
      else this.emit(['fe', op.first, op.last]);
    };
    this.flash = image;
  }

  loadSlots(info: SlotsInfo): void {
    this.firmware = new BridgeSlots(info, (op) => this.emit(op));
  }

  openFlash(path: string): FlashPartition {
    if (path !== 'journal') throw new Error(`no flash partition "${path}"`);
    if (!this.flash) this.loadFlash({ size: 65536, blockLength: 4096, writeAlign: 4, runs: [] });
    return this.flash!;
  }

  openMqtt(options: MqttClientOptions): MqttClient {
    this.mqtt = options;
    this.inbox = [];
    const open: Extract<GuestOp, ['mq', 'open', unknown]>[2] = { host: options.host, port: options.port ?? 1883, id: options.id, keepalive: options.keepalive ?? 60 };
    if (options.user !== undefined) open.user = options.user;
    if (options.password !== undefined) open.password = decodeUtf8(options.password);
    if (options.will) open.will = { topic: options.will.topic, message: bytesText(options.will.message), qos: options.will.QoS ?? 0, retain: options.will.retain ?? false };
    this.emit(['mq', 'open', open]);
    const self = this;
    return {
      read(count: number): ArrayBuffer | undefined {
        const m = self.inbox.shift();
        return m && m.data.byteLength <= count ? m.data : m?.data.slice(0, count);
      },
      write(data: ArrayBuffer, o: { topic: string; QoS?: 0 | 1; retain?: boolean }): number {
        if (self.mqtt !== options) throw new Error('MQTT client closed');
        self.emit(['mq', 'pub', o.topic, bytesText(data), o.QoS ?? 0, o.retain ?? false]);
        return data.byteLength;
      },
      subscribe(topics: readonly { topic: string; QoS?: 0 | 1 }[]): number {
        self.emit(['mq', 'sub', topics.map((t) => t.topic)]);
        return topics.length;
      },
      close(): void {
        if (self.mqtt !== options) return;
        self.mqtt = undefined;
        self.emit(['mq', 'close']);
      },
    };
  }

  openTemperatureSensor(): TemperatureSensor {
    return {
      sample: () => (this.cabinetC === undefined ? undefined : { temperature: this.cabinetC }),
      close: () => {},
    };
  }

  openIndicator(name: Indicator): DigitalOutput {
    return { write: (value) => this.emit(['lamp', name, value]), close: () => {} };
  }

  /** The host restarts the controller (peripherals keep their state; the MQTT connection drops). */
  restart(): void {
    this.emit(['restart']);
  }

  log(level: LogLevel, message: string): void {
    this.emit(['log', level, message]);
  }

  private emit(op: GuestOp): void {
    this.txOp = undefined;
    this.ops.push(op);
  }

  /** Apply one input from the host. */
  apply(ev: GuestEvent): void {
    switch (ev[0]) {
      case 'rx': {
        if (this.rxHead > 0 && this.rxHead >= this.rx.length) {
          this.rx = [];
          this.rxHead = 0;
        }
        for (const w of ev[1]) this.rx.push(w);
        const count = this.rx.length - this.rxHead;
        if (count > 0) this.mdbListener?.onReadable(count);
        break;
      }
      case 'drop':
        this.dropLevel = ev[1];
        this.drop?.onReadable();
        break;
      case 'select':
        this.panel?.onSelect(ev[1], ev[2]);
        break;
      case 'cancel':
        this.panel?.onCancel();
        break;
      case 'temp':
        this.cabinetC = ev[1];
        break;
      case 'mq': {
        const m = this.mqtt;
        if (!m) break;
        if (ev[1] === 'up') m.onWritable?.(65536);
        else if (ev[1] === 'down') {
          this.mqtt = undefined;
          m.onClose?.();
        } else {
          const data = textBytes(ev[3]);
          this.inbox.push({ topic: ev[2], data });
          // Bounded: a flood of messages cannot grow the guest's heap without limit.
          if (this.inbox.length > 32) this.inbox.shift();
          m.onReadable?.(data.byteLength, { topic: ev[2], QoS: 1, retain: false });
        }
        break;
      }
    }
  }

  /** Run every timer due by now, earliest first (ties in the order they were set). */
  runTimers(): void {
    for (let runs = 0; runs < MAX_TIMER_RUNS; runs++) {
      let due: PendingTimer | undefined;
      let dueId = 0;
      for (const [id, t] of this.pending) {
        if (t.at <= this.now && (!due || t.at < due.at || (t.at === due.at && t.seq < due.seq))) {
          due = t;
          dueId = id;
        }
      }
      if (!due) return;
      this.pending.delete(dueId);
      due.fn();
    }
    throw new Error(`more than ${MAX_TIMER_RUNS} timers ran at t=${this.now}: runaway timer loop`);
  }

  nextDeadline(): number {
    let at = -1;
    for (const t of this.pending.values()) if (at < 0 || t.at < at) at = t.at;
    return at;
  }

  takeOps(): GuestOp[] {
    const ops = this.ops;
    this.ops = [];
    this.txOp = undefined;
    return ops;
  }
}

/**
 * MQTT payloads cross the bridge as text with one character per byte
 * (0..255, Latin-1), both ways: firmware images' chunks are binary, and the
 * bytes of every other message (UTF-8 text) arrive as they were sent.
 */
function bytesText(data: ArrayBuffer): string {
  const b = new Uint8Array(data);
  let s = '';
  for (let i = 0; i < b.length; i += 256) s += String.fromCharCode(...b.subarray(i, Math.min(b.length, i + 256)));
  return s;
}

function textBytes(text: string): ArrayBuffer {
  const b = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) b[i] = text.charCodeAt(i) & 0xff;
  return b.buffer;
}
