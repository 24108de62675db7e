/**
 * Networking: the ECMA-419 Wi-Fi interface (modules/io/wifi), the DNS
 * resolver and the MQTT client (the SDK's examples/io/tcp/mqttclient and
 * examples/io/udp/dns, which the manifest includes by path).
 */

declare module 'embedded:network/interface/wifi' {
  export interface WiFiOptions {
    /** `property` is "connection" or "address". */
    onChanged?: (this: WiFi, property: string) => void;
  }
  export default class WiFi {
    constructor(options: WiFiOptions);
    /** 200 disconnected, 300 connecting, 400 associated, 500 has an IP address. */
    readonly connection: number;
    readonly address: string | undefined;
    readonly RSSI: number;
    connect(options: { SSID: string; password?: string }): void;
    disconnect(): void;
    close(): void;
  }
}

declare module 'embedded:network/dns/resolver/udp' {
  import type UDP from 'embedded:io/socket/udp';
  /** Passed on to the MQTT client as its `dns.io`; the SNTP client uses it itself. */
  export default class Resolver {
    constructor(options: { servers: readonly string[]; socket: { io: typeof UDP } });
    /** An A record for `host`: `onResolved` with its address, or `onError` when no server answers. */
    resolve(options: { host: string; onResolved?: (host: string, address: string) => void; onError?: (host: string) => void }): void;
    close(): void;
  }
}

declare module 'embedded:network/mqtt/client' {
  import type Resolver from 'embedded:network/dns/resolver/udp';
  import type TCP from 'embedded:io/socket/tcp';
  import type UDP from 'embedded:io/socket/udp';

  /** What `onReadable` is told about the message it is reading (topic etc. on its first fragment only). */
  export interface MqttReadInfo {
    topic?: string;
    QoS?: number;
    byteLength?: number;
    /** More of this message's payload follows in later `onReadable` calls. */
    more: boolean;
  }

  export interface MqttControl {
    operation: number;
    id?: number;
  }

  export interface MqttClientOptions {
    host: string;
    port?: number;
    id?: string;
    user?: string | ArrayBuffer;
    password?: string | ArrayBuffer;
    /** Milliseconds (the client sends whole seconds in CONNECT). */
    keepalive?: number;
    clean?: boolean;
    will?: { topic: string; message: ArrayBuffer; QoS?: number; retain?: boolean };
    dns: { io: typeof Resolver; servers: string[]; socket: { io: typeof UDP } };
    socket: { io: typeof TCP };
    onReadable?: (this: MQTTClient, count: number, info: MqttReadInfo) => void;
    /** After CONNACK, and whenever the socket can take more; `count` bytes fit in one write. */
    onWritable?: (this: MQTTClient, count: number) => void;
    onControl?: (this: MQTTClient, message: MqttControl) => void;
    onClose?: (this: MQTTClient) => void;
    onError?: (this: MQTTClient, message?: string) => void;
  }

  export interface MqttWriteOptions {
    topic?: string;
    QoS?: number;
    retain?: boolean;
    byteLength?: number;
    operation?: number;
    items?: { topic: string; QoS?: number }[];
  }

  export default class MQTTClient {
    static readonly PUBLISH: number;
    static readonly SUBSCRIBE: number;
    static readonly CONNACK: number;
    static readonly PUBACK: number;
    static readonly SUBACK: number;
    constructor(options: MqttClientOptions);
    /** Up to `count` bytes of the message being read. */
    read(count: number): ArrayBuffer | undefined;
    /**
     * Publish (`data` with a topic) or send a control packet (`data` null,
     * `operation`). Throws "overflow" when the socket cannot take it now.
     */
    write(data: ArrayBuffer | ArrayBufferView | null, options: MqttWriteOptions): number;
    close(): void;
  }
}
