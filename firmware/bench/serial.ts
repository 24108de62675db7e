/**
 * The serial port the bench protocol runs over, in the shape of board.ts
 * (ECMA-419 `embedded:io/serial` with `format: "buffer"`): the board opens
 * it with callbacks, `read()` drains what has arrived, `write()` queues
 * bytes. On an ESP32 this is the USB/UART console (115200 8N1); on the host,
 * tools/hil/serial-bench.ts gives it a pseudo-terminal.
 *
 * Nothing here may depend on Node or on the simulator.
 */

/** A byte-stream serial port. */
export interface ByteSerial {
  /** Everything received since the last read, or undefined when nothing has arrived. */
  read(): ArrayBuffer | undefined;
  /**
   * Queue bytes for transmission. Never blocks and never drops: the board's
   * port buffers what the UART cannot take yet (the ESP32 UART driver's TX
   * ring, or a queue the board adapter keeps), so a line goes out whole.
   */
  write(data: ArrayBuffer | Uint8Array): void;
  close(): void;
}

export interface ByteSerialOptions {
  /** 115200 unless the bench says otherwise; a pseudo-terminal ignores it. */
  baud?: number;
  /** Called when bytes can be read; `count` is how many (at least). */
  onReadable(count: number): void;
}

/**
 * What a board built with the bench manifest adds to `Board`: the port the
 * bench talks to it on. A separate interface (not a member of `Board`) so a
 * production build carries no bench code at all.
 */
export interface BenchBoard {
  openBenchSerial(options: ByteSerialOptions): ByteSerial;
}
