/**
 * Takes remote commands from the uplink: checks the signature, the machine,
 * the number (each applied once, replays refused) and the expiry, applies
 * the command through the journal (journal before effect, as everywhere),
 * and records what became of it. The record travels to the gateway as an
 * event, so the outcome reaches the fleet exactly once, power cuts included.
 *
 * Turned-away commands are journaled too, but at most a few a minute (the
 * rest counted): a flood of forgeries cannot fill the flash.
 */
import type { WallClock } from '../board.js';
import { fromHex, HmacSha256, sameBytes } from '../crypto/hmac.js';
import type { Journal } from '../journal/journal.js';
import type { Ledger } from '../journal/ledger.js';
import { decodeUtf8 } from '../text/utf8.js';
import type { UpdateArgs } from '../update/updater.js';
import { parseVersion } from '../update/version.js';
import { intArg, MAX_COMMAND_BYTES, parseBody, parseEnvelope, type CommandBody } from './command.js';
import {
  CMD_AUDIT,
  CMD_LOCK,
  CMD_REBOOT,
  CMD_REPORT,
  CMD_RESTOCK,
  CMD_ROTATE_KEY,
  CMD_SET_CONFIG,
  CMD_SET_PRICES,
  CMD_UNKNOWN,
  CMD_UNLOCK,
  CMD_UPDATE,
  CMD_VEND,
  OUT_APPLIED,
  OUT_REFUSED,
  OUT_STALE,
  OUT_UNSUPPORTED,
  REFUSED_BAD_ARGS,
  REFUSED_UNKNOWN_SLOT,
  REJ_BAD_SIGNATURE,
  REJ_EXPIRED,
  REJ_MALFORMED,
  REJ_OVERSIZED,
  REJ_REPLAY,
  REJ_UNKNOWN_KEY,
  REJ_WRONG_MACHINE,
  SET_CHANGE_POLICY,
  SET_DROP_TIMEOUT,
  SET_SESSION_TIMEOUT,
  SET_TELEMETRY_INTERVAL,
} from './vocabulary.js';
import { wallSeconds } from './wall.js';

/** What the commander needs from the rest of the machine. */
export interface CommandTarget {
  readonly journal: Journal;
  readonly ledger: Ledger;
  readonly codes: readonly string[];
  readonly maxQuantity: number;
  /** The board's calendar clock, where it has one. */
  readonly wallClock?: WallClock | undefined;
  /** Prices, stock, the lock or settings changed: bring the machine up to date. */
  commandApplied(): void;
  /** Start a vend paid elsewhere; 0 when it started (the target records the outcome), else a REFUSED_* reason. */
  remoteVend(n: number, issued: number, slot: number, quantity: number, price: number): number;
  /** Send a full state report now. */
  report(): void;
  /** The machine can send its EVA-DTS audit data. */
  readonly canAudit: boolean;
  /** Read the audit data (journaling the read) and send it; returns the read number. `issued`: the command's time. */
  audit(issued: number): number;
  /** The board can restart the firmware. */
  readonly canReboot: boolean;
  /** Restart the firmware (called after the outcome is on flash). */
  reboot(): void;
  /** Take an `update` command (journaling its start): 0 when under way, else a REFUSED_* reason. */
  update(n: number, args: UpdateArgs): number;
}

export interface CommandStats {
  received: number;
  applied: number;
  rejected: number;
  /** Rejections counted but not journaled (rate limit). */
  suppressed: number;
  lastRejection: string;
}

/** Journaled rejections: a burst of this many, then one a minute. */
const REJECT_BURST = 8;
const REJECT_REFILL_S = 60;

export class Commander {
  readonly stats: CommandStats = { received: 0, applied: 0, rejected: 0, suppressed: 0, lastRejection: '' };
  private readonly target: CommandTarget;
  private readonly machineId: string;
  private readonly configKid: number;
  private readonly configMac: HmacSha256 | undefined;
  private journaledMac: HmacSha256 | undefined;
  private journaledKid = 0;
  private readonly mac = new Uint8Array(32);
  private readonly expected = new Uint8Array(32);
  private tokens = REJECT_BURST;
  private tokensAt = 0;
  private unrecorded = 0;

