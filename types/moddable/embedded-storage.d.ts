/** `embedded:storage/flash` as implemented for the ESP32 (modules/io/flash/esp32). */

declare module 'embedded:storage/flash' {
  export interface FlashOpenOptions {
    /**
     * The label of a partition in the partition table (any data partition;
     * "xs", "running" and "nextota" are special names).
     */
    path: string;
    mode?: 'r' | 'r+';
  }
  export interface FlashStatus {
    size: number;
    blockLength: number;
    blocks: number;
  }
  export interface FlashPartition {
    read(byteLength: number, byteOffset: number): ArrayBuffer;
    write(buffer: ArrayBuffer | ArrayBufferView, byteOffset: number): void;
    /** Erases blocks `start` up to but not including `end` (default `start + 1`). */
    eraseBlock(start: number, end?: number): void;
    /** The ESP32 implementation reports no write alignment: SPI NOR flash writes bytes. */
    status(): FlashStatus;
    close(): void;
  }
  const Flash: {
    /** Throws when no partition has that label. */
    open(options: FlashOpenOptions): FlashPartition;
  };
  export default Flash;
}
