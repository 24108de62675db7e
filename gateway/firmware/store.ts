/**
 * Firmware images and offers in the fleet store (migration 10). The bytes
 * live in the store beside their metadata, not in a data directory: every
 * gateway of a share group must be able to serve any machine's chunk
 * request, and the store is the one thing they all share (an image is a
 * few MiB at most, well within a bytea). Offers say which machine may fetch
 * which image.
 */
import type { Queryable } from '../store/db.js';
import type { ImageKind } from './image.js';

export interface ImageRecord {
  sha256: string;
  version: string;
  size: number;
  kind: ImageKind;
  /** The journal format the image writes. */
  journal: number;
  /** Whether the image carried its own /*VFIMG*\/ description (else journal came from the upload). */
  described: boolean;
  notes: string;
  /** The release key that signed it, and the signature (base64url). */
  key: string;
  signature: string;
  uploadedBy: string | null;
  uploadedAt: string;
}

export interface NewImage extends Omit<ImageRecord, 'uploadedAt'> {
  bytes: Uint8Array;
}

interface Row {
  sha256: string;
  version: string;
  size: number;
  kind: ImageKind;
  journal: number;
  described: boolean;
  notes: string;
  key_id: string;
  signature: string;
  uploaded_by: string | null;
  uploaded_at: Date | string;
}

const COLUMNS = 'sha256, version, size, kind, journal, described, notes, key_id, signature, uploaded_by, uploaded_at';

function record(r: Row): ImageRecord {
  return {
    sha256: r.sha256,
    version: r.version,
    size: Number(r.size),
    kind: r.kind,
    journal: Number(r.journal),
    described: r.described,
    notes: r.notes,
    key: r.key_id,
    signature: r.signature,
    uploadedBy: r.uploaded_by,
    uploadedAt: new Date(r.uploaded_at).toISOString(),
  };
}

/** Insert unless the bytes or the version are there already: the new record, or undefined on a conflict. */
export async function insertImage(db: Queryable, i: NewImage): Promise<ImageRecord | undefined> {
  const r = await db.query<Row>(
    `INSERT INTO firmware_images (sha256, version, size, kind, journal, described, notes, key_id, signature, uploaded_by, bytes)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
    [i.sha256, i.version, i.size, i.kind, i.journal, i.described, i.notes, i.key, i.signature, i.uploadedBy, Buffer.from(i.bytes.buffer, i.bytes.byteOffset, i.bytes.byteLength)],
  );
  return r.rows[0] ? record(r.rows[0]) : undefined;
}

/** The images holding these bytes or this version (what an insert conflicted with). */
export async function findConflicts(db: Queryable, sha256: string, version: string): Promise<ImageRecord[]> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM firmware_images WHERE sha256 = $1 OR version = $2`, [sha256, version]);
  return r.rows.map(record);
}

export async function getImage(db: Queryable, sha256: string): Promise<ImageRecord | undefined> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM firmware_images WHERE sha256 = $1`, [sha256]);
  return r.rows[0] ? record(r.rows[0]) : undefined;
}

export async function getImageByVersion(db: Queryable, version: string): Promise<ImageRecord | undefined> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM firmware_images WHERE version = $1`, [version]);
  return r.rows[0] ? record(r.rows[0]) : undefined;
}

