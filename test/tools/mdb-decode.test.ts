/**
 * The MDB trace decoder (tools/mdb/: capture, devices, fields, exchange,
 * decode) and its CLI (tools/mdb.ts):
 * hand-written captures for each decoded command and each violation, then
 * the simulator's real wire for a purchase, recorded, decoded, and damaged.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MachineHost } from '../../hal-sim/host.js';
import * as firmwareFrame from '../../firmware/mdb/frame.js';
import { ACK, CHAR_US, CaptureError, MAX_BLOCK, MODE_BIT, NAK, RET, T_RESPONSE_US, WireCapture, formatCaptureLine, parseCapture } from '../../tools/mdb/capture.js';
import { decodeCapture, decodeText, formatDecoded } from '../../tools/mdb/decode.js';
import { DEVICES } from '../../tools/mdb/devices.js';
import { ExchangeTracker, type DecodeResult, type Decoded, type FlagKind } from '../../tools/mdb/exchange.js';
import { usMachine } from '../sim/fixtures.js';

const CLI = fileURLToPath(new URL('../../tools/mdb.js', import.meta.url));

function decode(...lines: string[]): DecodeResult {
  return decodeText(lines.join('\n'));
}

function at(r: DecodeResult, line: number): Decoded {
  const d = r.frames.find((f) => f.frame.line === line);
  assert.ok(d, `no frame on line ${line}`);
  return d;
}

function kinds(d: Decoded): FlagKind[] {
  return d.flags.map((f) => f.kind);
}

/** Lines carrying a flag of this kind. */
function flagged(r: DecodeResult, kind: FlagKind): number[] {
  return r.frames.filter((d) => d.flags.some((f) => f.kind === kind)).map((d) => d.frame.line);
}

function clean(r: DecodeResult): void {
  const flags = r.frames.flatMap((d) => d.flags.map((f) => `line ${d.frame.line}: ${f.text}`));
  assert.deepEqual(flags, []);
}

const CHANGER_INIT = [
  '# changer init, USD',
  '0.001146 > 08! 08',
  '0.004938 < 00!',
  '0.007230 > 0B! 0B',
  '0.011022 < 0B 0B!',
  '0.014460 > 00',
  '0.021690 > 09! 09',
  '0.025482 < 02 18 40 05 02 00 07 01 02 05 14 00 00 00 00 00 00 00 00 00 00 00 00 84!',
  '0.053982 > 00',
  '0.514460 > 0A! 0A',
  '0.518252 < 00 04 14 14 14 00 00 00 00 00 00 00 00 00 00 00 00 00 40!',
  '0.541169 > 00',
  '0.548399 > 0C! 00 0F 00 07 22',
  '0.556774 < 00!',
];

describe('mdb trace: the decoder\'s own reading of the protocol', () => {
  it('agrees with the firmware\'s framing facts, read independently (firmware/mdb/frame.ts)', () => {
    // The decoder keeps its own constants so that it checks the firmware rather than
    // sharing its mistakes; if these differ, one of the two readings of the reference is wrong.
    assert.equal(MODE_BIT, firmwareFrame.MODE_BIT);
    assert.equal(ACK, firmwareFrame.ACK);
    assert.equal(RET, firmwareFrame.RET);
    assert.equal(NAK, firmwareFrame.NAK);
    assert.equal(MAX_BLOCK, firmwareFrame.MAX_BLOCK);
    assert.equal(CHAR_US, firmwareFrame.CHAR_TIME_MS * 1000);
    assert.equal(T_RESPONSE_US, firmwareFrame.RESPONSE_TIMEOUT_MS * 1000);
    assert.equal(DEVICES[firmwareFrame.ADDRESS_CHANGER]!.name, 'changer');
    assert.equal(DEVICES[firmwareFrame.ADDRESS_CASHLESS1]!.name, 'cashless #1');
    assert.equal(DEVICES[firmwareFrame.ADDRESS_BILL]!.name, 'bill validator');
  });

  it('keeps its device tables frozen', () => {
    const poll = DEVICES[0x08]!.commands[3]!;
    assert.ok(Object.isFrozen(DEVICES) && Object.isFrozen(DEVICES[0x08]) && Object.isFrozen(poll));
    assert.throws(() => {
      (poll as { name: string }).name = 'SOMETHING ELSE';
    }, TypeError);
    assert.equal(poll.name, 'POLL');
  });

  it('tracks one capture: no frame after finish(), and finish() once', () => {
    const t = new ExchangeTracker();
    const [command, answer] = parseCapture(['> 0B! 0B', '< 00!'].join('\n'));
    assert.equal(t.add(command!).what, 'POLL');
    assert.equal(t.add(answer!).replyTo, 1);
    assert.equal(t.finish().summary.frames, 2);
    assert.throws(() => t.finish(), /finish\(\) called twice/);
    assert.throws(() => t.add(command!), /after finish\(\)/);
  });
});

