/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The spiral motors: a matrix of up to 8 rows by 8 columns, selected by two
 * chained 74HC595 shift registers (one row driver and one column driver
 * on), with the motor's duty as PWM on the registers' shared /OE pin. Three
 * GPIOs and one LEDC channel run 64 spirals; docs/hardware.md has the
 * drivers and the diodes. Slot `i` (configuration order) is at row
 * `floor(i / columns)`, column `i % columns`.
 *
 * Only one spiral turns at a time (the dispenser vends item by item); a
 * second one asked to start stops the first, and says so.
 */
import Digital from 'embedded:io/digital';
import PWM from 'embedded:io/pwm';
import type { LogLevel, PwmOutput } from '../../board.js';
import type { MotorSettings } from './settings.js';

/** The duty resolution the firmware sees (the simulator's too). */
const RESOLUTION = 10;

export class MotorMatrix {
  private readonly settings: MotorSettings;
  private readonly log: (level: LogLevel, message: string) => void;
  private readonly data: Digital;
  private readonly clock: Digital;
  private readonly latch: Digital;
  private readonly enable: PWM;
  private readonly max: number;
  private active = -1;

  constructor(settings: MotorSettings, log: (level: LogLevel, message: string) => void) {
    this.settings = settings;
    this.log = log;
    // /OE first, and high (outputs off): the registers power up holding anything.
    this.enable = new PWM({ pin: settings.enable, hz: settings.hz, resolution: RESOLUTION });
    this.max = (1 << RESOLUTION) - 1;
    this.enable.write(this.max);
    this.data = new Digital({ pin: settings.data, mode: Digital.Output });
    this.clock = new Digital({ pin: settings.clock, mode: Digital.Output });
    this.latch = new Digital({ pin: settings.latch, mode: Digital.Output });
    this.shift(0);
  }

  /** The motor turning now, or -1. */
  get running(): number {
    return this.active;
  }

  get positions(): number {
    return this.settings.rows * this.settings.columns;
  }

  motor(index: number): PwmOutput {
    if (!Number.isInteger(index) || index < 0 || index >= this.positions) {
      throw new RangeError(`slot ${index} has no motor: the matrix has ${this.settings.rows} x ${this.settings.columns} positions (config.motors)`);
    }
    return {
      resolution: RESOLUTION,
      write: (duty: number) => this.drive(index, duty),
      close: () => {
        if (this.active === index) this.drive(index, 0);
      },
    };
  }

  /** Everything off (at a restart, or when the firmware stops). */
  stop(): void {
    this.enable.write(this.max);
    this.shift(0);
    this.active = -1;
  }

  private drive(index: number, duty: number): void {
    if (duty <= 0) {
      if (this.active === index) this.stop();
      return;
    }
    if (this.active !== index) {
      if (this.active >= 0) this.log('error', `motor ${index} asked to start while motor ${this.active} runs: stopped ${this.active}`);
      // Off while the selection changes, so no other spiral twitches.
      this.enable.write(this.max);
      const row = Math.floor(index / this.settings.columns);
      const column = index % this.settings.columns;
      this.shift((1 << (8 + row)) | (1 << column));
      this.active = index;
    }
    // /OE is active low: the time it is low is the motor's duty.
    this.enable.write(this.max - Math.min(Math.round(duty), this.max));
  }

  /** 16 bits, most significant first: the row register is the second in the chain. */
  private shift(pattern: number): void {
    for (let bit = 15; bit >= 0; bit--) {
      this.data.write((pattern >> bit) & 1 ? 1 : 0);
      this.clock.write(1);
      this.clock.write(0);
    }
    this.latch.write(1);
    this.latch.write(0);
  }
}
