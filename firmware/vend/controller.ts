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
import { DISPENSE_OK, type Dispenser, type DispenseResult } from '../dispense/dispenser.js';
import type { Journal } from '../journal/journal.js';
import type { Ledger } from '../journal/ledger.js';
import type { BillValidator } from '../mdb/bill.js';
import type { MdbBus } from '../mdb/bus.js';
import type { CashlessReader } from '../mdb/cashless.js';
import { ROUTE_TUBES, type CoinChanger } from '../mdb/changer.js';
import type { CardSession } from './card.js';
import type { Inventory } from './inventory.js';
import { VendMachine } from './machine.js';
import type { Panel } from './panel.js';
import type { PayoutSession } from './payout.js';
import type { Notice, VendOptions, VendPorts, VendState } from './ports.js';
import { settleOpenStack } from './recovery.js';
import type { RemoteActions } from './remote.js';

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

export interface ControllerOptions {
  board: Board;
  config: MachineConfig;
  inventory: Inventory;
  journal: Journal;
  /** The books as recovery left them: the machine starts with the credit they hold. */
  ledger: Ledger;
  /** What the state machine decides with (settings from commands are written into it, remote.ts). */
  vendOptions: VendOptions;
  dispenser: Dispenser;
  changer: CoinChanger;
  bill: BillValidator;
  reader: CashlessReader | undefined;
  bus: MdbBus;
  /** A payment device went offline or came back (the uplink sends telemetry soon). */
  onHealthChanged?: (() => void) | undefined;
}

/** The collaborators, built around the sale (they need its machine), handed to it once by the wiring. */
export interface SaleParts {
  panel: Panel;
  payouts: PayoutSession;
  card: CardSession | undefined;
  remote: RemoteActions;
}

export class Controller implements VendPorts, Sale {
  readonly machine: VendMachine;
  private readonly board: Board;
  private readonly config: MachineConfig;
  private readonly inventory: Inventory;
  private readonly journal: Journal;
  private readonly ledger: Ledger;
  private readonly dispenser: Dispenser;
  private readonly changer: CoinChanger;
  private readonly bill: BillValidator;
  private readonly reader: CashlessReader | undefined;
  private readonly bus: MdbBus;
  private readonly onHealthChanged: (() => void) | undefined;
  private panel!: Panel;
  private payouts!: PayoutSession;
  private card: CardSession | undefined;
  private remote!: RemoteActions;
  private sessionTimer: TimerId | undefined;
  private readyNow = false;
  private devicesNow = -1;
  private ignoredCount = 0;

  constructor(options: ControllerOptions) {
    this.board = options.board;
    this.config = options.config;
    this.inventory = options.inventory;
    this.journal = options.journal;
    this.ledger = options.ledger;
    this.dispenser = options.dispenser;
    this.changer = options.changer;
    this.bill = options.bill;
    this.reader = options.reader;
    this.bus = options.bus;
    this.onHealthChanged = options.onHealthChanged;
    this.machine = new VendMachine(options.inventory, options.vendOptions, this);
    // After a reboot: the credit the journal says the customer holds.
    this.machine.restoreCredit(options.ledger.credit);
  }

  /** Called once, before the devices are on the bus: the collaborators the ports and the derived state reach. */
  connect(parts: SaleParts): void {
    this.panel = parts.panel;
    this.payouts = parts.payouts;
    this.card = parts.card;
    this.remote = parts.remote;
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

  // ---- the changer's coins and the validator's bills ----------------------------------------

  coinDeposited(type: number, value: number, routing: number): void {
    // Journaled before the POLL is acknowledged: a coin is never credited twice or lost once ACKed.
    this.journal.coinIn(type, routing === ROUTE_TUBES ? 1 : 0, value);
    if (routing === ROUTE_TUBES) this.payouts.tubesChanged();
    this.panel.customer(() => this.machine.coin(value));
  }

  billReady(): void {
    // A stack ordered before the power cut: the stacker count says whether it happened.
    if (this.ledger.openStack > 0) settleOpenStack({ board: this.board, journal: this.journal, ledger: this.ledger, machine: this.machine }, this.bill.stackerCount);
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

  // ---- derived state ------------------------------------------------------------------

  /**
   * Sales need a payment device, a settled interrupted payout, and room in the
   * journal to record them; a sale under way always finishes (the journal keeps a reserve).
   */
  private syncReady(): void {
    const reader = this.reader;
    // A device going away or coming back is news for the fleet now, not at the next telemetry interval.
    const devices =
      (this.changer.ready ? 1 : 0) |
      (this.bill.ready ? 2 : 0) |
      (reader?.ready ? 4 : 0) |
      (this.changer.refused !== '' ? 8 : 0) |
      (this.bill.refused !== '' ? 16 : 0) |
      (reader && reader.refused !== '' ? 32 : 0);
    if (devices !== this.devicesNow) {
      this.devicesNow = devices;
      this.onHealthChanged?.();
    }
    const ready = (this.changer.ready || this.bill.ready || (reader?.ready ?? false)) && !this.payouts.holding && !this.journal.stopped && !this.ledger.locked;
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
