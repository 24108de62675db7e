/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The device's Board: firmware/board.ts on the Moddable SDK's modules for
 * the ESP32. The host's counterpart is hal-sim/guest/bridge-board.ts; the
 * firmware cannot tell them apart. Which GPIO does what comes from the
 * manifest's `config` (settings.ts), never from constants here.
 *
 * | Board            | here                                              |
 * |------------------|---------------------------------------------------|
 * | clock, timers    | `Time.ticks` (unwrapped), `Timer`                 |
 * | wallClock        | sntp.ts: SNTP sets the system time, `Date` reads it |
 * | mdb (its io)     | native/mdb-uart (9-bit MDB on a UART, C)          |
 * | openMotor        | motors.ts: 74HC595 matrix, PWM (`embedded:io/pwm`)|
 * | openDropSensor   | `embedded:io/digital`, interrupt on both edges    |
 * | openIndicator    | `embedded:io/digital` outputs                     |
 * | openSelectionPanel | keypad.ts: key matrix on `embedded:io/digital`  |
 * | display          | lcd.ts (HD44780 on `embedded:io/i2c`) or the log  |
 * | openFlash        | `embedded:storage/flash`, the `journal` partition |
 * | openMqtt         | mqtt.ts on `embedded:network/mqtt/client`         |
 * | openTemperatureSensor | `embedded:sensor/Temperature/TMP102`         |
 * | restart          | `System.restart()`                                |
 * | firmware         | firmware-slots.ts: the SDK's `ota`, native/ota-slots (ESP-IDF OTA, rollback) |
 */
import Digital from 'embedded:io/digital';
import SMBus from 'embedded:io/smbus';
import TCP from 'embedded:io/socket/tcp';
import UDP from 'embedded:io/socket/udp';
import Resolver from 'embedded:network/dns/resolver/udp';
import TMP102 from 'embedded:sensor/Temperature/TMP102';
import Flash from 'embedded:storage/flash';
import Time from 'time';
import Timer, { type TimerHandle } from 'timer';
import type {
  Board,
  Clock,
  DigitalInput,
  DigitalInputOptions,
  DigitalOutput,
  FirmwareSlots,
  FlashPartition,
  Indicator,
  LogLevel,
  MqttClient,
  MqttClientOptions,
  PwmOutput,
  SelectionPanel,
  SelectionPanelOptions,
  TemperatureSensor,
  TextDisplay,
  TimerId,
  Timers,
  WordSerial,
  WordSerialOptions,
  WordSerialPort,
} from '../../board.js';
import { Esp32FirmwareSlots } from './firmware-slots.js';
import { Keypad } from './keypad.js';
import { CharacterLcd } from './lcd.js';
import { MotorMatrix } from './motors.js';
import { openMqtt } from './mqtt.js';
import { SntpClock } from './sntp.js';
import MdbUart, { type MdbUartStats } from './native/mdb-uart.js';
import type { BoardSettings } from './settings.js';

// Moddable globals, declared for this module only: `trace` writes a line to
// the console (or xsbug); `System` is installed by the SDK's preloaded
// `system` module (modules/io/system).
declare function trace(text: string): void;
declare const System: { restart(): void };

/** How often the MDB driver's counters are looked at (and logged when they moved). */
const MDB_STATS_MS = 60000;
/** Keeps the tick unwrapping fed when the firmware is idle for days. */
const CLOCK_KEEPER_MS = 3600000;

/**
 * `Time.ticks` is a signed 32-bit millisecond count that wraps after about
 * 24.8 days; the firmware wants a clock that never goes back. Differences
 * taken modulo 2^32 are added up in a double, which is exact for millennia.
 */
class TickClock implements Clock {
  private last = Time.ticks;
  private elapsed = 0;

  now(): number {
    const t = Time.ticks;
    this.elapsed += (t - this.last) >>> 0;
    this.last = t;
    return this.elapsed;
  }
}

class TimerTable implements Timers {
  private readonly live = new Map<TimerId, TimerHandle>();
  private next = 1;

  /** Cancel every pending timer (a firmware instance is being replaced: see Esp32Board.quiesce). */
  clearAll(): void {
    for (const handle of this.live.values()) Timer.clear(handle);
    this.live.clear();
  }

