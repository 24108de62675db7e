/**
 * Fuzzing what machines publish: hostile and broken payloads on a machine's
 * own events, telemetry, status and audit topics, through a real broker into
 * a real gateway and store. Seeded, so a failure replays.
 *
 * Whatever comes, the gateway must not throw or stall; everything it
 * acknowledges to a machine is in the store (as an event or a refused one);
 * nothing is half-stored; and a good message sent afterwards is taken at once.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type mqtt from 'mqtt';
import { Gateway } from '../../gateway/gateway.js';
import type { Rejection } from '../../gateway/ingest/messages.js';
import { connectMqtt } from '../lib/mqtt.js';
import { prng } from '../lib/assert.js';
import { BACKENDS, count, eventually, type Backend } from './backends.js';

const SEED = Number(process.env['MQTT_FUZZ_SEED'] ?? 131313);
const CASES = Number(process.env['MQTT_FUZZ_CASES'] ?? 300);
const jof = readFileSync(fileURLToPath(new URL('../../../../shared/fixtures/dex/jof-sample.eva_dts', import.meta.url)), 'latin1');

const REASONS: readonly Rejection[] = ['wrong-topic', 'oversized', 'malformed-json', 'bad-message', 'bad-event', 'bad-audit', 'unknown-machine', 'db-error', 'seq-conflict'];

/** Hostile values for a JSON field. */
const VALUES = [
  '"abc"', '-1', '1e15', '1e400', '-0', '0.5', 'null', 'true', '[]', '{}', '[1]', '"\\u0000"', '"\\ud800"', '"\\udc00x"',
  `"${'x'.repeat(3000)}"`, '{"__proto__":{"polluted":1}}', '"constructor"', '9007199254740993', '"A1\'; DROP TABLE events; --"',
  `${'['.repeat(100)}${']'.repeat(100)}`, '"#999"', '"\\u202e"',
];

