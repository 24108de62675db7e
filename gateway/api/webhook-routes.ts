/**
 * An operator's own alert webhook over the API (docs/alerts.md "Each
 * operator's webhook"): its admin reads, sets and removes it; a platform
 * admin names the operator (`?operator=`, default `default`). The URL is
 * checked (http or https, a host, no user name or password, 2,048
 * characters at most) and refusals never repeat it; the secret is never
 * answered, only whether notifications are signed.
 */
import type { FastifyInstance } from 'fastify';
import { MAX_WEBHOOK_URL, webhookUrlProblem } from '../alerts/webhook.js';
import { alertWebhookOf, setAlertWebhook } from '../store/operators.js';
import { HttpError } from './errors.js';
import { ERROR, OPERATOR_PARAM, type RouteContext } from './http.js';

const ANSWER = {
  type: 'object',
  properties: {
    operator: { type: 'string' },
    url: { type: ['string', 'null'], description: 'where the operator\'s alerts are POSTed; null: nowhere (the platform\'s global webhook, if any, still gets them)' },
    signed: { type: 'boolean', description: 'whether a secret signs them (X-Vendfleet-Signature); the secret itself is never shown' },
  },
} as const;
const QUERY = { type: 'object', properties: { operator: OPERATOR_PARAM }, additionalProperties: false } as const;
/** A secret: printable ASCII, long enough to be one. */
const SECRET_PATTERN = '^[\\x21-\\x7e]{16,256}$';

export async function registerWebhookRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, need, owner } = ctx;

  app.get<{ Querystring: { operator?: string } }>(
    '/alert-webhook',
    {
      preHandler: need('admin'),
      schema: { summary: "The operator's own alert webhook: its URL and whether it is signed (admin)", tags: ['alerts'], querystring: QUERY, response: { 200: ANSWER, 401: ERROR, 403: ERROR, 404: ERROR } },
    },
    async (req) => {
      const operator = await owner(req, req.query.operator);
      const hook = await alertWebhookOf(db, operator);
      return { operator, url: hook?.url ?? null, signed: hook?.secret != null };
    },
  );

  app.put<{ Querystring: { operator?: string }; Body: { url: string; secret?: string } }>(
    '/alert-webhook',
    {
      preHandler: need('admin'),
      schema: {
        summary: "Set the operator's alert webhook: its machines' alerts are POSTed there (and only theirs), signed with the secret if one is given (admin)",
        tags: ['alerts'],
        querystring: QUERY,
        body: {
          type: 'object',
          properties: {
            url: { type: 'string', minLength: 1, maxLength: MAX_WEBHOOK_URL, description: 'http:// or https://, no user name or password' },
            secret: { type: 'string', pattern: SECRET_PATTERN, description: 'the HMAC-SHA-256 key: 16 to 256 printable ASCII characters, no spaces' },
          },
          required: ['url'],
          additionalProperties: false,
        },
        response: { 200: ANSWER, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR },
      },
    },
    async (req) => {
      const operator = await owner(req, req.query.operator);
      const { url, secret } = req.body;
      const problem = webhookUrlProblem(url);
      if (problem) throw new HttpError('bad-request', `body/url ${problem}`);
      await setAlertWebhook(db, operator, { url, secret: secret ?? null });
      return { operator, url, signed: secret !== undefined };
    },
  );

  app.delete<{ Querystring: { operator?: string } }>(
    '/alert-webhook',
    {
      preHandler: need('admin'),
      schema: { summary: "Remove the operator's alert webhook (admin); what was queued for it is dropped", tags: ['alerts'], querystring: QUERY, response: { 200: ANSWER, 401: ERROR, 403: ERROR, 404: ERROR } },
    },
    async (req) => {
      const operator = await owner(req, req.query.operator);
      await setAlertWebhook(db, operator, null);
      return { operator, url: null, signed: false };
    },
  );
}
