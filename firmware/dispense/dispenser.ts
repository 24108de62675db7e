/**
 * Spiral dispensing: run the slot's motor until the IR drop sensor sees the
 * product fall, at most `dropTimeoutMs` (5 s). No fall in time is a jam.
 * A beam already broken before the motor starts cannot confirm anything, so
 * the vend is refused as a sensor fault rather than risked.
 */
import type { Board, DigitalInput, PwmOutput, TimerId } from '../board.js';

export const DISPENSE_OK = 0;
export const DISPENSE_JAM = 1;
export const DISPENSE_SENSOR_FAULT = 2;
export type DispenseResult = 0 | 1 | 2;

export interface DispenserOptions {
  dropTimeoutMs: number;
  /** Motor drive as a fraction of full scale, in percent. */
  motorPercent: number;
}

export class Dispenser {
  private readonly board: Board;
  private readonly options: DispenserOptions;
  private readonly motors: (PwmOutput | undefined)[] = [];
  private readonly sensor: DigitalInput;
  private active = -1;
  private timer: TimerId | undefined;
  private done: ((result: DispenseResult) => void) | undefined;
  /** Beam interruptions seen while no vend was running (a hand in the chute, a late drop). */
  strayDrops = 0;

  constructor(board: Board, options: DispenserOptions) {
    this.board = board;
    this.options = options;
    this.sensor = board.openDropSensor({ edge: 'rising', onReadable: () => this.beam() });
  }

  get busy(): boolean {
    return this.active >= 0;
  }

  vend(slot: number, done: (result: DispenseResult) => void): void {
    if (this.active >= 0) throw new Error('dispenser busy');
    if (this.sensor.read() === 1) {
      this.board.log('error', `dispense slot ${slot}: drop sensor blocked before start`);
      done(DISPENSE_SENSOR_FAULT);
      return;
    }
    const motor = this.motor(slot);
    this.active = slot;
    this.done = done;
    motor.write(Math.round((((1 << motor.resolution) - 1) * this.options.motorPercent) / 100));
    this.timer = this.board.timers.set(() => {
      this.timer = undefined;
      this.finish(DISPENSE_JAM);
    }, this.options.dropTimeoutMs);
  }

  private motor(slot: number): PwmOutput {
    let m = this.motors[slot];
    if (!m) {
      m = this.board.openMotor(slot);
      this.motors[slot] = m;
    }
    return m;
  }

  private beam(): void {
    if (this.sensor.read() !== 1) return;
    if (this.active < 0) {
      this.strayDrops++;
      return;
    }
    this.finish(DISPENSE_OK);
  }

  private finish(result: DispenseResult): void {
    const slot = this.active;
    this.motors[slot]?.write(0);
    if (this.timer !== undefined) this.board.timers.clear(this.timer);
    this.timer = undefined;
    this.active = -1;
    const done = this.done;
    this.done = undefined;
    done?.(result);
  }
}
