/**
 * The fleet bench's machines (`npm run bench -- --connections-only`) at a
 * small size, so its code runs in CI: the hand-rolled MQTT packets against
 * mqtt-packet, and 200 machines over four source addresses through a real
 * Mosquitto to a real gateway on PostgreSQL, every event acknowledged and
 * every will stored. The figures themselves are the bench's, not asserted here.
 */
import mqttPacket from 'mqtt-packet';
import { averageRate, fleetConnections } from '../../bench/lib/fleet-connections.js';
import { connectPacket, decode, publishPacket, subscribePacket, type Incoming } from '../../bench/lib/mqtt-wire.js';
import { deepEqual, equal, ok, throws } from '../lib/assert.js';
import { PRODUCTION_DB } from './backends.js';

function parseAll(buf: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const out: mqttPacket.Packet[] = [];
  parser.on('packet', (p: mqttPacket.Packet) => out.push(p));
  parser.on('error', (e: Error) => {
    throw e;
  });
  parser.parse(buf);
  return out;
}

describe('fleet bench: MQTT packets by hand', () => {
  it('writes CONNECT, SUBSCRIBE and PUBLISH as mqtt-packet reads them', () => {
    const long = 'x'.repeat(300);
    const [c, s, p] = parseAll(
      Buffer.concat([
        connectPacket({ clientId: 'vm-1', username: 'vm-1', keepaliveS: 60, will: { topic: 'fleet/vm-1/status', payload: '{"v":1,"online":false}' } }),
        subscribePacket(1, 'fleet/vm-1/acks'),
        publishPacket(2, 'fleet/vm-1/events', long, true),
      ]),
    );
    ok(c?.cmd === 'connect' && s?.cmd === 'subscribe' && p?.cmd === 'publish');
    if (c?.cmd !== 'connect' || s?.cmd !== 'subscribe' || p?.cmd !== 'publish') return;
    equal(c.clientId, 'vm-1');
    equal(c.username, 'vm-1');
    equal(c.keepalive, 60);
    equal(c.clean, true);
    deepEqual({ topic: c.will?.topic, payload: c.will?.payload.toString(), qos: c.will?.qos, retain: c.will?.retain }, { topic: 'fleet/vm-1/status', payload: '{"v":1,"online":false}', qos: 1, retain: true });
    deepEqual(s.subscriptions, [{ topic: 'fleet/vm-1/acks', qos: 1 }]);
    equal(s.messageId, 1);
    deepEqual({ topic: p.topic, id: p.messageId, qos: p.qos, retain: p.retain, payload: p.payload.toString() }, { topic: 'fleet/vm-1/events', id: 2, qos: 1, retain: true, payload: long });
  });

  it('reads what a broker sends, however the reads cut it', () => {
    const ack = '{"v":1,"from":3,"to":9}'.padEnd(200, ' ');
    const stream = Buffer.concat([
      mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }),
      mqttPacket.generate({ cmd: 'suback', messageId: 1, granted: [1] }),
      mqttPacket.generate({ cmd: 'puback', messageId: 2 }),
      // Over 127 bytes: a two-byte remaining length.
      mqttPacket.generate({ cmd: 'publish', topic: 'fleet/vm-1/acks', payload: Buffer.from(ack), qos: 1, messageId: 7, retain: false, dup: false }),
      mqttPacket.generate({ cmd: 'pingresp' }),
    ]);
    const want: Incoming[] = [
      { type: 'connack', code: 0 },
      { type: 'suback', id: 1, granted: 1 },
      { type: 'puback', id: 2 },
      { type: 'publish', topic: 'fleet/vm-1/acks', qos: 1, id: 7, payload: Buffer.from(ack) },
      { type: 'pingresp' },
    ];
    // Every cut into two reads, and one byte a read.
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: Incoming[] = [];
      const tail = decode(undefined, stream.subarray(0, cut), (p) => got.push(p));
      equal(decode(tail, stream.subarray(cut), (p) => got.push(p)), undefined, `nothing left after cut ${cut}`);
      deepEqual(got, want, `cut at ${cut}`);
    }
    const got: Incoming[] = [];
    let tail: Buffer | undefined;
    for (const byte of stream) tail = decode(tail, Buffer.from([byte]), (p) => got.push(p));
    deepEqual(got, want);
  });

  it('refuses a remaining length of more than four bytes and an oversized packet', () => {
    throws(() => decode(undefined, Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), () => {}), /over 4 bytes/);
    throws(() => decode(undefined, Buffer.from([0x30, 0xff, 0xff, 0x7f]), () => {}, 65536), /byte packet/);
  });
});

describe('fleet bench: machines through Mosquitto to the gateway (PostgreSQL)', function () {
  this.timeout(180000);

  it('connects 200 machines over four addresses, acknowledges every event, and stores every will', async () => {
    const r = await fleetConnections({ machines: 200, seconds: 2, scales: [1], rate: 60, perAddress: 50, pgUrl: PRODUCTION_DB });
    deepEqual(r.addresses, ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
    deepEqual(r.failed, {});
    equal(r.connected, 200);
    equal(r.onlineInStore, 200);
    const [p] = r.phases;
    ok(p !== undefined && p.eventMessages > 0 && p.telemetry > 0, 'events and telemetry sent');
    equal(p!.rejected, 0);
    equal(p!.acked, p!.eventMessages);
    equal(p!.unacked, 0);
    equal(p!.eventsStored, p!.eventMessages);
    equal(p!.telemetryStored, p!.telemetry);
    equal(p!.dropped, 0);
    equal(r.offlineAfterWills, 200);
  });

  it('takes the fleet average from telemetry every 300 s and 700 events a day', () => {
    const a = averageRate(100000);
    equal(Math.round(a.rate), 1144);
    equal(Math.round(a.telemetryShare * 1000), 291);
  });
});
