/**
 * The MDB wire at 9600 baud, 11 bits per character. The VMC's words reach
 * every peripheral (each decides whether it is addressed); a peripheral's
 * words reach the VMC. Each character occupies the line for 1145.83 us.
 */
import type { Scheduler } from '../scheduler.js';

export const CHAR_US = 11_000_000 / 9600;

export interface BusPeripheral {
  /** A word the VMC put on the line (bit 8 is the mode bit). */
  receive(word: number): void;
}

/**
 * A peripheral played by something outside the simulator (a program on the
 * bench, hal-sim/mdb/exec.ts): it answers on its own time, so the clock
 * holds still until it has (see SimMdbBus.hold).
 */
export interface ExternalPeripheral extends BusPeripheral {
  /** A scenario event the device takes part in (`tapCard`, `insertCoin`, `insertBill`) and its numbers. */
  event(name: string, args: readonly number[]): void;
  /** Something is under way that the VMC has yet to hear of: a run "until idle" goes on. */
  readonly pending: boolean;
  /** What went wrong with it (it exited, wrote garbage, did not answer in time); it is silent since. */
  readonly failure: string | undefined;
  close(): Promise<void>;
}

export interface WireTrace {
  (direction: 'vmc' | 'periph', word: number, atUs: number): void;
}

export class SimMdbBus {
  private readonly scheduler: Scheduler;
  private readonly peripherals: BusPeripheral[] = [];
  private masterFreeAt = 0;
  private peripheralFreeAt = 0;
  /** Where words from the peripherals go (the VMC's UART). */
  toMaster: (word: number) => void = () => {};
  trace: WireTrace | undefined;
  wordsFromMaster = 0;
  wordsToMaster = 0;
  /** Answers being awaited from external peripherals: the clock must not move on before they settle. */
  private holds: Promise<void>[] = [];

  constructor(scheduler: Scheduler) {
    this.scheduler = scheduler;
  }

  attach(p: BusPeripheral): void {
    this.peripherals.push(p);
  }

  /** The VMC transmits; each word arrives one character time after the line is free. */
  masterWrite(words: readonly number[]): void {
    let t = Math.max(this.scheduler.now, this.masterFreeAt);
    for (const w of words) {
      t += CHAR_US;
      const word = w & 0x1ff;
      this.scheduler.at(t, () => {
        this.wordsFromMaster++;
        this.trace?.('vmc', word, this.scheduler.now);
        for (const p of this.peripherals) p.receive(word);
      });
    }
    this.masterFreeAt = t;
  }

  /** A peripheral answers, starting `delayUs` from now. */
  peripheralWrite(words: readonly number[], delayUs: number): void {
    let t = Math.max(this.scheduler.now + delayUs, this.peripheralFreeAt);
    for (const w of words) {
      t += CHAR_US;
      const word = w & 0x1ff;
      this.scheduler.at(t, () => {
        this.wordsToMaster++;
        this.trace?.('periph', word, this.scheduler.now);
        this.toMaster(word);
      });
    }
    this.peripheralFreeAt = t;
  }

  /**
   * An external peripheral is working out its answer to what just reached it:
   * whoever runs the clock awaits `takeHolds()` before the next event, so the
   * answer lands at the same machine time however long it took for real.
   */
  hold(p: Promise<void>): void {
    this.holds.push(p);
  }

  /** What the clock must wait for before it moves on (undefined: nothing). */
  takeHolds(): Promise<unknown> | undefined {
    if (this.holds.length === 0) return undefined;
    const all = Promise.all(this.holds);
    this.holds = [];
    return all;
  }

  get held(): boolean {
    return this.holds.length > 0;
  }

  /** True while words are still travelling. */
  busy(): boolean {
    const now = this.scheduler.now;
    return this.masterFreeAt > now || this.peripheralFreeAt > now;
  }
}
