/**
 * What the machine reports about itself. `status()` is the one builder: it
 * reads the machine's state once into a FirmwareStatus (for the bench, the
 * simulator and tests); `telemetry()` is the fleet's view of that snapshot
 * (docs/uplink.md), adding only what the snapshot does not carry (slot
 * categories and catalogue numbers, stacker, temperature, errors).
 */
import type { UpdateStatus } from '../update/updater.js';
import type { Board, TemperatureSensor } from '../board.js';
import type { CommandStats } from '../command/commander.js';
import type { Journal, JournalStatus } from '../journal/journal.js';
import type { Ledger } from '../journal/ledger.js';
import { Counter } from '../journal/vocabulary.js';
import type { BillValidator } from '../mdb/bill.js';
import type { CashlessReader } from '../mdb/cashless.js';
import type { CoinChanger } from '../mdb/changer.js';
import type { LinkStats, WordLink } from '../mdb/link.js';
import type { Refusal } from '../mdb/peripheral.js';
import type { UplinkStatus } from '../uplink/uplink.js';
import type { Sale } from './controller.js';
import type { Inventory } from './inventory.js';
import type { Panel } from './panel.js';
import type { VendState } from './ports.js';
import type { RemoteActions } from './remote.js';
import { COIN_TYPES } from '../money/coins.js';

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
  /** A firmware update under way (docs/updates.md). */
  update?: UpdateStatus;
  /** The version of the image running, as compiled into it (set by main.ts, which knows it). */
  firmware?: string;
  display: string[];
  /** `cashless` only when a reader is fitted (configuration `cashless`). */
  /** Each payment device fitted (a key only for those): ready or not. */
  devices: { changer?: boolean; bill?: boolean; cashless?: boolean };
  /** Devices that answer but are not enabled, and why (their currency, or a scaling that cannot express the machine's money); absent when none is. */
  refused?: { changer?: RefusedDevice; bill?: RefusedDevice; cashless?: RefusedDevice };
  link: LinkStats;
}

/** A device refused: why, and the currency it reported (ISO 4217 numeric), scale factor and decimals. */
export interface RefusedDevice {
  reason: Refusal;
  currency: number;
  scale: number;
  decimals: number;
}

function refusedDevice(reason: Refusal, setup: { currency: number; scale: number; decimals: number }): RefusedDevice {
  return { reason, currency: setup.currency, scale: setup.scale, decimals: setup.decimals };
}

export interface ReportSources {
  sale: Sale;
  board: Board;
  inventory: Inventory;
  ledger: Ledger;
  journal: Journal;
  changer: CoinChanger;
  bill: BillValidator;
  reader: CashlessReader | undefined;
  link: WordLink;
  panel: Panel;
  remote: RemoteActions;
  /** Which of the changer and the bill validator the machine has (config). */
  fitted: { changer: boolean; bill: boolean };
  /** The machine's money (config): every amount it reports is in minor units of this currency. */
  money: { currency: string; decimals: number };
}

export class Reports {
  private readonly sale: Sale;
  private readonly board: Board;
  private readonly inventory: Inventory;
  private readonly ledger: Ledger;
  private readonly journal: Journal;
  private readonly changer: CoinChanger;
  private readonly bill: BillValidator;
  private readonly reader: CashlessReader | undefined;
  private readonly link: WordLink;
  private readonly panel: Panel;
  private readonly remote: RemoteActions;
  private readonly fitted: { changer: boolean; bill: boolean };
  private readonly money: { currency: string; decimals: number };
  /** Opened at the first telemetry (null: not yet asked; undefined: the board has none). */
  private thermometer: TemperatureSensor | undefined | null = null;

  constructor(sources: ReportSources) {
    this.sale = sources.sale;
    this.board = sources.board;
    this.inventory = sources.inventory;
    this.ledger = sources.ledger;
    this.journal = sources.journal;
    this.changer = sources.changer;
    this.bill = sources.bill;
    this.reader = sources.reader;
    this.link = sources.link;
    this.panel = sources.panel;
    this.remote = sources.remote;
    this.fitted = sources.fitted;
    this.money = sources.money;
  }

