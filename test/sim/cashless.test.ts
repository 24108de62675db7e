/**
 * Card purchases on a simulated machine: the firmware bundle behind the HAL
 * bridge talking real MDB bytes to the simulated cashless reader, on both
 * targets (Node and XS). Faults at the reader (a reset between approval and
 * success, silence, denials), and power cuts at every card-related flash
 * write: the product is never dispensed twice, the card never charged
 * twice, and the books balance against what the reader charged.
 */
import { strict as assert } from 'node:assert';
import { describeRecord, type Described } from '../../firmware/uplink/describe.js';
import { FlashLog } from '../../firmware/journal/log.js';
import { R_CARD_APPROVED, R_CARD_RESULT, R_VEND_FAIL, R_VEND_OK, R_VEND_START, isMeta } from '../../firmware/journal/records.js';
import { FlashImage } from '../../hal-sim/guest/flash-image.js';
import { MachineHost } from '../../hal-sim/host.js';
import { CutCampaign } from '../../hal-sim/power-cuts.js';
import type { MachineSpec } from '../../hal-sim/rig.js';
import { Random } from '../../hal-sim/scheduler.js';
import type { TargetName } from '../../hal-sim/transport.js';
import { WireCapture } from '../../tools/mdb/capture.js';
import { decodeCapture, formatDecoded } from '../../tools/mdb/decode.js';
import { checkCut } from '../../hal-sim/cut-check.js';
import { checkInvariants } from '../../hal-sim/invariants.js';
import { usMachine } from './fixtures.js';

function cardMachine(cashless: MachineSpec['cashless'] = { funds: 1000 }): MachineSpec {
  return usMachine(cashless ? { cashless } : {});
}

/** The journal's events as the gateway will see them. */
function journal(host: MachineHost): Described[] {
  const codes = host.rig.spec.slots.map((s) => s.code);
  const log = new FlashLog(new FlashImage(host.flash.geometry, host.flash.bytes), () => 0);
  const out: Described[] = [];
  log.recover((type, seq, time, d, o, len) => {
    if (!isMeta(type)) out.push(describeRecord(type, seq, time, d, o, len, codes));
  }, true);
  return out;
}

/** The card and vend events, as `type slot [amount|price] [outcome]`. */
function cardTrail(host: MachineHost): string[] {
  return journal(host)
    .filter((e) => ['card-approved', 'card-result', 'vend-start', 'vend-ok', 'vend-fail', 'vend-uncertain'].includes(String(e['type'])))
    .map((e) => [e['type'], e['slot'], e['amount'] ?? e['price'], e['outcome']].filter((x) => x !== undefined).join(' '));
}

async function buyByCard(host: MachineHost, code: string): Promise<void> {
  assert.ok(host.tapCard(), 'the reader took the card');
  await host.runUntilIdle();
  host.select(code);
  await host.runUntilIdle();
}

