/**
 * The machine's network on the host: the firmware's MQTT client becomes a
 * real TCP connection to a real broker, with MQTT 3.1.1 packets written and
 * parsed by mqtt-packet. The link itself can be taken down and brought back
 * (bench `network` steps): down, the connection drops without a DISCONNECT
 * (so the broker publishes the machine's last will) and new connections fail
 * after a connect timeout.
 *
 * Given several broker URLs (a cluster's nodes), the machine is configured
 * with all of them and the firmware chooses: each connection goes to the
 * address the firmware asks for.
 *
 * Real I/O runs in real time while the machine's clock is virtual, so while a
 * connection is open the host paces virtual time (`speed` times real time at
 * most) to keep round trips to the gateway in proportion.
 *
 * With `link` (hal-sim/link.ts) every MQTT packet crosses a slow link on the
 * virtual clock in each direction: the firmware's packets reach the real
 * socket when their last byte has left, the broker's reach the firmware when
 * theirs has arrived, and a drop loses what is on the link. Without it the
 * socket is the link, as before.
 */
import mqttPacket from 'mqtt-packet';
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { GuestEvent } from './guest/protocol.js';
import { Link, dropState, mqttPacketBytes, type LinkOptions } from './link.js';
import type { EventId, Scheduler } from './scheduler.js';

export interface NetworkOptions {
  /** The real broker, e.g. mqtt://127.0.0.1:1883, or a cluster's nodes (the firmware tries them in turn). */
  url: string | string[];
  /** Most virtual time per real time while connected (default 100). */
  speed?: number;
  /** For mqtts:// brokers: the CA certificate the board trusts (PEM), as provisioned on a real board. */
  ca?: string | Buffer;
  /** A slow link between machine and broker on the machine's clock (hal-sim/link.ts); default none. */
  link?: LinkOptions;
}

export interface MqttOpen {
  /** The broker the firmware asks for (one of `brokers`); the first one if not said. */
  host?: string;
  port?: number;
  id: string;
  keepalive: number;
  user?: string;
  password?: string;
  will?: { topic: string; message: string; qos: 0 | 1; retain: boolean };
}

/** Virtual time a connection attempt takes to fail when the link is down. */
const CONNECT_TIMEOUT_US = 5_000_000;

export class SimNetwork {
  /** The first broker (the machine's `uplink.host` and `port`). */
  readonly host: string;
  readonly port: number;
  /** Every broker, in the order the machine is configured with them. */
  readonly brokers: readonly { host: string; port: number }[];
  readonly speed: number;
  /** The broker of the open connection (or the last one tried). */
  connectedTo: { host: string; port: number } | undefined;
  private readonly tls: boolean;
  private readonly ca: string | Buffer | undefined;
  up = true;
  readonly stats = { connects: 0, published: 0, received: 0, drops: 0 };
  private socket: Socket | undefined;
  private emit: (ev: GuestEvent) => void;
  private scheduler: Scheduler;
  private messageId = 1;
  private ping: NodeJS.Timeout | undefined;
  private pendingFail: number | undefined;
  /** The slow link, with `link` in the options: its queues and byte counts per direction. */
  readonly link: Link | undefined;
  /** Benches watch the firmware's messages: each it publishes (when, and when its last byte left the link) and each it receives (when, and when it reached the link). */
  readonly watch: { published?(topic: string, payload: Buffer, atUs: number, leftUs: number): void; received?(topic: string, payload: Buffer, atUs: number, enteredUs: number): void } = {};
  private dropTimer: EventId | undefined;

  constructor(options: NetworkOptions, scheduler: Scheduler, emit: (ev: GuestEvent) => void) {
    const urls = (Array.isArray(options.url) ? options.url : [options.url]).map((url) => new URL(url));
    const u = urls[0];
    if (!u) throw new Error('the simulated network needs a broker URL');
    for (const x of urls) {
      if (x.protocol !== 'mqtt:' && x.protocol !== 'mqtts:') throw new Error(`the simulated network speaks mqtt:// or mqtts://, not ${x.protocol}`);
      if (x.protocol !== u.protocol) throw new Error('the simulated network speaks one of mqtt:// and mqtts:// to all its brokers');
    }
    this.tls = u.protocol === 'mqtts:';
    this.ca = options.ca;
    this.brokers = urls.map((x) => ({ host: x.hostname, port: Number(x.port || (this.tls ? 8883 : 1883)) }));
    this.host = this.brokers[0]!.host;
    this.port = this.brokers[0]!.port;
    this.speed = options.speed ?? 100;
    this.scheduler = scheduler;
    this.emit = emit;
    this.link = options.link ? new Link(options.link, scheduler) : undefined;
    this.armDrops();
  }

  /** A power cut: a new rig (and clock) takes over; whatever was open just dies. */
  rewire(scheduler: Scheduler, emit: (ev: GuestEvent) => void): void {
    this.drop();
    this.scheduler.cancel(this.dropTimer);
    this.scheduler = scheduler;
    this.emit = emit;
    this.link?.rewire(scheduler);
    this.armDrops();
  }

  /** The link's drop schedule on the machine's clock: the state it is in now, and the next change. */
  private armDrops(): void {
    const drops = this.link?.options.drops;
    if (!drops) return;
    const s = dropState(drops, this.scheduler.now);
    if (s.up !== this.up) this.setLink(s.up);
    this.dropTimer = this.scheduler.at(s.nextUs, () => {
      this.dropTimer = undefined;
      this.armDrops();
    });
  }

