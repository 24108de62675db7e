/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The bench build's entry (manifests/esp32-bench/manifest.json): the same
 * board and firmware as the production build, plus the bench protocol
 * (firmware/bench) on the console UART, so `npm run hil -- --target
 * serial:/dev/ttyUSB0` can drive this board (docs/bench-protocol.md).
 *
 * At boot the board runs the scenario machine a `powerCut` left (kept in
 * NVS, with its journal), or else the manifest's machine, and serves the
 * bench port.
 */
import './xs-fixups.js';
import config from 'mc/config';
import { BenchServer } from '../../bench/server.js';
import type { BenchBoard, ByteSerial, ByteSerialOptions } from '../../bench/serial.js';
import type { LogLevel } from '../../board.js';
import { encodeUtf8 } from '../../text/utf8.js';
import { BenchSerial } from './bench-serial.js';
import { readBenchSettings, type BenchSettings } from './bench-settings.js';
import { Esp32BenchTarget } from './bench-target.js';
import { Esp32Board } from './board.js';
import { readMachineConfig } from './machine.js';
import { openBoard } from './main.js';
import type { BoardSettings } from './settings.js';

/** The board with its bench port: log lines go out through the port's queue, whole, between protocol lines. */
class Esp32BenchBoard extends Esp32Board implements BenchBoard {
  private readonly bench: BenchSettings;
  private port: BenchSerial | undefined;

  constructor(settings: BoardSettings, bench: BenchSettings) {
    super(settings);
    this.bench = bench;
  }

  openBenchSerial(options: ByteSerialOptions): ByteSerial {
    this.port ??= new BenchSerial(this.bench, options);
    return this.port;
  }

  override log(level: LogLevel, text: string): void {
    // "# ..." lines are console lines to the bench runner, not answers.
    if (this.port) this.port.logLine(`# ${level}: ${text}`, encodeUtf8);
    else super.log(level, text);
  }
}

export default function main(): void {
  const bench = readBenchSettings(config);
  const opened = openBoard((settings) => new Esp32BenchBoard(settings, bench));
  if (!opened) return;
  const { settings, board } = opened;
  const machine = readMachineConfig(settings) as { [key: string]: unknown };
  const target = new Esp32BenchTarget(board, machine);
  BenchServer.open(board, target, { baud: bench.baud });
  try {
    target.run(Esp32BenchTarget.savedMachine() ?? machine);
  } catch (e) {
    board.log('error', `not starting: ${e instanceof Error ? e.message : String(e)}`);
  }
}
