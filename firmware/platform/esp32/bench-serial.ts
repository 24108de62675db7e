/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The bench port of the bench build (docs/bench-protocol.md): the console
 * UART (UART0 on GPIO 1/3, the USB bridge of a DevKit) as
 * firmware/bench/serial.ts's ByteSerial, on `embedded:io/serial` (8N1).
 *
 * The UART's transmit FIFO holds 128 bytes and the SDK's write() throws
 * rather than take more than fits, so lines wait in a queue here and go out
 * as `onWritable` reports room: nothing is dropped, and a line is never cut
 * by another (the board's log goes through the same queue, see logLine).
 */
import Serial from 'embedded:io/serial';
import type { ByteSerial, ByteSerialOptions } from '../../bench/serial.js';
import type { BenchSettings } from './bench-settings.js';

/** A queue longer than this means the bench stopped reading: the oldest log lines go first. */
const MAX_QUEUED = 32768;

export class BenchSerial implements ByteSerial {
  private readonly serial: Serial;
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  /** Bytes of the head chunk already written. */
  private offset = 0;
  private room = 0;

  constructor(settings: BenchSettings, options: ByteSerialOptions) {
    this.serial = new Serial({
      port: settings.port,
      transmit: settings.transmit,
      receive: settings.receive,
      baud: options.baud ?? settings.baud,
      format: 'buffer',
      onReadable: (count: number) => options.onReadable(count),
      onWritable: (count: number) => {
        this.room = count;
        this.pump();
      },
    });
  }

  read(): ArrayBuffer | undefined {
    return this.serial.read();
  }

  write(data: ArrayBuffer | Uint8Array): void {
    const bytes = data instanceof Uint8Array ? data.slice() : new Uint8Array(data.slice(0));
    this.queue.push(bytes);
    this.queued += bytes.length;
    this.pump();
  }

  /** A console line that is not part of the protocol (the runner skips it), whole. */
  logLine(text: string, encode: (s: string) => ArrayBuffer): void {
    if (this.queued > MAX_QUEUED) return; // nobody is listening: keep the protocol's lines, drop the log
    this.write(encode(text + '\n'));
  }

  close(): void {
    this.serial.close();
  }

  private pump(): void {
    while (this.queue.length > 0 && this.room > 0) {
      const head = this.queue[0]!;
      const n = Math.min(this.room, head.length - this.offset);
      try {
        this.serial.write(head.subarray(this.offset, this.offset + n));
      } catch {
        this.room = 0; // the FIFO is fuller than we thought: wait for onWritable
        return;
      }
      this.room -= n;
      this.offset += n;
      this.queued -= n;
      if (this.offset === head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
  }
}
