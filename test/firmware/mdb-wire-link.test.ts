/**
 * The MDB link (firmware/mdb/link.ts) word for word against scripted
 * peripherals (test/lib/wire-script.ts): every word the VMC sends is in the
 * transcript, with its mode bit, and nothing else may go out. The byte
 * values and timings are those of shared/reference/mdb.md. Named "wire/link:
 * ..." so docs/mdb.md can cite them.
 */
import { REPLY_NAMES, WordLink, type ReplyKind } from '../../firmware/mdb/link.js';
import { deepEqual, equal, ok, throws } from '../lib/assert.js';
import { WIRE_CHAR_MS, WIRE_T_RESPONSE_MS, WireScript, parseLine } from '../lib/wire-script.js';

interface Outcome {
  kind: string;
  data: string;
  at: number;
}

function rig(retransmits?: number): { s: WireScript; link: WordLink; out: Outcome[]; send(hex: string, answer?: boolean | 'throw'): void } {
  const s = new WireScript();
  const link = new WordLink({ serial: s.port, timers: s.clock, ...(retransmits === undefined ? {} : { retransmits }) });
  const out: Outcome[] = [];
  const send = (hex: string, answer: boolean | 'throw' = true): void => {
    const bytes = Uint8Array.from(hex.split(' ').map((h) => parseInt(h, 16)));
    link.send(bytes, bytes.length, (kind: ReplyKind, data: Uint8Array, length: number) => {
      const shown: string[] = [];
      for (let i = 0; i < length; i++) shown.push(data[i]!.toString(16).toUpperCase().padStart(2, '0'));
      out.push({ kind: REPLY_NAMES[kind], data: shown.join(' '), at: s.now });
      if (answer === 'throw') throw new Error('handler failed');
      return answer;
    });
  };
  return { s, link, out, send };
}

const kinds = (out: readonly Outcome[]): string[] => out.map((o) => (o.data ? `${o.kind} ${o.data}` : o.kind));

describe('MDB wire: the harness reads transcripts strictly', () => {
  it('wire/harness: a VMC block whose transcript checksum is wrong is refused when read', () => {
    throws(() => parseLine('> 10B 0C', 1), /checksum/);
    throws(() => parseLine('> 0B 0B', 1), /address byte/);
    throws(() => parseLine('> 10B 10B', 1), /mode bit|checksum/);
    equal(parseLine('> 10C FF FF FF FF 08', 1).words.length, 6);
  });

  it('wire/harness: a word the transcript does not expect fails the run', () => {
    const { s, send } = rig();
    s.expect(['> 10B 0B', '< 100']);
    send('0A');
    throws(() => s.run(), /sent 10A where the transcript has 10B/);
  });

  it('wire/harness: a transcript left over at the end fails the run', () => {
    const { s, send } = rig();
    s.expect(['> 10B 0B', '< 100', '> 10B 0B']);
    send('0B');
    throws(() => s.run([], { limitMs: 1000 }), /not finished/);
  });
});

