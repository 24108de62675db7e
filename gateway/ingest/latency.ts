/**
 * Receive-to-commit times of the ingester's recent messages, in a fixed
 * ring (typed arrays: a busy gateway records thousands a second), with when
 * each was received so that a percentile can be taken over a window (the
 * outage bench asks for the messages received after the store came back).
 * Measured in real time (performance.now()): it is the figure the benches
 * report, whatever clock the ingester's own timing runs on.
 */

export class LatencyRing {
  /** Receive-to-commit times, ms. */
  private readonly latencies: Float64Array;
  /** When each of those messages was received (performance.now()). */
  private readonly receivedAt: Float64Array;
  private count = 0;

  constructor(readonly size = 8192) {
    this.latencies = new Float64Array(size);
    this.receivedAt = new Float64Array(size);
  }

  /** A message received at `at` (performance.now()) was committed at `now`. */
  record(at: number, now: number): void {
    const i = this.count++ % this.size;
    this.latencies[i] = now - at;
    this.receivedAt[i] = at;
  }

  /** The percentile over the recorded messages received at or after `receivedSince`, ms (0 when none). */
  percentile(percentile: number, receivedSince = -Infinity): number {
    const sorted: number[] = [];
    for (let i = 0; i < Math.min(this.count, this.size); i++) if (this.receivedAt[i]! >= receivedSince) sorted.push(this.latencies[i]!);
    const n = sorted.length;
    if (n === 0) return 0;
    sorted.sort((a, b) => a - b);
    return sorted[Math.min(n - 1, Math.floor((percentile / 100) * n))]!;
  }

  /** Recorded since the last reset (more than the ring holds: only the newest are kept). */
  get samples(): number {
    return this.count;
  }

  reset(): void {
    this.count = 0;
  }
}
