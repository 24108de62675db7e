/**
 * `npm start` runs its machines at 60 to 100 times real time while the
 * gateway signs their commands with the real time. A simulated machine
 * whose board clock runs 60 times faster than the world's must still take
 * every signed command issued over minutes of the world's time (hours of
 * its own), and still refuse one that expired on the way.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import type mqtt from 'mqtt';
import { signCommand } from '../../gateway/commands/envelope.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/mqtt/embedded-broker.js';
import { MachineHost } from '../../hal-sim/host.js';
import { connectMqtt } from '../lib/mqtt.js';
import { usMachine } from '../sim/fixtures.js';

/** The board clock runs this many times faster than the world's. */
const RATE = 60;
/** The world's time (Unix ms) when the board clock reads 0. */
const WALL_AT_BOOT = Date.UTC(2026, 0, 5, 9, 0, 0);
const ID = 'vm-fast';

describe('a simulated machine whose board clock runs 60 times faster than the world', function () {
  this.timeout(300000);
  let broker: EmbeddedBroker;
  let host: MachineHost;
  let client: mqtt.MqttClient;
  const key = randomBytes(32);

  before(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
    host = await MachineHost.start(usMachine(), {
      machineId: ID,
      // Paced at 20,000 times real time while connected: the eight hours of its own the test runs cost what
      // simulating them costs (about 6 s of CPU), not 14 s of waiting at 2,000 times. The commands cross the
      // broker in real time while the machine stands at the time it was published (deliver() runs it after).
      network: { url: broker.url, speed: 20000 },
      wallClock: (boardMs) => WALL_AT_BOOT + boardMs / RATE,
      config: { commandKey: key.toString('hex'), commandKeyId: 1 },
    });
    // Connecting takes real time (a real broker): bounded in real time.
    for (const until = Date.now() + 30000; Date.now() < until && (await host.status()).uplink?.state !== 'online'; ) await host.run(100);
    assert.equal((await host.status()).uplink?.state, 'online', `${host.nowMs} ${JSON.stringify(host.network?.stats)} ${host.network?.active}`);
    client = await connectMqtt(broker.url);
  });
  after(async () => {
    await client?.endAsync();
    await host?.close();
    await broker?.close();
  });

  /** A signed command issued now by the world's clock, valid for `ttl` seconds. */
  const command = (n: number, ttl: number): Buffer => {
    const issued = Math.floor(host.wallMs / 1000);
    return signCommand({ machine: ID, n, type: 'set-prices', issued, expires: issued + ttl, args: { prices: { A1: 100 + n } } }, 1, key);
  };

  /** Publish and run the machine until it has dealt with one more command (bounded in real time). */
  async function deliver(payload: Buffer): Promise<{ applied: number; rejected: number; lastRejection: string }> {
    const before = (await host.status()).commands;
    await client.publishAsync(`fleet/${ID}/commands`, payload, { qos: 1 });
    for (const until = Date.now() + 30000; Date.now() < until; ) {
      await host.run(200);
      const now = (await host.status()).commands;
      if (now.applied + now.rejected > before.applied + before.rejected) return now;
    }
    throw new Error('the machine did not deal with the command');
  }

  it('applies every command issued over seven minutes of wall time, and refuses one held back past its expiry', async () => {
    const held = command(1, 120);
    const wallStart = host.wallMs;
    for (let n = 2; n <= 9; n++) {
      const r = await deliver(command(n, 120));
      assert.equal(r.applied, n - 1, `command ${n}, ${Math.round((host.wallMs - wallStart) / 1000)} s of wall time on: ${r.lastRejection}`);
      // A minute of the world's time: an hour of the machine's.
      await host.run(60_000 * RATE);
    }
    assert.ok(host.wallMs - wallStart >= 7 * 60_000);
    const r = await deliver(held);
    assert.equal(r.applied, 8);
    assert.match(r.lastRejection, /command 1 expired \d+ s ago/);
  });
});
