/**
 * The payout session: pays the purchase state machine's change in coins
 * (its `payout` port) and keeps the tubes and the journal in step.
 *
 * A payout is up to PAYOUT_ROUNDS rounds, each planned from the changer's
 * fresh tube counts and journaled before the first DISPENSE
 * (`payoutStarting`) and when the changer says what it paid. An absent
 * changer is waited for, but not for ever. A round in flight when the
 * changer goes away is "orphaned" if it stays away: the credit left is held
 * (the machine goes out of service) until the changer is back to say what
 * the round paid. A payout a power cut interrupted is settled from the tube
 * counts once the changer is back after the reboot.
 *
 * Also the change planner for the changer's coin set: `canPay` for the
 * machine, and whether only exact change can be taken.
 */
import type { Board, TimerId } from '../board.js';
import type { Journal } from '../journal/journal.js';
import type { Ledger } from '../journal/ledger.js';
import type { MdbBus } from '../mdb/bus.js';
import type { CoinChanger } from '../mdb/changer.js';
import { ChangeMaker, type ChangePlan } from '../money/change.js';
import type { Sale } from './controller.js';
import { COIN_TYPES } from '../money/coins.js';

/**
 * Give up waiting for an absent changer: before a round, keep the money as
 * credit; with a round in flight, hold the credit out of service until the
 * changer is back to say what it paid.
 */
const PAYOUT_WAIT_MS = 60000;
const PAYOUT_ROUNDS = 3;
/**
 * The planner runs one slice (SLICE_NODES search nodes, about 10 ms of board compute) a timer turn, this far
 * apart: real coin sets settle in the first slice; a pathological set's plan (up to millions of nodes) takes
 * many, and the MDB polls go on between them.
 */
const PLAN_SLICE_GAP_MS = 1;

export interface PayoutSessionOptions {
  sale: Sale;
  board: Board;
  changer: CoinChanger;
  bus: MdbBus;
  journal: Journal;
  ledger: Ledger;
  /** The planner covers amounts up to the machine's maximum credit. */
  maxCredit: number;
}

export class PayoutSession {
  private readonly sale: Sale;
  private readonly board: Board;
  private readonly changer: CoinChanger;
  private readonly bus: MdbBus;
  private readonly journal: Journal;
  private readonly ledger: Ledger;
  private readonly maxCredit: number;
  private changeMaker: ChangeMaker | undefined;
  /** The coin values the planner was built for. */
  private plannedValues: Int32Array = new Int32Array(COIN_TYPES);
  /** The tubes changed since exact-change was last worked out. */
  private tubesDirty = true;
  private exactOnly = false;
  private asked = 0;
  private paid = 0;
  private rounds = 0;
  /** What the round in flight was planned to pay. */
  private planned = 0;
  private waiting: TimerId | undefined;
  /** The next slice of a plan under way (the planner that holds it: the changer may be swapped meanwhile). */
  private planning: TimerId | undefined;
  private planner: ChangeMaker | undefined;
  private active = false;
  /** The changer went away with a round in flight and did not come back in time: the machine was handed back, the round settles when it returns. */
  private orphaned = false;
  private orphanTimer: TimerId | undefined;
  /** The journal has a payout the power cut interrupted: settled from the tubes when the changer is back. */
  private recovering: boolean;

  constructor(options: PayoutSessionOptions) {
    this.sale = options.sale;
    this.board = options.board;
    this.changer = options.changer;
    this.bus = options.bus;
    this.journal = options.journal;
    this.ledger = options.ledger;
    this.maxCredit = options.maxCredit;
    this.recovering = options.ledger.openPayout > 0;
  }

  /** Paying, or waiting for the changer to pay (not once the round is orphaned). */
  get busy(): boolean {
    return this.active || (this.changer.paying && !this.orphaned);
  }

  /** Credit is held until the changer says what a payout paid: no sales meanwhile. */
  get holding(): boolean {
    return this.recovering || this.orphaned;
  }

  /** True when `amount` can be paid exactly from the coins in the tubes. */
  canPay(amount: number): boolean {
    if (amount === 0) return true;
    if (!this.changer.ready || !this.changeMaker) return false;
    return this.changeMaker.canPay(amount, this.changer.tubes);
  }

