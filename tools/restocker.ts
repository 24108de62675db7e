/**
 * A simulated route driver for `npm start`: now and then it looks at the
 * fleet store for machines with empty slots, drives there (a wait), loads
 * the spirals (the simulated rig's stock) and tells the machine by a signed
 * `restock` command, as a driver's handheld would. The fleet's alerts open
 * as slots run empty and close once the restock is applied. The handheld
 * shows what became of each command (applied, or refused and why), waiting
 * for the machine's answer a bounded time.
 */
import type { CommandRecord, CommandService } from '../gateway/commands/service.js';
import type { Queryable } from '../gateway/store/db.js';
import type { MachineHost } from '../hal-sim/host.js';

export interface RestockerOptions {
  /** How often the driver looks at the fleet (ms, real time). */
  everyMs?: number;
  /** How long an empty slot waits before the driver comes (ms, real time). */
  visitAfterMs?: number;
  /** How long the driver waits for a restock's outcome (ms, real time). */
  outcomeWaitMs?: number;
  log?: (message: string) => void;
}

interface Slot {
  code: string;
  qty: number;
  capacity?: number;
}

export class Restocker {
  private timer: NodeJS.Timeout | undefined;
  /** Machine → when its first empty slot was seen (real ms). */
  private readonly emptySince = new Map<string, number>();
  private busy = false;
  /** Machines whose restock has no outcome yet: not visited again meanwhile. */
  private readonly pending = new Set<string>();
  /** Machine → journal time of its applied restock: its telemetry from before that still shows the slots empty. */
  private readonly restockedAt = new Map<string, number>();
  visits = 0;
  /** Restock outcomes so far: "applied", "refused: busy", "rejected: expired", "no answer", ... */
  readonly outcomes = new Map<string, number>();

  constructor(
    private readonly db: Queryable,
    private readonly commands: CommandService,
    private readonly hosts: ReadonlyMap<string, MachineHost>,
    private readonly options: RestockerOptions = {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.round(), this.options.everyMs ?? 5000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async round(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const r = await this.db.query<{ id: string; slots: Slot[] | null; t: number | null }>(
        "SELECT machine_id AS id, telemetry->'slots' AS slots, (telemetry->>'t')::bigint AS t FROM machine_state WHERE online",
      );
      const now = Date.now();
      for (const row of r.rows) {
        const restocked = this.restockedAt.get(row.id);
        if (restocked !== undefined && Number(row.t ?? 0) < restocked) continue;
        this.restockedAt.delete(row.id);
        const empty = (row.slots ?? []).filter((s) => s.qty === 0);
        if (empty.length === 0 || this.pending.has(row.id)) {
          this.emptySince.delete(row.id);
          continue;
        }
        const since = this.emptySince.get(row.id) ?? now;
        this.emptySince.set(row.id, since);
        if (now - since >= (this.options.visitAfterMs ?? 30000)) await this.visit(row.id, row.slots ?? []);
      }
    } catch {
      // The store is busy or closing: the next round looks again.
    } finally {
      this.busy = false;
    }
  }

  /** Fill every slot of the machine to capacity, physically and then by command. */
  private async visit(id: string, slots: Slot[]): Promise<void> {
    const host = this.hosts.get(id);
    if (!host) return;
    const load: Record<string, { qty: number }> = {};
    for (const s of slots) {
      const capacity = s.capacity ?? s.qty;
      if (s.qty >= capacity) continue;
      host.rig.motor(s.code).stock = capacity;
      load[s.code] = { qty: capacity };
    }
    if (Object.keys(load).length === 0) return;
    this.emptySince.delete(id);
    this.visits++;
    const c = await this.commands.issue(id, 'restock', { slots: load });
    this.pending.add(id);
    // The round goes on to other machines while this one answers.
    void this.commands
      .waitFor(c.id, this.options.outcomeWaitMs ?? 60000)
      .then(
        (done) => this.settled(id, Object.keys(load), done ?? c),
        () => this.settled(id, Object.keys(load), c),
      );
  }

  private settled(id: string, slots: string[], c: CommandRecord): void {
    this.pending.delete(id);
    const t = c.outcome?.['t'];
    if (c.status === 'applied' && typeof t === 'number') this.restockedAt.set(id, t);
    const what = outcomeOf(c);
    this.outcomes.set(what, (this.outcomes.get(what) ?? 0) + 1);
    this.options.log?.(`route driver: restocked ${id} (${slots.join(', ')}), command ${c.n} ${what}`);
  }

  /** "12 restocks: 10 applied, 2 rejected: expired" */
  summary(): string {
    const parts = [...this.outcomes].sort((a, b) => b[1] - a[1]).map(([what, n]) => `${n} ${what}`);
    const waiting = this.pending.size > 0 ? `, ${this.pending.size} waiting` : '';
    return `${this.visits} restocks${parts.length > 0 || waiting ? ': ' : ''}${parts.join(', ')}${waiting}`;
  }
}

/** What became of a command, as the driver's handheld says it. */
export function outcomeOf(c: CommandRecord): string {
  const reason = c.outcome?.['reason'];
  switch (c.status) {
    case 'queued':
    case 'delivered':
      return 'no answer';
    case 'expired':
      return 'expired (no answer in time)';
    default:
      return typeof reason === 'string' ? `${c.status}: ${reason}` : c.status;
  }
}
