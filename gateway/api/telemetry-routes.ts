/**
 * One machine's telemetry over time for the operator API and the
 * dashboard's charts: temperature and coin tube counts per minute, hour or
 * day (store/telemetry-series.ts). Scoped like every machine route: another
 * operator's machine is not found (404).
 */
import type { FastifyInstance } from 'fastify';
import { moneyOf } from '../store/machines.js';
import { BUCKET_MS, type Bucket } from '../store/sales.js';
import { MAX_TELEMETRY_POINTS, telemetrySeries } from '../store/telemetry-series.js';
import { HttpError } from './errors.js';
import { MACHINE_PARAMS, type RouteContext } from './http.js';
import { dateTime } from './validation.js';

const POINT = {
  type: 'object',
  properties: {
    t: { type: 'string', format: 'date-time', description: "the bucket's start (UTC)" },
    reports: { type: 'integer', description: 'telemetry reports received in the bucket' },
    temperature: { type: ['number', 'null'], description: 'mean temperature of those reports, °C (null: none said it)' },
    tubes: { type: 'array', items: { type: ['integer', 'null'] }, description: "coins in each tube, in the order of `coins` (the bucket's newest report; null: not reported)" },
  },
} as const;

export async function registerTelemetryRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { reads, need, readMachineState } = ctx;

  app.get<{ Params: { id: string }; Querystring: { bucket: Bucket; from?: string; to?: string } }>(
    '/machines/:id/telemetry',
    {
      preHandler: need('viewer'),
      schema: {
        summary: `A machine's temperature (°C) and coin tube counts per minute, hour or day (UTC buckets, received time; default the last 24 buckets); empty buckets included; at most ${MAX_TELEMETRY_POINTS} buckets (more is a 400: use a bigger bucket)`,
        tags: ['fleet'],
        params: MACHINE_PARAMS,
        querystring: {
          type: 'object',
          properties: { bucket: { type: 'string', enum: ['minute', 'hour', 'day'], default: 'hour' }, from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              machine: { type: 'string' },
              bucket: { type: 'string' },
              from: { type: 'string', format: 'date-time' },
              to: { type: 'string', format: 'date-time' },
              currency: { type: ['string', 'null'], description: 'the money the coin values are in (null: the machine has not said)' },
              decimals: { type: ['integer', 'null'] },
              coins: { type: 'array', items: { type: 'integer' }, description: 'coin values (minor units) with a tube, smallest first' },
              points: { type: 'array', items: POINT },
            },
          },
        },
      },
    },
    async (req) => {
      const { bucket } = req.query;
      const step = BUCKET_MS[bucket];
      const to = req.query.to !== undefined ? dateTime(req.query.to, 'to') : new Date();
      const from = req.query.from !== undefined ? dateTime(req.query.from, 'from') : new Date(to.getTime() - 24 * step);
      if (from >= to) throw new HttpError('bad-request', '"from" must be before "to"');
      const buckets = Math.ceil(to.getTime() / step) - Math.floor(from.getTime() / step);
      if (buckets > MAX_TELEMETRY_POINTS) throw new HttpError('bad-request', `${buckets} ${bucket}s asked for, at most ${MAX_TELEMETRY_POINTS}: use a bigger bucket or a shorter range`);
      const s = await readMachineState(req, req.params.id);
      const money = moneyOf(s.telemetry);
      const series = await telemetrySeries(reads, req.params.id, bucket, from, to);
      return { machine: req.params.id, bucket, from: from.toISOString(), to: to.toISOString(), currency: money?.currency ?? null, decimals: money?.decimals ?? null, ...series };
    },
  );
}
