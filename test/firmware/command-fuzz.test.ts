/**
 * Fuzzing the machine's command input: random bytes, damaged signed
 * commands, and well-signed commands whose fields have random types and
 * values. Nothing may throw, only commands that are both genuine and valid
 * may change anything, and every change stays within the bounds the books
 * allow. Seeded, so a failure replays.
 */
import { REFUSED_NO_SLOTS } from '../../firmware/command/vocabulary.js';
import { Commander, type CommandTarget } from '../../firmware/command/commander.js';
import { HmacSha256 } from '../../firmware/crypto/hmac.js';
import { Journal } from '../../firmware/journal/journal.js';
import { Ledger, layoutHash } from '../../firmware/journal/ledger.js';
import { encodeUtf8 } from '../../firmware/text/utf8.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';
import { equal, ok, prng } from '../lib/assert.js';

const CODES = ['A1', 'A2', 'B1'];
const KEY = new Uint8Array(32).map((_, i) => 200 - i);

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
  return s;
}

function signed(text: string): Uint8Array {
  const body = new Uint8Array(encodeUtf8(text));
  const head = new Uint8Array(encodeUtf8(`VF1 1 ${hex(new HmacSha256(KEY).sign(body))}\n`));
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

describe('command input fuzzing (firmware)', () => {
  it('survives random, damaged and ill-typed commands, and changes only what valid ones allow', () => {
    const rnd = prng(20261124);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
    const clock = { t: 0, now(): number { return this.t; } };
    const qty = new Uint16Array([5, 5, 5]);
    const prices = new Int32Array([100, 150, 200]);
    const capacity = new Uint16Array([10, 10, 10]);
    const ledger = new Ledger(qty, new Uint8Array(3), layoutHash(CODES), { prices, capacity });
    const geometry = { size: 64 * 1024, blockLength: 4096, writeAlign: 4 };
    const flash = new FlashImage(geometry);
    const journal = new Journal(flash, ledger, clock);
    journal.open();
    let vends = 0;
    const target: CommandTarget = {
      journal,
      ledger,
      codes: CODES,
      maxQuantity: 5,
      canReboot: false,
      canAudit: true,
      audit: (issued) => {
        journal.auditRead(ledger.auditReads + 1, issued);
        return ledger.auditReads;
      },
      commandApplied: () => {},
      remoteVend: () => {
        vends++;
        return 0;
      },
      report: () => {},
      reboot: () => {},
      update: () => REFUSED_NO_SLOTS,
    };
    const commander = new Commander(target, 'vm-f', { kid: 1, key: KEY });
    const values: unknown[] = [0, -1, 1, 7, 125, 999, 1000, 1e6, 1e6 + 1, 2 ** 32, 1.5, NaN, '125', '', 'A1', null, true, [], {}, [1, 2], { A1: 1 }, 'x'.repeat(300), "'; DROP TABLE--"];
    const types = ['set-prices', 'restock', 'lock', 'unlock', 'set-config', 'report', 'vend', 'rotate-key', 'reboot', 'audit', 'nope', '', 42];
    const argKeys = ['prices', 'slots', 'slot', 'quantity', 'price', 'kid', 'key', 'telemetryIntervalMs', 'sessionTimeoutMs', 'changePolicy', 'A1', 'Z9'];
    let n = 1;
    let genuine = 0;
    for (let i = 0; i < 1500; i++) {
      clock.t += 1000;
      let payload: Uint8Array;
      const shape = rnd();
      if (shape < 0.15) {
        payload = new Uint8Array(Math.floor(rnd() * 200)).map(() => Math.floor(rnd() * 256));
      } else {
        const args: Record<string, unknown> = {};
        for (let k = Math.floor(rnd() * 3); k > 0; k--) {
          const key = pick(argKeys);
          args[key] = rnd() < 0.3 ? { [pick(['A1', 'A2', 'B1', 'Z9', '__proto__'])]: rnd() < 0.5 ? pick(values) : { qty: pick(values), price: pick(values), capacity: pick(values) } } : pick(values);
        }
        const type = pick(types);
        if (rnd() < 0.3) {
          // Well-formed arguments for the type, so the apply paths run too.
          const slot = pick(CODES);
          if (type === 'vend') Object.assign(args, { slot, quantity: 1 + Math.floor(rnd() * 3) });
          if (type === 'set-prices') Object.assign(args, { prices: { [slot]: 1 + Math.floor(rnd() * 500) } });
          if (type === 'restock') Object.assign(args, { slots: { [slot]: { qty: Math.floor(rnd() * 10) } } });
          if (type === 'set-config') Object.assign(args, { telemetryIntervalMs: 60000 });
        }
        const body: Record<string, unknown> = { machine: rnd() < 0.95 ? 'vm-f' : pick(['vm-g', '', 5]), n: rnd() < 0.9 ? n++ : pick([0, -1, 1.5, NaN, '7', '', null, true, [], {}, 2 ** 32]), type, issued: 1764000000 + i, expires: rnd() < 0.95 ? 1764000000 + i + 600 : pick(values), args };
        if (rnd() < 0.1) delete body[pick(['machine', 'n', 'type', 'issued', 'expires'])];
        payload = signed(JSON.stringify(body));
        if (shape < 0.35) payload[Math.floor(rnd() * payload.length)] ^= 1 << Math.floor(rnd() * 8);
        else genuine++;
      }
      const before = journal.log.lastSeq;
      commander.receive(payload);
      ok(journal.log.lastSeq - before <= 4, 'a command writes a few records at most');
      for (let s = 0; s < 3; s++) {
        ok(prices[s]! >= 1 && prices[s]! <= 1000000, `price of slot ${s} in bounds: ${prices[s]}`);
        ok(capacity[s]! >= 1 && capacity[s]! <= 999 && qty[s]! <= capacity[s]!, `stock of slot ${s} within capacity: ${qty[s]}/${capacity[s]}`);
      }
      equal(ledger.credit, 0, 'commands never touch credit');
    }
    equal(commander.stats.received, 1500);
    ok(commander.stats.applied > 50, `${commander.stats.applied} applied of ${genuine} genuine`);
    ok(commander.stats.rejected > 200, `${commander.stats.rejected} rejected`);
    ok(vends > 0, 'some valid vends got through to the machine');
    // The journal still replays to the same books.
    const qty2 = new Uint16Array(3);
    const prices2 = new Int32Array(3);
    const again = new Ledger(qty2, new Uint8Array(3), layoutHash(CODES), { prices: prices2, capacity: new Uint16Array(3) });
    new Journal(new FlashImage(geometry, flash.bytes), again, clock).open();
    equal(Array.from(prices2).join(','), Array.from(prices).join(','));
    equal(Array.from(qty2).join(','), Array.from(qty).join(','));
    equal(again.commandHigh, ledger.commandHigh);
    equal(again.locked, ledger.locked);
  });
});