  /** The tubes cannot pay change for the largest coin (worked out again only when they changed). */
  exactChange(): boolean {
    if (this.tubesDirty && this.changeMaker && this.changer.ready) {
      this.tubesDirty = false;
      const values = this.changer.values;
      let largest = 0;
      for (let t = 0; t < COIN_TYPES; t++) if (values[t]! > largest) largest = values[t]!;
      this.exactOnly = !this.changeMaker.coversUpTo(largest, this.changer.tubes);
    }
    return this.exactOnly;
  }

  /** Coins went into or out of the tubes (or prices changed): exact-change is worked out again. */
  tubesChanged(): void {
    this.tubesDirty = true;
  }

  /** Pay `amount` (or as much of it as possible); the machine hears `paidOut` or `payoutUnsettled`. */
  start(amount: number): void {
    this.asked = amount;
    this.paid = 0;
    this.rounds = 0;
    this.active = true;
    this.board.timers.set(() => this.round(), 0);
  }

  private round(): void {
    if (this.waiting !== undefined) {
      this.board.timers.clear(this.waiting);
      this.waiting = undefined;
    }
    const remaining = this.asked - this.paid;
    if (remaining <= 0 || this.rounds >= PAYOUT_ROUNDS) return this.finished();
    if (!this.changer.ready || !this.changeMaker) {
      // Wait for the changer to come back, but not for ever.
      this.waiting = this.board.timers.set(() => {
        this.waiting = undefined;
        this.finished();
      }, PAYOUT_WAIT_MS);
      return;
    }
    // Planned in slices, one a timer turn, so that a plan that takes long never holds the polls (see
    // PLAN_SLICE_GAP_MS). Nothing is journaled until the changer is about to pay (payoutStarting), so a cut
    // while planning leaves the journal as a cut before it.
    this.planner = this.changeMaker;
    const plan = this.changeMaker.start(remaining, this.changer.tubes);
    if (plan === undefined) this.planning = this.board.timers.set(() => this.planSlice(), PLAN_SLICE_GAP_MS);
    else this.pay(plan);
  }

  /** The next slice of the plan under way; pays it once settled. */
  private planSlice(): void {
    this.planning = undefined;
    const planner = this.planner;
    if (!this.active || !planner) return;
    const plan = planner.resume();
    if (plan === undefined) {
      this.planning = this.board.timers.set(() => this.planSlice(), PLAN_SLICE_GAP_MS);
      return;
    }
    this.planner = undefined;
    // The changer went away while planning: wait for it and plan again from its tubes then.
    if (!this.changer.ready) return this.round();
    this.pay(plan);
  }

  private pay(plan: ChangePlan): void {
    if (plan.paid === 0) return this.finished();
    const planned = plan.paid;
    this.rounds++;
    this.planned = planned;
    this.changer.payout(plan.coins, (paid, value) => {
      let coins = 0;
      for (let t = 0; t < paid.length; t++) coins += paid[t]!;
      this.journal.payoutDone(value, coins, paid);
      this.tubesDirty = true;
      if (value < planned) this.board.log('warn', `payout short: planned ${planned}, paid ${value}`);
      if (this.orphanTimer !== undefined) this.board.timers.clear(this.orphanTimer);
      this.orphanTimer = undefined;
      if (this.orphaned) return this.settleOrphaned(value);
      this.paid += value;
      // Re-plan the rest from the fresh tube counts only if this round made progress.
      if (value > 0 && this.paid < this.asked) this.board.timers.set(() => this.round(), 0);
      else this.board.timers.set(() => this.finished(), 0);
    });
    this.bus.kick();
  }

  private finished(): void {
    if (!this.active) return;
    if (this.planning !== undefined) this.board.timers.clear(this.planning);
    this.planning = undefined;
    this.planner = undefined;
    if (this.orphanTimer !== undefined) this.board.timers.clear(this.orphanTimer);
    this.orphanTimer = undefined;
    this.active = false;
    if (this.waiting !== undefined) this.board.timers.clear(this.waiting);
    this.waiting = undefined;
    this.sale.machine.paidOut(this.asked, this.paid);
  }

