/**
 * Alerts: the rules on crafted telemetry (every kind, thresholds per slot
 * and per coin, off switches, junk input); the engine through the real
 * broker and ingest on both stores (an alert opens once and stays one row
 * while its condition holds, updates, closes; offline by silence; rejected
 * commands; two gateways on one store never duplicate); the webhook (order,
 * signature, retries, bounded queue); the rules over the API; and a
 * simulated machine whose slots empty and are restocked by command.
 */
import { strict as assert } from 'node:assert';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type mqtt from 'mqtt';
import { AlertEngine, type AlertEvent } from '../../gateway/alerts/engine.js';
import { applyRules, DEFAULT_RULES, evaluate, lowStockThreshold, offlineCondition, rejectedCondition, resolveRules, rulesProblem, type Condition } from '../../gateway/alerts/rules.js';
import { listAlerts, type Alert } from '../../gateway/alerts/store.js';
import { signature, WebhookSender } from '../../gateway/alerts/webhook.js';
import { buildApi } from '../../gateway/api/server.js';
import { createToken } from '../../gateway/api/tokens.js';
import type { CommandRecord } from '../../gateway/commands/service.js';
import { Gateway } from '../../gateway/gateway.js';
import { MachineHost } from '../../hal-sim/host.js';
import { prng } from '../lib/assert.js';
import { connectMqtt } from '../lib/mqtt.js';
import { usMachine } from '../sim/fixtures.js';
import { BACKENDS, count, eventually, synced, type Backend } from './backends.js';

// ---- crafted telemetry --------------------------------------------------------------------------

interface SlotT {
  code: string;
  product?: string;
  qty: number;
  capacity?: number;
  fault?: boolean;
}

function telemetry(over: Record<string, unknown> = {}, slots: SlotT[] = [{ code: 'A1', product: 'Chips', qty: 8, capacity: 10 }, { code: 'B1', product: 'Coke', qty: 8, capacity: 10 }]): Record<string, unknown> {
  return {
    v: 1,
    t: 1,
    fw: 'test',
    state: 'IDLE',
    slots: slots.map((s) => ({ price: 125, ...s })),
    tubes: [
      { value: 5, count: 20 },
      { value: 25, count: 20 },
    ],
    counters: { sales: 0, revenue: 0, commandsRejected: 0 },
    locked: false,
    intervalS: 60,
    stacker: { count: 10, capacity: 500 },
    journal: { lastSeq: 0, unsynced: 0, fill: 10, level: 'ok' },
    temperature: 4.5,
    errors: [],
    ...over,
  };
}

const keys = (cs: Condition[]): string[] => cs.map((c) => `${c.kind}:${c.subject}`).sort();
const find = (cs: Condition[], kind: string, subject = ''): Condition | undefined => cs.find((c) => c.kind === kind && c.subject === subject);

