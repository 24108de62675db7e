/**
 * Remote commands on the gateway side: machine keys, numbering, signing,
 * delivery (now if the machine is online, else when it returns), expiry,
 * and outcomes. Outcomes arrive as journal events from the machine and are
 * written in the same transaction as the events themselves, so a command's
 * status and the machine's record of it can never disagree.
 *
 * Desired state: a command issued while the machine is offline waits,
 * signed afresh with the key in force when it is finally sent; the machine
 * applies each number once and never lets an older command overwrite what
 * a newer one set.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { MAX_COMMAND_BYTES } from '../../firmware/command/command.js';
import type { Db, Queryable } from '../store/db.js';
import { signCommand, type CommandBody } from './envelope.js';
import { isMachineId, MACHINE_ID_RULE } from '../machine-id.js';
import { DEFAULT_OPERATOR } from '../store/operators.js';
import { insertOffer, withdrawUnlessOutstanding } from '../firmware/store.js';
import { newestPerCommand, PHASE_STATUS, reportOf, resolveUpdate, storeReports, UpdateArgsError, type UpdateReport } from './update.js';

export const COMMAND_TYPES = ['set-prices', 'restock', 'lock', 'unlock', 'reboot', 'set-config', 'report', 'audit', 'vend', 'rotate-key', 'update'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

/**
 * queued: waiting for the machine; delivered: sent, no outcome yet; running: an update the machine took
 * and is carrying out (it no longer expires); the rest are final (rolled-back: an update's new image did
 * not prove itself; cancelled: the gateway called it off, a rollout's cancel or timeout).
 */
export type CommandStatus =
  | 'queued'
  | 'delivered'
  | 'running'
  | 'applied'
  | 'stale'
  | 'refused'
  | 'failed'
  | 'interrupted'
  | 'unsupported'
  | 'rejected'
  | 'expired'
  | 'rolled-back'
  | 'cancelled';
const FINAL_FROM_MACHINE = new Set(['applied', 'stale', 'refused', 'failed', 'interrupted', 'unsupported']);
/** The statuses of a command not yet final. */
export const OPEN_STATUSES: readonly CommandStatus[] = ['queued', 'delivered', 'running'];
/** Event types that settle commands: outcomes, turned-away commands, and an update's reports. */
export const COMMAND_EVENT_TYPES: ReadonlySet<string> = new Set(['command', 'command-rejected', 'update-begin', 'update']);

export interface CommandRecord {
  id: string;
  machine: string;
  n: number;
  type: string;
  args: Record<string, unknown>;
  issuedAt: string;
  expiresAt: string;
  status: CommandStatus;
  outcome: Record<string, unknown> | null;
  sent: number;
}

/** What provisioning hands over for the machine's configuration. */
export interface Provisioned {
  commandKeyId: number;
  commandKey: string;
  /** Present when a new MQTT password was made (it cannot be shown again). */
  mqttPassword?: string;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly code: 'unknown-machine' | 'no-key' | 'bad-command' | 'too-large' | 'bad-args' | 'unknown-image' | 'downgrade' | 'in-rollout' | 'command-state',
  ) {
    super(message);
  }
}

/** A command event from a machine, as ingested. */
export interface CommandEvent {
  machine: string;
  type: string;
  body: Record<string, unknown>;
}

interface Row {
  id: string;
  machine_id: string;
  n: string;
  type: string;
  args: Record<string, unknown>;
  issued_at: Date | string;
  expires_at: Date | string;
  status: CommandStatus;
  outcome: Record<string, unknown> | null;
  sent: number;
}

function record(r: Row): CommandRecord {
  return {
    id: r.id,
    machine: r.machine_id,
    n: Number(r.n),
    type: r.type,
    args: r.args,
    issuedAt: new Date(r.issued_at).toISOString(),
    expiresAt: new Date(r.expires_at).toISOString(),
    status: r.status,
    outcome: r.outcome,
    sent: Number(r.sent),
  };
}

