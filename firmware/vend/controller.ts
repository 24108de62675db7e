/**
 * Wires the purchase state machine to the hardware: MDB changer, bill
 * validator and cashless reader, spiral motors and drop sensor, selection
 * panel and display.
 * Hardware answers reach the state machine asynchronously (never from inside
 * one of its own calls), so its decisions are never re-entered.
 */
import type { Board, DigitalOutput, TemperatureSensor, TimerId, WallClock } from '../board.js';
import type { MachineConfig } from '../config.js';
import { DISPENSE_OK, Dispenser, type DispenseResult } from '../dispense/dispenser.js';
import { Journal, type JournalStatus } from '../journal/journal.js';
import {
  C_BILLS_RETURNED,
  C_BILLS_VALUE,
  C_BOOTS,
  C_CASHLESS_SALES,
  C_CASHLESS_UNREFUNDED,
  C_CASHLESS_VALUE,
  CARD_VEND_APPROVED,
  CARD_VEND_DELIVERED,
  CARD_VEND_FAILED,
  CARD_VEND_UNCERTAIN,
  C_COINS_CASHBOX,
  C_COINS_TUBES,
  C_FAILED_VENDS,
  C_MANUAL_VALUE,
  C_PAID_COUNT,
  C_PAID_VALUE,
  C_COMMANDS_REJECTED,
  C_REMOTE_SALES,
  C_REMOTE_VALUE,
  C_REVENUE,
  C_SALES,
  C_UNCERTAIN_VENDS,
  Ledger,
  layoutHash,
} from '../journal/ledger.js';
import {
  CARD_NOT_DISPENSED,
  CARD_OUTCOMES,
  CARD_REFUNDED,
  CARD_SOLD_RESET,
  CARD_SUCCESS,
  CARD_UNCERTAIN,
  CARD_UNREFUNDED,
  R_VEND_FAIL,
  R_VEND_OK,
} from '../journal/records.js';
import type { UplinkStatus } from '../uplink/uplink.js';
import { BillValidator, type BillCallbacks } from '../mdb/bill.js';
import { MdbBus } from '../mdb/bus.js';
import { CashlessReader, type CashlessCallbacks } from '../mdb/cashless.js';
import { CoinChanger, ROUTE_TUBES, type ChangerCallbacks } from '../mdb/changer.js';
import { WordLink, type LinkStats } from '../mdb/link.js';
import { ChangeMaker } from '../money/change.js';
import { Commander, type CommandStats, type CommandTarget } from '../command/commander.js';
import {
  CMD_VEND,
  OUT_APPLIED,
  OUT_FAILED,
  OUT_INTERRUPTED,
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
import { Inventory, SLOT_OK, SLOT_OUT_OF_SERVICE } from './inventory.js';
import type { DispenserOptions } from '../dispense/dispenser.js';
import type { VendOptions } from './machine.js';
import { VendMachine, type Notice, type VendPorts, type VendState } from './machine.js';
import { fit, noticeLines, stateLines } from './screen.js';
import { buildAudit } from '../dex/audit.js';

/**
 * Give up waiting for an absent changer: before a round, keep the money as
 * credit; with a round in flight, hold the credit out of service until the
 * changer is back to say what it paid.
 */
const PAYOUT_WAIT_MS = 60000;
const PAYOUT_ROUNDS = 3;

export interface SlotStatus {
  code: string;
  product: string;
  price: number;
  qty: number;
  capacity: number;
  outOfService: boolean;
}

export interface TubeStatus {
  type: number;
  value: number;
  /** As the changer last reported. */
  count: number;
  /** As the journal has it (what a reboot starts from). */
  journaled: number;
}

export interface FirmwareStatus {
  state: VendState;
  credit: number;
  escrow: number;
  selection: string | null;
  quantity: number;
  /** Something is under way that the customer must wait for. */
  busy: boolean;
  ready: boolean;
  slots: SlotStatus[];
  tubes: TubeStatus[];
  counters: {
    sales: number;
    revenue: number;
    coinsToTubes: number;
    coinsToCashbox: number;
    billsStacked: number;
    coinsPaidOut: number;
    coinsPaidOutCount: number;
    billsReturned: number;
    failedVends: number;
    /** Vends cut short by a power failure whose outcome could not be known (not charged). */
    uncertainVends: number;
    /** Sales paid by card (not in `sales`/`revenue`, which are cash), and their value. */
    cashlessSales: number;
    cashlessRevenue: number;
    /** Value the card reader may have charged with no product delivered (for the operator to refund). */
    cashlessUnrefunded: number;
    coinsManual: number;
    boots: number;
    ignoredEvents: number;
  };
  journal: JournalStatus;
  /** Sales locked by a remote command. */
  locked: boolean;
  commands: CommandStats;
  remoteSales: number;
  /** Present when the machine has an uplink. */
  uplink?: UplinkStatus;
  display: string[];
  /** `cashless` only when a reader is fitted (configuration `cashless`). */
  devices: { changer: boolean; bill: boolean; cashless?: boolean };
  link: LinkStats;
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

export class Controller implements ChangerCallbacks, BillCallbacks, CashlessCallbacks, VendPorts, CommandTarget {
  readonly config: MachineConfig;
  readonly inventory: Inventory;
  readonly machine: VendMachine;
  readonly ledger: Ledger;
  readonly journal: Journal;
  readonly changer: CoinChanger;
  readonly bill: BillValidator;
  /** The cashless reader, when one is fitted. */
  readonly reader: CashlessReader | undefined;
  /**
   * The reader session that approved the open card vend is still alive, so
   * VEND SUCCESS/FAILURE can be reported to it. Any reset, loss or end of
   * the session clears it: the reader has then settled on its own (a reset
   * after approval counts as a success there).
   */
  private cardLive = false;
  private readonly board: Board;
  private readonly link: WordLink;
  private readonly bus: MdbBus;
  private readonly dispenser: Dispenser;
  private changeMaker: ChangeMaker | undefined;
  private sessionTimer: TimerId | undefined;
  private noticeTimer: TimerId | undefined;
  private notice_: Notice | null = null;
  private noticeSlot = -1;
  private lines: string[] = [];
  private exactChangeOnly = false;
  private tubesDirty = true;
  private ignoredEvents = 0;
  private bootedAt: number;
  private payoutAsked = 0;
  private payoutPaid = 0;
  private payoutRounds = 0;
  private payoutWaiting: TimerId | undefined;
  private payoutActive = false;
  /** The changer went away with a round in flight and did not come back in time: the machine was handed back, the round settles when it returns. */
  private payoutOrphaned = false;
  private orphanTimer: TimerId | undefined;
  private readonly exactChangeLamp: DigitalOutput;
  private readonly outOfServiceLamp: DigitalOutput;
  private lamps = -1;
  readonly commander: Commander;
  private remote: RemoteVend | undefined;
  private readonly vendOptions: VendOptions;
  private readonly dispenserOptions: DispenserOptions;
  /** Called when a command asks for a full state report (the uplink sends telemetry). */
  onReport: (() => void) | undefined;
  /** Called when a payment device goes offline or comes back (the uplink sends telemetry soon). */
  onHealthChanged: (() => void) | undefined;
  private devicesNow = -1;
  /** Called with each audit read's EVA-DTS file (the uplink sends it). */
  onAudit: ((read: number, file: Uint8Array) => void) | undefined;
  /** Firmware version for the audit data (set by main). */
  firmware = '';

  constructor(board: Board, config: MachineConfig) {
    this.board = board;
    this.config = config;
    this.bootedAt = board.clock.now();
    this.inventory = new Inventory(config.slots);
    const inv = this.inventory;
    this.ledger = new Ledger(inv.qty, inv.fault, layoutHash(inv.codes), { prices: inv.prices, capacity: inv.capacity, sku: inv.sku, cashless: config.cashless });
    this.journal = new Journal(board.openFlash('journal'), this.ledger, board.clock);
    this.vendOptions = { policy: config.changePolicy, sessionTimeoutMs: config.sessionTimeoutMs, maxCredit: config.maxCredit, maxQuantity: config.maxQuantity };
    this.dispenserOptions = { dropTimeoutMs: config.dropTimeoutMs, motorPercent: config.motorPercent };
    this.machine = new VendMachine(this.inventory, this.vendOptions, this);
    this.commander = new Commander(this, config.machineId, config.commandKey);
    this.recover();
    this.applySettings();
    this.exactChangeLamp = board.openIndicator('exact-change');
    this.outOfServiceLamp = board.openIndicator('out-of-service');
    this.dispenser = new Dispenser(board, this.dispenserOptions);
    const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string): void => board.log(level, message);
    const poll = config.pollIntervalMs;
    this.changer = new CoinChanger({
      decimals: config.decimals,
      timing: { pollIntervalMs: poll, nonResponseMs: 2000, resetIntervalMs: 10000, justResetWaitMs: 500 },
      log,
      changerReady: () => this.changerReady(),
      changerLost: () => this.changerLost(),
      coinDeposited: (type, value, routing) => this.coinDeposited(type, value, routing),
      coinRejected: (type) => this.coinRejected(type),
      coinsDispensedManually: (type, count, value) => this.coinsDispensedManually(type, count, value),
      changerStatus: (code) => this.changerStatus(code),
      coinReturnPressed: () => this.coinReturnPressed(),
      payoutStarting: (tubes) => this.payoutStarting(tubes),
    });
    this.bill = new BillValidator({
      decimals: config.decimals,
      timing: { pollIntervalMs: poll, nonResponseMs: 5000, resetIntervalMs: 10000, justResetWaitMs: 500 },
      log,
      billReady: () => this.billReady(),
      billLost: () => this.billLost(),
      billEscrowed: (type, value) => this.billEscrowed(type, value),
      billStacked: (type, value) => this.billStacked(type, value),
      billReturned: (type, value) => this.billReturned(type, value),
      billStatus: (code) => this.billStatus(code),
    });
    this.link = new WordLink({ serial: board.mdb, timers: board.timers });
    this.bus = new MdbBus(this.link, board.clock, board.timers);
    // Flash erases (tens of ms, cache off) happen between exchanges, so a record a peripheral's ACK waits for only writes.
    this.bus.onQuiet = () => {
      this.journal.prepare();
    };
    this.bus.add(this.changer);
    this.bus.add(this.bill);
    this.reader = config.cashless
      ? new CashlessReader({
          decimals: config.decimals,
          timing: { pollIntervalMs: poll, nonResponseMs: 5000, resetIntervalMs: 10000, justResetWaitMs: 500 },
          log,
          identity: { serial: config.machineId.slice(0, 12), version: 0x0100 },
          readerReady: () => this.readerReady(),
          readerLost: () => this.readerLost(),
          sessionBegan: (funds) => this.sessionBegan(funds),
          sessionCancelRequested: () => this.sessionCancelRequested(),
          vendApproved: (amount) => this.vendApproved(amount),
          vendDenied: () => this.vendDenied(),
          vendReported: (success) => this.vendReported(success),
          sessionEnded: () => this.sessionEnded(),
          readerCancelled: () => this.readerCancelled(),
          readerStatus: (code) => this.readerStatus(code),
        })
      : undefined;
    if (this.reader) {
      this.readerPrices();
      this.bus.add(this.reader);
    }
    board.openSelectionPanel({
      onSelect: (code, quantity) => this.select(code, quantity),
      onCancel: () => this.customer(() => this.machine.cancel()),
    });
    this.render();
  }

  stop(): void {
    this.bus.stop();
  }

  /** Rebuild the books from the journal and settle what the power cut left open. */
  private recover(): void {
    const board = this.board;
    const report = this.journal.open();
    const ledger = this.ledger;
    if (report.fresh) {
      board.log('info', 'journal: new, started from the configured stock');
    } else {
      const st = this.journal.status();
      board.log('info', `journal: ${report.records} records replayed from ${report.blocks} blocks, last event ${st.lastSeq}, credit ${ledger.credit}, ${st.unsynced} unsynced`);
      if (report.repaired > 0) board.log('warn', `journal: ${report.repaired} records with a flipped bit repaired`);
      if (report.corrupt > 0 || report.missing > 0) board.log('error', `journal: ${report.corrupt} damaged records skipped, ${report.missing} events missing`);
      if (ledger.credit < 0) {
        // Only damage can do this (a lost coin record): the customer cannot owe the machine.
        board.log('error', `journal: credit ${ledger.credit} after damage; set to 0`);
        this.journal.creditAdjust(-ledger.credit);
      }
      if (report.layoutChanged) board.log('warn', 'journal: the slot layout changed; stock taken from the configuration, money carried over');
    }
    if (ledger.openVend >= 0) {
      const slot = ledger.openVend;
      const code = this.inventory.codes[slot] ?? String(slot);
      // The first byte of a torn outcome record still says which outcome it was.
      if (report.tornType === R_VEND_OK) {
        this.journal.vendOk(slot, ledger.openVendPrice);
        board.log('warn', `journal: vend of ${code} was confirmed as the power failed; recorded as sold`);
      } else if (report.tornType === R_VEND_FAIL) {
        this.journal.vendFailed(slot, 1);
        board.log('warn', `journal: vend of ${code} had failed as the power failed; slot out of service`);
      } else {
        this.journal.vendUncertain(slot);
        board.log('warn', `journal: vend of ${code} was under way when the power failed; not charged, check the slot`);
      }
    }
    this.recoverCard();
    if (ledger.remoteOpen !== 0) {
      // Never dispense again for it: the gateway learns how many went out before the power failed.
      board.log('warn', `journal: remote vend (command ${ledger.remoteOpen}) interrupted after ${ledger.remoteDone} of ${ledger.remoteQty}`);
      this.journal.command(ledger.remoteOpen, 0, CMD_VEND, OUT_INTERRUPTED, ledger.remoteDone, this.inventory.qty[ledger.remoteSlot] ?? 0);
    }
    this.recoveringPayout = ledger.openPayout > 0;
    this.machine.restoreCredit(ledger.credit);
  }

  /**
   * A card vend the power cut left open. Approved with no dispense outcome:
   * never dispensed again; the reader (reset by the cut) counts it as a
   * success, so it is recorded for the operator to refund. Delivered or
   * failed but not yet reported: settled when the reader is back (it has
   * reset, so a delivered vend is sold and a failed one could not be
   * refunded), or now if the machine no longer has a reader.
   */
  private recoverCard(): void {
    const l = this.ledger;
    const code = this.inventory.codes[l.cardSlot] ?? String(l.cardSlot);
    if (l.cardVend === CARD_VEND_UNCERTAIN) {
      this.journal.cardResult(CARD_UNCERTAIN, l.cardSlot, l.cardAmount);
      this.board.log('warn', `journal: card vend of ${code} (${l.cardAmount}) was under way when the power failed; the card counts it as paid, check the slot`);
    } else if (l.cardVend === CARD_VEND_APPROVED) {
      this.journal.cardResult(CARD_NOT_DISPENSED, l.cardSlot, l.cardAmount);
      this.board.log('warn', `journal: card vend of ${code} (${l.cardAmount}) was approved but not started when the power failed; refund owed`);
    } else if ((l.cardVend === CARD_VEND_DELIVERED || l.cardVend === CARD_VEND_FAILED) && !this.config.cashless) {
      this.settleCard();
    }
  }

  // ---- remote commands (CommandTarget) --------------------------------------------------------

  get codes(): readonly string[] {
    return this.inventory.codes;
  }

  get maxQuantity(): number {
    return this.config.maxQuantity;
  }

  get canReboot(): boolean {
    return this.board.restart !== undefined;
  }

  reboot(): void {
    // From a timer: the command's outcome is on flash and the caller unwinds first.
    this.later(() => this.board.restart?.());
  }

  report(): void {
    this.onReport?.();
  }

  get wallClock(): WallClock | undefined {
    return this.board.wallClock;
  }

  get canAudit(): boolean {
    return this.onAudit !== undefined;
  }

  /** The EVA-DTS file as of now (ASCII bytes); reading it through `audit` also clears the interim counters. */
  auditFile(read = this.ledger.auditReads + 1, wall = this.commander.wallNow()): Uint8Array {
    return buildAudit({
      ledger: this.ledger,
      machineId: this.config.machineId,
      firmware: this.firmware,
      currency: this.config.currency,
      decimals: this.config.decimals,
      codes: this.inventory.codes,
      products: this.inventory.products,
      coinValues: this.changer.values,
      tubeTypes: this.changer.setup.routable,
      billValidator: this.bill.ready,
      ...(this.changer.identity.known ? { changerId: this.changer.identity } : {}),
      ...(this.bill.identity.known ? { billId: this.bill.identity } : {}),
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
    this.readerPrices();
    this.tubesDirty = true;
    this.changed();
  }

  /** Telemetry interval in force, ms (a command may have changed the configured one). */
  telemetryIntervalMs(): number {
    return this.ledger.settings[SET_TELEMETRY_INTERVAL] || (this.config.uplink?.telemetryIntervalMs ?? 300000);
  }

  /** Settings from commands win over the configuration's. */
  private applySettings(): void {
    const set = this.ledger.settings;
    this.vendOptions.sessionTimeoutMs = set[SET_SESSION_TIMEOUT] || this.config.sessionTimeoutMs;
    this.dispenserOptions.dropTimeoutMs = set[SET_DROP_TIMEOUT] || this.config.dropTimeoutMs;
    const policy = set[SET_CHANGE_POLICY];
    this.vendOptions.policy = policy === 2 ? 'overpay' : policy === 1 ? 'refuse' : this.config.changePolicy;
  }

  remoteVend(n: number, issued: number, slot: number, quantity: number, price: number): number {
    if (this.ledger.locked) return REFUSED_LOCKED;
    if (this.journal.level === 'full') return REFUSED_STORAGE_FULL;
    const m = this.machine;
    // Only an idle machine: a customer at the panel, or money held, comes first.
    if (this.remote || m.state !== 'IDLE' || m.credit !== 0 || m.escrow !== 0 || this.status().busy) return REFUSED_BUSY;
    const a = this.inventory.availability(slot, quantity);
    if (a === SLOT_OUT_OF_SERVICE) return REFUSED_OUT_OF_SERVICE;
    if (a !== SLOT_OK) return REFUSED_SOLD_OUT;
    this.remote = { n, issued, slot, quantity, price, done: 0, failed: false };
    this.journal.remoteVend(n, slot, quantity, price);
    this.changed();
    this.later(() => this.remoteNext());
    return 0;
  }

  /** Dispense the next item of the remote vend, or record its outcome. */
  private remoteNext(): void {
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
          this.slotFailed(r.slot, result);
          r.failed = true;
        }
        this.later(() => this.remoteNext());
      });
      this.render();
      return;
    }
    this.journal.command(r.n, r.issued, CMD_VEND, r.done < r.quantity ? OUT_FAILED : OUT_APPLIED, r.done, this.inventory.qty[r.slot]!);
    this.remote = undefined;
    this.changed();
  }

  private recoveringPayout = false;
  private readyNow = false;

  private select(code: string, quantity: number): void {
    // A remote vend is using the chute: the panel waits.
    if (this.remote) return;
    this.customer(() => this.machine.select(this.inventory.indexOf(code), quantity));
  }

  /** A customer's action replaces whatever message was showing; the display is redrawn once. */
  private customer(action: () => void): void {
    if (this.notice_ !== null) {
      this.notice_ = null;
      if (this.noticeTimer !== undefined) this.board.timers.clear(this.noticeTimer);
      this.noticeTimer = undefined;
    }
    action();
    this.render();
  }

  private later(fn: () => void): void {
    this.board.timers.set(fn, 0);
  }

  // ---- VendPorts ----------------------------------------------------------------

  canPay(amount: number): boolean {
    if (amount === 0) return true;
    if (!this.changer.ready || !this.changeMaker) return false;
    return this.changeMaker.canPay(amount, this.changer.tubes);
  }

  dispense(slot: number): void {
    // A card vend is recorded at the amount the reader approved (its approval is already in the journal).
    const card = this.machine.cardVending;
    const price = card ? this.machine.cardAmount : this.inventory.prices[slot]!;
    this.later(() => {
      this.updateAcceptance();
      this.journal.vendStart(slot, price);
      this.dispenser.vend(slot, (result: DispenseResult) => {
        // Recorded the moment the sensor decides, before anything else happens.
        if (result === DISPENSE_OK) this.journal.vendOk(slot, price);
        else this.journal.vendFailed(slot, result);
        // Then the reader hears it: VEND SUCCESS, or VEND FAILURE so it refunds.
        if (card) this.settleCard();
        this.later(() => this.machine.dispensed(result));
      });
    });
  }

  cardVendRequest(slot: number, price: number): void {
    const reader = this.reader;
    if (!reader?.session) {
      // The reader's session is already gone (its END SESSION crossed the selection).
      this.later(() => this.machine.cardEnded());
      return;
    }
    // Item numbers are 1-based slot numbers.
    if (!reader.vendRequest(price, slot + 1)) {
      this.board.log('warn', 'cashless: the reader is busy with another vend; request refused');
      this.later(() => this.customer(() => this.machine.cardDenied()));
      return;
    }
    this.bus.kick();
  }

  cardVendCancel(): void {
    // A request that had not left yet is simply dropped: no answer will come, so deny it here.
    if (!this.reader || this.reader.vendCancel()) this.later(() => this.customer(() => this.machine.cardDenied()));
    this.bus.kick();
  }

  cardEnd(): void {
    this.reader?.sessionComplete();
    this.bus.kick();
  }

  payout(amount: number): void {
    this.payoutAsked = amount;
    this.payoutPaid = 0;
    this.payoutRounds = 0;
    this.payoutActive = true;
    this.later(() => this.payoutRound());
  }

  escrow(stack: boolean): void {
    if (stack) this.journal.billStacking(this.bill.escrowValue, this.bill.stackerCount);
    this.bill.decide(stack);
    this.bus.kick();
  }

  sold(_slot: number, _price: number): void {
    // Stock and books already moved when the drop was journaled.
  }

  slotFailed(slot: number, result: DispenseResult): void {
    this.board.log('error', `slot ${this.inventory.codes[slot]}: ${result === 1 ? 'no drop within ' + this.config.dropTimeoutMs + ' ms (jam)' : 'drop sensor fault'}; out of service`);
  }

  timer(ms: number): void {
    if (this.sessionTimer !== undefined) this.board.timers.clear(this.sessionTimer);
    this.sessionTimer = undefined;
    if (ms > 0) {
      this.sessionTimer = this.board.timers.set(() => {
        this.sessionTimer = undefined;
        this.machine.timeout();
      }, ms);
    }
  }

  notice(notice: Notice, slot: number): void {
    this.notice_ = notice;
    this.noticeSlot = slot;
    if (this.noticeTimer !== undefined) this.board.timers.clear(this.noticeTimer);
    this.noticeTimer = this.board.timers.set(() => {
      this.noticeTimer = undefined;
      this.notice_ = null;
      this.render();
    }, this.config.messageMs);
    this.render();
  }

  ignored(event: string, state: VendState): void {
    this.ignoredEvents++;
    this.board.log('info', `ignored ${event} in ${state}`);
  }

  changed(): void {
    this.syncReady();
    this.updateAcceptance();
    this.render();
  }

  // ---- payouts --------------------------------------------------------------------

  private payoutRound(): void {
    if (this.payoutWaiting !== undefined) {
      this.board.timers.clear(this.payoutWaiting);
      this.payoutWaiting = undefined;
    }
    const remaining = this.payoutAsked - this.payoutPaid;
    if (remaining <= 0 || this.payoutRounds >= PAYOUT_ROUNDS) return this.payoutFinished();
    if (!this.changer.ready || !this.changeMaker) {
      // Wait for the changer to come back, but not for ever.
      this.payoutWaiting = this.board.timers.set(() => {
        this.payoutWaiting = undefined;
        this.payoutFinished();
      }, PAYOUT_WAIT_MS);
      return;
    }
    const plan = this.changeMaker.solve(remaining, this.changer.tubes);
    if (plan.paid === 0) return this.payoutFinished();
    const planned = plan.paid;
    this.payoutRounds++;
    this.payoutPlanned = planned;
    this.changer.payout(plan.coins, (paid, value) => {
      let coins = 0;
      for (let t = 0; t < paid.length; t++) coins += paid[t]!;
      this.journal.payoutDone(value, coins, paid);
      this.tubesDirty = true;
      if (value < planned) this.board.log('warn', `payout short: planned ${planned}, paid ${value}`);
      if (this.orphanTimer !== undefined) this.board.timers.clear(this.orphanTimer);
      this.orphanTimer = undefined;
      if (this.payoutOrphaned) return this.settleOrphanedPayout(value);
      this.payoutPaid += value;
      // Re-plan the rest from the fresh tube counts only if this round made progress.
      if (value > 0 && this.payoutPaid < this.payoutAsked) this.later(() => this.payoutRound());
      else this.later(() => this.payoutFinished());
    });
    this.bus.kick();
  }

  private payoutPlanned = 0;

  /** The changer read the tubes and is about to send DISPENSE: journal first. */
  payoutStarting(tubes: Uint8Array): void {
    this.journal.payoutStart(this.payoutPlanned, tubes);
  }

  /**
   * The changer went away with a round in flight and stayed away: what that
   * round paid is unknown until it is back, so the credit left is held, not
   * spendable (the machine shows out of service; `busy` clears so commands,
   * a reboot included, go through). The journal keeps the payout open: the
   * changer's return settles it, or after a reboot the tube counts do.
   */
  private orphanPayout(): void {
    if (!this.payoutActive || !this.changer.paying) return;
    this.payoutActive = false;
    this.payoutOrphaned = true;
    this.board.log('error', `changer gone during a payout: ${this.payoutAsked - this.payoutPaid} held until it is back`);
    this.machine.payoutUnsettled(this.payoutPaid);
    this.updateReady();
  }

  /** The orphaned round's outcome, now that the changer is back: the journal's credit is what is left. */
  private settleOrphanedPayout(value: number): void {
    this.payoutOrphaned = false;
    this.board.log('warn', `changer back: the held payout round had paid ${value}`);
    this.machine.restoreCredit(this.ledger.credit);
    this.updateReady();
  }

  private payoutFinished(): void {
    if (!this.payoutActive) return;
    if (this.orphanTimer !== undefined) this.board.timers.clear(this.orphanTimer);
    this.orphanTimer = undefined;
    this.payoutActive = false;
    if (this.payoutWaiting !== undefined) this.board.timers.clear(this.payoutWaiting);
    this.payoutWaiting = undefined;
    this.machine.paidOut(this.payoutAsked, this.payoutPaid);
  }

  // ---- changer events -------------------------------------------------------------

  changerReady(): void {
    // The coin set only changes if the changer itself was swapped; rebuild the planner then.
    const values = this.routableValues();
    let same = this.changeMaker !== undefined;
    for (let t = 0; same && t < 16; t++) if (values[t] !== this.plannedValues[t]) same = false;
    if (!same) {
      this.changeMaker = new ChangeMaker(values, this.config.maxCredit);
      this.plannedValues = values;
    }
    this.tubesDirty = true;
    if (this.recoveringPayout) this.settleInterruptedPayout();
    this.syncTubes();
    this.updateReady();
    if (this.payoutActive && this.payoutWaiting !== undefined) this.payoutRound();
  }

  /** The tubes as the changer reports them become the journal's when they differ (a cut, an operator's visit). */
  private syncTubes(): void {
    const known = this.ledger.tubes;
    const now = this.changer.tubes;
    for (let t = 0; t < 16; t++) {
      if (this.changer.setup.routable & (1 << t) && known[t] !== now[t]) {
        this.journal.tubes(now);
        return;
      }
    }
  }

  /** A payout the power cut interrupted: what left the tubes since it started was paid. */
  private settleInterruptedPayout(): void {
    const before = this.ledger.payoutTubes;
    const perType = new Uint8Array(16);
    let paid = 0;
    let coins = 0;
    for (let t = 0; t < 16; t++) {
      const gone = before[t]! - this.changer.tubes[t]!;
      if (gone > 0 && this.changer.values[t]! > 0) {
        perType[t] = gone;
        coins += gone;
        paid += gone * this.changer.values[t]!;
      }
    }
    this.journal.payoutDone(paid, coins, perType);
    this.recoveringPayout = false;
    this.machine.restoreCredit(this.ledger.credit);
    this.board.log('warn', `journal: payout interrupted by the power cut had paid ${paid} in ${coins} coins`);
  }

  private plannedValues: Int32Array = new Int32Array(16);

  /** Coin values of the types that go to tubes (only those can be paid out). */
  private routableValues(): Int32Array {
    const out = new Int32Array(16);
    for (let t = 0; t < 16; t++) out[t] = this.changer.setup.routable & (1 << t) ? this.changer.values[t]! : 0;
    return out;
  }

  changerLost(): void {
    // A round in flight settles when the changer is back; if it stays away, hand the machine back.
    if (this.payoutActive && this.changer.paying && this.orphanTimer === undefined) {
      this.orphanTimer = this.board.timers.set(() => {
        this.orphanTimer = undefined;
        this.orphanPayout();
      }, PAYOUT_WAIT_MS);
    }
    this.updateReady();
  }

  coinDeposited(_type: number, value: number, routing: number): void {
    // Journaled before the POLL is acknowledged: a coin is never credited twice or lost once ACKed.
    this.journal.coinIn(_type, routing === ROUTE_TUBES ? 1 : 0, value);
    if (routing === ROUTE_TUBES) this.tubesDirty = true;
    this.customer(() => this.machine.coin(value));
  }

  coinRejected(type: number): void {
    this.board.log('info', `coin type ${type} rejected`);
  }

  coinsDispensedManually(type: number, count: number, value: number): void {
    this.journal.coinsManual(type, count, value);
    this.tubesDirty = true;
  }

  changerStatus(code: number): void {
    this.board.log('warn', `changer status 0x${code.toString(16)}`);
  }

  coinReturnPressed(): void {
    this.customer(() => this.machine.cancel());
  }

  // ---- bill events ------------------------------------------------------------------

  billReady(): void {
    const ledger = this.ledger;
    if (ledger.openStack > 0) {
      // A stack ordered before the power cut: the stacker count says whether it happened.
      const value = ledger.openStack;
      if (this.bill.stackerCount > ledger.openStackBefore) {
        this.journal.billStacked(value);
        this.machine.restoreCredit(ledger.credit);
        this.board.log('warn', `journal: bill of ${value} reached the stacker as the power failed; credited`);
      } else {
        this.journal.billReturned(value);
        this.board.log('warn', `journal: bill of ${value} was not stacked before the power failed; it was returned`);
      }
    }
    this.updateReady();
  }

  billLost(): void {
    this.updateReady();
  }

  billEscrowed(_type: number, value: number): void {
    this.customer(() => this.machine.billEscrowed(value));
  }

  billStacked(_type: number, value: number): void {
    this.journal.billStacked(value);
    this.machine.billStacked(value);
  }

  billReturned(_type: number, value: number): void {
    this.journal.billReturned(value);
    this.machine.billReturned(value);
  }

  billStatus(code: number): void {
    this.board.log('warn', `bill validator status 0x${code.toString(16)}`);
  }

  // ---- cashless reader events ------------------------------------------------------------

  readerReady(): void {
    // Every way to ready goes through a reset of the reader: any session it had is gone.
    this.cardLive = false;
    this.readerPrices();
    this.settleCard();
    this.updateReady();
  }

  readerLost(): void {
    this.cardLive = false;
    this.machine.cardEnded();
    this.updateReady();
  }

  sessionBegan(funds: number): void {
    if (this.remote) {
      // The chute is busy with a remote vend: close the session at once.
      this.reader?.sessionComplete();
      return;
    }
    this.customer(() => this.machine.cardSession(funds, this.reader?.multiVend ?? false));
  }

  sessionCancelRequested(): void {
    this.customer(() => this.machine.cardCancelRequest());
  }

  vendApproved(amount: number): void {
    const m = this.machine;
    if (m.cardRequested && m.selection >= 0) {
      // Journal before effect: the approval is on flash before the POLL is acknowledged and before the motor turns.
      this.journal.cardApproved(m.selection, amount);
      this.cardLive = true;
      m.cardApproved(amount);
      this.render();
      return;
    }
    // Nobody is waiting for it (the customer cancelled as it came): nothing is dispensed and the reader refunds.
    this.board.log('warn', `cashless: approval of ${amount} not wanted; reporting a failure so the card is refunded`);
    this.reader?.vendResult(false, 0);
    this.customer(() => m.cardApproved(amount));
  }

  vendDenied(): void {
    this.customer(() => this.machine.cardDenied());
  }

  vendReported(success: boolean): void {
    const l = this.ledger;
    if ((success && l.cardVend === CARD_VEND_DELIVERED) || (!success && l.cardVend === CARD_VEND_FAILED)) {
      this.journal.cardResult(success ? CARD_SUCCESS : CARD_REFUNDED, l.cardSlot, l.cardAmount);
    } else {
      this.board.log('info', `cashless: reader confirmed VEND ${success ? 'SUCCESS' : 'FAILURE'} for no open card vend`);
    }
    this.changed();
  }

  sessionEnded(): void {
    // Not a customer's action: a message showing ("Thank you!", "Vend failed") stays.
    this.cardLive = false;
    this.machine.cardEnded();
    this.settleCard();
    this.changed();
  }

  readerCancelled(): void {
    this.board.log('info', 'cashless: reader cancelled');
  }

  readerStatus(code: number): void {
    this.board.log('warn', `cashless reader status 0x${code.toString(16)}`);
  }

  /**
   * Bring the open card vend to its end with the reader, once its dispense
   * outcome is recorded: report it while the approving session lives; once
   * that session is gone (the reader reset, dropped or ended it), record
   * what the reader did on its own: a delivered vend is sold, a failed one
   * went unrefunded (a reset after approval counts as a success).
   */
  private settleCard(): void {
    const l = this.ledger;
    const v = l.cardVend;
    if (v !== CARD_VEND_DELIVERED && v !== CARD_VEND_FAILED) return;
    const reader = this.reader;
    if (this.cardLive && reader?.ready) {
      if (!reader.reporting) reader.vendResult(v === CARD_VEND_DELIVERED, l.cardSlot + 1);
      this.bus.kick();
      return;
    }
    // Wait for the reader to come back: it comes back reset, with its session settled.
    if (reader && !reader.ready) return;
    const outcome = v === CARD_VEND_DELIVERED ? CARD_SOLD_RESET : CARD_UNREFUNDED;
    this.journal.cardResult(outcome, l.cardSlot, l.cardAmount);
    const code = this.inventory.codes[l.cardSlot] ?? String(l.cardSlot);
    this.board.log('warn', `cashless: card vend of ${code} (${l.cardAmount}) settled without the reader: ${CARD_OUTCOMES[outcome]}`);
  }

  /** The reader's max/min prices: the machine's dearest and cheapest. */
  private readerPrices(): void {
    const reader = this.reader;
    if (!reader) return;
    const prices = this.inventory.prices;
    let min = Infinity;
    let max = 0;
    for (let i = 0; i < prices.length; i++) {
      const p = prices[i]!;
      if (p > max) max = p;
      if (p < min) min = p;
    }
    reader.setPrices(min === Infinity ? 0 : min, max);
  }

  // ---- derived state ------------------------------------------------------------------

  private updateReady(): void {
    // changed() brings readiness up to date first.
    this.changed();
  }

  /**
   * Sales need a payment device, a settled interrupted payout, and room in the
   * journal to record them; a sale under way always finishes (the journal keeps a reserve).
   */
  private syncReady(): void {
    // A device going away or coming back is news for the fleet now, not at the next telemetry interval.
    const devices = (this.changer.ready ? 1 : 0) | (this.bill.ready ? 2 : 0) | (this.reader?.ready ? 4 : 0);
    if (devices !== this.devicesNow) {
      this.devicesNow = devices;
      this.onHealthChanged?.();
    }
    const ready = (this.changer.ready || this.bill.ready || (this.reader?.ready ?? false)) && !this.recoveringPayout && !this.payoutOrphaned && this.journal.level !== 'full' && !this.ledger.locked;
    if (ready === this.readyNow) return;
    this.readyNow = ready;
    this.machine.setReady(ready);
  }

  /** The gateway committed every event up to `seq`. */
  acknowledge(seq: number): void {
    this.journal.acknowledge(seq);
    this.changed();
  }

  private updateAcceptance(): void {
    const m = this.machine;
    const s = m.state;
    const open = (s === 'IDLE' || s === 'PRODUCT_SELECTED' || s === 'ACCEPTING_PAYMENT') && !m.escrowPending && !this.dispenser.busy && !this.remote;
    const room = this.config.maxCredit - m.credit - m.escrow;
    const sellable = this.inventory.anySellable();
    // One purchase, one way to pay: no cash while a card session is open, no card while cash is held.
    this.changer.setAccepting(open && !m.card && room > 0 && sellable);
    this.bill.setAccepting(open && !m.card && m.escrow === 0 && room > 0 && sellable, room);
    this.reader?.setEnabled(m.card || (open && m.credit === 0 && m.escrow === 0 && sellable && this.readyNow));
    this.bus.kick();
  }

  private render(): void {
    if (this.tubesDirty && this.changeMaker && this.changer.ready) {
      this.tubesDirty = false;
      let largest = 0;
      for (let t = 0; t < 16; t++) if (this.changer.values[t]! > largest) largest = this.changer.values[t]!;
      this.exactChangeOnly = !this.changeMaker.coversUpTo(largest, this.changer.tubes);
    }
    const ctx = {
      decimals: this.config.decimals,
      exactChangeOnly: this.exactChangeOnly,
      fault: this.ledger.locked
        ? 'Closed'
        : this.journal.level === 'full'
          ? 'Storage full'
          : this.board.clock.now() - this.bootedAt < 10000
            ? 'Starting...'
            : 'Payment unavailable',
    };
    const raw = this.remote
      ? ['Remote purchase', `Vending ${this.inventory.codes[this.remote.slot]!}`]
      : this.notice_
        ? noticeLines(this.notice_, this.noticeSlot, this.machine, this.inventory, ctx)
        : stateLines(this.machine, this.inventory, ctx);
    const lamps = (this.exactChangeOnly ? 1 : 0) | (this.machine.state === 'ERROR' ? 2 : 0);
    if (lamps !== this.lamps) {
      this.lamps = lamps;
      this.exactChangeLamp.write(lamps & 1 ? 1 : 0);
      this.outOfServiceLamp.write(lamps & 2 ? 1 : 0);
    }
    const lines = fit(raw, this.board.display.columns, this.board.display.rows);
    let same = lines.length === this.lines.length;
    for (let i = 0; same && i < lines.length; i++) if (lines[i] !== this.lines[i]) same = false;
    if (!same) {
      this.lines = lines;
      this.board.display.show(lines);
    }
  }

  private thermometer: TemperatureSensor | undefined | null = null;

  /** Cabinet temperature in °C (one decimal), if the machine has a sensor. */
  private temperature(): number | undefined {
    if (this.thermometer === null) this.thermometer = this.board.openTemperatureSensor?.();
    const t = this.thermometer?.sample()?.temperature;
    return t === undefined || !Number.isFinite(t) ? undefined : Math.round(t * 10) / 10;
  }

  /** What the fleet sees of the machine (telemetry body, docs/uplink.md). */
  telemetry(): { [key: string]: unknown } {
    const st = this.status();
    const temperature = this.temperature();
    const errors: string[] = [];
    if (!st.devices.changer) errors.push('changer-offline');
    if (!st.devices.bill) errors.push('bill-validator-offline');
    if (st.devices.cashless === false) errors.push('cashless-offline');
    if (st.journal.level !== 'ok') errors.push(`journal-${st.journal.level}`);
    if (st.locked) errors.push('locked');
    if (this.exactChangeOnly) errors.push('exact-change-only');
    if (this.bill.stackerFull) errors.push('bill-stacker-full');
    for (const s of st.slots) if (s.outOfService) errors.push(`slot-fault:${s.code}`);
    const c = st.counters;
    return {
      state: st.state,
      slots: st.slots.map((s, i) => ({
        code: s.code,
        product: s.product,
        category: this.inventory.categories[i]!,
        qty: s.qty,
        capacity: s.capacity,
        price: s.price,
        ...(this.inventory.sku[i] ? { sku: this.inventory.sku[i] } : {}),
        ...(s.outOfService ? { fault: true } : {}),
      })),
      tubes: st.tubes.map((t) => ({ value: t.value, count: t.count })),
      counters: {
        sales: c.sales,
        revenue: c.revenue,
        cashIn: c.coinsToTubes + c.coinsToCashbox + c.billsStacked,
        coinsToCashbox: c.coinsToCashbox,
        billsStacked: c.billsStacked,
        paidOut: c.coinsPaidOut,
        failedVends: c.failedVends,
        uncertainVends: c.uncertainVends,
        ...(this.reader || c.cashlessSales > 0 ? { cashlessSales: c.cashlessSales, cashlessRevenue: c.cashlessRevenue, cashlessUnrefunded: c.cashlessUnrefunded } : {}),
        boots: c.boots,
        remoteSales: st.remoteSales,
        remoteRevenue: this.ledger.total[C_REMOTE_VALUE]!,
        commandsRejected: this.ledger.total[C_COMMANDS_REJECTED]!,
      },
      locked: st.locked,
      // How often telemetry comes at the latest: the gateway's silence alarm waits for three of these.
      intervalS: Math.round(this.telemetryIntervalMs() / 1000),
      ...(st.devices.bill ? { stacker: { count: this.bill.stackerCount, capacity: this.bill.setup.stackerCapacity } } : {}),
      journal: { lastSeq: st.journal.lastSeq, unsynced: st.journal.unsynced, fill: st.journal.fill, level: st.journal.level },
      ...(temperature !== undefined ? { temperature } : {}),
      errors,
    };
  }

  status(): FirmwareStatus {
    const m = this.machine;
    const inv = this.inventory;
    const slots: SlotStatus[] = [];
    for (let i = 0; i < inv.size; i++) {
      slots.push({ code: inv.codes[i]!, product: inv.products[i]!, price: inv.prices[i]!, qty: inv.qty[i]!, capacity: inv.capacity[i]!, outOfService: inv.fault[i] === 1 });
    }
    const tubes: TubeStatus[] = [];
    for (let t = 0; t < 16; t++) {
      if (this.changer.setup.routable & (1 << t) && this.changer.values[t]! > 0) {
        tubes.push({ type: t, value: this.changer.values[t]!, count: this.changer.tubes[t]!, journaled: this.ledger.tubes[t]! });
      }
    }
    const c = this.ledger.total;
    return {
      state: m.state,
      credit: m.credit,
      escrow: m.escrow,
      selection: m.selection >= 0 ? inv.codes[m.selection]! : null,
      quantity: m.quantity,
      busy:
        m.busy || this.payoutActive || (this.changer.paying && !this.payoutOrphaned) || this.bill.escrowBusy || this.dispenser.busy || this.remote !== undefined || (this.reader?.busy ?? false),
      ready: this.changer.ready || this.bill.ready || (this.reader?.ready ?? false),
      slots,
      tubes,
      counters: {
        sales: c[C_SALES]!,
        revenue: c[C_REVENUE]!,
        coinsToTubes: c[C_COINS_TUBES]!,
        coinsToCashbox: c[C_COINS_CASHBOX]!,
        billsStacked: c[C_BILLS_VALUE]!,
        coinsPaidOut: c[C_PAID_VALUE]!,
        coinsPaidOutCount: c[C_PAID_COUNT]!,
        billsReturned: c[C_BILLS_RETURNED]!,
        failedVends: c[C_FAILED_VENDS]!,
        uncertainVends: c[C_UNCERTAIN_VENDS]!,
        cashlessSales: c[C_CASHLESS_SALES]!,
        cashlessRevenue: c[C_CASHLESS_VALUE]!,
        cashlessUnrefunded: c[C_CASHLESS_UNREFUNDED]!,
        coinsManual: c[C_MANUAL_VALUE]!,
        boots: c[C_BOOTS]!,
        ignoredEvents: this.ignoredEvents,
      },
      journal: this.journal.status(),
      locked: this.ledger.locked,
      commands: { ...this.commander.stats },
      remoteSales: c[C_REMOTE_SALES]!,
      display: this.lines.slice(),
      devices: { changer: this.changer.ready, bill: this.bill.ready, ...(this.reader ? { cashless: this.reader.ready } : {}) },
      link: { ...this.link.stats },
    };
  }
}
