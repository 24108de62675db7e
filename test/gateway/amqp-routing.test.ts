/**
 * MQTT topics as RabbitMQ's MQTT plugin routes them on amq.topic, and back:
 * what the gateway binds its queues with and how it names what arrives.
 */
import { strict as assert } from 'node:assert';
import { routingKey, topicOf } from '../../gateway/amqp/feed.js';
import { TOPICS } from '../../gateway/gateway.js';

describe('AMQP routing keys', () => {
  it('binds the gateway topic filters as the MQTT plugin routes them (levels by dots, + as *)', () => {
    assert.deepEqual(TOPICS.map(routingKey), ['fleet.*.events', 'fleet.*.telemetry', 'fleet.*.status', 'fleet.*.audit']);
    assert.equal(routingKey('fleet/+/update/get'), 'fleet.*.update.get');
    assert.equal(routingKey('fleet/$gateway/status'), 'fleet.$gateway.status');
  });

  it('turns a routing key back into its MQTT topic, a dot inside a level included', () => {
    assert.equal(topicOf('fleet.vm-1.events'), 'fleet/vm-1/events');
    assert.equal(topicOf(routingKey('fleet/a.b/acks')), 'fleet/a.b/acks');
    assert.equal(routingKey('fleet/a.b/acks'), 'fleet.a/b.acks');
  });
});