describe('MQTT payload fuzzing', function () {
  this.timeout(180000);
  for (const backend of BACKENDS) {
    describe(backend.name, () => {
      let b: Backend;
      let gw: Gateway;
      let client: mqtt.MqttClient;
      const acks: { machine: string; from: number; to: number }[] = [];
      const id = `fz${process.pid % 10000}x${Math.floor(Math.random() * 1e6)}`;

      before(async () => {
        b = await backend.open();
        gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup });
        await gw.addMachines([id]);
        client = await connectMqtt(b.mqttUrl);
        client.on('message', (topic, payload) => {
          const m = JSON.parse(payload.toString()) as { from: number; to: number };
          acks.push({ machine: topic.split('/')[1]!, from: m.from, to: m.to });
        });
        await client.subscribeAsync(`fleet/${id}/acks`, { qos: 1 });
      });
      after(async () => {
        await client?.endAsync();
        await gw?.close();
        await b?.close();
      });

      it('takes whatever comes without throwing, stalling or half-storing, and the next good message lands', async () => {
        const rnd = prng(SEED);
        const int = (n: number): number => Math.floor(rnd() * n);
        const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
        let seq = 0;
        const event = (): string => {
          seq++;
          const base: [string, string][] = [
            ['seq', String(seq)],
            ['t', String(seq)],
            ['type', '"vend-ok"'],
            ['slot', '"A1"'],
            ['price', '125'],
          ];
          // One to three fields made hostile, sometimes one dropped, sometimes an extra one.
          for (let k = 1 + int(3); k > 0; k--) base[1 + int(base.length - 1)]![1] = pick(VALUES);
          if (rnd() < 0.2) base.splice(1 + int(base.length - 1), 1);
          if (rnd() < 0.3) base.push([pick(['extra', 'a\\u0000', '__proto__', 'note', 'x'.repeat(40)]), pick(VALUES)]);
          return `{${base.map(([k, v]) => `"${k}":${v}`).join(',')}}`;
        };
        const mutate = (text: string): Buffer => {
          const bytes = Buffer.from(text, 'latin1');
          const r = rnd();
          if (r < 0.3) return bytes.subarray(0, int(bytes.length + 1));
          if (r < 0.6) {
            const out = Buffer.from(bytes);
            for (let k = 1 + int(4); k > 0; k--) out[int(out.length)] = int(256);
            return out;
          }
          if (r < 0.8) return Buffer.concat([bytes.subarray(0, int(bytes.length)), Buffer.from(pick(VALUES), 'latin1'), bytes.subarray(int(bytes.length))]);
          return bytes;
        };
        for (let i = 0; i < CASES; i++) {
          const kind = pick(['events', 'events', 'events', 'telemetry', 'status', 'audit'] as const);
          let payload: Buffer;
          if (kind === 'events') {
            const n = 1 + int(3);
            const events = Array.from({ length: n }, () => event());
            const text = `{"v":1,"events":[${events.join(',')}]}`;
            payload = rnd() < 0.7 ? Buffer.from(text, 'latin1') : mutate(text);
          } else if (kind === 'telemetry') {
            payload = mutate(`{"v":1,"t":${int(1e6)},"state":"IDLE","slots":[{"code":"A1","qty":${pick(VALUES)},"price":125}],"tubes":[${pick(VALUES)}],"errors":[${pick(VALUES)}]}`);
          } else if (kind === 'status') {
            payload = mutate(`{"v":1,"online":${pick(['true', 'false', '"yes"', '1', 'null'])},"fw":${pick(VALUES)}}`);
          } else {
            payload = Buffer.concat([mutate(`{"v":1,"read":${pick(['7', '0', '-1', '1e99', '"7"', String(100 + i)])},"t":1}`), Buffer.from('\n'), mutate(jof)]);
          }
          await client.publishAsync(`fleet/${id}/${kind}`, payload, { qos: 1 });
        }
        // A good message after everything: taken at once (nothing waits behind the fuzz).
        seq++;
        const last = seq;
        await client.publishAsync(`fleet/${id}/events`, JSON.stringify({ v: 1, events: [{ seq: last, t: last, type: 'vend-ok', slot: 'A1', price: 125 }] }), { qos: 1 });
        await eventually('the good message after the fuzz', async () => ((await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1 AND seq = $2', [id, last])) === 1 ? true : undefined), 60000);
        await gw.ingester.flush();
        // Everything acknowledged is in the store, as an event or a refused one, and never both.
        const stored = new Set((await b.db.query<{ seq: string }>('SELECT seq FROM events WHERE machine_id = $1', [id])).rows.map((r) => Number(r.seq)));
        const refused = new Set((await b.db.query<{ seq: string }>('SELECT seq FROM refused_events WHERE machine_id = $1', [id])).rows.map((r) => Number(r.seq)));
        for (const n of stored) assert.ok(!refused.has(n), `event ${n} both stored and refused`);
        for (const a of acks) for (let n = a.from; n <= a.to; n++) assert.ok(stored.has(n) || refused.has(n), `event ${n} acknowledged but not in the store`);
        assert.ok(stored.size > 1 && refused.size > 10, `the fuzz exercised both paths (${stored.size} stored, ${refused.size} refused)`);
        // Every stored sale reads back as money the reports can sum.
        const sales = await b.db.query<{ price: string | null }>('SELECT price FROM sales WHERE machine_id = $1', [id]);
        for (const s of sales.rows) assert.ok(s.price === null || (Number.isInteger(Number(s.price)) && Number(s.price) >= 0));
        for (const reason of Object.keys(gw.ingester.stats.rejected)) assert.ok(REASONS.includes(reason as Rejection), reason);
        assert.equal(gw.ingester.stats.rejected['db-error'] ?? 0, 0, 'nothing reached the store that it refused without a record');
        const health = gw.health();
        assert.equal(health.status, 'ok', health.problems.join('; '));
        assert.equal(gw.audits.stats.stored + gw.audits.stats.duplicates + gw.audits.stats.refused > 0, true);
      });
    });
  }
});
