/**
 * The board's hardware settings: which GPIO does what. They come from the
 * manifest's `config` object (module `mc/config`, manifests/esp32/manifest.json),
 * which `key=value` arguments to mcconfig override, so one firmware source
 * fits different controller boards. Checked once at boot, every error naming
 * the key, like the machine configuration is (firmware/config.ts).
 */
import type { Indicator } from '../../board.js';

export interface MdbSettings {
  port: number;
  transmit: number;
  receive: number;
  invertTransmit: boolean;
  invertReceive: boolean;
}

/** Spiral motors in a matrix behind two 74HC595 shift registers (docs/hardware.md). */
export interface MotorSettings {
  data: number;
  clock: number;
  latch: number;
  /** The shift registers' /OE, driven by PWM: the motor's duty. */
  enable: number;
  rows: number;
  columns: number;
  hz: number;
}

export interface KeypadSettings {
  rows: number[];
  columns: number[];
  /** The key at each (row, column), row after row. */
  keys: string;
}

export interface I2cSettings {
  data: number;
  clock: number;
  hz: number;
}

export interface BoardSettings {
  /** The resource holding the machine configuration (JSON, firmware/config.ts). */
  machine: string;
  /** The journal's partition label in the partition table. */
  journal: string;
  /** Bytes per journal write unit: 4 (the simulator's), 16 with flash encryption on. */
  journalWriteAlign: number;
  mdb: MdbSettings;
  motors: MotorSettings;
  drop: { pin: number; activeLow: boolean };
  lamps: Record<Indicator, number>;
  keypad: KeypadSettings;
  i2c: I2cSettings;
  /** HD44780 character display behind a PCF8574 I2C backpack; absent: the display goes to the log. */
  display: { address: number; columns: number; rows: number } | undefined;
  /** TMP102 cabinet sensor; absent: no temperature in telemetry. */
  temperature: { address: number } | undefined;
  /** Wi-Fi; an empty SSID leaves the machine offline (it sells all the same). */
  ssid: string;
  password: string;
  /** DNS servers for the MQTT broker's and the SNTP server's names. */
  dns: string[];
  /** The SNTP server the calendar clock is set from (command expiry, audit times); empty: none. */
  sntp: string;
  /** Secrets given on the mcconfig command line, never committed: they override the machine resource. */
  mqttPassword: string | undefined;
  commandKey: string | undefined;
}

export class SettingsError extends Error {}

type Source = { readonly [key: string]: unknown };

function isObject(v: unknown): v is Source {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function section(src: Source, key: string): Source {
  const v = src[key];
  if (!isObject(v)) throw new SettingsError(`config.${key} must be an object`);
  return v;
}

function int(src: Source, key: string, path: string, min: number, max: number, fallback?: number): number {
  const v = src[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new SettingsError(`${path}.${key} must be an integer from ${min} to ${max}`);
  return v;
}

/** GPIOs a WROVER module does not give away. */
const TAKEN: { readonly [pin: number]: string } = Object.freeze({ 6: 'the SPI flash', 7: 'the SPI flash', 8: 'the SPI flash', 9: 'the SPI flash', 10: 'the SPI flash', 11: 'the SPI flash', 16: 'the PSRAM', 17: 'the PSRAM', 20: 'nothing (no such GPIO)', 24: 'nothing (no such GPIO)', 28: 'nothing (no such GPIO)', 29: 'nothing (no such GPIO)', 30: 'nothing (no such GPIO)', 31: 'nothing (no such GPIO)', 37: 'nothing (not on the module)', 38: 'nothing (not on the module)' });

/** ESP32 GPIO numbers; 34..39 are inputs only. */
function checkPin(v: unknown, name: string, output: boolean): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 39) throw new SettingsError(`${name} must be a GPIO number from 0 to 39`);
  const taken = TAKEN[v];
  if (taken !== undefined) throw new SettingsError(`${name}: GPIO ${v} belongs to ${taken} on an ESP32-WROVER module`);
  if (output && v >= 34) throw new SettingsError(`${name}: GPIO ${v} is input-only`);
  return v;
}

function pin(src: Source, key: string, path: string, output: boolean): number {
  return checkPin(src[key], `${path}.${key}`, output);
}

function pins(src: Source, key: string, path: string, output: boolean): number[] {
  const v = src[key];
  if (!Array.isArray(v) || v.length === 0 || v.length > 8) throw new SettingsError(`${path}.${key} must be a list of 1 to 8 GPIO numbers`);
  return v.map((p: unknown, i: number) => checkPin(p, `${path}.${key}[${i}]`, output));
}

function flag(src: Source, key: string, path: string): boolean {
  const v = src[key] ?? false;
  if (typeof v !== 'boolean') throw new SettingsError(`${path}.${key} must be true or false`);
  return v;
}

