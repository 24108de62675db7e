/**
 * Firmware drivers wired straight to hal-sim's peripherals on one virtual
 * clock, with no bridge in between: for unit tests of the MDB link and the
 * device drivers against real peripheral-side protocol code. Portable, so
 * the same tests run under XS.
 */
import type { Clock, Timers, WordSerial, WordSerialIO, WordSerialOptions, WordSerialPort } from '../../firmware/board.js';
import { SimMdbBus } from '../../hal-sim/mdb/bus.js';
import { Scheduler, type EventId } from '../../hal-sim/scheduler.js';

export class Wired {
  readonly scheduler = new Scheduler();
  readonly bus = new SimMdbBus(this.scheduler);
  readonly clock: Clock = { now: () => this.scheduler.nowMs };
  readonly timers: Timers;
  readonly wire: { dir: 'vmc' | 'periph'; word: number }[] = [];
  private rx: number[] = [];
  private onReadable: (() => void) | undefined;
  private readonly ids = new Map<number, EventId>();
  private nextId = 1;

  constructor() {
    this.timers = {
      set: (fn, ms) => {
        const id = this.nextId++;
        this.ids.set(id, this.scheduler.after(Math.ceil(ms * 1000), () => {
          this.ids.delete(id);
          fn();
        }));
        return id;
      },
      clear: (id) => {
        this.scheduler.cancel(this.ids.get(id));
        this.ids.delete(id);
      },
    };
    this.bus.trace = (dir, word) => this.wire.push({ dir, word });
    this.bus.toMaster = (word) => {
      this.rx.push(word);
      // Hand words over after one idle character time, like the UART's RX timeout.
      this.scheduler.after(1146, () => {
        if (this.rx.length > 0) this.onReadable?.();
      });
    };
  }

  /** The VMC's MDB port as a board describes it (`Board.mdb`): the link under test opens it. */
  readonly serial: WordSerialPort = Object.freeze({ io: this.portClass() });

  private portClass(): WordSerialIO {
    const wired = this;
    return class WiredPort implements WordSerial {
      constructor(options: WordSerialOptions) {
        wired.onReadable = () => options.onReadable(wired.rx.length);
      }
      read(): number | undefined {
        return wired.rx.shift();
      }
      write(word: number): void {
        wired.bus.masterWrite([word]);
      }
      close(): void {
        wired.onReadable = undefined;
      }
    };
  }

  run(ms: number): void {
    const end = this.scheduler.now + Math.round(ms * 1000);
    while (this.scheduler.step(end) !== Infinity);
    this.scheduler.advanceTo(end);
  }
}
