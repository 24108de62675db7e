/**
 * The firmware registry: signed images in the fleet store, known by the
 * SHA-256 of their bytes, one per version, never two copies (docs/updates.md
 * "Release signatures"); and offers, which machine may fetch which image
 * over MQTT. `offer` and `withdraw` are how the parts that start updates (a
 * rollout, an operator's update command) open and close an image to a
 * machine; the chunk server (serve.ts) asks `offered`, `size` and `bytes`,
 * which remember their answers for a moment so that a chunk costs no query.
 */
import { isMachineId, MACHINE_ID_RULE } from '../machine-id.js';
import type { Queryable } from '../store/db.js';
import { REAL_CLOCK, type Clock } from '../time.js';
import { CURRENT_JOURNAL_FORMAT, DEFAULT_MAX_IMAGE_BYTES, ImageError, imageFacts, type ImageFacts, isJournalFormat, isVersion, MAX_IMAGE_BYTES_LIMIT, notesProblem, SHA256_HEX, VERSION_RULE } from './image.js';
import { loadReleaseKeys, parseSignature, ReleaseKeyError, sha256Hex, verifyRelease, type KeyFile, type ReleaseKey } from './signature.js';
import * as sql from './store.js';
import type { ImageRecord } from './store.js';

export type FirmwareErrorCode =
  | 'bad-request'
  | 'bad-version'
  | 'bad-notes'
  | 'bad-image'
  | 'too-large'
  | 'unsigned'
  | 'bad-signature'
  | 'unknown-key'
  | 'image-exists'
  | 'version-taken'
  | 'unknown-image'
  | 'unknown-machine'
  | 'in-use'
  | 'release-keys-unavailable';

