/**
 * The sale: owns the purchase state machine and implements its ports. The
 * customer's money (the changer's coins, the validator's bills) and the
 * selection keys reach the machine from here; after every change the
 * derived state is brought up to date: whether the machine can sell, which
 * payment devices accept, and the panel.
 *
 * Hardware answers reach the state machine asynchronously (never from inside
 * one of its own calls), so its decisions are never re-entered.
 *
 * The collaborators each keep one concern: payouts (payout.ts), the card
 * session (card.ts), remote commands (remote.ts), the panel (panel.ts),
 * recovery after boot (recovery.ts), reports (report.ts).
 */
import type { Board, TimerId } from '../board.js';
import type { MachineConfig } from '../config.js';
import { DISPENSE_OK, Dispenser, type DispenseResult, type DispenserOptions } from '../dispense/dispenser.js';
import { Journal } from '../journal/journal.js';
import { Ledger, layoutHash } from '../journal/ledger.js';
import { BillValidator, type BillCallbacks } from '../mdb/bill.js';
import { MdbBus } from '../mdb/bus.js';
import { CashlessReader, type CashlessCallbacks } from '../mdb/cashless.js';
import { CoinChanger, ROUTE_TUBES, type ChangerCallbacks } from '../mdb/changer.js';
import { WordLink } from '../mdb/link.js';
import type { PeripheralTiming } from '../mdb/peripheral.js';
import { CardSession, readerPrices } from './card.js';
import { Inventory } from './inventory.js';
import { VendMachine, type Notice, type VendOptions, type VendPorts, type VendState } from './machine.js';
import { Panel } from './panel.js';
import { PayoutSession } from './payout.js';
import { recover, settleOpenStack } from './recovery.js';
import { RemoteActions } from './remote.js';
import { Reports, type FirmwareStatus } from './report.js';

export type { FirmwareStatus, SlotStatus, TubeStatus } from './report.js';

/** What the collaborators need of the sale. */
export interface Sale {
  readonly machine: VendMachine;
  /** State, devices or books changed: bring readiness, acceptance and the panel up to date. */
  changed(): void;
  /** Something is under way that the customer must wait for. */
  readonly busy: boolean;
  /** Events that made no sense in the state they came in (a status counter). */
  readonly ignoredEvents: number;
  /** The slot failed to deliver (logged; the journal has already put it out of service). */
  slotFailed(slot: number, result: DispenseResult): void;
}

export class Controller implements ChangerCallbacks, BillCallbacks, CashlessCallbacks, VendPorts, Sale {
  readonly machine: VendMachine;
  readonly inventory: Inventory;
  readonly ledger: Ledger;
  readonly journal: Journal;
  readonly changer: CoinChanger;
  readonly bill: BillValidator;
  readonly reader: CashlessReader | undefined;
  readonly reports: Reports;
  readonly remote: RemoteActions;
  private readonly board: Board;
  private readonly config: MachineConfig;
  private readonly bus: MdbBus;
  private readonly dispenser: Dispenser;
  private readonly panel: Panel;
  private readonly payouts: PayoutSession;
  private readonly card: CardSession | undefined;
  private readonly onHealthChanged: (() => void) | undefined;
  private sessionTimer: TimerId | undefined;
  private readyNow = false;
  private devicesNow = -1;
  private ignoredCount = 0;

