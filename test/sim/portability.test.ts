/**
 * The firmware must run under XS on the ESP32: it imports nothing from Node
 * or npm, only its own modules, and the guest-side board imports only the
 * firmware and its own protocol. The device's platform code
 * (firmware/platform/esp32) may import Moddable's modules as well: only
 * those this project declares (types/moddable), never Node's or npm's.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

const PLATFORM = join(root, 'firmware', 'platform');

function sources(dir: string, skip?: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (p === skip) continue;
    if (statSync(p).isDirectory()) out.push(...sources(p, skip));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

describe('firmware portability', () => {
  for (const [dir, allowed] of [
    ['firmware', ['firmware']],
    ['hal-sim/guest', ['firmware', 'hal-sim/guest']],
  ] as const) {
    it(`${dir} imports only ${allowed.join(' and ')} modules`, () => {
      const files = sources(join(root, dir), PLATFORM);
      assert.ok(files.length > 0);
      for (const file of files) {
        for (const spec of imports(file)) {
          assert.ok(spec.startsWith('.'), `${relative(root, file)} imports "${spec}", which is not one of the project's own modules`);
          const target = relative(root, join(file, '..', spec));
          assert.ok(
            allowed.some((a) => target.startsWith(a + '/')),
            `${relative(root, file)} imports ${target}, outside ${allowed.join(', ')}`,
          );
        }
      }
    });
  }

  it('lets the device platform code import only the firmware and the Moddable modules the project declares', () => {
    const declared = new Set<string>();
    for (const file of sources(join(root, 'types', 'moddable'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/declare module '([^']+)'/g)) declared.add(m[1]!);
    }
    assert.ok(declared.has('embedded:io/serial') && declared.has('timer'), 'the Moddable declarations are there');
    const files = sources(PLATFORM);
    assert.ok(files.length > 0);
    for (const file of files) {
      for (const spec of imports(file)) {
        if (spec.startsWith('.')) {
          const target = relative(root, join(file, '..', spec));
          assert.ok(target.startsWith('firmware/'), `${relative(root, file)} imports ${target}, outside the firmware`);
        } else {
          assert.ok(declared.has(spec), `${relative(root, file)} imports "${spec}", which is neither the firmware's nor a declared Moddable module`);
        }
      }
      const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      const m = /\b(process|require|Buffer|window|document)\b/.exec(code);
      assert.equal(m, null, `${relative(root, file)} uses ${m?.[0]}`);
    }
  });

  it('uses no Node or browser globals in the firmware', () => {
    const banned = /\b(process|require|Buffer|setTimeout|setInterval|clearTimeout|console|globalThis|window|document)\b/;
    for (const file of sources(join(root, 'firmware'), PLATFORM)) {
      const code = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      const m = banned.exec(code);
      assert.equal(m, null, `${relative(root, file)} uses ${m?.[0]}`);
    }
  });
});
