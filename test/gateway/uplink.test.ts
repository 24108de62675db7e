/**
 * Machines and the gateway end to end: the firmware (in Node and under XS)
 * publishes its journal over a real MQTT connection, the gateway stores it
 * and acknowledges, and the machine's unsynced count reaches 0; through a
 * network outage and a power cut, every event arrives exactly once.
 */
import { strict as assert } from 'node:assert';
import { Gateway } from '../../gateway/gateway.js';
import { MachineHost } from '../../hal-sim/host.js';
import { usMachine } from '../sim/fixtures.js';
import { BACKENDS, count, synced, type Backend } from './backends.js';


async function buy(host: MachineHost, code: string, coins: number[]): Promise<void> {
  host.select(code);
  await host.runUntilIdle();
  for (const c of coins) {
    host.insertCoin(c);
    await host.runUntilIdle();
  }
}

for (const backend of BACKENDS) {
  for (const target of ['sim', 'xs'] as const) {
    describe(`machine to gateway: ${backend.name}, firmware on ${target}`, function () {
      this.timeout(120000);
      let b: Backend;
      let gw: Gateway;
      const id = `vm${process.pid % 10000}${target}${Math.floor(Math.random() * 1e6)}`;

      before(async () => {
        b = await backend.open();
        gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup });
        await gw.addMachines([id]);
      });
      after(async () => {
        await gw?.close();
        await b?.close();
      });

      it('sends every journal event once, through an outage and a power cut, and ends with nothing unsynced', async () => {
        const host = await MachineHost.start(usMachine(), { target, machineId: id, network: { url: b.mqttUrl } });
        try {
          await buy(host, 'A1', [100, 25]);
          await buy(host, 'B4', [100, 100]);
          let last = await synced(host, 120000);
          assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]), last);
          assert.equal(await count(b.db, 'SELECT count(*) AS n FROM sales WHERE machine_id = $1', [id]), 2);
          const state = (await b.db.query<{ online: boolean; last_seq: string }>('SELECT online, last_seq FROM machine_state WHERE machine_id = $1', [id])).rows[0]!;
          assert.equal(state.online, true);
          assert.equal(Number(state.last_seq), last);

          // The link goes down: sales go on, the events wait in flash.
          host.setNetwork(false);
          await host.run(2000);
          await buy(host, 'A1', [25, 25, 25, 25, 25]);
          const offline = await host.status();
          assert.ok(offline.journal.unsynced >= 4, `${offline.journal.unsynced} events waiting`);
          assert.notEqual(offline.uplink?.state, 'online');
          // The broker published the machine's last will.
          for (let i = 0; i < 100; i++) {
            const r = (await b.db.query<{ online: boolean }>('SELECT online FROM machine_state WHERE machine_id = $1', [id])).rows[0]!;
            if (!r.online) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          assert.equal((await b.db.query<{ online: boolean }>('SELECT online FROM machine_state WHERE machine_id = $1', [id])).rows[0]!.online, false, 'offline after the last will');
          host.setNetwork(true);
          last = await synced(host, 600000);
          assert.equal(await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]), last);

          // The power fails mid-purchase; the machine comes back and catches up.
          host.select('A1');
          await host.runUntilIdle();
          host.insertCoin(100);
          await host.runUntilIdle();
          await host.powerCut();
          assert.equal((await host.status()).credit, 100, 'the credit survived the cut');
          host.insertCoin(25);
          await host.runUntilIdle();
          host.select('A1');
          await host.runUntilIdle();
          last = await synced(host, 600000);
          const rows = await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id]);
          assert.equal(rows, last, 'every event stored once (the primary key makes a second impossible)');
          assert.equal(await count(b.db, 'SELECT count(*) AS n FROM sales WHERE machine_id = $1', [id]), 4);
          assert.equal(await count(b.db, "SELECT count(*) AS n FROM events WHERE machine_id = $1 AND type = 'boot'", [id]), 1);
          const st = await host.status();
          assert.ok((st.uplink?.telemetrySent ?? 0) >= 1);
          assert.ok((await count(b.db, 'SELECT count(*) AS n FROM telemetry WHERE machine_id = $1', [id])) >= 1);
          const tele = (await b.db.query<{ telemetry: { temperature?: number; fw?: string; slots?: { code: string; qty: number }[]; journal?: { unsynced: number } } }>('SELECT telemetry FROM machine_state WHERE machine_id = $1', [id])).rows[0]!.telemetry;
          assert.equal(tele.temperature, 4.5, 'the cabinet temperature');
          assert.equal(tele.fw, '0.1.0');
          assert.deepEqual(tele.slots?.map((s) => s.code), ['A1', 'B4', 'C2']);
        } finally {
          await host.close();
        }
      });
    });
  }
}
