/**
 * Power-cut campaigns: run a workload once while recording every flash
 * write and erase together with the physical state of the machine at that
 * instant; then, for any op and any byte within it, rebuild the partition as
 * a cut there would leave it (earlier ops whole, this one a prefix) and boot
 * a fresh machine on it in that physical state. Each cut costs one boot and
 * what runs after it, not a replay of the workload. With `faults` the
 * partition also refuses writes and erases, holds stuck bits or wears out
 * (flash-image.ts): the recording, every replay and every boot fail alike.
 */
import { BLOCK_HEADER, MAGIC } from '../firmware/journal/log.js';
import { isMeta, RECORD_NAMES } from '../firmware/journal/records.js';
import { FlashFault, FlashImage, PowerCut, type FlashFaults, type FlashGeometry, type FlashOp } from './guest/flash-image.js';
import type { CutPoints } from './cut-check.js';
import { MachineHost, type HostOptions } from './host.js';
import { Rig, type MachineSpec, type PhysicalState } from './rig.js';

export interface CampaignOptions extends Omit<HostOptions, 'flash' | 'physical' | 'onFlashOp'> {
  flash: FlashGeometry;
  faults?: FlashFaults;
}

export class CutCampaign implements CutPoints {
  readonly spec: MachineSpec;
  readonly options: CampaignOptions;
  readonly ops: FlashOp[] = [];
  /** Physical state as a cut at op k would leave it. */
  readonly physical: (PhysicalState | undefined)[] = [];
  /** Events whose record was completely written before op k. */
  private readonly eventsBefore: number[] = [];
  /** Op k wrote its bytes as asked (a fault did not refuse or alter them). */
  private readonly landed: boolean[] = [];
  private running: FlashImage;
  private runningAt = 0;

  private constructor(spec: MachineSpec, options: CampaignOptions) {
    this.spec = spec;
    this.options = options;
    this.running = new FlashImage(options.flash, undefined, options.faults);
  }

  /** Run `workload` on a fresh machine, recording every flash op. */
  static async record(spec: MachineSpec, options: CampaignOptions, workload: (host: MachineHost) => Promise<void>): Promise<CutCampaign> {
    const campaign = new CutCampaign(spec, options);
    let events = 0;
    // Whether an op landed shows at the next one (ops are reported before they are applied).
    let last = -1;
    const settle = (bytes: Uint8Array): void => {
      const op = campaign.ops[last];
      if (op?.kind !== 'write') return;
      campaign.landed[last] = op.data.every((x, i) => bytes[op.offset + i] === x);
      // A refused event is written again in the next block: count each sequence number once.
      if (campaign.landed[last] && isEventRecord(op.data)) events = Math.max(events, new DataView(op.data.buffer, op.data.byteOffset).getUint32(3, true));
    };
    const flash = new FlashImage(options.flash, undefined, options.faults);
    const host = await MachineHost.start(spec, {
      ...options,
      flash,
      onFlashOp: (h, op, index) => {
        settle(h.flash.bytes);
        campaign.ops[index] = op;
        campaign.eventsBefore[index] = events;
        campaign.physical[index] = h.rig.physical(true);
        last = index;
      },
    });
    try {
      await workload(host);
    } finally {
      await host.close();
    }
    settle(flash.bytes);
    campaign.eventsBefore[campaign.ops.length] = events;
    return campaign;
  }

  /** The same recording, booting the firmware on another target. */
  withTarget(target: 'sim' | 'xs'): CutCampaign {
    const copy = Object.create(CutCampaign.prototype) as CutCampaign;
    Object.assign(copy, this, { options: { ...this.options, target } });
    return copy;
  }

  get total(): number {
    return this.ops.length;
  }

  describe(k: number): string {
    return this.ops[k]!.kind;
  }

  /** Bytes op k touches. */
  length(k: number): number {
    const op = this.ops[k]!;
    return op.kind === 'write' ? op.data.length : (op.last - op.first + 1) * this.options.flash.blockLength;
  }

  /** Events that are whole in flash after a cut at op k after `bytes` bytes. */
  eventsAt(k: number, bytes: number): number {
    const op = this.ops[k]!;
    // Bytes left unwritten that were meant to be 0xFF (CRC bytes, padding) change nothing.
    const whole = op.kind === 'write' && isEventRecord(op.data) && this.landed[k] === true && op.data.subarray(bytes).every((x) => x === 0xff);
    return this.eventsBefore[k]! + (whole ? 1 : 0);
  }

  /** The partition as a cut at op k after `bytes` bytes leaves it. Ops must be visited in ascending order for speed. */
  image(k: number, bytes: number): FlashImage {
    if (k < this.runningAt) {
      this.running = new FlashImage(this.options.flash, undefined, this.options.faults);
      this.runningAt = 0;
    }
    while (this.runningAt < k) applyOp(this.running, this.ops[this.runningAt++]!);
    const torn = this.running.copy();
    torn.cutAt(0, bytes);
    try {
      applyOp(torn, this.ops[k]!);
    } catch (e) {
      if (!(e instanceof PowerCut)) throw e;
    }
    return torn;
  }

  /** Boot a machine the way a cut at op k after `bytes` bytes leaves it. */
  async boot(k: number, bytes: number, extra: Partial<HostOptions> = {}): Promise<MachineHost> {
    const physical = this.physical[k] ?? new Rig(this.spec, this.options.seed ?? 1).physical(true);
    return MachineHost.start(this.spec, { ...this.options, ...extra, flash: this.image(k, bytes), physical });
  }
}

/** Apply a recorded op; one the faults refuse failed in the recording too. */
function applyOp(image: FlashImage, op: FlashOp): void {
  try {
    image.apply(op);
  } catch (e) {
    if (!(e instanceof FlashFault)) throw e;
  }
}

/** A record write of an event (not a block header or a meta record: checkpoint, sync, key, update progress). */
export function isEventRecord(data: Uint8Array): boolean {
  if (data.length === BLOCK_HEADER && new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) === MAGIC) return false;
  // A known type: a write the firmware cleared to zeros after it failed is none.
  return RECORD_NAMES[data[0]!] !== undefined && !isMeta(data[0]!);
}
