/**
 * Remote commands end to end: the gateway numbers, signs and sends them
 * (now, or when the machine comes back), the firmware (in Node and under
 * XS) verifies and applies each once through its journal, and the outcome
 * comes back as a journal event that settles the command's status in the
 * same transaction. Replays, forgeries and other machines' commands are
 * refused; a remote vend never dispenses twice, power cut included.
 */
import { strict as assert } from 'node:assert';
import type mqtt from 'mqtt';
import { connectMqtt } from '../lib/mqtt.js';
import type { CommandRecord } from '../../gateway/commands/service.js';
import { verifyCommand } from '../../gateway/commands/envelope.js';
import type { DexSummary } from '../../gateway/dex/parse.js';
import { Gateway } from '../../gateway/gateway.js';
import { MachineHost } from '../../hal-sim/host.js';
import { usMachine } from '../sim/fixtures.js';
import { BACKENDS, count, eventually, synced, type Backend } from './backends.js';

/** Run the machine until the command has an outcome. */
async function settle(host: MachineHost, gw: Gateway, c: CommandRecord, realMs = 30000): Promise<CommandRecord> {
  // Bounded in real time: the command crosses a real broker while the machine runs in virtual time.
  for (const until = Date.now() + realMs; Date.now() < until; ) {
    await gw.ingester.flush();
    const now = await gw.commands.get(c.id);
    if (now && now.status !== 'queued' && now.status !== 'delivered') return now;
    await host.run(200);
  }
  throw new Error(`command ${c.n} (${c.type}) still ${(await gw.commands.get(c.id))?.status}`);
}


const combos = [
  [BACKENDS[0]!, 'sim'],
  [BACKENDS[0]!, 'xs'],
  [BACKENDS[1]!, 'sim'],
] as const;

