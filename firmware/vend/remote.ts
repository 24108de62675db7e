/**
 * What remote commands do to the machine (the commander's CommandTarget):
 * a remote vend (paid elsewhere) dispensed item by item, settings that win
 * over the configuration's, the EVA-DTS audit read, a state report and a
 * reboot. The commander (signature, numbering, expiry, journaling of the
 * outcome) is built here, around this target.
 *
 * A remote vend only starts on an idle machine, takes the chute until it
 * ends, and is never dispensed again after a power cut: recovery records it
 * interrupted with what was delivered (recovery.ts).
 */
import type { Board, WallClock } from '../board.js';
import { Commander, type CommandTarget } from '../command/commander.js';
import {
  CMD_VEND,
  OUT_APPLIED,
  OUT_FAILED,
  REFUSED_BUSY,
  REFUSED_LOCKED,
  REFUSED_OUT_OF_SERVICE,
  REFUSED_SOLD_OUT,
  REFUSED_STORAGE_FULL,
  SET_CHANGE_POLICY,
  SET_DROP_TIMEOUT,
  SET_SESSION_TIMEOUT,
  SET_TELEMETRY_INTERVAL,
} from '../command/vocabulary.js';
import type { MachineConfig } from '../config.js';
import { buildAudit } from '../dex/audit.js';
import { DISPENSE_OK, type DispenseResult, type Dispenser, type DispenserOptions } from '../dispense/dispenser.js';
import type { Journal } from '../journal/journal.js';
import type { Ledger } from '../journal/ledger.js';
import type { BillValidator } from '../mdb/bill.js';
import type { CashlessReader } from '../mdb/cashless.js';
import type { CoinChanger } from '../mdb/changer.js';
import { readerPrices } from './card.js';
import type { Sale } from './controller.js';
import { SLOT_OK, SLOT_OUT_OF_SERVICE, type Inventory } from './inventory.js';
import type { Panel } from './panel.js';
import type { PayoutSession } from './payout.js';
import type { VendOptions } from './ports.js';
import type { UpdateArgs, Updater } from '../update/updater.js';

export interface RemoteActionsOptions {
  sale: Sale;
  board: Board;
  config: MachineConfig;
  inventory: Inventory;
  ledger: Ledger;
  journal: Journal;
  dispenser: Dispenser;
  panel: Panel;
  payouts: PayoutSession;
  changer: CoinChanger;
  bill: BillValidator;
  reader: CashlessReader | undefined;
  /** The options the state machine and the dispenser decide with: settings from commands are written into them. */
  vendOptions: VendOptions;
  dispenserOptions: DispenserOptions;
  /** Firmware updates (update/updater.ts). */
  updater: Updater;
  /** Firmware version, for the audit data. */
  firmware: string;
  /** A command asks for a full state report (the uplink sends telemetry). */
  onReport?: (() => void) | undefined;
  /** Each audit read's EVA-DTS file (the uplink sends it); without it the machine cannot be audited remotely. */
  onAudit?: ((read: number, file: Uint8Array) => void) | undefined;
}

/** A remote vend under way. */
interface RemoteVend {
  n: number;
  issued: number;
  slot: number;
  quantity: number;
  price: number;
  done: number;
  failed: boolean;
}

export class RemoteActions implements CommandTarget {
  readonly journal: Journal;
  readonly ledger: Ledger;
  /** Takes the commands from the uplink. */
  readonly commander: Commander;
  // What the commander reads (CommandTarget): fields, fixed at boot (a getter would cost heap slots of code).
  readonly codes: readonly string[];
  readonly maxQuantity: number;
  readonly canReboot: boolean;
  readonly wallClock: WallClock | undefined;
  readonly canAudit: boolean;
  private readonly sale: Sale;
  private readonly board: Board;
  private readonly config: MachineConfig;
  private readonly inventory: Inventory;
  private readonly dispenser: Dispenser;
  private readonly panel: Panel;
  private readonly payouts: PayoutSession;
  private readonly changer: CoinChanger;
  private readonly bill: BillValidator;
  private readonly reader: CashlessReader | undefined;
  private readonly vendOptions: VendOptions;
  private readonly dispenserOptions: DispenserOptions;
  private readonly firmware: string;
  private readonly updater: Updater;
  private readonly onReport: (() => void) | undefined;
  private readonly onAudit: ((read: number, file: Uint8Array) => void) | undefined;
  private remote: RemoteVend | undefined;

  constructor(options: RemoteActionsOptions) {
    this.sale = options.sale;
    this.board = options.board;
    this.config = options.config;
    this.inventory = options.inventory;
    this.ledger = options.ledger;
    this.journal = options.journal;
    this.dispenser = options.dispenser;
    this.panel = options.panel;
    this.payouts = options.payouts;
    this.changer = options.changer;
    this.bill = options.bill;
    this.reader = options.reader;
    this.vendOptions = options.vendOptions;
    this.dispenserOptions = options.dispenserOptions;
    this.firmware = options.firmware;
    this.updater = options.updater;
    this.onReport = options.onReport;
    this.onAudit = options.onAudit;
    this.codes = options.inventory.codes;
    this.maxQuantity = options.config.maxQuantity;
    this.canReboot = options.board.restart !== undefined;
    this.wallClock = options.board.wallClock;
    this.canAudit = options.onAudit !== undefined;
    this.commander = new Commander(this, options.config.machineId, options.config.commandKey);
    this.applySettings();
  }