  /**
   * The changer went away with a round in flight and stayed away: what that
   * round paid is unknown until it is back, so the credit left is held, not
   * spendable (the machine shows out of service; `busy` clears so commands,
   * a reboot included, go through). The journal keeps the payout open: the
   * changer's return settles it, or after a reboot the tube counts do.
   */
  private orphan(): void {
    if (!this.active || !this.changer.paying) return;
    this.active = false;
    this.orphaned = true;
    this.board.log('error', `changer gone during a payout: ${this.asked - this.paid} held until it is back`);
    this.sale.machine.payoutUnsettled(this.paid);
    this.sale.changed();
  }

  /** The orphaned round's outcome, now that the changer is back: the journal's credit is what is left. */
  private settleOrphaned(value: number): void {
    this.orphaned = false;
    this.board.log('warn', `changer back: the held payout round had paid ${value}`);
    this.sale.machine.restoreCredit(this.ledger.credit);
    this.sale.changed();
  }

  // ---- the changer's events ------------------------------------------------------------

  changerReady(): void {
    // The coin set only changes if the changer itself was swapped; rebuild the planner then.
    const values = this.routableValues();
    let same = this.changeMaker !== undefined;
    for (let t = 0; same && t < COIN_TYPES; t++) if (values[t] !== this.plannedValues[t]) same = false;
    if (!same) {
      this.changeMaker = new ChangeMaker(values, this.maxCredit);
      this.plannedValues = values;
    }
    this.tubesDirty = true;
    if (this.recovering) this.settleInterrupted();
    this.syncTubes();
    this.sale.changed();
    if (this.active && this.waiting !== undefined) this.round();
  }

  changerLost(): void {
    // A round in flight settles when the changer is back; if it stays away, hand the machine back.
    if (this.active && this.changer.paying && this.orphanTimer === undefined) {
      this.orphanTimer = this.board.timers.set(() => {
        this.orphanTimer = undefined;
        this.orphan();
      }, PAYOUT_WAIT_MS);
    }
    this.sale.changed();
  }

  /** The changer read the tubes and is about to send DISPENSE: journal first. */
  payoutStarting(tubes: Uint8Array): void {
    this.journal.payoutStart(this.planned, tubes);
  }

  coinsDispensedManually(type: number, count: number, value: number): void {
    this.journal.coinsManual(type, count, value);
    this.tubesDirty = true;
  }

  /** The tubes as the changer reports them become the journal's when they differ (a cut, an operator's visit). */
  private syncTubes(): void {
    const known = this.ledger.tubes;
    const now = this.changer.tubes;
    for (let t = 0; t < COIN_TYPES; t++) {
      if (this.changer.setup.routable & (1 << t) && known[t] !== now[t]) {
        this.journal.tubes(now);
        return;
      }
    }
  }

  /** A payout the power cut interrupted: what left the tubes since it started was paid. */
  private settleInterrupted(): void {
    const before = this.ledger.payoutTubes;
    const perType = new Uint8Array(COIN_TYPES);
    let paid = 0;
    let coins = 0;
    for (let t = 0; t < COIN_TYPES; t++) {
      const gone = before[t]! - this.changer.tubes[t]!;
      if (gone > 0 && this.changer.values[t]! > 0) {
        perType[t] = gone;
        coins += gone;
        paid += gone * this.changer.values[t]!;
      }
    }
    this.journal.payoutDone(paid, coins, perType);
    this.recovering = false;
    this.sale.machine.restoreCredit(this.ledger.credit);
    this.board.log('warn', `journal: payout interrupted by the power cut had paid ${paid} in ${coins} coins`);
  }

  /** Coin values of the types that go to tubes (only those can be paid out). */
  private routableValues(): Int32Array {
    const out = new Int32Array(COIN_TYPES);
    for (let t = 0; t < COIN_TYPES; t++) out[t] = this.changer.setup.routable & (1 << t) ? this.changer.values[t]! : 0;
    return out;
  }
}