export class FirmwareError extends Error {
  constructor(
    readonly code: FirmwareErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RegistryOptions {
  /** Files of release public keys, read again at each upload: a key added to one counts at once. */
  keyFiles?: readonly KeyFile[];
  /** The largest image taken (4 MiB; at most 32 MiB). */
  maxImageBytes?: number;
  /** Image bytes kept in memory for the chunk server (64 MiB), least recently served dropped first. */
  cacheBytes?: number;
  /**
   * How long an answer from the store about an offer or an image is
   * remembered (2,000 ms). This gateway's own offer and withdraw take
   * effect at once; another gateway's within this.
   */
  rememberMs?: number;
  clock?: Clock;
}

export interface Upload {
  bytes: Uint8Array;
  version: string;
  /** Ed25519 over signedText(), base64 or base64url. */
  signature?: string | undefined;
  /** The signing key's id, when the uploader says (a clearer refusal: unknown key or bad signature). */
  keyId?: string | undefined;
  notes?: string | undefined;
  /** The journal format, for an image without a description of its own (default: the current one). */
  journal?: number | undefined;
  uploadedBy?: string | undefined;
}

interface Remembered<T> {
  value: T;
  until: number;
}

/** Entries beyond this in a memory of answers: it is emptied (hostile ids cannot make it grow without end). */
const MAX_REMEMBERED = 100000;

export class FirmwareRegistry {
  readonly maxImageBytes: number;
  private readonly db: Queryable;
  private readonly keyFiles: readonly KeyFile[];
  private readonly cacheBytes: number;
  private readonly rememberMs: number;
  private readonly clock: Clock;
  private readonly offers = new Map<string, Remembered<boolean>>();
  private readonly sizes = new Map<string, Remembered<number | undefined>>();
  private readonly machines = new Map<string, Remembered<boolean>>();
  /** Image bytes, in order of last use (a Map keeps insertion order). */
  private readonly cache = new Map<string, Buffer>();
  private cached = 0;
  private readonly loading = new Map<string, Promise<Buffer | undefined>>();

  constructor(db: Queryable, options: RegistryOptions = {}) {
    this.db = db;
    this.keyFiles = options.keyFiles ?? [];
    const max = options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES;
    if (!Number.isInteger(max) || max < 1 || max > MAX_IMAGE_BYTES_LIMIT) throw new Error(`the largest image must be 1 to ${MAX_IMAGE_BYTES_LIMIT} bytes, not ${max}`);
    this.maxImageBytes = max;
    this.cacheBytes = options.cacheBytes ?? 64 * 1024 * 1024;
    this.rememberMs = options.rememberMs ?? 2000;
    this.clock = options.clock ?? REAL_CLOCK;
  }

  /** The release keys as the files say now (FirmwareError release-keys-unavailable when one cannot be read). */
  releaseKeys(): ReleaseKey[] {
    try {
      return loadReleaseKeys(this.keyFiles);
    } catch (e) {
      if (e instanceof ReleaseKeyError) throw new FirmwareError('release-keys-unavailable', `the gateway's release keys cannot be read: ${e.message}`);
      throw e;
    }
  }

  /**
   * Check an upload and store it. The same bytes under the same version are
   * the image already stored (`duplicate`, nothing changes: not its notes,
   * not its signature); the same bytes under another version, or another
   * image under a version taken, are refused.
   */
  async upload(u: Upload): Promise<{ image: ImageRecord; duplicate: boolean }> {
    if (!isVersion(u.version)) throw new FirmwareError('bad-version', VERSION_RULE);
    const notes = u.notes ?? '';
    const bad = notesProblem(notes);
    if (bad) throw new FirmwareError('bad-notes', bad);
    if (u.journal !== undefined && !isJournalFormat(u.journal)) throw new FirmwareError('bad-request', 'journal is a journal format, a whole number from 1 to 65535');
    const size = u.bytes.byteLength;
    if (size === 0) throw new FirmwareError('bad-image', 'the image is empty');
    if (size > this.maxImageBytes) throw new FirmwareError('too-large', `the image is ${size} bytes; this gateway takes at most ${this.maxImageBytes}`);
    let facts: ImageFacts;
    try {
      facts = imageFacts(u.bytes);
    } catch (e) {
      if (e instanceof ImageError) throw new FirmwareError('bad-image', e.message);
      throw e;
    }
    const said = facts.description;
    if (said && said.version !== u.version) throw new FirmwareError('bad-image', `the image says it is version ${said.version}, not ${u.version}`);
    if (said?.journal !== undefined && u.journal !== undefined && said.journal !== u.journal) {
      throw new FirmwareError('bad-image', `the image says it writes journal format ${said.journal}, not ${u.journal}`);
    }
    const sha256 = sha256Hex(u.bytes);
    const signer = this.checkSignature(sha256, size, u);
    const image = {
      sha256,
      version: u.version,
      size,
      kind: facts.kind,
      journal: said?.journal ?? u.journal ?? CURRENT_JOURNAL_FORMAT,
      described: said !== undefined,
      notes,
      key: signer.id,
      signature: signer.signature,
      uploadedBy: u.uploadedBy ?? null,
      bytes: u.bytes,
    };
    // Twice at most: what an insert conflicted with may be deleted before it is looked at.
    for (let attempt = 0; attempt < 2; attempt++) {
      const inserted = await sql.insertImage(this.db, image);
      if (inserted) return { image: inserted, duplicate: false };
      const conflicts = await sql.findConflicts(this.db, sha256, u.version);
      const same = conflicts.find((c) => c.sha256 === sha256);
      if (same && same.version === u.version) return { image: same, duplicate: true };
      if (same) throw new FirmwareError('image-exists', `these bytes are already stored as version ${same.version} (${sha256}); an image has one version`);
      const other = conflicts.find((c) => c.version === u.version);
      if (other) throw new FirmwareError('version-taken', `version ${u.version} is already image ${other.sha256}; give these bytes a version of their own`);
    }
    throw new Error('the image insert conflicted twice with images that were then gone');
  }

  /** Which known release key signed these bytes for this version; FirmwareError otherwise. */
  private checkSignature(sha256: string, size: number, u: Upload): { id: string; signature: string } {
    if (u.signature === undefined || u.signature === '') {
      throw new FirmwareError('unsigned', 'the image is not signed: give the Ed25519 signature of "vendfleet-image v1 <sha256> <size> <version>" (vendctl firmware upload signs with --key)');
    }
    const signature = parseSignature(u.signature);
    if (!signature) throw new FirmwareError('bad-signature', 'the signature is not 64 bytes of base64 or base64url');
    if (u.keyId !== undefined && !/^[0-9a-f]{16}$/.test(u.keyId)) throw new FirmwareError('bad-request', 'key is a release key id, 16 hex digits');
    const keys = this.releaseKeys();
    if (keys.length === 0) {
      throw new FirmwareError('unknown-key', 'this gateway knows no release keys: put PEM public keys in VENDFLEET_RELEASE_KEYS or the data directory\'s release-keys.pem');
    }
    const candidates = u.keyId === undefined ? keys : keys.filter((k) => k.id === u.keyId);
    if (candidates.length === 0) throw new FirmwareError('unknown-key', `release key ${u.keyId} is not one this gateway knows (it knows ${keys.map((k) => k.id).join(', ')})`);
    for (const k of candidates) {
      if (verifyRelease(k.key, sha256, size, u.version, signature)) return { id: k.id, signature: signature.toString('base64url') };
    }
    throw new FirmwareError(
      'bad-signature',
      u.keyId === undefined
        ? `the signature does not verify under any of this gateway's ${keys.length} release keys (an unknown key, or not over these bytes and this version)`
        : `the signature does not verify under release key ${u.keyId} for these bytes (sha256 ${sha256}, ${size} bytes) and version ${u.version}`,
    );
  }

  async list(limit = 100): Promise<ImageRecord[]> {
    return sql.listImages(this.db, limit);
  }

  async get(sha256: string): Promise<ImageRecord | undefined> {
    return SHA256_HEX.test(sha256) ? sql.getImage(this.db, sha256) : undefined;
  }

  /** Delete an image nothing uses: FirmwareError unknown-image, or in-use saying what holds it. */
  async delete(sha256: string): Promise<ImageRecord> {
    const image = await this.get(sha256);
    if (!image) throw new FirmwareError('unknown-image', `no image ${sha256}`);
    const use = await sql.imageUse(this.db, sha256, image.version);
    const held = [
      use.offers.length > 0 ? `offered to ${use.offers.join(', ')}` : '',
      use.commands.length > 0 ? `named by outstanding update commands ${use.commands.join(', ')}` : '',
      use.rollouts.length > 0 ? `rolled out by ${use.rollouts.join(', ')}` : '',
      use.running.length > 0 ? `version ${image.version} runs on ${use.running.join(', ')}` : '',
    ].filter((s) => s !== '');
    if (held.length > 0) throw new FirmwareError('in-use', `image ${image.version} is in use: ${held.join('; ')}`);
    try {
      await sql.deleteImage(this.db, sha256);
    } catch (e) {
      // An offer made since the check holds it (foreign key).
      if ((e as { code?: string }).code === '23503') throw new FirmwareError('in-use', `image ${image.version} was offered to a machine meanwhile`);
      throw e;
    }
    this.forget(sha256);
    return image;
  }

  /** Let a machine fetch an image (a rollout's or an update command's part). */
  async offer(machine: string, sha256: string): Promise<void> {
    if (!isMachineId(machine)) throw new FirmwareError('bad-request', MACHINE_ID_RULE);
    if (!SHA256_HEX.test(sha256)) throw new FirmwareError('bad-request', 'an image is named by its SHA-256, 64 lower-case hex digits');
    if (!(await sql.machineExists(this.db, machine))) throw new FirmwareError('unknown-machine', `no machine "${machine}"`);
    if (!(await sql.getImage(this.db, sha256))) throw new FirmwareError('unknown-image', `no image ${sha256}`);
    try {
      await sql.insertOffer(this.db, machine, sha256);
    } catch (e) {
      if ((e as { code?: string }).code === '23503') throw new FirmwareError('unknown-image', `image ${sha256} was deleted meanwhile`);
      throw e;
    }
    this.remember(this.offers, `${machine} ${sha256}`, true);
  }

  /**
   * An offer opened or withdrawn by someone writing the store directly (an
   * update command, in its own transaction): this gateway's chunk server
   * knows at once instead of within rememberMs.
   */
  noteOffer(machine: string, sha256: string, offered: boolean): void {
    this.remember(this.offers, `${machine} ${sha256}`, offered);
  }

  /** The machine may no longer fetch the image; false if it could not anyway. */
  async withdraw(machine: string, sha256: string): Promise<boolean> {
    if (!isMachineId(machine) || !SHA256_HEX.test(sha256)) return false;
    const was = await sql.deleteOffer(this.db, machine, sha256);
    this.remember(this.offers, `${machine} ${sha256}`, false);
    return was;
  }

  /** The images offered to a machine now (from the store). */
  async offersTo(machine: string): Promise<string[]> {
    return isMachineId(machine) ? sql.offersTo(this.db, machine) : [];
  }

  /** Is the machine in this store? (remembered for rememberMs) */
  async knows(machine: string): Promise<boolean> {
    if (!isMachineId(machine)) return false;
    const hit = this.recall(this.machines, machine);
    if (hit !== undefined) return hit.value;
    const value = await sql.machineExists(this.db, machine);
    this.remember(this.machines, machine, value);
    return value;
  }

  /** May this machine fetch this image? (remembered for rememberMs) */
  async offered(machine: string, sha256: string): Promise<boolean> {
    const key = `${machine} ${sha256}`;
    const hit = this.recall(this.offers, key);
    if (hit !== undefined) return hit.value;
    const value = await sql.isOffered(this.db, machine, sha256);
    this.remember(this.offers, key, value);
    return value;
  }

  /** An image's size, or undefined when there is no such image (remembered for rememberMs). */
  async size(sha256: string): Promise<number | undefined> {
    const bytes = this.cache.get(sha256);
    if (bytes) return bytes.length;
    const hit = this.recall(this.sizes, sha256);
    if (hit !== undefined) return hit.value;
    const value = (await sql.getImage(this.db, sha256))?.size;
    this.remember(this.sizes, sha256, value);
    return value;
  }

  /** An image's bytes, from memory when served lately; one load from the store however many ask at once. */
  async bytes(sha256: string): Promise<Buffer | undefined> {
    const hit = this.cache.get(sha256);
    if (hit) {
      this.cache.delete(sha256);
      this.cache.set(sha256, hit);
      return hit;
    }
    let load = this.loading.get(sha256);
    if (!load) {
      load = sql.imageBytes(this.db, sha256).finally(() => this.loading.delete(sha256));
      this.loading.set(sha256, load);
      void load.then((b) => b && this.keep(sha256, b), () => undefined);
    }
    return load;
  }

  private keep(sha256: string, bytes: Buffer): void {
    if (this.cache.has(sha256) || bytes.length > this.cacheBytes) return;
    this.cache.set(sha256, bytes);
    this.cached += bytes.length;
    for (const [k, b] of this.cache) {
      if (this.cached <= this.cacheBytes) break;
      this.cache.delete(k);
      this.cached -= b.length;
    }
  }

  private forget(sha256: string): void {
    const b = this.cache.get(sha256);
    if (b) {
      this.cache.delete(sha256);
      this.cached -= b.length;
    }
    this.sizes.delete(sha256);
    for (const k of this.offers.keys()) if (k.endsWith(` ${sha256}`)) this.offers.delete(k);
  }

  private recall<T>(memory: Map<string, Remembered<T>>, key: string): Remembered<T> | undefined {
    const hit = memory.get(key);
    if (hit && hit.until > this.clock.now()) return hit;
    return undefined;
  }

  private remember<T>(memory: Map<string, Remembered<T>>, key: string, value: T): void {
    if (memory.size >= MAX_REMEMBERED) memory.clear();
    memory.set(key, { value, until: this.clock.now() + this.rememberMs });
  }
}
