/**
 * Firmware entry point: give it the board and the machine configuration.
 * The same code runs on the ESP32 (Moddable) and, on the host, against
 * hal-sim's board, in Node or inside the XS engine.
 */
import type { Board } from './board.js';
import { parseConfig, type MachineConfig } from './config.js';
import { Uplink } from './uplink/uplink.js';
import { Controller } from './vend/controller.js';
import type { FirmwareStatus } from './vend/report.js';

export const FIRMWARE_VERSION = '0.1.0';

export interface Firmware {
  readonly config: MachineConfig;
  /** A snapshot of the machine's state (for telemetry, the bench and tests). */
  status(): FirmwareStatus;
  /** The gateway committed every journal event up to `seq`. */
  acknowledge(seq: number): void;
  stop(): void;
}

export function start(board: Board, config: unknown): Firmware {
  const parsed = parseConfig(config);
  board.log('info', `vendfleet ${FIRMWARE_VERSION} starting: ${parsed.slots.length} slots, ${parsed.currency}, change policy ${parsed.changePolicy}`);
  let uplink: Uplink | undefined;
  const controller = new Controller(board, parsed, {
    firmware: FIRMWARE_VERSION,
    ...(parsed.uplink
      ? {
          onReport: () => uplink?.reportNow(),
          onHealthChanged: () => uplink?.stateChanged(),
          onAudit: (read: number, file: Uint8Array) => {
            if (!uplink?.sendAudit(read, file)) board.log('warn', `audit read ${read}: offline, not sent`);
          },
        }
      : {}),
  });
  if (parsed.uplink) {
    const up = new Uplink(board, parsed.uplink, {
      machineId: parsed.machineId,
      firmware: FIRMWARE_VERSION,
      journal: controller.journal,
      codes: controller.inventory.codes,
      telemetry: () => ({ fw: FIRMWARE_VERSION, ...controller.telemetry() }),
      command: (payload) => controller.remote.commander.receive(payload),
      telemetryIntervalMs: () => controller.remote.telemetryIntervalMs(),
    });
    // New events go out from a timer, never from inside the decision that wrote them.
    let queued = false;
    controller.journal.onEvent = () => {
      if (queued) return;
      queued = true;
      board.timers.set(() => {
        queued = false;
        up.eventRecorded();
      }, 0);
    };
    up.start();
    uplink = up;
  }
  return {
    config: parsed,
    status: () => {
      const st = controller.status();
      if (uplink) st.uplink = { ...uplink.status };
      return st;
    },
    acknowledge: (seq) => controller.acknowledge(seq),
    stop: () => {
      uplink?.stop();
      controller.stop();
    },
  };
}

export type { Board } from './board.js';
export type { FirmwareStatus } from './vend/report.js';
export type { MachineConfig } from './config.js';
