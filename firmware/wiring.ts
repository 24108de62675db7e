/**
 * Builds the machine from the board and the configuration and wires the
 * parts together: the books (journal and ledger, recovered before anything
 * else runs), the board-facing parts (lamps, dispenser), the MDB link, bus
 * and drivers, the sale (controller.ts) and its collaborators. Each
 * driver's events go to the part that listens to them (listeners.ts).
 *
 * The order is the boot order: nothing reaches the bus until every part is
 * built and the books are settled, and the panel shows once at the end.
 */
import type { Board, LogLevel } from './board.js';
import type { MachineConfig } from './config.js';
import { isoNumeric } from './dex/currency.js';
import { Dispenser, type DispenserOptions } from './dispense/dispenser.js';
import { Journal } from './journal/journal.js';
import { Ledger, layoutHash } from './journal/ledger.js';
import { BillListener, ChangerListener, ReaderListener } from './listeners.js';
import { BillValidator } from './mdb/bill.js';
import { MdbBus } from './mdb/bus.js';
import { CashlessReader } from './mdb/cashless.js';
import { CoinChanger } from './mdb/changer.js';
import { WordLink } from './mdb/link.js';
import { CardSession, readerPrices } from './vend/card.js';
import { Controller } from './vend/controller.js';
import { Inventory } from './vend/inventory.js';
import { Panel } from './vend/panel.js';
import { PayoutSession } from './vend/payout.js';
import type { VendOptions } from './vend/ports.js';
import { recover } from './vend/recovery.js';
import { RemoteActions } from './vend/remote.js';
import { Updater } from './update/updater.js';
import { FIRMWARE_VERSION, JOURNAL_FORMAT } from './version.js';
import { Reports } from './vend/report.js';

/** What the machine tells the outside world (the uplink, in main.ts); all optional. */
export interface MachineHooks {
  /** Firmware version, for the audit data. */
  firmware: string;
  /** A command asks for a full state report. */
  onReport?: (() => void) | undefined;
  /** A payment device went offline or came back. */
  onHealthChanged?: (() => void) | undefined;
  /** An audit read's EVA-DTS file, to send; without it the machine cannot be audited remotely. */
  onAudit?: ((read: number, file: Uint8Array) => void) | undefined;
}

/** The built machine: what main and tests reach. */
export interface MachineParts {
  readonly inventory: Inventory;
  readonly journal: Journal;
  readonly ledger: Ledger;
  readonly controller: Controller;
  readonly remote: RemoteActions;
  readonly reports: Reports;
  /** Firmware updates: main.ts connects it to the uplink and starts it. */
  readonly updater: Updater;
  /** Stopped when the firmware is (or a test is over). */
  readonly bus: MdbBus;
}

