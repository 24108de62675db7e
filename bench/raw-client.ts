/**
 * A bare MQTT 3.1.1 connection (mqtt-packet over a socket): light enough to
 * open thousands in one process, which a full client library is not.
 */
import mqttPacket from 'mqtt-packet';
import { connect, type Socket } from 'node:net';

export class RawClient {
  readonly socket: Socket;
  private nextId = 1;
  inflight = 0;
  onAck: (() => void) | undefined;
  onMessage: ((topic: string, payload: Buffer) => void) | undefined;
  readonly connected: Promise<void>;

  constructor(port: number, id: string, will?: { topic: string; payload: string }) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let resolveConnected: () => void = () => {};
    let rejectConnected: (e: Error) => void = () => {};
    this.connected = new Promise((resolve, reject) => {
      resolveConnected = resolve;
      rejectConnected = reject;
    });
    parser.on('packet', (p: mqttPacket.Packet) => {
      if (p.cmd === 'connack') {
        if (p.returnCode === 0) resolveConnected();
        else rejectConnected(new Error(`${id}: connection refused (${p.returnCode})`));
      } else if (p.cmd === 'puback') {
        this.inflight--;
        this.onAck?.();
      } else if (p.cmd === 'publish') {
        if (p.qos > 0 && p.messageId !== undefined) this.socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }));
        this.onMessage?.(p.topic, p.payload as Buffer);
      }
    });
    this.socket.on('data', (d) => parser.parse(d));
    this.socket.on('error', (e) => rejectConnected(e));
    this.socket.on('connect', () => {
      const packet: mqttPacket.IConnectPacket = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: id, keepalive: 600 };
      if (will) packet.will = { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true };
      this.socket.write(mqttPacket.generate(packet));
    });
  }

  publish(topic: string, payload: string, retain = false): void {
    this.inflight++;
    const messageId = this.nextId;
    this.nextId = (this.nextId % 65535) + 1;
    this.socket.write(mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId, retain, dup: false }));
  }

  subscribe(topic: string): void {
    this.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 65535, subscriptions: [{ topic, qos: 1 }] }));
  }

  close(): void {
    this.socket.destroy();
  }
}
