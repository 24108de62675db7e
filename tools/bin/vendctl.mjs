#!/usr/bin/env node
// `npx vendctl ...` (the package's bin): runs the built command line at once,
// without the rebuild `npm run vendctl` does; builds the project once when it
// has never been built (a fresh clone after `npm install`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const built = new URL('../../dist/tools/vendctl.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write('vendctl: not built yet; building the project once (npm run build)\n');
  const b = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (b.status !== 0) {
    process.stderr.write('vendctl: the build failed; run `npm run build` to see why\n');
    process.exit(1);
  }
}
await import(built.href);
