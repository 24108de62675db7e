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
 * batch it goes out in is written or refused for good.
 */
import type { MachineEvent } from './messages.js';

export interface EventMessage {
  readonly machine: string;
  /** Consecutive sequence numbers (the parser checks it). */
  readonly events: readonly MachineEvent[];
}

/**
 * A machine with more waiting messages than this is not checked (its
 * resends are queued): the check costs time in the number waiting, and the
 * firmware never has nearly so many in flight.
 */
const MOST_CHECKED = 1000;

export class WaitingEvents {
  private readonly byMachine = new Map<string, Set<EventMessage>>();

  add(m: EventMessage): void {
    let set = this.byMachine.get(m.machine);
    if (!set) this.byMachine.set(m.machine, (set = new Set()));
    set.add(m);
  }

  /** Every one of `events` is among the machine's waiting messages, the same event. */
  covers(machine: string, events: readonly MachineEvent[]): boolean {
    const set = this.byMachine.get(machine);
    if (!set || set.size > MOST_CHECKED || events.length === 0) return false;
    const from = events[0]!.seq;
    const to = events[events.length - 1]!.seq;
    const overlapping: EventMessage[] = [];
    for (const m of set) if (m.events[0]!.seq <= to && m.events[m.events.length - 1]!.seq >= from) overlapping.push(m);
    overlapping.sort((a, b) => a.events[0]!.seq - b.events[0]!.seq);
    let next = from;
    for (const m of overlapping) {
      const first = m.events[0]!.seq;
      if (first > next) return false;
      const last = Math.min(to, m.events[m.events.length - 1]!.seq);
      for (; next <= last; next++) {
        const a = m.events[next - first]!;
        const b = events[next - from]!;
        if (a.type !== b.type || a.t !== b.t) return false;
      }
      if (next > to) return true;
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