  /** A remote vend has the chute. */
  get vending(): boolean {
    return this.remote !== undefined;
  }

  reboot(): void {
    // From a timer: the command's outcome is on flash and the caller unwinds first.
    this.board.timers.set(() => this.board.restart?.(), 0);
  }

  report(): void {
    this.onReport?.();
  }

  update(n: number, args: UpdateArgs): number {
    return this.updater.update(n, args);
  }

  /** The EVA-DTS file as of now (ASCII bytes); reading it through `audit` also clears the interim counters. */
  auditFile(read = this.ledger.auditReads + 1, wall = this.commander.wallNow()): Uint8Array {
    const changer = this.changer;
    const bill = this.bill;
    return buildAudit({
      ledger: this.ledger,
      machineId: this.config.machineId,
      firmware: this.firmware,
      currency: this.config.currency,
      decimals: this.config.decimals,
      codes: this.inventory.codes,
      products: this.inventory.products,
      coinValues: changer.values,
      tubeTypes: changer.setup.routable,
      billValidator: bill.ready,
      ...(changer.identity.known ? { changerId: changer.identity } : {}),
      ...(bill.identity.known ? { billId: bill.identity } : {}),
      ...(this.reader ? { cashless: this.reader.identity } : {}),
      read,
      wall,
    });
  }

  audit(issued: number): number {
    const read = this.ledger.auditReads + 1;
    const wall = Math.max(this.commander.wallNow(), issued);
    const file = this.auditFile(read, wall);
    // Journaled before it leaves: the read (and the cleared interim counters) survive a power cut.
    this.journal.auditRead(read, wall);
    this.onAudit?.(read, file);
    return read;
  }

  commandApplied(): void {
    this.applySettings();
    if (this.reader) readerPrices(this.reader, this.inventory);
    this.payouts.tubesChanged();
    this.sale.changed();
  }

  /** Telemetry interval in force, ms (a command may have changed the configured one). */
  telemetryIntervalMs(): number {
    return this.ledger.settings[SET_TELEMETRY_INTERVAL] || (this.config.uplink?.telemetryIntervalMs ?? 300000);
  }

  /** Settings from commands win over the configuration's. */
  private applySettings(): void {
    const set = this.ledger.settings;
    const config = this.config;
    this.vendOptions.sessionTimeoutMs = set[SET_SESSION_TIMEOUT] || config.sessionTimeoutMs;
    this.dispenserOptions.dropTimeoutMs = set[SET_DROP_TIMEOUT] || config.dropTimeoutMs;
    const policy = set[SET_CHANGE_POLICY];
    this.vendOptions.policy = policy === 2 ? 'overpay' : policy === 1 ? 'refuse' : config.changePolicy;
  }

  remoteVend(n: number, issued: number, slot: number, quantity: number, price: number): number {
    if (this.ledger.locked) return REFUSED_LOCKED;
    if (this.journal.stopped) return REFUSED_STORAGE_FULL;
    const sale = this.sale;
    const m = sale.machine;
    // Only an idle machine: a customer at the panel, or money held, comes first.
    if (this.remote || m.state !== 'IDLE' || m.credit !== 0 || m.escrow !== 0 || sale.busy) return REFUSED_BUSY;
    const a = this.inventory.availability(slot, quantity);
    if (a === SLOT_OUT_OF_SERVICE) return REFUSED_OUT_OF_SERVICE;
    if (a !== SLOT_OK) return REFUSED_SOLD_OUT;
    this.remote = { n, issued, slot, quantity, price, done: 0, failed: false };
    this.panel.showRemote(slot);
    this.journal.remoteVend(n, slot, quantity, price);
    sale.changed();
    this.board.timers.set(() => this.next(), 0);
    return 0;
  }

  /** Dispense the next item of the remote vend, or record its outcome. */
  private next(): void {
    const r = this.remote;
    if (!r) return;
    if (!r.failed && r.done < r.quantity && this.inventory.availability(r.slot, 1) === SLOT_OK) {
      this.journal.vendStart(r.slot, r.price);
      this.dispenser.vend(r.slot, (result: DispenseResult) => {
        // Recorded the moment the sensor decides, as for a cash sale.
        if (result === DISPENSE_OK) {
          this.journal.vendOk(r.slot, r.price);
          r.done++;
        } else {
          this.journal.vendFailed(r.slot, result);
          this.sale.slotFailed(r.slot, result);
          r.failed = true;
        }
        this.board.timers.set(() => this.next(), 0);
      });
      this.panel.render();
      return;
    }
    this.journal.command(r.n, r.issued, CMD_VEND, r.done < r.quantity ? OUT_FAILED : OUT_APPLIED, r.done, this.inventory.qty[r.slot]!);
    this.remote = undefined;
    this.panel.showRemote(-1);
    this.sale.changed();
  }
}
