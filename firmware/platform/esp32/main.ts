/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The ESP32 application entry: the manifest's `creation.main`. It is
 * preloaded like every other module, so it only exports the function the
 * Moddable runtime calls at start; nothing touches hardware before that.
 */
import './xs-fixups.js';
import config from 'mc/config';
import { start } from '../../main.js';
import { Esp32Board } from './board.js';
import { readMachineConfig } from './machine.js';
import { WifiStation } from './network.js';
import { readSettings, type BoardSettings } from './settings.js';

declare function trace(text: string): void;

/** The board and the network, from the manifest's config; undefined (and said on the console) when the settings are wrong. */
export function openBoard<B extends Esp32Board>(make: (settings: BoardSettings) => B): { settings: BoardSettings; board: B } | undefined {
  try {
    const settings = readSettings(config);
    const board = make(settings);
    // The calendar clock (command expiry) is set by SNTP whenever the station gets an address.
    if (settings.ssid) new WifiStation(settings.ssid, settings.password, (level, text) => board.log(level, text), () => board.wallClock.sync());
    return { settings, board };
  } catch (e) {
    // Without a board there is nothing to show it on but the console.
    trace(`error: board settings: ${e instanceof Error ? e.message : String(e)}\n`);
    return undefined;
  }
}

export default function main(): void {
  const opened = openBoard((settings) => new Esp32Board(settings));
  if (!opened) return;
  const { settings, board } = opened;
  try {
    start(board, readMachineConfig(settings));
  } catch (e) {
    // A machine that cannot read its configuration must not take money: say so and stay out of service.
    board.log('error', `not starting: ${e instanceof Error ? e.message : String(e)}`);
    board.display.show(['Out of service', 'Configuration error']);
    board.openIndicator('out-of-service').write(1);
  }
}