  set(callback: () => void, ms: number): TimerId {
    const id = this.next++;
    // Timer takes whole milliseconds; rounding up keeps a deadline from firing early.
    const handle = Timer.set(() => {
      this.live.delete(id);
      callback();
    }, ms > 0 ? Math.ceil(ms) : 0);
    this.live.set(id, handle);
    return id;
  }

  clear(id: TimerId): void {
    const handle = this.live.get(id);
    if (handle === undefined) return;
    this.live.delete(id);
    Timer.clear(handle);
  }
}

/** No display fitted: what it would show goes to the log, once per change. */
class LogDisplay implements TextDisplay {
  readonly columns = 20;
  readonly rows = 2;
  private last = '';
  constructor(private readonly log: (level: LogLevel, message: string) => void) {}
  show(lines: readonly string[]): void {
    const text = lines.join(' | ');
    if (text === this.last) return;
    this.last = text;
    this.log('info', `display: ${text}`);
  }
}

/** What the MDB link's options carry from `board.mdb`, which it spreads into them (firmware/board.ts WordSerialPort). */
interface MdbPortOptions extends WordSerialOptions {
  readonly board: Esp32Board;
}

/**
 * `board.mdb.io`: an ECMA-419 IO class for ports onto the MDB UART, which
 * knows the board's pins (settings.mdb). The UART itself is opened by the
 * first port and kept; each port opened later takes its callback over, and
 * closing a port only detaches it. One class, preloaded into flash with the
 * module, which finds its board in the options: a class made in the board's
 * constructor would be built in RAM at every start (about 50 slots).
 */
class MdbPort implements WordSerial {
  private readonly uart: MdbUart;
  private readonly board: Esp32Board;
  private readonly listener: (count: number) => void;

  constructor(options: WordSerialOptions) {
    const board = (options as Partial<MdbPortOptions>).board;
    if (!board) throw new TypeError('an MDB port opens as new board.mdb.io({ ...board.mdb, onReadable })');
    this.board = board;
    this.listener = (count) => options.onReadable(count);
    board.attachMdb(this.listener);
    this.uart = board.openMdbUart(options.baud ?? 9600);
  }

  read(): number | undefined {
    return this.uart.read();
  }

  write(word: number): void {
    this.uart.write(word);
  }

  close(): void {
    this.board.detachMdb(this.listener);
  }
}

/**
 * Each peripheral is opened once and kept: a later open (a new firmware
 * instance, as the bench build starts one per scenario) gets the same
 * hardware with its callbacks routed to the new caller, since GPIOs and the
 * UART cannot be opened twice.
 */
export class Esp32Board implements Board {
  readonly clock: Clock = new TickClock();
  /** Set by SNTP once the network is up (`syncTime`). */
  readonly wallClock: SntpClock;
  readonly timers: Timers;
  readonly display: TextDisplay;
  /** The two OTA application slots (docs/updates.md). */
  readonly firmware: FirmwareSlots;
  protected readonly settings: BoardSettings;
  private readonly timerTable = new TimerTable();
  private motors: MotorMatrix | undefined;
  /** The MDB port as data: its `io` opens a port onto the board's one MDB UART (MdbPort). */
  readonly mdb: WordSerialPort;
  private mdbUart: MdbUart | undefined;
  private mdbListener: ((count: number) => void) | undefined;
  private mdbSeen: MdbUartStats = { withdrawn: 0, proxied: 0, overruled: 0, ambiguous: 0, errors: 0 };
  private drop: { input: Digital; sensor: DigitalInput } | undefined;
  private dropListener: (() => void) | undefined;
  private keypad: Keypad | undefined;
  /** Where completed selections go (the current firmware's panel options). */
  panelListener: SelectionPanelOptions | undefined;
  private readonly lamps = new Map<Indicator, Digital>();
  private networkDown = false;
  private readonly mqttCuts = new Set<() => void>();
  /** Watches the drop sensor for the bench build's instruments: (beam broken, the motor running or -1). */
  onBeam: ((broken: boolean, motor: number) => void) | undefined;

