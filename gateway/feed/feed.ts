/**
 * The seam between the gateway and its broker: a feed is one stream of
 * machine messages (ingest, audits, update requests) plus the way back to
 * the machines (acks, commands, chunks). Two kinds sit behind it:
 * - MQTT (mqtt/subscriber.ts): Mosquitto or the embedded broker, shared
 *   subscriptions ($share/{group}/...) between gateways;
 * - AMQP (amqp/feed.ts): RabbitMQ, quorum queues bound to amq.topic,
 *   competing consumers, acknowledged to the broker after the commit.
 * Both prove they are receiving with probes (a subscription the broker
 * grants and delivers nothing on is said loudly, and health() says deaf).
 */

/** connecting: not subscribed yet; unverified: a probe could not be judged; receiving: the last probe came back; deaf: it did not. */
export type SubscriptionState = 'connecting' | 'unverified' | 'receiving' | 'deaf';

/** The protocol a feed speaks to its broker (health names it: an AMQP feed is not an MQTT subscription). */
export type FeedKind = 'mqtt' | 'amqp';

export interface Feed {
  readonly kind: FeedKind;
  /** What it carries (ingest, audits, updates): for logs and health. */
  readonly name: string;
  readonly connected: boolean;
  readonly state: SubscriptionState;
  /** When a probe last came back (ms since the epoch), and probes lost. */
  readonly lastReceivedAt: number | undefined;
  readonly probesLost: number;
  /**
   * True: a message's `done` is its acknowledgement to the broker, which keeps it until then (AMQP):
   * call it only once the message is stored. False: the broker's acknowledgement is flow control only
   * (MQTT, where machines resend until the gateway's own ack).
   */
  readonly ackAfterStore: boolean;
  /** To a machine's topic (fleet/{id}/acks ...); false when it could not go out now (not connected). */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1): boolean;
  /** Stop taking messages (what was handed over may still be acknowledged). */
  close(): Promise<void>;
  /** Close the connection (after close() and after the work it fed is done). */
  end(): Promise<void>;
}

export interface FeedOptions {
  name: string;
  /** MQTT topic filters (fleet/+/events, ...). */
  filters: string[];
  /** The kind level of the probe topic (fleet/$gateway/{probeKind}); one of the filters must cover it. */
  probeKind: string;
  /** A fixed id gives a persistent session (MQTT); none, a clean one. */
  clientId?: string | undefined;
  /** True while the gateway deliberately holds this feed's messages (backpressure): probes wait. */
  paused?: () => boolean;
  /** A machine message; `done` acknowledges it to the broker (`requeue`: let go unstored, the broker should hand it over again, where it can). */
  onMessage: (topic: string, payload: Buffer, done: (requeue?: boolean) => void) => void;
}

export type OpenFeed = (o: FeedOptions) => Promise<Feed>;
