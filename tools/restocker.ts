/**
 * A simulated route driver for `npm start`: now and then it looks at the
 * fleet store for machines with empty slots, drives there (a wait), loads
 * the spirals (the simulated rig's stock) and tells the machine by a signed
 * `restock` command, as a driver's handheld would. The fleet's alerts open
 * as slots run empty and close once the restock is applied.
 */
import type { CommandService } from '../gateway/commands/service.js';
import type { Queryable } from '../gateway/store/db.js';
import type { MachineHost } from '../hal-sim/host.js';

export interface RestockerOptions {
  /** How often the driver looks at the fleet (ms, real time). */
  everyMs?: number;
  /** How long an empty slot waits before the driver comes (ms, real time). */
  visitAfterMs?: number;
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
  visits = 0;

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
      const r = await this.db.query<{ id: string; slots: Slot[] | null }>("SELECT machine_id AS id, telemetry->'slots' AS slots FROM machine_state WHERE online");
      const now = Date.now();
      for (const row of r.rows) {
        const empty = (row.slots ?? []).filter((s) => s.qty === 0);
        if (empty.length === 0) {
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
    this.options.log?.(`route driver: restocked ${id} (${Object.keys(load).join(', ')}), command ${c.n} ${c.status}`);
  }
}
