/**
 * Virtual time. Events run in (time, insertion) order, so a run with the
 * same inputs and seed replays identically, and a day of vending takes
 * seconds. Time is kept in integer microseconds: MDB characters are
 * 1145.83 us long and must not drift.
 */

export type EventId = number;

interface Entry {
  at: number;
  seq: number;
  id: EventId;
  fn: () => void;
}

export class Scheduler {
  private heap: Entry[] = [];
  private seq = 0;
  private cancelled = new Set<EventId>();
  /** Current virtual time in microseconds. */
  now = 0;
  /** Events run so far (a cheap progress measure). */
  executed = 0;

  get nowMs(): number {
    return this.now / 1000;
  }

  /** Run `fn` at absolute time `atUs` (never earlier than now). */
  at(atUs: number, fn: () => void): EventId {
    const id = ++this.seq;
    const entry: Entry = { at: Math.max(Math.round(atUs), this.now), seq: id, id, fn };
    this.push(entry);
    return id;
  }

  after(delayUs: number, fn: () => void): EventId {
    return this.at(this.now + delayUs, fn);
  }

  cancel(id: EventId | undefined): void {
    if (id !== undefined) this.cancelled.add(id);
  }

  /** Time of the next pending event, or Infinity. */
  peek(): number {
    this.dropCancelled();
    return this.heap.length > 0 ? this.heap[0]!.at : Infinity;
  }

  /**
   * Run every event due at exactly the next pending time; returns that time or Infinity. An event a `busy`
   * charge made late runs at the time now (never back in time).
   */
  step(limitUs: number): number {
    const t = this.peek();
    if (t > limitUs) return Infinity;
    if (t > this.now) this.now = t;
    while (this.heap.length > 0 && this.peek() === t) {
      const e = this.pop()!;
      this.executed++;
      e.fn();
    }
    return t;
  }

  /** Time passes without events (a processor busy computing, see MachineHost's boardComputronsPerMs): what falls due meanwhile runs late. */
  busy(us: number): void {
    if (us > 0) this.now = Math.round(this.now + us);
  }

  /** Move the clock forward to `t` (after running every event up to it). */
  advanceTo(t: number): void {
    if (t > this.now) this.now = Math.round(t);
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.cancelled.has(this.heap[0]!.id)) {
      this.cancelled.delete(this.heap[0]!.id);
      this.pop();
    }
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Small, fast, seedable PRNG (mulberry32): the simulator's only source of randomness. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
}
