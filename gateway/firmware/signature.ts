/**
 * Release signatures (docs/updates.md "Release signatures"): Ed25519 over
 * `vendfleet-image v1 <sha256 hex> <size> <version>`. The gateway holds
 * release public keys only, read from PEM files (VENDFLEET_RELEASE_KEYS,
 * the data directory's release-keys.pem); the signing half (vendctl) and
 * key generation live here too, so that both ends sign and check exactly
 * the same text.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The text a release signature covers: UTF-8, one line, no newline. */
export function signedText(sha256: string, size: number, version: string): string {
  return `vendfleet-image v1 ${sha256} ${size} ${version}`;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A release key's id: the first 16 hex digits of the SHA-256 of its public key (SPKI, DER). */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return sha256Hex(pub.export({ type: 'spki', format: 'der' })).slice(0, 16);
}

export const KEY_ID_PATTERN = '^[0-9a-f]{16}$';

export interface ReleaseKey {
  id: string;
  key: KeyObject;
  /** The file it came from. */
  source: string;
}

export class ReleaseKeyError extends Error {}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** The Ed25519 public keys in a PEM text; anything else in it is an error (said with `source`). */
export function parsePublicKeys(pem: string, source: string): ReleaseKey[] {
  const keys: ReleaseKey[] = [];
  for (const m of pem.matchAll(PEM_BLOCK)) {
    const label = m[1]!;
    if (label.includes('PRIVATE')) throw new ReleaseKeyError(`${source} holds a private key: the gateway takes release PUBLIC keys only (vendctl firmware keygen writes both; give it the .pub.pem)`);
    if (label !== 'PUBLIC KEY') throw new ReleaseKeyError(`${source}: a "${label}" block is not a public key (BEGIN PUBLIC KEY)`);
    let key: KeyObject;
    try {
      key = createPublicKey(m[0]);
    } catch (e) {
      throw new ReleaseKeyError(`${source}: a public key that cannot be read (${(e as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new ReleaseKeyError(`${source}: a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; release keys are Ed25519`);
    keys.push({ id: keyId(key), key, source });
  }
  const rest = pem.replace(PEM_BLOCK, '').trim();
  if (rest.length > 0) throw new ReleaseKeyError(`${source}: text outside the PEM blocks (only BEGIN/END PUBLIC KEY blocks belong there)`);
  return keys;
}

/** A file of release public keys; an optional one may be missing (the data directory's, until someone puts keys there). */
export interface KeyFile {
  path: string;
  optional: boolean;
}

/** Every key of these files, read now; a key in two files counts once. */
export function loadReleaseKeys(files: readonly KeyFile[]): ReleaseKey[] {
  const byId = new Map<string, ReleaseKey>();
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f.path, 'utf8');
    } catch (e) {
      if (f.optional && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ReleaseKeyError(`cannot read the release keys in ${f.path}: ${(e as Error).message}`);
    }
    for (const k of parsePublicKeys(text, f.path)) if (!byId.has(k.id)) byId.set(k.id, k);
  }
  return [...byId.values()];
}

/** 64 bytes of Ed25519 signature from base64 (standard, padded) or base64url (unpadded); undefined if it is neither. */
export function parseSignature(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]{86}$/.test(text) && !/^[A-Za-z0-9+/]{86}==$/.test(text)) return undefined;
  const b = Buffer.from(text, text.endsWith('==') ? 'base64' : 'base64url');
  return b.length === 64 ? b : undefined;
}

export function verifyRelease(key: KeyObject, sha256: string, size: number, version: string, signature: Buffer): boolean {
  return verify(null, Buffer.from(signedText(sha256, size, version), 'utf8'), key, signature);
}

/** The uploader's half: sign an image's bytes for `version` with a release private key (PEM). */
export function signRelease(bytes: Uint8Array, version: string, privatePem: string | Buffer): { sha256: string; size: number; signature: string; keyId: string } {
  const key = createPrivateKey(privatePem);
  if (key.asymmetricKeyType !== 'ed25519') throw new ReleaseKeyError(`a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; release keys are Ed25519 (vendctl firmware keygen makes one)`);
  const sha256 = sha256Hex(bytes);
  const signature = sign(null, Buffer.from(signedText(sha256, bytes.byteLength, version), 'utf8'), key).toString('base64url');
  return { sha256, size: bytes.byteLength, signature, keyId: keyId(key) };
}

/** A new release key pair, as PEM (PKCS#8 private, SPKI public). */
export function generateReleaseKey(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyId(publicKey),
  };
}