describe('mdb trace: capture format', () => {
  it('reads times, both direction spellings, ! and 9-bit mode bits, comments and blank lines', () => {
    const frames = parseCapture(['# a capture', '', '1146 > 08! 08   # RESET', '0.004938 PER 100', 'vmc 10B 00B', '< 0b 10b', '  VMC 00'].join('\n'));
    assert.equal(frames.length, 5);
    assert.deepEqual(
      frames.map((f) => [f.line, f.timeUs, f.dir]),
      [
        [3, 1146, 'vmc'],
        [4, 4938, 'periph'],
        [5, undefined, 'vmc'],
        [6, undefined, 'periph'],
        [7, undefined, 'vmc'],
      ],
    );
    assert.deepEqual(frames[0]!.words, [
      { byte: 0x08, mode: true },
      { byte: 0x08, mode: false },
    ]);
    assert.deepEqual(frames[1]!.words, [{ byte: 0, mode: true }]);
    assert.deepEqual(frames[3]!.words, [
      { byte: 0x0b, mode: false },
      { byte: 0x0b, mode: true },
    ]);
    assert.equal(formatCaptureLine(frames[1]!), '0.004938 < 00!');
    assert.equal(formatCaptureLine(frames[2]!), '> 0B! 0B');
  });

  it('lists every unreadable line with its number', () => {
    const text = ['> 0B! 0B', 'sideways 0B', '> 0G', '< ', '0.5', '> 20B', '> 0B!! 0B', '< 00!'].join('\n');
    assert.throws(
      () => parseCapture(text),
      (e: unknown) => {
        assert.ok(e instanceof CaptureError);
        assert.deepEqual(
          e.errors.map((x) => x.line),
          [2, 3, 4, 5, 6, 7],
        );
        assert.match(e.errors[0]!.message, /not a time .* nor a direction|direction/);
        assert.match(e.errors[1]!.message, /"0G" is not a byte/);
        assert.match(e.errors[2]!.message, /direction/);
        assert.match(e.message, /^line 2: /);
        return true;
      },
    );
  });

  it('groups wire words into frames: mode bit starts a VMC block and ends a peripheral one', () => {
    const c = new WireCapture();
    const CH = 1146;
    let t = 1000;
    const put = (dir: 'vmc' | 'periph', ...words: number[]): void => {
      for (const w of words) c.add(dir, w, (t += CH));
    };
    put('vmc', 0x10b, 0x0b);
    t += 1500;
    put('periph', 0x52, 0x15, 0x167);
    t += 1000;
    put('vmc', 0x00);
    put('vmc', 0x10b, 0x0b);
    t += 1500;
    put('periph', 0x100);
    assert.deepEqual(c.toText(['hello']).split('\n'), [
      '# hello',
      '0.002146 > 0B! 0B',
      '0.005938 < 52 15 67!',
      '0.010376 > 00',
      '0.011522 > 0B! 0B',
      '0.015314 < 00!',
      '',
    ]);
    clean(decodeCapture(parseCapture(c.toText())));
  });
});

