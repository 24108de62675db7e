/**
 * The bench protocol as the board runs it (firmware/bench): framing, the
 * bounded line reader, request and answer syntax, and the server's rules
 * (answer once, repeat from memory, busy, resynchronise after garbage).
 * Runs in Node and inside XS: no Node APIs, synchronous tests only.
 */
import { checkLine, frameLine, LineReader } from '../../firmware/bench/frame.js';
import { BENCH_PROTOCOL, DEFAULT_SETTLE_MS, errPayload, okPayload, parseAnswer, parseRequest, type BenchAction, type BenchInfo, type BenchMachine, type BenchStatus, type ParsedAnswer } from '../../firmware/bench/protocol.js';
import { BenchServer } from '../../firmware/bench/server.js';
import type { ByteSerial } from '../../firmware/bench/serial.js';
import { benchErr, benchOk, type BenchDone, type BenchTarget, type StepData } from '../../firmware/bench/target.js';
import { decodeUtf8, encodeUtf8 } from '../../firmware/text/utf8.js';
import { deepEqual, equal, ok, prng } from '../lib/assert.js';

const bytes = (s: string): Uint8Array => new Uint8Array(encodeUtf8(s));
const text = (b: Uint8Array): string => decodeUtf8(b.slice().buffer);

const machine: BenchMachine = { currency: 'USD', slots: [{ code: 'A1', product: 'Chips', price: 100, qty: 2 }], changer: { coins: [{ value: 25, tube: 10 }] } };

/** Collect the lines a reader splits out, as text. */
function lines(max: number): { reader: LineReader; got: string[]; overflows: number[] } {
  const got: string[] = [];
  const overflows: number[] = [];
  const reader = new LineReader(max, (line, length) => got.push(text(line.subarray(0, length))), (n) => overflows.push(n));
  return { reader, got, overflows };
}

describe('bench protocol: framing', () => {
  it('appends the CRC-16/ARC of the payload in hex', () => {
    // The check value of CRC-16/ARC.
    equal(text(frameLine('123456789')), '123456789*BB3D\n');
    const line = frameLine('7 status');
    const c = checkLine(line, line.length - 1);
    ok(c.ok, 'a framed line checks');
    if (c.ok) equal(c.payload, '7 status');
  });

  it('carries UTF-8 text', () => {
    const line = frameLine('1 ok {"product":"Café crème"}');
    const c = checkLine(line, line.length - 1);
    ok(c.ok);
    if (c.ok) equal(c.payload, '1 ok {"product":"Café crème"}');
  });

  it('tells a missing checksum from a wrong one', () => {
    const check = (s: string): string => {
      const b = bytes(s);
      const c = checkLine(b, b.length);
      return c.ok ? 'ok' : c.reason;
    };
    equal(check('7 status'), 'missing');
    equal(check('7 status*12G4'), 'missing');
    equal(check('7 status*0000'), 'mismatch');
    equal(check('8 status*' + text(frameLine('7 status')).slice(9, 13)), 'mismatch');
    // Hex digits in either case.
    equal(check(text(frameLine('7 status')).trim().toLowerCase()), 'ok');
  });

  it('splits lines across reads, takes CRLF, skips blank lines', () => {
    const { reader, got } = lines(64);
    reader.push(bytes('1 he'));
    reader.push(bytes('llo\r\n\n\r\n2 st'));
    reader.push(bytes('atus\n'));
    deepEqual(got, ['1 hello', '2 status']);
  });

  it('drops an overlong line whole and resynchronises at the next newline, in a fixed buffer', () => {
    const { reader, got, overflows } = lines(16);
    reader.push(bytes('short\n'));
    const junk = new Uint8Array(100000);
    const rnd = prng(7);
    for (let i = 0; i < junk.length; i++) junk[i] = 0x20 + Math.floor(rnd() * 90);
    reader.push(junk);
    reader.push(bytes('tail\nnext\n'));
    deepEqual(got, ['short', 'next']);
    deepEqual(overflows, [100004]);
    // Exactly the limit still fits.
    reader.push(bytes('0123456789abcdef\n'));
    equal(got[2], '0123456789abcdef');
  });
});

