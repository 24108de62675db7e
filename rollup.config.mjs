// Bundles the firmware (behind the host's HAL bridge) into one script for the
// XS engine, and each firmware unit-test file into a script that runs under XS.
import { readdirSync } from 'node:fs';
import { FIRMWARE_VERSION, JOURNAL_FORMAT } from './dist/firmware/version.js';

const script = (input, file, name, banner) => ({
  input,
  output: { file, format: 'iife', name, strict: true, ...(banner ? { banner } : {}) },
  treeshake: { moduleSideEffects: true },
  onwarn(warning, warn) {
    if (warning.code === 'CIRCULAR_DEPENDENCY') throw new Error(warning.message);
    warn(warning);
  },
});

const tests = readdirSync('dist/test/firmware')
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => script(`dist/test/firmware/${f}`, `dist/bundle/tests/${f}`, 'vendfleetTest'));

// The firmware bundle is the simulator's image: its first bytes describe it (docs/updates.md, "Images").
const description = `/*VFIMG ${JSON.stringify({ version: FIRMWARE_VERSION, journal: JOURNAL_FORMAT })}*/`;

export default [
  script('dist/hal-sim/guest/entry.js', 'dist/bundle/firmware.js', 'vendfleetFirmware', description),
  script('dist/test/xs/harness.js', 'dist/bundle/tests/_harness.js', 'vendfleetHarness'),
  script('dist/bench/xs/change-bench.js', 'dist/bundle/bench-change.js', 'vendfleetBenchChange'),
  script('dist/bench/xs/journal-bench.js', 'dist/bundle/bench-journal.js', 'vendfleetBenchJournal'),
  script('dist/bench/xs/dex-bench.js', 'dist/bundle/bench-dex.js', 'vendfleetBenchDex'),
  script('dist/bench/xs/update-bench.js', 'dist/bundle/bench-update.js', 'vendfleetBenchUpdate'),
  ...tests,
];
