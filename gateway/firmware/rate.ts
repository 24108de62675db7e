/**
 * A token bucket of bytes per machine: each machine may take `burst` bytes
 * at once and `bytesPerSecond` on average, so one machine (or one that
 * misbehaves) cannot take the gateway's link or time from the others.
 * Time comes from the clock given (gateway/time.ts), so tests run it
 * virtually.
 */
import type { Clock } from '../time.js';

export interface RateOptions {
  bytesPerSecond: number;
  burst: number;
  clock: Clock;
  /** Machines tracked at most; beyond, those whose buckets are full again are forgotten (10,000). */
  maxMachines?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class ByteBuckets {
  private readonly o: Required<RateOptions>;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: RateOptions) {
    if (!(options.bytesPerSecond > 0) || !(options.burst > 0)) throw new Error('a rate limit needs a positive rate and burst');
    this.o = { maxMachines: 10000, ...options };
  }

  /** Take `bytes` from the machine's bucket if it holds that many now; false (and nothing taken) otherwise. */
  take(machine: string, bytes: number): boolean {
    const now = this.o.clock.now();
    let b = this.buckets.get(machine);
    if (!b) {
      if (this.buckets.size >= this.o.maxMachines) this.prune(now);
      b = { tokens: this.o.burst, at: now };
      this.buckets.set(machine, b);
    }
    // A clock that steps back refills nothing, neither then nor when it comes forward again.
    const elapsed = Math.max(0, now - b.at);
    b.tokens = Math.min(this.o.burst, b.tokens + (elapsed * this.o.bytesPerSecond) / 1000);
    b.at = Math.max(b.at, now);
    if (b.tokens < bytes) return false;
    b.tokens -= bytes;
    return true;
  }

  /** Machines tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Forget the machines whose buckets are full again (they lose nothing); if none are, all of them. */
  private prune(now: number): void {
    const full = (this.o.burst * 1000) / this.o.bytesPerSecond;
    for (const [m, b] of this.buckets) if (now - b.at >= full) this.buckets.delete(m);
    // Every one busy: a flood of new ids; forgetting them gives each a burst again, which the cap bounds.
    if (this.buckets.size >= this.o.maxMachines) this.buckets.clear();
  }
}
