/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * board.ts's MqttClient on the Moddable SDK's ECMA-419 MQTT client
 * (`embedded:network/mqtt/client`). What the adapter adds:
 *
 * - `keepalive` in seconds (the firmware's unit) becomes milliseconds (the
 *   SDK client's);
 * - `subscribe()` becomes a SUBSCRIBE control write;
 * - a message arriving in fragments (the client hands over what the socket
 *   has) is put together and handed to the firmware whole, as the uplink
 *   expects one read per message; larger than MAX_MESSAGE is dropped;
 * - a publish the socket cannot take right now (the client throws
 *   "overflow") waits in a short outbox until `onWritable`; when the outbox
 *   is full the write throws, which the uplink treats as a lost connection
 *   (it sends again from the journal after reconnecting, so nothing is lost).
 */
import type Resolver from 'embedded:network/dns/resolver/udp';
import MQTTClient, { type MqttReadInfo } from 'embedded:network/mqtt/client';
import type TCP from 'embedded:io/socket/tcp';
import type UDP from 'embedded:io/socket/udp';
import type { MqttClient, MqttClientOptions } from '../../board.js';

const MAX_MESSAGE = 8192;
const OUTBOX = 8;

export interface MqttTransport {
  dns: { io: typeof Resolver; servers: string[]; socket: { io: typeof UDP } };
  socket: { io: typeof TCP };
}

interface Outgoing {
  data: ArrayBuffer | null;
  options: { topic?: string; QoS?: number; retain?: boolean; operation?: number; items?: { topic: string; QoS?: number }[] };
}

export function openMqtt(transport: MqttTransport, options: MqttClientOptions, onTrouble: (message: string) => void): MqttClient {
  const outbox: Outgoing[] = [];
  let incoming: { topic: string; QoS: 0 | 1 | 2; parts: ArrayBuffer[]; length: number } | undefined;
  let ready: ArrayBuffer | undefined;
  let closed = false;
  let shut = false;

  const flush = (client: MQTTClient): void => {
    while (outbox.length > 0) {
      const next = outbox[0]!;
      try {
        client.write(next.data, next.options);
      } catch {
        return; // still no room: wait for the next onWritable
      }
      outbox.shift();
    }
  };

  const send = (client: MQTTClient, item: Outgoing): void => {
    if (outbox.length === 0) {
      try {
        client.write(item.data, item.options);
        return;
      } catch {
        // no room now: queue it
      }
    }
    if (outbox.length >= OUTBOX) throw new Error('MQTT outbox full');
    outbox.push(item);
  };

  const client = new MQTTClient({
    host: options.host,
    port: options.port ?? 1883,
    id: options.id,
    ...(options.user !== undefined ? { user: options.user } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    keepalive: (options.keepalive ?? 60) * 1000,
    ...(options.will ? { will: { topic: options.will.topic, message: options.will.message, QoS: options.will.QoS ?? 0, retain: options.will.retain ?? false } } : {}),
    dns: transport.dns,
    socket: transport.socket,
    onWritable(count: number): void {
      flush(this);
      options.onWritable?.(count);
    },
    onReadable(count: number, info: MqttReadInfo): void {
      if (info.topic !== undefined) {
        const QoS = info.QoS === 1 || info.QoS === 2 ? info.QoS : 0;
        incoming = { topic: info.topic, QoS, parts: [], length: 0 };
      }
      const part = this.read(count);
      const m = incoming;
      if (!m || !part) return;
      m.length += part.byteLength;
      if (m.length <= MAX_MESSAGE) m.parts.push(part);
      if (info.more) return;
      incoming = undefined;
      if (m.length > MAX_MESSAGE) {
        onTrouble(`MQTT: a ${m.length}-byte message on ${m.topic} is larger than ${MAX_MESSAGE}: dropped`);
        return;
      }
      const whole = new Uint8Array(m.length);
      let at = 0;
      for (const p of m.parts) {
        whole.set(new Uint8Array(p), at);
        at += p.byteLength;
      }
      ready = whole.buffer;
      options.onReadable?.(m.length, { topic: m.topic, QoS: m.QoS, retain: false });
      ready = undefined; // unread: gone, like a message the firmware did not want
    },
    onControl(message): void {
      options.onControl?.(message.operation, message);
    },
    onClose(): void {
      if (closed) return;
      closed = true;
      options.onClose?.();
    },
    onError(message?: string): void {
      if (closed) return;
      closed = true;
      if (message) onTrouble(`MQTT: ${message}`);
      options.onError?.();
    },
  });

  return {
    read(count: number): ArrayBuffer | undefined {
      const data = ready;
      ready = undefined;
      return data && data.byteLength > count ? data.slice(0, count) : data;
    },
    write(data: ArrayBuffer, o: { topic: string; QoS?: 0 | 1; retain?: boolean; byteLength?: number }): number {
      if (closed) throw new Error('MQTT client closed');
      send(client, { data, options: { topic: o.topic, QoS: o.QoS ?? 0, retain: o.retain ?? false } });
      return data.byteLength;
    },
    subscribe(topics: readonly { topic: string; QoS?: 0 | 1 }[]): number {
      if (closed) throw new Error('MQTT client closed');
      send(client, { data: null, options: { operation: MQTTClient.SUBSCRIBE, items: topics.map((t) => ({ topic: t.topic, QoS: t.QoS ?? 0 })) } });
      return topics.length;
    },
    close(): void {
      // Once: the bench's network switch and the uplink may both close it.
      if (shut) return;
      shut = true;
      closed = true;
      outbox.length = 0;
      client.close();
    },
  };
}
