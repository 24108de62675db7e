/** Restocking over the operator API (being built: see issue 6). */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from './http.js';

export async function registerRestockRoutes(_app: FastifyInstance, _ctx: RouteContext): Promise<void> {}
