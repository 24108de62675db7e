/**
 * The event messages the ingester holds and has not committed yet, per
 * machine. A machine that hears no acknowledgement (the store is slow or
 * down) sends its events again; when every one of them is already waiting
 * here, the same (sequence number, type, journal time), the resend is the
 * same work again: it is dropped, and the waiting copy's commit acknowledges
 * those events. Anything else (a number not waiting, a different event under
 * a waiting number) is queued as usual.
 *
 * Identity is the message object: it waits from its submission until the
 * batch it goes out in is written or refused for good (a batch split into
 * parts keeps its messages; a message split into its events has the parts
 * added).
 */
/** An event or a refused one: what identifies it besides its number. */
interface Entry {
  readonly seq: number;
  readonly t: number | null;
  readonly type: string | null;
}

export interface EventMessage {
  readonly machine: string;
  /** Its consecutive sequence numbers (the parser checks it), each in `events` or in `refused`. */
  readonly from: number;
  readonly to: number;
  readonly events: readonly Entry[];
  readonly refused: readonly Entry[];
}

/**
 * A machine with more waiting messages than this is not checked (its
 * resends are queued): the check costs time in the number waiting, and the
 * firmware never has nearly so many in flight.
 */
const MOST_CHECKED = 1000;

/** The entry of a message under `seq` (both lists are in order of number). */
function entry(m: EventMessage, seq: number): Entry | undefined {
  return m.events.find((e) => e.seq === seq) ?? m.refused.find((e) => e.seq === seq);
}

export class WaitingEvents {
  private readonly byMachine = new Map<string, Set<EventMessage>>();

  add(m: EventMessage): void {
    let set = this.byMachine.get(m.machine);
    if (!set) this.byMachine.set(m.machine, (set = new Set()));
    set.add(m);
  }

  /** Every event of `m` is among the machine's waiting messages, the same event (number, type, journal time). */
  covers(machine: string, m: EventMessage): boolean {
    const set = this.byMachine.get(machine);
    if (!set || set.size > MOST_CHECKED || m.to < m.from) return false;
    const overlapping: EventMessage[] = [];
    for (const w of set) if (w.from <= m.to && w.to >= m.from) overlapping.push(w);
    overlapping.sort((a, b) => a.from - b.from);
    let next = m.from;
    for (const w of overlapping) {
      if (w.from > next) return false;
      const last = Math.min(m.to, w.to);
      for (; next <= last; next++) {
        const a = entry(w, next);
        const b = entry(m, next);
        if (!a || !b || a.type !== b.type || a.t !== b.t) return false;
      }
      if (next > m.to) return true;
    }
    return false;
  }

  /**
   * A batch went out: its messages are no longer waiting unless the store
   * was unavailable and they went back to the front of the queue (as
   * Ingester.write puts them), so only the queue's first `batch.length`
   * entries are looked at. Were they put back elsewhere, they would merely
   * be forgotten here (a resend queued again), never kept here when gone.
   */
  settle(batch: readonly { machine: string }[], queue: readonly object[]): void {
    const back = new Set(queue.slice(0, batch.length));
    for (const p of batch) {
      if (back.has(p)) continue;
      const set = this.byMachine.get(p.machine);
      if (set?.delete(p as EventMessage) && set.size === 0) this.byMachine.delete(p.machine);
    }
  }
}
