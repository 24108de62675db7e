/**
 * What the bench protocol drives. A board's bench build wires it to its
 * hardware bench (coin and bill injectors on the MDB peripherals, a card
 * reader, a beam blocker on the drop sensor, a relay or a watchdog reset:
 * docs/bench-protocol.md says what each verb must do there); the host wires
 * it to the simulator (tools/hil/serial-bench.ts). Callbacks, not promises:
 * the board answers when the hardware has settled, in its own time.
 */
import type { BenchAction, BenchErrorCode, BenchInfo, BenchMachine, BenchStatus } from './protocol.js';

export type BenchAnswer<T extends object = object> = { readonly ok: true; readonly data?: T } | { readonly ok: false; readonly code: BenchErrorCode; readonly message: string };

/** Call exactly once; later calls are ignored. */
export type BenchDone<T extends object = object> = (answer: BenchAnswer<T>) => void;

/** What a step may report besides success. */
export interface StepData {
  /**
   * The board is about to reset itself (a `powerCut` done with a watchdog
   * reset): the runner waits for it to answer `hello` again.
   */
  rebooting?: boolean;
}

export interface BenchTarget {
  readonly info: BenchInfo;
  /**
   * Load a scenario's machine: the firmware configured for these slots and
   * payment devices on an empty journal, the bench's peripherals as the
   * machine says (as far as the bench can set them; an error says what it
   * cannot). Replaces whatever machine was there.
   */
  setup(machine: BenchMachine, options: { network: boolean; seed: number }, done: BenchDone): void;
  /** Carry out one scenario step; answer when the machine has settled (see BenchAction's settleMs). */
  apply(action: BenchAction, done: BenchDone<StepData>): void;
  status(done: BenchDone<BenchStatus>): void;
  /** The scenario is over: release the machine. */
  end(done: BenchDone): void;
}

export function benchOk<T extends object>(data?: T): BenchAnswer<T> {
  return data === undefined ? { ok: true } : { ok: true, data };
}

export function benchErr(code: BenchErrorCode, message: string): BenchAnswer<never> {
  return { ok: false, code, message };
}
