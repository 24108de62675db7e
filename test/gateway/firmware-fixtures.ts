/**
 * Firmware images and release keys for the registry and chunk server
 * tests: a simulator bundle with its description line, an ESP32-shaped
 * image (0xE9 first), key pairs written as PEM files the way vendctl
 * firmware keygen writes them.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateReleaseKey, signRelease } from '../../gateway/firmware/signature.js';

/** A simulator bundle of about `size` bytes: its description line, then code-like filler that differs by `seed`. */
export function simImage(version: string, options: { journal?: number; size?: number; seed?: number; description?: string } = {}): Buffer {
  const line = options.description ?? `/*VFIMG ${JSON.stringify({ version, ...(options.journal !== undefined ? { journal: options.journal } : {}) })}*/\n`;
  const size = options.size ?? 10000;
  const body = Buffer.alloc(Math.max(0, size - Buffer.byteLength(line)));
  let x = (options.seed ?? 1) * 2654435761;
  for (let i = 0; i < body.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    body[i] = 32 + ((x >>> 16) % 95);
  }
  return Buffer.concat([Buffer.from(line, 'utf8'), body]);
}

/** An ESP32 application image's shape: the magic byte, then bytes that differ by `seed`. */
export function espImage(size: number, seed = 1): Buffer {
  const b = Buffer.alloc(size);
  let x = seed * 40503;
  for (let i = 0; i < size; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  b[0] = 0xe9;
  return b;
}

export interface TestKey {
  id: string;
  privatePem: string;
  publicPem: string;
}

export function testKey(): TestKey {
  const k = generateReleaseKey();
  return { id: k.keyId, privatePem: k.privatePem, publicPem: k.publicPem };
}

/** A directory of its own with these public keys in `release-keys.pem`. */
export function keysFile(...keys: TestKey[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'vf-keys-'));
  const path = join(dir, 'release-keys.pem');
  writeFileSync(path, keys.map((k) => k.publicPem).join(''));
  return path;
}

/** An upload of `bytes` as `version`, signed by `key`. */
export function signed(bytes: Buffer, version: string, key: TestKey): { bytes: Buffer; version: string; signature: string; keyId: string } {
  const s = signRelease(bytes, version, key.privatePem);
  return { bytes, version, signature: s.signature, keyId: s.keyId };
}
