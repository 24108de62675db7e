/**
 * The ESP32 native module for the application slots compiles on the host
 * against the real XS headers and the ESP-IDF declarations
 * (tools/check-native.ts), and the check fails on C that a board build
 * would refuse: a wrong argument count, a misused XS macro, a typo.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../tools/check-manifests.js';
import { NATIVE_CHECKED, checkNative } from '../../tools/check-native.js';

describe('native modules (tools/check-native.ts)', function () {
  this.timeout(60000);

  it('ota-slots.c compiles with -Wall -Wextra -Werror', () => {
    for (const f of NATIVE_CHECKED) assert.deepEqual(checkNative(join(REPO, f)), [], f);
  });

  it('fails on a broken copy, naming the line', () => {
    const source = readFileSync(join(REPO, NATIVE_CHECKED[0]!), 'utf8');
    const dir = mkdtempSync(join(tmpdir(), 'vf-native-'));
    const breakages: [string, string, RegExp][] = [
      ['a missing argument', 'esp_partition_erase_range(writer->partition, position, sector)', /too few arguments/],
      ['an XS call without its slot', 'xsmcSetInteger(xsResult, next ? (xsIntegerValue)next->size : 0)', /error/],
      ['a misspelt call', 'esp_ota_mark_app_valid_cancel_rollback()', /implicit declaration|undeclared/],
    ];
    const replacements = ['esp_partition_erase_range(writer->partition, position)', 'xsmcSetInteger(next ? (xsIntegerValue)next->size : 0)', 'esp_ota_mark_app_valid_cancel_rollbak()'];
    breakages.forEach(([what, find, expect], i) => {
      assert.ok(source.includes(find), `the source still has ${find}`);
      const file = join(dir, `broken-${i}.c`);
      writeFileSync(file, source.replace(find, replacements[i]!));
      const problems = checkNative(file);
      assert.ok(problems.length > 0, `${what}: the check fails`);
      assert.match(problems.join('\n'), expect, what);
      assert.match(problems[0]!, /broken-\d\.c:\d+/, 'it names the file and line');
    });
  });
});