describe('bench protocol: requests and answers', () => {
  const req = (s: string): ReturnType<typeof parseRequest> => parseRequest(s);

  it('parses every verb with its defaults', () => {
    deepEqual(req('1 hello {"version":1}'), { ok: true, id: 1, request: { verb: 'hello', version: 1 } });
    deepEqual(req('2 status'), { ok: true, id: 2, request: { verb: 'status' } });
    deepEqual(req('3 select {"code":"A1"}'), { ok: true, id: 3, request: { verb: 'step', action: { action: 'select', code: 'A1', quantity: 1, settleMs: DEFAULT_SETTLE_MS } } });
    deepEqual(req('4 insertCoin {"value":25,"settleMs":1000}'), { ok: true, id: 4, request: { verb: 'step', action: { action: 'insertCoin', value: 25, settleMs: 1000 } } });
    deepEqual(req('5 wait {"ms":31000}'), { ok: true, id: 5, request: { verb: 'step', action: { action: 'wait', ms: 31000 } } });
    deepEqual(req('6 network {"up":false}'), { ok: true, id: 6, request: { verb: 'step', action: { action: 'network', up: false, settleMs: DEFAULT_SETTLE_MS } } });
    deepEqual(req('7 jam {"code":"A1"}'), { ok: true, id: 7, request: { verb: 'step', action: { action: 'jam', code: 'A1' } } });
    for (const verb of ['tapCard', 'cancel', 'powerCut']) {
      const r = req(`8 ${verb}`);
      ok(r.ok && r.request.verb === 'step' && r.request.action.action === verb, verb);
    }
    const setup = req(`9 setup ${JSON.stringify({ machine, network: true, seed: 4 })}`);
    deepEqual(setup, { ok: true, id: 9, request: { verb: 'setup', machine, network: true, seed: 4 } });
    deepEqual(req('10 end {}'), { ok: true, id: 10, request: { verb: 'end' } });
  });

  it("carries a peripheral's own currency in setup (changer, bill validator, card reader)", () => {
    const foreign: BenchMachine = {
      ...machine,
      changer: { coins: [{ value: 25, tube: 10 }], currency: 'EUR' },
      bills: [100],
      billsCurrency: 'GBP',
      cashless: { funds: 500, currency: 'EUR' },
    };
    deepEqual(req(`11 setup ${JSON.stringify({ machine: foreign, network: false, seed: 1 })}`), { ok: true, id: 11, request: { verb: 'setup', machine: foreign, network: false, seed: 1 } });
    const bad = req(`12 setup ${JSON.stringify({ machine: { ...foreign, billsCurrency: 'pounds' }, network: false, seed: 1 })}`);
    ok(!bad.ok && bad.message.includes('billsCurrency'), JSON.stringify(bad));
  });

  it('says what is wrong with a request, with its id where it has one', () => {
    const cases: [string, number | undefined, RegExp][] = [
      ['hello', undefined, /expected "<id> <verb>/],
      ['x1 status', undefined, /expected "<id> <verb>/],
      ['1  status', undefined, /expected/],
      ['2 fly {}', 2, /unknown verb "fly"/],
      ['3 select {"code":', 3, /not valid JSON/],
      ['4 select ["A1"]', 4, /must be a JSON object/],
      ['5 select {}', 5, /select: "code" must be a non-empty string/],
      ['6 insertCoin {"value":-5}', 6, /"value" must be a positive integer/],
      ['7 wait {"ms":1.5}', 7, /"ms" must be a non-negative integer/],
      ['8 network {"up":"yes"}', 8, /"up" must be true or false/],
      ['9 setup {"machine":{"currency":"usd","slots":[]}}', 9, /machine.currency must be an ISO 4217 code/],
      ['10 setup {"machine":{"currency":"USD","slots":[]}}', 10, /machine.slots must be a list/],
      ['11 hello {}', 11, /"version" must be a positive integer/],
      ['12 select {"code":"A1","settleMs":-1}', 12, /settleMs must be a non-negative integer/],
    ];
    for (const [line, id, pattern] of cases) {
      const r = req(line);
      ok(!r.ok, line);
      if (!r.ok) {
        equal(r.id, id, line);
        ok(pattern.test(r.message), `${line}: ${r.message}`);
      }
    }
  });

  it('formats and parses answers', () => {
    equal(okPayload(3, { credit: 25 }), '3 ok {"credit":25}');
    equal(errPayload(4, 'refused', 'the coin\ncame back'), '4 err refused the coin came back');
    equal(errPayload(undefined, 'checksum', 'dropped'), '! err checksum dropped');
    ok(errPayload(5, 'failed', 'x'.repeat(2000)).length < 420, 'messages are bounded');
    deepEqual(parseAnswer('3 ok {"credit":25}'), { kind: 'ok', id: 3, data: { credit: 25 } });
    deepEqual(parseAnswer('3 ok'), { kind: 'ok', id: 3, data: {} });
    deepEqual(parseAnswer('4 err refused the coin came back'), { kind: 'err', id: 4, code: 'refused', message: 'the coin came back' });
    deepEqual(parseAnswer('! err toolong line dropped'), { kind: 'err', id: undefined, code: 'toolong', message: 'line dropped' });
    for (const junk of ['# [0.1 s] info: booting', 'ets Jun  8 2016 00:22:57', '3 ok {broken', '! ok {}', '']) equal(parseAnswer(junk), undefined, junk);
  });
});

// ---- the server ----------------------------------------------------------------------------

/** A port that records what the board writes. */
class FakePort implements ByteSerial {
  inbox: ArrayBuffer[] = [];
  readonly out: Uint8Array[] = [];
  closed = false;
  read(): ArrayBuffer | undefined {
    return this.inbox.shift();
  }
  write(data: ArrayBuffer | Uint8Array): void {
    this.out.push(data instanceof Uint8Array ? data.slice() : new Uint8Array(data.slice(0)));
  }
  close(): void {
    this.closed = true;
  }
  /** Every line written, parsed; raw lines that are not answers as strings. */
  answers(): (ParsedAnswer | string)[] {
    const got: (ParsedAnswer | string)[] = [];
    const reader = new LineReader(1 << 16, (line, length) => {
      const c = checkLine(line, length);
      const a = c.ok ? parseAnswer(c.payload) : undefined;
      got.push(a ?? text(line.subarray(0, length)));
    }, () => got.push('(overflow)'));
    for (const b of this.out) reader.push(b);
    return got;
  }
}

const status: BenchStatus = { state: 'IDLE', credit: 0, dispensed: [], changePaid: 0, changeCoins: 0, billsReturned: 0, slots: { A1: 2 }, tubes: { '25': 10 }, sales: 0, revenue: 0, unsynced: 0, display: ['Make a selection'], elapsedMs: 0 };

/** A target that records calls and answers when told (the board answers when the hardware has settled). */
class FakeTarget implements BenchTarget {
  readonly info: BenchInfo = { bench: 'fake', clock: 'real', firmware: '0.0.0' };
  readonly calls: string[] = [];
  held: BenchDone<StepData> | undefined;
  hold = false;
  setup(m: BenchMachine, options: { network: boolean; seed: number }, done: BenchDone): void {
    this.calls.push(`setup ${m.slots.length} ${options.network} ${options.seed}`);
    done(benchOk());
  }
  apply(action: BenchAction, done: BenchDone<StepData>): void {
    this.calls.push(action.action);
    if (action.action === 'tapCard') return done(benchErr('unsupported', 'no reader on this bench'));
    if (action.action === 'insertCoin' && action.value === 5) return done(benchErr('refused', 'the changer was not accepting coins'));
    if (action.action === 'jam') throw new Error('beam blocker\nnot wired');
    if (this.hold) {
      this.held = done;
      return;
    }
    done(benchOk());
    done(benchErr('failed', 'a second answer must be ignored'));
  }
  status(done: BenchDone<BenchStatus>): void {
    this.calls.push('status');
    done(benchOk(status));
  }
  end(done: BenchDone): void {
    this.calls.push('end');
    done(benchOk());
  }
}

function rig(): { port: FakePort; target: FakeTarget; server: BenchServer; send(payload: string): void; sendRaw(s: string | Uint8Array): void } {
  const port = new FakePort();
  const target = new FakeTarget();
  let readable: (n: number) => void = () => undefined;
  const server = BenchServer.open(
    {
      openBenchSerial: (o) => {
        readable = o.onReadable;
        return port;
      },
    },
    target,
    { maxLine: 256 },
  );
  const sendRaw = (s: string | Uint8Array): void => {
    const b = typeof s === 'string' ? bytes(s) : s;
    port.inbox.push(b.slice().buffer);
    readable(b.length);
  };
  return { port, target, server, send: (payload) => sendRaw(frameLine(payload)), sendRaw };
}

describe('bench protocol: the board side', () => {
  it('shakes hands, and refuses another protocol version', () => {
    const { port, send } = rig();
    send('1 hello {"version":1}');
    send(`2 hello {"version":${BENCH_PROTOCOL + 1}}`);
    deepEqual(port.answers(), [
      { kind: 'ok', id: 1, data: { protocol: BENCH_PROTOCOL, bench: 'fake', clock: 'real', firmware: '0.0.0', maxLine: 256 } },
      { kind: 'err', id: 2, code: 'version', message: `this board speaks bench protocol ${BENCH_PROTOCOL}, not ${BENCH_PROTOCOL + 1}` },
    ]);
  });

  it('dispatches requests to the target and maps its answers', () => {
    const { port, target, send } = rig();
    send(`1 setup ${JSON.stringify({ machine, seed: 3 })}`);
    send('2 insertCoin {"value":25}');
    send('3 insertCoin {"value":5}');
    send('4 tapCard');
    send('5 status');
    send('6 jam {"code":"A1"}');
    send('7 end');
    deepEqual(target.calls, ['setup 1 false 3', 'insertCoin', 'insertCoin', 'tapCard', 'status', 'jam', 'end']);
    deepEqual(port.answers(), [
      { kind: 'ok', id: 1, data: {} },
      { kind: 'ok', id: 2, data: {} },
      { kind: 'err', id: 3, code: 'refused', message: 'the changer was not accepting coins' },
      { kind: 'err', id: 4, code: 'unsupported', message: 'no reader on this bench' },
      { kind: 'ok', id: 5, data: status },
      { kind: 'err', id: 6, code: 'failed', message: 'beam blocker not wired' },
      { kind: 'ok', id: 7, data: {} },
    ]);
  });

  it('answers a repeated request from memory and never carries it out twice', () => {
    const { port, target, send } = rig();
    send('1 insertCoin {"value":25}');
    send('1 insertCoin {"value":25}');
    send('1 insertCoin {"value":25}');
    deepEqual(target.calls, ['insertCoin']);
    deepEqual(port.answers(), [1, 1, 1].map((id) => ({ kind: 'ok', id, data: {} })));
    // The same id with other content is a new request.
    send('1 cancel');
    deepEqual(target.calls, ['insertCoin', 'cancel']);
  });

  it('ignores repeats of the request under way, answers others busy, and hello at once', () => {
    const { port, target, send, server } = rig();
    target.hold = true;
    send('4 wait {"ms":31000}');
    ok(server.busy);
    send('4 wait {"ms":31000}');
    send('5 status');
    send('6 hello {"version":1}');
    target.held!(benchOk());
    ok(!server.busy);
    send('4 wait {"ms":31000}');
    const a = port.answers();
    deepEqual(a.map((x) => (typeof x === 'string' ? x : `${x.id} ${x.kind}${x.kind === 'err' ? ' ' + x.code : ''}`)), ['5 err busy', '6 ok', '4 ok', '4 ok']);
    deepEqual(target.calls, ['wait']);
  });

  it('reports garbage and overlong lines with "!" and serves the next good line', () => {
    const { port, target, send, sendRaw, server } = rig();
    const rnd = prng(11);
    const noise = (n: number): Uint8Array => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        b[i] = Math.floor(rnd() * 256);
        if (b[i] === 0x0a) b[i] = 0;
      }
      return b;
    };
    sendRaw(noise(2000));
    sendRaw('\n');
    sendRaw(noise(30));
    sendRaw('\n');
    // A request glued to the tail of noise fails its checksum; sent again, it goes through.
    sendRaw(noise(3));
    send('7 status');
    sendRaw('7 status\n');
    send('7 status');
    const codes = port.answers().map((x) => (typeof x === 'string' ? x : x.kind === 'err' ? `${x.id ?? '!'} ${x.code}` : `${x.id} ok`));
    deepEqual(codes, ['! toolong', '! checksum', '! checksum', '! checksum', '7 ok']);
    deepEqual(target.calls, ['status']);
    deepEqual(server.errors, { checksum: 3, toolong: 1, badrequest: 0 });
  });

  it('answers a malformed request with its id', () => {
    const { port, send } = rig();
    send('3 select {}');
    send('select A1');
    deepEqual(port.answers(), [
      { kind: 'err', id: 3, code: 'badrequest', message: 'select: "code" must be a non-empty string' },
      { kind: 'err', id: undefined, code: 'badrequest', message: 'expected "<id> <verb> [<json object>]"' },
    ]);
  });

  it('stops answering once closed', () => {
    const { port, send, server } = rig();
    server.close();
    ok(port.closed);
    send('1 status');
    equal(port.out.length, 0);
  });
});
