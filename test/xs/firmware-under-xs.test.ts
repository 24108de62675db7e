/**
 * The firmware's unit tests, bundled by rollup and run inside the real XS
 * engine (the one Moddable runs on the ESP32), not only in Node.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { XsWorker } from '../../hal-sim/xs/xsnap.js';

const bundles = fileURLToPath(new URL('../../bundle/tests/', import.meta.url));
const files = readdirSync(bundles).filter((f) => f.endsWith('.test.js') && !f.startsWith('_'));
const harness = readFileSync(bundles + '_harness.js', 'utf8');

interface Result {
  title: string;
  ok: boolean;
  error?: string;
}

describe('firmware unit tests under the XS engine', () => {
  it('has test bundles to run', () => {
    if (files.length < 3) throw new Error(`expected the firmware test bundles in ${bundles}, found ${files.length}`);
  });

  for (const file of files) {
    it(`${file} passes under XS`, async function () {
      const worker = new XsWorker({ onPrint: (line) => process.stderr.write(`[xs] ${line}\n`) });
      try {
        await worker.evaluate(harness);
        await worker.evaluate(readFileSync(bundles + file, 'utf8'));
        const { reply } = await worker.evaluate('__runTests()');
        const results = JSON.parse(new TextDecoder().decode(reply)) as Result[];
        const failed = results.filter((r) => !r.ok);
        if (results.length === 0) throw new Error(`${file}: no tests ran under XS`);
        if (failed.length > 0) throw new Error(`${failed.length} of ${results.length} failed under XS:\n` + failed.map((f) => `  ${f.title}: ${f.error}`).join('\n'));
        this.test!.title += ` (${results.length} tests)`;
      } finally {
        await worker.close();
      }
    });
  }
});
