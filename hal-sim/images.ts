/**
 * Images for the simulator (docs/updates.md, "Images"): the firmware bundle
 * rollup builds is an image; another version of it is the same bundle with
 * the version stamped in by text replacement. That is cheap (no second
 * rollup run) and exact, because the version is written in one place
 * (firmware/version.ts) that rollup carries through as one declaration: the
 * stamp rewrites that declaration and the description line, and refuses to
 * stamp a bundle where either is not found exactly once.
 *
 * Bad images for tests are different code, not a flag the good image reads:
 *
 * - `throws-at-start`: the firmware's `start()` throws before doing anything
 *   (a crash at boot);
 * - `no-broker`: the image's board has a network that never reaches the
 *   broker: every MQTT connection it opens fails after 5 s, as one to an
 *   unreachable host does. The machine sells, but never reports.
 */
import { createHash } from 'node:crypto';
import { formatImageDescription, isVersion, parseImageDescription, type ImageDescription } from '../firmware/image.js';
import { firmwareBundle } from './transport.js';

export type BadImage = 'throws-at-start' | 'no-broker';

export interface Image {
  /** The image's text (a script), and its bytes as a slot holds them (UTF-8). */
  text: string;
  bytes: Uint8Array;
  description: ImageDescription;
  /** Lower-case hex, how the gateway and the `update` command name the image. */
  sha256: string;
}

export interface ImageOptions {
  version: string;
  /** The journal format it claims (default: the bundle's). */
  journal?: number;
  bad?: BadImage;
  /** Another bundle's text (default: dist/bundle/firmware.js). */
  source?: string;
  /**
   * Make the image exactly this many bytes with a comment at its end (the bundle is about
   * 200 KB; an ESP32 image is over a megabyte, which is what a download over a slow link
   * should be measured with). The image stays valid: the comment is code that does nothing.
   */
  padTo?: number;
}

const VERSION_DECLARATION = /const FIRMWARE_VERSION(\$\d+)? = '([0-9.]+)';/g;
const JOURNAL_DECLARATION = /const JOURNAL_FORMAT(\$\d+)? = (\d+);/g;

const BAD: Record<BadImage, { find: RegExp; add: string }> = {
  'throws-at-start': {
    find: /function start(\$\d+)?\(board, config\) \{/g,
    add: "\n        throw new Error('this image is bad: it throws at start');",
  },
  'no-broker': {
    // Inside the image's own board (hal-sim/guest/bridge-board.ts), which only the image carries.
    find: /openMqtt\(options\) \{/g,
    add: `
            this.timers.set(() => options.onError?.(), 5000);
            return { read: () => undefined, write: () => { throw new Error('not connected'); }, subscribe: () => 0, close: () => {} };`,
  },
};

/** Replace the one match of `find` in `text`, or fail naming what was looked for. */
function replaceOnce(text: string, find: RegExp, replace: (match: string) => string, what: string): string {
  const matches = text.match(find) ?? [];
  if (matches.length !== 1) throw new Error(`the bundle has ${matches.length} ${what}, not one: hal-sim/images.ts needs updating`);
  return text.replace(find, replace);
}

/** The bundle's text with `version` (and `journal`) stamped into its description and its code. */
export function stampImage(source: string, version: string, journal?: number): string {
  if (!isVersion(version)) throw new RangeError(`not a version: ${version}`);
  const nl = source.indexOf('\n');
  const was = parseImageDescription(new TextEncoder().encode(source.slice(0, nl + 1)));
  if (!was) throw new Error('the bundle does not open with an image description');
  const description = { version, journal: journal ?? was.journal };
  let text = formatImageDescription(description) + source.slice(nl + 1);
  text = replaceOnce(text, VERSION_DECLARATION, (m) => m.replace(/'[0-9.]+'/, `'${version}'`), 'FIRMWARE_VERSION declarations');
  // Only there when the code reads it (rollup leaves out what nothing uses).
  if ((text.match(JOURNAL_DECLARATION) ?? []).length > 0) text = replaceOnce(text, JOURNAL_DECLARATION, (m) => m.replace(/= \d+;/, `= ${description.journal};`), 'JOURNAL_FORMAT declarations');
  return text;
}

/** `text` with a comment appended that makes it `size` bytes of UTF-8; letters in lines of 100 (no `*`, so nothing ends the comment early). */
function pad(text: string, size: number): string {
  const open = '\n/* padding\n';
  const close = '*/\n';
  const have = new TextEncoder().encode(text).length + open.length + close.length;
  if (!Number.isInteger(size) || size < have) throw new RangeError(`an image cannot be padded to ${size} bytes: it has ${have} with the padding's comment`);
  const filler = new Uint8Array(size - have);
  for (let i = 0; i < filler.length; i++) filler[i] = i % 100 === 99 ? 10 : 97 + ((i * 7919) % 26);
  return text + open + new TextDecoder().decode(filler) + close;
}

/** An image of the firmware bundle (or `source`) at `version`, good or bad. */
export function buildImage(options: ImageOptions): Image {
  let text = stampImage(options.source ?? firmwareBundle(), options.version, options.journal);
  if (options.bad) {
    const bad = BAD[options.bad];
    text = replaceOnce(text, bad.find, (m) => m + bad.add, `places for the ${options.bad} change`);
  }
  if (options.padTo !== undefined) text = pad(text, options.padTo);
  const bytes = new TextEncoder().encode(text);
  return { text, bytes, description: parseImageDescription(bytes)!, sha256: createHash('sha256').update(bytes).digest('hex') };
}
