/**
 * Spiral motors and the IR drop sensor across the chute. A running spiral
 * drops its front product after a short, seeded delay, breaking the beam for
 * a few tens of milliseconds; an empty or jammed spiral turns and drops
 * nothing. Stock here is physical: it is what the spiral really holds.
 */
import type { Random, Scheduler, EventId } from './scheduler.js';

export class SimDropSensor {
  level: 0 | 1 = 0;
  onChange: (level: 0 | 1) => void = () => {};
  /** Something blocks the beam permanently (dirt, a stuck product). */
  blocked = false;

  set(level: 0 | 1): void {
    const effective: 0 | 1 = this.blocked ? 1 : level;
    if (effective === this.level) return;
    this.level = effective;
    this.onChange(effective);
  }

  block(on: boolean): void {
    this.blocked = on;
    this.set(on ? 1 : 0);
  }
}

export interface SlotStock {
  code: string;
  qty: number;
}

export class SimMotor {
  readonly index: number;
  readonly code: string;
  stock: number;
  duty = 0;
  running = false;
  /** Jams armed for the next dispenses of this slot. */
  jams = 0;
  runs = 0;
  private drop: EventId | undefined;
  private readonly scheduler: Scheduler;
  private readonly random: Random;
  private readonly sensor: SimDropSensor;
  private readonly delivered: string[];

  constructor(index: number, slot: SlotStock, scheduler: Scheduler, random: Random, sensor: SimDropSensor, delivered: string[]) {
    this.index = index;
    this.code = slot.code;
    this.stock = slot.qty;
    this.scheduler = scheduler;
    this.random = random;
    this.sensor = sensor;
    this.delivered = delivered;
  }

  setDuty(duty: number): void {
    this.duty = duty;
    const on = duty > 0;
    if (on === this.running) return;
    this.running = on;
    if (!on) {
      // Stopped before the product fell: it stays in the spiral.
      this.scheduler.cancel(this.drop);
      this.drop = undefined;
      return;
    }
    this.runs++;
    if (this.jams > 0) {
      this.jams--;
      return;
    }
    if (this.stock === 0) return;
    this.drop = this.scheduler.after(this.random.int(700, 1800) * 1000, () => {
      this.drop = undefined;
      this.stock--;
      this.delivered.push(this.code);
      this.sensor.set(1);
      this.scheduler.after(this.random.int(15, 40) * 1000, () => this.sensor.set(0));
    });
  }
}

export class SimDisplay {
  lines: string[] = [];
  readonly history: { atMs: number; lines: string[] }[] = [];
  onShow: ((lines: string[]) => void) | undefined;

  show(lines: string[], atMs: number): void {
    this.lines = lines.slice();
    if (this.history.length >= 1000) this.history.shift();
    this.history.push({ atMs, lines: this.lines });
    this.onShow?.(this.lines);
  }

  text(): string {
    return this.lines.join('\n');
  }
}
