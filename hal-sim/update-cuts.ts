/**
 * Power cuts on the update path: a machine that sells while it downloads
 * a new image into its inactive slot, switches, runs on probation and
 * confirms is recorded once, every journal write and erase and every slot
 * erase, write and state change in the order they happened, with the
 * machine's physical state and the slots' boot state (otadata, the
 * rollback report) at each. Then, for any of those operations and any byte
 * within it, the journal partition and both slots are rebuilt as a cut
 * there leaves them and a fresh controller boots from what the bootloader
 * picks. The journal-only campaign (power-cuts.ts) does the same for a
 * machine that never updates.
 */
import { AppSlots, DEFAULT_SLOTS, type SlotGeometry, type SlotOp, type SlotsRecord } from './firmware-slots.js';
import { FlashImage, PowerCut, type FlashOp } from './guest/flash-image.js';
import { MachineHost, type HostOptions } from './host.js';
import { isEventRecord, type CampaignOptions } from './power-cuts.js';
import type { CutPoints } from './cut-check.js';
import type { MachineSpec, PhysicalState } from './rig.js';

export type UpdateStep = { where: 'journal'; op: FlashOp } | { where: 'slots'; op: SlotOp };

export interface UpdateCampaignOptions extends Omit<CampaignOptions, 'slots'> {
  /** The image flashed first, in slot 0. */
  first: Uint8Array;
  slotGeometry?: SlotGeometry;
}

export class UpdateCutCampaign implements CutPoints {
  readonly spec: MachineSpec;
  readonly options: UpdateCampaignOptions;
  readonly steps: UpdateStep[] = [];
  /** Before step k: the physical machine, the slots' boot state, the events whole in the journal. */
  private readonly physical: PhysicalState[] = [];
  private readonly records: SlotsRecord[] = [];
  private readonly eventsBefore: number[] = [];
  private running: FlashImage;
  private runningAt = 0;

  private constructor(spec: MachineSpec, options: UpdateCampaignOptions) {
    this.spec = spec;
    this.options = options;
    this.running = new FlashImage(options.flash);
  }

  /** Run `workload` on a fresh machine booting `options.first`, recording every journal and slot operation. */
  static async record(spec: MachineSpec, options: UpdateCampaignOptions, workload: (host: MachineHost) => Promise<void>): Promise<UpdateCutCampaign> {
    const c = new UpdateCutCampaign(spec, options);
    const slots = new AppSlots(options.first, options.slotGeometry ?? DEFAULT_SLOTS);
    let events = 0;
    let current: MachineHost | undefined;
    const note = (h: MachineHost, step: UpdateStep): void => {
      c.physical.push(h.rig.physical(true));
      c.records.push(slots.record());
      c.eventsBefore.push(events);
      c.steps.push(step);
    };
    slots.onOp = (op) => {
      if (!current) throw new Error('a slot operation before the machine started');
      note(current, { where: 'slots', op });
    };
    const { first: _first, slotGeometry: _geometry, ...hostOptions } = options;
    const host = await MachineHost.start(spec, {
      ...hostOptions,
      slots,
      flash: new FlashImage(options.flash),
      onFlashOp: (h, op) => {
        note(h, { where: 'journal', op });
        if (op.kind === 'write' && isEventRecord(op.data)) events++;
      },
    });
    current = host;
    try {
      await workload(host);
    } finally {
      await host.close();
    }
    c.eventsBefore.push(events);
    return c;
  }

  /** The same recording, booting the firmware on another target. */
  withTarget(target: 'sim' | 'xs'): UpdateCutCampaign {
    const copy = Object.create(UpdateCutCampaign.prototype) as UpdateCutCampaign;
    Object.assign(copy, this, { options: { ...this.options, target }, running: new FlashImage(this.options.flash), runningAt: 0 });
    return copy;
  }

  get total(): number {
    return this.steps.length;
  }

  length(k: number): number {
    const s = this.steps[k]!;
    if (s.where === 'journal') return s.op.kind === 'write' ? s.op.data.length : (s.op.last - s.op.first + 1) * this.options.flash.blockLength;
    if (s.op.kind === 'write') return s.op.data.length;
    return s.op.kind === 'erase' ? (this.options.slotGeometry ?? DEFAULT_SLOTS).blockLength : 1;
  }

  describe(k: number): string {
    const s = this.steps[k]!;
    if (s.where === 'journal') return s.op.kind;
    return s.op.kind === 'state' ? `slot ${s.op.what}` : `slot ${s.op.kind}`;
  }

  /** The slots' boot state before step k. */
  slotsBefore(k: number): SlotsRecord {
    return this.records[k]!;
  }

  eventsAt(k: number, bytes: number): number {
    const s = this.steps[k]!;
    const whole = s.where === 'journal' && s.op.kind === 'write' && isEventRecord(s.op.data) && s.op.data.subarray(bytes).every((x) => x === 0xff);
    return this.eventsBefore[k]! + (whole ? 1 : 0);
  }

  /** The journal partition as a cut at step k after `bytes` bytes leaves it. Visit steps in ascending order for speed. */
  journal(k: number, bytes: number): FlashImage {
    if (k < this.runningAt) {
      this.running = new FlashImage(this.options.flash);
      this.runningAt = 0;
    }
    for (; this.runningAt < k; this.runningAt++) {
      const s = this.steps[this.runningAt]!;
      if (s.where === 'journal') this.running.apply(s.op);
    }
    const torn = new FlashImage(this.options.flash, this.running.bytes);
    const s = this.steps[k]!;
    if (s.where === 'journal') {
      torn.cutAt(0, bytes);
      try {
        torn.apply(s.op);
      } catch (e) {
        if (!(e instanceof PowerCut)) throw e;
      }
    }
    return torn;
  }

  /** Both slots as a cut at step k after `bytes` bytes leaves them (a state change is whole or not at all). */
  slots(k: number, bytes: number): AppSlots {
    const flashOps: SlotOp[] = [];
    for (let i = 0; i < k; i++) {
      const s = this.steps[i]!;
      if (s.where === 'slots' && s.op.kind !== 'state') flashOps.push(s.op);
    }
    const s = this.steps[k]!;
    const torn = s.where === 'slots' ? { op: s.op, bytes } : undefined;
    return AppSlots.rebuild(this.options.first, this.options.slotGeometry ?? DEFAULT_SLOTS, this.records[k]!, flashOps, torn);
  }

  /** Boot a controller the way a cut at step k after `bytes` bytes leaves the machine (offline unless `extra` says otherwise). */
  async boot(k: number, bytes: number, extra: Partial<HostOptions> = {}): Promise<MachineHost> {
    const { first: _first, slotGeometry: _geometry, network: _network, ...hostOptions } = this.options;
    return MachineHost.start(this.spec, {
      ...hostOptions,
      ...extra,
      flash: this.journal(k, bytes),
      slots: this.slots(k, bytes),
      physical: this.physical[k]!,
    });
  }
}