  constructor(target: CommandTarget, machineId: string, key: { kid: number; key: Uint8Array } | undefined) {
    this.target = target;
    this.machineId = machineId;
    this.configKid = key?.kid ?? 0;
    this.configMac = key ? new HmacSha256(key.key) : undefined;
  }

  /** The key commands must be signed with: a rotated one from the journal, else the provisioned one. */
  private keyFor(kid: number): HmacSha256 | undefined {
    const ledger = this.target.ledger;
    if (ledger.keyId !== 0) {
      if (kid !== ledger.keyId) return undefined;
      if (this.journaledKid !== ledger.keyId || !this.journaledMac) {
        this.journaledMac = new HmacSha256(ledger.key);
        this.journaledKid = ledger.keyId;
      }
      return this.journaledMac;
    }
    return kid === this.configKid ? this.configMac : undefined;
  }

  /** Unix seconds as far as the machine can vouch for them, 0 when it cannot tell (wall.ts). */
  wallNow(): number {
    const l = this.target.ledger;
    return wallSeconds(this.target.wallClock?.now(), l.wallFloor, l.wallOffset > 0 ? this.target.journal.now() + l.wallOffset : 0);
  }

  /** A message arrived on the commands topic. */
  receive(payload: Uint8Array): void {
    this.stats.received++;
    if (payload.length > MAX_COMMAND_BYTES) return this.reject(0, REJ_OVERSIZED, `${payload.length} bytes`);
    const env = parseEnvelope(payload);
    if (!env) return this.reject(0, REJ_MALFORMED, 'no VF1 header line');
    const mac = this.keyFor(env.kid);
    if (!mac) return this.reject(0, REJ_UNKNOWN_KEY, `key ${env.kid}`);
    const claimed = fromHex(env.signature, this.expected);
    mac.sign(payload, this.mac, env.bodyStart, payload.length);
    if (!claimed || !sameBytes(claimed, this.mac)) return this.reject(0, REJ_BAD_SIGNATURE, `key ${env.kid}`);
    const body = parseBody(decodeUtf8(payload.buffer.slice(payload.byteOffset + env.bodyStart, payload.byteOffset + payload.length) as ArrayBuffer));
    if (typeof body === 'string') return this.reject(0, REJ_MALFORMED, body);
    if (body.machine !== this.machineId) return this.reject(body.n, REJ_WRONG_MACHINE, body.machine);
    const ledger = this.target.ledger;
    if (ledger.commandKnown(body.n) || ledger.remoteOpen === body.n) return this.reject(body.n, REJ_REPLAY, `command ${body.n}`);
    const now = this.wallNow();
    if (now > 0 && body.expires < now) return this.reject(body.n, REJ_EXPIRED, `command ${body.n} expired ${now - body.expires} s ago`);
    if (this.target.journal.stopped) {
      // No room to record it: not applied and not answered, so the gateway sends it again later.
      this.stats.rejected++;
      this.stats.lastRejection = 'journal full';
      return;
    }
    this.apply(body);
  }