/** Every image, newest upload first (no bytes). */
export async function listImages(db: Queryable, limit: number): Promise<ImageRecord[]> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM firmware_images ORDER BY uploaded_at DESC, sha256 LIMIT $1`, [limit]);
  return r.rows.map(record);
}

/** The image's bytes (pg gives a Buffer, PGlite a Uint8Array: a Buffer either way). */
export async function imageBytes(db: Queryable, sha256: string): Promise<Buffer | undefined> {
  const r = await db.query<{ bytes: Uint8Array }>('SELECT bytes FROM firmware_images WHERE sha256 = $1', [sha256]);
  const b = r.rows[0]?.bytes;
  return b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : undefined;
}

/** What keeps an image from being deleted: machines it is offered to, update commands naming it, unfinished rollouts of it, machines that say they run its version. */
export async function imageUse(db: Queryable, sha256: string, version: string): Promise<{ offers: string[]; commands: string[]; rollouts: string[]; running: string[] }> {
  const offers = await db.query<{ machine_id: string }>('SELECT machine_id FROM firmware_offers WHERE sha256 = $1 ORDER BY machine_id LIMIT 20', [sha256]);
  const commands = await db.query<{ id: string }>(
    `SELECT id FROM commands WHERE type = 'update' AND status IN ('queued', 'delivered', 'running') AND args->>'sha256' = $1 ORDER BY id LIMIT 20`,
    [sha256],
  );
  const rollouts = await db.query<{ id: string }>(`SELECT id FROM rollouts WHERE sha256 = $1 AND state IN ('running', 'paused', 'halted') ORDER BY id LIMIT 20`, [sha256]);
  const running = await db.query<{ machine_id: string }>(
    `SELECT machine_id FROM machine_state WHERE telemetry->>'fw' = $1 OR (jsonb_typeof(status) = 'object' AND (status->>'fw' = $1 OR status->>'firmware' = $1)) ORDER BY machine_id LIMIT 20`,
    [version],
  );
  return { offers: offers.rows.map((r) => r.machine_id), commands: commands.rows.map((r) => r.id), rollouts: rollouts.rows.map((r) => r.id), running: running.rows.map((r) => r.machine_id) };
}

/** Delete an image nothing holds (offers reference it: the foreign key refuses while one exists). */
export async function deleteImage(db: Queryable, sha256: string): Promise<boolean> {
  const r = await db.query<{ sha256: string }>('DELETE FROM firmware_images WHERE sha256 = $1 RETURNING sha256', [sha256]);
  return r.rows.length > 0;
}

export async function machineExists(db: Queryable, machine: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM machines WHERE id = $1', [machine])).rows.length > 0;
}

/** Offer an image to a machine (offering it again changes nothing). */
export async function insertOffer(db: Queryable, machine: string, sha256: string): Promise<void> {
  await db.query('INSERT INTO firmware_offers (machine_id, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING', [machine, sha256]);
}

export async function deleteOffer(db: Queryable, machine: string, sha256: string): Promise<boolean> {
  const r = await db.query<{ machine_id: string }>('DELETE FROM firmware_offers WHERE machine_id = $1 AND sha256 = $2 RETURNING machine_id', [machine, sha256]);
  return r.rows.length > 0;
}

export async function isOffered(db: Queryable, machine: string, sha256: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM firmware_offers WHERE machine_id = $1 AND sha256 = $2', [machine, sha256])).rows.length > 0;
}

/** The images offered to a machine. */
export async function offersTo(db: Queryable, machine: string): Promise<string[]> {
  const r = await db.query<{ sha256: string }>('SELECT sha256 FROM firmware_offers WHERE machine_id = $1 ORDER BY offered_at, sha256', [machine]);
  return r.rows.map((x) => x.sha256);
}

/**
 * Withdraw these (machine, image) offers, each unless an update command
 * naming that image for that machine is still outstanding or under way
 * (another command, or a rollout's, keeps it open). The offers withdrawn.
 */
export async function withdrawUnlessOutstanding(db: Queryable, pairs: readonly { machine: string; sha256: string }[]): Promise<{ machine: string; sha256: string }[]> {
  if (pairs.length === 0) return [];
  const r = await db.query<{ machine_id: string; sha256: string }>(
    `DELETE FROM firmware_offers o USING unnest($1::text[], $2::text[]) AS u(m, s)
     WHERE o.machine_id = u.m AND o.sha256 = u.s
       AND NOT EXISTS (SELECT 1 FROM commands c WHERE c.machine_id = u.m AND c.type = 'update' AND c.status IN ('queued', 'delivered', 'running') AND c.args->>'sha256' = u.s)
     RETURNING o.machine_id, o.sha256`,
    [pairs.map((p) => p.machine), pairs.map((p) => p.sha256)],
  );
  return r.rows.map((x) => ({ machine: x.machine_id, sha256: x.sha256 }));
}
