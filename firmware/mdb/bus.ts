/**
 * Polling schedule: shares the link among the peripherals.
 *
 * Each device says when it next wants the bus (`wakeAt`); when the link is
 * free the scheduler serves the due devices round-robin, so a busy changer
 * cannot starve the bill validator. Devices fill a shared transmit buffer,
 * so scheduling allocates nothing.
 */
import type { Clock, Timers, TimerId } from '../board.js';
import { MAX_BLOCK } from './frame.js';
import type { MdbLink, ReplyKind } from './link.js';

export interface MdbDevice {
  readonly name: string;
  /** Absolute time (board clock, ms) at which the device next wants the bus; Infinity for never. */
  wakeAt(now: number): number;
  /** Fill `tx` with the next block (address byte first, no checksum) and return its length, or 0. */
  nextRequest(tx: Uint8Array, now: number): number;
  /** Outcome of the block last returned by nextRequest. Return false to refuse data (it comes again). */
  onReply(kind: ReplyKind, data: Uint8Array, length: number, now: number): boolean | void;
}

export class MdbBus {
  private readonly link: MdbLink;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly devices: MdbDevice[] = [];
  private readonly tx = new Uint8Array(MAX_BLOCK);
  private next = 0;
  private timer: TimerId | undefined;
  private timerAt = Infinity;
  private pumping = false;
  private current: MdbDevice | undefined;
  private stopped = false;
  /** Called when the bus has nothing to send now (between exchanges): the moment for slow housekeeping. */
  onQuiet: (() => void) | undefined;

  constructor(link: MdbLink, clock: Clock, timers: Timers) {
    this.link = link;
    this.clock = clock;
    this.timers = timers;
    link.onIdle = () => this.pump();
  }

  add(device: MdbDevice): void {
    this.devices.push(device);
    this.pump();
  }

  /** A device has new work: reconsider the schedule now. */
  kick(): void {
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
  }

  private readonly onReply = (kind: ReplyKind, data: Uint8Array, length: number): boolean | void => {
    const device = this.current!;
    this.current = undefined;
    return device.onReply(kind, data, length, this.clock.now());
  };

  private pump(): void {
    if (this.pumping || this.stopped || this.link.busy) return;
    this.pumping = true;
    try {
      const now = this.clock.now();
      const n = this.devices.length;
      let earliest = Infinity;
      for (let k = 0; k < n; k++) {
        const i = (this.next + k) % n;
        const device = this.devices[i]!;
        const at = device.wakeAt(now);
        if (at <= now) {
          const length = device.nextRequest(this.tx, now);
          if (length > 0) {
            this.next = (i + 1) % n;
            this.current = device;
            this.link.send(this.tx, length, this.onReply);
            return;
          }
          // Due but nothing to say now: ask again shortly rather than spin.
      // (Round-robin from `next`: one device never starves another [MDB-TIME-3].)
          const again = device.wakeAt(now);
          earliest = Math.min(earliest, again > now ? again : now + 1);
        } else if (at < earliest) {
          earliest = at;
        }
      }
      this.onQuiet?.();
      this.schedule(earliest);
    } finally {
      this.pumping = false;
    }
  }

  private schedule(at: number): void {
    if (at === this.timerAt && this.timer !== undefined) return;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Infinity) return;
    const delay = Math.max(0, at - this.clock.now());
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, delay);
  }
}