/** What the machine gets for a command, before signing. */
function bodyOf(c: CommandRecord): CommandBody {
  return {
    machine: c.machine,
    n: c.n,
    type: c.type,
    issued: Math.floor(Date.parse(c.issuedAt) / 1000),
    expires: Math.floor(Date.parse(c.expiresAt) / 1000),
    args: c.args,
  };
}

const COLUMNS = 'id, machine_id, n, type, args, issued_at, expires_at, status, outcome, sent';

/** Told when an update command opens or withdraws an image's offer in the store (the registry's memory of offers). */
export interface OfferMemory {
  noteOffer(machine: string, sha256: string, offered: boolean): void;
}

/** What a batch of machine events did to commands, for `settled` after the commit. */
export interface Settlement {
  changed: CommandRecord[];
  /** Offers withdrawn because the update commands that held them became final. */
  withdrawn: { machine: string; sha256: string }[];
  /** Machines that reported on an update. */
  reported: string[];
}

export interface CommandServiceOptions {
  /** How long a command stays valid when the caller does not say (default 1 hour). */
  defaultTtlS?: number;
  offers?: OfferMemory | undefined;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class CommandService {
  private readonly db: Db;
  private readonly publish: (topic: string, payload: Buffer) => void;
  private readonly ttlS: number;
  private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  private readonly offers: OfferMemory | undefined;
  private readonly waiters = new Map<string, ((r: CommandRecord) => void)[]>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(db: Db, publish: (topic: string, payload: Buffer) => void, options: CommandServiceOptions = {}) {
    this.db = db;
    this.publish = publish;
    this.ttlS = options.defaultTtlS ?? 3600;
    this.log = options.onLog ?? (() => {});
    this.offers = options.offers;
    this.sweeper = setInterval(() => void this.expire().catch(() => {}), 1000);
    this.sweeper.unref();
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * Register a machine and give it its first command key (kept if it has one).
   * Returns what goes into the machine's configuration.
   */
  async provision(machine: string, options: { newMqttPassword?: boolean; operator?: string } = {}): Promise<Provisioned> {
    if (!isMachineId(machine)) throw new CommandError(MACHINE_ID_RULE, 'bad-command');
    const operator = options.operator ?? DEFAULT_OPERATOR;
    return this.db.transaction(async (tx) => {
      await tx.query('INSERT INTO machines (id, operator_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [machine, operator]);
      // Machine ids are one namespace (they are the MQTT logins): another operator's id is not found, and its keys stay its own.
      const owned = await tx.query<{ operator_id: string }>('SELECT operator_id FROM machines WHERE id = $1', [machine]);
      if (owned.rows[0]?.operator_id !== operator) throw new CommandError(`unknown machine "${machine}"`, 'unknown-machine');
      const out: Provisioned = { commandKeyId: 1, commandKey: '' };
      const have = await tx.query<{ kid: number; key: Buffer }>("SELECT kid, key FROM machine_keys WHERE machine_id = $1 AND state = 'active'", [machine]);
      if (have.rows[0]) {
        out.commandKeyId = Number(have.rows[0].kid);
        out.commandKey = Buffer.from(have.rows[0].key).toString('hex');
      } else {
        const key = randomBytes(32);
        await tx.query("INSERT INTO machine_keys (machine_id, kid, key, state) VALUES ($1, 1, $2, 'active')", [machine, key]);
        out.commandKey = key.toString('hex');
      }
      // The MQTT password is kept only as a hash: a new one is made on first provisioning or when asked.
      const secret = await tx.query<{ h: string | null }>('SELECT mqtt_secret_hash AS h FROM machines WHERE id = $1', [machine]);
      if (!secret.rows[0]?.h || options.newMqttPassword) {
        const password = randomBytes(32).toString('base64url');
        await tx.query('UPDATE machines SET mqtt_secret_hash = $2 WHERE id = $1', [machine, sha256(password)]);
        out.mqttPassword = password;
      }
      return out;
    });
  }

  /**
   * Queue a command and send it at once if the machine is online. An
   * `update` names its image (update.ts fills in the rest) and offers it to
   * the machine in the same transaction; `rollout` says which rollout asks.
   */
  async issue(
    machine: string,
    type: string,
    args: Record<string, unknown> = {},
    options: { ttlS?: number; rollout?: string; within?: (tx: Queryable, id: string, n: number) => Promise<void> } = {},
  ): Promise<CommandRecord> {
    if (!(COMMAND_TYPES as readonly string[]).includes(type)) throw new CommandError(`unknown command type "${type}"`, 'bad-command');
    const ttl = options.ttlS ?? this.ttlS;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 30 * 86400) throw new CommandError('ttlS must be an integer from 1 to 2592000', 'bad-command');
    let extra = args;
    const row = await this.db.transaction(async (tx) => {
      const m = await tx.query<{ n: string }>('UPDATE machines SET next_command = next_command + 1 WHERE id = $1 RETURNING next_command - 1 AS n', [machine]);
      if (!m.rows[0]) throw new CommandError(`unknown machine "${machine}"`, 'unknown-machine');
      const active = await tx.query<{ kid: number; key: Buffer; online: boolean | null }>(
        "SELECT k.kid, k.key, (SELECT online FROM machine_state WHERE machine_id = $1) AS online FROM machine_keys k WHERE k.machine_id = $1 AND k.state = 'active'",
        [machine],
      );
      if (!active.rows[0]) throw new CommandError(`machine "${machine}" has no command key (provision it first)`, 'no-key');
      if (type === 'rotate-key') {
        // The new key travels inside a command signed with the old one; it becomes active when the machine has it on flash.
        const kid = (Number(active.rows[0].kid) % 255) + 1;
        const key = randomBytes(32);
        await tx.query("DELETE FROM machine_keys WHERE machine_id = $1 AND state = 'pending'", [machine]);
        await tx.query("INSERT INTO machine_keys (machine_id, kid, key, state) VALUES ($1, $2, $3, 'pending') ON CONFLICT (machine_id, kid) DO UPDATE SET key = EXCLUDED.key, state = 'pending', created_at = now()", [machine, kid, key]);
        extra = { kid, key: key.toString('hex') };
      }
      if (type === 'update') {
        try {
          extra = { ...(await resolveUpdate(tx, machine, args, options.rollout)) };
        } catch (e) {
          if (e instanceof UpdateArgsError) throw new CommandError(e.message, e.code);
          throw e;
        }
        // Served from now on (serve.ts), until the command is final.
        await insertOffer(tx, machine, String(extra['sha256']));
      }
      const r = await tx.query<Row>(
        `INSERT INTO commands (id, machine_id, n, type, args, issued_at, expires_at, status)
         VALUES ($1, $2, $3, $4, $5::jsonb, date_trunc('second', now()), date_trunc('second', now()) + make_interval(secs => $6), 'queued')
         RETURNING ${COLUMNS}`,
        [randomUUID(), machine, Number(m.rows[0].n), type, JSON.stringify(extra), ttl],
      );
      // A machine refuses a signed command over its limit, so one that big could never be applied. Measured as
      // stored (jsonb may reorder the arguments) and signed with the widest key id, as any later key may re-send it.
      const size = signCommand(bodyOf(record(r.rows[0]!)), 255, Buffer.from(active.rows[0].key)).length;
      if (size > MAX_COMMAND_BYTES) {
        throw new CommandError(`the signed command would be ${size} bytes; a machine takes at most ${MAX_COMMAND_BYTES} bytes (docs/commands.md): send less in one command`, 'too-large');
      }
      // The caller's own bookkeeping commits with the command or not at all (idempotency keys).
      await options.within?.(tx, r.rows[0]!.id, Number(r.rows[0]!.n));
      return { row: r.rows[0]!, key: active.rows[0], online: active.rows[0].online === true };
    });
    if (type === 'update') this.offers?.noteOffer(machine, String(row.row.args['sha256']), true);
    if (row.online) return this.send(record(row.row), { kid: Number(row.key.kid), key: Buffer.from(row.key.key) });
    return this.redact(record(row.row));
  }

  /** Sign with the key in force now and publish; the command is then delivered (as far as the broker goes). */
  private async send(c: CommandRecord, known?: { kid: number; key: Buffer }): Promise<CommandRecord> {
    const k = known ?? (await this.db.query<{ kid: number; key: Buffer }>("SELECT kid, key FROM machine_keys WHERE machine_id = $1 AND state = 'active'", [c.machine])).rows[0];
    if (!k) return c;
    this.publish(`fleet/${c.machine}/commands`, signCommand(bodyOf(c), Number(k.kid), Buffer.from(k.key)));
    const r = await this.db.query<Row>(
      `UPDATE commands SET sent = sent + 1, status = CASE WHEN status = 'queued' THEN 'delivered' ELSE status END, updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [c.id],
    );
    return this.redact(record(r.rows[0]!));
  }

  /** The machine came online: everything still open goes out, oldest first. */
  async machineOnline(machine: string): Promise<number> {
    const open = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM commands WHERE machine_id = $1 AND status IN ('queued', 'delivered') AND expires_at > now() ORDER BY n`,
      [machine],
    );
    for (const r of open.rows) await this.send(record(r));
    return open.rows.length;
  }

  /**
   * Outcomes in a batch of machine events, written in the ingest transaction:
   * command outcomes and refusals, and an update's reports (update.ts), which
   * move an update command on and, once it is final, withdraw its offer.
   * What it returns goes to `settled` after the commit.
   */
  async recordOutcomes(tx: Queryable, events: CommandEvent[]): Promise<Settlement> {
    const machines: string[] = [];
    const ns: number[] = [];
    const statuses: string[] = [];
    const bodies: string[] = [];
    const reports: UpdateReport[] = [];
    for (const e of events) {
      const report = reportOf(e.machine, e.type, e.body);
      if (report) {
        reports.push(report);
        continue;
      }
      const n = Number(e.body['n']);
      if (!Number.isInteger(n) || n <= 0) continue;
      let status: string | undefined;
      if (e.type === 'command') {
        const o = String(e.body['outcome']);
        status = FINAL_FROM_MACHINE.has(o) ? o : undefined;
      } else if (e.type === 'command-rejected' && e.body['reason'] !== 'replay') {
        // A replay refusal says the machine has it already: its outcome is on the way.
        status = 'rejected';
      }
      if (!status) continue;
      machines.push(e.machine);
      ns.push(n);
      statuses.push(status);
      bodies.push(JSON.stringify(e.body));
    }
    const changed: CommandRecord[] = [];
    if (machines.length > 0) {
      // An update the machine took is under way, not done: its reports say when it is.
      const r = await tx.query<Row>(
        `UPDATE commands c SET status = CASE WHEN c.type = 'update' AND u.status = 'applied' THEN 'running' ELSE u.status END, outcome = u.body, updated_at = now()
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::jsonb[]) AS u(m, n, status, body)
         WHERE c.machine_id = u.m AND c.n = u.n AND (c.status IN ('queued', 'delivered') OR (c.type = 'update' AND c.status = 'running' AND u.status <> 'applied'))
         RETURNING ${COLUMNS.split(', ').map((x) => `c.${x}`).join(', ')}`,
        [machines, ns, statuses, bodies],
      );
      for (const row of r.rows) {
        if (row.type === 'rotate-key' && row.status === 'applied') {
          await tx.query(
            `UPDATE machine_keys SET state = CASE WHEN kid = $2 THEN 'active' ELSE 'retired' END
             WHERE machine_id = $1 AND (state = 'active' OR kid = $2)`,
            [row.machine_id, Number(row.args['kid'])],
          );
        }
      }
      changed.push(...r.rows.map(record));
    }
    if (reports.length > 0) {
      await storeReports(tx, reports);
      const latest = newestPerCommand(reports);
      const r = await tx.query<Row>(
        `UPDATE commands c SET status = u.status, outcome = u.body, updated_at = now()
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::jsonb[]) AS u(m, n, status, body)
         WHERE c.machine_id = u.m AND c.n = u.n AND c.type = 'update' AND c.status IN ('queued', 'delivered', 'running')
         RETURNING ${COLUMNS.split(', ').map((x) => `c.${x}`).join(', ')}`,
        [latest.map((x) => x.machine), latest.map((x) => x.n), latest.map((x) => PHASE_STATUS[x.phase]), latest.map((x) => JSON.stringify(x.body))],
      );
      changed.push(...r.rows.map(record));
    }
    const withdrawn = await withdrawUnlessOutstanding(tx, finalUpdates(changed));
    return { changed, withdrawn, reported: [...new Set(reports.map((x) => x.machine))] };
  }

  /** After the commit: wake whoever waits, tell the registry of offers withdrawn, and resend what the rotation left signed with the old key. */
  settled(s: Settlement): void {
    for (const o of s.withdrawn) this.offers?.noteOffer(o.machine, o.sha256, false);
    for (const c of s.changed) {
      const w = this.waiters.get(c.id);
      if (w && !OPEN_STATUSES.includes(c.status)) {
        this.waiters.delete(c.id);
        for (const f of w) f(this.redact(c));
      }
      if (c.type === 'rotate-key' && c.status === 'applied') {
        this.log('info', `commands: ${c.machine} now uses key ${String(c.args['kid'])}`);
        void this.machineOnline(c.machine).catch((e: Error) => this.log('warn', `commands: resend after key rotation failed: ${e.message}`));
      }
    }
  }

  /**
   * Call off an open command (a rollout's cancel or timeout): it is
   * `cancelled` and, an update, its offer withdrawn. A command the machine
   * already has may still be carried out; what it reports is kept. False if
   * it was final already.
   */
  async cancel(id: string): Promise<boolean> {
    const s = await this.db.transaction((tx) => this.cancelWithin(tx, [id]));
    this.settled(s);
    return s.changed.length > 0;
  }

  /**
   * An operator calls off an update command sent by hand (POST
   * /commands/{id}/cancel): as `cancel`, for an open update command that no
   * rollout sent (a rollout's is the rollout's to pause or cancel). Other
   * commands are not called off: the machine applies them as they come,
   * and one it applied after a cancel (a key rotation) would go unrecorded.
   * Undefined when there is no such command.
   */
  async cancelUpdate(id: string): Promise<CommandRecord | undefined> {
    const out = await this.db.transaction(async (tx) => {
      // Held: an outcome arriving meanwhile waits for this, then finds the command final.
      const r = await tx.query<Row>(`SELECT ${COLUMNS} FROM commands WHERE id = $1 FOR UPDATE`, [id]);
      if (!r.rows[0]) return undefined;
      const c = record(r.rows[0]);
      if (c.type !== 'update') throw new CommandError(`command ${id} is ${c.type}: only an update command is called off (the machine applies the others as they come)`, 'bad-command');
      const owner = await tx.query<{ rollout_id: string }>('SELECT rollout_id FROM rollout_machines WHERE command_id = $1 LIMIT 1', [id]);
      if (owner.rows[0]) throw new CommandError(`command ${id} was sent by rollout ${owner.rows[0].rollout_id}: pause or cancel the rollout`, 'in-rollout');
      if (!OPEN_STATUSES.includes(c.status)) throw new CommandError(`command ${id} is ${c.status} already: only a queued, delivered or running update is called off`, 'command-state');
      const settlement = await this.cancelWithin(tx, [id]);
      return { settlement, command: settlement.changed[0]! };
    });
    if (!out) return undefined;
    this.settled(out.settlement);
    return this.redact(out.command);
  }

  /** `cancel` inside the caller's transaction (a rollout's); `settled` after its commit. */
  async cancelWithin(tx: Queryable, ids: readonly string[]): Promise<Settlement> {
    if (ids.length === 0) return { changed: [], withdrawn: [], reported: [] };
    const r = await tx.query<Row>(
      `UPDATE commands SET status = 'cancelled', updated_at = now() WHERE id = ANY($1::text[]) AND status IN ('queued', 'delivered', 'running') RETURNING ${COLUMNS}`,
      [ids],
    );
    const changed = r.rows.map(record);
    return { changed, withdrawn: await withdrawUnlessOutstanding(tx, finalUpdates(changed)), reported: [] };
  }

  /** Resolves when the command has an outcome (or expired), or with its state so far after `timeoutMs`. */
  async waitFor(id: string, timeoutMs: number): Promise<CommandRecord | undefined> {
    const now = await this.get(id);
    if (!now || !OPEN_STATUSES.includes(now.status)) return now;
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      const timer = setTimeout(() => {
        const l = this.waiters.get(id);
        if (l) this.waiters.set(id, l.filter((f) => f !== done));
        void this.get(id).then(resolve, () => resolve(undefined));
      }, timeoutMs);
      const done = (r: CommandRecord): void => {
        clearTimeout(timer);
        resolve(r);
      };
      list.push(done);
      this.waiters.set(id, list);
    });
  }

