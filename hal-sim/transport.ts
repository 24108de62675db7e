/**
 * How the host reaches the firmware bundle: evaluated in a bare V8 context in
 * this process (target `sim`), or inside the XS engine (target `xs`). Both run
 * the same rollup bundle, dist/bundle/firmware.js.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import type { GuestReply, HostMessage } from './guest/protocol.js';
import { XsWorker, type Meter } from './xs/xsnap.js';

export type TargetName = 'sim' | 'xs';

export interface GuestTransport {
  readonly target: TargetName;
  deliver(message: HostMessage): GuestReply | Promise<GuestReply>;
  close(): Promise<void>;
  /** XS only: meter readings. */
  meter?(): { totalCompute: number; cranks: number; last: Meter };
  /** XS only: evaluate a script in the guest (benchmarks). */
  evaluate?(source: string): Promise<Meter>;
}

export const BUNDLE_PATH = fileURLToPath(new URL('../bundle/firmware.js', import.meta.url));

let bundleSource: string | undefined;
let bundleScript: vm.Script | undefined;

export function firmwareBundle(): string {
  if (bundleSource === undefined) {
    try {
      bundleSource = readFileSync(BUNDLE_PATH, 'utf8');
    } catch {
      throw new Error(`firmware bundle not found at ${BUNDLE_PATH}: run \`npm run build\``);
    }
  }
  return bundleSource;
}

interface GuestGlobal {
  vendfleetGuest: { deliverJson(text: string): string };
}

/**
 * The bundle in a fresh V8 context: no Node globals at all (no process,
 * require, setTimeout, TextEncoder), as on the device. Messages cross as
 * JSON text, as they do into XS, so both targets see identical bytes.
 */
export class InProcessTransport implements GuestTransport {
  readonly target = 'sim' as const;
  private readonly guest: GuestGlobal['vendfleetGuest'];

  constructor() {
    bundleScript ??= new vm.Script(firmwareBundle(), { filename: 'firmware.js' });
    const context = vm.createContext({});
    bundleScript.runInContext(context);
    this.guest = (context as unknown as GuestGlobal).vendfleetGuest;
  }

  deliver(message: HostMessage): GuestReply {
    return JSON.parse(this.guest.deliverJson(JSON.stringify(message))) as GuestReply;
  }

  async close(): Promise<void> {}
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class XsTransport implements GuestTransport {
  readonly target = 'xs' as const;
  private readonly worker: XsWorker;
  private ready: Promise<unknown>;

  constructor(onPrint?: (line: string) => void) {
    this.worker = new XsWorker({ onPrint: onPrint ?? ((line) => process.stderr.write(`[xs] ${line}\n`)), meteringLimit: 2_000_000_000 });
    this.ready = this.worker.evaluate(firmwareBundle());
  }

  async deliver(message: HostMessage): Promise<GuestReply> {
    await this.ready;
    const result = await this.worker.command(encoder.encode(JSON.stringify(message)));
    return JSON.parse(decoder.decode(result.reply)) as GuestReply;
  }

  meter(): { totalCompute: number; cranks: number; last: Meter } {
    return { totalCompute: this.worker.totalCompute, cranks: this.worker.cranks, last: this.worker.lastMeter };
  }

  async evaluate(source: string): Promise<Meter> {
    await this.ready;
    return (await this.worker.evaluate(source)).meter;
  }

  async close(): Promise<void> {
    await this.worker.close();
  }
}

export function createTransport(target: TargetName): GuestTransport {
  return target === 'xs' ? new XsTransport() : new InProcessTransport();
}
