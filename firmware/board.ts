/**
 * The hardware abstraction the firmware is written against.
 *
 * Shapes follow ECMA-419 (the `embedded:io/*` class pattern): a peripheral is
 * opened with an options object that carries its callbacks, `read()`/`write()`
 * move data, `close()` releases it. On the ESP32 these are thin wrappers over
 * Moddable's builtin IO; on the host, hal-sim provides them. The vend logic
 * never knows which.
 *
 * Nothing here may depend on Node or on the simulator.
 */

/** Monotonic milliseconds since boot. May carry a fraction on hosts with finer clocks. */
export interface Clock {
  now(): number;
}

/**
 * The board's idea of the calendar time, where it has one: on the ESP32 the
 * system time SNTP sets (`Date`), on the simulator whatever the host feeds it
 * (its real clock while the machine runs faster than real time; a virtual one
 * in deterministic runs). Unauthenticated: the firmware never lets it undo
 * what signed commands taught it (command/wall.ts).
 */
export interface WallClock {
  /** Unix milliseconds, or undefined while the board does not know the time (not synchronised yet). */
  now(): number | undefined;
}

export type TimerId = number;

/** One-shot timers (Moddable's `Timer.set` / `Timer.clear`). Callbacks never run re-entrantly. */
export interface Timers {
  set(callback: () => void, ms: number): TimerId;
  clear(id: TimerId): void;
}

/**
 * ECMA-419 serial with `format: "number"`, carrying 9-bit MDB words:
 * bits 0..7 are the data byte, bit 8 is the mode bit.
 */
export interface WordSerial {
  /** The next received word, or undefined when the receive buffer is empty. */
  read(): number | undefined;
  /** Queue one word for transmission. Never blocks. */
  write(word: number): void;
  close(): void;
}

export interface WordSerialOptions {
  baud?: number;
  /** Called when at least one word can be read; `count` is how many. */
  onReadable(count: number): void;
}

/** The ECMA-419 IO class of a word serial: constructing one opens the port. */
export type WordSerialIO = new (options: WordSerialOptions) => WordSerial;

/**
 * A serial port as the board describes it, for a driver to open itself
 * (the board as data, like the Moddable host provider's
 * `device.Serial.default = {io, port, ...}`): the driver spreads it into its
 * options with its callbacks, `new serial.io({ ...serial, onReadable })`.
 * Each board's `io` already knows its pins and UART, so nothing else is needed.
 * A board may put more in the description for its `io` to find in the options
 * (both boards put themselves there, so their `io` is one class made when the
 * module loads, in flash on the device, not a class made at every start in
 * RAM): a driver spreads the whole description, never picks fields from it.
 */
export interface WordSerialPort {
  readonly io: WordSerialIO;
  readonly baud?: number;
}

/** ECMA-419 digital input; `edge` callbacks arrive through `onReadable`. */
export interface DigitalInput {
  read(): 0 | 1;
  close(): void;
}

export interface DigitalInputOptions {
  edge?: 'rising' | 'falling' | 'rising-falling';
  onReadable(): void;
}

/** ECMA-419 digital output. */
export interface DigitalOutput {
  write(value: 0 | 1): void;
  close(): void;
}

/** Panel lamps the firmware drives; the board maps each to a pin. */
export type Indicator = 'exact-change' | 'out-of-service';

/** ECMA-419 PWM output: `write(duty)` with 0 <= duty < 2^resolution. */
export interface PwmOutput {
  readonly resolution: number;
  write(duty: number): void;
  close(): void;
}

/** The customer display: a few lines of plain text. */
export interface TextDisplay {
  readonly columns: number;
  readonly rows: number;
  show(lines: readonly string[]): void;
}

/**
 * The selection panel. Scanning a key matrix is the board's job; the firmware
 * sees completed selections ("B4", optionally with a quantity) and the
 * cancel / coin-return button.
 */
export interface SelectionPanelOptions {
  onSelect(code: string, quantity: number): void;
  onCancel(): void;
}

export interface SelectionPanel {
  close(): void;
}

/** `embedded:storage/flash` partition. Erased bytes read 0xFF; writes only clear bits. */
export interface FlashPartition {
  read(byteLength: number, byteOffset: number): ArrayBuffer;
  write(buffer: ArrayBuffer | ArrayBufferView, byteOffset: number): void;
  eraseBlock(first: number, last?: number): void;
  status(): { size: number; blockLength: number; writeAlign: number };
  close(): void;
}

export interface MqttMessageInfo {
  topic: string;
  QoS: 0 | 1 | 2;
  retain: boolean;
}

export interface MqttClientOptions {
  host: string;
  port?: number;
  id: string;
  user?: string;
  password?: ArrayBuffer;
  keepalive?: number;
  will?: { topic: string; message: ArrayBuffer; QoS?: 0 | 1; retain?: boolean };
  onReadable?(count: number, info: MqttMessageInfo): void;
  onWritable?(count: number): void;
  onControl?(opcode: number, payload: unknown): void;
  onClose?(): void;
  onError?(): void;
}

/** `embedded:network/mqtt/client` shape (used from the uplink issue on). */
export interface MqttClient {
  read(count: number): ArrayBuffer | undefined;
  write(data: ArrayBuffer, options: { topic: string; QoS?: 0 | 1; retain?: boolean; byteLength?: number }): number;
  subscribe(topics: readonly { topic: string; QoS?: 0 | 1 }[]): number;
  close(): void;
}

