/**
 * vendctl firmware ...: release keys, signing, and the registry's requests.
 *
 *   vendctl firmware keygen OUT                      (OUT.pem private, OUT.pub.pem public; never overwrites)
 *   vendctl firmware sign FILE --version V --key release.pem   (the signature, for curl)
 *   vendctl firmware upload FILE --version V --key release.pem [--notes TEXT] [--journal N]
 *   vendctl firmware list | show SHA256 | download SHA256 > FILE | delete SHA256
 *
 * The private key never leaves this computer: the image is signed here and
 * only the signature goes to the gateway, which holds the public half
 * (VENDFLEET_RELEASE_KEYS or its data directory's release-keys.pem).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { generateReleaseKey, signRelease } from '../gateway/firmware/signature.js';

export const FIRMWARE_USAGE = `  firmware keygen OUT | firmware sign FILE --version V --key PRIVATE.pem
  firmware upload FILE --version V --key PRIVATE.pem [--notes TEXT] [--journal N]
  firmware list | firmware show SHA256 | firmware download SHA256 > FILE | firmware delete SHA256`;

/** What the gateway is asked; `binary`: the answer is bytes for stdout. */
export interface FirmwareRequest {
  method: string;
  path: string;
  raw?: Buffer;
  contentType?: string;
  binary?: boolean;
}

type Fail = (message: string, code?: number) => never;

function read(file: string, what: string, fail: Fail): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    return fail(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/** The two PEM files of `keygen OUT`: OUT (or OUT.pem) and beside it .pub.pem. */
export function keyPaths(out: string): { privatePath: string; publicPath: string } {
  const base = out.endsWith('.pem') ? out.slice(0, -4) : out;
  return { privatePath: `${base}.pem`, publicPath: `${base}.pub.pem` };
}

function sign(file: string, flags: Map<string, string>, fail: Fail): { bytes: Buffer; version: string; signature: string; keyId: string; sha256: string } {
  const version = flags.get('version') ?? fail('firmware upload and sign need --version MAJOR.MINOR.PATCH');
  const keyFile = flags.get('key') ?? fail('firmware upload and sign need --key PRIVATE.pem (vendctl firmware keygen makes one)');
  const bytes = read(file, 'the image', fail);
  const pem = read(keyFile, 'the release key', fail);
  try {
    return { bytes, version, ...signRelease(bytes, version, pem) };
  } catch (e) {
    return fail(`cannot sign with ${keyFile}: ${(e as Error).message}`);
  }
}

/** The subcommands that need no gateway (keygen, sign): true when handled. */
export function firmwareOffline(args: string[], flags: Map<string, string>, fail: Fail): boolean {
  const [, action, arg] = args;
  if (action === 'keygen') {
    const { privatePath, publicPath } = keyPaths(arg ?? fail('firmware keygen OUT'));
    const k = generateReleaseKey();
    try {
      // wx: an existing key is never overwritten (it may be the only copy of a release key).
      writeFileSync(privatePath, k.privatePem, { mode: 0o600, flag: 'wx' });
      writeFileSync(publicPath, k.publicPem, { mode: 0o644, flag: 'wx' });
    } catch (e) {
      fail(`cannot write the key: ${(e as Error).message}`);
    }
    process.stdout.write(`${k.keyId}\n`);
    process.stderr.write(
      `release key ${k.keyId}: private ${privatePath} (keep it secret, readable by you only), public ${publicPath} (give it to the gateway: VENDFLEET_RELEASE_KEYS or its data directory's release-keys.pem)\n`,
    );
    return true;
  }
  if (action === 'sign') {
    const s = sign(arg ?? fail('firmware sign FILE --version V --key PRIVATE.pem'), flags, fail);
    process.stdout.write(`${JSON.stringify({ sha256: s.sha256, size: s.bytes.length, version: s.version, key: s.keyId, signature: s.signature }, null, 2)}\n`);
    return true;
  }
  return false;
}

/** The request of a subcommand that goes to the gateway. */
export function firmwareRequest(args: string[], flags: Map<string, string>, fail: Fail): FirmwareRequest {
  const [, action, arg] = args;
  const sha = (): string => encodeURIComponent(arg ?? fail(`firmware ${action} needs an image's SHA-256`));
  switch (action) {
    case 'upload': {
      const s = sign(arg ?? fail('firmware upload FILE --version V --key PRIVATE.pem'), flags, fail);
      const q = new URLSearchParams({ version: s.version, signature: s.signature, key: s.keyId });
      const notes = flags.get('notes');
      if (notes !== undefined) q.set('notes', notes);
      const journal = flags.get('journal');
      if (journal !== undefined) q.set('journal', journal);
      process.stderr.write(`uploading ${arg} as ${s.version}: ${s.bytes.length} bytes, sha256 ${s.sha256}, signed by release key ${s.keyId}\n`);
      return { method: 'POST', path: `/firmware?${q.toString()}`, raw: s.bytes, contentType: 'application/octet-stream' };
    }
    case 'list':
      return { method: 'GET', path: `/firmware${flags.has('limit') ? `?limit=${encodeURIComponent(flags.get('limit')!)}` : ''}` };
    case 'show':
      return { method: 'GET', path: `/firmware/${sha()}` };
    case 'download':
      return { method: 'GET', path: `/firmware/${sha()}/image`, binary: true };
    case 'delete':
      return { method: 'DELETE', path: `/firmware/${sha()}` };
    default:
      return fail(`firmware: unknown action ${action ?? '(none)'}\n${FIRMWARE_USAGE}`);
  }
}
