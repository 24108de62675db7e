/**
 * MDB trace decoder for bench engineers: reads a wire capture in the format
 * of docs/mdb-trace.md, pairs each peripheral answer with the VMC command it
 * answers, decodes device, command and fields, and flags protocol
 * violations. Pure: text in, data out; the CLI (tools/mdb.ts) does the I/O.
 *
 *   capture.ts   the capture format and the framing facts (MODE_BIT, ACK, ...)
 *   devices.ts   what each device's commands and answers are (frozen tables)
 *   fields.ts    how values are shown (money in the device's scale, masks, currency)
 *   exchange.ts  ExchangeTracker: each command and its answers, the flags
 *   decode.ts    this file: a whole capture decoded, and as text lines
 *
 * The framing facts are the decoder's own reading of the MDB/ICP 4.2
 * reference (/work/shared/reference/mdb.md), not imported from
 * firmware/mdb/frame.ts: the decoder checks the bytes the firmware puts on
 * the wire, so a mistake in the firmware's constants must show up as
 * violations here rather than be shared (capture.ts says more).
 */
import { hex2, formatSeconds, parseCapture, type Frame } from './capture.js';
import { ExchangeTracker, type DecodeResult, type Decoded, type Summary } from './exchange.js';

export function decodeText(text: string): DecodeResult {
  return decodeCapture(parseCapture(text));
}

export function decodeCapture(frames: readonly Frame[]): DecodeResult {
  const tracker = new ExchangeTracker();
  for (const frame of frames) tracker.add(frame);
  return tracker.finish();
}

export interface FormatOptions {
  /** Append the frame's bytes. */
  hex?: boolean;
}

/** One decoded frame as one line: line, time, direction, device, what, fields, flags. */
export function formatDecoded(d: Decoded, options: FormatOptions = {}): string {
  const f = d.frame;
  const time = f.timeUs === undefined ? '-' : formatSeconds(f.timeUs);
  let s = `${String(f.line).padStart(5)}  ${time.padStart(12)}  ${f.dir === 'vmc' ? 'VMC' : 'PER'}  ${d.device.padEnd(14)} ${d.what.padEnd(26)}`;
  if (d.fields.length) s += ` ${d.fields.join('; ')}`;
  if (options.hex) s += `  [${f.words.map((w) => hex2(w.byte) + (w.mode ? '!' : '')).join(' ')}]`;
  for (const flag of d.flags) s += `  ! ${flag.severity === 'warning' ? 'warning: ' : ''}${flag.text}`;
  return s.trimEnd();
}

export function formatSummary(s: Summary): string[] {
  const out = [`frames ${s.frames}: ${s.vmc} from the VMC, ${s.periph} from peripherals`];
  for (const [name, c] of Object.entries(s.devices)) {
    out.push(`  ${name.padEnd(16)} ${c.commands} commands, ${c.data} data answers, ${c.acks} ACK, ${c.naks} NAK, ${c.nonResponses} non-responses`);
  }
  out.push(`violations ${s.violations}, bad checksums ${s.badChecksums}, non-responses ${s.nonResponses}, warnings ${s.warnings}`);
  return out;
}
