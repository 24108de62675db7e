/**
 * A virtual clock and timers for the gateway parts that take them
 * (gateway/time.ts): time moves only when a test moves it, every timer that
 * falls due runs in order of its time, and the promises a timer starts are
 * settled before the next one runs. Backoff measured in seconds is tried in
 * no real time, and exactly.
 */
import type { Clock, TimerId, Timers } from '../../gateway/time.js';

interface Entry {
  id: TimerId;
  at: number;
  callback: () => void;
  /** Repeating: its period. */
  every?: number;
}

export class VirtualTime implements Clock, Timers {
  private t: number;
  private readonly entries = new Map<TimerId, Entry>();
  private next = 1;

  constructor(start = Date.UTC(2026, 0, 5, 9, 0, 0)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  set(callback: () => void, ms: number): TimerId {
    const id = this.next++;
    this.entries.set(id, { id, at: this.t + Math.max(0, ms), callback });
    return id;
  }

  repeat(callback: () => void, ms: number): TimerId {
    const id = this.next++;
    const every = Math.max(1, ms);
    this.entries.set(id, { id, at: this.t + every, callback, every });
    return id;
  }

  clear(id: TimerId | undefined): void {
    if (id !== undefined) this.entries.delete(id);
  }

  /** Timers not yet run nor cleared (repeating ones included). */
  get pending(): number {
    return this.entries.size;
  }

  /** Let the promises already started run to their end (they wait on nothing but each other). */
  async settle(): Promise<void> {
    // Promise jobs all run before the next macrotask: a few turns cover chains that start new ones.
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Move time on by `ms`, running every timer that falls due on the way (in order) with its promises settled. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await this.settle();
    for (;;) {
      const due = this.earliest();
      if (!due || due.at > end) break;
      this.t = due.at;
      if (due.every !== undefined) due.at += due.every;
      else this.entries.delete(due.id);
      due.callback();
      await this.settle();
    }
    this.t = end;
  }

  /** Run timers, in order, until `done()` holds; how much virtual time it took. Fails after `maxMs`. */
  async until(what: string, done: () => boolean, maxMs: number): Promise<number> {
    const start = this.t;
    await this.settle();
    while (!done()) {
      const due = this.earliest();
      if (!due || due.at - start > maxMs) throw new Error(`${what}: not within ${maxMs} ms of virtual time`);
      await this.advance(due.at - this.t);
    }
    return this.t - start;
  }

  private earliest(): Entry | undefined {
    let first: Entry | undefined;
    // Ties go to the timer set first (ids grow), as Node runs them.
    for (const e of this.entries.values()) if (!first || e.at < first.at || (e.at === first.at && e.id < first.id)) first = e;
    return first;
  }
}