  constructor(settings: BoardSettings) {
    this.settings = settings;
    this.timers = this.timerTable;
    this.wallClock = new SntpClock(settings.sntp, settings.dns, (level, text) => this.log(level, text));
    let display: TextDisplay | undefined;
    if (settings.display) {
      try {
        display = new CharacterLcd(settings.i2c, settings.display);
      } catch (e) {
        this.log('error', `display at I2C 0x${settings.display.address.toString(16)}: ${message(e)}; showing it in the log`);
      }
    }
    this.display = display ?? new LogDisplay((level, text) => this.log(level, text));
    this.firmware = new Esp32FirmwareSlots((level, text) => this.log(level, text));
    this.mdb = Object.freeze({ io: MdbPort, board: this });
    Timer.repeat(() => this.clock.now(), CLOCK_KEEPER_MS);
  }

  /** The spiral turning now, or -1. */
  get motorRunning(): number {
    return this.motors?.running ?? -1;
  }

  /**
   * Stop what a firmware instance left running (its timers, a turning
   * spiral) before another starts on this board. Callbacks already go to
   * whoever opened the peripheral last.
   */
  quiesce(): void {
    this.timerTable.clearAll();
    this.motors?.stop();
    this.panelListener = undefined;
    this.dropListener = undefined;
    this.mdbListener = undefined;
  }

  /** A port opened on `board.mdb` (MdbPort) takes the UART's callback over. */
  attachMdb(listener: (count: number) => void): void {
    this.mdbListener = listener;
  }

  detachMdb(listener: (count: number) => void): void {
    if (this.mdbListener === listener) this.mdbListener = undefined;
  }

  /** The board's one MDB UART, opened by the first port (MdbPort) and kept. */
  openMdbUart(baud: number): MdbUart {
    if (!this.mdbUart) {
      const s = this.settings.mdb;
      this.mdbUart = new MdbUart({
        port: s.port,
        transmit: s.transmit,
        receive: s.receive,
        baud,
        invertTransmit: s.invertTransmit,
        invertReceive: s.invertReceive,
        onReadable: (count: number) => this.mdbListener?.(count),
      });
      Timer.repeat(() => this.mdbStats(), MDB_STATS_MS);
    }
    return this.mdbUart;
  }

  /** What the native driver did on the firmware's behalf: worth knowing on a bench, and in the field. */
  private mdbStats(): void {
    const now = this.mdbUart?.stats;
    if (!now) return;
    const was = this.mdbSeen;
    const moved: string[] = [];
    if (now.withdrawn !== was.withdrawn) moved.push(`${now.withdrawn - was.withdrawn} answers withdrawn (JavaScript late; NAKed, sent again)`);
    if (now.proxied !== was.proxied) moved.push(`${now.proxied - was.proxied} answered by the driver while JavaScript handled them`);
    if (now.overruled !== was.overruled) moved.push(`${now.overruled - was.overruled} of them differently from JavaScript`);
    if (now.ambiguous !== was.ambiguous) moved.push(`${now.ambiguous - was.ambiguous} bytes with an uncertain mode bit`);
    if (now.errors !== was.errors) moved.push(`${now.errors - was.errors} line errors`);
    this.mdbSeen = now;
    if (moved.length > 0) this.log(now.overruled !== was.overruled ? 'error' : 'warn', `MDB driver: ${moved.join(', ')}`);
  }

  openMotor(index: number): PwmOutput {
    this.motors ??= new MotorMatrix(this.settings.motors, (level, text) => this.log(level, text));
    return this.motors.motor(index);
  }

  /**
   * The beam across the chute, interrupting on both edges (the firmware
   * wants both: it waits for the beam to clear before a multi-vend's next
   * item). 1 while broken, whatever the receiver's polarity.
   */
  openDropSensor(options: DigitalInputOptions): DigitalInput {
    this.dropListener = () => options.onReadable();
    if (!this.drop) {
      const { pin, activeLow } = this.settings.drop;
      const input = new Digital({
        pin,
        mode: pin >= 34 ? Digital.Input : Digital.InputPullUp,
        edge: Digital.Rising | Digital.Falling,
        onReadable: () => {
          this.onBeam?.(sensor.read() === 1, this.motors?.running ?? -1);
          this.dropListener?.();
        },
      });
      const sensor: DigitalInput = {
        read: (): 0 | 1 => (input.read() === (activeLow ? 0 : 1) ? 1 : 0),
        close: () => {},
      };
      this.drop = { input, sensor };
    }
    return this.drop.sensor;
  }

