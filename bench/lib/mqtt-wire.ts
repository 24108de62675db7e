/**
 * The few MQTT 3.1.1 packets a machine sends and receives, encoded and decoded
 * by hand: at 100,000 connections in one process, a parser object and its
 * buffers per connection (mqtt-packet's) cost more than the connection, so a
 * connection keeps only the unparsed tail of its last read.
 */

function utf8(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

/** Fixed header byte, remaining length (1 to 4 bytes), body. */
function frame(first: number, parts: Buffer[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const head: number[] = [first];
  let n = len;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    head.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from(head), ...parts], head.length + len);
}

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n);
  return b;
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? utf8(s) : s;
  return Buffer.concat([u16(b.length), b]);
}

export interface ConnectOptions {
  clientId: string;
  keepaliveS: number;
  username?: string;
  /** QoS 1, retained, as the firmware's last will. */
  will?: { topic: string; payload: string };
}

export function connectPacket(o: ConnectOptions): Buffer {
  // Clean session, as the firmware connects (its journal, not the broker, keeps what is unsent).
  let flags = 0x02;
  const payload = [str(o.clientId)];
  if (o.will) {
    flags |= 0x04 | 0x08 | 0x20;
    payload.push(str(o.will.topic), str(o.will.payload));
  }
  if (o.username !== undefined) {
    flags |= 0x80;
    payload.push(str(o.username));
  }
  return frame(0x10, [str('MQTT'), Buffer.from([4, flags]), u16(o.keepaliveS), ...payload]);
}

export function subscribePacket(id: number, topic: string, qos = 1): Buffer {
  return frame(0x82, [u16(id), str(topic), Buffer.from([qos])]);
}

/** QoS 1. */
export function publishPacket(id: number, topic: string, payload: string, retain = false): Buffer {
  return frame(0x32 | (retain ? 1 : 0), [str(topic), u16(id), utf8(payload)]);
}

export function pubackPacket(id: number): Buffer {
  return Buffer.from([0x40, 2, id >> 8, id & 0xff]);
}

export const PINGREQ = Buffer.from([0xc0, 0]);

export type Incoming =
  | { type: 'connack'; code: number }
  | { type: 'suback'; id: number; granted: number }
  | { type: 'puback'; id: number }
  | { type: 'publish'; topic: string; payload: Buffer; qos: number; id: number }
  | { type: 'pingresp' }
  | { type: 'other'; first: number };

/**
 * Take the whole packets at the front of `tail` + `chunk`, handing each to
 * `on`; returns what is left (a packet cut by the read), or undefined.
 * A broker's packet longer than `max` bytes is an error thrown.
 */
export function decode(tail: Buffer | undefined, chunk: Buffer, on: (p: Incoming) => void, max = 1 << 20): Buffer | undefined {
  const buf = tail ? Buffer.concat([tail, chunk]) : chunk;
  let at = 0;
  while (at < buf.length) {
    let len = 0;
    let mul = 1;
    let i = at + 1;
    let done = false;
    for (; i < buf.length && i < at + 5; i++) {
      len += (buf[i]! & 0x7f) * mul;
      mul *= 128;
      if ((buf[i]! & 0x80) === 0) {
        done = true;
        i++;
        break;
      }
    }
    if (!done) {
      if (i >= at + 5) throw new Error('MQTT: remaining length over 4 bytes');
      break;
    }
    if (len > max) throw new Error(`MQTT: a ${len}-byte packet`);
    if (i + len > buf.length) break;
    const first = buf[at]!;
    const body = buf.subarray(i, i + len);
    switch (first >> 4) {
      case 2:
        on({ type: 'connack', code: body[1]! });
        break;
      case 9:
        on({ type: 'suback', id: body.readUInt16BE(0), granted: body[2]! });
        break;
      case 4:
        on({ type: 'puback', id: body.readUInt16BE(0) });
        break;
      case 3: {
        const qos = (first >> 1) & 3;
        const tl = body.readUInt16BE(0);
        const topic = body.toString('utf8', 2, 2 + tl);
        const id = qos > 0 ? body.readUInt16BE(2 + tl) : 0;
        // A copy: the read buffer this slices is not kept for it.
        on({ type: 'publish', topic, qos, id, payload: Buffer.from(body.subarray(2 + tl + (qos > 0 ? 2 : 0))) });
        break;
      }
      case 13:
        on({ type: 'pingresp' });
        break;
      default:
        on({ type: 'other', first });
    }
    at = i + len;
  }
  return at < buf.length ? Buffer.from(buf.subarray(at)) : undefined;
}