  /** A command, if its machine is `operator`'s (null or absent: any operator's). */
  async get(id: string, operator: string | null = null): Promise<CommandRecord | undefined> {
    const r = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM commands WHERE id = $1 AND ($2::text IS NULL OR machine_id IN (SELECT m.id FROM machines m WHERE m.operator_id = $2))`,
      [id, operator],
    );
    return r.rows[0] ? this.redact(record(r.rows[0])) : undefined;
  }

  async list(machine: string, limit = 50): Promise<CommandRecord[]> {
    const r = await this.db.query<Row>(`SELECT ${COLUMNS} FROM commands WHERE machine_id = $1 ORDER BY n DESC LIMIT $2`, [machine, limit]);
    return r.rows.map((row) => this.redact(record(row)));
  }

  /** Commands past their expiry without an outcome; commands left queued for an online machine go out. */
  async expire(): Promise<number> {
    const stuck = await this.db.query<Row>(
      `SELECT ${COLUMNS.split(', ').map((c) => 'c.' + c).join(', ')} FROM commands c JOIN machine_state s ON s.machine_id = c.machine_id
       WHERE c.status = 'queued' AND s.online AND c.created_at < now() - interval '2 seconds' AND c.expires_at > now() ORDER BY c.machine_id, c.n LIMIT 100`,
    );
    for (const r of stuck.rows) await this.send(record(r));
    // An update the machine took (running) does not expire: its reports end it.
    const s = await this.db.transaction(async (tx) => {
      const r = await tx.query<Row>(
        `UPDATE commands SET status = 'expired', updated_at = now() WHERE status IN ('queued', 'delivered') AND expires_at <= now() RETURNING ${COLUMNS}`,
      );
      const changed = r.rows.map(record);
      return { changed, withdrawn: await withdrawUnlessOutstanding(tx, finalUpdates(changed)), reported: [] };
    });
    if (s.changed.length > 0) this.settled(s);
    return s.changed.length;
  }

  /** Key material never leaves the gateway through its answers or logs. */
  private redact(c: CommandRecord): CommandRecord {
    if (c.type !== 'rotate-key' || c.args['key'] === undefined) return c;
    return { ...c, args: { ...c.args, key: '(secret)' } };
  }
}

/** The final update commands among these: the (machine, image) offers they held. */
function finalUpdates(list: readonly CommandRecord[]): { machine: string; sha256: string }[] {
  return list.filter((c) => c.type === 'update' && !OPEN_STATUSES.includes(c.status) && typeof c.args['sha256'] === 'string').map((c) => ({ machine: c.machine, sha256: c.args['sha256'] as string }));
}