function str(src: Source, key: string, path: string, fallback?: string): string {
  const v = src[key] ?? fallback;
  if (typeof v !== 'string') throw new SettingsError(`${path}.${key} must be a string`);
  return v;
}

function optionalSecret(src: Source, key: string): string | undefined {
  const v = src[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new SettingsError(`config.${key} must be a string`);
  return v;
}

export function readSettings(config: Source): BoardSettings {
  const mdb = section(config, 'mdb');
  const motors = section(config, 'motors');
  const drop = section(config, 'drop');
  const lamps = section(config, 'lamps');
  const keypad = section(config, 'keypad');
  const i2c = section(config, 'i2c');
  const rowsOut = pins(keypad, 'rows', 'config.keypad', true);
  const columnsIn = pins(keypad, 'columns', 'config.keypad', false);
  const keys = str(keypad, 'keys', 'config.keypad');
  if (keys.length !== rowsOut.length * columnsIn.length) throw new SettingsError(`config.keypad.keys must have one key per row and column (${rowsOut.length * columnsIn.length})`);
  const settings: BoardSettings = {
    machine: str(config, 'machine', 'config', 'machine.json'),
    journal: str(config, 'journal', 'config', 'journal'),
    journalWriteAlign: int(config, 'journalWriteAlign', 'config', 1, 256, 4),
    mdb: {
      port: int(mdb, 'port', 'config.mdb', 1, 2, 2),
      transmit: pin(mdb, 'transmit', 'config.mdb', true),
      receive: pin(mdb, 'receive', 'config.mdb', false),
      invertTransmit: flag(mdb, 'invertTransmit', 'config.mdb'),
      invertReceive: flag(mdb, 'invertReceive', 'config.mdb'),
    },
    motors: {
      data: pin(motors, 'data', 'config.motors', true),
      clock: pin(motors, 'clock', 'config.motors', true),
      latch: pin(motors, 'latch', 'config.motors', true),
      enable: pin(motors, 'enable', 'config.motors', true),
      rows: int(motors, 'rows', 'config.motors', 1, 8),
      columns: int(motors, 'columns', 'config.motors', 1, 8),
      hz: int(motors, 'hz', 'config.motors', 100, 40000, 1000),
    },
    drop: { pin: pin(drop, 'pin', 'config.drop', false), activeLow: flag(drop, 'activeLow', 'config.drop') },
    lamps: { 'exact-change': pin(lamps, 'exact-change', 'config.lamps', true), 'out-of-service': pin(lamps, 'out-of-service', 'config.lamps', true) },
    keypad: { rows: rowsOut, columns: columnsIn, keys },
    i2c: { data: pin(i2c, 'data', 'config.i2c', true), clock: pin(i2c, 'clock', 'config.i2c', true), hz: int(i2c, 'hz', 'config.i2c', 10000, 1000000, 100000) },
    display: undefined,
    temperature: undefined,
    ssid: str(config, 'ssid', 'config', ''),
    password: str(config, 'password', 'config', ''),
    dns: [],
    sntp: str(config, 'sntp', 'config', 'pool.ntp.org'),
    mqttPassword: optionalSecret(config, 'mqttPassword'),
    commandKey: optionalSecret(config, 'commandKey'),
  };
  const display = config['display'];
  if (display !== undefined) {
    const d = section(config, 'display');
    settings.display = { address: int(d, 'address', 'config.display', 8, 119), columns: int(d, 'columns', 'config.display', 8, 40, 20), rows: int(d, 'rows', 'config.display', 1, 4, 2) };
  }
  if (config['temperature'] !== undefined) settings.temperature = { address: int(section(config, 'temperature'), 'address', 'config.temperature', 8, 119, 0x48) };
  const dns = config['dns'] ?? ['1.1.1.1'];
  if (!Array.isArray(dns) || dns.length === 0 || !dns.every((s: unknown) => typeof s === 'string')) throw new SettingsError('config.dns must be a list of server addresses');
  settings.dns = dns as string[];
  const used = new Map<number, string>();
  const claim = (p: number, what: string): void => {
    const other = used.get(p);
    if (other !== undefined) throw new SettingsError(`GPIO ${p} is given to both ${other} and ${what}`);
    used.set(p, what);
  };
  claim(settings.mdb.transmit, 'mdb.transmit');
  claim(settings.mdb.receive, 'mdb.receive');
  for (const k of ['data', 'clock', 'latch', 'enable'] as const) claim(settings.motors[k], `motors.${k}`);
  claim(settings.drop.pin, 'drop.pin');
  claim(settings.lamps['exact-change'], 'lamps.exact-change');
  claim(settings.lamps['out-of-service'], 'lamps.out-of-service');
  rowsOut.forEach((p, i) => claim(p, `keypad.rows[${i}]`));
  columnsIn.forEach((p, i) => claim(p, `keypad.columns[${i}]`));
  claim(settings.i2c.data, 'i2c.data');
  claim(settings.i2c.clock, 'i2c.clock');
  return settings;
}
