/**
 * npm start's route driver (tools/restocker.ts) tells what became of each
 * restock, as the machine answered it: applied, or refused and why, not
 * merely that the command went out.
 */
import { strict as assert } from 'node:assert';
import { Gateway } from '../../gateway/gateway.js';
import { MachineHost } from '../../hal-sim/host.js';
import { Restocker } from '../../tools/restocker.js';
import { usMachine } from '../sim/fixtures.js';
import { BACKENDS, type Backend } from './backends.js';

describe('the route driver of npm start', function () {
  this.timeout(180000);
  let b: Backend;
  let gw: Gateway;
  const hosts = new Map<string, MachineHost>();
  let running = true;
  let runs: Promise<void>[] = [];

  before(async () => {
    b = await BACKENDS[0]!.open();
    gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db });
    // One machine with the right time, one whose board clock is three hours ahead (its SNTP server lies).
    const clocks = { 'rs-right': 'host', 'rs-ahead': () => Date.now() + 3 * 3600_000 } as const;
    for (const [id, wallClock] of Object.entries(clocks)) {
      const key = await gw.commands.provision(id);
      hosts.set(id, await MachineHost.start(usMachine(), { machineId: id, network: { url: b.mqttUrl }, wallClock, config: { commandKey: key.commandKey, commandKeyId: key.commandKeyId } }));
    }
    gw.ingester.known([...hosts.keys()]);
    runs = [...hosts.values()].map(async (h) => {
      while (running) await h.run(500);
    });
  });
  after(async () => {
    running = false;
    await Promise.all(runs);
    for (const h of hosts.values()) await h.close();
    await gw?.close();
    await b?.close();
  });

  it("prints each restock's outcome as the machine answered it: applied, or refused with the reason", async () => {
    const lines: string[] = [];
    const line = (id: string): string | undefined => lines.find((l) => l.includes(` ${id} `));
    // Stopped once both machines have an answer. The refused machine still looks empty and may already be on its
    // second visit (it failed once so under load: "3 restocks: ..., 1 waiting"), so that one's outcome is waited for too.
    const driver: Restocker = new Restocker(b.db, gw.commands, hosts, {
      everyMs: 200,
      visitAfterMs: 0,
      outcomeWaitMs: 30000,
      log: (m) => {
        lines.push(m);
        if (line('rs-right') !== undefined && line('rs-ahead') !== undefined) driver.stop();
      },
    });
    const answered = (): number => [...driver.outcomes.values()].reduce((a, n) => a + n, 0);
    driver.start();
    try {
      // Bounded in real time: the machines run in real time (paced) and the store is real.
      for (const until = Date.now() + 90000; Date.now() < until && (line('rs-right') === undefined || line('rs-ahead') === undefined || answered() < driver.visits); ) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      driver.stop();
    }
    assert.match(line('rs-right') ?? '', /^route driver: restocked rs-right \([A-Z0-9, ]*C2[A-Z0-9, ]*\), command \d+ applied$/, lines.join('\n'));
    assert.match(line('rs-ahead') ?? '', /^route driver: restocked rs-ahead \([A-Z0-9, ]*C2[A-Z0-9, ]*\), command \d+ rejected: expired$/, lines.join('\n'));
    // Every line is one of those two answers, and the counts and the summary say what the lines say.
    const applied = lines.filter((l) => / rs-right .* applied$/.test(l)).length;
    const expired = lines.filter((l) => / rs-ahead .* rejected: expired$/.test(l)).length;
    assert.equal(applied + expired, lines.length, lines.join('\n'));
    assert.equal(driver.visits, lines.length, driver.summary());
    assert.deepEqual(Object.fromEntries(driver.outcomes), { applied, 'rejected: expired': expired });
    assert.match(driver.summary(), new RegExp(`^${lines.length} restocks: (${applied} applied, ${expired} rejected: expired|${expired} rejected: expired, ${applied} applied)$`));
  });
});
