/**
 * Spiral dispensing: run the slot's motor until the IR drop sensor sees the
 * product fall, at most `dropTimeoutMs` (5 s). No fall in time is a jam.
 * A beam that is broken when a vend starts (the previous product of a
 * multi-vend still falling) must clear first; one that stays broken cannot
 * confirm anything, so the vend is refused as a sensor fault rather than risked.
 */
import type { Board, DigitalInput, PwmOutput, TimerId } from '../board.js';

export const DISPENSE_OK = 0;
export const DISPENSE_JAM = 1;
export const DISPENSE_SENSOR_FAULT = 2;
export type DispenseResult = 0 | 1 | 2;

/** How long a broken beam may take to clear before a vend starts. */
const BEAM_CLEAR_MS = 1000;

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
  private running = false;
  private timer: TimerId | undefined;
  private done: ((result: DispenseResult) => void) | undefined;
  /** Beam interruptions seen while no vend was running (a hand in the chute, a late drop). */
  strayDrops = 0;

  constructor(board: Board, options: DispenserOptions) {
    this.board = board;
    this.options = options;
    this.sensor = board.openDropSensor({ edge: 'rising-falling', onReadable: () => this.beam() });
  }

  get busy(): boolean {
    return this.active >= 0;
  }

  vend(slot: number, done: (result: DispenseResult) => void): void {
    if (this.active >= 0) throw new Error('dispenser busy');
    this.active = slot;
    this.done = done;
    if (this.sensor.read() === 1) {
      this.timer = this.board.timers.set(() => {
        this.timer = undefined;
        this.board.log('error', `dispense slot ${slot}: drop sensor still blocked after ${BEAM_CLEAR_MS} ms`);
        this.finish(DISPENSE_SENSOR_FAULT);
      }, BEAM_CLEAR_MS);
      return;
    }
    this.startMotor();
  }

  private startMotor(): void {
    const motor = this.motor(this.active);
    this.running = true;
    motor.write(Math.round((((1 << motor.resolution) - 1) * this.options.motorPercent) / 100));
    if (this.timer !== undefined) this.board.timers.clear(this.timer);
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
    const broken = this.sensor.read() === 1;
    if (this.active < 0) {
      if (broken) this.strayDrops++;
      return;
    }
    if (!this.running) {
      // Waiting for the beam to clear before starting the spiral.
      if (!broken) this.startMotor();
      return;
    }
    if (broken) this.finish(DISPENSE_OK);
  }

  private finish(result: DispenseResult): void {
    const slot = this.active;
    if (this.running) this.motors[slot]?.write(0);
    this.running = false;
    if (this.timer !== undefined) this.board.timers.clear(this.timer);
    this.timer = undefined;
    this.active = -1;
    const done = this.done;
    this.done = undefined;
    done?.(result);
  }
}
