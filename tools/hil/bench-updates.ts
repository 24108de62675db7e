/**
 * `update` steps (docs/bench-scenarios-extensions.md) as the fleet does
 * them: the step's image built (hal-sim/images.ts), signed with the run's
 * release key and uploaded into the bench gateway's registry, offered to
 * the machine, and a signed `update` command published on the machine's
 * commands topic. What came of it is read back from the gateway's store:
 * the machine's `update` reports and its commands' outcomes, as it sent
 * them.
 */
import { signCommand } from '../../gateway/commands/envelope.js';
import { FirmwareError } from '../../gateway/firmware/registry.js';
import { signRelease } from '../../gateway/firmware/signature.js';
import { buildImage, type BadImage, type Image } from '../../hal-sim/images.js';
import type { BenchGateway } from './bench-gateway.js';
import type { UpdateStep } from './scenario.js';

/** The extra bytes a `short` image's command claims. */
const SHORT_BY = 5000;

/** Images built in this run, by version, kind and journal format: stamping a bundle is cheap, but not free. */
const built = new Map<string, Image>();

function imageFor(step: UpdateStep): Image {
  const bad: BadImage | undefined = step.image === 'no-broker' || step.image === 'throws-at-start' ? step.image : undefined;
  const key = `${step.version}/${bad ?? 'good'}/${step.journal ?? ''}`;
  let image = built.get(key);
  if (!image) {
    image = buildImage({ version: step.version, ...(bad ? { bad } : {}), ...(step.journal !== undefined ? { journal: step.journal } : {}) });
    built.set(key, image);
  }
  return image;
}

/** `phase` or `outcome`, then the reason after a space when there is one. */
const word = (first: unknown, reason: unknown): string => `${String(first)}${typeof reason === 'string' && reason !== '' ? ` ${reason}` : ''}`;

export interface UpdateReports {
  /** The machine's `update` reports, in order. */
  updates: string[];
  /** Its `update` commands' outcomes, in order. */
  commands: string[];
  /** The outcome of command `n`, once stored. */
  outcomes: Map<number, string>;
}

export class BenchUpdates {
  /** The last command number used: the machine takes only newer ones. */
  private n = 0;

  constructor(
    private readonly gw: BenchGateway,
    private readonly machineId: string,
    /** The machine's command key (its configuration's `commandKey`), id 1. */
    private readonly commandKey: Buffer,
  ) {}

  /**
   * Put the step's image in the registry, offer it, and send the command
   * (issued at `wallMs`, the machine's calendar time). Its number, or why
   * the gateway would not take the image.
   */
  async send(step: UpdateStep, wallMs: number): Promise<{ n: number } | { failure: string }> {
    const image = imageFor(step);
    const bytes = Buffer.from(image.bytes);
    const { registry } = this.gw;
    try {
      const { signature, keyId } = signRelease(bytes, step.version, this.gw.releasePem);
      await registry.upload({ bytes, version: step.version, signature, keyId });
    } catch (e) {
      if (!(e instanceof FirmwareError)) throw e;
      const hint = e.code === 'version-taken' || e.code === 'image-exists' ? ' (in one run the gateway is one fleet: a version names one image, so give each image kind its own version)' : '';
      return { failure: `the gateway refused the ${step.image} image ${step.version}: ${e.code}: ${e.message}${hint}` };
    }
    await registry.offer(this.machineId, image.sha256);
    // A wrong hash names bytes nobody has (the last digit changed); a short image is one the command says is longer.
    const sha256 = step.image === 'wrong-hash' ? image.sha256.slice(0, -1) + (image.sha256.endsWith('0') ? '1' : '0') : image.sha256;
    const size = step.image === 'short' ? bytes.length + SHORT_BY : bytes.length;
    const args: Record<string, unknown> = { version: step.version, size, sha256, journal: image.description.journal, source: 'mqtt' };
    if (step.downgrade) args['downgrade'] = true;
    if (step.force) args['force'] = true;
    const n = ++this.n;
    const issued = Math.floor(wallMs / 1000);
    const payload = signCommand({ machine: this.machineId, n, type: 'update', issued, expires: issued + 3600, args }, 1, this.commandKey);
    await this.gw.publish(`fleet/${this.machineId}/commands`, payload);
    return { n };
  }

  /** What the gateway has stored of the machine's updates so far. */
  async reports(): Promise<UpdateReports> {
    const r = await this.gw.db.query<{ type: string; body: Record<string, unknown> }>("SELECT type, body FROM events WHERE machine_id = $1 AND type IN ('update', 'command') ORDER BY seq", [this.machineId]);
    const out: UpdateReports = { updates: [], commands: [], outcomes: new Map() };
    for (const { type, body } of r.rows) {
      if (type === 'update') out.updates.push(word(body['phase'], body['reason']));
      else if (body['command'] === 'update') {
        const w = word(body['outcome'], body['reason']);
        out.commands.push(w);
        if (typeof body['n'] === 'number') out.outcomes.set(body['n'], w);
      }
    }
    return out;
  }
}
