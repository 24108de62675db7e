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

describe('the change planner\'s compute under the XS engine', () => {
  it('plans the typical machine\'s change (USD 5/10/25, credit up to 50.00, full tubes) within 2x of its measured compute, in at most 8 KB', async () => {
    // docs/benchmarks.md, "Change-making under XS": 3,601 / 5,930 / 32,957 computrons for 25 / 375 / 4,825 before
    // the last stage (the search run again to exhaustion), which these plans never reach. Computrons are XS's
    // deterministic metering count, not a clock.
    const w = new XsWorker({ meteringLimit: 2_000_000_000 });
    try {
      await w.evaluate(readFileSync(fileURLToPath(new URL('../../bundle/bench-change.js', import.meta.url)), 'utf8'));
      const footprint = Number(new TextDecoder().decode((await w.evaluate('new TextEncoder().encode(String(benchChangeSetup(5000, [5, 10, 25, 0]))).buffer')).reply));
      if (!(footprint > 0 && footprint <= 8192)) throw new Error(`planner buffers ${footprint} bytes`);
      const base = (await w.evaluate('0')).meter.compute;
      await w.evaluate('benchChangeCounts([255, 255, 255, 255])');
      for (const [amount, before] of [[25, 3601], [375, 5930], [4825, 32957]] as const) {
        const compute = (await w.evaluate(`benchChangeSolve(${amount})`)).meter.compute - base;
        if (!(compute > 0)) throw new Error(`plan ${amount}: no compute metered`);
        if (compute > 2 * before) throw new Error(`plan ${amount}: ${compute} computrons, over twice the ${before} measured`);
      }
    } finally {
      await w.close();
    }
  });
});

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