for (const target of ['sim', 'xs'] as TargetName[]) {
  describe(`card purchases on target ${target}`, () => {
    let host: MachineHost;
    afterEach(async () => {
      await host?.close();
    });

    it('pays by card: approval journaled before the vend, charged once, cash untouched', async () => {
      host = await MachineHost.start(cardMachine(), { target });
      const st0 = await host.status();
      assert.deepEqual(st0.devices, { changer: true, bill: true, cashless: true });
      await buyByCard(host, 'A1');
      assert.deepEqual(host.rig.delivered, ['A1']);
      assert.deepEqual(host.rig.reader!.charged, [125]);
      assert.deepEqual(cardTrail(host), ['card-approved A1 125', 'vend-start A1 125', 'vend-ok A1 125', 'card-result A1 125 success']);
      const st = await checkInvariants(host);
      assert.equal(st.counters.cashlessSales, 1);
      assert.equal(st.counters.cashlessRevenue, 125);
      assert.equal(st.counters.sales, 0);
      assert.equal(st.credit, 0);
      assert.equal(host.rig.changer!.paidValue, 0);
      // The reader saw the whole conversation in order.
      assert.equal(host.rig.reader!.sessions, 1);
      assert.equal(host.rig.reader!.state, 3, 'enabled again, no session');
    });

    it('a jam: VEND FAILURE, the reader refunds, the slot is out of service', async () => {
      host = await MachineHost.start(cardMachine(), { target });
      host.jam('A1');
      await buyByCard(host, 'A1');
      assert.deepEqual(host.rig.delivered, []);
      assert.deepEqual(host.rig.reader!.charged, []);
      assert.equal(host.rig.reader!.refunds, 1);
      assert.deepEqual(cardTrail(host), ['card-approved A1 125', 'vend-start A1 125', 'vend-fail A1', 'card-result A1 125 refunded']);
      const st = await checkInvariants(host);
      assert.equal(st.slots.find((s) => s.code === 'A1')!.outOfService, true);
    });

    it('the reader resets between VEND APPROVED and VEND SUCCESS: one sale, charged once by the reset', async () => {
      host = await MachineHost.start(cardMachine({ funds: 1000, fault: 'reset-after-approval' }), { target });
      await buyByCard(host, 'B4');
      assert.deepEqual(host.rig.delivered, ['B4']);
      assert.deepEqual(host.rig.reader!.charged, [175]);
      assert.deepEqual(cardTrail(host), ['card-approved B4 175', 'vend-start B4 175', 'vend-ok B4 175', 'card-result B4 175 sold-reader-reset']);
      const st = await checkInvariants(host);
      assert.equal(st.counters.cashlessSales, 1);
      await buyByCard(host, 'A1');
      assert.deepEqual(host.rig.reader!.charged, [175, 125]);
      await checkInvariants(host);
    });

    it('the reader resets right after VEND SUCCESS: the result stands, charged once', async () => {
      host = await MachineHost.start(cardMachine({ funds: 1000, fault: 'reset-after-success' }), { target });
      await buyByCard(host, 'A1');
      assert.deepEqual(host.rig.reader!.charged, [125]);
      assert.deepEqual(cardTrail(host).slice(-1), ['card-result A1 125 success']);
      await host.run(2000);
      await buyByCard(host, 'A1');
      assert.deepEqual(host.rig.reader!.charged, [125, 125]);
      await checkInvariants(host);
    });

    it('the reader resets after approving a vend that then jams: recorded as owed to the customer', async () => {
      host = await MachineHost.start(cardMachine({ funds: 1000, fault: 'reset-after-approval' }), { target });
      host.jam('A1');
      await buyByCard(host, 'A1');
      assert.deepEqual(host.rig.delivered, []);
      assert.deepEqual(host.rig.reader!.charged, [125], 'the reset counted as a success at the reader');
      assert.deepEqual(cardTrail(host), ['card-approved A1 125', 'vend-start A1 125', 'vend-fail A1', 'card-result A1 125 unrefunded']);
      const st = await checkInvariants(host);
      assert.equal(st.counters.cashlessUnrefunded, 125);
      assert.equal(st.counters.cashlessSales, 0);
    });

    it('a denial keeps the session; cancel at the reader ends it; nothing is charged', async () => {
      host = await MachineHost.start(cardMachine({ funds: 150 }), { target });
      assert.ok(host.tapCard());
      await host.runUntilIdle();
      host.select('B4');
      let st = await host.runUntilIdle();
      assert.equal(st.state, 'ACCEPTING_PAYMENT');
      assert.match(host.rig.display.text(), /Card declined/);
      host.cancelCard();
      st = await host.runUntilIdle();
      assert.equal(st.state, 'IDLE');
      assert.equal(host.rig.reader!.denials, 1);
      assert.deepEqual(host.rig.reader!.charged, []);
      assert.deepEqual(cardTrail(host), []);
      await checkInvariants(host);
    });

    it('the session times out like cash credit does', async () => {
      host = await MachineHost.start(cardMachine(), { target });
      assert.ok(host.tapCard());
      await host.runUntilIdle();
      await host.run(31000);
      const st = await host.runUntilIdle();
      assert.equal(st.state, 'IDLE');
      assert.equal(host.rig.reader!.state, 3, 'the reader ended its session');
    });

    it('a silent reader goes offline and the machine sells for cash meanwhile; it sells by card again once back', async () => {
      host = await MachineHost.start(cardMachine(), { target });
      host.rig.reader!.silence(15000);
      await host.run(6000);
      let st = await host.status();
      assert.equal(st.devices.cashless, false);
      assert.equal(st.state, 'IDLE');
      host.select('A1');
      await host.runUntilIdle();
      host.insertCoin(100);
      await host.runUntilIdle();
      host.insertCoin(25);
      st = await host.runUntilIdle();
      assert.equal(st.counters.sales, 1);
      await host.run(20000);
      st = await host.status();
      assert.equal(st.devices.cashless, true);
      await buyByCard(host, 'A1');
      assert.deepEqual(host.rig.reader!.charged, [125]);
      await checkInvariants(host);
    });

    it('a multi-vend by card: one approval and one VEND SUCCESS per item', async () => {
      host = await MachineHost.start(cardMachine(), { target });
      host.select('A1', 2);
      await host.runUntilIdle();
      assert.ok(host.tapCard());
      const st = await host.runUntilIdle();
      assert.deepEqual(host.rig.delivered, ['A1', 'A1']);
      assert.deepEqual(host.rig.reader!.charged, [125, 125]);
      assert.equal(host.rig.reader!.sessions, 1, 'one session');
      assert.equal(st.counters.cashlessSales, 2);
      assert.deepEqual(cardTrail(host).filter((e) => e.startsWith('card')), ['card-approved A1 125', 'card-result A1 125 success', 'card-approved A1 125', 'card-result A1 125 success']);
      await checkInvariants(host);
    });

    it('a machine with only a card reader sells', async () => {
      host = await MachineHost.start({ currency: 'EUR', slots: [{ code: 'A1', product: 'Chips', price: 150, qty: 2 }], cashless: { funds: 500 } }, { target });
      const st0 = await host.status();
      assert.equal(st0.state, 'IDLE');
      await buyByCard(host, 'A1');
      assert.deepEqual(host.rig.delivered, ['A1']);
      assert.deepEqual(host.rig.reader!.charged, [150]);
      await checkInvariants(host);
    });
  });
}