  openSelectionPanel(options: SelectionPanelOptions): SelectionPanel {
    this.panelListener = options;
    this.keypad ??= new Keypad(this.settings.keypad, {
      onSelect: (code, quantity) => this.panelListener?.onSelect(code, quantity),
      onCancel: () => this.panelListener?.onCancel(),
    });
    return { close: () => {} };
  }

  openIndicator(name: Indicator): DigitalOutput {
    let lamp = this.lamps.get(name);
    if (!lamp) {
      lamp = new Digital({ pin: this.settings.lamps[name], mode: Digital.Output });
      lamp.write(0);
      this.lamps.set(name, lamp);
    }
    const output = lamp;
    return { write: (value) => output.write(value), close: () => {} };
  }

  openFlash(path: string): FlashPartition {
    // The firmware names its partition 'journal'; the partition table's label may differ (config.journal).
    if (path !== 'journal') throw new Error(`no flash partition "${path}"`);
    const partition = Flash.open({ path: this.settings.journal });
    const writeAlign = this.settings.journalWriteAlign;
    return {
      read: (byteLength, byteOffset) => partition.read(byteLength, byteOffset),
      write: (buffer, byteOffset) => partition.write(buffer, byteOffset),
      // board.ts's `last` is inclusive; the SDK's `end` is not.
      eraseBlock: (first, last = first) => partition.eraseBlock(first, last + 1),
      status: () => {
        const s = partition.status();
        return { size: s.size, blockLength: s.blockLength, writeAlign };
      },
      close: () => partition.close(),
    };
  }

  openMqtt(options: MqttClientOptions): MqttClient {
    if (this.networkDown) return refusedMqtt(options);
    const client = openMqtt(
      { dns: { io: Resolver, servers: this.settings.dns, socket: { io: UDP } }, socket: { io: TCP } },
      options,
      (text) => this.log('warn', text),
    );
    // The bench's network switch cuts it as a lost link would: closed, and the uplink told.
    const cut = (): void => {
      client.close();
      options.onError?.();
    };
    this.mqttCuts.add(cut);
    return {
      read: (count) => client.read(count),
      write: (data, o) => client.write(data, o),
      subscribe: (topics) => client.subscribe(topics),
      close: () => {
        this.mqttCuts.delete(cut);
        client.close();
      },
    };
  }

  /**
   * A switch in the network path, in software, for the bench build's
   * `network` step: down, every MQTT connection is cut as a lost link is and
   * new ones fail (after a second, as an unreachable broker does); up, the
   * uplink reconnects on its own backoff. Wi-Fi itself stays up.
   */
  setNetwork(up: boolean): void {
    this.networkDown = !up;
    if (up) return;
    const cuts = Array.from(this.mqttCuts);
    this.mqttCuts.clear();
    for (const cut of cuts) cut();
  }

  /** No sensor fitted (or it does not answer): samples are undefined, and telemetry carries no temperature. */
  openTemperatureSensor(): TemperatureSensor {
    const none: TemperatureSensor = { sample: () => undefined, close: () => {} };
    const t = this.settings.temperature;
    if (!t) return none;
    const { data, clock, hz } = this.settings.i2c;
    let sensor: TMP102;
    try {
      sensor = new TMP102({ sensor: { io: SMBus, data, clock, hz, address: t.address } });
    } catch (e) {
      this.log('error', `temperature sensor at I2C 0x${t.address.toString(16)}: ${message(e)}`);
      return none;
    }
    return {
      sample: () => {
        try {
          return sensor.sample();
        } catch {
          return undefined; // a bus error: no reading this time
        }
      },
      close: () => sensor.close(),
    };
  }

  restart(): void {
    this.motors?.stop();
    System.restart();
  }

  log(level: LogLevel, text: string): void {
    trace(`${level}: ${text}\n`);
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What openMqtt gives while the bench's network switch is off: a connection that fails a second later. */
function refusedMqtt(options: MqttClientOptions): MqttClient {
  let timer: TimerHandle | undefined = Timer.set(() => {
    timer = undefined;
    options.onError?.();
  }, 1000);
  const down = (): never => {
    throw new Error('network down (bench switch)');
  };
  return {
    read: () => undefined,
    write: down,
    subscribe: down,
    close: () => {
      if (timer !== undefined) Timer.clear(timer);
      timer = undefined;
    },
  };
}
