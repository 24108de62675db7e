/**
 * Machine configuration: what is in the slots and how the machine behaves.
 * Arrives from provisioning (and later from remote commands), so it is
 * validated field by field with errors that name the field.
 */

export type ChangePolicy = 'refuse' | 'overpay';

export interface SlotConfig {
  code: string;
  product: string;
  /** Minor units. */
  price: number;
  qty: number;
  capacity: number;
  category: string;
}

export interface MachineConfig {
  machineId: string;
  /** ISO 4217 alphabetic code. */
  currency: string;
  /** Minor-unit digits of the currency (2 for USD/EUR). */
  decimals: number;
  slots: SlotConfig[];
  changePolicy: ChangePolicy;
  /** Customer inactivity before credit is returned. */
  sessionTimeoutMs: number;
  /** Time the drop sensor has to see the product fall. */
  dropTimeoutMs: number;
  /** Most credit the machine accepts (also bounds change-making buffers). */
  maxCredit: number;
  maxQuantity: number;
  pollIntervalMs: number;
  motorPercent: number;
  /** How long a transient message ("Sold out") stays on the display. */
  messageMs: number;
  /**
   * An MDB cashless reader (device #1, address 0x10) is fitted. Off by
   * default: a machine without one neither polls the address nor reports
   * `cashless-offline`.
   */
  cashless: boolean;
  /**
   * An MDB coin changer (address 0x08) and a bill validator (0x30) are
   * fitted. On by default; a machine without one (coin only, card only)
   * says so: it neither polls the address nor reports it offline, and an
   * update's probation does not wait for it.
   */
  changer: boolean;
  billValidator: boolean;
  /** MQTT to the fleet; absent: the machine works alone. */
  uplink?: UplinkSettings;
  /** The key remote commands are signed with (HMAC-SHA-256), from provisioning; absent: no remote commands. */
  commandKey?: { kid: number; key: Uint8Array };
  /** How firmware updates behave (docs/updates.md). */
  update: UpdateSettings;
}

/** Firmware updates (docs/updates.md); every field has a default. */
export interface UpdateSettings {
  /** The pace of a download, bytes a second (default 4096: half a 64 kbit/s link), so sales telemetry keeps its share. */
  bytesPerSecond: number;
  /** Bytes a request asks for (default 1024), and requests in flight at most (default 4). */
  chunkBytes: number;
  inFlight: number;
  /** A request unanswered this long is asked again (default 10 s). */
  requestTimeoutMs: number;
  /** A new image must see its devices, reach the broker and sync within this long (default 2 minutes), or the previous one boots. */
  probationMs: number;
  /** Service hours, minutes after midnight machine-local (`serviceHours` "HH:MM-HH:MM"): no switch then unless forced. */
  serviceFrom?: number;
  serviceTo?: number;
  /** Machine-local time minus UTC, minutes (default 0). */
  utcOffsetMinutes: number;
}

export interface BrokerAddress {
  host: string;
  port: number;
}

/** Broker addresses a configuration may list (a cluster's nodes). */
export const MAX_BROKERS = 8;