  constructor(board: Board, config: MachineConfig, hooks: { firmware: string; onReport?: () => void; onHealthChanged?: () => void; onAudit?: (read: number, file: Uint8Array) => void } = { firmware: '' }) {
    this.board = board;
    this.config = config;
    this.onHealthChanged = hooks.onHealthChanged;
    this.inventory = new Inventory(config.slots);
    const inv = this.inventory;
    this.ledger = new Ledger(inv.qty, inv.fault, layoutHash(inv.codes), { prices: inv.prices, capacity: inv.capacity, sku: inv.sku, cashless: config.cashless });
    this.journal = new Journal(board.openFlash('journal'), this.ledger, board.clock);
    const vendOptions: VendOptions = { policy: config.changePolicy, sessionTimeoutMs: config.sessionTimeoutMs, maxCredit: config.maxCredit, maxQuantity: config.maxQuantity };
    const dispenserOptions: DispenserOptions = { dropTimeoutMs: config.dropTimeoutMs, motorPercent: config.motorPercent };
    this.machine = new VendMachine(this.inventory, vendOptions, this);
    recover({ board, journal: this.journal, ledger: this.ledger, inventory: inv, machine: this.machine, cashless: config.cashless });
    const exactChangeLamp = board.openIndicator('exact-change');
    const outOfServiceLamp = board.openIndicator('out-of-service');
    this.dispenser = new Dispenser(board, dispenserOptions);
    const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string): void => board.log(level, message);
    const poll = config.pollIntervalMs;
    const timing = (nonResponseMs: number): PeripheralTiming => ({ pollIntervalMs: poll, nonResponseMs, resetIntervalMs: 10000, justResetWaitMs: 500 });
    // Interim: the drivers' callbacks come here until main builds the parts.
    this.changer = new CoinChanger({
      decimals: config.decimals,
      timing: timing(2000),
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
      timing: timing(5000),
      log,
      billReady: () => this.billReady(),
      billLost: () => this.billLost(),
      billEscrowed: (type, value) => this.billEscrowed(type, value),
      billStacked: (type, value) => this.billStacked(type, value),
      billReturned: (type, value) => this.billReturned(type, value),
      billStatus: (code) => this.billStatus(code),
    });
    const link = new WordLink({ serial: board.mdb, timers: board.timers });
    this.bus = new MdbBus(link, board.clock, board.timers);
    // Flash erases (tens of ms, cache off) happen between exchanges, so a record a peripheral's ACK waits for only writes.
    this.bus.onQuiet = () => {
      this.journal.prepare();
    };
    this.bus.add(this.changer);
    this.bus.add(this.bill);
    this.reader = config.cashless
      ? new CashlessReader({
          decimals: config.decimals,
          timing: timing(5000),
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
      readerPrices(this.reader, inv);
      this.bus.add(this.reader);
    }
    const common = { sale: this, board, journal: this.journal, ledger: this.ledger };
    this.payouts = new PayoutSession({ ...common, changer: this.changer, bus: this.bus, maxCredit: config.maxCredit });
    this.panel = new Panel({ ...common, decimals: config.decimals, messageMs: config.messageMs, inventory: inv, payouts: this.payouts, exactChangeLamp, outOfServiceLamp });
    this.remote = new RemoteActions({
      ...common,
      config,
      inventory: inv,
      dispenser: this.dispenser,
      panel: this.panel,
      payouts: this.payouts,
      changer: this.changer,
      bill: this.bill,
      reader: this.reader,
      vendOptions,
      dispenserOptions,
      firmware: hooks.firmware,
      onReport: hooks.onReport,
      onAudit: hooks.onAudit,
    });
    this.card = this.reader ? new CardSession({ ...common, reader: this.reader, bus: this.bus, inventory: inv, panel: this.panel, remote: this.remote }) : undefined;
    this.reports = new Reports({ sale: this, board, inventory: inv, ledger: this.ledger, journal: this.journal, changer: this.changer, bill: this.bill, reader: this.reader, link, panel: this.panel, remote: this.remote });
    board.openSelectionPanel({
      onSelect: (code, quantity) => this.select(code, quantity),
      onCancel: () => this.cancel(),
    });
    this.panel.render();
  }

  stop(): void {
    this.bus.stop();
  }

  status(): FirmwareStatus {
    return this.reports.status();
  }

  telemetry(): { [key: string]: unknown } {
    return this.reports.telemetry();
  }

  auditFile(read?: number, wall?: number): Uint8Array {
    return this.remote.auditFile(read, wall);
  }

  get busy(): boolean {
    const m = this.machine;
    return m.busy || this.payouts.busy || this.bill.escrowBusy || this.dispenser.busy || this.remote.vending || (this.reader?.busy ?? false);
  }

  get ignoredEvents(): number {
    return this.ignoredCount;
  }

  /** The gateway committed every event up to `seq`. */
  acknowledge(seq: number): void {
    this.journal.acknowledge(seq);
    this.changed();
  }

  // ---- the selection panel's keys -------------------------------------------------------

  select(code: string, quantity: number): void {
    // A remote vend is using the chute: the panel waits.
    if (this.remote.vending) return;
    this.panel.customer(() => this.machine.select(this.inventory.indexOf(code), quantity));
  }

  /** The cancel key, or the changer's coin-return lever. */
  cancel(): void {
    this.panel.customer(() => this.machine.cancel());
  }

  // ---- VendPorts ----------------------------------------------------------------

  canPay(amount: number): boolean {
    return this.payouts.canPay(amount);
  }

  dispense(slot: number): void {
    // A card vend is recorded at the amount the reader approved (its approval is already in the journal).
    const card = this.machine.cardVending;
    const price = card ? this.machine.cardAmount : this.inventory.prices[slot]!;
    this.board.timers.set(() => {
      this.updateAcceptance();
      this.journal.vendStart(slot, price);
      this.dispenser.vend(slot, (result: DispenseResult) => {
        // Recorded the moment the sensor decides, before anything else happens.
        if (result === DISPENSE_OK) this.journal.vendOk(slot, price);
        else this.journal.vendFailed(slot, result);
        // Then the reader hears it: VEND SUCCESS, or VEND FAILURE so it refunds.
        if (card) this.card?.settle();
        this.board.timers.set(() => this.machine.dispensed(result), 0);
      });
    }, 0);
  }

