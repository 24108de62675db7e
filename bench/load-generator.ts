/**
 * The gateway bench's load generator, run as a process of its own so that
 * publishing does not compete with the gateway for its event loop (it still
 * shares the machine's cores, as the issue asks).
 *
 *   node dist/bench/load-generator.js <port> <machines> <window> <events|telemetry> <prefix> [rate]
 *
 * Each publisher stands in for a machine and keeps `window` QoS 1 messages
 * of about 200 bytes in flight; with `rate`, the publishers together send
 * that many messages per second instead (a background load), still at most
 * `window` in flight each. Prints "ready" once every publisher is
 * connected, and on SIGTERM (or stdin closing) the number it published.
 */
import { RawClient } from './raw-client.js';

const PAD = 'x'.repeat(60);

function payload(kind: string, seq: number): string {
  if (kind === 'telemetry') return `{"v":1,"t":${seq},"state":"IDLE","slots":[{"code":"A1","qty":7},{"code":"A2","qty":3}],"tubes":[{"value":25,"count":41}],"temperature":4.5,"errors":[]}`;
  return `{"v":1,"events":[{"seq":${seq},"t":${seq},"type":"vend-ok","slot":"A1","price":125,"note":"${PAD}"}]}`;
}

async function main(): Promise<void> {
  const [port, machines, window, kind, prefix, rateArg] = process.argv.slice(2);
  const rate = rateArg === undefined ? 0 : Number(rateArg);
  if (!port || !machines || !window || (kind !== 'events' && kind !== 'telemetry') || !prefix) {
    process.stderr.write('usage: load-generator <port> <machines> <window> <events|telemetry> <prefix>\n');
    process.exit(2);
  }
  const n = Number(machines);
  const w = Number(window);
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  const clients = ids.map((id) => new RawClient(Number(port), `pub-${id}`));
  await Promise.all(clients.map((c) => c.connected));
  let running = true;
  let published = 0;
  const seqs = new Array<number>(n).fill(0);
  const topics = ids.map((id) => `fleet/${id}/${kind}`);
  const send = (i: number): void => {
    const c = clients[i]!;
    while (running && c.inflight < w) {
      c.publish(topics[i]!, payload(kind, ++seqs[i]!));
      published++;
    }
  };
  if (rate > 0) {
    // A steady background: every 10 ms, a hundredth of the rate, round robin over the publishers.
    let next = 0;
    let owed = 0;
    setInterval(() => {
      owed += rate / 100;
      for (; owed >= 1; owed--) {
        const i = next++ % n;
        const c = clients[i]!;
        if (!running || c.inflight >= w) continue;
        c.publish(topics[i]!, payload(kind, ++seqs[i]!));
        published++;
      }
    }, 10);
  } else {
    clients.forEach((c, i) => {
      c.onAck = () => send(i);
      send(i);
    });
  }
  process.stdout.write('ready\n');
  const stop = (): void => {
    if (!running) return;
    running = false;
    for (const c of clients) c.close();
    process.stdout.write(`published ${published}\n`);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main().catch((e) => {
  process.stderr.write(`load-generator: ${(e as Error).message}\n`);
  process.exit(1);
});
