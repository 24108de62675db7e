/**
 * The firmware registry on the embedded store and on PostgreSQL: signed
 * images stored once by SHA-256 and once per version, every refusal of a
 * signature (unsigned, malformed, unknown key, wrong bytes, wrong version,
 * another key), of a version, of an image (empty, too large, not an image,
 * a description that lies) and of release notes; release key files read
 * at each upload; offers; deleting only what nothing uses.
 */
import { strict as assert } from 'node:assert';
import { appendFileSync, writeFileSync } from 'node:fs';
import { CURRENT_JOURNAL_FORMAT, compareVersions, imageFacts, notesProblem } from '../../gateway/firmware/image.js';
import { FirmwareError, FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { parsePublicKeys, parseSignature, sha256Hex, signedText } from '../../gateway/firmware/signature.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, type Backend } from './backends.js';
import { espImage, keysFile, signed, simImage, testKey } from './firmware-fixtures.js';

/** The FirmwareError code `p` rejects with (and its message matching `message`). */
async function refused(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FirmwareError, `a FirmwareError, not ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('firmware images: versions, descriptions, notes, signatures (no store)', () => {
  it('compares versions numerically, field by field', () => {
    assert.ok(compareVersions('1.10.0', '1.9.9') > 0);
    assert.ok(compareVersions('0.2.0', '0.10.0') < 0);
    assert.equal(compareVersions('3.0.7', '3.0.7'), 0);
  });

  it('reads what an image says about itself, and refuses what is not an image', () => {
    assert.deepEqual(imageFacts(simImage('0.2.0', { journal: 3 })), { kind: 'sim', description: { version: '0.2.0', journal: 3 } });
    assert.deepEqual(imageFacts(simImage('0.2.0')), { kind: 'sim', description: { version: '0.2.0' } });
    assert.deepEqual(imageFacts(espImage(100)), { kind: 'esp32' });
    for (const [bytes, why] of [
      [Buffer.from('console.log(1)'), /not a firmware image/],
      [Buffer.from('/*VFIMG {"version":"1.0.0"}'), /does not end/],
      [Buffer.from(`/*VFIMG {"version":"1.0.0",${' '.repeat(2000)}}*/`), /does not end/],
      [Buffer.from('/*VFIMG {version:1}*/'), /not JSON/],
      [Buffer.from('/*VFIMG [1]*/'), /not a JSON object/],
      [Buffer.from('/*VFIMG {"version":"1.0"}*/'), /no valid version/],
      [Buffer.from('/*VFIMG {"version":"1.0.0","journal":0}*/'), /journal format/],
      [Buffer.from('/*VFIMG {"version":"1.0.0","journal":"3"}*/'), /journal format/],
      [Buffer.from('/*VFIMG {"version":"1.0.0","journal":1.5}*/'), /journal format/],
    ] as const) {
      assert.throws(() => imageFacts(bytes), why, bytes.toString('latin1').slice(0, 40));
    }
  });

  it('takes release notes that are plain text, and nothing that hides or breaks text', () => {
    assert.equal(notesProblem('Fixes the coin tube count.\n\n- tabs\there\r\n- ünïcödé 🍫'), undefined);
    for (const [notes, why] of [
      ['a\u0000b', /control/],
      ['bell\u0007', /control/],
      ['esc\u001b[31m red', /control/],
      ['c1\u0085', /control/],
      ['del\u007f', /control/],
      ['admin\u202Enigol', /bidirectional/],
      ['iso\u2066late', /bidirectional/],
      ['lone \ud800 surrogate', /valid Unicode/],
      ['broken \uFFFD utf-8', /U\+FFFD/],
      ['x'.repeat(4097), /at most 4096 bytes/],
      ['é'.repeat(2049), /at most 4096 bytes/],
    ] as const) {
      assert.match(notesProblem(notes) ?? '', why, JSON.stringify(notes.slice(0, 20)));
    }
  });

  it('signs the documented text, and reads signatures and key files strictly', () => {
    assert.equal(signedText('ab'.repeat(32), 12, '1.2.3'), `vendfleet-image v1 ${'ab'.repeat(32)} 12 1.2.3`);
    const k = testKey();
    const s = signed(Buffer.from('x'), '1.0.0', k);
    const raw = parseSignature(s.signature)!;
    assert.equal(raw.length, 64);
    assert.deepEqual(parseSignature(raw.toString('base64')), raw, 'standard base64 too');
    for (const bad of ['', 'x', raw.toString('hex'), `${s.signature}A`, s.signature.slice(1)]) assert.equal(parseSignature(bad), undefined, bad);
    // Standard base64 without its padding is refused. (Fixed bytes whose base64 has '+' and '/': a random
    // signature's often has neither, and then the same text is valid base64url, rightly taken.)
    const plusSlash = Buffer.alloc(64, 0xfb);
    assert.match(plusSlash.toString('base64'), /[+/]/);
    assert.equal(parseSignature(plusSlash.toString('base64').replace('==', '')), undefined);
    assert.deepEqual(parseSignature(plusSlash.toString('base64')), plusSlash);
    assert.equal(parsePublicKeys(k.publicPem + k.publicPem, 'f').length, 2);
    assert.throws(() => parsePublicKeys(k.privatePem, 'f'), /private key/);
    assert.throws(() => parsePublicKeys(`${k.publicPem}junk`, 'f'), /outside the PEM blocks/);
    assert.throws(() => parsePublicKeys('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'f'), /not a public key/);
    assert.throws(() => parsePublicKeys('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'f'), /cannot be read/);
  });
});

for (const backend of BACKENDS) {
  describe(`firmware registry: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    const key = testKey();
    const other = testKey();
    let keys: string;
    let registry: FirmwareRegistry;

    before(async () => {
      b = await backend.open();
      await migrate(b.db);
      await addMachines(b.db, ['vm-1', 'vm-2']);
      keys = keysFile(key);
      registry = new FirmwareRegistry(b.db, { keyFiles: [{ path: keys, optional: false }], maxImageBytes: 64 * 1024 });
    });
    after(async () => {
      await b?.close();
    });

    it('stores a signed image once, by its SHA-256, with what it says about itself', async () => {
      const bytes = simImage('1.0.0', { journal: 5 });
      const up = await registry.upload({ ...signed(bytes, '1.0.0', key), notes: 'first\nrelease', uploadedBy: 'tester' });
      assert.equal(up.duplicate, false);
      assert.equal(up.image.sha256, sha256Hex(bytes));
      assert.deepEqual(
        { version: up.image.version, size: up.image.size, kind: up.image.kind, journal: up.image.journal, described: up.image.described, notes: up.image.notes, key: up.image.key, by: up.image.uploadedBy },
        { version: '1.0.0', size: bytes.length, kind: 'sim', journal: 5, described: true, notes: 'first\nrelease', key: key.id, by: 'tester' },
      );
      assert.deepEqual(await registry.bytes(up.image.sha256), bytes);
      assert.deepEqual(await registry.get(up.image.sha256), up.image);
      // The same bytes and version again (even signed afresh, with other notes): the one stored, unchanged.
      const again = await registry.upload({ ...signed(bytes, '1.0.0', key), notes: 'other notes' });
      assert.equal(again.duplicate, true);
      assert.deepEqual(again.image, up.image);
      assert.equal((await registry.list()).filter((i) => i.sha256 === up.image.sha256).length, 1);
    });

    it('refuses the same bytes under another version, and another image under a version taken', async () => {
      const bytes = simImage('1.1.0', { seed: 11 });
      await registry.upload(signed(bytes, '1.1.0', key));
      // Without a description an ESP32 image can claim any version: the store's key says no.
      const esp = espImage(3000, 5);
      await registry.upload(signed(esp, '1.2.0', key));
      await refused(registry.upload(signed(esp, '1.2.1', key)), 'image-exists', /already stored as version 1\.2\.0/);
      await refused(registry.upload(signed(espImage(3000, 6), '1.2.0', key)), 'version-taken', /version 1\.2\.0 is already image/);
      await refused(registry.upload(signed(simImage('1.1.0', { seed: 12 }), '1.1.0', key)), 'version-taken');
    });

    it('keeps one copy when the same image is uploaded at the same moment', async () => {
      const bytes = espImage(5000, 42);
      const both = await Promise.all([registry.upload(signed(bytes, '4.0.0', key)), registry.upload(signed(bytes, '4.0.0', key))]);
      assert.deepEqual(both.map((u) => u.duplicate).sort(), [false, true]);
      const versions = await b.db.query<{ n: string }>("SELECT count(*) AS n FROM firmware_images WHERE version = '4.0.0'");
      assert.equal(Number(versions.rows[0]!.n), 1);
    });

    it('takes the journal format from the description, the upload, or the current one, and refuses them disagreeing', async () => {
      const plain = await registry.upload(signed(espImage(200, 7), '2.0.0', key));
      assert.deepEqual([plain.image.kind, plain.image.described, plain.image.journal], ['esp32', false, CURRENT_JOURNAL_FORMAT]);
      const given = await registry.upload({ ...signed(espImage(200, 8), '2.0.1', key), journal: 9 });
      assert.equal(given.image.journal, 9);
      const undescribed = await registry.upload(signed(simImage('2.0.2', { seed: 3 }), '2.0.2', key));
      assert.equal(undescribed.image.journal, CURRENT_JOURNAL_FORMAT, 'a description without journal: the current one');
      await refused(registry.upload({ ...signed(simImage('2.0.3', { journal: 4 }), '2.0.3', key), journal: 5 }), 'bad-image', /journal format 4, not 5/);
      await refused(registry.upload({ ...signed(espImage(10), '2.0.4', key), journal: 0 }), 'bad-request');
    });

    it('refuses an image that is not signed by a release key it knows, for these bytes and this version', async () => {
      const bytes = simImage('3.0.0', { seed: 30 });
      const good = signed(bytes, '3.0.0', key);
      await refused(registry.upload({ bytes, version: '3.0.0' }), 'unsigned', /not signed/);
      await refused(registry.upload({ bytes, version: '3.0.0', signature: '' }), 'unsigned');
      await refused(registry.upload({ bytes, version: '3.0.0', signature: 'not base64!' }), 'bad-signature', /not 64 bytes/);
      await refused(registry.upload({ bytes, version: '3.0.0', signature: Buffer.alloc(63).toString('base64url') }), 'bad-signature', /not 64 bytes/);
      // Signed by a key the gateway does not know: said so when the key is named, a bad signature when not.
      const stranger = signed(bytes, '3.0.0', other);
      await refused(registry.upload(stranger), 'unknown-key', new RegExp(`${other.id} is not one this gateway knows`));
      await refused(registry.upload({ ...stranger, keyId: undefined }), 'bad-signature', /any of this gateway's 1 release keys/);
      // The right key over other bytes, another version, another size; a flipped bit.
      await refused(registry.upload({ ...signed(simImage('3.0.0', { seed: 31 }), '3.0.0', key), bytes }), 'bad-signature', /does not verify under release key/);
      await refused(registry.upload({ ...signed(simImage('3.0.1', { seed: 30 }), '3.0.1', key), bytes, version: '3.0.0' }), 'bad-signature');
      // The same bytes signed for one version, uploaded as another (an ESP32 image says no version of its own).
      const esp = espImage(500, 31);
      await refused(registry.upload({ ...signed(esp, '3.0.2', key), version: '3.0.3' }), 'bad-signature', /version 3\.0\.3/);
      const flipped = Buffer.from(parseSignature(good.signature)!);
      flipped[10]! ^= 1;
      await refused(registry.upload({ ...good, signature: flipped.toString('base64url') }), 'bad-signature');
      await refused(registry.upload({ ...good, keyId: 'ABCDEF0123456789' }), 'bad-request', /16 hex digits/);
      assert.equal(await registry.get(sha256Hex(bytes)), undefined, 'nothing stored');
      // The good one, in standard base64 as curl users may send it.
      const up = await registry.upload({ ...good, signature: parseSignature(good.signature)!.toString('base64') });
      assert.equal(up.image.key, key.id);
    });

    it('reads the release key files at each upload: a key added counts at once, a bad file refuses uploads', async () => {
      const bytes = espImage(100, 77);
      await refused(registry.upload(signed(bytes, '5.0.0', other)), 'unknown-key');
      appendFileSync(keys, other.publicPem);
      assert.equal((await registry.upload(signed(bytes, '5.0.0', other))).image.key, other.id);
      const broken = keysFile(key);
      const r2 = new FirmwareRegistry(b.db, { keyFiles: [{ path: broken, optional: false }] });
      writeFileSync(broken, key.privatePem);
      await refused(r2.upload(signed(espImage(100, 78), '5.0.1', key)), 'release-keys-unavailable', /private key/);
      const missing = new FirmwareRegistry(b.db, { keyFiles: [{ path: `${broken}.gone`, optional: false }] });
      await refused(missing.upload(signed(espImage(100, 78), '5.0.1', key)), 'release-keys-unavailable', /cannot read/);
      const none = new FirmwareRegistry(b.db, { keyFiles: [{ path: `${broken}.gone`, optional: true }] });
      await refused(none.upload(signed(espImage(100, 78), '5.0.1', key)), 'unknown-key', /knows no release keys/);
    });

    it('refuses bad versions, hostile notes, empty, oversized and lying images', async () => {
      for (const v of ['', '1', '1.2', '1.2.3.4', '01.2.3', '1.02.3', '1.2.3-rc.1', '1.2.3+build', 'v1.2.3', ' 1.2.3', '1.2.3\n', '1234567890.0.0', '-1.0.0', '1.2.3\u0000', '١.٢.٣']) {
        await refused(registry.upload(signed(espImage(10, 2), v, key)), 'bad-version', undefined);
      }
      await refused(registry.upload({ ...signed(espImage(10, 2), '6.0.0', key), notes: 'x\u202Ey' }), 'bad-notes', /bidirectional/);
      await refused(registry.upload({ ...signed(espImage(10, 2), '6.0.0', key), notes: 'x'.repeat(5000) }), 'bad-notes');
      await refused(registry.upload(signed(Buffer.alloc(0), '6.0.0', key)), 'bad-image', /empty/);
      await refused(registry.upload(signed(espImage(64 * 1024 + 1), '6.0.0', key)), 'too-large', /at most 65536/);
      await refused(registry.upload(signed(Buffer.from('#!/bin/sh\nrm -rf /\n'), '6.0.0', key)), 'bad-image', /not a firmware image/);
      await refused(registry.upload(signed(simImage('6.0.1'), '6.0.0', key)), 'bad-image', /says it is version 6\.0\.1, not 6\.0\.0/);
      assert.equal((await registry.list()).some((i) => i.version.startsWith('6.')), false);
      // The limit as configured: at most 32 MiB.
      assert.throws(() => new FirmwareRegistry(b.db, { maxImageBytes: 64 * 1024 * 1024 }), /1 to 33554432 bytes/);
      assert.throws(() => new FirmwareRegistry(b.db, { maxImageBytes: 0 }), /1 to 33554432 bytes/);
    });

    it('offers an image to a machine and withdraws it; deletes only an image nothing uses', async () => {
      const { image } = await registry.upload(signed(espImage(900, 90), '7.0.0', key));
      assert.equal(await registry.offered('vm-1', image.sha256), false);
      await registry.offer('vm-1', image.sha256);
      await registry.offer('vm-1', image.sha256);
      assert.equal(await registry.offered('vm-1', image.sha256), true);
      assert.equal(await registry.offered('vm-2', image.sha256), false);
      assert.deepEqual(await registry.offersTo('vm-1'), [image.sha256]);
      await refused(registry.offer('vm-9', image.sha256), 'unknown-machine');
      await refused(registry.offer('vm-1', 'f'.repeat(64)), 'unknown-image');
      await refused(registry.offer('vm/1', image.sha256), 'bad-request');
      await refused(registry.offer('vm-1', image.sha256.toUpperCase()), 'bad-request');
      // Offered: in use.
      await refused(registry.delete(image.sha256), 'in-use', /offered to vm-1/);
      assert.equal(await registry.withdraw('vm-1', image.sha256), true);
      assert.equal(await registry.withdraw('vm-1', image.sha256), false);
      assert.equal(await registry.offered('vm-1', image.sha256), false, 'at once on this gateway');
      // Named by an outstanding update command; then a machine says it runs the version.
      await b.db.query(
        `INSERT INTO commands (id, machine_id, n, type, args, issued_at, expires_at, status) VALUES ('c-up-1', 'vm-2', 1, 'update', $1::jsonb, now(), now() + interval '1 hour', 'delivered')`,
        [JSON.stringify({ version: '7.0.0', sha256: image.sha256 })],
      );
      await refused(registry.delete(image.sha256), 'in-use', /update commands c-up-1/);
      await b.db.query("UPDATE commands SET status = 'applied' WHERE id = 'c-up-1'");
      await b.db.query(`INSERT INTO machine_state (machine_id, telemetry, telemetry_at) VALUES ('vm-2', '{"fw":"7.0.0"}'::jsonb, now())`);
      await refused(registry.delete(image.sha256), 'in-use', /runs on vm-2/);
      await b.db.query(`UPDATE machine_state SET telemetry = '{"fw":"1.0.0"}'::jsonb WHERE machine_id = 'vm-2'`);
      assert.equal((await registry.delete(image.sha256)).version, '7.0.0');
      assert.equal(await registry.get(image.sha256), undefined);
      assert.equal(await registry.bytes(image.sha256), undefined);
      await refused(registry.delete(image.sha256), 'unknown-image');
      // Gone: the version is free again.
      await registry.upload(signed(espImage(900, 91), '7.0.0', key));
    });

    it('reads an image from the store once however many ask at once', async () => {
      const bytes = espImage(20000, 123);
      const { image } = await registry.upload(signed(bytes, '8.0.0', key));
      const fresh = new FirmwareRegistry(b.db);
      const all = await Promise.all(Array.from({ length: 20 }, () => fresh.bytes(image.sha256)));
      for (const got of all) assert.equal(got, all[0], 'the same buffer');
      assert.deepEqual(all[0], bytes);
      assert.equal(await fresh.size(image.sha256), bytes.length);
      assert.equal(await fresh.size('0'.repeat(64)), undefined);
    });
  });
}
