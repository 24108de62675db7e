/**
 * The HAL bridge between the simulated hardware (host) and the firmware
 * (guest). The host owns virtual time and all peripherals; each message
 * brings the guest the current time and what happened on its pins since
 * the last one, and the guest answers with what it did to its outputs and
 * when it next needs to run. The same messages travel as objects (firmware
 * in Node) or as JSON through the XS engine's command channel.
 */
import type { FirmwareStatus } from '../../firmware/vend/report.js';
import type { FlashFaults } from './flash-image.js';

export type GuestEvent =
  /** 9-bit words received on the MDB UART. */
  | ['rx', number[]]
  /** The drop sensor's new level. */
  | ['drop', 0 | 1]
  | ['select', string, number]
  | ['cancel']
  /** The gateway acknowledged journal events up to this sequence number. */
  | ['ack', number]
  /** The MQTT connection came up, a message arrived on a subscribed topic, the connection is gone. */
  | ['mq', 'up']
  | ['mq', 'msg', string, string]
  | ['mq', 'down']
  /** The cabinet temperature now, °C. */
  | ['temp', number];

export interface HostMessage {
  /** Board clock, ms. */
  t: number;
  /** The board's wall clock at `t`, Unix ms (absent: the board does not know the time). */
  w?: number;
  /** Start the firmware with this machine configuration. */
  boot?: unknown;
  /** With `boot`: the flash partition as it is (geometry, runs of non-erased bytes in hex, and its faults and wear: the mirror fails as it does). */
  flash?: { size: number; blockLength: number; writeAlign: number; runs: [number, string][]; faults?: FlashFaults; erases?: number[] };
  ev?: GuestEvent[];
  /** Ask for a status snapshot. */
  status?: boolean;
  /** With `boot`: the application slots as the bootloader left them (hal-sim/firmware-slots.ts). */
  slots?: SlotsInfo;
}

/** What the board's `firmware` (firmware/board.ts FirmwareSlots) knows at boot; the slots' bytes stay on the host. */
export interface SlotsInfo {
  slotSize: number;
  blockLength: number;
  running: { version: string; probation: boolean; rolledBack?: { version: string; reason: string } };
  /** A valid image in the other slot that `rollback()` would boot. */
  canRollback: boolean;
  /** The inactive slot's first bytes (hex, up to the description's length), so `complete()` after a resume can read its description. */
  head: string;
}

export type GuestOp =
  /** Words written to the MDB UART, in order. */
  | ['tx', number[]]
  /** A motor's PWM duty (slot index, duty). */
  | ['pwm', number, number]
  | ['show', string[]]
  /** A panel lamp (digital output) changed. */
  | ['lamp', string, 0 | 1]
  /** MQTT: open a connection, publish (topic, UTF-8 text, QoS, retain), subscribe, close. */
  | ['mq', 'open', MqttOpenOp]
  | ['mq', 'pub', string, string, 0 | 1, boolean]
  | ['mq', 'sub', string[]]
  | ['mq', 'close']
  /** Flash write (offset, bytes in hex) and erase (first, last block), in program order. */
  | ['fw', number, string]
  | ['fe', number, number]
  | ['log', string, string]
  /** The firmware asked the board to restart it (a reboot command). */
  | ['restart']
  /**
   * The application slots, in program order with everything else: open the
   * inactive slot (byteLength, offset), append bytes (hex), cancel, complete;
   * mark the running image valid; roll back (reason; nothing after it happens).
   */
  | ['slot', 'open', number, number]
  | ['slot', 'write', string]
  | ['slot', 'cancel']
  | ['slot', 'complete']
  | ['slot', 'valid']
  | ['slot', 'rollback', string];

export interface GuestReply {
  ops: GuestOp[];
  /** Board clock time of the guest's earliest timer, or -1. */
  wake: number;
  status?: FirmwareStatus;
  /** An exception escaped the firmware (a bug: the host reports it). */
  error?: string;
}

export interface MqttOpenOp {
  host: string;
  port: number;
  id: string;
  keepalive: number;
  user?: string;
  password?: string;
  will?: { topic: string; message: string; qos: 0 | 1; retain: boolean };
}

/** PWM resolution of the bridged motor outputs. */
export const PWM_RESOLUTION = 10;
