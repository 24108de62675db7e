/**
 * The ESP32 manifests' CI check (tools/check-manifests.ts): the real
 * manifests pass, with the firmware's heap at rest measured under XS within
 * their budgets (the running state's RAM, the preloaded code's flash); and
 * manifests broken on purpose (a module missing, a file gone, an SDK include
 * dropped, a budget too small, no journal partition) fail with a message that
 * says what and where.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIRMWARE_VERSION } from '../../firmware/version.js';
import { codeSlots, emptyEngineSlots } from '../../hal-sim/xs/heap.js';
import { XsWorker } from '../../hal-sim/xs/xsnap.js';
import {
  DEFAULT_MANIFESTS,
  REPO,
  SLOT_BYTES,
  benchHeapAtRest,
  checkConfiguration,
  checkManifest,
  loadManifest,
  parsePartitions,
  runtimeImports,
  sampleHeapAtRest,
  type HeapFigures,
} from '../../tools/check-manifests.js';

const CLI = join(REPO, 'dist/tools/check-manifests.js');
const ESP32 = join(REPO, 'manifests/esp32/manifest.json');

type Json = { [key: string]: unknown };

function cli(...args: string[]): { status: number | null; out: string } {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 170000 });
  return { status: run.status, out: run.stdout + run.stderr };
}

describe('ESP32 manifests (tools/check-manifests.ts)', function () {
  let dir: string;
  let heap: HeapFigures;

  /** The production manifest in a scratch directory, its relative paths made absolute, changed by `edit`. */
  function variant(name: string, edit: (m: Json) => void): string {
    const m = JSON.parse(readFileSync(ESP32, 'utf8')) as Json;
    const build = m['build'] as Json;
    build['VENDFLEET'] = REPO;
    build['PARTITIONS_FILE'] = join(REPO, 'manifests/esp32/partitions.csv');
    build['SDKCONFIGPATH'] = join(REPO, 'manifests/esp32/sdkconfig');
    m['data'] = { '*': [join(REPO, 'manifests/esp32/machine')] };
    edit(m);
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(m, null, 2));
    return path;
  }

  const modules = (m: Json): Json => m['modules'] as Json;
  const preload = (m: Json): string[] => m['preload'] as string[];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'vf-manifests-'));
    const machine = checkConfiguration(loadManifest(ESP32)).machine;
    assert.ok(machine, 'the sample machine is valid');
    heap = { bench: benchHeapAtRest(), sample: await sampleHeapAtRest(machine) };
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('the manifests list every module the firmware imports, and the firmware fits the heap budget under XS', function () {
    for (const p of DEFAULT_MANIFESTS) {
      const report = checkManifest(join(REPO, p), heap);
      assert.deepEqual(report.problems, [], `${p}:\n${report.problems.join('\n')}`);
      // The graph really is the firmware's: the vend logic, the MDB link, the native driver's glue.
      for (const specifier of ['firmware/main', 'firmware/vend/controller', 'firmware/mdb/link', 'firmware/journal/log', 'firmware/platform/esp32/native/mdb-uart']) {
        assert.ok(report.modules.reached.has(specifier), `${p} reaches ${specifier}`);
      }
      // Type-only modules are not modules at run time (board.ts has no values).
      assert.ok(!report.modules.reached.has('firmware/board'));
      assert.ok(report.modules.sdk.has('embedded:storage/flash') && report.modules.sdk.has('embedded:io/digital'));
      assert.equal(report.journal?.size, 1024 * 1024);
    }
    const bench = checkManifest(join(REPO, 'manifests/esp32-bench/manifest.json'), heap);
    assert.ok(bench.modules.reached.has('firmware/bench/server'), 'the bench variant carries the bench protocol');
    assert.ok(!checkManifest(ESP32, heap).modules.reached.has('firmware/bench/server'), 'the production build does not');
    const { ramAtRestSlots: ram, codeSlots: code } = loadManifest(ESP32).budget!;
    assert.ok(ram !== undefined && code !== undefined, 'both budgets declared');
    for (const [what, split] of [['bench', heap.bench], ['sample', heap.sample]] as const) {
      assert.equal(split.code + split.state, split.total, `${what}: the parts add up`);
      assert.ok(split.state > 500 && split.state <= ram, `${what} running state ${split.state} within ${ram}`);
      assert.ok(split.code > 5000 && split.code <= code, `${what} code ${split.code} within ${code}`);
    }
    // One bundle: the code is the same whichever machine runs it; the machine with 12 slots and an uplink holds more.
    assert.equal(heap.bench.code, heap.sample.code);
    assert.ok(heap.sample.state > heap.bench.state);
  });

  it('measures the code as the bundle loaded with nothing made: the guest and its board come at the first message', async function () {
    const empty = await emptyEngineSlots();
    const code = await codeSlots(empty);
    assert.equal(code, heap.sample.code, 'the same figure on every load');
    const w = new XsWorker();
    try {
      await w.evaluate(readFileSync(join(REPO, 'dist/bundle/firmware.js'), 'utf8'));
      const loaded = (await w.evaluate('gc()')).meter.currentHeapCount;
      assert.equal(loaded - empty, code);
      // Reaching for the board makes it (what the first message would): that is running state, not code.
      await w.evaluate('globalThis.heldBoard = vendfleetGuest.board');
      const made = (await w.evaluate('gc()')).meter.currentHeapCount;
      assert.ok(made - loaded > 50, `the board took ${made - loaded} slots once made`);
    } finally {
      await w.close();
    }
  });

  it('the command line passes on the repository and prints the heap it measured', function () {
    const { status, out } = cli();
    assert.equal(status, 0, out);
    assert.match(out, /manifests\/esp32\/manifest\.json \(entry firmware\/platform\/esp32\/main\)/);
    assert.match(out, /heap at rest under XS, above an empty engine: bench \d+ slots, sample machine \d+ slots, of which/);
    assert.match(out, /running state \(RAM on the board\): bench \d+, sample machine \d+; budget 2560 \(\d+% used, \d+ slots left\)/);
    assert.match(out, /code and tables \(preloaded, flash on the board\): \d+ \(\d+ KiB at 16 bytes a slot, \d+\.\d% of the 1472 KiB app slot\); budget 12288 \(\d+% used, \d+ slots left\)/);
    assert.match(out, /manifests: ok/);
  });

  it('fails on a manifest that leaves out a module the firmware imports, naming importer, module and fix', function () {
    const path = variant('missing-module', (m) => {
      delete modules(m)['firmware/vend/inventory'];
      m['preload'] = preload(m).filter((p) => p !== 'firmware/vend/inventory');
    });
    const { status, out } = cli('--no-heap', path);
    assert.equal(status, 1, out);
    assert.match(
      out,
      /FAIL firmware\/vend\/machine\.ts:\d+ imports "\.\/inventory\.js": module "firmware\/vend\/inventory" is not listed in .*missing-module\.json \(firmware\/vend\/inventory\.ts\): add "firmware\/vend\/inventory": "\$\(VENDFLEET\)\/firmware\/vend\/inventory" to "modules" and "preload"/,
    );
    assert.match(out, /manifests: \d+ problems?/);
  });

  it('fails on a listed module that is not on disk, and on one nothing imports', function () {
    const path = variant('stale', (m) => {
      modules(m)['firmware/vend/gone'] = '$(VENDFLEET)/firmware/vend/gone';
      modules(m)['firmware/bench/frame'] = '$(VENDFLEET)/firmware/bench/frame';
    });
    const report = checkManifest(path, undefined);
    assert.ok(report.problems.some((p) => /module "firmware\/vend\/gone" is listed as firmware\/vend\/gone, but neither firmware\/vend\/gone\.ts nor \.js exists/.test(p)), report.problems.join('\n'));
    assert.ok(report.problems.some((p) => /module "firmware\/bench\/frame" \(firmware\/bench\/frame\) is listed but not imported from the entry "firmware\/platform\/esp32\/main": remove it/.test(p)), report.problems.join('\n'));
  });

  it('fails on a module that is listed but not preloaded', function () {
    const path = variant('not-preloaded', (m) => {
      m['preload'] = preload(m).filter((p) => p !== 'firmware/money/change');
    });
    const report = checkManifest(path, undefined);
    assert.deepEqual(report.problems, [`${path}: module "firmware/money/change" is not preloaded: add it to "preload" (its code and objects then stay in flash)`]);
  });

  it('fails on an SDK module that no included manifest provides', function () {
    const path = variant('no-mqtt', (m) => {
      m['include'] = (m['include'] as string[]).filter((i) => !i.includes('mqttclient'));
    });
    const report = checkManifest(path, undefined);
    assert.ok(
      report.problems.some((p) => /firmware\/platform\/esp32\/mqtt\.ts:\d+ imports "embedded:network\/mqtt\/client": .* includes none of the manifests that provide it \(\$\(MODDABLE\)\/examples\/io\/tcp\/mqttclient\/manifest_mqttclient\.json\)/.test(p)),
      report.problems.join('\n'),
    );
  });

  it('fails when the running state is over the RAM budget or the code over the flash budget, naming which, or the creation heap leaves no room for garbage', function () {
    const tightRam = variant('tight-ram', (m) => {
      (m['vendfleet'] as Json)['ramAtRestSlots'] = heap.sample.state - 1;
    });
    let problems = checkManifest(tightRam, heap).problems;
    assert.ok(
      problems.some((p) => p.includes(`the running firmware's state at rest under XS is ${heap.sample.state} slots for the sample machine with its uplink, over the RAM budget of ${heap.sample.state - 1} (vendfleet.ramAtRestSlots): this is RAM on the board`)),
      problems.join('\n'),
    );
    assert.ok(!problems.some((p) => p.includes('flash budget')), 'the code still fits its budget');
    const tightCode = variant('tight-code', (m) => {
      (m['vendfleet'] as Json)['codeSlots'] = heap.bench.code - 1;
    });
    problems = checkManifest(tightCode, heap).problems;
    assert.ok(
      problems.some((p) => p.includes(`the firmware's code and tables under XS are ${heap.bench.code} slots for the bench (npm run bench -- --xs-only: xs.stateHeapSlots, xs.codeHeapSlots), over the flash budget of ${heap.bench.code - 1} (vendfleet.codeSlots)`)),
      problems.join('\n'),
    );
    assert.ok(!problems.some((p) => p.includes('RAM budget')), 'the state still fits its budget');
    // A flash budget the application slot could not hold beside ESP-IDF and the engine.
    const huge = 1472 * 1024 / SLOT_BYTES / 4 + 1;
    const greedy = variant('greedy-code', (m) => {
      (m['vendfleet'] as Json)['codeSlots'] = huge;
    });
    assert.ok(checkManifest(greedy, heap).problems.some((p) => p.includes(`vendfleet.codeSlots ${huge} is ${huge * 16} bytes at 16 a slot, more than a quarter of the 1472 KiB application slot`)));
    // The single budget from before the split, or a budget left out, is named.
    const old = variant('old-budget', (m) => {
      m['vendfleet'] = { heapAtRestSlots: 10240 };
    });
    problems = checkManifest(old, heap).problems;
    assert.ok(problems.some((p) => p.includes('vendfleet.heapAtRestSlots is the single budget from before the split')), problems.join('\n'));
    assert.ok(problems.some((p) => p.includes('vendfleet.ramAtRestSlots (the RAM budget')));
    assert.ok(problems.some((p) => p.includes('vendfleet.codeSlots (the flash budget')));
    const ram = loadManifest(ESP32).budget!.ramAtRestSlots!;
    const small = variant('small-heap', (m) => {
      ((m['creation'] as Json)['heap'] as Json)['initial'] = 2 * ram - 2;
    });
    assert.ok(checkManifest(small, heap).problems.some((p) => p.includes(`creation.heap.initial ${2 * ram - 2} is less than twice the RAM budget at rest (${2 * ram})`)));
    const growing = variant('growing', (m) => {
      ((m['creation'] as Json)['heap'] as Json)['incremental'] = 64;
    });
    assert.ok(checkManifest(growing, heap).problems.some((p) => p.includes('creation.heap.incremental must be 0')));
  });

  it('fails when the partition table has no journal partition, or partitions overlap', function () {
    const csv = join(dir, 'partitions.csv');
    writeFileSync(csv, 'nvs, data, nvs, 0x9000, 0x6000,\nfactory, app, factory, 0x10000, 0x300000,\nstore, data, undefined, 0x300000, 0x100000,\n');
    const path = variant('no-journal', (m) => {
      (m['build'] as Json)['PARTITIONS_FILE'] = csv;
    });
    const problems = checkManifest(path, undefined).problems;
    assert.ok(problems.some((p) => /no partition labelled "journal" \(config\.journal\)/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /partitions "factory" and "store" overlap/.test(p)), problems.join('\n'));
  });

  it('the build has what firmware updates need: two OTA slots, otadata, rollback, the version in the image, the OTA modules', function () {
    const report = checkManifest(ESP32, undefined);
    assert.deepEqual(report.problems, []);
    assert.ok(report.lines.some((l) => l === `  app slots ota_0 and ota_1: 1472 KiB each; otadata at 0x2f0000; rollback on, image version ${FIRMWARE_VERSION}`), report.lines.join('\n'));
    assert.ok(report.modules.reached.has('firmware/platform/esp32/native/ota-slots') && report.modules.reached.has('firmware/platform/esp32/firmware-slots'));
    assert.ok(report.modules.sdk.has('ota') && report.modules.sdk.has('preference'));
    // Without the SDK's OTA module in the build, the board's slots cannot be built.
    const path = variant('no-ota', (m) => {
      m['include'] = (m['include'] as string[]).filter((i) => !i.includes('modules/ota'));
    });
    assert.ok(
      checkManifest(path, undefined).problems.some((p) => /firmware-slots\.ts:\d+ imports "ota": .* includes none of the manifests that provide it \(\$\(MODDABLE\)\/build\/devices\/esp32\/modules\/ota\/manifest\.json\)/.test(p)),
    );
  });

  it('fails on a partition table without two equal OTA slots and otadata', function () {
    const table = (name: string, rows: string): string => {
      const csv = join(dir, `${name}.csv`);
      writeFileSync(csv, `nvs, data, nvs, 0x9000, 0x6000,\n${rows}journal, data, undefined, 0x300000, 0x100000,\n`);
      return variant(name, (m) => {
        (m['build'] as Json)['PARTITIONS_FILE'] = csv;
      });
    };
    const factory = checkManifest(table('factory', 'factory, app, factory, 0x10000, 0x2F0000,\n'), undefined).problems;
    assert.ok(factory.some((p) => /app partition "factory" is a factory app/.test(p)), factory.join('\n'));
    assert.ok(factory.some((p) => /no app partition of subtype ota_0/.test(p)) && factory.some((p) => /no app partition of subtype ota_1/.test(p)));
    assert.ok(factory.some((p) => /no otadata partition/.test(p)));
    const uneven = checkManifest(table('uneven', 'otadata, data, ota, 0x2f0000, 0x2000,\nota_0, app, ota_0, 0x10000, 0x180000,\nota_1, app, ota_1, 0x190000, 0x160000,\n'), undefined).problems;
    assert.deepEqual(uneven.map((p) => p.replace(/^.*?: /, '')), ['app slots "ota_0" (1572864 bytes) and "ota_1" (1441792 bytes) differ: an image must fit either']);
    const small = checkManifest(table('small', 'otadata, data, ota, 0xf000, 0x1000,\nota_0, app, ota_0, 0x10000, 0x80000,\nota_1, app, ota_1, 0x90000, 0x80000,\nota_2, app, ota_2, 0x110000, 0x80000,\n'), undefined).problems;
    assert.ok(small.some((p) => /app slot "ota_0" has 524288 bytes, less than the 1048576/.test(p)), small.join('\n'));
    assert.ok(small.some((p) => /app partition "ota_2" \(ota_2\): only two slots/.test(p)));
    assert.ok(small.some((p) => /otadata must be 8192 bytes/.test(p)));
  });

  it('fails on an sdkconfig without rollback, or with an image version that is not FIRMWARE_VERSION', function () {
    const config = (name: string, edit: (text: string) => string): string => {
      const sdk = join(dir, name);
      mkdirSync(sdk, { recursive: true });
      writeFileSync(join(sdk, 'sdkconfig.defaults'), edit(readFileSync(join(REPO, 'manifests/esp32/sdkconfig/sdkconfig.defaults'), 'utf8')));
      return variant(name, (m) => {
        (m['build'] as Json)['SDKCONFIGPATH'] = sdk;
      });
    };
    const off = checkManifest(config('no-rollback', (t) => t.replace('CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y', '# CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE is not set')), undefined).problems;
    assert.equal(off.length, 1, off.join('\n'));
    assert.match(off[0]!, /sdkconfig\.defaults lacks CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y: an update boots on probation/);
    const stale = checkManifest(config('stale-version', (t) => t.replace(`CONFIG_APP_PROJECT_VER="${FIRMWARE_VERSION}"`, 'CONFIG_APP_PROJECT_VER="0.0.1"')), undefined).problems;
    assert.equal(stale.length, 1, stale.join('\n'));
    assert.match(stale[0]!, new RegExp(`has CONFIG_APP_PROJECT_VER="0\\.0\\.1", not CONFIG_APP_PROJECT_VER="${FIRMWARE_VERSION.replace(/\./g, '\\.')}": the application description carries FIRMWARE_VERSION`));
  });

  it('fails on board settings the device would refuse', function () {
    const path = variant('bad-pins', (m) => {
      ((m['config'] as Json)['mdb'] as Json)['transmit'] = 35;
    });
    assert.ok(checkManifest(path, undefined).problems.some((p) => p.includes('config: config.mdb.transmit: GPIO 35 is input-only')));
  });

  it('the preloaded fixup lets an Error subclass name itself once XS has frozen the built-ins', async function () {
    // What preload does on the device: the fixup runs, then the built-ins are frozen, then the firmware runs.
    const fixup = readFileSync(join(REPO, 'dist/firmware/platform/esp32/xs-fixups.js'), 'utf8').replace(/^export \{\};?$/m, '');
    const firmware = `class ConfigError extends Error { constructor(m) { super(m); this.name = 'ConfigError'; } }
      const e = new ConfigError('machine.slots must be a non-empty array');
      return [String(e), e.name, new Error('x').name, new RangeError('y').name].join(' | ');`;
    const run = async (source: string): Promise<string> => {
      const w = new XsWorker();
      try {
        const r = await w.evaluate(`new TextEncoder().encode((() => { "use strict"; ${source} })()).buffer`);
        return new TextDecoder().decode(r.reply);
      } catch (e) {
        return `threw: ${(e as Error).message}`;
      } finally {
        await w.close();
      }
    };
    const freeze = 'Object.freeze(Error.prototype); Object.freeze(RangeError.prototype);';
    assert.match(await run(`${freeze} ${firmware}`), /threw: .*not writable/);
    assert.equal(await run(`${fixup}; ${freeze} ${firmware}`), 'ConfigError: machine.slots must be a non-empty array | ConfigError | Error | RangeError');
  });

  it('reads partition tables as ESP-IDF does (sizes in K and M, offsets that follow on)', function () {
    const table = parsePartitions('# c\nnvs, data, nvs, , 24K,\nphy, data, phy, , 4K,\napp, app, factory, , 1M,\nj, data, undefined, , 0x100000,\n');
    assert.deepEqual(
      table.map((p) => [p.name, p.offset, p.size]),
      [
        ['nvs', 0x9000, 0x6000],
        ['phy', 0xf000, 0x1000],
        ['app', 0x10000, 0x100000],
        ['j', 0x110000, 0x100000],
      ],
    );
  });

  it('counts only imports that survive compilation', function () {
    const file = join(dir, 'imports.ts');
    writeFileSync(
      file,
      [
        "import type { A } from './a.js';",
        "import { type B } from './b.js';",
        "import C from 'embedded:io/digital';",
        "export type { D } from './d.js';",
        "export { e } from './e.js';",
        "import './f.js';",
        'export const x = (): unknown => [C];',
      ].join('\n'),
    );
    // `import { type B }` stays as `import {} from './b.js'` under verbatimModuleSyntax.
    assert.deepEqual(
      runtimeImports(file).map((i) => i.specifier),
      ['./b.js', 'embedded:io/digital', './e.js', './f.js'],
    );
  });
});