for (const [backend, target] of combos) {
  describe(`remote commands: ${backend.name}, firmware on ${target}`, function () {
    this.timeout(180000);
    let b: Backend;
    let gw: Gateway;
    let host: MachineHost;
    let spy: mqtt.MqttClient;
    const sent: Buffer[] = [];
    const id = `cm${process.pid % 10000}${target}${Math.floor(Math.random() * 1e6)}`;
    let key: Buffer;

    before(async () => {
      b = await backend.open();
      gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup });
      const provisioned = await gw.commands.provision(id);
      key = Buffer.from(provisioned.commandKey, 'hex');
      // Somebody who can read and write the machine's topics (what the ACLs of the security work prevent).
      spy = await connectMqtt(b.mqttUrl);
      spy.on('message', (_t, p) => sent.push(Buffer.from(p)));
      await spy.subscribeAsync(`fleet/${id}/commands`, { qos: 1 });
      host = await MachineHost.start(usMachine(), { target, machineId: id, network: { url: b.mqttUrl }, config: { commandKey: provisioned.commandKey, commandKeyId: provisioned.commandKeyId } });
      await synced(host, 120000);
    });
    after(async () => {
      await host?.close();
      await spy?.endAsync();
      await gw?.close();
      await b?.close();
    });

    it('changes a price: signed, applied once, journaled, and its status settled with the event', async () => {
      const c = await gw.commands.issue(id, 'set-prices', { prices: { A1: 135 } });
      assert.equal(c.status, 'delivered');
      const done = await settle(host, gw, c);
      assert.equal(done.status, 'applied');
      assert.equal(done.outcome?.['value'], 1);
      const st = await host.status();
      assert.equal(st.slots.find((s) => s.code === 'A1')!.price, 135);
      assert.equal(await count(b.db, "SELECT count(*) AS n FROM events WHERE machine_id = $1 AND type = 'price'", [id]), 1);
      // What went over the wire is the body the machine's key signed.
      const body = verifyCommand(sent.at(-1)!, key);
      assert.equal(body?.n, c.n);
      assert.deepEqual(body?.args, { prices: { A1: 135 } });
    });

    it('refuses a replayed, a forged and another machine\'s command, and says so', async () => {
      const replay = sent.at(-1)!;
      await spy.publishAsync(`fleet/${id}/commands`, replay, { qos: 1 });
      const forged = Buffer.from(replay.toString().replace('"A1":135', '"A1":1'));
      await spy.publishAsync(`fleet/${id}/commands`, forged, { qos: 1 });
      const other = await gw.commands.provision(`${id}x`);
      const foreign = await gw.commands.issue(`${id}x`, 'lock');
      void foreign;
      // A command for the other machine, signed with its key, published to this one.
      const { signCommand } = await import('../../gateway/commands/envelope.js');
      const now = Math.floor(Date.now() / 1000);
      await spy.publishAsync(`fleet/${id}/commands`, signCommand({ machine: `${id}x`, n: 99, type: 'lock', issued: now, expires: now + 60, args: {} }, 1, Buffer.from(other.commandKey, 'hex')), { qos: 1 });
      // The three cross a real broker while the machine runs in virtual time: wait (in real time) until
      // three rejections are stored, or give up, then compare what arrived.
      const rejected = async (): Promise<string[]> => {
        await gw.ingester.flush();
        return (await b.db.query<{ reason: string }>("SELECT body->>'reason' AS reason FROM events WHERE machine_id = $1 AND type = 'command-rejected' ORDER BY seq", [id])).rows.map((r) => r.reason);
      };
      let reasons = await rejected();
      for (const until = Date.now() + 60000; reasons.length < 3 && Date.now() < until; reasons = await rejected()) {
        await host.run(500);
      }
      await synced(host, 60000);
      reasons = await rejected();
      assert.deepEqual(reasons, ['replay', 'bad-signature', 'bad-signature']);
      const st = await host.status();
      assert.equal(st.slots.find((s) => s.code === 'A1')!.price, 135);
      assert.equal(st.locked, false);
    });

    /** Cut the machine's link and wait until the gateway knows (the broker publishes its last will). */
    async function offline(): Promise<void> {
      host.setNetwork(false);
      for (let i = 0; i < 300; i++) {
        await host.run(1000);
        await gw.ingester.flush();
        const r = await b.db.query<{ online: boolean }>('SELECT online FROM machine_state WHERE machine_id = $1', [id]);
        if (r.rows[0]?.online === false) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error('the gateway never saw the machine go offline');
    }

    it('keeps a command for a machine that is offline and delivers it when it returns', async () => {
      await offline();
      const c = await gw.commands.issue(id, 'lock');
      assert.equal(c.status, 'queued');
      host.setNetwork(true);
      const done = await settle(host, gw, c, 120000);
      assert.equal(done.status, 'applied');
      const st = await host.status();
      assert.equal(st.locked, true);
      assert.match(st.display.join('|'), /Closed/);
      const unlock = await settle(host, gw, await gw.commands.issue(id, 'unlock'));
      assert.equal(unlock.status, 'applied');
    });

    it('vends remotely, once, and reports what was dispensed', async () => {
      const before = host.rig.delivered.length;
      const c = await gw.commands.issue(id, 'vend', { slot: 'B4', quantity: 2 });
      const done = await settle(host, gw, c);
      assert.equal(done.status, 'applied', JSON.stringify(done.outcome));
      assert.equal(done.outcome?.['value'], 2);
      assert.equal(host.rig.delivered.length, before + 2);
      // The same command again (a resend): nothing more comes out.
      await spy.publishAsync(`fleet/${id}/commands`, sent.at(-1)!, { qos: 1 });
      await host.run(10000);
      assert.equal(host.rig.delivered.length, before + 2);
      const st = await host.status();
      assert.equal(st.remoteSales, 2);
      assert.equal(st.state, 'IDLE');
    });

    it('never dispenses twice when the power fails during a remote vend', async () => {
      const before = host.rig.delivered.length;
      const c = await gw.commands.issue(id, 'vend', { slot: 'A1', quantity: 3 });
      // Run until the first product is out, then cut the power.
      for (let i = 0; i < 400 && host.rig.delivered.length === before; i++) await host.run(50);
      await host.powerCut();
      const done = await settle(host, gw, c, 120000);
      const out = host.rig.delivered.length - before;
      assert.equal(done.status, 'interrupted');
      assert.ok(out >= 1 && out < 3, `${out} dispensed`);
      assert.ok(Number(done.outcome?.['value']) <= out, `reported ${String(done.outcome?.['value'])}, ${out} came out`);
      await host.run(20000);
      assert.equal(host.rig.delivered.length - before, out, 'nothing more after the reboot');
    });

    it('reads the audit data on command: the EVA-DTS file is stored with the machine\'s own figures, and the next read starts the interim counters again', async () => {
      // A cash sale first, so that cash in, sales and change all have figures to compare.
      assert.ok(host.insertCoin(100));
      assert.ok(host.insertBill(500));
      await host.run(1000);
      host.select('A1');
      await host.runUntilIdle();
      const reads: number[] = [];
      for (let i = 0; i < 2; i++) {
        const st = await host.status();
        const c = await gw.commands.issue(id, 'audit');
        const done = await settle(host, gw, c);
        assert.equal(done.status, 'applied', JSON.stringify(done.outcome));
        const read = Number(done.outcome?.['value']);
        reads.push(read);
        let rows: { summary: DexSummary }[] = [];
        for (const until = Date.now() + 20000; rows.length === 0 && Date.now() < until; await host.run(200)) {
          rows = (await b.db.query<{ summary: DexSummary }>('SELECT summary FROM audits WHERE machine_id = $1 AND read_number = $2', [id, read])).rows;
        }
        assert.equal(rows.length, 1, `audit read ${read} stored`);
        const sum = rows[0]!.summary;
        assert.equal(sum.crc.status, 'ok');
        assert.equal(sum.segmentCount.status, 'ok');
        assert.equal(sum.warnings.length, 0, sum.warnings.join('; '));
        assert.equal(sum.machine?.serial, id);
        // The same books the machine reports in its status (cash and remote sales both paid vends).
        assert.equal(sum.cashSales?.init.value, st.counters.revenue);
        assert.equal(sum.cashSales?.init.count, st.counters.sales);
        assert.equal(sum.paidVends?.init.count, st.counters.sales + st.remoteSales);
        assert.equal(sum.cashIn?.init.total, st.counters.coinsToTubes + st.counters.coinsToCashbox + st.counters.billsStacked);
        assert.equal(sum.cashDispensed?.init.dispensed, st.counters.coinsPaidOut);
        assert.equal(sum.products.length, st.slots.length);
        assert.equal(sum.productTotals.init.count, st.counters.sales + st.remoteSales);
        assert.equal(sum.reads?.withReset, read);
        if (i === 0) assert.ok(st.counters.sales > 0 && st.counters.coinsPaidOut > 0, 'the cash sale is in the figures');
        if (i === 1) {
          assert.equal(sum.paidVends?.reset.count, 0, 'nothing sold between the two reads');
          assert.equal(sum.productTotals.reset.count, 0);
        }
      }
      assert.equal(reads[1], reads[0]! + 1);
      assert.equal(await count(b.db, "SELECT count(*) AS n FROM events WHERE machine_id = $1 AND type = 'audit-read'", [id]), reads[1]);
    });

    it('rotates the machine\'s key without losing it: later commands are signed with the new key and applied', async () => {
      const rotate = await gw.commands.issue(id, 'rotate-key');
      assert.equal(rotate.args['key'], '(secret)', 'the key never shows in answers');
      const done = await settle(host, gw, rotate);
      assert.equal(done.status, 'applied');
      const keys = await b.db.query<{ kid: number; state: string }>('SELECT kid, state FROM machine_keys WHERE machine_id = $1 ORDER BY kid', [id]);
      assert.deepEqual(keys.rows.map((k) => [Number(k.kid), k.state]), [
        [1, 'retired'],
        [2, 'active'],
      ]);
      const after = await settle(host, gw, await gw.commands.issue(id, 'set-prices', { prices: { A1: 150 } }));
      assert.equal(after.status, 'applied');
      assert.match(sent.at(-1)!.toString().split('\n')[0]!, /^VF1 2 /);
      // The old key no longer works on the machine.
      const now = Math.floor(Date.now() / 1000);
      const { signCommand } = await import('../../gateway/commands/envelope.js');
      await spy.publishAsync(`fleet/${id}/commands`, signCommand({ machine: id, n: 9999, type: 'lock', issued: now, expires: now + 60, args: {} }, 1, key), { qos: 1 });
      await host.run(3000);
      await synced(host, 60000);
      await gw.ingester.flush();
      const last = (await b.db.query<{ reason: string }>("SELECT body->>'reason' AS reason FROM events WHERE machine_id = $1 AND type = 'command-rejected' ORDER BY seq DESC LIMIT 1", [id])).rows[0];
      assert.equal(last?.reason, 'unknown-key');
      assert.equal((await host.status()).locked, false);
    });

    it('reboots on command (the simulated board restarts the controller) and comes back online with its books', async () => {
      const before = await host.status();
      const restarts = host.restarts;
      const c = await gw.commands.issue(id, 'reboot');
      const done = await settle(host, gw, c, 60000);
      assert.equal(done.status, 'applied');
      for (let i = 0; i < 100 && host.restarts === restarts; i++) await host.run(100);
      assert.equal(host.restarts, restarts + 1);
      await synced(host, 120000);
      const after = await host.status();
      assert.equal(after.counters.boots, before.counters.boots + 1);
      assert.equal(after.counters.revenue, before.counters.revenue);
      assert.equal(after.remoteSales, before.remoteSales);
      assert.equal(after.uplink?.state, 'online');
    });

    it('expires a command the machine never got in time', async () => {
      await offline();
      const c = await gw.commands.issue(id, 'report', {}, { ttlS: 1 });
      // The store's clock decides (expires_at <= now()), so this waits for the sweep that marks it, not for a fixed time.
      const got = await eventually('the command to expire', async () => {
        const now = await gw.commands.get(c.id);
        return now?.status === 'queued' || now?.status === 'delivered' ? undefined : now;
      }, 30000);
      assert.equal(got.status, 'expired');
      host.setNetwork(true);
      await synced(host, 120000);
    });
  });
}
