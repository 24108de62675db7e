/**
 * Command round trip: from the operator API call to the machine's outcome
 * settled in the store (the machine verified, applied and journaled it, the
 * event came back and was committed), on loopback with Mosquitto and
 * PostgreSQL, one simulated machine, while a load generator sends 2,000
 * telemetry messages per second from 200 other machines.
 */
import { buildApi } from '../gateway/api/server.js';
import { createToken } from '../gateway/api/tokens.js';
import { Gateway } from '../gateway/gateway.js';
import { openDb } from '../gateway/store/db.js';
import { MachineHost } from '../hal-sim/host.js';
import { usSnackMachine } from '../hal-sim/machines.js';
import { startBenchMosquitto, startGenerator } from './gateway-load.js';

export interface RoundTrip {
  commands: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  backgroundPerSecond: number;
}

export async function commandRoundTrip(pgUrl: string, n = 200, backgroundRate = 2000): Promise<RoundTrip> {
  const broker = await startBenchMosquitto();
  const schema = `bench_rt_${process.pid}`;
  const db = await openDb({ url: pgUrl, schema });
  const gw = await Gateway.start({ mqttUrl: broker.url, db });
  const api = await buildApi({ db, commands: gw.commands });
  const token = (await createToken(db, 'bench', 'operator')).token;
  const background = Array.from({ length: 200 }, (_, i) => `bg${process.pid % 1000}-${i}`);
  await gw.addMachines(background);
  const p = await gw.commands.provision('rt-1');
  const host = await MachineHost.start(usSnackMachine(), { target: 'sim', machineId: 'rt-1', network: { url: broker.url }, config: { commandKey: p.commandKey, commandKeyId: p.commandKeyId } });
  const generator = await startGenerator(broker.port, background.length, 20, 'telemetry', background[0]!.replace(/-0$/, ''), backgroundRate);
  try {
    for (let i = 0; i < 50 && (await host.status()).uplink?.state !== 'online'; i++) await host.run(200);
    await host.run(2000);
    const t0 = gw.ingester.stats.telemetry;
    const w0 = performance.now();
    const times: number[] = [];
    // The first 20 warm up (JIT, query plans) and are not counted.
    for (let i = -20; i < n; i++) {
      const start = performance.now();
      const res = await api.inject({ method: 'POST', url: '/machines/rt-1/commands', headers: { authorization: `Bearer ${token}` }, payload: { type: 'set-prices', args: { prices: { A1: 100 + ((i + 20) % 50) } } } });
      if (res.statusCode !== 202) throw new Error(`command refused: ${res.body}`);
      const id = (res.json() as { id: string }).id;
      let done = false;
      const settled = gw.commands.waitFor(id, 10000).then((c) => {
        done = true;
        return c;
      });
      while (!done) await host.run(1);
      const c = await settled;
      if (c?.status !== 'applied') throw new Error(`command ${i}: ${c?.status}`);
      if (i >= 0) times.push(performance.now() - start);
    }
    const bg = ((gw.ingester.stats.telemetry - t0) * 1000) / (performance.now() - w0);
    times.sort((a, b) => a - b);
    return { commands: n, p50Ms: times[Math.floor(n * 0.5)]!, p99Ms: times[Math.min(n - 1, Math.floor(n * 0.99))]!, maxMs: times[n - 1]!, backgroundPerSecond: bg };
  } finally {
    await generator.stop();
    await host.close();
    await api.close();
    await gw.close();
    await db.exec(`DROP SCHEMA ${schema} CASCADE`);
    await db.close();
    broker.process.kill('SIGKILL');
  }
}
