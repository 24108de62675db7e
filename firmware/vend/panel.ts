/**
 * The panel the customer sees: the display's lines (screen.ts words them
 * from the machine's state), the exact-change and out-of-service lamps, and
 * notices that show for a while ("SOLD OUT", "Thank you!") until they time
 * out or the customer acts. The display and the lamps are written only
 * when what they show changes.
 */
import type { DigitalOutput, Board, TimerId } from '../board.js';
import type { Journal } from '../journal/journal.js';
import type { BillValidator } from '../mdb/bill.js';
import type { CashlessReader } from '../mdb/cashless.js';
import type { CoinChanger } from '../mdb/changer.js';
import type { Refusal } from '../mdb/peripheral.js';
import type { Ledger } from '../journal/ledger.js';
import type { Sale } from './controller.js';
import type { Inventory } from './inventory.js';
import type { PayoutSession } from './payout.js';
import type { Notice } from './ports.js';
import { fit, noticeLines, stateLines } from './screen.js';

/** After boot, an unready machine says it is starting rather than that payment is unavailable. */
const STARTING_MS = 10000;

export interface PanelOptions {
  sale: Sale;
  board: Board;
  decimals: number;
  /** How long a notice shows. */
  messageMs: number;
  inventory: Inventory;
  ledger: Ledger;
  journal: Journal;
  /** Whether only exact change can be taken. */
  payouts: PayoutSession;
  exactChangeLamp: DigitalOutput;
  outOfServiceLamp: DigitalOutput;
  /** The payment devices, to say when one is refused (its currency or scaling). */
  changer: CoinChanger;
  bill: BillValidator;
  reader: CashlessReader | undefined;
}

/** One display line for a refused device. */
function refusedLine(device: string, why: Refusal): string {
  return why === 'currency' ? `${device}: wrong currency` : `${device}: bad money unit`;
}

export class Panel {
  private readonly sale: Sale;
  private readonly board: Board;
  private readonly decimals: number;
  private readonly messageMs: number;
  private readonly inventory: Inventory;
  private readonly ledger: Ledger;
  private readonly journal: Journal;
  private readonly payouts: PayoutSession;
  private readonly exactChangeLamp: DigitalOutput;
  private readonly outOfServiceLamp: DigitalOutput;
  private readonly changer: CoinChanger;
  private readonly bill: BillValidator;
  private readonly reader: CashlessReader | undefined;
  private readonly bootedAt: number;
  private lines: string[] = [];
  private lamps = -1;
  private exact = false;
  private notice_: Notice | null = null;
  private noticeSlot = -1;
  private noticeTimer: TimerId | undefined;
  /** The slot a remote vend is dispensing from, shown instead of the machine's state (-1: none). */
  private remoteSlot = -1;

  private updating = false;

  constructor(options: PanelOptions) {
    this.sale = options.sale;
    this.board = options.board;
    this.decimals = options.decimals;
    this.messageMs = options.messageMs;
    this.inventory = options.inventory;
    this.ledger = options.ledger;
    this.journal = options.journal;
    this.payouts = options.payouts;
    this.exactChangeLamp = options.exactChangeLamp;
    this.outOfServiceLamp = options.outOfServiceLamp;
    this.changer = options.changer;
    this.bill = options.bill;
    this.reader = options.reader;
    this.bootedAt = options.board.clock.now();
  }

  /** What the display shows now. */
  get display(): readonly string[] {
    return this.lines;
  }

  /** The exact-change lamp is lit. */
  get exactChangeOnly(): boolean {
    return this.exact;
  }

  /** A customer's action replaces whatever message was showing; the display is redrawn once. */
  customer(action: () => void): void {
    if (this.notice_ !== null) {
      this.notice_ = null;
      if (this.noticeTimer !== undefined) this.board.timers.clear(this.noticeTimer);
      this.noticeTimer = undefined;
    }
    action();
    this.render();
  }

  /** Show `notice` (about `slot`) for a while. */
  notice(notice: Notice, slot: number): void {
    this.notice_ = notice;
    this.noticeSlot = slot;
    if (this.noticeTimer !== undefined) this.board.timers.clear(this.noticeTimer);
    this.noticeTimer = this.board.timers.set(() => {
      this.noticeTimer = undefined;
      this.notice_ = null;
      this.render();
    }, this.messageMs);
    this.render();
  }

  /** The machine is about to restart into new firmware: say so until it does. */
  showUpdating(): void {
    this.updating = true;
    this.render();
  }

  /** A remote vend is dispensing from `slot` (-1: it ended); shown at the next redraw. */
  showRemote(slot: number): void {
    this.remoteSlot = slot;
  }

  /** The first refused device, as a display line ('' none). */
  private refused(): string {
    const r = this.reader?.refused ?? '';
    if (r !== '') return refusedLine('Card', r);
    const c = this.changer.refused;
    if (c !== '') return refusedLine('Coin', c);
    const b = this.bill.refused;
    return b !== '' ? refusedLine('Bill', b) : '';
  }

  render(): void {
    const m = this.sale.machine;
    const exact = this.payouts.exactChange();
    this.exact = exact;
    const refused = this.refused();
    const ctx = {
      decimals: this.decimals,
      exactChangeOnly: exact,
      refused,
      fault: this.ledger.locked
        ? 'Closed'
        : this.journal.stopped
          ? this.journal.level === 'fault'
            ? 'Storage fault'
            : 'Storage full'
          : this.board.clock.now() - this.bootedAt < STARTING_MS
            ? 'Starting...'
            : refused !== ''
              ? refused
              : 'Payment unavailable',
    };
    const raw = this.updating
      ? ['Updating,', 'back in a minute']
      : this.remoteSlot >= 0
        ? ['Remote purchase', `Vending ${this.inventory.codes[this.remoteSlot]!}`]
        : this.notice_
          ? noticeLines(this.notice_, this.noticeSlot, m, this.inventory, ctx)
          : stateLines(m, this.inventory, ctx);
    const lamps = (exact ? 1 : 0) | (m.state === 'ERROR' ? 2 : 0);
    if (lamps !== this.lamps) {
      this.lamps = lamps;
      this.exactChangeLamp.write(lamps & 1 ? 1 : 0);
      this.outOfServiceLamp.write(lamps & 2 ? 1 : 0);
    }
    const display = this.board.display;
    const lines = fit(raw, display.columns, display.rows);
    let same = lines.length === this.lines.length;
    for (let i = 0; same && i < lines.length; i++) if (lines[i] !== this.lines[i]) same = false;
    if (!same) {
      this.lines = lines;
      display.show(lines);
    }
  }
}
