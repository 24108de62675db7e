/**
 * GET /health: is this gateway receiving and storing? For load balancers and
 * monitoring, so it needs no token and says nothing secret: 200 with
 * status "ok", or 503 with status "degraded" and the problems in words (a
 * broker that delivers nothing, a store that is down, ingest that has made
 * no progress while messages wait, an audit file waiting for the store).
 */
import type { FastifyInstance } from 'fastify';
import type { GatewayHealth } from '../gateway.js';

export async function registerHealthRoutes(app: FastifyInstance, health: (() => GatewayHealth) | undefined): Promise<void> {
  app.get(
    '/health',
    {
      schema: {
        summary: 'Is the gateway receiving and storing? 200 when it is, 503 with the problems when not (no token needed)',
        tags: ['fleet'],
        security: [],
      },
    },
    async (_req, reply) => {
      // An API without a gateway behind it (tools, tests) answers for the API alone.
      const h = health?.() ?? { status: 'ok' as const, problems: [] };
      return reply.code(h.status === 'ok' ? 200 : 503).header('cache-control', 'no-store').send({ ok: h.status === 'ok', ...h });
    },
  );
}