describe('alert rules', () => {
  it('finds nothing wrong with a healthy machine', () => {
    assert.deepEqual(evaluate(telemetry(), DEFAULT_RULES), []);
  });

  it('opens every telemetry kind from its condition', () => {
    const t = telemetry(
      {
        tubes: [
          { value: 5, count: 20 },
          { value: 25, count: 4 },
        ],
        stacker: { count: 500, capacity: 500 },
        journal: { lastSeq: 9, unsynced: 9, fill: 97, level: 'full' },
        temperature: 13.2,
        errors: ['changer-offline', 'bill-validator-offline', 'exact-change-only', 'slot-fault:C1', 'journal-full', 'locked'],
      },
      [
        { code: 'A1', product: 'Chips', qty: 0, capacity: 10 },
        { code: 'B1', product: 'Coke', qty: 2, capacity: 10 },
        { code: 'C1', qty: 4, capacity: 10, fault: true },
      ],
    );
    const cs = evaluate(t, DEFAULT_RULES);
    assert.deepEqual(keys(cs), [
      'bill-stacker-full:',
      'coin-tube-low:25',
      'device-offline:bill-validator',
      'device-offline:changer',
      'exact-change-only:',
      'journal-full:',
      'low-stock:B1',
      'slot-empty:A1',
      'slot-fault:C1',
      'temperature:',
    ]);
    assert.equal(find(cs, 'slot-empty', 'A1')!.message, 'Slot A1 (Chips) is empty');
    assert.deepEqual(find(cs, 'low-stock', 'B1')!.detail, { qty: 2, capacity: 10, threshold: 2 });
    assert.equal(find(cs, 'journal-full')!.severity, 'critical');
    assert.equal(find(cs, 'device-offline', 'changer')!.severity, 'critical');
    assert.deepEqual(find(cs, 'temperature')!.detail, { temperature: 13.2, min: 0, max: 10 });
    assert.match(find(cs, 'bill-stacker-full')!.message, /500 of 500/);
    // The fault counts once, from the error code and from the slot's flag alike.
    assert.equal(cs.filter((c) => c.kind === 'slot-fault').length, 1);
  });

  it('reads the journal level, the error codes and the fill', () => {
    const j = (journal: Record<string, unknown>, errors: string[] = []) => find(evaluate(telemetry({ journal, errors }), DEFAULT_RULES), 'journal-full');
    assert.equal(j({ fill: 50, level: 'ok' }), undefined);
    assert.equal(j({ fill: 75, level: 'ok' })!.severity, 'warning');
    assert.equal(j({ fill: 76, level: 'low' })!.severity, 'warning');
    assert.equal(j({ fill: 99, level: 'full' })!.severity, 'critical');
    assert.equal(j({}, ['journal-low'])!.severity, 'warning');
    const noFill = applyRules(DEFAULT_RULES, { journal: { fillPercent: null } });
    assert.equal(find(evaluate(telemetry({ journal: { fill: 80, level: 'ok' } }), noFill), 'journal-full'), undefined);
    // The fill creeping up does not change the alert (no update per percent).
    assert.deepEqual(j({ fill: 80, level: 'low' })!.detail, j({ fill: 90, level: 'low' })!.detail);
  });

  it('opens storage-fault on flash faults counted (warning) and on a journal stopped by them (critical)', () => {
    const f = (journal: Record<string, unknown>, errors: string[] = [], rules = DEFAULT_RULES) => find(evaluate(telemetry({ journal, errors }), rules), 'storage-fault');
    assert.equal(f({ fill: 10, level: 'ok' }), undefined);
    assert.equal(f({ fill: 10, level: 'ok', faults: 0 }), undefined);
    assert.equal(f({ fill: 10, level: 'ok', faults: 'many' }), undefined, 'junk is no count');
    const some = f({ fill: 10, level: 'ok', faults: 3 })!;
    assert.equal(some.severity, 'warning');
    assert.deepEqual(some.detail, { faults: 3, stopped: false });
    assert.match(some.message, /3 writes or erases failed/);
    assert.equal(f({ fill: 10, level: 'fault', faults: 40 })!.severity, 'critical');
    assert.equal(f({}, ['journal-fault'])!.severity, 'critical');
    // A stopped journal is not a full one.
    assert.equal(find(evaluate(telemetry({ journal: { fill: 10, level: 'fault', faults: 40 } }), DEFAULT_RULES), 'journal-full'), undefined);
    assert.equal(f({ level: 'fault' }, [], applyRules(DEFAULT_RULES, { kinds: { 'storage-fault': false } })), undefined, 'off switch');
  });

  it('low stock: 20 % of capacity rounded up, at least 1, with per-slot thresholds and off switches', () => {
    assert.equal(lowStockThreshold(DEFAULT_RULES, 'A1', 10), 2);
    assert.equal(lowStockThreshold(DEFAULT_RULES, 'A1', 12), 3);
    assert.equal(lowStockThreshold(DEFAULT_RULES, 'A1', 3), 1);
    assert.equal(lowStockThreshold(DEFAULT_RULES, 'A1', undefined), undefined, 'no capacity, no percentage');
    const slots: SlotT[] = [
      { code: 'A1', qty: 3, capacity: 12 },
      { code: 'B1', qty: 4, capacity: 10 },
      { code: 'C1', qty: 1, capacity: 10 },
    ];
    assert.deepEqual(keys(evaluate(telemetry({}, slots), DEFAULT_RULES)), ['low-stock:A1', 'low-stock:C1']);
    const own = applyRules(DEFAULT_RULES, { lowStock: { slots: { B1: 4, C1: null } } });
    assert.deepEqual(keys(evaluate(telemetry({}, slots), own)), ['low-stock:A1', 'low-stock:B1']);
    assert.equal(find(evaluate(telemetry({}, slots), own), 'low-stock', 'B1')!.detail['threshold'], 4);
    // The percentage off: only slots with their own threshold are checked.
    const perSlotOnly = applyRules(own, { lowStock: { percent: null } });
    assert.deepEqual(keys(evaluate(telemetry({}, slots), perSlotOnly)), ['low-stock:B1']);
    const off = applyRules(DEFAULT_RULES, { kinds: { 'low-stock': false, 'slot-empty': false } });
    assert.deepEqual(evaluate(telemetry({}, [{ code: 'A1', qty: 0, capacity: 10 }, { code: 'B1', qty: 1, capacity: 10 }]), off), []);
  });

  it('coin tubes: 5 coins by default, per coin value, null for off', () => {
    const t = telemetry({
      tubes: [
        { value: 5, count: 5 },
        { value: 10, count: 6 },
        { value: 25, count: 0 },
      ],
    });
    assert.deepEqual(keys(evaluate(t, DEFAULT_RULES)), ['coin-tube-low:25', 'coin-tube-low:5']);
    const r = applyRules(DEFAULT_RULES, { coinTubeLow: { byValue: { '10': 8, '25': null } } });
    assert.deepEqual(keys(evaluate(t, r)), ['coin-tube-low:10', 'coin-tube-low:5']);
    assert.deepEqual(keys(evaluate(t, applyRules(r, { coinTubeLow: { coins: null } }))), ['coin-tube-low:10']);
    assert.deepEqual(evaluate(t, applyRules(DEFAULT_RULES, { kinds: { 'coin-tube-low': false } })), []);
  });

  it('temperature: 0 to 10 °C by default; each end can be switched off', () => {
    const at = (temperature: unknown, rules = DEFAULT_RULES) => find(evaluate(telemetry({ temperature }), rules), 'temperature');
    assert.equal(at(10), undefined);
    assert.match(at(10.5)!.message, /above 10/);
    assert.match(at(-1)!.message, /below 0/);
    assert.equal(at(undefined), undefined, 'a machine without a sensor');
    assert.equal(at('hot'), undefined);
    const noMax = applyRules(DEFAULT_RULES, { temperature: { max: null } });
    assert.equal(at(30, noMax), undefined);
    assert.ok(at(-1, noMax));
    assert.equal(at(30, applyRules(DEFAULT_RULES, { kinds: { temperature: false } })), undefined);
  });

  it('stacker full from the error code or the count; devices offline one by one', () => {
    assert.ok(find(evaluate(telemetry({ errors: ['bill-stacker-full'], stacker: undefined }), DEFAULT_RULES), 'bill-stacker-full'));
    assert.equal(find(evaluate(telemetry({ stacker: { count: 499, capacity: 500 } }), DEFAULT_RULES), 'bill-stacker-full'), undefined);
    assert.deepEqual(keys(evaluate(telemetry({ errors: ['bill-validator-offline'] }), DEFAULT_RULES)), ['device-offline:bill-validator']);
    assert.deepEqual(keys(evaluate(telemetry({ errors: ['cashless-offline'] }), DEFAULT_RULES)), ['device-offline:cashless']);
    assert.deepEqual(evaluate(telemetry({ errors: ['changer-offline'] }), applyRules(DEFAULT_RULES, { kinds: { 'device-offline': false } })), []);
  });

  it('device currency mismatch: one per device, with what it reported; not offline; can be switched off', () => {
    const refused = { changer: { reason: 'currency', currency: 978, scale: 5, decimals: 2 }, cashless: { reason: 'scaling', currency: 840, scale: 5, decimals: 1 } };
    const cs = evaluate(telemetry({ errors: ['changer-currency-mismatch', 'cashless-currency-mismatch'], refused }), DEFAULT_RULES);
    assert.deepEqual(keys(cs), ['device-currency-mismatch:cashless', 'device-currency-mismatch:changer']);
    assert.match(find(cs, 'device-currency-mismatch', 'changer')!.message, /Coin changer not enabled: its currency \(978\) is not the machine's/);
    assert.match(find(cs, 'device-currency-mismatch', 'cashless')!.message, /Card reader not enabled: its money units cannot express the prices/);
    assert.deepEqual(find(cs, 'device-currency-mismatch', 'cashless')!.detail, refused.cashless);
    // The error code alone is enough (an older machine without the `refused` figures).
    assert.deepEqual(keys(evaluate(telemetry({ errors: ['bill-validator-currency-mismatch'] }), DEFAULT_RULES)), ['device-currency-mismatch:bill-validator']);
    assert.deepEqual(evaluate(telemetry({ errors: ['cashless-currency-mismatch'], refused: 'junk' }), DEFAULT_RULES)[0]!.detail, {});
    assert.deepEqual(evaluate(telemetry({ errors: ['changer-currency-mismatch'] }), applyRules(DEFAULT_RULES, { kinds: { 'device-currency-mismatch': false } })), []);
  });

  it('offline after N intervals of silence (the machine\'s own interval, else the default)', () => {
    const seen = new Date('2026-01-01T00:00:00Z');
    assert.equal(offlineCondition(seen, 180, 60, DEFAULT_RULES), undefined);
    const c = offlineCondition(seen, 181, 60, DEFAULT_RULES)!;
    assert.equal(c.kind, 'offline');
    assert.equal(c.severity, 'critical');
    assert.deepEqual(c.detail, { lastSeen: seen.toISOString(), intervalS: 60, afterS: 180 });
    assert.equal(offlineCondition(seen, 899, undefined, DEFAULT_RULES), undefined);
    assert.ok(offlineCondition(seen, 901, undefined, DEFAULT_RULES));
    const five = applyRules(DEFAULT_RULES, { offline: { intervals: 5 } });
    assert.equal(offlineCondition(seen, 299, 60, five), undefined);
    assert.ok(offlineCondition(seen, 301, 60, five));
    assert.equal(offlineCondition(null, null, 60, DEFAULT_RULES), undefined, 'never seen: not offline');
    assert.equal(offlineCondition(seen, 1e6, 60, applyRules(DEFAULT_RULES, { kinds: { offline: false } })), undefined);
  });

  it('rejected commands: 5 within the hour by default', () => {
    assert.equal(rejectedCondition(4, { 'bad-signature': 4 }, DEFAULT_RULES), undefined);
    const c = rejectedCondition(5, { 'bad-signature': 3, replay: 2 }, DEFAULT_RULES)!;
    assert.match(c.message, /5 commands rejected .* 60 min \(bad-signature 3, replay 2\)/);
    assert.equal(rejectedCondition(9, {}, applyRules(DEFAULT_RULES, { commandsRejected: { count: 10 } })), undefined);
  });

  it('merges fleet and machine rules field by field and ignores what is not a rule', () => {
    const r = resolveRules({ lowStock: { percent: 30, slots: { A1: 4 } }, kinds: { temperature: false } }, { lowStock: { slots: { B1: 2 } }, temperature: { max: 8 }, junk: 1, offline: { intervals: 'x' } });
    assert.equal(r.lowStock.percent, 30);
    assert.deepEqual(r.lowStock.slots, { A1: 4, B1: 2 });
    assert.equal(r.kinds.temperature, false);
    assert.equal(r.kinds['low-stock'], true);
    assert.deepEqual(r.temperature, { min: 0, max: 8 });
    assert.equal(r.offline.intervals, 3);
    assert.deepEqual(resolveRules(null, 'nonsense'), DEFAULT_RULES);
    assert.match(rulesProblem(applyRules(DEFAULT_RULES, { temperature: { min: 8, max: 2 } }))!, /temperature.min/);
    assert.equal(rulesProblem(DEFAULT_RULES), undefined);
  });

  it('never throws on junk telemetry', () => {
    for (const junk of [null, 'x', 42, [], { slots: 'no' }, { slots: [null, 1, { code: 5, qty: 'a' }, { code: 'A1' }] }, { tubes: [{}], errors: [1, null], journal: 'full', stacker: [] }]) {
      assert.doesNotThrow(() => evaluate(junk, DEFAULT_RULES));
    }
    assert.deepEqual(evaluate({ slots: [{ code: 'A1' }] }, DEFAULT_RULES), []);
  });
});

// ---- the webhook on its own ---------------------------------------------------------------------

interface Hook {
  body: string;
  headers: IncomingHttpHeaders;
  event: AlertEvent;
}

/** A webhook receiver that answers 500 to the first `failures` requests. */
async function receiver(): Promise<{ url: string; hooks: Hook[]; fail: (n: number) => void; server: Server }> {
  const hooks: Hook[] = [];
  let failures = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failures > 0) {
        failures--;
        res.writeHead(500).end('down');
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      hooks.push({ body, headers: req.headers, event: JSON.parse(body) as AlertEvent });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/secret-path-token`, hooks, fail: (n) => (failures = n), server };
}

const fakeAlert = (id: number): Alert => ({
  id,
  machine: 'm',
  kind: 'slot-empty',
  subject: 'A1',
  severity: 'warning',
  message: 'm',
  detail: {},
  openedAt: new Date(0).toISOString(),
  updatedAt: new Date(0).toISOString(),
  closedAt: null,
});

describe('alert webhook', () => {
  it('delivers in order through failures, signed, and never logs the secret or the path', async () => {
    const r = await receiver();
    const logs: string[] = [];
    const w = new WebhookSender({ url: r.url, secret: 'hush-hush', retryMs: 20, onLog: (_l, m) => logs.push(m) });
    try {
      r.fail(3);
      for (let i = 1; i <= 5; i++) w.push({ event: i % 2 ? 'opened' : 'closed', alert: fakeAlert(i) });
      await w.idle();
      assert.deepEqual(r.hooks.map((h) => h.event.alert.id), [1, 2, 3, 4, 5]);
      for (const h of r.hooks) {
        assert.equal(h.headers['x-vendfleet-signature'], `sha256=${createHmac('sha256', 'hush-hush').update(h.body).digest('hex')}`);
        assert.equal(h.headers['content-type'], 'application/json');
      }
      assert.equal(w.stats.sent, 5);
      assert.equal(w.stats.failures, 3);
      assert.ok(logs.length > 0);
      assert.ok(logs.every((l) => !l.includes('hush-hush') && !l.includes('secret-path-token')), logs.join('\n'));
      assert.match(w.target, /^http:\/\/127\.0\.0\.1:\d+ \(signed\)$/);
    } finally {
      w.close();
      r.server.close();
    }
  });

  it('keeps a bounded queue while the receiver is down: the oldest go, counted', async () => {
    const r = await receiver();
    const w = new WebhookSender({ url: r.url, retryMs: 30, maxRetryMs: 30, maxQueue: 3 });
    try {
      r.fail(1_000_000);
      for (let i = 1; i <= 10; i++) w.push({ event: 'opened', alert: fakeAlert(i) });
      assert.ok(w.stats.queued <= 3);
      assert.equal(w.stats.dropped, 7);
      // Until it has been refused and retried while the receiver is down (bounded), not for a fixed time.
      for (const end = Date.now() + 10000; w.stats.failures < 2; await new Promise((res) => setTimeout(res, 10))) assert.ok(Date.now() < end, 'no retry within 10 s');
      r.fail(0);
      await w.idle();
      // The one in flight when the queue overflowed is sent first, then the newest.
      assert.deepEqual(r.hooks.map((h) => h.event.alert.id), [1, 9, 10]);
      assert.equal(r.hooks[0]!.headers['x-vendfleet-signature'], undefined, 'unsigned without a secret');
    } finally {
      w.close();
      r.server.close();
    }
  });

  it('drops what the receiver refuses (4xx) instead of blocking the queue', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(400).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const w = new WebhookSender({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, retryMs: 10 });
    try {
      w.push({ event: 'opened', alert: fakeAlert(1) });
      w.push({ event: 'closed', alert: fakeAlert(1) });
      await w.idle();
      assert.equal(w.stats.refused, 2);
      assert.equal(w.stats.queued, 0);
    } finally {
      w.close();
      server.close();
    }
  });

  it('signs the exact body bytes', () => {
    assert.equal(signature('{"a":1}', 'k'), `sha256=${createHmac('sha256', 'k').update('{"a":1}').digest('hex')}`);
  });
});

// ---- the engine through the broker and the ingest ---------------------------------------------

for (const backend of BACKENDS) {
  describe(`alert engine: ${backend.name}`, function () {
    this.timeout(120000);
    let b: Backend;
    let gw: Gateway;
    let client: mqtt.MqttClient;
    let hook: Awaited<ReturnType<typeof receiver>>;
    const secret = 'alert-secret-for-tests';
    const base = `al${process.pid % 10000}x${Math.floor(Math.random() * 1e6)}`;
    const id = base;
    const seq = new Map<string, number>();

    before(async () => {
      b = await backend.open();
      hook = await receiver();
      gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup, alerts: { webhookUrl: hook.url, webhookSecret: secret, webhookRetryMs: 20, sweepMs: 0 } });
      await gw.addMachines([id, `${id}r`, `${id}2`, `${id}3`, `${id}api`, `${id}cur`]);
      client = await connectMqtt(b.mqttUrl);
    });
    after(async () => {
      await client?.endAsync();
      await gw?.close();
      hook?.server.close();
      await b?.close();
    });

    /** Publish telemetry as the machine would, and wait until it is stored and judged. */
    async function send(machine: string, body: Record<string, unknown>, gateways: Gateway[] = [gw]): Promise<void> {
      const t = (seq.get(machine) ?? 0) + 1;
      seq.set(machine, t);
      await client.publishAsync(`fleet/${machine}/telemetry`, JSON.stringify({ ...body, t }), { qos: 1 });
      await eventually(`telemetry ${t} of ${machine} stored`, async () => {
        const r = await b.db.query<{ t: string | null }>("SELECT telemetry->>'t' AS t FROM machine_state WHERE machine_id = $1", [machine]);
        return Number(r.rows[0]?.t ?? 0) >= t ? true : undefined;
      });
      for (const g of gateways) {
        await g.ingester.flush();
        await g.alerts!.idle();
      }
    }
    const open = async (machine: string): Promise<string[]> => (await listAlerts(b.db, { machine })).map((a) => `${a.kind}:${a.subject}`).sort();
    const one = async (machine: string, kind: string, subject = ''): Promise<Alert | undefined> => (await listAlerts(b.db, { machine, kind })).find((a) => a.subject === subject);
    const hooksOf = (alertId: number): string[] => hook.hooks.filter((h) => h.event.alert.id === alertId).map((h) => h.event.event);

    it('opens an alert once and keeps one row while the condition holds, across many messages', async () => {
      for (let i = 0; i < 8; i++) await send(id, telemetry({}, [{ code: 'A1', product: 'Chips', qty: 0, capacity: 10 }, { code: 'B1', qty: 8, capacity: 10 }]));
      assert.deepEqual(await open(id), ['slot-empty:A1']);
      assert.equal(await count(b.db, "SELECT count(*) AS n FROM alerts WHERE machine_id = $1 AND kind = 'slot-empty'", [id]), 1);
      const a = (await one(id, 'slot-empty', 'A1'))!;
      assert.equal(a.severity, 'warning');
      assert.equal(a.updatedAt, a.openedAt, 'nothing changed: never updated');
      await gw.alerts!.webhook!.idle();
      assert.deepEqual(hooksOf(a.id), ['opened']);
    });

    it('opens device-currency-mismatch for a reader in another currency, and closes it when the reader is replaced', async () => {
      const m = `${id}cur`;
      const refused = { cashless: { reason: 'currency', currency: 978, scale: 1, decimals: 2 } };
      await send(m, telemetry({ errors: ['cashless-currency-mismatch'], refused }));
      assert.deepEqual(await open(m), ['device-currency-mismatch:cashless']);
      const a = (await one(m, 'device-currency-mismatch', 'cashless'))!;
      assert.equal(a.severity, 'critical');
      assert.match(a.message, /Card reader not enabled: its currency \(978\) is not the machine's/);
      assert.deepEqual(a.detail, { reason: 'currency', currency: 978, scale: 1, decimals: 2 });
      await send(m, telemetry());
      assert.deepEqual(await open(m), []);
    });

    it('updates an open alert when its figures change, keeping when it opened', async () => {
      await send(id, telemetry({}, [{ code: 'A1', product: 'Chips', qty: 0, capacity: 10 }, { code: 'B1', qty: 2, capacity: 10 }]));
      const first = (await one(id, 'low-stock', 'B1'))!;
      assert.deepEqual(first.detail, { qty: 2, capacity: 10, threshold: 2 });
      // The clock moves on before the change, so an openedAt rewritten by it would differ.
      while (Date.now() <= Date.parse(first.openedAt) + 1) await new Promise((r) => setTimeout(r, 5));
      await send(id, telemetry({}, [{ code: 'A1', product: 'Chips', qty: 0, capacity: 10 }, { code: 'B1', qty: 1, capacity: 10 }]));
      const later = (await one(id, 'low-stock', 'B1'))!;
      assert.equal(later.id, first.id);
      assert.equal(later.openedAt, first.openedAt);
      assert.ok(later.updatedAt > first.updatedAt);
      assert.deepEqual(later.detail, { qty: 1, capacity: 10, threshold: 2 });
      assert.match(later.message, /1 of 10 left/);
      await gw.alerts!.webhook!.idle();
      assert.deepEqual(hooksOf(first.id), ['opened', 'updated']);
    });

    it('closes alerts whose condition is gone; a new occurrence is a new alert; the webhook gets them in order, signed, through failures', async () => {
      const empty = (await one(id, 'slot-empty', 'A1'))!;
      const low = (await one(id, 'low-stock', 'B1'))!;
      hook.fail(3);
      await send(id, telemetry());
      assert.deepEqual(await open(id), []);
      const closed = await listAlerts(b.db, { machine: id, state: 'closed' });
      assert.deepEqual(closed.map((a) => a.id).sort(), [empty.id, low.id].sort());
      assert.ok(closed.every((a) => a.closedAt !== null));
      await send(id, telemetry({}, [{ code: 'A1', product: 'Chips', qty: 0, capacity: 10 }, { code: 'B1', qty: 8, capacity: 10 }]));
      const again = (await one(id, 'slot-empty', 'A1'))!;
      assert.notEqual(again.id, empty.id);
      assert.equal(await count(b.db, "SELECT count(*) AS n FROM alerts WHERE machine_id = $1 AND kind = 'slot-empty'", [id]), 2);
      await gw.alerts!.webhook!.idle();
      assert.deepEqual(hooksOf(empty.id), ['opened', 'closed']);
      assert.deepEqual(hooksOf(low.id), ['opened', 'updated', 'closed']);
      assert.deepEqual(hooksOf(again.id), ['opened']);
      for (const h of hook.hooks) assert.equal(h.headers['x-vendfleet-signature'], signature(h.body, secret));
      assert.ok(gw.alerts!.webhook!.stats.failures >= 3);
      const last = hook.hooks.at(-1)!.event;
      assert.equal(last.alert.machine, id);
      assert.equal(last.alert.kind, 'slot-empty');
      assert.equal(last.alert.closedAt, null);
      await send(id, telemetry());
    });

    it('opens offline after three intervals of silence and closes it when the machine speaks again', async () => {
      await send(id, telemetry({ intervalS: 60 }));
      const now = Date.now();
      await gw.alerts!.sweep(new Date(now + 150_000));
      assert.deepEqual(await open(id), [], 'two and a half intervals: not yet');
      await gw.alerts!.sweep(new Date(now + 200_000));
      assert.deepEqual(await open(id), ['offline:'], 'more than three intervals of 60 s');
      const off = (await one(id, 'offline'))!;
      assert.equal(off.severity, 'critical');
      assert.equal(off.detail['afterS'], 180);
      // Sweeping again changes nothing (no update every sweep).
      await gw.alerts!.sweep(new Date(now + 400_000));
      assert.equal((await one(id, 'offline'))!.updatedAt, off.updatedAt);
      await send(id, telemetry({ intervalS: 60 }));
      assert.deepEqual(await open(id), []);
      // A machine that never said its interval gets the default (300 s).
      await send(`${id}2`, telemetry({ intervalS: undefined }));
      await gw.alerts!.sweep(new Date(Date.now() + 800_000));
      assert.deepEqual(await open(`${id}2`), []);
      await gw.alerts!.sweep(new Date(Date.now() + 1000_000));
      assert.deepEqual(await open(`${id}2`), ['offline:']);
      // Events count as a word from the machine too: the sweeper closes it.
      await client.publishAsync(`fleet/${id}2/events`, JSON.stringify({ v: 1, events: [{ seq: 1, t: 1, type: 'boot' }] }), { qos: 1 });
      await eventually('the event stored', async () => ((await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [`${id}2`])) > 0 ? true : undefined));
      await gw.alerts!.sweep();
      assert.deepEqual(await open(`${id}2`), []);
    });

    it('opens commands-rejected for five rejections within the hour, and closes it when they age out', async () => {
      const m = `${id}r`;
      await send(m, telemetry());
      const rejected = (from: number, n: number) => JSON.stringify({ v: 1, events: Array.from({ length: n }, (_, i) => ({ seq: from + i, t: from + i, type: 'command-rejected', n: 100 + i, reason: i % 2 ? 'replay' : 'bad-signature', suppressed: 0 })) });
      await client.publishAsync(`fleet/${m}/events`, rejected(1, 4), { qos: 1 });
      await eventually('4 rejections stored', async () => ((await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [m])) === 4 ? true : undefined));
      await gw.alerts!.sweep();
      assert.deepEqual(await open(m), []);
      await client.publishAsync(`fleet/${m}/events`, rejected(5, 1), { qos: 1 });
      await eventually('5 rejections stored', async () => ((await count(b.db, 'SELECT count(*) AS n FROM events WHERE machine_id = $1', [m])) === 5 ? true : undefined));
      await gw.alerts!.sweep();
      assert.deepEqual(await open(m), ['commands-rejected:']);
      const a = (await one(m, 'commands-rejected'))!;
      assert.deepEqual(a.detail, { count: 5, windowMinutes: 60, reasons: { 'bad-signature': 3, replay: 2 } });
      await gw.alerts!.sweep(new Date(Date.now() + 2 * 3600_000));
      assert.equal((await one(m, 'commands-rejected')), undefined, 'aged out of the hour');
      await send(m, telemetry());
    });

    it('two engines and two gateways on one store never open the same alert twice nor notify it twice', async () => {
      // Two engines with their own connections judge one machine at the same moments, state flipping between.
      const m = `${id}3`;
      const db2 = await b.reopen();
      const seen: AlertEvent[] = [];
      const e1 = new AlertEngine(b.db, { onAlert: (e) => seen.push(e) });
      const e2 = new AlertEngine(db2, { onAlert: (e) => seen.push(e) });
      try {
        for (let round = 0; round < 10; round++) {
          const qty = round % 2 === 0 ? 0 : 5;
          await b.db.query(
            `INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ($1, true, now(), $2::jsonb, now())
             ON CONFLICT (machine_id) DO UPDATE SET telemetry = EXCLUDED.telemetry, last_seen = now()`,
            [m, JSON.stringify(telemetry({}, [{ code: 'A1', qty, capacity: 10 }]))],
          );
          await Promise.all([e1.recheck([m]), e2.recheck([m]), e1.recheck([m]), e2.recheck([m])]);
          assert.deepEqual(await open(m), qty === 0 ? ['slot-empty:A1'] : []);
        }
        assert.deepEqual(
          seen.map((e) => e.event),
          ['opened', 'closed', 'opened', 'closed', 'opened', 'closed', 'opened', 'closed', 'opened', 'closed'],
        );
        assert.equal(await count(b.db, 'SELECT count(*) AS n FROM alerts WHERE machine_id = $1', [m]), 5);
        assert.equal(e1.stats.errors + e2.stats.errors, 0);
      } finally {
        await e1.close();
        await e2.close();
      }

      // Two gateways ingesting the same broker (each every message on the embedded broker, shared on Mosquitto).
      const gw2 = await Gateway.start({ mqttUrl: b.mqttUrl, db: db2, shareGroup: b.shareGroup, alerts: { sweepMs: 0 } });
      try {
        const before = gw.alerts!.stats.opened + gw2.alerts!.stats.opened;
        const lastId = Number((await b.db.query<{ n: string | null }>('SELECT max(id) AS n FROM alerts')).rows[0]!.n ?? 0);
        for (let i = 0; i < 20; i++) {
          const t = (seq.get(id) ?? 0) + 1;
          seq.set(id, t);
          const qty = i % 3 === 0 ? 0 : 4;
          await client.publishAsync(`fleet/${id}/telemetry`, JSON.stringify({ ...telemetry({}, [{ code: 'A1', qty, capacity: 10 }, { code: 'B1', qty: 1, capacity: 10 }]), t }), { qos: 1 });
        }
        // Every one of those stored before the last word (the newest in machine_state, nothing waiting in either gateway), so that none lands after it.
        const newest = seq.get(id)!;
        await eventually(`telemetry ${newest} of ${id} stored`, async () => {
          for (const g of [gw, gw2]) await g.ingester.flush();
          const r = await b.db.query<{ t: string | null }>("SELECT telemetry->>'t' AS t FROM machine_state WHERE machine_id = $1", [id]);
          return Number(r.rows[0]?.t ?? 0) >= newest && [gw, gw2].every((g) => g.ingester.health().waiting === 0) ? true : undefined;
        });
        await send(id, telemetry({}, [{ code: 'A1', qty: 0, capacity: 10 }, { code: 'B1', qty: 1, capacity: 10 }]), [gw, gw2]);
        for (const g of [gw, gw2]) {
          await g.ingester.flush();
          await g.alerts!.recheck([id]);
        }
        assert.deepEqual(await open(id), ['low-stock:B1', 'slot-empty:A1']);
        const opened = gw.alerts!.stats.opened + gw2.alerts!.stats.opened - before;
        const rows = await count(b.db, 'SELECT count(*) AS n FROM alerts WHERE machine_id = $1 AND id > $2', [id, lastId]);
        assert.equal(opened, rows, 'each row opened (and notified) exactly once');
        assert.equal(gw.alerts!.stats.errors + gw2.alerts!.stats.errors, 0);
      } finally {
        await gw2.close();
      }
      await send(id, telemetry());
    });

    it('serves alerts and rules over the API: roles, bad rules refused, changes applied at once', async () => {
      const m = `${id}api`;
      const api: FastifyInstance = await buildApi({ db: b.db, commands: gw.commands, alerts: gw.alerts });
      try {
        const admin = (await createToken(b.db, 'alerts admin', 'admin')).token;
        const operator = (await createToken(b.db, 'alerts operator', 'operator')).token;
        const viewer = (await createToken(b.db, 'alerts viewer', 'viewer')).token;
        const call = (method: 'GET' | 'PUT', url: string, token: string | undefined, body?: unknown) =>
          api.inject({ method, url, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(body !== undefined ? { payload: body as object } : {}) });

        await send(m, telemetry({ tubes: [{ value: 25, count: 3 }] }, [{ code: 'A1', product: 'Chips', qty: 0, capacity: 10 }]));
        assert.deepEqual(await open(m), ['coin-tube-low:25', 'slot-empty:A1']);

        // Reading
        assert.equal((await call('GET', '/alerts', undefined)).statusCode, 401);
        const list = (await call('GET', `/alerts?machine=${m}`, viewer)).json() as { alerts: Alert[] };
        assert.deepEqual(list.alerts.map((a) => `${a.kind}:${a.subject}`).sort(), ['coin-tube-low:25', 'slot-empty:A1']);
        const a = list.alerts.find((x) => x.kind === 'slot-empty')!;
        assert.equal(a.machine, m);
        assert.equal(typeof a.id, 'number');
        assert.deepEqual(a.detail, { qty: 0, capacity: 10 });
        assert.equal(a.closedAt, null);
        const byKind = (await call('GET', `/machines/${m}/alerts?kind=coin-tube-low`, viewer)).json() as { alerts: Alert[] };
        assert.deepEqual(byKind.alerts.map((x) => x.subject), ['25']);
        assert.equal((await call('GET', `/machines/${m}/alerts?limit=1`, viewer)).json().alerts.length, 1);
        assert.equal((await call('GET', '/alerts?state=nope', viewer)).statusCode, 400);
        assert.equal((await call('GET', '/alerts?kind=fire', viewer)).statusCode, 400);
        assert.equal((await call('GET', '/machines/nope/alerts', viewer)).statusCode, 404);
        const machines = (await call('GET', '/machines', viewer)).json() as { machines: { id: string; openAlerts: number }[] };
        assert.equal(machines.machines.find((x) => x.id === m)!.openAlerts, 2);
        const machine = (await call('GET', `/machines/${m}`, viewer)).json() as { alerts: Alert[] };
        assert.equal(machine.alerts.length, 2);
        const doc = (await call('GET', '/docs/json', undefined)).json() as { paths: Record<string, unknown> };
        for (const p of ['/alerts', '/machines/{id}/alerts', '/alert-rules', '/machines/{id}/alert-rules']) assert.ok(doc.paths[p], `${p} documented`);

        // Bad rules
        const bad: [unknown, RegExp][] = [
          [{ lowStock: { percent: 500 } }, /percent/],
          [{ lowStock: { percent: 'lots' } }, /percent/],
          [{ lowStock: { slots: { 'a-1': 2 } } }, /property name|propertyNames|pattern/i],
          [{ coinTubeLow: { byValue: { '25': -1 } } }, /byValue/],
          [{ offline: { intervals: 0 } }, /intervals/],
          [{ temperature: { min: 12, max: 3 } }, /temperature.min/],
          [{ kinds: { fire: false } }, /additional/],
          [{ threshold: 3 }, /additional/],
        ];
        for (const [body, message] of bad) {
          const r = await call('PUT', `/machines/${m}/alert-rules`, operator, body);
          assert.equal(r.statusCode, 400, `${JSON.stringify(body)}: ${r.body}`);
          assert.match(r.json().message, message, JSON.stringify(body));
        }
        assert.equal((await call('PUT', `/machines/${m}/alert-rules`, viewer, {})).statusCode, 403);
        assert.equal((await call('PUT', '/alert-rules', operator, {})).statusCode, 403);
        assert.equal((await call('PUT', '/machines/nope/alert-rules', operator, {})).statusCode, 404);

        // A machine's own rules apply at once.
        const put = await call('PUT', `/machines/${m}/alert-rules`, operator, { coinTubeLow: { byValue: { '25': 2 } }, kinds: { 'slot-empty': false } });
        assert.equal(put.statusCode, 200, put.body);
        const got = put.json() as { rules: unknown; effective: { coinTubeLow: { coins: number; byValue: Record<string, number> }; kinds: Record<string, boolean> } };
        assert.deepEqual(got.rules, { coinTubeLow: { byValue: { '25': 2 } }, kinds: { 'slot-empty': false } });
        assert.deepEqual(got.effective.coinTubeLow, { coins: 5, byValue: { '25': 2 } });
        assert.equal(got.effective.kinds['slot-empty'], false);
        assert.deepEqual(await open(m), [], 'judged again without waiting for telemetry');
        const read = (await call('GET', `/machines/${m}/alert-rules`, viewer)).json() as { rules: unknown };
        assert.deepEqual(read.rules, got.rules);
        const closed = (await call('GET', `/machines/${m}/alerts?state=closed`, viewer)).json() as { alerts: Alert[] };
        assert.equal(closed.alerts.length, 2);
        assert.equal((await call('PUT', `/machines/${m}/alert-rules`, operator, {})).statusCode, 200);
        assert.deepEqual(await open(m), ['coin-tube-low:25', 'slot-empty:A1']);
        assert.equal((await call('GET', `/machines/${m}/alerts?state=all`, viewer)).json().alerts.length, 4);

        // The fleet's rules, for admins, applied to every machine.
        const fleet = (await call('GET', '/alert-rules', viewer)).json() as { rules: unknown; effective: { temperature: unknown }; defaults: { temperature: unknown } };
        assert.deepEqual(fleet.rules, {});
        assert.deepEqual(fleet.defaults.temperature, { min: 0, max: 10 });
        const warm = await call('PUT', '/alert-rules', admin, { temperature: { max: 4 } });
        assert.equal(warm.statusCode, 200, warm.body);
        await gw.alerts!.idle();
        assert.deepEqual(await open(m), ['coin-tube-low:25', 'slot-empty:A1', 'temperature:']);
        assert.equal((await call('PUT', '/alert-rules', admin, {})).statusCode, 200);
        await gw.alerts!.idle();
        assert.deepEqual(await open(m), ['coin-tube-low:25', 'slot-empty:A1']);

        // Random junk never gets a 500, and every refusal says why.
        const rnd = prng(6006);
        const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
        const values: unknown[] = [0, -1, 1, 5, 1e9, -1e9, 1.5, '1', '', null, true, [], {}, 'A1', "1' OR '1'='1", 'x'.repeat(3000)];
        const groups = ['kinds', 'lowStock', 'coinTubeLow', 'temperature', 'offline', 'journal', 'commandsRejected', 'other'];
        const fields = ['percent', 'slots', 'coins', 'byValue', 'min', 'max', 'intervals', 'defaultIntervalS', 'fillPercent', 'count', 'windowMinutes', 'offline', 'A1', '25'];
        for (let i = 0; i < 300; i++) {
          const url = pick([
            () => `/alerts?state=${pick(['open', 'all', 'x', ''])}&limit=${pick(['1', '0', '-1', 'abc', '1000', '1001'])}`,
            () => `/alerts?machine=${encodeURIComponent(pick([m, '', "x' OR 1=1", 'x'.repeat(80)]))}&kind=${pick(['low-stock', 'offline', 'nope'])}`,
            () => `/machines/${encodeURIComponent(pick([m, 'nope', '..', "m'--"]))}/alerts?state=${pick(['closed', 'open', '1'])}`,
            () => `/machines/${encodeURIComponent(pick([m, 'nope', '%00']))}/alert-rules`,
            () => '/alert-rules',
          ])();
          const method = url.includes('alert-rules') && rnd() < 0.7 ? 'PUT' : 'GET';
          const inner = () => ({ [pick(fields)]: pick([...values, { [pick(['A1', '25', 'a-1', '0'])]: pick(values) }]) });
          const body = method === 'PUT' ? pick([() => ({ [pick(groups)]: pick([inner(), ...values]) }), () => pick(values), () => ({})])() : undefined;
          const r = await api.inject({ method, url, headers: { authorization: `Bearer ${admin}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
          assert.ok(r.statusCode < 500, `${method} ${url} ${JSON.stringify(body)?.slice(0, 80)} -> ${r.statusCode} ${r.body.slice(0, 200)}`);
          if (r.statusCode >= 400) assert.equal(typeof (r.json() as { message?: unknown }).message, 'string', r.body);
        }
        // Whatever the fuzzing set, put the rules back.
        await call('PUT', '/alert-rules', admin, {});
        await call('PUT', `/machines/${m}/alert-rules`, admin, {});
      } finally {
        await api.close();
      }
    });
  });
}

