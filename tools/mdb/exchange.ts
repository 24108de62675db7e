/**
 * The MDB exchange tracker: takes a capture's frames in order and follows
 * each exchange on the bus (a VMC command; the peripheral's ACK, NAK or data;
 * the VMC's ACK, NAK or RET to data; the data again after RET), naming each
 * frame's device and command from the device tables (devices.ts), decoding
 * its fields, and flagging what breaks the protocol: checksums, mode bits,
 * lengths, answers out of turn, late answers, retransmissions that differ,
 * non-responses. Facts from /work/shared/reference/mdb.md (MDB/ICP 4.2).
 *
 *     const t = new ExchangeTracker();
 *     for (const f of frames) t.add(f);
 *     const { frames: decoded, summary } = t.finish();
 */
import { ACK, CHAR_US, MAX_BLOCK, MAX_INTER_BYTE_US, NAK, RET, T_RESPONSE_US, formatSeconds, hex2, type Frame, type Word } from './capture.js';
import { DEVICES, NON_RESPONSE_S, OTHER_DEVICES, lenOk, lenText, type CommandSpec } from './devices.js';
import { newState, type DeviceState } from './fields.js';

export type FlagKind =
  | 'checksum'
  | 'mode-bit'
  | 'unsolicited'
  | 'misplaced-control'
  | 'not-acknowledged'
  | 'retransmit'
  | 'unknown-address'
  | 'unknown-command'
  | 'too-long'
  | 'non-response'
  | 'command-length'
  | 'answer'
  | 'field'
  | 'level'
  | 'timing';

export interface Flag {
  /** Violations break the protocol; warnings are worth a look (a silent device, an unknown command). */
  severity: 'violation' | 'warning';
  kind: FlagKind;
  text: string;
}

export type FrameKind = 'command' | 'data' | 'ack' | 'nak' | 'ret' | 'bytes';

export interface Decoded {
  frame: Frame;
  kind: FrameKind;
  /** Device name ('changer', 'bill validator', 'cashless #1', ...), '?' if unknown. */
  device: string;
  /** What the frame is: the command's name, '<command> data', 'ACK', ... */
  what: string;
  fields: string[];
  flags: Flag[];
  checksum: 'ok' | 'bad' | 'none';
  /** For answers and the VMC's ACK/NAK/RET: the line they belong to. */
  replyTo: number | undefined;
}

export interface DeviceCounts {
  commands: number;
  data: number;
  acks: number;
  naks: number;
  nonResponses: number;
}

export interface Summary {
  frames: number;
  vmc: number;
  periph: number;
  devices: Record<string, DeviceCounts>;
  violations: number;
  warnings: number;
  badChecksums: number;
  nonResponses: number;
}

export interface DecodeResult {
  frames: Decoded[];
  summary: Summary;
}

/** One command and what followed it, until the next command closes it. */
interface Exchange {
  command: Decoded;
  spec: CommandSpec | undefined;
  state: DeviceState | undefined;
  /** await-answer: nothing heard yet; await-vmc: data heard, the VMC must ACK/NAK/RET; after-ret; done. */
  phase: 'await-answer' | 'await-vmc' | 'after-ret' | 'done';
  answer: Decoded | undefined;
  ret: Decoded | undefined;
}

function isControl(b: number): boolean {
  return b === ACK || b === RET || b === NAK;
}