export interface UplinkSettings {
  /** The MQTT broker (the first of `brokers` when there is a list). */
  host: string;
  port: number;
  /**
   * A cluster's nodes, tried in turn: a connection that fails or drops moves on to the next
   * (docs/cluster.md). Absent: host and port only.
   */
  brokers?: BrokerAddress[];
  user?: string;
  password?: string;
  /** Telemetry at least this often (default 5 minutes), and soon after anything changes. */
  telemetryIntervalMs: number;
  keepaliveS: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Record_ = { [key: string]: unknown };

function isRecord(v: unknown): v is Record_ {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function integer(obj: Record_, key: string, path: string, min: number, max: number, fallback?: number): number {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(`${path}.${key} must be an integer`);
  if (v < min || v > max) throw new ConfigError(`${path}.${key} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function text(obj: Record_, key: string, path: string, fallback?: string, pattern?: RegExp): string {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw new ConfigError(`${path}.${key} must be a non-empty string of at most 64 characters`);
  if (pattern && !pattern.test(v)) throw new ConfigError(`${path}.${key} "${v}" is not valid`);
  return v;
}

function flag(obj: Record_, key: string, path: string, fallback: boolean): boolean {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(`${path}.${key} must be true or false`);
  return v;
}

export const SLOT_CODE = /^[A-Z0-9]{1,4}$/;

export function parseConfig(input: unknown): MachineConfig {
  if (!isRecord(input)) throw new ConfigError('machine configuration must be an object');
  const path = 'machine';
  const slotsIn = input['slots'];
  if (!Array.isArray(slotsIn) || slotsIn.length === 0) throw new ConfigError(`${path}.slots must be a non-empty array`);
  if (slotsIn.length > 100) throw new ConfigError(`${path}.slots has ${slotsIn.length} slots; at most 100`);
  const seen = new Set<string>();
  const slots: SlotConfig[] = slotsIn.map((s: unknown, i: number) => {
    const sp = `${path}.slots[${i}]`;
    if (!isRecord(s)) throw new ConfigError(`${sp} must be an object`);
    const code = text(s, 'code', sp, undefined, SLOT_CODE);
    if (seen.has(code)) throw new ConfigError(`${sp}.code "${code}" is used twice`);
    seen.add(code);
    const qty = integer(s, 'qty', sp, 0, 999, 0);
    const capacity = integer(s, 'capacity', sp, 1, 999, Math.max(qty, 10));
    if (qty > capacity) throw new ConfigError(`${sp}.qty ${qty} exceeds capacity ${capacity}`);
    return {
      code,
      product: text(s, 'product', sp),
      price: integer(s, 'price', sp, 1, 1000000),
      qty,
      capacity,
      category: text(s, 'category', sp, 'General'),
    };
  });
  const policy = input['changePolicy'] ?? 'refuse';
  if (policy !== 'refuse' && policy !== 'overpay') throw new ConfigError(`${path}.changePolicy must be "refuse" or "overpay"`);
  let highest = 0;
  for (const s of slots) if (s.price > highest) highest = s.price;
  const uplinkIn = input['uplink'];
  let uplink: UplinkSettings | undefined;
  if (uplinkIn !== undefined) {
    const up = `${path}.uplink`;
    if (!isRecord(uplinkIn)) throw new ConfigError(`${up} must be an object`);
    const listIn = uplinkIn['brokers'];
    let brokers: BrokerAddress[] | undefined;
    if (listIn !== undefined) {
      if (!Array.isArray(listIn) || listIn.length === 0 || listIn.length > MAX_BROKERS) throw new ConfigError(`${up}.brokers must be a list of 1 to ${MAX_BROKERS} broker addresses`);
      brokers = [];
      for (let i = 0; i < listIn.length; i++) {
        const b: unknown = listIn[i];
        const at = `${up}.brokers[${i}]`;
        if (!isRecord(b)) throw new ConfigError(`${at} must be an object`);
        brokers.push({ host: text(b, 'host', at), port: integer(b, 'port', at, 1, 65535, 1883) });
      }
    }
    const first = brokers ? brokers[0] : undefined;
    uplink = {
      host: first && uplinkIn['host'] === undefined ? first.host : text(uplinkIn, 'host', up),
      port: first && uplinkIn['host'] === undefined ? first.port : integer(uplinkIn, 'port', up, 1, 65535, 1883),
      telemetryIntervalMs: integer(uplinkIn, 'telemetryIntervalMs', up, 10000, 86400000, 300000),
      keepaliveS: integer(uplinkIn, 'keepaliveS', up, 10, 3600, 60),
    };
    if (brokers) uplink.brokers = uplinkIn['host'] === undefined ? brokers : [{ host: uplink.host, port: uplink.port }, ...brokers];
    if (uplinkIn['user'] !== undefined) uplink.user = text(uplinkIn, 'user', up);
    if (uplinkIn['password'] !== undefined) uplink.password = text(uplinkIn, 'password', up);
  }
  const config: MachineConfig = {
    // The fleet's machine-id rule (gateway/machine-id.ts): a topic level and an AMQP routing-key word.
    machineId: text(input, 'machineId', path, 'vm-0001', /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
    currency: text(input, 'currency', path, 'USD', /^[A-Z]{3}$/),
    decimals: integer(input, 'decimals', path, 0, 3, 2),
    slots,
    changePolicy: policy,
    sessionTimeoutMs: integer(input, 'sessionTimeoutMs', path, 5000, 600000, 30000),
    dropTimeoutMs: integer(input, 'dropTimeoutMs', path, 1000, 30000, 5000),
    maxCredit: integer(input, 'maxCredit', path, 1, 30000, Math.min(30000, Math.max(5000, highest * 2))),
    maxQuantity: integer(input, 'maxQuantity', path, 1, 9, 5),
    pollIntervalMs: integer(input, 'pollIntervalMs', path, 25, 200, 100),
    motorPercent: integer(input, 'motorPercent', path, 10, 100, 80),
    messageMs: integer(input, 'messageMs', path, 500, 30000, 3000),
    cashless: flag(input, 'cashless', path, false),
    changer: flag(input, 'changer', path, true),
    billValidator: flag(input, 'billValidator', path, true),
    update: UPDATE_DEFAULTS,
  };
  // "gateway" is the brokers' login for the gateways (gateway/machine-id.ts).
  config.update = parseUpdate(input['update'], `${path}.update`);
  if (config.machineId === 'gateway') throw new ConfigError(`${path}.machineId "gateway" is reserved for the gateways`);
  if (uplink) config.uplink = uplink;
  const key = input['commandKey'];
  if (key !== undefined) {
    if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) throw new ConfigError(`${path}.commandKey must be 64 lowercase hex digits (32 bytes)`);
    const bytes = new Uint8Array(32);
    for (let i = 0; i < 32; i++) bytes[i] = parseInt(key.slice(2 * i, 2 * i + 2), 16);
    config.commandKey = { kid: integer(input, 'commandKeyId', path, 1, 255, 1), key: bytes };
  }
  return config;
}

const UPDATE_DEFAULTS: UpdateSettings = { bytesPerSecond: 4096, chunkBytes: 1024, inFlight: 4, requestTimeoutMs: 10000, probationMs: 120000, utcOffsetMinutes: 0 };

function parseUpdate(input: unknown, path: string): UpdateSettings {
  if (input === undefined) return { ...UPDATE_DEFAULTS };
  if (!isRecord(input)) throw new ConfigError(`${path} must be an object`);
  const s: UpdateSettings = {
    bytesPerSecond: integer(input, 'bytesPerSecond', path, 256, 1048576, UPDATE_DEFAULTS.bytesPerSecond),
    chunkBytes: integer(input, 'chunkBytes', path, 256, 4096, UPDATE_DEFAULTS.chunkBytes),
    inFlight: integer(input, 'inFlight', path, 1, 16, UPDATE_DEFAULTS.inFlight),
    requestTimeoutMs: integer(input, 'requestTimeoutMs', path, 1000, 600000, UPDATE_DEFAULTS.requestTimeoutMs),
    probationMs: integer(input, 'probationMs', path, 10000, 3600000, UPDATE_DEFAULTS.probationMs),
    utcOffsetMinutes: integer(input, 'utcOffsetMinutes', path, -840, 840, 0),
  };
  const hours = input['serviceHours'];
  if (hours !== undefined) {
    const m = typeof hours === 'string' ? /^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(hours) : null;
    if (!m) throw new ConfigError(`${path}.serviceHours must be "HH:MM-HH:MM" (24-hour, machine-local)`);
    s.serviceFrom = Number(m[1]) * 60 + Number(m[2]);
    s.serviceTo = Number(m[3]) * 60 + Number(m[4]);
    if (s.serviceFrom === s.serviceTo) throw new ConfigError(`${path}.serviceHours must not start and end at the same minute`);
  }
  return s;
}
