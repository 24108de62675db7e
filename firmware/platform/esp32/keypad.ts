/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The selection panel: a key matrix (4 x 4 by default: digits, A-D, `*`,
 * `#`) scanned by the board, which hands the firmware completed selections.
 *
 * Idle costs nothing: all rows are held low and a key press pulls its
 * column low, which interrupts (falling edge). Then the matrix is scanned
 * every SCAN_MS until every key is up; a key counts once it is seen in two
 * scans in a row (debounce). Rows are open-drain so two keys pressed in one
 * column cannot short two rows together; columns need pull-ups (internal
 * on GPIO 0..33, external on the input-only 34..39).
 *
 * What the customer types: a slot code then `#` (`B4#`), optionally with a
 * quantity digit before a code that starts with a letter (`3B4#` buys
 * three); `*` clears what was typed, or cancels (coin return) when nothing
 * was.
 */
import Digital from 'embedded:io/digital';
import Timer, { type TimerHandle } from 'timer';
import type { SelectionPanel, SelectionPanelOptions } from '../../board.js';
import type { KeypadSettings } from './settings.js';

const SCAN_MS = 10;
const MAX_TYPED = 6;

export class Keypad implements SelectionPanel {
  private readonly keys: string;
  private readonly options: SelectionPanelOptions;
  private readonly rows: Digital[];
  private readonly columns: Digital[];
  private scanner: TimerHandle | undefined;
  /** Key index seen in the last scan (-1 none), and the one reported (held). */
  private seen = -1;
  private held = -1;
  private typed = '';

  constructor(settings: KeypadSettings, options: SelectionPanelOptions) {
    this.keys = settings.keys;
    this.options = options;
    this.rows = settings.rows.map((pin) => new Digital({ pin, mode: Digital.OutputOpenDrain }));
    for (const r of this.rows) r.write(0);
    this.columns = settings.columns.map(
      (pin) =>
        new Digital({
          pin,
          mode: pin >= 34 ? Digital.Input : Digital.InputPullUp,
          edge: Digital.Falling,
          onReadable: () => this.wake(),
        }),
    );
  }

  close(): void {
    Timer.clear(this.scanner);
    this.scanner = undefined;
    for (const d of [...this.rows, ...this.columns]) d.close();
  }

  private wake(): void {
    if (this.scanner === undefined) this.scanner = Timer.repeat(() => this.scan(), SCAN_MS);
  }

  private scan(): void {
    const key = this.pressed();
    if (key === this.seen) {
      if (key !== this.held) {
        this.held = key;
        if (key >= 0) this.press(this.keys.charAt(key));
      }
      if (key < 0) {
        // All keys up: back to waiting for an edge.
        Timer.clear(this.scanner);
        this.scanner = undefined;
      }
    }
    this.seen = key;
  }

  /** The first key down, row by row (-1: none). Leaves every row low again, ready for the next edge. */
  private pressed(): number {
    const rows = this.rows;
    const columns = this.columns;
    let found = -1;
    for (const r of rows) r.write(1);
    for (let i = 0; i < rows.length && found < 0; i++) {
      rows[i]!.write(0);
      for (let j = 0; j < columns.length; j++) {
        if (columns[j]!.read() === 0) {
          found = i * columns.length + j;
          break;
        }
      }
      rows[i]!.write(1);
    }
    for (const r of rows) r.write(0);
    return found;
  }

  private press(key: string): void {
    if (key === '*') {
      if (this.typed === '') this.options.onCancel();
      this.typed = '';
      return;
    }
    if (key === '#') {
      const typed = this.typed;
      this.typed = '';
      const m = /^([1-9]?)([A-Z][0-9]{1,3})$/.exec(typed) ?? /^()([0-9]{1,4})$/.exec(typed);
      if (m) this.options.onSelect(m[2]!, m[1] ? Number(m[1]) : 1);
      return;
    }
    if (this.typed.length < MAX_TYPED) this.typed += key;
  }
}
