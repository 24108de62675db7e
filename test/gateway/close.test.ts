/**
 * A closed gateway leaves no timer of its own behind, on both setups (in a
 * share group on the production one, so that leaving the group, bounded by
 * a 2 s timeout, is part of the close). Timers are watched with async_hooks
 * from start to close: every Timeout created from the gateway's code must
 * be cleared or have run soon after close() resolves. A timer left pending
 * would be a shutdown bound that holds a process open (or, unref'd, fires
 * into a closed gateway). The store's connection pool is the store's: its
 * idle timers end with db.close(), which the test does after.
 */
import { strict as assert } from 'node:assert';
import { createHook } from 'node:async_hooks';
import { Gateway } from '../../gateway/gateway.js';
import { BACKENDS, eventually, type Backend } from './backends.js';

/** Timeouts created from gateway/ code (not the store's pool) and not yet cleared or run: id → where it was made. */
function watchTimers(): { live: Map<number, string>; stop(): void } {
  const live = new Map<number, string>();
  let watching = true;
  const hook = createHook({
    init(id, type) {
      if (!watching || type !== 'Timeout') return;
      const ours = (new Error().stack ?? '').split('\n').filter((l) => /\/gateway\/[^/]+(\/[^/]+)?\.js/.test(l) && !l.includes('/test/'));
      // The first frame of ours says who made it; the store's pool (store/db.js) ends with db.close().
      if (ours.length > 0 && !ours[0]!.includes('/gateway/store/db.js')) live.set(id, ours[0]!.trim());
    },
    destroy(id) {
      live.delete(id);
    },
  });
  hook.enable();
  return {
    live,
    stop() {
      watching = false;
      hook.disable();
    },
  };
}

for (const backend of BACKENDS) {
  describe(`closing the gateway: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;

    before(async () => {
      b = await backend.open();
    });
    after(async () => {
      await b?.close();
    });

    it('leaves no timer of its own pending once close() resolves', async () => {
      const timers = watchTimers();
      try {
        const gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup });
        await gw.addMachines(['vm-close']);
        await gw.close();
        // Cleared timers are reported destroyed a moment later: waited for, bounded well under any shutdown timeout (2 s, 5 s).
        await eventually('no gateway timer left', async () => (timers.live.size === 0 ? true : undefined), 1000).catch(() => {
          assert.fail(`timers still pending after close: ${[...timers.live.values()].join('; ')}`);
        });
      } finally {
        timers.stop();
      }
    });
  });
}