describe('the reader conversation on the wire', () => {
  it('decodes with no protocol violation in the bench decoder (an independent reading of MDB)', async () => {
    const capture = new WireCapture();
    const host = await MachineHost.start(cardMachine({ funds: 1000 }), { onWire: (d, w, t) => capture.add(d, w, t) });
    try {
      await buyByCard(host, 'A1');
      host.jam('B4');
      await buyByCard(host, 'B4');
      assert.ok(host.tapCard());
      await host.runUntilIdle();
      host.select('A1', 2);
      await host.runUntilIdle();
      host.cancel();
      await host.runUntilIdle();
      host.rig.reader!.armFault({ after: 'approval', kind: 'reset' });
      await buyByCard(host, 'A1');
      // A1; B4 jammed (refunded); two A1; A1 again, charged by the reset after its approval.
      assert.deepEqual(host.rig.reader!.charged, [125, 125, 125, 125]);
      assert.equal(host.rig.reader!.refunds, 1);
      assert.deepEqual(host.rig.delivered, ['A1', 'A1', 'A1', 'A1']);
    } finally {
      await host.close();
    }
    const r = decodeCapture(capture.frames);
    const flagged = r.frames.filter((d) => d.flags.length > 0).map((d) => formatDecoded(d));
    assert.equal(r.summary.violations, 0, flagged.join('\n'));
    assert.equal(r.summary.warnings, 0, flagged.join('\n'));
    const reader = r.summary.devices['cashless #1']!;
    assert.ok(reader.data >= 8, `${reader.data} data answers from the reader`);
  });
});

