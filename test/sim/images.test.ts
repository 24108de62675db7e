/**
 * Simulator images (hal-sim/images.ts, tools/image.ts) and image
 * descriptions (firmware/image.ts): the bundle describes itself, a stamped
 * image differs from it in its version and nothing else, bad images are
 * really different code, and hostile description bytes are refused.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { compareVersions, formatImageDescription, isVersion, parseImageDescription } from '../../firmware/image.js';
import { FIRMWARE_VERSION, JOURNAL_FORMAT } from '../../firmware/version.js';
import { buildImage, stampImage } from '../../hal-sim/images.js';
import { firmwareBundle } from '../../hal-sim/transport.js';
import { REPO } from '../../tools/check-manifests.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('images', () => {
  it('the built bundle opens with its description, from firmware/version.ts', () => {
    const bundle = firmwareBundle();
    assert.ok(bundle.startsWith(formatImageDescription({ version: FIRMWARE_VERSION, journal: JOURNAL_FORMAT })), bundle.slice(0, 80));
    assert.deepEqual(parseImageDescription(ascii(bundle.slice(0, 300))), { version: FIRMWARE_VERSION, journal: JOURNAL_FORMAT });
  });

  it('a stamped image differs from the bundle in its description and its version and journal format declarations only', () => {
    const bundle = firmwareBundle();
    const image = buildImage({ version: '12.0.345', journal: 7 });
    assert.deepEqual(image.description, { version: '12.0.345', journal: 7 });
    assert.equal(image.sha256, createHash('sha256').update(image.bytes).digest('hex'));
    const a = bundle.split('\n');
    const b = image.text.split('\n');
    assert.equal(a.length, b.length);
    const changed = a.map((line, i) => (line === b[i] ? -1 : i)).filter((i) => i >= 0);
    // The description, the version's declaration and (the firmware checks update commands against it) the journal format's.
    assert.equal(changed.length, 3, 'three lines change');
    assert.equal(changed[0], 0);
    assert.deepEqual(
      changed.slice(1).map((i) => b[i]!.trim()).sort(),
      ["const FIRMWARE_VERSION = '12.0.345';", 'const JOURNAL_FORMAT = 7;'],
    );
    assert.equal(stampImage(image.text, FIRMWARE_VERSION, JOURNAL_FORMAT), bundle, 'stamping back gives the bundle');
  });

  it('bad images are different code', () => {
    const good = buildImage({ version: '0.9.0' });
    const crash = buildImage({ version: '0.9.0', bad: 'throws-at-start' });
    const mute = buildImage({ version: '0.9.0', bad: 'no-broker' });
    assert.notEqual(crash.sha256, good.sha256);
    assert.notEqual(mute.sha256, good.sha256);
    assert.match(crash.text, /function start\(board, config\) \{\n\s+throw new Error\('this image is bad: it throws at start'\);/);
    assert.match(mute.text, /openMqtt\(options\) \{\n\s+this\.timers\.set\(\(\) => options\.onError\?\.\(\), 5000\);/);
  });

  it('pads an image to an exact size with a comment at its end, and it still runs', () => {
    const plain = buildImage({ version: '0.9.1' });
    const big = buildImage({ version: '0.9.1', padTo: 1_500_000 });
    assert.equal(big.bytes.length, 1_500_000);
    assert.deepEqual(big.description, { version: '0.9.1', journal: JOURNAL_FORMAT });
    assert.ok(big.text.startsWith(plain.text), 'the code is unchanged');
    assert.match(big.text.slice(plain.text.length), /^\n\/\* padding\n[a-z\n]+\*\/\n$/);
    assert.throws(() => buildImage({ version: '0.9.1', padTo: plain.bytes.length }), /cannot be padded/);
    // The padded image evaluates and installs the firmware's guest, as the bundle does.
    const context = vm.createContext({});
    new vm.Script(big.text).runInContext(context);
    assert.equal(typeof (context as { vendfleetGuest?: { deliverJson?: unknown } }).vendfleetGuest?.deliverJson, 'function');
  });

  it('refuses to stamp what it cannot stamp exactly', () => {
    const bundle = firmwareBundle();
    assert.throws(() => stampImage(bundle, '1.2'), /not a version/);
    assert.throws(() => stampImage(bundle, '01.2.3'), /not a version/);
    assert.throws(() => stampImage(bundle.slice(bundle.indexOf('\n') + 1), '1.2.3'), /does not open with an image description/);
    assert.throws(() => stampImage(bundle + "\nconst FIRMWARE_VERSION = '9.9.9';\n", '1.2.3'), /2 FIRMWARE_VERSION declarations, not one/);
    assert.throws(() => buildImage({ version: '1.2.3', bad: 'throws-at-start', source: bundle.replace('function start(board, config) {', 'function begin(board, config) {') }), /0 places for the throws-at-start change/);
  });

  it('reads descriptions strictly: hostile first bytes are not an image', () => {
    assert.deepEqual(parseImageDescription(ascii('/*VFIMG {"version":"0.2.0","journal":3}*/\nrest')), { version: '0.2.0', journal: 3 });
    assert.deepEqual(parseImageDescription(ascii('/*VFIMG {"version":"0.2.0","journal":3,"extra":true}*/\n')), { version: '0.2.0', journal: 3 }, 'later fields are ignored');
    const bad = [
      '',
      '/*VFIMG ',
      '/*VFIMG {"version":"0.2.0","journal":3}*/',
      '/*VFIMG {"version":"0.2.0","journal":3}*/ \n',
      '/*VFIMX {"version":"0.2.0","journal":3}*/\n',
      ' /*VFIMG {"version":"0.2.0","journal":3}*/\n',
      '/*VFIMG {"version":"0.2","journal":3}*/\n',
      '/*VFIMG {"version":"0.2.0-rc1","journal":3}*/\n',
      '/*VFIMG {"version":"00.2.0","journal":3}*/\n',
      '/*VFIMG {"version":"1234567890.0.0","journal":3}*/\n',
      '/*VFIMG {"version":"0.2.0","journal":-1}*/\n',
      '/*VFIMG {"version":"0.2.0","journal":1.5}*/\n',
      '/*VFIMG {"version":"0.2.0","journal":65536}*/\n',
      '/*VFIMG {"version":"0.2.0"}*/\n',
      '/*VFIMG {"version":0.2,"journal":3}*/\n',
      '/*VFIMG ["0.2.0",3]*/\n',
      '/*VFIMG null*/\n',
      '/*VFIMG {"version":"0.2.0","journal":3*/\n',
      '/*VFIMG {"version":"0.2.0","journal":3,"pad":"' + 'x'.repeat(300) + '"}*/\n',
      '/*VFIMG {"version":"0.2.0","journal":3}\t*/\n',
    ];
    for (const text of bad) assert.equal(parseImageDescription(ascii(text)), undefined, JSON.stringify(text.slice(0, 60)));
    assert.equal(parseImageDescription(new Uint8Array([0x2f, 0x2a, 0xe9, 0xff, 0x0a])), undefined, 'binary');
    const utf8 = ascii('/*VFIMG {"version":"0.2.0","journal":3,"é":1}*/\n');
    assert.equal(parseImageDescription(utf8), undefined, 'the line is ASCII');
  });

  it('compares versions numerically, field by field', () => {
    assert.ok(compareVersions('0.10.0', '0.9.9') > 0);
    assert.ok(compareVersions('1.0.0', '0.99.99') > 0);
    assert.ok(compareVersions('0.2.0', '0.2.1') < 0);
    assert.equal(compareVersions('3.4.5', '3.4.5'), 0);
    assert.throws(() => compareVersions('1.0', '1.0.0'), /not a version: 1\.0$/);
    assert.ok(isVersion('0.0.0') && !isVersion('v1.0.0') && !isVersion(' 1.0.0') && !isVersion(100));
  });

  it('tools/image.ts writes a stamped image and says what it is; bad usage exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vf-image-'));
    try {
      const out = join(dir, 'img.js');
      const cli = (...args: string[]) => spawnSync(process.execPath, [join(REPO, 'dist/tools/image.js'), ...args], { encoding: 'utf8' });
      const ok = cli('--version', '0.5.0', '--out', out);
      assert.equal(ok.status, 0, ok.stderr);
      const bytes = readFileSync(out);
      assert.match(ok.stdout, new RegExp(`sha256 ${createHash('sha256').update(bytes).digest('hex')}, ${bytes.length} bytes, version 0\\.5\\.0, journal ${JOURNAL_FORMAT}`));
      assert.deepEqual(parseImageDescription(bytes), { version: '0.5.0', journal: JOURNAL_FORMAT });
      for (const args of [[], ['--version'], ['--version', '5'], ['--version', '1.0.0', '--bad', 'slow'], ['--version', '1.0.0', '--journal', 'x'], ['--colour', 'red']]) {
        const r = cli(...args);
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}`);
        assert.match(r.stderr, /usage: node dist\/tools\/image\.js/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
