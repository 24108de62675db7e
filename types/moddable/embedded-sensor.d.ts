/** ECMA-419 sensor classes (the SDK's modules/drivers/sensors). */

declare module 'embedded:sensor/Temperature/TMP102' {
  import type SMBus from 'embedded:io/smbus';
  export interface TMP102Options {
    sensor: { io: typeof SMBus; data: number; clock: number; hz?: number; address?: number };
  }
  export default class TMP102 {
    constructor(options: TMP102Options);
    /** Degrees Celsius; undefined while the sensor is shut down. */
    sample(): { temperature: number } | undefined;
    close(): void;
  }
}
