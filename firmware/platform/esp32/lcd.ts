/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The customer display: an HD44780 character LCD (20 x 2 or 20 x 4) behind
 * a PCF8574 I2C backpack, the common module. The backpack's port bits:
 * P0 RS, P1 RW (kept low: write only), P2 E, P3 backlight, P4..P7 D4..D7;
 * the controller runs in 4-bit mode, so a byte is two nibbles, each
 * latched by a pulse on E.
 *
 * A line is rewritten only when its text changed, in one I2C transfer
 * (4 bytes a character: about 2 ms for 20 characters at 400 kHz, 8 ms at
 * 100 kHz). Characters outside printable ASCII show as `?` (the HD44780's
 * A00 ROM is ASCII only from 0x20 to 0x7D).
 */
import I2C from 'embedded:io/i2c';
import Time from 'time';
import type { TextDisplay } from '../../board.js';
import { charCode } from '../../text/chars.js';
import type { I2cSettings } from './settings.js';

const RS = 0x01;
const E = 0x04;
const BACKLIGHT = 0x08;
const ROW_ADDRESS = Object.freeze([0x00, 0x40, 0x14, 0x54]); // frozen: preloaded, it needs no RAM alias

/** Only at start-up, where the controller's power-on timing needs real pauses. */
function pause(ms: number): void {
  const start = Time.ticks;
  while (Time.delta(start) < ms) {
    // busy: a few milliseconds, once, before the firmware starts
  }
}

export class CharacterLcd implements TextDisplay {
  readonly columns: number;
  readonly rows: number;
  private readonly io: I2C;
  private readonly shown: string[];
  private readonly buffer: Uint8Array;

  constructor(i2c: I2cSettings, display: { address: number; columns: number; rows: number }) {
    this.columns = display.columns;
    this.rows = display.rows;
    this.io = new I2C({ data: i2c.data, clock: i2c.clock, hz: i2c.hz, address: display.address });
    this.shown = new Array<string>(display.rows).fill('');
    this.buffer = new Uint8Array(4 * (display.columns + 1));
    // HD44780 4-bit initialisation (datasheet figure 24): 3 x "8-bit", then "4-bit".
    pause(50);
    for (const wait of [5, 1, 1]) {
      this.nibble(0x03, 0);
      pause(wait);
    }
    this.nibble(0x02, 0);
    this.command(display.rows > 1 ? 0x28 : 0x20); // 4-bit, lines, 5x8
    this.command(0x0c); // display on, no cursor
    this.command(0x01); // clear
    pause(2);
    this.command(0x06); // left to right, no shift
  }

  show(lines: readonly string[]): void {
    for (let r = 0; r < this.rows; r++) {
      const text = lines[r] ?? '';
      if (text === this.shown[r]) continue;
      this.shown[r] = text;
      const b = this.buffer;
      let n = this.put(b, 0, 0x80 | ROW_ADDRESS[r]!, 0);
      for (let c = 0; c < this.columns; c++) {
        const code = c < text.length ? charCode(text, c) : 0x20;
        n = this.put(b, n, code >= 0x20 && code <= 0x7d ? code : 0x3f, RS);
      }
      this.io.write(b.subarray(0, n));
    }
  }

  private command(byte: number): void {
    const n = this.put(this.buffer, 0, byte, 0);
    this.io.write(this.buffer.subarray(0, n));
  }

  private nibble(value: number, mode: number): void {
    const bits = ((value & 0x0f) << 4) | BACKLIGHT | mode;
    this.io.write(Uint8Array.of(bits | E, bits));
  }

  /** A byte as two E-latched nibbles: 4 bytes on the I2C bus. */
  private put(b: Uint8Array, at: number, byte: number, mode: number): number {
    const high = (byte & 0xf0) | BACKLIGHT | mode;
    const low = ((byte & 0x0f) << 4) | BACKLIGHT | mode;
    b[at] = high | E;
    b[at + 1] = high;
    b[at + 2] = low | E;
    b[at + 3] = low;
    return at + 4;
  }
}
