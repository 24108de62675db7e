/**
 * DEX audit files over the operator API (docs/dex.md): upload (an
 * operator's file from any machine), list a machine's, read one's figures,
 * download it as received. A token reaches its operator's audits only
 * (a file of no machine is its uploader's operator's; docs/tenants.md).
 */
import type { FastifyInstance } from 'fastify';
import { MAX_DEX_BYTES } from '../dex/parse.js';
import { getAudit, getAuditFile, listAudits, storeAudit } from '../dex/store.js';
import { HttpError } from './errors.js';
import { ERROR, MACHINE_ID, OPERATOR_PARAM, type RouteContext } from './http.js';

const DEX_ERROR = { type: 'object', properties: { error: { type: 'string' }, line: { type: 'integer' }, message: { type: 'string' } } } as const;
const AUDIT_ID = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;

export async function registerAuditRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, need, machineState, scope, owner } = ctx;
  await app.register(async (files) => {
    // DEX files come as they are. Read byte for byte (latin1), so that a stray
    // non-ASCII byte is refused on its own line instead of vanishing into UTF-8
    // decoding; this scope only, the JSON routes keep fastify's parsers.
    files.removeContentTypeParser('text/plain');
    files.addContentTypeParser(['text/plain', 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: MAX_DEX_BYTES }, (_req, body, done) => {
      done(null, (body as Buffer).toString('latin1'));
    });

    files.post<{ Querystring: { machine?: string; read?: number; operator?: string }; Body: string }>(
      '/audits',
      {
        preHandler: need('operator'),
        bodyLimit: MAX_DEX_BYTES,
        schema: {
          summary: "Upload a DEX (EVA-DTS) audit file, optionally a fleet machine's (read: the machine's read number; a read already stored is answered 200 with its id)",
          tags: ['audits'],
          consumes: ['text/plain', 'application/octet-stream'],
          querystring: { type: 'object', properties: { machine: MACHINE_ID, read: { type: 'integer', minimum: 0, maximum: 2147483647 }, operator: OPERATOR_PARAM }, additionalProperties: false },
          body: { type: 'string', description: 'The DEX file as the machine wrote it (at most 2 MiB)' },
          response: { 400: DEX_ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 413: DEX_ERROR },
        },
      },
      async (req, reply) => {
        const machine = req.query.machine;
        if (req.query.read !== undefined && machine === undefined) throw new HttpError('bad-request', '"read" needs "machine": read numbers are per machine');
        if (machine !== undefined && req.query.operator !== undefined) throw new HttpError('bad-request', "a machine's file is its operator's: name the machine or the operator, not both");
        if (machine !== undefined) await machineState(req, machine);
        // A file of no machine is the uploader's operator's (a platform admin's own, seen by platform admins only, unless it names one).
        const operator = machine === undefined && (scope(req) !== null || req.query.operator !== undefined) ? await owner(req, req.query.operator) : null;
        const stored = await storeAudit(db, { machineId: machine, source: 'upload', readNumber: req.query.read, text: req.body ?? '', operator });
        return reply
          .code(stored.duplicate ? 200 : 201)
          .header('location', `/audits/${stored.id}`)
          .send({ id: stored.id, duplicate: stored.duplicate, machine: machine ?? null, crc: stored.summary.crc.status, warnings: stored.warnings, summary: stored.summary });
      },
    );

    files.get<{ Params: { id: string }; Querystring: { limit: number } }>(
      '/machines/:id/audits',
      {
        preHandler: need('viewer'),
        schema: {
          summary: "A machine's audit files, newest first (metadata, warnings and paid vends; the figures at /audits/{id})",
          tags: ['audits'],
          params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
          querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } }, additionalProperties: false },
        },
      },
      async (req) => {
        await machineState(req, req.params.id);
        return { audits: await listAudits(db, req.params.id, req.query.limit) };
      },
    );

    files.get<{ Params: { id: number } }>(
      '/audits/:id',
      { preHandler: need('viewer'), schema: { summary: 'One audit: what the gateway read from the file, its checks and warnings', tags: ['audits'], params: { type: 'object', properties: { id: AUDIT_ID }, required: ['id'] } } },
      async (req) => {
        const a = await getAudit(db, req.params.id, scope(req));
        if (!a) throw new HttpError('unknown-audit', `no audit ${req.params.id}`);
        return a;
      },
    );

    files.get<{ Params: { id: number } }>(
      '/audits/:id/dex',
      { preHandler: need('viewer'), schema: { summary: 'The audit file exactly as received', tags: ['audits'], params: { type: 'object', properties: { id: AUDIT_ID }, required: ['id'] } } },
      async (req, reply) => {
        const f = await getAuditFile(db, req.params.id, scope(req));
        if (!f) throw new HttpError('unknown-audit', `no audit ${req.params.id}`);
        const name = `${(f.machineId ?? f.serial ?? 'audit').replace(/[^A-Za-z0-9_.-]/g, '_')}-${req.params.id}.dex`;
        return reply.header('content-type', 'text/plain; charset=us-ascii').header('content-disposition', `attachment; filename="${name}"`).send(f.raw);
      },
    );
  });
}
