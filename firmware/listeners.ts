/**
 * Where each payment device's events go: one small class a device, whose
 * methods pass each event to the part that listens to it (the sale, the
 * payout session, the card session, the log). An instance is the driver's
 * options object, since the drivers call their callbacks as methods of it.
 *
 * Methods rather than arrow functions made at boot: on the board the code is
 * preloaded into flash, while each closure would take about ten heap slots of
 * RAM for as long as the machine runs (docs/benchmarks.md).
 */
import type { BillValidatorOptions } from './mdb/bill.js';
import type { CashlessIdentityOptions, CashlessReaderOptions } from './mdb/cashless.js';
import type { CoinChangerOptions } from './mdb/changer.js';
import type { PeripheralLog, PeripheralTiming } from './mdb/peripheral.js';
import type { CardSession } from './vend/card.js';
import type { Controller } from './vend/controller.js';
import type { PayoutSession } from './vend/payout.js';

/** What every driver's options carry besides its callbacks. */
export interface DeviceSetup {
  decimals: number;
  /** The machine's ISO 4217 numeric currency (0: not checked). */
  currency: number;
  timing: PeripheralTiming;
  log: PeripheralLog;
}

/** What the three have in common: the driver's setup. Status bytes and the reader's cancel go to the log, by the drivers themselves. */
abstract class DeviceListener {
  readonly decimals: number;
  readonly currency: number;
  readonly timing: PeripheralTiming;
  readonly log: PeripheralLog;
  /** Set once the parts exist: they are built after the drivers they listen to. */
  sale: Controller | undefined;

  constructor(setup: DeviceSetup) {
    this.decimals = setup.decimals;
    this.currency = setup.currency;
    this.timing = setup.timing;
    this.log = setup.log;
  }

  /** The device answers but is not enabled (its currency or scaling): the display and the fleet hear of it. */
  deviceRefused(): void {
    this.sale?.changed();
  }
}

export class ChangerListener extends DeviceListener implements CoinChangerOptions {
  /** Set once the parts exist: they are built after the drivers they listen to. */
  payouts: PayoutSession | undefined;

  changerReady(): void {
    this.payouts!.changerReady();
  }
  changerLost(): void {
    this.payouts!.changerLost();
  }
  payoutStarting(tubes: Uint8Array): void {
    this.payouts!.payoutStarting(tubes);
  }
  coinsDispensedManually(type: number, count: number, value: number): void {
    this.payouts!.coinsDispensedManually(type, count, value);
  }
  coinDeposited(type: number, value: number, routing: number): void {
    this.sale!.coinDeposited(type, value, routing);
  }
  coinReturnPressed(): void {
    this.sale!.cancel();
  }
}

export class BillListener extends DeviceListener implements BillValidatorOptions {

  billReady(): void {
    this.sale!.billReady();
  }
  billLost(): void {
    this.sale!.changed();
  }
  billEscrowed(type: number, value: number): void {
    this.sale!.billEscrowed(type, value);
  }
  billStacked(type: number, value: number): void {
    this.sale!.billStacked(type, value);
  }
  billReturned(type: number, value: number): void {
    this.sale!.billReturned(type, value);
  }
}

export class ReaderListener extends DeviceListener implements CashlessReaderOptions {
  readonly identity: CashlessIdentityOptions;
  /** The card session exists whenever the reader does; set once it is built. */
  card: CardSession | undefined;

  constructor(setup: DeviceSetup, identity: CashlessIdentityOptions) {
    super(setup);
    this.identity = identity;
  }

  readerReady(): void {
    this.card!.readerReady();
  }
  readerLost(): void {
    this.card!.readerLost();
  }
  sessionBegan(funds: number): void {
    this.card!.sessionBegan(funds);
  }
  sessionCancelRequested(): void {
    this.card!.sessionCancelRequested();
  }
  vendApproved(amount: number): void {
    this.card!.vendApproved(amount);
  }
  vendDenied(): void {
    this.card!.vendDenied();
  }
  vendReported(success: boolean): void {
    this.card!.vendReported(success);
  }
  sessionEnded(): void {
    this.card!.sessionEnded();
  }
}
