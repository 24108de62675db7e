/**
 * The dashboard bench (`npm run bench -- --dashboard-only`) at 50 machines,
 * so its code cannot rot: the store seeded, the page opened in Chromium and
 * signed in, the first screen's mark read, a machine going offline shown
 * live, and the figures printed. The figures are the bench's business, not
 * asserted here; what the page drew is.
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { dashboardBench } from '../../bench/lib/dashboard.js';
import { Figures } from '../../bench/lib/figures.js';

describe('dashboard bench (50 machines)', function () {
  this.timeout(240000);

  it('seeds, opens the dashboard, reads the first screen and a live change', async () => {
    if (!existsSync(process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium')) throw new Error('Chromium is needed (Debian: apt-get install chromium)');
    const f = new Figures(true);
    const run = await dashboardBench(f, { machines: 50, operators: 2, days: 30, rawDays: 7, salesPerDay: 4 });
    assert.equal(run.rowsDrawn, 50, 'every machine drawn (under a page of rows)');
    assert.equal(run.shownText, '50 of 50 machines');
    assert.ok(run.firstScreenMs > 0 && run.firstScreenMs >= run.responseEndMs, `first screen at ${run.firstScreenMs} ms, after the page arrived`);
    assert.ok(run.liveMs >= 0, 'the change showed');
    assert.match(run.restockKpi, /^\d+$/);
    for (const key of ['firstScreenMs', 'liveMs', 'rowsDrawn', 'seedSeconds', 'api.machinesMs', 'api.machines.pageMs', 'api.machines.idsMs']) assert.ok(Number.isFinite(f.values[`dashboard.pglite.${key}`]), key);
  });
});
