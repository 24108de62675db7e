/**
 * How the host reaches the firmware bundle: evaluated in a bare V8 context in
 * this process (target `sim`), or inside the XS engine (target `xs`). Both run
 * the same rollup bundle, dist/bundle/firmware.js, or the image the machine's
 * bootloader chose (hal-sim/firmware-slots.ts): another bundle's source text.
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
  /** Run a function body in the guest's global scope; its return value comes back as JSON text (tests). */
  run(body: string): Promise<string>;
}

export const BUNDLE_PATH = fileURLToPath(new URL('../bundle/firmware.js', import.meta.url));

let bundleSource: string | undefined;
let bundleScript: vm.Script | undefined;
/** Other images compiled lately (a test boots a handful, each several times). */
const imageScripts = new Map<string, vm.Script>();

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
  private readonly context: vm.Context;

  /** Evaluates the image (default: the bundle); what it throws, a boot would (a bad image). */
  constructor(source?: string) {
    this.context = vm.createContext({});
    scriptFor(source).runInContext(this.context);
    this.guest = (this.context as unknown as GuestGlobal).vendfleetGuest;
    if (!this.guest) throw new Error('the image installed no guest');
  }

  async run(body: string): Promise<string> {
    return String(new vm.Script(`JSON.stringify((function () {\n${body}\n})())`).runInContext(this.context));
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

  constructor(onPrint?: (line: string) => void, source?: string) {
    this.worker = new XsWorker({ onPrint: onPrint ?? ((line) => process.stderr.write(`[xs] ${line}\n`)), meteringLimit: 2_000_000_000 });
    this.ready = this.worker.evaluate(source ?? firmwareBundle());
    // Seen by deliver(); not an unhandled rejection in the meantime.
    this.ready.catch(() => undefined);
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

  async run(body: string): Promise<string> {
    await this.ready;
    const r = await this.worker.evaluate(`(() => { const out = new TextEncoder().encode(JSON.stringify((function () {\n${body}\n})())); return out.buffer; })()`);
    return decoder.decode(r.reply);
  }

  async close(): Promise<void> {
    await this.worker.close();
  }
}

/** The compiled script for an image: the bundle's compiled once, other images kept for a few boots. */
function scriptFor(source: string | undefined): vm.Script {
  if (source === undefined || source === firmwareBundle()) return (bundleScript ??= new vm.Script(firmwareBundle(), { filename: 'firmware.js' }));
  let script = imageScripts.get(source);
  if (!script) {
    script = new vm.Script(source, { filename: 'image.js' });
    if (imageScripts.size >= 4) imageScripts.delete(imageScripts.keys().next().value!);
    imageScripts.set(source, script);
  }
  return script;
}

/** A transport running `source` (an image's text; default the firmware bundle). */
export function createTransport(target: TargetName, source?: string): GuestTransport {
  return target === 'xs' ? new XsTransport(undefined, source) : new InProcessTransport(source);
}