describe('mdb trace: decoding', () => {
  it('decodes a clean changer init sequence to its fields', () => {
    const r = decode(...CHANGER_INIT);
    clean(r);
    assert.deepEqual(
      r.frames.map((d) => d.what),
      ['RESET', 'ACK', 'POLL', 'POLL data', 'ACK', 'SETUP', 'SETUP data', 'ACK', 'TUBE STATUS', 'TUBE STATUS data', 'ACK', 'COIN TYPE', 'ACK'],
    );
    assert.ok(r.frames.every((d) => d.device === 'changer'));
    assert.deepEqual(at(r, 5).fields, ['changer was reset (just reset)']);
    assert.deepEqual(at(r, 8).fields, ['level 2', 'currency 1840 (USD, ISO 840)', 'scale 5', '2 decimals', 'tube coins 0,1,2', 'coins 0:0.05 1:0.10 2:0.25 3:1.00']);
    assert.equal(at(r, 8).replyTo, 7);
    assert.deepEqual(at(r, 9).fields, ['data on line 8 accepted']);
    assert.deepEqual(at(r, 11).fields, ['full 2', 'counts 0:20 1:20 2:20']);
    assert.deepEqual(at(r, 13).fields, ['accept type 0 (0.05), type 1 (0.10), type 2 (0.25), type 3 (1.00)', 'manual dispense 0,1,2']);
    assert.equal(at(r, 7).checksum, 'ok');
    assert.equal(at(r, 8).checksum, 'ok');
    assert.deepEqual(r.summary.devices['changer'], { commands: 5, data: 3, acks: 2, naks: 0, nonResponses: 0 });
    assert.equal(r.summary.violations, 0);
  });

  it('decodes deposits, manual dispense, DISPENSE and status codes with the values SETUP gave', () => {
    const r = decode(
      ...CHANGER_INIT,
      '> 0B! 0B',
      '< 52 15 43 00 92 13 23 02 0C 80!', // deposit 25 to tubes; 1.00 to cash box; 1 x 0.25 by hand; 3 slugs; busy; jam
      '> 00',
      '> 0D! 32 3F',
      '< 00!',
      '> 0B! 0B',
      '< 00!',
    );
    clean(r);
    assert.deepEqual(at(r, 16).fields, [
      'coin deposited type 2 (0.25) to tubes, 21 in tube',
      'coin deposited type 3 (1.00) to cash box, 0 in tube',
      'dispensed manually 1 x type 2 (0.25), 19 left in tube',
      '3 slugs',
      'payout busy',
      'coin jam',
    ]);
    assert.equal(at(r, 18).what, 'DISPENSE');
    assert.deepEqual(at(r, 18).fields, ['3 x type 2 (0.25)']);
    assert.deepEqual(at(r, 21).fields, ['nothing to report']);
  });

  it('checks the reference worked bytes: enable all coins CHK 08, status reply CHK 2C', () => {
    const r = decode('> 0C! FF FF FF FF 08', '< 00!', '> 0B! 0B', '< 02 00 01 05 02 00 07 01 02 05 14 FF 2C!', '> 00');
    assert.equal(at(r, 1).checksum, 'ok');
    assert.deepEqual(at(r, 1).fields, ['accept 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15', 'manual dispense 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15']);
    assert.equal(at(r, 4).checksum, 'ok');
    assert.equal(r.summary.badChecksums, 0);
  });

  it('decodes a bill held in escrow, stacked on ESCROW, and one returned', () => {
    const r = decode(
      'VMC 131 031',
      'PER 001 018 040 000 064 002 001 0F4 000 000 0FF 001 005 000 000 000 000 000 000 000 000 000 000 000 000 000 000 1B9',
      'VMC 000',
      '> 34! 00 03 00 03 3A',
      '< 00!',
      '> 33! 33',
      '< 91 91!',
      '> 00',
      '> 35! 01 36',
      '< 00!',
      '> 33! 33',
      '< 81 81!',
      '> 00',
      '> 33! 33',
      '< 90 90!',
      '> 00',
      '> 35! 00 35',
      '< 00!',
      '> 33! 33',
      '< A0 06 A6!',
      '> 00',
      '> 36! 36',
      '< 00 01 01!',
      '> 00',
    );
    clean(r);
    assert.ok(r.frames.every((d) => d.device === 'bill validator'));
    assert.deepEqual(at(r, 2).fields, [
      'level 1',
      'currency 1840 (USD, ISO 840)',
      'scale 100',
      '2 decimals',
      'stacker capacity 500',
      'high security none',
      'escrow yes',
      'bills 0:1.00 1:5.00',
    ]);
    assert.deepEqual(at(r, 4).fields, ['enable type 0 (1.00), type 1 (5.00)', 'escrow 0,1']);
    assert.deepEqual(at(r, 7).fields, ['bill type 1 (5.00) in escrow']);
    assert.equal(at(r, 9).what, 'ESCROW');
    assert.deepEqual(at(r, 9).fields, ['stack the bill']);
    assert.deepEqual(at(r, 12).fields, ['bill type 1 (5.00) stacked']);
    assert.deepEqual(at(r, 17).fields, ['return the bill']);
    assert.deepEqual(at(r, 20).fields, ['bill type 0 (1.00) returned', 'validator was reset (just reset)']);
    assert.deepEqual(at(r, 23).fields, ['1 bills', 'not full']);
  });

  it('decodes a cashless session from the reference bytes: setup, begin session, vend approved, end session', () => {
    const r = decode(
      '> 10! 10',
      '< 00!',
      '> 12! 12',
      '< 00 00!',
      '> 00',
      '> 11! 00 03 00 00 00 14',
      '< 01 01 18 40 01 02 05 00 62!',
      '> 00',
      '> 11! 01 FF FF 00 00 10',
      '< 00!',
      '> 14! 01 15',
      '< 00!',
      '> 12! 12',
      '< 03 01 F4 F8!',
      '> 00',
      '> 13! 00 00 3C 00 01 50',
      '< 00!',
      '> 12! 12',
      '< 05 00 3C 41!',
      '> 00',
      '> 13! 02 00 01 16',
      '< 00!',
      '> 13! 04 17',
      '< 07 07!',
      '> 00',
      '> 13! 00 00 3C 00 02 51',
      '< 06 06!',
      '> 00',
    );
    clean(r);
    assert.ok(r.frames.every((d) => d.device === 'cashless #1'));
    assert.equal(at(r, 6).what, 'SETUP CONFIG DATA');
    assert.deepEqual(at(r, 6).fields, ['VMC level 3', 'no display']);
    assert.deepEqual(at(r, 7).fields, ['reader config: level 1', 'currency 1840 (USD, ISO 840)', 'scale 1', '2 decimals', 'max response 5 s', 'options none']);
    assert.deepEqual(at(r, 9).fields, ['max 655.35', 'min 0.00']);
    assert.equal(at(r, 11).what, 'READER ENABLE');
    assert.deepEqual(at(r, 14).fields, ['begin session: funds 5.00']);
    assert.equal(at(r, 16).what, 'VEND REQUEST');
    assert.deepEqual(at(r, 16).fields, ['price 0.60', 'item 1']);
    assert.deepEqual(at(r, 19).fields, ['vend approved: 0.60']);
    assert.equal(at(r, 21).what, 'VEND SUCCESS');
    assert.deepEqual(at(r, 24).fields, ['end session']);
    // A reader may answer VEND REQUEST straight away.
    assert.deepEqual(at(r, 27).fields, ['vend denied']);
  });

  it('names cashless #2 and the devices it does not decode', () => {
    const r = decode('> 62! 62', '< 00!', '> 58! 58', '< 00!');
    clean(r);
    assert.equal(at(r, 1).device, 'cashless #2');
    assert.equal(at(r, 1).what, 'POLL');
    assert.equal(at(r, 3).device, 'coin hopper 1');
  });
});