  status(): FirmwareStatus {
    const { sale, inventory: inv, changer, bill, reader, ledger } = this;
    const m = sale.machine;
    const slots: SlotStatus[] = [];
    for (let i = 0; i < inv.size; i++) {
      slots.push({ code: inv.codes[i]!, product: inv.products[i]!, price: inv.prices[i]!, qty: inv.qty[i]!, capacity: inv.capacity[i]!, outOfService: inv.fault[i] === 1 });
    }
    const tubes: TubeStatus[] = [];
    for (let t = 0; t < COIN_TYPES; t++) {
      if (changer.setup.routable & (1 << t) && changer.values[t]! > 0) {
        tubes.push({ type: t, value: changer.values[t]!, count: changer.tubes[t]!, journaled: ledger.tubes[t]! });
      }
    }
    const c = ledger.total;
    let refused: FirmwareStatus['refused'];
    if (changer.refused !== '' || bill.refused !== '' || (reader !== undefined && reader.refused !== '')) {
      refused = {};
      if (changer.refused !== '') refused.changer = refusedDevice(changer.refused, changer.setup);
      if (bill.refused !== '') refused.bill = refusedDevice(bill.refused, bill.setup);
      if (reader && reader.refused !== '') refused.cashless = refusedDevice(reader.refused, reader.setup);
    }
    return {
      state: m.state,
      credit: m.credit,
      escrow: m.escrow,
      selection: m.selection >= 0 ? inv.codes[m.selection]! : null,
      quantity: m.quantity,
      busy: sale.busy,
      ready: changer.ready || bill.ready || (reader?.ready ?? false),
      slots,
      tubes,
      counters: {
        sales: c[Counter.SALES]!,
        revenue: c[Counter.REVENUE]!,
        coinsToTubes: c[Counter.COINS_TUBES]!,
        coinsToCashbox: c[Counter.COINS_CASHBOX]!,
        billsStacked: c[Counter.BILLS_VALUE]!,
        coinsPaidOut: c[Counter.PAID_VALUE]!,
        coinsPaidOutCount: c[Counter.PAID_COUNT]!,
        billsReturned: c[Counter.BILLS_RETURNED]!,
        failedVends: c[Counter.FAILED_VENDS]!,
        uncertainVends: c[Counter.UNCERTAIN_VENDS]!,
        cashlessSales: c[Counter.CASHLESS_SALES]!,
        cashlessRevenue: c[Counter.CASHLESS_VALUE]!,
        cashlessUnrefunded: c[Counter.CASHLESS_UNREFUNDED]!,
        coinsManual: c[Counter.MANUAL_VALUE]!,
        boots: c[Counter.BOOTS]!,
        ignoredEvents: sale.ignoredEvents,
      },
      journal: this.journal.status(),
      locked: ledger.locked,
      commands: { ...this.remote.commander.stats },
      remoteSales: c[Counter.REMOTE_SALES]!,
      display: this.panel.display.slice(),
      devices: { ...(this.fitted.changer ? { changer: changer.ready } : {}), ...(this.fitted.bill ? { bill: bill.ready } : {}), ...(reader ? { cashless: reader.ready } : {}) },
      ...(refused ? { refused } : {}),
      link: { ...this.link.stats },
    };
  }

  /** What the fleet sees of the machine (telemetry body, docs/uplink.md): a view of `status()`. */
  telemetry(): { [key: string]: unknown } {
    const st = this.status();
    const { inventory: inv, bill, ledger } = this;
    const temperature = this.temperature();
    const errors: string[] = [];
    // A refused device answers: it is not offline, it is in the wrong money (or units).
    const refused = st.refused;
    if (refused?.changer) errors.push('changer-currency-mismatch');
    else if (st.devices.changer === false) errors.push('changer-offline');
    if (refused?.bill) errors.push('bill-validator-currency-mismatch');
    else if (st.devices.bill === false) errors.push('bill-validator-offline');
    if (refused?.cashless) errors.push('cashless-currency-mismatch');
    else if (st.devices.cashless === false) errors.push('cashless-offline');
    if (st.journal.level !== 'ok') errors.push(`journal-${st.journal.level}`);
    if (st.locked) errors.push('locked');
    if (this.panel.exactChangeOnly) errors.push('exact-change-only');
    if (bill.stackerFull) errors.push('bill-stacker-full');
    for (const s of st.slots) if (s.outOfService) errors.push(`slot-fault:${s.code}`);
    const c = st.counters;
    return {
      state: st.state,
      // Prices, tubes and counters are minor units of this: the fleet never adds up two currencies.
      currency: this.money.currency,
      decimals: this.money.decimals,
      slots: st.slots.map((s, i) => ({
        code: s.code,
        product: s.product,
        category: inv.categories[i]!,
        qty: s.qty,
        capacity: s.capacity,
        price: s.price,
        ...(inv.sku[i] ? { sku: inv.sku[i] } : {}),
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
        remoteRevenue: ledger.total[Counter.REMOTE_VALUE]!,
        commandsRejected: ledger.total[Counter.COMMANDS_REJECTED]!,
      },
      locked: st.locked,
      // How often telemetry comes at the latest: the gateway's silence alarm waits for three of these.
      intervalS: Math.round(this.remote.telemetryIntervalMs() / 1000),
      ...(st.devices.bill ? { stacker: { count: bill.stackerCount, capacity: bill.setup.stackerCapacity } } : {}),
      journal: { lastSeq: st.journal.lastSeq, unsynced: st.journal.unsynced, fill: st.journal.fill, level: st.journal.level, ...(st.journal.faults ? { faults: st.journal.faults } : {}) },
      ...(temperature !== undefined ? { temperature } : {}),
      ...(refused ? { refused } : {}),
      errors,
    };
  }

  /** Cabinet temperature in °C (one decimal), if the machine has a sensor. */
  private temperature(): number | undefined {
    if (this.thermometer === null) this.thermometer = this.board.openTemperatureSensor?.();
    const t = this.thermometer?.sample()?.temperature;
    return t === undefined || !Number.isFinite(t) ? undefined : Math.round(t * 10) / 10;
  }
}
