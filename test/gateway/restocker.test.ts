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
    const driver = new Restocker(b.db, gw.commands, hosts, { everyMs: 200, visitAfterMs: 0, outcomeWaitMs: 30000, log: (m) => lines.push(m) });
    driver.start();
    try {
      // Bounded in real time: the machines run in real time (paced) and the store is real.
      for (const until = Date.now() + 90000; Date.now() < until && lines.length < 2; ) await new Promise((r) => setTimeout(r, 100));
    } finally {
      driver.stop();
    }
    assert.equal(lines.length, 2, lines.join('\n'));
    const line = (id: string): string => lines.find((l) => l.includes(` ${id} `)) ?? '';
    assert.match(line('rs-right'), /^route driver: restocked rs-right \([A-Z0-9, ]*C2[A-Z0-9, ]*\), command \d+ applied$/);
    assert.match(line('rs-ahead'), /^route driver: restocked rs-ahead \([A-Z0-9, ]*C2[A-Z0-9, ]*\), command \d+ rejected: expired$/);
    assert.deepEqual(Object.fromEntries(driver.outcomes), { applied: 1, 'rejected: expired': 1 });
    assert.match(driver.summary(), /^2 restocks: 1 (applied|rejected: expired), 1 (applied|rejected: expired)$/);
  });
});
