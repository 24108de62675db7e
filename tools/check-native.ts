/**
 * check-native: the project's native modules for the ESP32 compile.
 *
 *   node dist/tools/check-native.js [file.c ...]
 *
 * (default: NATIVE_CHECKED). Each is compiled on the host with
 * `cc -fsyntax-only -Wall -Wextra -Werror` against the real XS headers (the
 * copy of Moddable's xs/includes and xs/platforms that @agoric/xsnap ships,
 * the engine the tests run) and tools/native/esp-idf, declarations of the
 * ESP-IDF calls the modules make (its README says what that does and does
 * not catch). The board's own build (mcconfig against ESP-IDF) is the final
 * word; this keeps CI from carrying C that would not even parse.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO } from './check-manifests.js';

/** The modules checked: mdb-uart.c needs the UART HAL and FreeRTOS, which tools/native/esp-idf does not declare. */
export const NATIVE_CHECKED = ['firmware/platform/esp32/native/ota-slots.c'];

const XS = join(REPO, 'node_modules/@agoric/xsnap/moddable/xs');

export function checkNative(file: string): string[] {
  if (!existsSync(file)) return [`${file}: no such file`];
  if (!existsSync(join(XS, 'includes/xsmc.h'))) return [`the XS headers are not at ${XS} (npm ci installs @agoric/xsnap)`];
  const cc = spawnSync(
    'cc',
    ['-fsyntax-only', '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-I', join(REPO, 'tools/native/esp-idf'), '-I', join(XS, 'includes'), '-I', join(XS, 'platforms'), file],
    { encoding: 'utf8', timeout: 60000 },
  );
  if (cc.error) return [`${relative(REPO, file)}: cc did not run (${cc.error.message}): install a C compiler`];
  if (cc.status === 0) return [];
  return (cc.stderr || cc.stdout).split('\n').filter((l) => /error|warning/.test(l)).map((l) => l.replace(`${REPO}/`, ''));
}

function main(): void {
  const files = process.argv.slice(2);
  const problems = (files.length > 0 ? files : NATIVE_CHECKED.map((f) => join(REPO, f))).flatMap((f) => checkNative(f));
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length > 0) process.exit(1);
  process.stdout.write('native modules compile against the XS headers and the ESP-IDF declarations\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
