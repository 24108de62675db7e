/**
 * Two gateways' ingesters on one PostgreSQL database, writing the same
 * machines' messages at the same moment in opposite orders (a share group
 * hands each gateway a machine's messages in whatever order they come):
 * how many of their batches PostgreSQL ends with a deadlock (the ingester
 * then writes that batch's messages one by one, so nothing is lost, only
 * time). `npm run bench -- --deadlocks-only`.
 */
import { Ingester } from '../../gateway/ingest/ingester.js';
import { ingestStore } from '../../gateway/ingest/store.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import type { Figures } from './figures.js';

const telemetry = (t: number): string => `{"v":1,"t":${t},"state":"IDLE","slots":[{"code":"A1","qty":7}],"tubes":[{"value":25,"count":41}],"errors":[]}`;
const sale = (seq: number): string => `{"v":1,"events":[{"seq":${seq},"t":${seq},"type":"vend-ok","slot":"A1","price":125}]}`;

export async function deadlockBench(f: Figures, o: { pgUrl: string; machines: number; rounds: number }): Promise<void> {
  f.out('');
  f.out(`Two ingesters on one PostgreSQL, ${o.machines} machines' messages each round in opposite orders, ${o.rounds} rounds a mix`);
  const schema = `bench_${process.pid}_deadlocks`;
  const dbs: Db[] = [await openDb({ url: o.pgUrl, schema }), await openDb({ url: o.pgUrl, schema })];
  try {
    await migrate(dbs[0]!);
    const ids = Array.from({ length: o.machines }, (_, i) => `dl-${String(i).padStart(5, '0')}`);
    await addMachines(dbs[0]!, ids);
    for (const [m, mix] of (['telemetry', 'status', 'events', 'mixed'] as const).entries()) {
      let deadlocks = 0;
      let refusedBatches = 0;
      const ingesters = dbs.map(
        (db) =>
          new Ingester(ingestStore(db), () => {}, {
            flushMs: 1e9,
            maxBatchRows: 1e6,
            onLog: (_level, message) => {
              if (/batch of \d+ messages was refused/.test(message)) refusedBatches++;
              if (/deadlock|40P01/i.test(message)) deadlocks++;
            },
          }),
      );
      for (const g of ingesters) g.known(ids);
      for (let round = 0; round < o.rounds; round++) {
        ingesters.forEach((g, k) => {
          // One gateway takes the machines in order, the other in reverse.
          const order = k === 0 ? ids : [...ids].reverse();
          for (const [i, id] of order.entries()) {
            const t = round * 10 + k;
            // Event numbers: gateway 0 odd, gateway 1 even, so the two never carry the same event.
            const seq = m * 1000 + round * 2 + k + 1;
            if (mix === 'telemetry' || (mix === 'mixed' && i % 2 === k)) g.submit(`fleet/${id}/telemetry`, Buffer.from(telemetry(t)));
            if (mix === 'status' || (mix === 'mixed' && i % 3 === 0)) g.submit(`fleet/${id}/status`, Buffer.from(`{"v":1,"online":${(round + k) % 2 === 0}}`));
            if (mix === 'events' || (mix === 'mixed' && i % 2 !== k)) g.submit(`fleet/${id}/events`, Buffer.from(sale(seq)));
          }
        });
        await Promise.all(ingesters.map((g) => g.flush()));
      }
      for (const g of ingesters) await g.close();
      const stored = ingesters.reduce((n, g) => n + g.stats.telemetry + g.stats.statuses + g.stats.events, 0);
      const submitted = ingesters.reduce((n, g) => n + g.stats.messages, 0);
      f.record(`deadlocks.${mix}.batches`, o.rounds * 2, `${mix}: batches written`);
      f.record(`deadlocks.${mix}.deadlocks`, deadlocks, `${mix}: batches ended by a deadlock`);
      f.record(`deadlocks.${mix}.refused`, refusedBatches, `${mix}: batches written again one by one`);
      f.record(`deadlocks.${mix}.lost`, submitted - stored, `${mix}: messages not stored (must be 0)`);
    }
  } finally {
    await dbs[0]!.exec(`DROP SCHEMA ${schema} CASCADE`);
    for (const db of dbs) await db.close();
  }
}