describe('MDB wire: the link', () => {
  it('wire/link: a block is the address byte with the mode bit, the data and the checksum, mode bit clear', () => {
    const { s, out, send } = rig();
    // Enable all coins (reference worked bytes: 0C FF FF FF FF, CHK 08).
    s.expect(['> 10C FF FF FF FF 08', '< 100']);
    send('0C FF FF FF FF');
    s.run();
    deepEqual(kinds(out), ['ACK']);
  });

  it('wire/link: a lone ACK or NAK from the peripheral gets no answer from the VMC', () => {
    const { s, out, send, link } = rig();
    s.expect(['> 108 08', '< 100']);
    send('08');
    s.run();
    s.expect(['> 10B 0B', '< 1FF']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['ACK', 'NAK']);
    equal(link.stats.naks, 1);
    equal(link.busy, false);
  });

  it('wire/link: data with a good checksum is handed over, then acknowledged with 00', () => {
    const { s, out, send } = rig();
    // The reference's worked changer status reply, CHK 2C.
    s.expect(['> 10B 0B', '< 02 00 01 05 02 00 07 01 02 05 14 FF 12C', '> 00']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['DATA 02 00 01 05 02 00 07 01 02 05 14 FF']);
  });

  it('wire/link: a corrupt checksum is answered with RET (AA) and the good copy is taken once', () => {
    const { s, out, send, link } = rig();
    s.expect(['> 10B 0B', '< 52 0D 160', '> AA', '< 52 0D 15F', '> 00']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['DATA 52 0D']);
    equal(link.stats.retransmits, 1);
  });

  it('wire/link: an answer still corrupt after two RETs is NAKed (FF) and reported corrupt, not as data', () => {
    const { s, out, send, link } = rig();
    s.expect(['> 10B 0B', '< 52 0D 160', '> AA', '< 52 0D 160', '> AA', '< 52 0D 160', '> FF']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['CORRUPT']);
    equal(link.stats.corrupt, 1);
  });

  it('wire/link: an answer longer than a block (36 bytes with its checksum) is not data, even with a good checksum', () => {
    const { s, out, send } = rig(0);
    const long: string[] = [];
    for (let i = 0; i < 36; i++) long.push('01');
    // 36 data bytes and a checksum (sum 0x24) make 37 words: one too many. No retransmission allowed here: NAK.
    s.expect(['> 10B 0B', `< ${long.join(' ')} 124`, '> FF']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['CORRUPT']);
  });

  it('wire/link: an answer of a whole block (35 data bytes and the checksum) is data', () => {
    const { s, out, send } = rig();
    const full: string[] = [];
    for (let i = 0; i < 35; i++) full.push('01');
    s.expect(['> 10B 0B', `< ${full.join(' ')} 123`, '> 00']);
    send('0B');
    s.run();
    equal(out[0]!.data, full.join(' '));
  });

  it('wire/link: data the handler refuses is NAKed (FF), so the peripheral keeps it for the next POLL', () => {
    const { s, out, send } = rig();
    s.expect(['> 10B 0B', '< 52 0D 15F', '> FF']);
    send('0B', false);
    s.run();
    deepEqual(kinds(out), ['DATA 52 0D']);
  });

  it('wire/link: data whose handler throws is NAKed (FF), and the link is free for the next block', () => {
    const { s, out, send, link } = rig();
    s.expect(['> 10B 0B', '< 52 0D 15F', '> FF']);
    send('0B', 'throw');
    s.run([], { throws: 1 });
    equal(link.busy, false);
    s.expect(['> 10B 0B', '< 52 0D 15F', '> 00']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['DATA 52 0D', 'DATA 52 0D']);
  });

  it('wire/link: silence is a timeout once t-response has passed after the last word left, and the VMC sends nothing', () => {
    const { s, out, send, link } = rig();
    s.expect(['> 10B 0B @poll', '< silence']);
    send('0B');
    s.run();
    s.idle(50);
    deepEqual(kinds(out), ['TIMEOUT']);
    equal(link.stats.timeouts, 1);
    const waited = out[0]!.at - s.timeOf('poll');
    // Two words on the line, then t-response for the peripheral to start and its first word to arrive.
    ok(waited >= 3 * WIRE_CHAR_MS + WIRE_T_RESPONSE_MS, `timed out after ${waited} ms`);
    ok(waited <= 4 * WIRE_CHAR_MS + WIRE_T_RESPONSE_MS + 0.001, `timed out after ${waited} ms`);
  });

  it('wire/link: an answer that starts 4.9 ms after the command (inside t-response) is taken', () => {
    const { s, out, send } = rig();
    s.expect(['> 10B 0B', '< 52 0D 15F +4.9ms', '> 00']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['DATA 52 0D']);
  });

  it('wire/link: the copy asked for with RET may also start 4.9 ms after the RET', () => {
    const { s, out, send } = rig();
    s.expect(['> 10B 0B', '< 52 0D 160', '> AA', '< 52 0D 15F +4.9ms', '> 00']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['DATA 52 0D']);
  });

  it('wire/link: an answer that starts after t-response is a timeout, and its late words are stray, not the next answer', () => {
    const { s, out, send, link } = rig();
    s.expect(['> 10B 0B', '< 52 0D 15F +7ms']);
    send('0B');
    s.run();
    equal(link.stats.stray, 3);
    s.expect(['> 10B 0B', '< 100']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['TIMEOUT', 'ACK']);
  });

  it('wire/link: data that stops before its mode-bit word times out 5 ms after the last byte, unanswered', () => {
    const { s, out, send } = rig();
    s.expect(['> 10B 0B', '< 52 0D']);
    send('0B');
    s.run();
    const lastByte = s.now;
    s.idle(50);
    deepEqual(kinds(out), ['TIMEOUT']);
    ok(out[0]!.at - lastByte >= WIRE_T_RESPONSE_MS, 'waits t-response after the last byte');
  });

  it('wire/link: words nobody asked for between transactions are counted as stray and never handed over', () => {
    const { s, out, send, link } = rig();
    s.expect(['> 10B 0B', '< 100', '< 52 0D 15F']);
    send('0B');
    s.run();
    equal(link.stats.stray, 3);
    s.expect(['> 10B 0B', '< 100']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['ACK', 'ACK']);
  });

  it('wire/link: words after the mode-bit word are stray, not part of the answer', () => {
    const { s, out, send, link } = rig();
    s.expect(['> 10B 0B', '< 100 05 06']);
    send('0B');
    s.run();
    deepEqual(kinds(out), ['ACK']);
    equal(link.stats.stray, 2);
  });
});