  cardVendRequest(slot: number, price: number): void {
    this.card?.request(slot, price);
  }

  cardVendCancel(): void {
    this.card?.cancel();
  }

  cardEnd(): void {
    this.card?.end();
  }

  payout(amount: number): void {
    this.payouts.start(amount);
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
    this.panel.notice(notice, slot);
  }

  ignored(event: string, state: VendState): void {
    this.ignoredCount++;
    this.board.log('info', `ignored ${event} in ${state}`);
  }

  changed(): void {
    this.syncReady();
    this.updateAcceptance();
    this.panel.render();
  }

  // ---- the changer's coins --------------------------------------------------------------

  coinDeposited(type: number, value: number, routing: number): void {
    // Journaled before the POLL is acknowledged: a coin is never credited twice or lost once ACKed.
    this.journal.coinIn(type, routing === ROUTE_TUBES ? 1 : 0, value);
    if (routing === ROUTE_TUBES) this.payouts.tubesChanged();
    this.panel.customer(() => this.machine.coin(value));
  }

  coinRejected(type: number): void {
    this.board.log('info', `coin type ${type} rejected`);
  }

  changerStatus(code: number): void {
    this.board.log('warn', `changer status 0x${code.toString(16)}`);
  }

  // ---- the validator's bills ------------------------------------------------------------

  billReady(): void {
    // A stack ordered before the power cut: the stacker count says whether it happened.
    if (this.ledger.openStack > 0) settleOpenStack({ board: this.board, journal: this.journal, ledger: this.ledger, machine: this.machine }, this.bill.stackerCount);
    this.changed();
  }

  billLost(): void {
    this.changed();
  }

  billEscrowed(_type: number, value: number): void {
    this.panel.customer(() => this.machine.billEscrowed(value));
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

  // ---- interim: events the collaborators take (the drivers will call them directly) -----------

  changerReady(): void {
    this.payouts.changerReady();
  }
  changerLost(): void {
    this.payouts.changerLost();
  }
  payoutStarting(tubes: Uint8Array): void {
    this.payouts.payoutStarting(tubes);
  }
  coinsDispensedManually(type: number, count: number, value: number): void {
    this.payouts.coinsDispensedManually(type, count, value);
  }
  coinReturnPressed(): void {
    this.cancel();
  }
  readerReady(): void {
    this.card?.readerReady();
  }
  readerLost(): void {
    this.card?.readerLost();
  }
  sessionBegan(funds: number): void {
    this.card?.sessionBegan(funds);
  }
  sessionCancelRequested(): void {
    this.card?.sessionCancelRequested();
  }
  vendApproved(amount: number): void {
    this.card?.vendApproved(amount);
  }
  vendDenied(): void {
    this.card?.vendDenied();
  }
  vendReported(success: boolean): void {
    this.card?.vendReported(success);
  }
  sessionEnded(): void {
    this.card?.sessionEnded();
  }
  readerCancelled(): void {
    this.card?.readerCancelled();
  }
  readerStatus(code: number): void {
    this.card?.readerStatus(code);
  }

  // ---- derived state ------------------------------------------------------------------

  /**
   * Sales need a payment device, a settled interrupted payout, and room in the
   * journal to record them; a sale under way always finishes (the journal keeps a reserve).
   */
  private syncReady(): void {
    const reader = this.reader;
    // A device going away or coming back is news for the fleet now, not at the next telemetry interval.
    const devices = (this.changer.ready ? 1 : 0) | (this.bill.ready ? 2 : 0) | (reader?.ready ? 4 : 0);
    if (devices !== this.devicesNow) {
      this.devicesNow = devices;
      this.onHealthChanged?.();
    }
    const ready = (this.changer.ready || this.bill.ready || (reader?.ready ?? false)) && !this.payouts.holding && this.journal.level !== 'full' && !this.ledger.locked;
    if (ready === this.readyNow) return;
    this.readyNow = ready;
    this.machine.setReady(ready);
  }

  private updateAcceptance(): void {
    const m = this.machine;
    const s = m.state;
    const open = (s === 'IDLE' || s === 'PRODUCT_SELECTED' || s === 'ACCEPTING_PAYMENT') && !m.escrowPending && !this.dispenser.busy && !this.remote.vending;
    const room = this.config.maxCredit - m.credit - m.escrow;
    const sellable = this.inventory.anySellable();
    // One purchase, one way to pay: no cash while a card session is open, no card while cash is held.
    this.changer.setAccepting(open && !m.card && room > 0 && sellable);
    this.bill.setAccepting(open && !m.card && m.escrow === 0 && room > 0 && sellable, room);
    this.reader?.setEnabled(m.card || (open && m.credit === 0 && m.escrow === 0 && sellable && this.readyNow));
    this.bus.kick();
  }
}
