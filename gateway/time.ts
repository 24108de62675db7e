/**
 * Time as a gateway part reads it and waits on it, handed in as an option
 * so that tests drive a virtual clock instead of waiting (the Node side of
 * the firmware's Clock and Timers seam, firmware/board.ts). REAL_TIME, the
 * default, is Date.now and Node's timers.
 */

export type TimerId = number;

export interface Clock {
  /** Wall-clock time, ms since the epoch. */
  now(): number;
}

export interface Timers {
  /** Run `callback` once, `ms` from now. */
  set(callback: () => void, ms: number): TimerId;
  /** Run `callback` every `ms`; in real time it never keeps the process alive on its own (a watchdog). */
  repeat(callback: () => void, ms: number): TimerId;
  /** Cancel a timer (one that has run, or none, is fine). */
  clear(id: TimerId | undefined): void;
}

/** Node's timers behind numbered ids: a cleared or finished timer leaves nothing behind. */
class NodeTimers implements Timers {
  private readonly live = new Map<TimerId, NodeJS.Timeout>();
  private next = 1;

  set(callback: () => void, ms: number): TimerId {
    const id = this.next++;
    this.live.set(
      id,
      setTimeout(() => {
        this.live.delete(id);
        callback();
      }, ms),
    );
    return id;
  }

  repeat(callback: () => void, ms: number): TimerId {
    const id = this.next++;
    this.live.set(id, setInterval(callback, ms).unref());
    return id;
  }

  clear(id: TimerId | undefined): void {
    if (id === undefined) return;
    const t = this.live.get(id);
    if (t === undefined) return;
    // clearTimeout clears intervals too (Node's timers are one kind).
    clearTimeout(t);
    this.live.delete(id);
  }
}

export const REAL_CLOCK: Clock = { now: () => Date.now() };
export const REAL_TIMERS: Timers = new NodeTimers();
