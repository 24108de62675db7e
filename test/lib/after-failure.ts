/**
 * A mocha root hook: after the last test the process is given a bounded while
 * to wind down; if something still holds it open then, it names what and exits
 * non-zero.
 *
 * Why: a failing test may skip its own clean-up (a gateway, a socket, a child
 * process left running), and without `--exit` mocha then never ends: CI waits
 * for its own timeout with the report buried. A passing run that leaks fails
 * the same way, naming the leak, instead of hanging.
 */
import type { Context } from 'mocha';

// VF_EXIT_GRACE_MS: shorter in the test of this hook.
const GRACE_MS = Number(process.env['VF_EXIT_GRACE_MS'] ?? 30000);
let failed = 0;

export const mochaHooks = {
  afterEach(this: Context): void {
    if (this.currentTest?.state === 'failed') failed++;
  },
  afterAll(): void {
    // Unreferenced: fires only if something else keeps the process alive.
    setTimeout(() => {
      const held = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
      process.stderr.write(`\nthe run ended (${failed} failed) but the process was still held open ${GRACE_MS / 1000} s later by: ${held.join(', ') || 'nothing listed'}; exiting\n`);
      process.exit(1);
    }, GRACE_MS).unref();
  },
};
