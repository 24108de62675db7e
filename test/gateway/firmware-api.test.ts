/**
 * The firmware routes of the operator API over real HTTP, on the embedded
 * store and on PostgreSQL: upload as curl would send it, list, read,
 * download the bytes, delete; roles; the refusals with their codes and
 * statuses (unsigned, unknown key, bad version, too large, wrong content
 * type, in use); an unauthenticated upload refused before its body is read.
 */
import { strict as assert } from 'node:assert';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { listen } from '../../gateway/api/listen.js';
import { createToken } from '../../gateway/api/tokens.js';
import { CommandService } from '../../gateway/commands/service.js';
import { FirmwareRegistry } from '../../gateway/firmware/registry.js';
import { sha256Hex } from '../../gateway/firmware/signature.js';
import { addMachines } from '../../gateway/store/machines.js';
import { migrate } from '../../gateway/store/migrations.js';
import { BACKENDS, type Backend } from './backends.js';
import { espImage, keysFile, signed, simImage, testKey } from './firmware-fixtures.js';

interface Image {
  sha256: string;
  version: string;
  size: number;
  kind: string;
  journal: number;
  notes: string;
  key: string;
  uploadedBy: string | null;
}

for (const backend of BACKENDS) {
  describe(`firmware over the operator API: ${backend.name}`, function () {
    this.timeout(60000);
    let b: Backend;
    let api: FastifyInstance;
    let commands: CommandService;
    let registry: FirmwareRegistry;
    let url: string;
    const tokens: Record<'admin' | 'operator' | 'viewer', string> = { admin: '', operator: '', viewer: '' };
    const key = testKey();

    /** POST /firmware the way curl --data-binary with --url-query does. */
    const upload = (bytes: Buffer, query: Record<string, string>, token = tokens.admin, contentType = 'application/octet-stream'): Promise<Response> =>
      fetch(`${url}/firmware?${new URLSearchParams(query).toString()}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: bytes });
    const signedQuery = (bytes: Buffer, version: string, extra: Record<string, string> = {}): Record<string, string> => {
      const s = signed(bytes, version, key);
      return { version, signature: s.signature, key: s.keyId, ...extra };
    };
    const get = (path: string, token = tokens.viewer, method = 'GET'): Promise<Response> => fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    const error = async (r: Response): Promise<{ status: number; error: string; message: string }> => ({ status: r.status, ...((await r.json()) as { error: string; message: string }) });

    before(async () => {
      b = await backend.open();
      await migrate(b.db);
      await addMachines(b.db, ['vm-1']);
      commands = new CommandService(b.db, () => {});
      registry = new FirmwareRegistry(b.db, { keyFiles: [{ path: keysFile(key), optional: false }], maxImageBytes: 256 * 1024 });
      api = await buildApi({ db: b.db, commands, firmware: registry });
      url = (await listen(api, '127.0.0.1', 0)).url;
      for (const role of ['admin', 'operator', 'viewer'] as const) tokens[role] = (await createToken(b.db, `fw ${role}`, role)).token;
    });
    after(async () => {
      await api?.close();
      commands?.close();
      await b?.close();
    });

    it('uploads a signed image, lists it, reads it and downloads its bytes', async () => {
      const bytes = simImage('1.0.0', { journal: 6, size: 70000 });
      const r = await upload(bytes, signedQuery(bytes, '1.0.0', { notes: 'Première version.\nTabs\tok.' }));
      assert.equal(r.status, 201, await r.clone().text());
      const image = (await r.json()) as Image;
      assert.equal(r.headers.get('location'), `/firmware/${sha256Hex(bytes)}`);
      assert.deepEqual(
        { sha256: image.sha256, version: image.version, size: image.size, kind: image.kind, journal: image.journal, notes: image.notes, key: image.key, by: image.uploadedBy },
        { sha256: sha256Hex(bytes), version: '1.0.0', size: 70000, kind: 'sim', journal: 6, notes: 'Première version.\nTabs\tok.', key: key.id, by: 'fw admin' },
      );
      const list = (await (await get('/firmware')).json()) as { images: Image[] };
      assert.deepEqual(list.images.map((i) => i.sha256), [image.sha256]);
      assert.equal(((await (await get(`/firmware/${image.sha256}`)).json()) as Image).version, '1.0.0');
      const down = await get(`/firmware/${image.sha256}/image`, tokens.operator);
      assert.equal(down.status, 200);
      assert.equal(down.headers.get('content-type'), 'application/octet-stream');
      assert.match(down.headers.get('content-disposition') ?? '', /filename="vendfleet-1\.0\.0\.js"/);
      assert.deepEqual(Buffer.from(await down.arrayBuffer()), bytes);
      // The same upload again: the image stored before, 200.
      const again = await upload(bytes, signedQuery(bytes, '1.0.0'));
      assert.equal(again.status, 200);
      assert.equal(((await again.json()) as Image).notes, 'Première version.\nTabs\tok.', 'unchanged');
    });

    it('gives each role its part: viewers read, operators download, admins upload and delete', async () => {
      const bytes = espImage(4000, 2);
      assert.equal((await error(await upload(bytes, signedQuery(bytes, '2.0.0'), tokens.operator))).error, 'forbidden');
      assert.equal((await error(await upload(bytes, signedQuery(bytes, '2.0.0'), 'vf_nobody'))).error, 'unauthorized');
      const up = await upload(bytes, signedQuery(bytes, '2.0.0'));
      assert.equal(up.status, 201);
      const sha = sha256Hex(bytes);
      assert.equal((await error(await get(`/firmware/${sha}/image`, tokens.viewer))).error, 'forbidden');
      assert.match((await get(`/firmware/${sha}/image`, tokens.operator)).headers.get('content-disposition') ?? '', /vendfleet-2\.0\.0\.bin/);
      assert.equal((await error(await get(`/firmware/${sha}`, tokens.operator, 'DELETE'))).error, 'forbidden');
      assert.equal((await get(`/firmware/${sha}`, tokens.admin, 'DELETE')).status, 200);
      assert.equal((await error(await get(`/firmware/${sha}`))).status, 404);
      assert.equal((await error(await get(`/firmware/${sha}/image`, tokens.operator))).error, 'unknown-image');
    });

    it('refuses an upload with a clear code: unsigned, unknown key, bad signature, bad version, not an image, notes', async () => {
      const bytes = espImage(3000, 3);
      const cases: [Record<string, string>, number, string][] = [
        [{ version: '3.0.0' }, 422, 'unsigned'],
        [{ ...signedQuery(bytes, '3.0.0'), key: '0123456789abcdef' }, 422, 'unknown-key'],
        [{ ...signedQuery(bytes, '3.0.1'), version: '3.0.0' }, 422, 'bad-signature'],
        [{ ...signedQuery(bytes, '3.0.0'), signature: 'AAAA' }, 422, 'bad-signature'],
        [signedQuery(bytes, '3.0'), 400, 'bad-version'],
        [signedQuery(bytes, '03.0.0'), 400, 'bad-version'],
        [signedQuery(bytes, '3.0.0', { notes: 'evil\u202Etxt.exe' }), 400, 'bad-notes'],
        [signedQuery(bytes, '3.0.0', { notes: 'nul\u0000' }), 400, 'bad-request'],
        [signedQuery(bytes, '3.0.0', { journal: '0' }), 400, 'bad-request'],
        [signedQuery(bytes, '3.0.0', { extra: '1' }), 400, 'bad-request'],
        [{ signature: signedQuery(bytes, '3.0.0').signature! }, 400, 'bad-request'],
      ];
      for (const [query, status, code] of cases) {
        const e = await error(await upload(bytes, query));
        assert.deepEqual([e.status, e.error], [status, code], `${JSON.stringify(query).slice(0, 120)}: ${e.message}`);
      }
      const text = Buffer.from('hello');
      assert.equal((await error(await upload(text, signedQuery(text, '3.0.0')))).error, 'bad-image');
      assert.equal((await error(await upload(Buffer.alloc(0), signedQuery(Buffer.alloc(0), '3.0.0')))).error, 'bad-image');
      // Whatever is not application/octet-stream is not taken: 415.
      assert.equal((await upload(bytes, signedQuery(bytes, '3.0.0'), tokens.admin, 'application/json')).status, 415);
      assert.equal((await upload(bytes, signedQuery(bytes, '3.0.0'), tokens.admin, 'text/plain')).status, 415);
      assert.equal((await get(`/firmware/${sha256Hex(bytes)}`)).status, 404, 'nothing stored');
    });

    it('refuses an image over the limit, and an unauthenticated upload before taking its body', async () => {
      const big = espImage(256 * 1024 + 1, 4);
      const r = await upload(big, signedQuery(big, '4.0.0'));
      assert.equal(r.status, 413);
      assert.equal(typeof ((await r.json()) as { message?: unknown }).message, 'string');
      // No token: answered 401 though the body (sent slowly, never finished) is still coming.
      const controller = new AbortController();
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(1024));
        },
      });
      // Were the body awaited first, no answer would come: the request is abandoned after 10 s and the test fails.
      const timer = setTimeout(() => controller.abort(new Error('no answer until the body was complete')), 10000);
      try {
        const noToken = await fetch(`${url}/firmware?version=4.0.0`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body, signal: controller.signal, duplex: 'half' } as RequestInit);
        assert.equal(noToken.status, 401);
      } finally {
        clearTimeout(timer);
        controller.abort();
      }
    });

    it('deletes only an image nothing uses', async () => {
      const bytes = espImage(2000, 5);
      const { sha256 } = (await (await upload(bytes, signedQuery(bytes, '5.0.0'))).json()) as Image;
      await registry.offer('vm-1', sha256);
      const e = await error(await get(`/firmware/${sha256}`, tokens.admin, 'DELETE'));
      assert.deepEqual([e.status, e.error], [409, 'in-use']);
      assert.match(e.message, /offered to vm-1/);
      await registry.withdraw('vm-1', sha256);
      const gone = (await (await get(`/firmware/${sha256}`, tokens.admin, 'DELETE')).json()) as { deleted: Image };
      assert.equal(gone.deleted.version, '5.0.0');
      assert.equal((await error(await get(`/firmware/${'0'.repeat(63)}g`))).status, 400, 'not a SHA-256');
    });

    it('describes the routes in the OpenAPI document', async () => {
      const doc = (await (await fetch(`${url}/docs/json`)).json()) as { paths: Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> } }>> };
      assert.ok(doc.paths['/firmware']?.['post']?.requestBody?.content?.['application/octet-stream'], JSON.stringify(doc.paths['/firmware']?.['post']));
      for (const p of ['/firmware', '/firmware/{sha256}', '/firmware/{sha256}/image']) assert.ok(doc.paths[p]?.['get'], p);
      assert.ok(doc.paths['/firmware/{sha256}']?.['delete']);
    });
  });
}
