/**
 * Moddable runtime modules that are not ECMA-419: timers, the tick clock,
 * the build's `config` object and read-only resources in flash.
 */

declare module 'timer' {
  /** A timer handle: a host object, only good for passing back to `Timer`. */
  export interface TimerHandle {
    readonly __timer: unique symbol;
  }
  const Timer: {
    /** Calls `callback` once after `delay` ms (0: on the next turn of the event loop). */
    set(callback: (id: TimerHandle) => void, delay?: number): TimerHandle;
    /** Calls `callback` every `interval` ms until cleared. */
    repeat(callback: (id: TimerHandle) => void, interval: number): TimerHandle;
    /** Clearing an undefined or already fired one-shot timer is harmless. */
    clear(id: TimerHandle | undefined): void;
  };
  export default Timer;
}

declare module 'time' {
  const Time: {
    /**
     * Milliseconds since boot, as a signed 32-bit integer: on the ESP32 it
     * wraps (to negative) after 2^31 ms, about 24.8 days.
     */
    readonly ticks: number;
    /** `end - start` in milliseconds, computed modulo 2^32 (so across a wrap). */
    delta(start: number, end?: number): number;
    /** Sets the system time (Unix seconds): what `Date` reads from then on. */
    set(seconds: number): void;
  };
  export default Time;
}

declare module 'mc/config' {
  /**
   * The manifest's `config` object, merged with `key=value` arguments given
   * to mcconfig, frozen. Its shape is the project's: the device code
   * validates every key it reads.
   */
  const config: { readonly [key: string]: unknown };
  export default config;
}

declare module 'Resource' {
  /** A file the manifest's `resources` put in flash, read-only. */
  export default class Resource {
    constructor(path: string);
    static exists(path: string): boolean;
    readonly byteLength: number;
    /** A copy in RAM. */
    slice(begin: number, end?: number): ArrayBuffer;
  }
}

declare module 'preference' {
  /** Small values kept in the NVS partition across restarts; domain and name at most 15 characters. */
  const Preference: {
    set(domain: string, name: string, value: boolean | number | string | ArrayBuffer): void;
    get(domain: string, name: string): boolean | number | string | ArrayBuffer | undefined;
    delete(domain: string, name: string): void;
  };
  export default Preference;
}
