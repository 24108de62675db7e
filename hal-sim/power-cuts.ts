/**
 * Power-cut campaigns: run a workload once while recording every flash
 * write and erase together with the physical state of the machine at that
 * instant; then, for any op and any byte within it, rebuild the partition as
 * a cut there would leave it (earlier ops whole, this one a prefix) and boot
 * a fresh machine on it in that physical state. Each cut costs one boot and
 * what runs after it, not a replay of the workload.
 */
import { BLOCK_HEADER, MAGIC } from '../firmware/journal/log.js';
import { isMeta } from '../firmware/journal/records.js';
import { FlashImage, PowerCut, type FlashGeometry, type FlashOp } from './guest/flash-image.js';
import type { CutPoints } from './cut-check.js';
import { MachineHost, type HostOptions } from './host.js';
import { Rig, type MachineSpec, type PhysicalState } from './rig.js';

export interface CampaignOptions extends Omit<HostOptions, 'flash' | 'physical' | 'onFlashOp'> {
  flash: FlashGeometry;
}

export class CutCampaign implements CutPoints {
  readonly spec: MachineSpec;
  readonly options: CampaignOptions;
  readonly ops: FlashOp[] = [];
  /** Physical state as a cut at op k would leave it. */
  readonly physical: (PhysicalState | undefined)[] = [];
  /** Events whose record was completely written before op k. */
  private readonly eventsBefore: number[] = [];
  private running: FlashImage;
  private runningAt = 0;

  private constructor(spec: MachineSpec, options: CampaignOptions) {
    this.spec = spec;
    this.options = options;
    this.running = new FlashImage(options.flash);
  }

  /** Run `workload` on a fresh machine, recording every flash op. */
  static async record(spec: MachineSpec, options: CampaignOptions, workload: (host: MachineHost) => Promise<void>): Promise<CutCampaign> {
    const campaign = new CutCampaign(spec, options);
    let events = 0;
    const host = await MachineHost.start(spec, {
      ...options,
      flash: new FlashImage(options.flash),
      onFlashOp: (h, op, index) => {
        campaign.ops[index] = op;
        campaign.eventsBefore[index] = events;
        campaign.physical[index] = h.rig.physical(true);
        if (op.kind === 'write' && isEventRecord(op.data)) events++;
      },
    });
    try {
      await workload(host);
    } finally {
      await host.close();
    }
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
    const whole = op.kind === 'write' && isEventRecord(op.data) && op.data.subarray(bytes).every((x) => x === 0xff);
    return this.eventsBefore[k]! + (whole ? 1 : 0);
  }

  /** The partition as a cut at op k after `bytes` bytes leaves it. Ops must be visited in ascending order for speed. */
  image(k: number, bytes: number): FlashImage {
    if (k < this.runningAt) {
      this.running = new FlashImage(this.options.flash);
      this.runningAt = 0;
    }
    while (this.runningAt < k) this.running.apply(this.ops[this.runningAt++]!);
    const torn = new FlashImage(this.options.flash, this.running.bytes);
    torn.cutAt(0, bytes);
    try {
      torn.apply(this.ops[k]!);
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

/** A record write of an event (not a block header or a meta record: checkpoint, sync, key, update progress). */
export function isEventRecord(data: Uint8Array): boolean {
  if (data.length === BLOCK_HEADER && new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) === MAGIC) return false;
  return data[0] !== 0xff && !isMeta(data[0]!);
}