// ---- a simulated machine ------------------------------------------------------------------------

for (const backend of BACKENDS) {
  describe(`alerts from a simulated machine: ${backend.name}`, function () {
    this.timeout(480000);
    let b: Backend;
    let gw: Gateway;
    let host: MachineHost;
    const id = `ae${process.pid % 10000}x${Math.floor(Math.random() * 1e6)}`;

    before(async () => {
      b = await backend.open();
      gw = await Gateway.start({ mqttUrl: b.mqttUrl, db: b.db, shareGroup: b.shareGroup, alerts: { sweepMs: 0 } });
      const p = await gw.commands.provision(id);
      host = await MachineHost.start(usMachine(), { target: 'sim', machineId: id, network: { url: b.mqttUrl }, config: { commandKey: p.commandKey, commandKeyId: p.commandKeyId } });
      await synced(host, 120000);
    });
    after(async () => {
      await host?.close();
      await gw?.close();
      await b?.close();
    });

    const open = async (): Promise<string[]> => (await listAlerts(b.db, { machine: id })).map((a) => `${a.kind}:${a.subject}`).sort();

    /** Run the machine until `check` holds on its open alerts (bounded in real time: the machine paces itself). */
    // Real-time bounds are generous: a loaded CI machine slows the paced simulator, and passing runs never wait them out.
    async function until(what: string, check: (open: string[]) => boolean, realMs = 150000): Promise<string[]> {
      let now: string[] = [];
      for (const end = Date.now() + realMs; Date.now() < end; ) {
        await gw.ingester.flush();
        await gw.alerts!.idle();
        now = await open();
        if (check(now)) return now;
        await host.run(200);
      }
      throw new Error(`${what}: open alerts are ${JSON.stringify(now)}`);
    }

    async function settle(c: CommandRecord): Promise<CommandRecord> {
      for (const end = Date.now() + 150000; Date.now() < end; ) {
        await gw.ingester.flush();
        const now = await gw.commands.get(c.id);
        if (now && now.status !== 'queued' && now.status !== 'delivered') return now;
        await host.run(200);
      }
      throw new Error(`command ${c.type} never settled`);
    }

    it('sees the empty slot, the slot sold empty, and both closed by a restock', async () => {
      // C2 comes empty in the machine's description.
      // Telemetry sent while the changer was still starting up may show it offline and its tubes empty for a moment;
      // the machine reports again as soon as its devices are up, and those alerts close.
      assert.deepEqual(await until('slot-empty C2 alone', (o) => o.length === 1 && o[0] === 'slot-empty:C2'), ['slot-empty:C2'], 'nothing else is wrong with it');
      const vend = await settle(await gw.commands.issue(id, 'vend', { slot: 'B4', quantity: 3 }));
      assert.equal(vend.status, 'applied', JSON.stringify(vend.outcome));
      const sold = await until('slot-empty B4', (o) => o.includes('slot-empty:B4'));
      assert.ok(!sold.includes('low-stock:B4'), 'an empty slot is empty, not low');
      const empty = (await listAlerts(b.db, { machine: id, kind: 'slot-empty' })).find((a) => a.subject === 'B4')!;
      assert.match(empty.message, /Slot B4 \(Coke\) is empty/);

      const restock = await settle(await gw.commands.issue(id, 'restock', { slots: { B4: { qty: 8 }, C2: { qty: 6 } } }));
      assert.equal(restock.status, 'applied', JSON.stringify(restock.outcome));
      await until('both closed', (o) => !o.some((k) => k.startsWith('slot-empty:')));
      const closed = await listAlerts(b.db, { machine: id, kind: 'slot-empty', state: 'closed' });
      assert.deepEqual(closed.map((a) => a.subject).sort(), ['B4', 'C2']);
    });

    it('sees the cabinet warm up and cool down again', async () => {
      host.setTemperature(14);
      await settle(await gw.commands.issue(id, 'report'));
      await until('temperature', (o) => o.includes('temperature:'));
      const t = (await listAlerts(b.db, { machine: id, kind: 'temperature' }))[0]!;
      assert.equal(t.detail['temperature'], 14);
      host.setTemperature(4.5);
      await settle(await gw.commands.issue(id, 'report'));
      await until('temperature closed', (o) => !o.includes('temperature:'));
    });
  });
}
