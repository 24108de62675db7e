/**
 * Firmware entry point: give it the board and the machine configuration.
 * The same code runs on the ESP32 (Moddable) and, on the host, against
 * hal-sim's board, in Node or inside the XS engine.
 *
 * wiring.ts builds the machine; here it is connected to the fleet (the
 * uplink, when the configuration has one) and handed back as a Firmware.
 */
import type { Board } from './board.js';
import { parseConfig, type MachineConfig } from './config.js';
import { Uplink } from './uplink/uplink.js';
import type { FirmwareStatus } from './vend/report.js';
import { FIRMWARE_VERSION } from './version.js';
import { wire, type MachineHooks } from './wiring.js';

// The version comes with the image (version.ts, stamped into each image built).
export { FIRMWARE_VERSION };

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
  // The machine's news goes to the uplink, built once the machine is (it reads the journal).
  let uplink: Uplink | undefined;
  const hooks: MachineHooks = parsed.uplink
    ? {
        firmware: FIRMWARE_VERSION,
        onReport: () => uplink?.reportNow(),
        onHealthChanged: () => uplink?.stateChanged(),
        onAudit: (read, file) => {
          if (!uplink?.sendAudit(read, file)) board.log('warn', `audit read ${read}: offline, not sent`);
        },
      }
    : { firmware: FIRMWARE_VERSION };
  const machine = wire(board, parsed, hooks);
  if (parsed.uplink) {
    const up = new Uplink(board, parsed.uplink, {
      machineId: parsed.machineId,
      firmware: FIRMWARE_VERSION,
      journal: machine.journal,
      codes: machine.inventory.codes,
      telemetry: () => {
        const update = machine.updater.status();
        return update ? { fw: FIRMWARE_VERSION, ...machine.reports.telemetry(), update } : { fw: FIRMWARE_VERSION, ...machine.reports.telemetry() };
      },
      updateChunk: (payload) => machine.updater.chunk(payload),
      online: () => machine.updater.linkUp(),
      command: (payload) => machine.remote.commander.receive(payload),
      telemetryIntervalMs: () => machine.remote.telemetryIntervalMs(),
    });
    // New events go out from a timer, never from inside the decision that wrote them.
    let queued = false;
    machine.journal.onEvent = () => {
      if (queued) return;
      queued = true;
      board.timers.set(() => {
        queued = false;
        up.eventRecorded();
      }, 0);
    };
    const updater = machine.updater;
    updater.request = (image, offset, length) => up.requestUpdate(image, offset, length);
    updater.connected = () => up.status.state === 'online';
    updater.synced = () => up.synced;
    up.start();
    uplink = up;
  }
  // After the books are recovered and the uplink is on its way: resume a download, start a probation, report a rollback.
  machine.updater.boot();
  return {
    config: parsed,
    status: () => {
      const st = machine.reports.status();
      st.firmware = FIRMWARE_VERSION;
      if (uplink) st.uplink = { ...uplink.status };
      const update = machine.updater.status();
      if (update) st.update = update;
      return st;
    },
    acknowledge: (seq) => machine.controller.acknowledge(seq),
    stop: () => {
      uplink?.stop();
      machine.bus.stop();
    },
  };
}

export type { Board } from './board.js';
export type { FirmwareStatus } from './vend/report.js';
export type { MachineConfig } from './config.js';