  private apply(c: CommandBody): void {
    const t = this.target;
    const j = t.journal;
    const done = (outcome: number, value = 0): void => {
      j.command(c.n, c.issued, c.type, outcome, value);
      if (outcome === OUT_APPLIED) this.stats.applied++;
      t.commandApplied();
    };
    switch (c.type) {
      case CMD_SET_PRICES:
        return this.setPrices(c, done);
      case CMD_RESTOCK:
        return this.restock(c, done);
      case CMD_LOCK:
      case CMD_UNLOCK: {
        if (c.n <= t.ledger.lockVersion) return done(OUT_STALE);
        j.lock(c.type === CMD_LOCK, c.n);
        return done(OUT_APPLIED);
      }
      case CMD_SET_CONFIG:
        return this.setConfig(c, done);
      case CMD_REPORT:
        done(OUT_APPLIED);
        t.report();
        return;
      case CMD_REBOOT:
        if (!t.canReboot) return done(OUT_UNSUPPORTED);
        done(OUT_APPLIED);
        t.reboot();
        return;
      case CMD_VEND: {
        const slot = typeof c.args['slot'] === 'string' ? t.codes.indexOf(c.args['slot']) : -1;
        if (slot < 0) return done(OUT_REFUSED, REFUSED_UNKNOWN_SLOT);
        const quantity = intArg(c.args['quantity'] ?? 1, 1, t.maxQuantity);
        const price = intArg(c.args['price'] ?? t.ledger.prices[slot], 0, 1000000);
        if (quantity === undefined || price === undefined) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
        const refused = t.remoteVend(c.n, c.issued, slot, quantity, price);
        if (refused !== 0) done(OUT_REFUSED, refused);
        return;
      }
      case CMD_ROTATE_KEY: {
        const kid = intArg(c.args['kid'], 1, 255);
        const key = typeof c.args['key'] === 'string' ? fromHex(c.args['key']) : undefined;
        if (kid === undefined || !key || key.length !== 32) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
        // The key is journaled (meta: it never leaves the machine) before the outcome, so
        // the gateway learns of the rotation only once the new key is on flash.
        j.key(kid, key);
        return done(OUT_APPLIED);
      }
      case CMD_UPDATE: {
        const a = c.args;
        const version = typeof a['version'] === 'string' ? parseVersion(a['version']) : -1;
        const size = intArg(a['size'], 1, 0x7fffffff);
        const sha256 = typeof a['sha256'] === 'string' && /^[0-9a-f]{64}$/.test(a['sha256']) ? fromHex(a['sha256']) : undefined;
        const journal = intArg(a['journal'], 0, 0xffff);
        const flag = (k: string): boolean | undefined => (a[k] === undefined ? false : typeof a[k] === 'boolean' ? a[k] : undefined);
        const downgrade = flag('downgrade');
        const force = flag('force');
        if (version < 0 || size === undefined || !sha256 || journal === undefined || (a['source'] ?? 'mqtt') !== 'mqtt' || downgrade === undefined || force === undefined) {
          return done(OUT_REFUSED, REFUSED_BAD_ARGS);
        }
        const refused = t.update(c.n, { version, size, sha256, journal, downgrade, force });
        return refused === 0 ? done(OUT_APPLIED) : done(OUT_REFUSED, refused);
      }
      case CMD_AUDIT: {
        if (!t.canAudit) return done(OUT_UNSUPPORTED);
        return done(OUT_APPLIED, t.audit(c.issued));
      }
      case CMD_UNKNOWN:
      default:
        return done(OUT_UNSUPPORTED);
    }
  }

  /** `{ prices: { "A1": 125, ... } }`: all or nothing; slots already set by a newer command keep theirs. */
  private setPrices(c: CommandBody, done: (outcome: number, value?: number) => void): void {
    const t = this.target;
    const prices = c.args['prices'];
    if (typeof prices !== 'object' || prices === null || Array.isArray(prices)) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
    const entries = Object.entries(prices as { [code: string]: unknown });
    if (entries.length === 0 || entries.length > t.codes.length) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
    const slots: number[] = [];
    const values: number[] = [];
    for (const [code, v] of entries) {
      const slot = t.codes.indexOf(code);
      if (slot < 0) return done(OUT_REFUSED, REFUSED_UNKNOWN_SLOT);
      const price = intArg(v, 1, 1000000);
      if (price === undefined) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
      slots.push(slot);
      values.push(price);
    }
    let changed = 0;
    for (let i = 0; i < slots.length; i++) {
      if (c.n <= t.ledger.slotVersion[slots[i]!]!) continue;
      t.journal.price(slots[i]!, values[i]!, c.n);
      changed++;
    }
    done(changed > 0 ? OUT_APPLIED : OUT_STALE, changed);
  }