describe('mdb trace: protocol violations', () => {
  it('bad CHK from the VMC and from a peripheral', () => {
    const r = decode('> 0B! 0C', '> 0B! 0B', '< 52 15 68!', '> AA', '< 52 15 67!', '> 00');
    assert.deepEqual(flagged(r, 'checksum'), [1, 3]);
    assert.match(at(r, 1).flags[0]!.text, /bad CHK 0C, expected 0B/);
    assert.match(at(r, 3).flags[0]!.text, /bad CHK 68, expected 67/);
    assert.equal(r.summary.badChecksums, 2);
    // The corrupt command was (rightly) ignored: a non-response, not a violation.
    assert.deepEqual(kinds(at(r, 1)), ['checksum', 'non-response']);
    assert.deepEqual(at(r, 5).fields.at(-1), 'again after RET (line 4)');
  });

  it('mode bit missing or on the wrong byte', () => {
    const r = decode(
      '> 0B 0B', // address without mode bit
      '< 00!',
      '> 0D! 12! 1F', // mode bit on a data byte
      '< 00!',
      '> 0B! 0B',
      '< 0B 0B', // peripheral CHK without mode bit
      '> 00',
      '> 0B! 0B',
      '< 0B! 0B!', // mode bit on a peripheral's first byte
      '> 00',
      '> 0B! 0B',
      '< 00', // lone ACK without mode bit
      '> 0B! 0B',
      '< 0B 0B!',
      '> 00!', // the VMC's ACK with the mode bit
    );
    assert.deepEqual(flagged(r, 'mode-bit'), [1, 3, 6, 9, 12, 15]);
    assert.match(at(r, 1).flags[0]!.text, /mode bit missing on the address byte/);
    assert.match(at(r, 3).flags[0]!.text, /mode bit set on byte 2/);
    assert.match(at(r, 6).flags[0]!.text, /mode bit missing on the last byte/);
    assert.match(at(r, 9).flags[0]!.text, /byte 1, not on the last/);
    assert.equal(at(r, 15).what, 'ACK');
    assert.equal(r.summary.violations, 6);
  });

  it('a peripheral answering without a command, or twice', () => {
    const r = decode('< 00!', '> 08! 08', '< 00!', '< 00!', '> 0B! 0B', '< 0B 0B!', '< 0B 0B!', '> 00');
    assert.deepEqual(flagged(r, 'unsolicited'), [1, 4, 7]);
    assert.match(at(r, 4).flags[0]!.text, /line 2 was already answered/);
    assert.deepEqual(flagged(r, 'not-acknowledged'), [6]);
  });

  it('ACK/NAK/RET from the VMC where it does not belong, and data it leaves unanswered', () => {
    const r = decode(
      '> 00', // nothing to acknowledge
      '> 08! 08',
      '< 00!',
      '> 00', // after the peripheral's ACK
      '> 0A! 0A',
      '> 00', // before any answer
      '< 00 00 14 14 14 00 00 00 00 00 00 00 00 00 00 00 00 00 3C!',
      '> 0B! 0B', // the tube status above is never acknowledged
      '< 00!',
    );
    assert.deepEqual(flagged(r, 'misplaced-control'), [1, 4, 6]);
    assert.match(at(r, 4).flags[0]!.text, /after the peripheral's ACK on line 3/);
    assert.match(at(r, 6).flags[0]!.text, /before any answer to the command on line 5/);
    assert.deepEqual(flagged(r, 'not-acknowledged'), [7]);
    assert.match(at(r, 7).flags[0]!.text, /the VMC must answer ACK, NAK or RET/);
  });

  it('RET must be followed by the same answer again', () => {
    const r = decode(
      '> 0B! 0B',
      '< 52 15 67!',
      '> AA',
      '< 52 16 68!', // a different answer
      '> 00',
      '> 0B! 0B',
      '< 52 15 67!',
      '> AA',
      '> 0B! 0B', // RET never answered
      '< 00!',
      '> 0B! 0B',
      '< 52 15 67!',
      '> AA',
      '< 00!', // ACK instead of the data
      '< AA!', // and RET from a peripheral
    );
    assert.deepEqual(flagged(r, 'retransmit'), [4, 8, 14]);
    assert.match(at(r, 4).flags[0]!.text, /differs from the one on line 2/);
    assert.match(at(r, 8).flags[0]!.text, /RET not followed by the answer again/);
    assert.deepEqual(flagged(r, 'answer'), [15]);
    assert.match(at(r, 15).flags[0]!.text, /RET comes from the VMC only/);
  });

  it('a command to an address with no device, and a frame over 36 bytes', () => {
    const long = ['> 31!', ...Array.from({ length: 35 }, () => '00'), '31'].join(' ');
    const r = decode('> 28! 28', long, '< 00!');
    assert.deepEqual(flagged(r, 'unknown-address'), [1]);
    assert.match(at(r, 1).flags[0]!.text, /address 0x28: no known device/);
    assert.deepEqual(flagged(r, 'too-long'), [2]);
    assert.match(at(r, 2).flags[0]!.text, /37 bytes: a block is at most 36/);
    assert.deepEqual(flagged(r, 'command-length'), [2]);
  });

  it('counts non-responses and marks a command repeated without an answer', () => {
    const r = decode('0 > 0B! 0B', '100000 > 0B! 0B', '2200000 > 0B! 0B', '2203000 < 00!', '2300000 > 0B! 0B', '2303000 < 00!');
    assert.deepEqual(flagged(r, 'non-response'), [1, 2]);
    assert.ok(at(r, 1).flags.every((f) => f.severity === 'warning'));
    assert.match(at(r, 2).flags[0]!.text, /non-response 2 in a row, silent for 0.100 s/);
    assert.deepEqual(at(r, 2).fields, ['again after no answer (line 1)']);
    assert.deepEqual(at(r, 3).fields, ['again after no answer (line 2)']);
    assert.deepEqual(at(r, 5).fields, []);
    assert.equal(r.summary.nonResponses, 2);
    assert.equal(r.summary.devices['changer']!.nonResponses, 2);
    assert.equal(r.summary.violations, 0);
    assert.equal(r.summary.warnings, 2);
    // Past the changer's 2 s non-response time.
    const s = decode('0 > 0B! 0B', '1000000 > 0B! 0B', '2100000 > 0B! 0B', '3000000 > 0B! 0B');
    assert.match(at(s, 3).flags[0]!.text, /silent for 2.100 s, past the changer's 2 s non-response time/);
  });

  it('answers and commands whose length does not fit the command', () => {
    const r = decode(
      '> 0A! 0A',
      '< 00 00 14 14 14 00 00 00 00 00 3C!', // TUBE STATUS short
      '> 00',
      '> 09! 09',
      '< 00!', // SETUP answered with ACK
      '> 0C! 00 0F 00 1B', // COIN TYPE one byte short
      '< 00!',
      '> 0D! 12 1F',
      '< 12 12!', // DISPENSE answered with data
      '> 00',
      '> 33! 33',
      '< 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00!', // 17 bytes of poll data
      '> 00',
    );
    assert.deepEqual(flagged(r, 'answer'), [2, 5, 9, 12]);
    assert.match(at(r, 2).flags[0]!.text, /tube status should be 18 bytes, got 10/);
    assert.match(at(r, 5).flags[0]!.text, /SETUP is answered with setup data \(23 bytes\), not ACK/);
    assert.match(at(r, 9).flags[0]!.text, /DISPENSE is answered with ACK, not 1 bytes of data/);
    assert.match(at(r, 12).flags[0]!.text, /poll data should be 1 to 16 bytes, got 17/);
    assert.deepEqual(flagged(r, 'command-length'), [6]);
    assert.match(at(r, 6).flags[0]!.text, /COIN TYPE carries 4 data bytes, got 3/);
  });

  it('late answers, time going backwards, and commands above the reported level', () => {
    const r = decode(
      '0.000000 > 0B! 0B',
      '0.010000 < 00!', // 7.7 ms after the POLL ended
      '0.020000 > 0B! 0B',
      '0.023000 < 0B 0B!',
      '0.040000 > 00', // the VMC's ACK 14.7 ms late
      '0.030000 > 08! 08',
      '0.033000 < 00!',
    );
    assert.deepEqual(flagged(r, 'timing'), [2, 5, 6]);
    assert.match(at(r, 2).flags[0]!.text, /answer 7\.7 ms after line 1 \(t-response is at most 5 ms\)/);
    assert.match(at(r, 5).flags[0]!.text, /the VMC answered 14\.7 ms after line 4/);
    assert.match(at(r, 6).flags[0]!.text, /time goes backwards/);
    const l = decode(...CHANGER_INIT, '> 0F! 00 0F', '< 00!');
    assert.deepEqual(flagged(l, 'level'), [15]);
    assert.match(at(l, 15).flags[0]!.text, /EXPANSION IDENTIFICATION is a level 3 command; the changer reported level 2/);
    assert.deepEqual(flagged(l, 'answer'), [16]);
  });

  it('prints one line per frame with its flags', () => {
    const r = decode('0.000100 > 0B! 0B', '0.003000 < 52 15 68!', '0.010000 > AA', '0.012000 < 52 15 67!', '0.016000 > 00');
    const lines = r.frames.map((d) => formatDecoded(d, { hex: true }));
    assert.match(lines[1]!, /^ {4}2 {6}0\.003000 {2}PER {2}changer {8}POLL data {18}coin deposited type 2 to tubes, 21 in tube {2}\[52 15 68!\] {2}! bad CHK 68, expected 67$/);
    assert.match(lines[2]!, /VMC {2}changer {8}RET {24}retransmit now/);
  });
});

describe('mdb trace: the simulator wire', function () {
  this.timeout(180000);
  let host: MachineHost | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  async function purchase(setup?: (h: MachineHost) => void): Promise<{ capture: WireCapture; host: MachineHost }> {
    const capture = new WireCapture();
    host = await MachineHost.start(usMachine(), { target: 'sim', onWire: (dir, word, atUs) => capture.add(dir, word, atUs) });
    setup?.(host);
    host.select('A1');
    await host.runUntilIdle();
    for (const c of [25, 25, 100]) {
      host.insertCoin(c);
      await host.runUntilIdle();
    }
    await host.run(500);
    return { capture, host };
  }

  it('decodes a real purchase with no violations, then flags a flipped byte in a data answer', async () => {
    const { capture, host: h } = await purchase();
    assert.deepEqual(h.rig.delivered, ['A1']);
    assert.deepEqual(h.rig.changer!.paidOut, [25]);
    const text = capture.toText(['purchase: A1 for 1.25 with 25, 25, 100']);
    const r = decodeText(text);
    clean(r);
    assert.equal(r.summary.violations, 0);
    assert.equal(r.summary.warnings, 0);
    assert.equal(r.frames.length, capture.frames.length);
    const whats = (device: string): string[] => r.frames.filter((d) => d.device === device && d.kind === 'command').map((d) => d.what);
    for (const w of ['RESET', 'POLL', 'SETUP', 'TUBE STATUS', 'COIN TYPE', 'DISPENSE']) assert.ok(whats('changer').includes(w), `changer ${w}`);
    for (const w of ['RESET', 'POLL', 'SETUP', 'STACKER', 'BILL TYPE']) assert.ok(whats('bill validator').includes(w), `bill validator ${w}`);
    const fields = (pred: (d: Decoded) => boolean): string[] => r.frames.filter(pred).flatMap((d) => d.fields);
    const pollData = fields((d) => d.device === 'changer' && d.what === 'POLL data');
    assert.ok(pollData.includes('changer was reset (just reset)'));
    assert.equal(pollData.filter((f) => f === 'coin deposited type 2 (0.25) to tubes, 21 in tube').length, 1);
    assert.ok(pollData.includes('coin deposited type 2 (0.25) to tubes, 22 in tube'));
    assert.ok(pollData.includes('coin deposited type 3 (1.00) to cash box, 0 in tube'));
    assert.ok(pollData.includes('payout busy'));
    assert.deepEqual(fields((d) => d.what === 'DISPENSE'), ['1 x type 2 (0.25)']);
    assert.ok(fields((d) => d.device === 'bill validator' && d.what === 'POLL data').includes('validator was reset (just reset)'));
    // Every data answer was acknowledged by the VMC on the next line.
    for (const d of r.frames.filter((x) => x.kind === 'data')) {
      const next = r.frames[r.frames.indexOf(d) + 1]!;
      assert.equal(next.what, 'ACK', `line ${d.frame.line}`);
      assert.equal(next.replyTo, d.frame.line);
    }

    // Flip one byte of the first coin-deposit answer: the CHK no longer fits.
    const deposit = r.frames.find((d) => d.fields.some((f) => f.startsWith('coin deposited type 2')))!;
    const lines = text.split('\n');
    const line = deposit.frame.line;
    assert.match(lines[line - 1]!, / < 52 15 67!$/);
    lines[line - 1] = lines[line - 1]!.replace('< 52 15 67!', '< 52 17 67!');
    const bad = decodeText(lines.join('\n'));
    assert.deepEqual(flagged(bad, 'checksum'), [line]);
    assert.match(at(bad, line).flags[0]!.text, /bad CHK 67, expected 69/);
    assert.equal(bad.summary.violations, 1);
    assert.equal(bad.summary.badChecksums, 1);
    // The simulated VMC read the good byte and acknowledged; the decoder notes the ACK of a bad CHK.
    assert.equal(at(bad, line + 1).what, 'ACK');
    assert.match(at(bad, line + 1).flags[0]!.text, new RegExp(`ACK of the answer on line ${line} whose CHK is bad`));
    assert.equal(bad.summary.warnings, 1);
  });

  it('shows a garbled answer, its RET and retransmission, and POLLs the changer did not hear', async () => {
    const { capture } = await purchase((h) => {
      h.rig.changer!.injectFault({ kind: 'garble', command: 3, count: 1 });
      h.rig.changer!.injectFault({ kind: 'silence', command: 3, count: 2 });
    });
    const r = decodeText(capture.toText());
    assert.equal(r.summary.violations, 1);
    assert.equal(r.summary.badChecksums, 1);
    const [garbled] = flagged(r, 'checksum');
    assert.ok(garbled);
    assert.equal(at(r, garbled + 1).what, 'RET');
    assert.equal(at(r, garbled + 2).what, 'POLL data');
    assert.ok(at(r, garbled + 2).fields.includes(`again after RET (line ${garbled + 1})`));
    assert.deepEqual(at(r, garbled + 2).flags, []);
    assert.equal(at(r, garbled + 3).what, 'ACK');
    assert.equal(r.summary.nonResponses, 2);
    assert.equal(r.summary.devices['changer']!.nonResponses, 2);
    const silent = flagged(r, 'non-response');
    assert.equal(silent.length, 2);
    assert.ok(r.frames.some((d) => d.fields.includes(`again after no answer (line ${silent[1]})`)));
  });
});

describe('mdb trace: the command line', function () {
  this.timeout(180000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mdb-trace-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function run(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
    const p = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
    return { status: p.status, stdout: p.stdout, stderr: p.stderr };
  }

  function file(name: string, lines: string[]): string {
    const path = join(dir, name);
    writeFileSync(path, lines.join('\n') + '\n');
    return path;
  }

  it('exits 0 on a clean capture, 1 on violations, 2 on unreadable input and usage errors', () => {
    const good = run(['decode', file('good.mdb', CHANGER_INIT)]);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /SETUP data {17}level 2; currency 1840 \(USD, ISO 840\); scale 5/);
    assert.match(good.stdout, /violations 0, bad checksums 0, non-responses 0, warnings 0/);

    const bad = run(['decode', file('bad.mdb', ['> 0B! 0B', '< 52 15 68!', '> 00'])]);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /! bad CHK 68, expected 67/);
    assert.match(bad.stdout, /violations 1, bad checksums 1/);

    const silent = file('silent.mdb', ['> 0B! 0B', '> 0B! 0B', '< 00!']);
    assert.equal(run(['decode', silent]).status, 0);
    assert.equal(run(['decode', silent, '--strict']).status, 1);
    const flaggedOnly = run(['decode', silent, '--flagged']);
    assert.equal(flaggedOnly.stdout.split('\n').filter((l) => /^\s+\d+ /.test(l)).length, 1);

    const garbage = run(['decode', file('garbage.mdb', ['> 0B! 0B', 'hello world', '< XY!'])]);
    assert.equal(garbage.status, 2);
    assert.match(garbage.stderr, /garbage\.mdb:2: "hello" is neither a time/);
    assert.match(garbage.stderr, /garbage\.mdb:3: "XY!" is not a byte/);

    assert.equal(run(['decode', file('empty.mdb', ['# nothing'])]).status, 2);
    const missing = run(['decode', join(dir, 'no-such.mdb')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read .*no-such\.mdb \(ENOENT\)/);
    assert.equal(run([]).status, 2);
    assert.equal(run(['decode']).status, 2);
    assert.equal(run(['frobnicate']).status, 2);

    const stdin = run(['decode', '-'], CHANGER_INIT.join('\n'));
    assert.equal(stdin.status, 0);
    assert.match(stdin.stdout, /COIN TYPE/);
  });

  it('records a reference capture of the simulator that decodes clean', () => {
    const out = join(dir, 'reference.mdb');
    const rec = run(['record', '--seconds', '3', '--coins', '25,25,100', '--out', out]);
    assert.equal(rec.status, 0, rec.stderr);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /^# vendfleet MDB capture/);
    assert.match(text, /change paid 25/);
    const dec = run(['decode', out]);
    assert.equal(dec.status, 0, dec.stdout);
    assert.match(dec.stdout, /DISPENSE {19}1 x type 2 \(0\.25\)/);
    assert.match(dec.stdout, /coin deposited type 3 \(1\.00\) to cash box/);
    assert.equal(run(['record', '--coins', '3']).status, 2);
  });
});
