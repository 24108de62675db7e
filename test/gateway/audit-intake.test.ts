/**
 * Audit files arriving over MQTT (fleet/{machine}/audit): stored once per
 * read, bad ones refused with a counted reason and never holding up the
 * gateway (it acknowledges them to the broker and carries on with events).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type mqtt from 'mqtt';
import { Gateway } from '../../gateway/gateway.js';
import { connectMqtt } from '../lib/mqtt.js';
import { BACKENDS, count, type Backend } from './backends.js';

const jof = readFileSync(fileURLToPath(new URL('../../../../shared/fixtures/dex/jof-sample.eva_dts', import.meta.url)), 'latin1');

function message(header: object | string, file: string | Buffer): Buffer {
  const head = typeof header === 'string' ? header : JSON.stringify(header);
  return Buffer.concat([Buffer.from(head + '\n'), typeof file === 'string' ? Buffer.from(file, 'latin1') : file]);
}

for (const backend of BACKENDS) {
  describe(`audit files over MQTT: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let gw: Gateway;
    let m: mqtt.MqttClient;
    const id = `au${process.pid % 10000}${Math.floor(Math.random() * 1e6)}`;

    before(async () => {
      b = await backend.open();
      gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup });
      await gw.addMachines([id]);
      m = await connectMqtt(b.mqttUrl);
    });
    after(async () => {
      await m?.endAsync();
      await gw?.close();
      await b?.close();
    });

    async function until(what: () => Promise<boolean>, label: string): Promise<void> {
      for (const end = Date.now() + 20000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await what()) return;
      throw new Error(`timed out waiting for ${label}`);
    }

    it('stores a read once, however often it comes', async () => {
      for (let i = 0; i < 3; i++) await m.publishAsync(`fleet/${id}/audit`, message({ v: 1, read: 1, t: 5 }, jof), { qos: 1 });
      await until(async () => gw.audits.stats.stored + gw.audits.stats.duplicates === 3, 'three answers');
      assert.equal(gw.audits.stats.stored, 1);
      assert.equal(gw.audits.stats.duplicates, 2);
      const r = await b.db.query<{ crc: string; raw: string; read_number: number; source: string }>('SELECT crc, raw, read_number, source FROM audits WHERE machine_id = $1', [id]);
      assert.equal(r.rows.length, 1);
      assert.equal(r.rows[0]!.crc, 'ok');
      assert.equal(r.rows[0]!.raw, jof, 'kept byte for byte');
      assert.equal(Number(r.rows[0]!.read_number), 1);
      assert.equal(r.rows[0]!.source, 'machine');
    });

    it('refuses bad ones with a reason, and the next good one still lands', async () => {
      const refusedBefore = gw.audits.stats.refused;
      const bad: Buffer[] = [
        Buffer.from('DXS*no header at all'),
        message('{"v":1,"read":2', jof),
        message({ v: 2, read: 2 }, jof),
        message({ v: 1, read: 0 }, jof),
        message({ v: 1, read: 2 }, ''),
        message({ v: 1, read: 2 }, jof.replace('VA1*143500', 'VA1*14\u00e9500')),
        message({ v: 1, read: 2 }, 'hello'),
      ];
      for (const p of bad) await m.publishAsync(`fleet/${id}/audit`, p, { qos: 1 });
      // Another machine nobody provisioned.
      await m.publishAsync(`fleet/nobody-${id}/audit`, message({ v: 1, read: 1 }, jof), { qos: 1 });
      await until(async () => gw.audits.stats.refused - refusedBefore === bad.length + 1, 'every bad one refused');
      await m.publishAsync(`fleet/${id}/audit`, message({ v: 1, read: 2, t: 9 }, jof), { qos: 1 });
      await until(async () => (await count(b.db, 'SELECT count(*) AS n FROM audits WHERE machine_id = $1', [id])) === 2, 'read 2 stored');
      assert.equal(await count(b.db, 'SELECT count(*) AS n FROM audits WHERE machine_id = $1', [`nobody-${id}`]), 0);
      // Events still flow: the refusals held nothing up.
      await m.publishAsync(`fleet/${id}/events`, JSON.stringify({ v: 1, events: [{ seq: 1, t: 1, type: 'boot' }] }), { qos: 1 });
      await until(async () => (await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [id])) === 1, 'the event stored');
    });
  });
}
