/**
 * The root hook that ends a run something holds open (test/lib/after-failure.ts),
 * run on a throw-away spec that fails and leaves a server listening.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const HOOK = resolve('dist/test/lib/after-failure.js');
const MOCHA = resolve('node_modules/mocha/bin/mocha.js');

function runSpec(body: string): Promise<{ code: number | null; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'vf-after-failure-'));
  const spec = join(dir, 'leaky.spec.mjs');
  writeFileSync(spec, body);
  const p = spawn(process.execPath, [MOCHA, '--no-config', '--require', HOOK, spec], { env: { ...process.env, VF_EXIT_GRACE_MS: '300' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // Bounded by mocha's own timeout: a hook that did not work leaves the child running.
  return new Promise((r) => p.on('exit', (code) => r({ code, err })));
}

describe('after-failure root hook', () => {
  it('ends a failed run that left a server open, naming the handle', async () => {
    const r = await runSpec(`import { createServer } from 'node:net';
it('fails and leaks', () => { createServer().listen(0, '127.0.0.1'); throw new Error('boom'); });`);
    assert.equal(r.code, 1);
    assert.match(r.err, /held open .* by: .*TCPServerWrap/);
  });

  it('leaves a clean run to end by itself', async () => {
    const r = await runSpec(`it('passes', () => {});`);
    assert.equal(r.code, 0);
    assert.doesNotMatch(r.err, /held open/);
  });
});
