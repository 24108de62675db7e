/**
 * One-shot timers (the firmware's Timers) on a clock that moves only when
 * the test says so: for the firmware's unit tests, in Node and under XS.
 */
import type { TimerId } from '../../firmware/board.js';

/** One-shot timers on a clock that moves only when the test says so. */
export class VirtualTimers {
  now = 0;
  private next = 1;
  private readonly due = new Map<TimerId, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): TimerId {
    const id = this.next++;
    this.due.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(id: TimerId): void {
    this.due.delete(id);
  }
  /** Run every timer due up to `ms` from now, in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let first: TimerId | undefined;
      let at = Infinity;
      for (const [id, t] of this.due) if (t.at < at || (t.at === at && first !== undefined && id < first)) [first, at] = [id, t.at];
      if (first === undefined || at > end) break;
      const t = this.due.get(first)!;
      this.due.delete(first);
      this.now = Math.max(this.now, t.at);
      t.fn();
    }
    this.now = end;
  }
}