/** CHK: the 8-bit sum, carry dropped, of the words before it. */
function sum(words: readonly Word[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += words[i]!.byte;
  return s & 0xff;
}

function flag(d: Decoded, kind: FlagKind, text: string, severity: Flag['severity'] = 'violation'): void {
  d.flags.push({ severity, kind, text });
}

export class ExchangeTracker {
  private readonly decoded: Decoded[] = [];
  private readonly summary: Summary = { frames: 0, vmc: 0, periph: 0, devices: {}, violations: 0, warnings: 0, badChecksums: 0, nonResponses: 0 };
  /** What each device's SETUP answer said, by address. */
  private readonly states = new Map<number, DeviceState>();
  /** The exchange in flight. */
  private ex: Exchange | undefined;
  /** Unanswered commands in a row, per device, and the last one. */
  private readonly silent = new Map<string, { count: number; first: Decoded; last: Decoded }>();
  private lastTime: number | undefined;
  private finished = false;

  /** The next frame of the capture, decoded (a later frame may still add flags to it). */
  add(frame: Frame): Decoded {
    if (this.finished) throw new Error('ExchangeTracker: frame added after finish()');
    const words = frame.words;
    const d: Decoded = { frame, kind: 'bytes', device: '?', what: '', fields: [], flags: [], checksum: 'none', replyTo: undefined };
    this.decoded.push(d);
    this.summary.frames++;
    if (frame.dir === 'vmc') this.summary.vmc++;
    else this.summary.periph++;
    if (frame.timeUs !== undefined) {
      if (this.lastTime !== undefined && frame.timeUs < this.lastTime) flag(d, 'timing', `time goes backwards (${formatSeconds(frame.timeUs)} after ${formatSeconds(this.lastTime)})`);
      this.lastTime = frame.timeUs;
    }
    if (words.length > MAX_BLOCK) flag(d, 'too-long', `${words.length} bytes: a block is at most ${MAX_BLOCK} bytes including CHK`, 'violation');

    if (frame.dir === 'vmc') {
      const first = words[0]!;
      const lone = words.length === 1 && isControl(first.byte);
      if (lone && (!first.mode || this.ex?.phase === 'await-vmc')) {
        this.vmcControl(d);
        return d;
      }
      this.closeExchange();
      this.vmcCommand(d);
    } else {
      this.periphFrame(d);
    }
    return d;
  }

  /**
   * Every frame decoded, and the totals. Counted here: some flags land on earlier frames.
   * An exchange cut off by the end of the capture is left unflagged: that is the
   * capture's doing, not the devices'. Once, after the last frame.
   */
  finish(): DecodeResult {
    if (this.finished) throw new Error('ExchangeTracker: finish() called twice');
    this.finished = true;
    const summary = this.summary;
    for (const d of this.decoded) {
      for (const f of d.flags) {
        if (f.severity === 'violation') summary.violations++;
        else summary.warnings++;
      }
    }
    return { frames: this.decoded, summary };
  }

  private counts(device: string): DeviceCounts {
    let c = this.summary.devices[device];
    if (!c) this.summary.devices[device] = c = { commands: 0, data: 0, acks: 0, naks: 0, nonResponses: 0 };
    return c;
  }

  /** Close the exchange in flight before something new starts. */
  private closeExchange(): void {
    const ex = this.ex;
    if (!ex) return;
    if (ex.phase === 'await-answer') {
      const device = ex.command.device;
      const s = this.silent.get(device);
      const n = s ? s.count + 1 : 1;
      const first = s ? s.first : ex.command;
      this.silent.set(device, { count: n, first, last: ex.command });
      this.counts(device).nonResponses++;
      this.summary.nonResponses++;
      let text = `no answer (non-response${n > 1 ? ` ${n} in a row` : ''}`;
      const t0 = first.frame.timeUs;
      const t1 = ex.command.frame.timeUs;
      if (n > 1 && t0 !== undefined && t1 !== undefined) {
        const limit = NON_RESPONSE_S[device];
        text += `, silent for ${((t1 - t0) / 1e6).toFixed(3)} s`;
        if (limit !== undefined && t1 - t0 > limit * 1e6) text += `, past the ${device}'s ${limit} s non-response time`;
      }
      flag(ex.command, 'non-response', `${text})`, 'warning');
    } else if (ex.phase === 'await-vmc' && ex.answer) {
      flag(ex.answer, 'not-acknowledged', 'data not acknowledged: the VMC must answer ACK, NAK or RET');
    } else if (ex.phase === 'after-ret' && ex.ret) {
      flag(ex.ret, 'retransmit', 'RET not followed by the answer again');
    }
    this.ex = undefined;
  }

  private vmcControl(d: Decoded): void {
    const w = d.frame.words[0]!;
    d.kind = w.byte === ACK ? 'ack' : w.byte === NAK ? 'nak' : 'ret';
    d.what = w.byte === ACK ? 'ACK' : w.byte === NAK ? 'NAK' : 'RET';
    if (w.mode) flag(d, 'mode-bit', `mode bit set on the VMC's ${d.what} (only an address byte carries it)`);
    const e = this.ex;
    if (e && e.phase === 'await-vmc' && e.answer) {
      d.device = e.command.device;
      d.replyTo = e.answer.frame.line;
      this.timing(e.answer, d, 'the VMC answered');
      if (w.byte === ACK) {
        d.fields.push(`data on line ${e.answer.frame.line} accepted`);
        // A warning, not a violation: the capture tool may have misread the byte the VMC read right.
        if (e.answer.checksum === 'bad') flag(d, 'misplaced-control', `ACK of the answer on line ${e.answer.frame.line} whose CHK is bad: the VMC should send RET or NAK`, 'warning');
        e.phase = 'done';
      } else if (w.byte === NAK) {
        d.fields.push('data refused: it comes again at a later POLL');
        e.phase = 'done';
      } else {
        d.fields.push('retransmit now');
        e.phase = 'after-ret';
        e.ret = d;
      }
      return;
    }
    if (e && e.phase === 'after-ret' && e.ret) {
      d.device = e.command.device;
      flag(e.ret, 'retransmit', 'RET not followed by the answer again');
      flag(d, 'misplaced-control', `${d.what} from the VMC while waiting for the answer again after RET on line ${e.ret.frame.line}`);
      e.phase = 'done';
      return;
    }
    if (e && e.phase === 'done' && e.answer && (e.answer.kind === 'ack' || e.answer.kind === 'nak')) {
      d.device = e.command.device;
      flag(d, 'misplaced-control', `${d.what} from the VMC after the peripheral's ${e.answer.what} on line ${e.answer.frame.line}: only a data answer is acknowledged`);
      return;
    }
    if (e && e.phase === 'await-answer') {
      d.device = e.command.device;
      flag(d, 'misplaced-control', `${d.what} from the VMC before any answer to the command on line ${e.command.frame.line}`);
      return;
    }
    flag(d, 'misplaced-control', `${d.what} from the VMC with no data answer to ${w.byte === ACK ? 'acknowledge' : 'refer to'}`);
  }

  private vmcCommand(d: Decoded): void {
    const words = d.frame.words;
    d.kind = 'command';
    const addr = words[0]!.byte;
    if (!words[0]!.mode) flag(d, 'mode-bit', 'mode bit missing on the address byte');
    for (let i = 1; i < words.length; i++) {
      if (words[i]!.mode) flag(d, 'mode-bit', `mode bit set on byte ${i + 1} (from the VMC only the address byte carries it)`);
    }
    let data: number[] = [];
    if (words.length < 2) {
      flag(d, 'checksum', 'no CHK: a block ends with its checksum');
    } else {
      const chk = words[words.length - 1]!.byte;
      const want = sum(words, 0, words.length - 1);
      d.checksum = chk === want ? 'ok' : 'bad';
      if (chk !== want) {
        this.summary.badChecksums++;
        flag(d, 'checksum', `bad CHK ${hex2(chk)}, expected ${hex2(want)}`);
      }
      data = words.slice(1, -1).map((w) => w.byte);
    }
    const base = addr & 0xf8;
    const cmd = addr & 7;
    const dev = DEVICES[base];
    const e: Exchange = { command: d, spec: undefined, state: undefined, phase: 'await-answer', answer: undefined, ret: undefined };
    this.ex = e;
    if (!dev) {
      const other = OTHER_DEVICES[base];
      d.device = other ?? `0x${hex2(base)}`;
      d.what = `command ${cmd}`;
      if (data.length) d.fields.push(`data ${data.map(hex2).join(' ')}`);
      if (other) d.fields.push('(not decoded)');
      else flag(d, 'unknown-address', `command to address 0x${hex2(base)}: no known device there`);
      this.counts(d.device).commands++;
      this.noteRepeat(d);
      return;
    }
    d.device = dev.name;
    this.counts(dev.name).commands++;
    let state = this.states.get(base);
    if (!state) this.states.set(base, (state = newState()));
    e.state = state;
    const entry = dev.commands[cmd];
    let spec: CommandSpec | undefined;
    let args = data;
    let levelOf: number | undefined;
    if (entry && 'subs' in entry) {
      const sub = data[0];
      if (sub === undefined) {
        d.what = entry.name;
        flag(d, 'command-length', `${entry.name} needs a sub-command byte`);
      } else {
        spec = entry.subs[sub];
        args = data.slice(1);
        if (!spec) {
          d.what = `${entry.name} 0x${hex2(sub)}`;
          flag(d, 'unknown-command', `sub-command 0x${hex2(sub)} of ${entry.name} is not decoded`, 'warning');
        }
      }
    } else {
      spec = entry;
      if (!spec) {
        d.what = `command ${cmd}`;
        flag(d, 'unknown-command', `${dev.name} has no command ${cmd} (address byte 0x${hex2(addr)})`, 'warning');
      }
    }
    if (spec) {
      e.spec = spec;
      d.what = spec.name;
      if (args.length !== spec.len) {
        flag(d, 'command-length', `${spec.name} carries ${spec.len} data byte${spec.len === 1 ? '' : 's'}, got ${args.length}`);
      }
      if (spec.fields && args.length >= spec.len) d.fields.push(...spec.fields(args, state));
      else if (args.length > 0) d.fields.push(`data ${args.map(hex2).join(' ')}`);
      levelOf = spec.minLevel;
      if (levelOf !== undefined && state.level !== undefined && state.level < levelOf) {
        flag(d, 'level', `${spec.name} is a level ${levelOf} command; the ${dev.name} reported level ${state.level}`);
      }
      const problem = spec.check && args.length === spec.len ? spec.check(args) : undefined;
      if (problem) flag(d, 'field', problem);
    } else if (data.length > 0) {
      d.fields.push(`data ${data.map(hex2).join(' ')}`);
    }
    this.noteRepeat(d);
  }

  /** A command identical to the last unanswered one to that device is a retry after a non-response. */
  private noteRepeat(d: Decoded): void {
    const s = this.silent.get(d.device);
    if (!s) return;
    const a = s.last.frame.words;
    const b = d.frame.words;
    if (a.length === b.length && a.every((w, i) => w.byte === b[i]!.byte)) d.fields.push(`again after no answer (line ${s.last.frame.line})`);
  }

  private periphFrame(d: Decoded): void {
    const words = d.frame.words;
    const last = words.length - 1;
    if (!words[last]!.mode) flag(d, 'mode-bit', words.length === 1 ? 'mode bit missing on the lone ACK/NAK' : 'mode bit missing on the last byte (CHK)');
    for (let i = 0; i < last; i++) {
      if (words[i]!.mode) flag(d, 'mode-bit', `mode bit set on byte ${i + 1}, not on the last byte`);
    }
    let data: number[] = [];
    if (words.length === 1) {
      const b = words[0]!.byte;
      if (b === ACK) {
        d.kind = 'ack';
        d.what = 'ACK';
      } else if (b === NAK) {
        d.kind = 'nak';
        d.what = 'NAK';
      } else {
        d.kind = 'bytes';
        d.what = `byte ${hex2(b)}`;
        flag(d, 'answer', b === RET ? 'RET comes from the VMC only; a peripheral answers ACK, NAK or data with CHK' : 'a one-byte answer must be ACK (00) or NAK (FF); data ends with CHK');
      }
    } else {
      d.kind = 'data';
      data = words.slice(0, last).map((w) => w.byte);
      const chk = words[last]!.byte;
      const want = sum(words, 0, last);
      d.checksum = chk === want ? 'ok' : 'bad';
      if (chk !== want) {
        this.summary.badChecksums++;
        flag(d, 'checksum', `bad CHK ${hex2(chk)}, expected ${hex2(want)}`);
      }
    }

    const e = this.ex;
    let note: string | undefined;
    if (!e || e.phase === 'done') {
      flag(d, 'unsolicited', e?.answer ? `peripheral answer without a command (the command on line ${e.command.frame.line} was already answered)` : 'peripheral answer without a command');
      if (d.kind === 'data') d.what = 'data';
      if (data.length) d.fields.push(data.map(hex2).join(' '));
      return;
    }
    d.device = e.command.device;
    d.replyTo = e.command.frame.line;
    if (e.phase === 'await-vmc' && e.answer) {
      flag(d, 'unsolicited', `second answer before the VMC answered the data on line ${e.answer.frame.line}`);
      flag(e.answer, 'not-acknowledged', `data not acknowledged: the peripheral sent again on line ${d.frame.line}`);
    }
    if (e.phase === 'after-ret' && e.ret) {
      d.replyTo = e.ret.frame.line;
      const before = e.answer;
      if (d.kind !== 'data') flag(d, 'retransmit', `after RET on line ${e.ret.frame.line} the peripheral must send its data again, not ${d.what}`);
      else if (before && before.kind === 'data' && before.checksum === 'ok') {
        // A good copy must come back unchanged; after a corrupt one the data may legitimately differ.
        const a = before.frame.words.slice(0, -1);
        if (a.length !== data.length || a.some((w, i) => w.byte !== data[i])) flag(d, 'retransmit', `answer after RET differs from the one on line ${before.frame.line}`);
      }
      if (d.kind === 'data') note = `again after RET (line ${e.ret.frame.line})`;
      this.timing(e.ret, d, 'answer');
    } else {
      this.timing(e.command, d, 'answer');
    }
    this.silent.delete(e.command.device);
    const c = this.counts(e.command.device);
    if (d.kind === 'ack') c.acks++;
    else if (d.kind === 'nak') c.naks++;
    else if (d.kind === 'data') c.data++;
    e.answer = d;
    e.phase = d.kind === 'data' ? 'await-vmc' : 'done';
    this.answerFields(d, e, data);
    if (note) d.fields.push(note);
  }

  /** What the answer says, read in the light of the command it answers. */
  private answerFields(d: Decoded, e: Exchange, data: readonly number[]): void {
    const spec = e.spec;
    const name = e.command.what;
    if (d.kind === 'nak') {
      d.fields.push(`${name} refused`);
      return;
    }
    if (!spec) {
      if (d.kind === 'data') {
        d.what = `${name} data`;
        d.fields.push(data.map(hex2).join(' '));
      }
      return;
    }
    if (d.kind === 'ack') {
      if (!spec.ack && spec.data) flag(d, 'answer', `${spec.name} is answered with ${spec.data.label} (${lenText(spec.data.len)}), not ACK`);
      if (spec.name === 'POLL') d.fields.push('nothing to report');
      return;
    }
    if (d.kind !== 'data') return;
    if (!spec.data) {
      d.what = `${spec.name} data`;
      flag(d, 'answer', `${spec.name} is answered with ACK, not ${data.length} bytes of data`);
      d.fields.push(data.map(hex2).join(' '));
      return;
    }
    d.what = `${spec.name} data`;
    if (!lenOk(spec.data.len, data.length)) {
      flag(d, 'answer', `${spec.data.label} should be ${lenText(spec.data.len)}, got ${data.length}`);
    }
    const state = e.state ?? newState();
    state.trusted = d.checksum === 'ok';
    const min = typeof spec.data.len === 'number' ? spec.data.len : spec.data.len.min;
    if (data.length >= min || typeof spec.data.len !== 'number') d.fields.push(...spec.data.decode(data, state));
    else d.fields.push(data.map(hex2).join(' '));
    state.trusted = true;
  }

  /**
   * t-response: from the end of `before` to the start of `after`. Frame times
   * mark a fixed point of their first byte, so the gap is the time difference
   * less `before`'s characters; each of its inter-byte gaps may add 1 ms.
   */
  private timing(before: Decoded, after: Decoded, what: string): void {
    const t0 = before.frame.timeUs;
    const t1 = after.frame.timeUs;
    if (t0 === undefined || t1 === undefined) return;
    const n = before.frame.words.length;
    const gap = t1 - t0 - n * CHAR_US;
    const allowed = T_RESPONSE_US + (n - 1) * MAX_INTER_BYTE_US + 100;
    if (gap > allowed) flag(after, 'timing', `${what} ${(gap / 1000).toFixed(1)} ms after line ${before.frame.line} (t-response is at most 5 ms)`);
  }
}
