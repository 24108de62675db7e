/**
 * Which machines' messages ingest takes: those the fleet store has, looked
 * up once and remembered. A machine the store does not have is refused at
 * once for the next 10 s rather than looked up for every message; hostile
 * topics can name endless machines, so those refusals are bounded in number
 * and forgotten once they have run out.
 */
import type { IngestStore } from './store.js';

/** How long a machine the store does not have is refused without asking again. */
const REFUSED_MS = 10000;

export class KnownMachines {
  private readonly known = new Set<string>();
  private readonly refusedUntil = new Map<string, number>();

  /** Is this machine's message worth queuing (known, or not refused lately: looked up with the batch)? */
  mayQueue(machine: string, now: number): boolean {
    if (this.known.has(machine)) return true;
    const until = this.refusedUntil.get(machine);
    return until === undefined || until <= now;
  }

  /**
   * Split `batch` by whether the store has the message's machine (those not
   * known yet are looked up); the machines it does not have are refused for a while.
   */
  async admit<P extends { machine: string }>(batch: readonly P[], store: IngestStore, now: () => number): Promise<{ ok: P[]; refused: P[] }> {
    const unknown = [...new Set(batch.map((p) => p.machine).filter((m) => !this.known.has(m)))];
    if (unknown.length > 0) for (const id of await store.knownMachines(unknown)) this.known.add(id);
    const ok: P[] = [];
    const refused: P[] = [];
    const t = now();
    if (this.refusedUntil.size > 10000) {
      for (const [m, until] of this.refusedUntil) if (until <= t) this.refusedUntil.delete(m);
    }
    for (const p of batch) {
      if (this.known.has(p.machine)) ok.push(p);
      else {
        if (this.refusedUntil.size < 100000) this.refusedUntil.set(p.machine, t + REFUSED_MS);
        refused.push(p);
      }
    }
    return { ok, refused };
  }

  /** Machines just provisioned: taken at once, even if they were refused a moment ago. */
  add(ids: readonly string[]): void {
    for (const id of ids) {
      this.known.add(id);
      this.refusedUntil.delete(id);
    }
  }
}
