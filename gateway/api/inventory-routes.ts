/**
 * Slot levels for the fleet (the dashboard's inventory heatmap): GET
 * /inventory gives the token's operator's emptiest machines (a platform
 * admin: every operator's), each with its slots as last reported, at most
 * `limit` of them, and how many machines there are in all.
 */
import type { FastifyInstance } from 'fastify';
import { emptiestMachines, MAX_LEVELS } from '../store/inventory.js';
import type { RouteContext } from './http.js';

export async function registerInventoryRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { reads, need, scope } = ctx;
  app.get<{ Querystring: { limit: number } }>(
    '/inventory',
    {
      preHandler: need('viewer'),
      schema: {
        summary: `The emptiest machines first (stock as GET /machines sums it; machines that never reported stock last), each with its slots as last reported ({slot, product, quantity, capacity, outOfService}); at most limit (1 to ${MAX_LEVELS}) machines, and total: how many there are`,
        tags: ['fleet'],
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_LEVELS, default: 50 } }, additionalProperties: false },
      },
    },
    async (req) => {
      const r = await emptiestMachines(reads, scope(req), req.query.limit);
      return { machines: r.machines, total: r.total, limit: req.query.limit };
    },
  );
}