  /** `{ slots: { "A1": { qty, capacity?, price?, sku? } } }`: what an operator loaded, slot by slot. */
  private restock(c: CommandBody, done: (outcome: number, value?: number) => void): void {
    const t = this.target;
    const l = t.ledger;
    const slotsIn = c.args['slots'];
    if (typeof slotsIn !== 'object' || slotsIn === null || Array.isArray(slotsIn)) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
    const entries = Object.entries(slotsIn as { [code: string]: unknown });
    if (entries.length === 0 || entries.length > t.codes.length) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
    const plan: number[] = [];
    for (const [code, v] of entries) {
      const slot = t.codes.indexOf(code);
      if (slot < 0) return done(OUT_REFUSED, REFUSED_UNKNOWN_SLOT);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
      const s = v as { [key: string]: unknown };
      const capacity = intArg(s['capacity'] ?? l.capacity[slot], 1, 999);
      const qty = capacity === undefined ? undefined : intArg(s['qty'], 0, capacity);
      const price = intArg(s['price'] ?? l.prices[slot], 1, 1000000);
      const sku = intArg(s['sku'] ?? l.sku[slot], 0, 0xffffffff);
      if (capacity === undefined || qty === undefined || price === undefined || sku === undefined) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
      plan.push(slot, price, qty, capacity, sku);
    }
    let changed = 0;
    for (let i = 0; i < plan.length; i += 5) {
      if (c.n <= l.slotVersion[plan[i]!]!) continue;
      t.journal.planogram(plan[i]!, plan[i + 1]!, plan[i + 2]!, plan[i + 3]!, plan[i + 4]!, c.n);
      changed++;
    }
    done(changed > 0 ? OUT_APPLIED : OUT_STALE, changed);
  }

  /** `{ telemetryIntervalMs?, sessionTimeoutMs?, dropTimeoutMs?, changePolicy? }`, bounded as in the configuration. */
  private setConfig(c: CommandBody, done: (outcome: number, value?: number) => void): void {
    const a = c.args;
    const wanted: number[] = [];
    const bounded = (name: string, key: number, min: number, max: number): boolean => {
      if (a[name] === undefined) return true;
      const v = intArg(a[name], min, max);
      if (v === undefined) return false;
      wanted.push(key, v);
      return true;
    };
    if (!bounded('telemetryIntervalMs', SET_TELEMETRY_INTERVAL, 10000, 86400000) || !bounded('sessionTimeoutMs', SET_SESSION_TIMEOUT, 5000, 600000) || !bounded('dropTimeoutMs', SET_DROP_TIMEOUT, 1000, 30000)) {
      return done(OUT_REFUSED, REFUSED_BAD_ARGS);
    }
    if (a['changePolicy'] !== undefined) {
      if (a['changePolicy'] !== 'refuse' && a['changePolicy'] !== 'overpay') return done(OUT_REFUSED, REFUSED_BAD_ARGS);
      wanted.push(SET_CHANGE_POLICY, a['changePolicy'] === 'overpay' ? 2 : 1);
    }
    for (const k of Object.keys(a)) {
      if (k !== 'telemetryIntervalMs' && k !== 'sessionTimeoutMs' && k !== 'dropTimeoutMs' && k !== 'changePolicy') return done(OUT_REFUSED, REFUSED_BAD_ARGS);
    }
    if (wanted.length === 0) return done(OUT_REFUSED, REFUSED_BAD_ARGS);
    const l = this.target.ledger;
    let changed = 0;
    for (let i = 0; i < wanted.length; i += 2) {
      if (c.n <= l.settingVersion[wanted[i]!]!) continue;
      this.target.journal.setting(wanted[i]!, wanted[i + 1]!, c.n);
      changed++;
    }
    done(changed > 0 ? OUT_APPLIED : OUT_STALE, changed);
  }

  private reject(n: number, reason: number, detail: string): void {
    this.stats.rejected++;
    this.stats.lastRejection = detail;
    const j = this.target.journal;
    const now = j.now();
    const earned = Math.floor((now - this.tokensAt) / REJECT_REFILL_S);
    if (earned > 0) {
      this.tokens = Math.min(REJECT_BURST, this.tokens + earned);
      this.tokensAt = now;
    }
    if (this.tokens === 0 || j.level !== 'ok') {
      this.unrecorded++;
      this.stats.suppressed++;
      return;
    }
    this.tokens--;
    j.commandRejected(n, reason, this.unrecorded);
    this.unrecorded = 0;
  }
}