describe('power cuts during card purchases', () => {
  let campaign: CutCampaign;
  const FLASH = { size: 32 * 1024, blockLength: 2048, writeAlign: 4 };

  before(async () => {
    // Card purchases (one jams), a cash one between them, then more cards.
    campaign = await CutCampaign.record(cardMachine({ funds: 5000 }), { target: 'sim', seed: 3, flash: FLASH }, async (host) => {
      await buyByCard(host, 'A1');
      host.select('B4');
      await host.runUntilIdle();
      host.insertBill(100);
      await host.runUntilIdle();
      host.insertCoin(100);
      await host.runUntilIdle();
      host.jam('B4');
      await buyByCard(host, 'B4');
      await buyByCard(host, 'A1');
    });
  });

  /** The flash writes of card approvals, vend starts and outcomes, and card results. */
  function cardOps(): number[] {
    const kinds = new Set([R_CARD_APPROVED, R_CARD_RESULT, R_VEND_START, R_VEND_OK, R_VEND_FAIL]);
    const out: number[] = [];
    for (let k = 0; k < campaign.total; k++) {
      const op = campaign.ops[k]!;
      if (op.kind === 'write' && kinds.has(op.data[0]!)) out.push(k);
    }
    return out;
  }

  it('records the card conversation in the journal', () => {
    const ops = cardOps();
    // Three card vends: approval, start, outcome, result each (the cash sale adds its start and outcome).
    assert.ok(ops.length >= 14, `${ops.length} card-related writes`);
  });

  it('recovers from a cut at every card-related write, at its start, in the middle and at its end (sim)', async () => {
    const rnd = new Random(11);
    const ops = cardOps();
    const seen = { uncertain: 0, restored: 0 };
    for (const k of ops) {
      const len = campaign.length(k);
      for (const bytes of [0, 1, len >> 1, len]) {
        const out = await checkCut(campaign, k, bytes, rnd, 1);
        seen.uncertain += out.uncertainVends;
      }
      // Left alone after the reboot, the machine dispenses nothing and charges nothing: what the cut caught is settled, never redone.
      const at = campaign.physical[k]!;
      const host = await campaign.boot(k, len >> 1);
      try {
        await host.runUntilIdle();
        await host.run(35000);
        await host.runUntilIdle();
        assert.deepEqual(host.rig.delivered, at.delivered, `cut at op ${k}: dispensed again`);
        assert.deepEqual(host.rig.reader!.charged, at.card!.charged, `cut at op ${k}: charged again`);
      } finally {
        await host.close();
      }
    }
    process.stdout.write(`      ${ops.length * 4} cuts at card-related writes: uncertain vends ${seen.uncertain}\n`);
  });

  it('a cut just after the approval was journaled: nothing dispensed, nothing charged twice, the refund owed is recorded', async () => {
    const k = cardOps().find((i) => {
      const op = campaign.ops[i]!;
      return op.kind === 'write' && op.data[0] === R_CARD_APPROVED;
    })!;
    // Journal before effect: at that write the VMC had not yet acknowledged the approval, and the motor had not turned.
    assert.deepEqual(campaign.physical[k]!.card!.charged, []);
    assert.deepEqual(campaign.physical[k]!.delivered, []);
    const start = campaign.ops.findIndex((op, i) => i > k && op.kind === 'write' && op.data[0] === R_VEND_START);
    assert.ok(start > k, 'the vend start follows the approval');
    const host = await campaign.boot(k, campaign.length(k));
    try {
      await host.runUntilIdle();
      assert.deepEqual(host.rig.delivered, [], 'no dispense after the reboot');
      const trail = cardTrail(host);
      assert.deepEqual(trail.slice(-2), ['card-approved A1 125', 'card-result A1 125 not-dispensed']);
      const st = await checkInvariants(host);
      assert.equal(st.counters.cashlessUnrefunded, 125);
      assert.ok(host.rig.reader!.chargedValue <= 125);
    } finally {
      await host.close();
    }
  });

  it('a cut after the product fell and before VEND SUCCESS: one sale, charged once, nothing vended again', async () => {
    const k = cardOps().find((i) => {
      const op = campaign.ops[i]!;
      return op.kind === 'write' && op.data[0] === R_CARD_RESULT;
    })!;
    // Cut as the result record begins: VEND SUCCESS was acknowledged by the reader (it charged), the result not yet on flash.
    const host = await campaign.boot(k, 0);
    try {
      await host.runUntilIdle();
      assert.deepEqual(host.rig.delivered, ['A1']);
      assert.deepEqual(host.rig.reader!.charged, [125]);
      const trail = cardTrail(host);
      assert.deepEqual(trail, ['card-approved A1 125', 'vend-start A1 125', 'vend-ok A1 125', 'card-result A1 125 sold-reader-reset']);
      const st = await checkInvariants(host);
      assert.equal(st.counters.cashlessSales, 1);
      assert.equal(st.counters.cashlessUnrefunded, 0);
    } finally {
      await host.close();
    }
  });

  it('recovers from cuts at card writes with the firmware under XS', async () => {
    const rnd = new Random(12);
    const ops = cardOps();
    for (let i = 0; i < 5; i++) {
      const k = ops[Math.floor(((i + 0.5) * ops.length) / 5)]!;
      await checkCut(campaign.withTarget('xs'), k, i % 2 === 0 ? campaign.length(k) : 0, rnd, 1);
    }
  });
});
