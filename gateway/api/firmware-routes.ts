/**
 * The firmware registry over the operator API (docs/updates.md "On the
 * gateway"): upload a signed image (platform admin), list and read images,
 * download one's bytes (operator), delete one nothing uses (platform admin).
 * The images are shared by every operator (docs/tenants.md); offers of them
 * are per machine, so per operator.
 *
 * An upload is the image's bytes as the body (application/octet-stream)
 * and the rest in the query string, so that curl does it in one line:
 *
 *   curl --data-binary @firmware.js -H 'content-type: application/octet-stream' \
 *     -H "authorization: Bearer $VENDFLEET_TOKEN" \
 *     --url-query version=1.4.0 --url-query signature=$SIG --url-query notes@notes.txt \
 *     http://127.0.0.1:8080/firmware
 */
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import type { FirmwareRegistry } from '../firmware/registry.js';
import { MAX_NOTES_BYTES, SHA256_PATTERN, VERSION_RULE } from '../firmware/image.js';
import { KEY_ID_PATTERN } from '../firmware/signature.js';
import type { ImageRecord } from '../firmware/store.js';
import { HttpError } from './errors.js';
import { ERROR, type RouteContext } from './http.js';
import { validatorCompiler } from './validation.js';

const IMAGE = {
  type: 'object',
  properties: {
    sha256: { type: 'string', description: 'SHA-256 of the bytes, the image\'s name' },
    version: { type: 'string' },
    size: { type: 'integer' },
    kind: { type: 'string', enum: ['sim', 'esp32'], description: 'A simulator bundle (with its /*VFIMG*/ description) or an ESP32 application image' },
    journal: { type: 'integer', description: 'The journal format the image writes' },
    described: { type: 'boolean', description: 'The image carried its own description (else journal came from the upload)' },
    notes: { type: 'string' },
    key: { type: 'string', description: 'The release key that signed it (its id)' },
    signature: { type: 'string', description: 'Ed25519 over "vendfleet-image v1 <sha256> <size> <version>", base64url' },
    uploadedBy: { type: ['string', 'null'], description: 'The API token\'s name' },
    uploadedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const SHA256_PARAMS = { type: 'object', properties: { sha256: { type: 'string', pattern: SHA256_PATTERN } }, required: ['sha256'] } as const;
const ERRORS = { 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR } as const;

export async function registerFirmwareRoutes(app: FastifyInstance, ctx: RouteContext, registry: FirmwareRegistry): Promise<void> {
  const { need, needPlatform } = ctx;
  const known = async (sha256: string): Promise<ImageRecord> => {
    const image = await registry.get(sha256);
    if (!image) throw new HttpError('unknown-image', `no image ${sha256}`);
    return image;
  };

  await app.register(async (scope) => {
    // Image bytes only, whole, up to the registry's limit (fastify answers 413 past it, 415 for other types).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: registry.maxImageBytes }, (_req, body, done) => done(null, body));
    // The body is bytes, not JSON: checked by the registry; query and path by the API's one validator.
    const shared = validatorCompiler();
    const bytesBody: FastifySchemaCompiler<unknown> = (route) => (route.httpPart === 'body' ? (data: unknown) => data === undefined || Buffer.isBuffer(data) : shared(route));

    scope.post<{ Querystring: { version: string; signature?: string; key?: string; notes?: string; journal?: number }; Body: Buffer | undefined }>(
      '/firmware',
      {
        // Before the body is read: megabytes from someone without the role are not taken in first.
        // The images are every operator's to roll out: a platform admin's to add.
        onRequest: needPlatform,
        bodyLimit: registry.maxImageBytes,
        validatorCompiler: bytesBody,
        schema: {
          summary: 'Upload a signed firmware image (platform admins; the same bytes under the same version again: 200 with the image stored before)',
          tags: ['firmware'],
          consumes: ['application/octet-stream'],
          querystring: {
            type: 'object',
            properties: {
              version: { type: 'string', maxLength: 40, description: VERSION_RULE },
              signature: { type: 'string', maxLength: 100, description: 'Ed25519 signature of "vendfleet-image v1 <sha256 hex> <size> <version>" by a release key, base64 or base64url' },
              key: { type: 'string', pattern: KEY_ID_PATTERN, description: 'The release key\'s id (16 hex digits), for a clearer refusal' },
              notes: { type: 'string', description: `Release notes, at most ${MAX_NOTES_BYTES} bytes of UTF-8` },
              journal: { type: 'integer', minimum: 1, maximum: 65535, description: 'The journal format the image writes, for an image without a description (default: the current one)' },
            },
            required: ['version'],
            additionalProperties: false,
          },
          body: { type: 'string', format: 'binary', description: 'The image as built' },
          response: { 200: IMAGE, 201: IMAGE, ...ERRORS, 409: ERROR, 413: ERROR, 422: ERROR },
        },
      },
      async (req, reply) => {
        const q = req.query;
        const { image, duplicate } = await registry.upload({
          bytes: req.body ?? Buffer.alloc(0),
          version: q.version,
          signature: q.signature,
          keyId: q.key,
          notes: q.notes,
          journal: q.journal,
          uploadedBy: req.token?.name,
        });
        return reply.code(duplicate ? 200 : 201).header('location', `/firmware/${image.sha256}`).send(image);
      },
    );

    scope.get<{ Querystring: { limit: number } }>(
      '/firmware',
      {
        preHandler: need('viewer'),
        schema: {
          summary: 'The firmware images, newest upload first',
          tags: ['firmware'],
          querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 } }, additionalProperties: false },
          response: { 200: { type: 'object', properties: { images: { type: 'array', items: IMAGE } } }, ...ERRORS },
        },
      },
      async (req) => ({ images: await registry.list(req.query.limit) }),
    );

    scope.get<{ Params: { sha256: string } }>(
      '/firmware/:sha256',
      { preHandler: need('viewer'), schema: { summary: "One image's metadata", tags: ['firmware'], params: SHA256_PARAMS, response: { 200: IMAGE, ...ERRORS } } },
      async (req) => known(req.params.sha256),
    );

    scope.get<{ Params: { sha256: string } }>(
      '/firmware/:sha256/image',
      { preHandler: need('operator'), schema: { summary: "The image's bytes, as uploaded", tags: ['firmware'], params: SHA256_PARAMS } },
      async (req, reply) => {
        const image = await known(req.params.sha256);
        const bytes = await registry.bytes(image.sha256);
        if (!bytes) throw new HttpError('unknown-image', `no image ${image.sha256}`);
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-disposition', `attachment; filename="vendfleet-${image.version}.${image.kind === 'esp32' ? 'bin' : 'js'}"`)
          .header('etag', `"${image.sha256}"`)
          .header('x-vendfleet-version', image.version)
          .send(bytes);
      },
    );

    scope.delete<{ Params: { sha256: string } }>(
      '/firmware/:sha256',
      {
        // Whether a machine uses it is every operator's business: a platform admin's to decide.
        preHandler: needPlatform,
        schema: { summary: 'Delete an image no machine is offered, sent an update for, or runs (platform admins)', tags: ['firmware'], params: SHA256_PARAMS, response: { 200: { type: 'object', properties: { deleted: IMAGE } }, ...ERRORS, 409: ERROR } },
      },
      async (req) => ({ deleted: await registry.delete(req.params.sha256) }),
    );
  });
}
