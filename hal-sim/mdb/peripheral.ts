/**
 * The peripheral side of the MDB link, byte for byte: recognise blocks
 * addressed to this device, check their checksum, answer ACK, NAK or data
 * with a checksum carrying the mode bit, and keep reported data until the
 * VMC acknowledges it (RET resends it now; anything else keeps it for the
 * next POLL). Faults can be injected per command.
 */
import type { Scheduler } from '../scheduler.js';
import type { BusPeripheral, SimMdbBus } from './bus.js';

export const MODE = 0x100;
export const ACK = 0x00;
export const NAK = 0xff;
export const RET = 0xaa;

export type FaultKind =
  /** Answer NAK without acting on the command. */
  | 'nak'
  /** Never hear the command: no answer, no action. */
  | 'silence'
  /** Act on the command, but the answer is lost on the wire. */
  | 'drop-reply'
  /** Answer data with a wrong checksum (the command is acted on; a RET gets the good copy). Plain ACKs are left alone. */
  | 'garble'
  /** Like garble, but every retransmission of that answer is garbled too. */
  | 'garble-all';

export interface Fault {
  kind: FaultKind;
  /** Command byte low bits (0..7) this fault applies to; any command if omitted. */
  command?: number;
  /** How many answers to affect. */
  count: number;
}

/** What a device does with a well-formed command: reply bytes (without checksum), 'ack', 'nak' or 'none'. */
export type Reply = number[] | 'ack' | 'nak' | 'none';

export abstract class SimPeripheral implements BusPeripheral {
  readonly address: number;
  protected readonly scheduler: Scheduler;
  protected readonly bus: SimMdbBus;
  private block: number[] = [];
  private receiving = false;
  /** The data reply waiting for the VMC's ACK, and what to do once acknowledged. */
  private unacked: number[] | undefined;
  private onAcked: (() => void) | undefined;
  private faults: Fault[] = [];
  private garbleRetransmits = false;
  /** Response delay within t-response (5 ms). */
  responseUs = 1500;
  /** Powered off: deaf and mute. */
  powered = true;
  readonly stats = { commands: 0, badChecksums: 0, acked: 0, retransmits: 0, naksFromVmc: 0, faultsApplied: 0 };

  constructor(address: number, scheduler: Scheduler, bus: SimMdbBus) {
    this.address = address;
    this.scheduler = scheduler;
    this.bus = bus;
    bus.attach(this);
  }

  injectFault(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  /** Total length (address byte through checksum) of a command, from what has arrived so far; 0 if not yet known. */
  protected abstract commandLength(block: readonly number[]): number;
  /** Act on a well-formed command. `ack` is called once the VMC acknowledges a data reply. */
  protected abstract handle(command: number, block: readonly number[], acked: (fn: () => void) => void): Reply;

  receive(word: number): void {
    if (!this.powered) return;
    if (word & MODE) {
      // Address byte: a new block for someone.
      this.unacked = undefined;
      this.onAcked = undefined;
      this.receiving = (word & 0xf8) === this.address;
      this.block = this.receiving ? [word & 0xff] : [];
      if (this.receiving) this.maybeComplete();
      return;
    }
    if (this.unacked) {
      this.fromVmcAfterReply(word);
      return;
    }
    if (!this.receiving) return;
    this.block.push(word & 0xff);
    this.maybeComplete();
  }

  private fromVmcAfterReply(word: number): void {
    const reply = this.unacked!;
    if (word === ACK) {
      this.stats.acked++;
      const fn = this.onAcked;
      this.unacked = undefined;
      this.onAcked = undefined;
      fn?.();
    } else if (word === RET) {
      this.stats.retransmits++;
      this.send(reply, this.garbleRetransmits);
    } else {
      // NAK (or noise): keep the data for the next POLL.
      this.stats.naksFromVmc++;
      this.unacked = undefined;
      this.onAcked = undefined;
    }
  }

  private maybeComplete(): void {
    const need = this.commandLength(this.block);
    if (need === 0 || this.block.length < need) return;
    this.receiving = false;
    const block = this.block;
    this.block = [];
    let sum = 0;
    for (let i = 0; i < block.length - 1; i++) sum += block[i]!;
    if ((sum & 0xff) !== block[block.length - 1]) {
      // Corrupt command: say nothing; the VMC times out and tries again.
      this.stats.badChecksums++;
      return;
    }
    this.stats.commands++;
    const command = block[0]! & 0x07;
    let fault = this.peekFault(command);
    // Garbling needs a data answer; the others act on the command itself.
    if (fault && fault.kind !== 'garble' && fault.kind !== 'garble-all') this.consume(fault);
    if (fault?.kind === 'silence') return;
    if (fault?.kind === 'nak') {
      this.bus.peripheralWrite([NAK | MODE], this.responseUs);
      return;
    }
    let ackFn: (() => void) | undefined;
    const reply = this.handle(command, block.slice(0, -1), (fn) => {
      ackFn = fn;
    });
    if (fault?.kind === 'drop-reply' || reply === 'none') return;
    if (fault && (fault.kind === 'garble' || fault.kind === 'garble-all')) {
      if (Array.isArray(reply) && reply.length > 0) this.consume(fault);
      else fault = undefined;
    }
    if (reply === 'ack') {
      this.bus.peripheralWrite([ACK | MODE], this.responseUs);
      return;
    }
    if (reply === 'nak') {
      this.bus.peripheralWrite([NAK | MODE], this.responseUs);
      return;
    }
    if (reply.length === 0) {
      this.bus.peripheralWrite([ACK | MODE], this.responseUs);
      ackFn?.();
      return;
    }
    this.unacked = reply;
    this.onAcked = ackFn;
    this.garbleRetransmits = fault?.kind === 'garble-all';
    this.send(reply, fault?.kind === 'garble' || fault?.kind === 'garble-all');
  }

  private send(data: readonly number[], garble: boolean): void {
    let sum = 0;
    const words: number[] = [];
    for (const b of data) {
      sum += b;
      words.push(b & 0xff);
    }
    words.push(((sum + (garble ? 0x5a : 0)) & 0xff) | MODE);
    this.bus.peripheralWrite(words, this.responseUs);
  }

  private peekFault(command: number): Fault | undefined {
    return this.faults.find((f) => f.command === undefined || f.command === command);
  }

  private consume(f: Fault): void {
    f.count--;
    if (f.count <= 0) this.faults.splice(this.faults.indexOf(f), 1);
    this.stats.faultsApplied++;
  }
}
