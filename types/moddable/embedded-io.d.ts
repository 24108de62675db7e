/**
 * ECMA-419 IO classes (`embedded:io/*`) as the Moddable SDK implements them
 * on the ESP32 (modules/io). Pins are GPIO numbers.
 */

declare module 'embedded:io/digital' {
  export interface DigitalOptions {
    pin: number;
    mode: number;
    /** `Digital.Rising | Digital.Falling`; with `onReadable`, an interrupt per edge. */
    edge?: number;
    onReadable?: (this: Digital) => void;
  }
  export default class Digital {
    static readonly Input: number;
    static readonly InputPullUp: number;
    static readonly InputPullDown: number;
    static readonly Output: number;
    static readonly OutputOpenDrain: number;
    static readonly Rising: number;
    static readonly Falling: number;
    constructor(options: DigitalOptions);
    read(): 0 | 1;
    write(value: 0 | 1): void;
    close(): void;
  }
}

declare module 'embedded:io/pwm' {
  export interface PwmOptions {
    pin: number;
    /** Frequency; the ESP32 LEDC accepts only some `hz` and `resolution` pairs (RangeError otherwise). */
    hz?: number;
    /** Bits of duty (default 10). */
    resolution?: number;
  }
  export default class PWM {
    constructor(options: PwmOptions);
    readonly hz: number;
    readonly resolution: number;
    /** 0 <= duty < 2^resolution. */
    write(duty: number): void;
    close(): void;
  }
}

declare module 'embedded:io/serial' {
  /** 8N1 only on the ESP32: there is no parity or data-bits option. */
  export interface SerialOptions {
    transmit?: number;
    receive?: number;
    /** UART number (0 is the console on most boards). */
    port?: number;
    baud: number;
    format?: 'buffer' | 'number';
    onReadable?: (this: Serial, count: number) => void;
    onWritable?: (this: Serial, count: number) => void;
  }
  export default class Serial {
    constructor(options: SerialOptions);
    /** format "buffer": everything in the receive FIFO, or undefined when it is empty. */
    read(count?: number): ArrayBuffer | undefined;
    /** Throws when the transmit FIFO cannot take all of `buffer`. */
    write(buffer: ArrayBuffer | ArrayBufferView): void;
    close(): void;
  }
}

declare module 'embedded:io/i2c' {
  export interface I2cOptions {
    data: number;
    clock: number;
    hz: number;
    address: number;
    port?: number;
  }
  export default class I2C {
    constructor(options: I2cOptions);
    read(count: number): ArrayBuffer;
    write(buffer: ArrayBuffer | ArrayBufferView): void;
    close(): void;
  }
}

declare module 'embedded:io/smbus' {
  import type I2C from 'embedded:io/i2c';
  /** SMBus: I2C with register reads and writes; what Moddable's sensor drivers take as `io`. */
  export default class SMBus extends I2C {
    readUint8(register: number): number;
    writeUint8(register: number, value: number): void;
    readUint16(register: number, bigEndian?: boolean): number;
    writeUint16(register: number, value: number, bigEndian?: boolean): void;
  }
}

declare module 'embedded:io/socket/tcp' {
  /** Only passed on to the MQTT client as its `socket.io`. */
  export default class TCP {
    private constructor();
  }
}

declare module 'embedded:io/socket/udp' {
  /** A datagram as `read()` returns it: the bytes, and where it came from. */
  export interface Datagram extends ArrayBuffer {
    readonly address: string;
    readonly port: number;
  }
  export interface UDPOptions {
    /** Called with the number of datagrams waiting; `this` is the socket. */
    onReadable?: (this: UDP, count: number) => void;
  }
  /** Passed on to the DNS resolver as its `socket.io`; the SNTP client uses it itself. */
  export default class UDP {
    constructor(options: UDPOptions);
    read(): Datagram | undefined;
    write(address: string, port: number, data: ArrayBuffer | ArrayBufferView): void;
    close(): void;
  }
}