export function wire(board: Board, config: MachineConfig, hooks: MachineHooks): MachineParts {
  const inventory = new Inventory(config.slots);
  const ledger = new Ledger(inventory.qty, inventory.fault, layoutHash(inventory.codes), {
    prices: inventory.prices,
    capacity: inventory.capacity,
    sku: inventory.sku,
    cashless: config.cashless,
  });
  const journal = new Journal(board.openFlash('journal'), ledger, board.clock);
  recover({ board, journal, ledger, inventory, cashless: config.cashless });

  // Settings from commands are written into these (remote.ts); the machine and the dispenser read them as they decide.
  const vendOptions: VendOptions = { policy: config.changePolicy, sessionTimeoutMs: config.sessionTimeoutMs, maxCredit: config.maxCredit, maxQuantity: config.maxQuantity };
  const dispenserOptions: DispenserOptions = { dropTimeoutMs: config.dropTimeoutMs, motorPercent: config.motorPercent };
  const exactChangeLamp = board.openIndicator('exact-change');
  const outOfServiceLamp = board.openIndicator('out-of-service');
  const dispenser = new Dispenser(board, dispenserOptions);

  const log = (level: LogLevel, message: string): void => board.log(level, message);
  const poll = config.pollIntervalMs;
  // Each device's currency is checked against the machine's; one in other money is not enabled.
  const currency = isoNumeric(config.currency);
  // Each device's events go to the part that listens (listeners.ts); those parts are built below and set in.
  const changerEvents = new ChangerListener({ decimals: config.decimals, currency, timing: { pollIntervalMs: poll, nonResponseMs: 2000, resetIntervalMs: 10000, justResetWaitMs: 500 }, log });
  const billEvents = new BillListener({ decimals: config.decimals, currency, timing: { pollIntervalMs: poll, nonResponseMs: 5000, resetIntervalMs: 10000, justResetWaitMs: 500 }, log });
  const readerEvents = config.cashless
    ? new ReaderListener(
        { decimals: config.decimals, currency, timing: { pollIntervalMs: poll, nonResponseMs: 5000, resetIntervalMs: 10000, justResetWaitMs: 500 }, log },
        { serial: config.machineId.slice(0, 12), version: 0x0100 },
      )
    : undefined;
  const changer = new CoinChanger(changerEvents);
  const bill = new BillValidator(billEvents);
  const link = new WordLink({ serial: board.mdb, timers: board.timers });
  const bus = new MdbBus(link, board.clock, board.timers);
  // Flash erases (tens of ms, cache off) happen between exchanges, so a record a peripheral's ACK waits for only writes.
  bus.onQuiet = () => {
    journal.prepare();
  };
  const reader = readerEvents ? new CashlessReader(readerEvents) : undefined;

  const controller = new Controller({ board, config, inventory, journal, ledger, vendOptions, dispenser, changer, bill, reader, bus, onHealthChanged: hooks.onHealthChanged });
  const sale = controller;
  const payouts = new PayoutSession({ sale, board, changer, bus, journal, ledger, maxCredit: config.maxCredit });
  const panel = new Panel({ sale, board, decimals: config.decimals, messageMs: config.messageMs, inventory, ledger, journal, payouts, exactChangeLamp, outOfServiceLamp, changer, bill, reader });
  const updater: Updater = new Updater({
    board,
    journal,
    ledger,
    settings: config.update,
    running: FIRMWARE_VERSION,
    journalFormat: JOURNAL_FORMAT,
    idle: () => {
      const m = controller.machine;
      return !controller.busy && m.state === 'IDLE' && m.credit === 0 && m.escrow === 0 && !m.card;
    },
    showUpdating: () => panel.showUpdating(),
    // A device refused for its currency answers all the same: it does not hold a new image back.
    // The devices fitted (a coin-only machine's probation does not wait for a bill validator it never had); one refused for its currency answered.
    devicesReady: () =>
      (!config.changer || changer.ready || changer.refused !== '') && (!config.billValidator || bill.ready || bill.refused !== '') && (reader ? reader.ready || reader.refused !== '' : true),
    wallNow: (): number | undefined => remote.commander.wallNow() || undefined,
  });
  const remote: RemoteActions = new RemoteActions({
    sale,
    board,
    config,
    inventory,
    ledger,
    journal,
    dispenser,
    panel,
    payouts,
    changer,
    bill,
    reader,
    vendOptions,
    dispenserOptions,
    updater,
    firmware: hooks.firmware,
    onReport: hooks.onReport,
    onAudit: hooks.onAudit,
  });
  const card = reader ? new CardSession({ sale, board, reader, bus, journal, ledger, inventory, panel, remote }) : undefined;
  controller.connect({ panel, payouts, card, remote });
  changerEvents.payouts = payouts;
  changerEvents.sale = controller;
  billEvents.sale = controller;
  if (readerEvents) {
    readerEvents.card = card;
    readerEvents.sale = controller;
  }
  const reports = new Reports({ sale, board, inventory, ledger, journal, changer, bill, reader, link, panel, remote, fitted: { changer: config.changer, bill: config.billValidator }, money: { currency: config.currency, decimals: config.decimals } });

  if (config.changer) bus.add(changer);
  if (config.billValidator) bus.add(bill);
  if (reader) {
    readerPrices(reader, inventory);
    bus.add(reader);
  }
  board.openSelectionPanel({
    onSelect: (code, quantity) => controller.select(code, quantity),
    onCancel: () => controller.cancel(),
  });
  panel.render();
  return { inventory, journal, ledger, controller, remote, reports, bus, updater };
}
