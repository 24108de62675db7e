/**
 * The bench build's own settings (manifests/esp32-bench/manifest.json,
 * `config.bench`): the bench port, the console UART by default.
 */
import { SettingsError } from './settings.js';

export interface BenchSettings {
  port: number;
  transmit: number;
  receive: number;
  baud: number;
}

export function readBenchSettings(config: { readonly [key: string]: unknown }): BenchSettings {
  const b = config['bench'];
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new SettingsError('config.bench must be an object');
  const src = b as { readonly [key: string]: unknown };
  const int = (key: string, min: number, max: number, fallback: number): number => {
    const v = src[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new SettingsError(`config.bench.${key} must be an integer from ${min} to ${max}`);
    return v;
  };
  return { port: int('port', 0, 2, 0), transmit: int('transmit', 0, 33, 1), receive: int('receive', 0, 39, 3), baud: int('baud', 1200, 2000000, 115200) };
}