/** ECMA-419 sensor shape (`embedded:sensor/Temperature`): `sample()` in degrees Celsius. */
export interface TemperatureSensor {
  sample(): { temperature: number } | undefined;
  close(): void;
}

/**
 * The image running now, as the board knows it (docs/updates.md, "The slot").
 * On the ESP32 from the running partition's application description and its
 * OTA state; on the simulator from the booted slot's image description.
 */
export interface RunningImage {
  /** The image's version (`MAJOR.MINOR.PATCH`), from its description. */
  readonly version: string;
  /** Booted from an update and not confirmed yet: a reset before `markValid()` boots the previous image. */
  readonly probation: boolean;
  /**
   * Present after a rollback: the image that was abandoned and why (`crash`,
   * `watchdog`, `power`, `restart`, or the reason given to `rollback()`).
   * Kept until the next `open()`, so a report lost to a reset is not lost.
   */
  readonly rolledBack?: { readonly version: string; readonly reason: string };
}

/** Where an update starts writing the inactive slot (docs/updates.md, "Resume"). */
export interface FirmwareSlotOpenOptions {
  /** The whole image's size in bytes (at most `slotSize`). */
  byteLength: number;
  /** 0 for a new image; a multiple of `blockLength` to resume (the bytes before it stay as they are). Default 0. */
  offset?: number;
}

/**
 * Writing one image into the inactive slot, in order: Moddable's ESP32 `OTA`
 * object (`write`, `cancel`, `complete`), started at an offset.
 */
export interface FirmwareSlotWriter {
  /** Append bytes at the current position; each block is erased just before the first byte lands in it. Throws past `byteLength`. */
  write(buffer: ArrayBuffer | ArrayBufferView): void;
  /** Abandon the image: nothing will boot it. Harmless when already closed. */
  cancel(): void;
  /**
   * All `byteLength` bytes are written: the board checks the image (on the
   * ESP32, `esp_image_verify`; on the simulator its description) and selects
   * it for the next boot, pending verification. Throws when the image is
   * incomplete or not an image; the running image stays selected then.
   */
  complete(): void;
}

/**
 * The two application slots (docs/updates.md, "The slot"): the firmware
 * writes an update into the inactive one and the bootloader does the rest.
 * There is no read-back of the inactive slot: a resume carries the SHA-256
 * state journaled with its offset, so bytes already written are never read.
 */
export interface FirmwareSlots {
  /** Largest image the inactive slot holds: an update larger than this is refused before it starts. */
  readonly slotSize: number;
  /** The slot's erase block: resume offsets are multiples of it. */
  readonly blockLength: number;
  /** What runs now; read it again after `markValid()` (it is a snapshot). */
  readonly running: RunningImage;
  /**
   * Start writing the inactive slot. Throws while the running image is on
   * probation (ESP-IDF refuses to overwrite the only image a rollback could
   * boot), while another writer is open, or on a bad size or offset. The
   * previous image in the inactive slot is gone from here on: no rollback to it.
   */
  open(options: FirmwareSlotOpenOptions): FirmwareSlotWriter;
  /** End the running image's probation: it boots from now on, whatever resets (ESP-IDF's `esp_ota_mark_app_valid_cancel_rollback`). */
  markValid(): void;
  /**
   * Abandon the running image and boot the previous one now
   * (`esp_ota_mark_app_invalid_rollback_and_reboot`), which reads `reason` in
   * `running.rolledBack`. Throws when there is no previous image to boot.
   * On the ESP32 it does not return; on the simulator nothing the firmware
   * does after it reaches the hardware.
   */
  rollback(reason: string): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What the firmware's entry point receives: the machine's hardware. */
export interface Board {
  readonly clock: Clock;
  readonly timers: Timers;
  /** Calendar time, where the board has a source for it (the monotonic `clock` says nothing about it). */
  readonly wallClock?: WallClock;
  /** The MDB bus (9600 baud, 9-bit words) with the VMC as master; the MDB link opens it (firmware/mdb/link.ts). */
  readonly mdb: WordSerialPort;
  /** The spiral motor driving slot `index` (slots in configuration order). */
  openMotor(index: number): PwmOutput;
  /** The IR beam across the delivery chute: reads 1 while something interrupts it. */
  openDropSensor(options: DigitalInputOptions): DigitalInput;
  openSelectionPanel(options: SelectionPanelOptions): SelectionPanel;
  /** A panel lamp, driven through a digital output. */
  openIndicator(name: Indicator): DigitalOutput;
  readonly display: TextDisplay;
  /** A flash partition by name; the firmware keeps its journal in 'journal'. */
  openFlash(path: string): FlashPartition;
  openMqtt?(options: MqttClientOptions): MqttClient;
  /** The cabinet's temperature sensor, where the machine has one. */
  openTemperatureSensor?(): TemperatureSensor;
  /** The application slots, where the board can update its firmware (docs/updates.md). */
  readonly firmware?: FirmwareSlots;
  /** Restart the firmware (a system restart on the ESP32), where the board can. */
  restart?(): void;
  log(level: LogLevel, message: string): void;
}
