/**
 * The signed form a command travels in (docs/commands.md): a header line
 * `VF1 <kid> <HMAC-SHA-256 hex>` and the command JSON, whose exact bytes
 * the signature covers.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface CommandBody {
  machine: string;
  n: number;
  type: string;
  /** Unix seconds. */
  issued: number;
  expires: number;
  args: Record<string, unknown>;
}

export function signCommand(body: CommandBody, kid: number, key: Buffer): Buffer {
  const text = Buffer.from(JSON.stringify(body));
  const sig = createHmac('sha256', key).update(text).digest('hex');
  return Buffer.concat([Buffer.from(`VF1 ${kid} ${sig}\n`), text]);
}

/** The body of a signed command if `key` signed it (tests and tools; machines check with their own code). */
export function verifyCommand(payload: Buffer, key: Buffer): CommandBody | undefined {
  const nl = payload.indexOf(10);
  if (nl < 0) return undefined;
  const m = /^VF1 (\d+) ([0-9a-f]{64})$/.exec(payload.subarray(0, nl).toString('latin1'));
  if (!m) return undefined;
  const body = payload.subarray(nl + 1);
  const want = createHmac('sha256', key).update(body).digest();
  if (!timingSafeEqual(want, Buffer.from(m[2]!, 'hex'))) return undefined;
  return JSON.parse(body.toString('utf8')) as CommandBody;
}
