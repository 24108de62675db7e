/**
 * image: build a simulator firmware image of a given version (docs/updates.md, "Images").
 *
 *   node dist/tools/image.js --version 0.2.0 [--journal N] [--bad throws-at-start|no-broker] [--out FILE]
 *
 * Stamps the version into the built bundle (dist/bundle/firmware.js, so
 * `npm run build` first; hal-sim/images.ts says how), writes the image to
 * FILE (default image-<version>.js) and prints its SHA-256, size and
 * description: what `update` commands and uploads name it by. `--bad` builds
 * one of the images tests use to see a machine roll back. Exit status: 0
 * done, 2 bad usage or a bundle that cannot be stamped.
 */
import { writeFileSync } from 'node:fs';
import { buildImage, type BadImage } from '../hal-sim/images.js';

const USAGE = 'usage: node dist/tools/image.js --version X.Y.Z [--journal N] [--bad throws-at-start|no-broker] [--out FILE]';
const BAD = new Set<string>(['throws-at-start', 'no-broker']);

function fail(message: string): never {
  process.stderr.write(`image: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function main(args: string[]): void {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i]!;
    const value = args[i + 1];
    if (!['--version', '--journal', '--bad', '--out'].includes(name)) fail(`unknown argument ${name}`);
    if (value === undefined) fail(`${name} needs a value`);
    flags.set(name.slice(2), value);
  }
  const version = flags.get('version') ?? fail('--version is required');
  const journalText = flags.get('journal');
  const journal = journalText === undefined ? undefined : Number(journalText);
  if (journal !== undefined && !(Number.isInteger(journal) && journal >= 0 && journal <= 0xffff)) fail(`--journal must be 0..65535, not ${journalText}`);
  const bad = flags.get('bad');
  if (bad !== undefined && !BAD.has(bad)) fail(`--bad must be throws-at-start or no-broker, not ${bad}`);
  let image;
  try {
    image = buildImage({ version, ...(journal !== undefined ? { journal } : {}), ...(bad !== undefined ? { bad: bad as BadImage } : {}) });
  } catch (e) {
    fail((e as Error).message);
  }
  const out = flags.get('out') ?? `image-${version}${bad ? '-' + bad : ''}.js`;
  writeFileSync(out, image.bytes);
  process.stdout.write(`${out}: sha256 ${image.sha256}, ${image.bytes.length} bytes, version ${image.description.version}, journal ${image.description.journal}${bad ? `, bad (${bad})` : ''}\n`);
}

main(process.argv.slice(2));