  /** Write a packet the firmware sends: at once, or when its last byte has crossed the link. Returns when that is (virtual us). */
  private send(socket: Socket, packet: mqttPacket.Packet, topic?: string): number {
    const bytes = mqttPacket.generate(packet);
    const link = this.link;
    if (!link) {
      socket.write(bytes);
      return this.scheduler.now;
    }
    return link.up.send(bytes.length, () => {
      if (socket === this.socket) socket.write(bytes);
    }, topic);
  }

  /** True while real I/O is under way (the host paces virtual time then). */
  get active(): boolean {
    return this.socket !== undefined;
  }

  open(o: MqttOpen): void {
    this.drop();
    if (!this.up) {
      // Nothing answers: the attempt times out on the machine's clock.
      this.pendingFail = this.scheduler.after(CONNECT_TIMEOUT_US, () => {
        this.pendingFail = undefined;
        this.emit(['mq', 'down']);
      });
      return;
    }
    const host = o.host ?? this.host;
    const port = o.port ?? this.port;
    this.connectedTo = { host, port };
    // Over TLS the broker's certificate must chain to the provisioned CA and name the host.
    const socket: Socket = this.tls ? connectTls({ host, port, ...(this.ca ? { ca: this.ca } : {}) }) : connect(port, host);
    this.socket = socket;
    socket.setNoDelay(true);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p: mqttPacket.Packet) => {
      if (socket !== this.socket) return;
      const link = this.link;
      if (!link) {
        this.handle(socket, p, this.scheduler.now);
        return;
      }
      const topic = p.cmd === 'publish' ? (p as mqttPacket.IPublishPacket).topic : undefined;
      const entered = this.scheduler.now;
      link.down.send(mqttPacketBytes(p.length ?? 0), () => {
        if (socket === this.socket) this.handle(socket, p, entered);
      }, topic);
    });
    parser.on('error', () => this.lose());
    socket.on('data', (chunk) => parser.parse(chunk));
    socket.on('error', () => this.lose());
    socket.on('close', () => {
      if (socket === this.socket) this.lose();
    });
    socket.on(this.tls ? 'secureConnect' : 'connect', () => {
      const packet: mqttPacket.IConnectPacket = {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: o.id,
        keepalive: o.keepalive,
      };
      if (o.user !== undefined) packet.username = o.user;
      if (o.password !== undefined) packet.password = Buffer.from(o.password);
      if (o.will) packet.will = { topic: o.will.topic, payload: Buffer.from(o.will.message, 'latin1'), qos: o.will.qos, retain: o.will.retain };
      this.send(socket, packet);
      // Keepalive is the broker's real-time rule, so pings run on real time.
      this.ping = setInterval(() => this.send(socket, { cmd: 'pingreq' }), Math.max(1000, (o.keepalive * 1000) / 2));
    });
  }

  /** A packet from the broker reaches the firmware (it reached the link at `entered`). */
  private handle(socket: Socket, p: mqttPacket.Packet, entered: number): void {
    switch (p.cmd) {
      case 'connack':
        if ((p as mqttPacket.IConnackPacket).returnCode === 0) {
          this.stats.connects++;
          this.emit(['mq', 'up']);
        } else {
          this.drop();
          this.emit(['mq', 'down']);
        }
        break;
      case 'publish': {
        const pub = p as mqttPacket.IPublishPacket;
        this.stats.received++;
        if (pub.qos === 1 && pub.messageId !== undefined) this.send(socket, { cmd: 'puback', messageId: pub.messageId });
        this.watch.received?.(pub.topic, pub.payload as Buffer, this.scheduler.now, entered);
        this.emit(['mq', 'msg', pub.topic, Buffer.from(pub.payload as Buffer).toString('latin1')]);
        break;
      }
      default:
        // puback, suback, pingresp: nothing for the firmware.
        break;
    }
  }

  publish(topic: string, text: string, qos: 0 | 1, retain: boolean): void {
    const s = this.socket;
    if (!s) return;
    this.stats.published++;
    // One character a byte (the guest's bridge, hal-sim/guest/bridge-board.ts): binary payloads cross unchanged.
    const packet: mqttPacket.IPublishPacket = { cmd: 'publish', topic, payload: Buffer.from(text, 'latin1'), qos, retain, dup: false };
    if (qos === 1) {
      packet.messageId = this.messageId;
      this.messageId = (this.messageId % 65535) + 1;
    }
    const left = this.send(s, packet, topic);
    this.watch.published?.(topic, packet.payload as Buffer, this.scheduler.now, left);
  }

  subscribe(topics: string[]): void {
    const s = this.socket;
    if (!s) return;
    const messageId = this.messageId;
    this.messageId = (this.messageId % 65535) + 1;
    this.send(s, { cmd: 'subscribe', messageId, subscriptions: topics.map((topic) => ({ topic, qos: 1 as const })) });
  }

  /** The firmware closes its client (it stops): a clean DISCONNECT; with a link, what is still on it is lost. */
  close(): void {
    const s = this.socket;
    this.link?.drop();
    if (s) s.end(mqttPacket.generate({ cmd: 'disconnect' }));
    this.forget();
  }

  /** The link goes down (`false`) or comes back. */
  setLink(up: boolean): void {
    this.up = up;
    if (!up && this.socket) {
      this.stats.drops++;
      this.lose();
    }
  }

  /** Tear the connection down without a word (the broker sends the last will). */
  drop(): void {
    this.socket?.destroy();
    this.link?.drop();
    this.forget();
    this.scheduler.cancel(this.pendingFail);
    this.pendingFail = undefined;
  }

  private lose(): void {
    if (!this.socket) return;
    this.socket.destroy();
    this.link?.drop();
    this.forget();
    this.emit(['mq', 'down']);
  }

  private forget(): void {
    if (this.ping) clearInterval(this.ping);
    this.ping = undefined;
    this.socket = undefined;
  }
}
