/**
 * The operator HTTP API (fastify): the fleet, one machine's slots, sales and
 * commands, the product API of the reference vending service, and remote
 * purchases with idempotency keys, DEX audit files, alerts, restocking,
 * firmware images and rollouts, the product catalog and planograms, and the dashboard, each group of routes in a module of its own (*-routes.ts).
 * Every route but /health and the docs needs an API token (`Authorization:
 * Bearer vf_...`) with a role, and reaches only its operator's machines and
 * what hangs off them (docs/tenants.md: another operator's are "not found",
 * never "forbidden"); request bodies and parameters are checked
 * against their JSON schemas, which are also the OpenAPI description served
 * at /docs. Errors become answers in one place (errors.ts).
 */
import { createHash } from 'node:crypto';
import fastifyHelmet from '@fastify/helmet';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyRequest, type RouteOptions } from 'fastify';
import type { AlertEngine } from '../alerts/engine.js';
import type { CommandService } from '../commands/service.js';
import { FirmwareRegistry } from '../firmware/registry.js';
import type { GatewayHealth } from '../gateway.js';
import type { Db } from '../store/db.js';
import { machineState, type MachineState } from '../store/machines.js';
import { DEFAULT_OPERATOR, operatorExists } from '../store/operators.js';
import { registerOperatorRoutes } from './operator-routes.js';
import { registerAlertRoutes } from './alert-routes.js';
import { registerAuditRoutes } from './audit-routes.js';
import { registerCatalogRoutes } from './catalog-routes.js';
import { registerCommandRoutes } from './command-routes.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { registerDriverRoutes } from './driver-routes.js';
import { ERROR_STATUS, errorAnswer, HttpError } from './errors.js';
import { registerFirmwareRoutes } from './firmware-routes.js';
import { registerFleetRoutes } from './fleet-routes.js';
import { registerHealthRoutes } from './health-routes.js';
import { registerInventoryRoutes } from './inventory-routes.js';
import type { RouteContext } from './http.js';
import { registerProductRoutes } from './product-routes.js';
import { registerRestockRoutes } from './restock-routes.js';
import { registerRolloutRoutes } from './rollout-routes.js';
import { registerTelemetryRoutes } from './telemetry-routes.js';
import { registerWebhookRoutes } from './webhook-routes.js';
import { Rollouts } from '../rollouts/service.js';
import { restockTodayOf } from '../restock/today.js';
import { allows, TokenCheck, type Role, type TokenInfo } from './tokens.js';
import { refuseHostileInput, validatorCompiler } from './validation.js';

const BEARER = /^bearer +(\S+) *$/i;

const SWAGGER_LOGO_STYLE = `sha256-${createHash('sha256').update('.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}').digest('base64')}`;

export interface ApiOptions {
  db: Db;
  /** A streaming replica for the routes that only read (DATABASE_READ_URL); `db` when not given. */
  readDb?: Db | undefined;
  commands: CommandService;
  /** The gateway's alert engine: rules changes re-evaluate (and notify) through it. */
  alerts?: AlertEngine | undefined;
  /** How long POST /purchase waits for the machine before answering 202 (ms). */
  purchaseWaitMs?: number;
  /** How long a remote purchase may wait for its machine before it expires unsent (s; default 120). */
  purchaseTtlS?: number;
  /** The firmware registry (its release keys and limits); one on the store with no release keys when not given. */
  firmware?: FirmwareRegistry | undefined;
  /** The gateway's rollout engine: steps at once when an operator changes a rollout (else at its next tick). */
  rolloutEngine?: { poke(): void } | undefined;
  /** The gateway's own account of whether it receives and stores (GET /health). */
  health?: (() => GatewayHealth) | undefined;
  logger?: boolean;
  /** Told of every route as it is registered, the docs' and the automatic HEAD routes included (the fuzz test covers them all). */
  onRoute?: (route: RouteOptions) => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    token?: TokenInfo;
  }
}

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const { db, commands } = options;
  const tokens = new TokenCheck(db);
  // Bodies over 64 KiB are refused by fastify itself (413).
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 65536 });
  const onRoute = options.onRoute;
  if (onRoute) app.addHook('onRoute', (route) => onRoute(route));
  // One validator for every route: JSON bodies as they are, query and path text to numbers only when plainly numbers (validation.ts).
  app.setValidatorCompiler(validatorCompiler());
  app.addHook('preValidation', refuseHostileInput);
  // Security headers on every answer. The dashboard and the docs load only their own files (no inline
  // script or style: CSSOM changes like el.style.width are not inline style), are framed by nobody, and
  // plain HTTP on a closed network is not upgraded.
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'vendfleet operator API', version: '1.0.0', description: 'The fleet, its machines, products, remote purchases and commands.' },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer', description: 'An API token (vf_...) made with vendctl token create' } } },
      security: [{ token: [] }],
    },
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // Swagger UI draws its top-bar logo with one inline <style>: its hash allows exactly that, on /docs only.
    transformStaticCSP: (header) => header.replace("style-src 'self'", `style-src 'self' '${SWAGGER_LOGO_STYLE}'`),
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, _req, reply) => {
    const answer = errorAnswer(err);
    if (answer) return reply.code(answer.status).send(answer.body);
    app.log.error(err);
    return reply.code(ERROR_STATUS.internal).send({ error: 'internal', message: 'internal error' });
  });

  const need =
    (role: Role) =>
    async (req: FastifyRequest): Promise<void> => {
      // The scheme is case-insensitive (RFC 9110 11.1), then one or more spaces and the token.
      const token = BEARER.exec(req.headers.authorization ?? '')?.[1];
      const info = token ? await tokens.check(token) : undefined;
      if (!info) throw new HttpError('unauthorized', 'an API token is needed: Authorization: Bearer vf_...');
      if (!allows(info.role, role)) throw new HttpError('forbidden', `this needs the ${role} role; the token has ${info.role}`);
      req.token = info;
    };

  const scope = (req: FastifyRequest): string | null => {
    // Every route but the public ones checks the token first; a route that forgot would see nothing rather than everything.
    if (!req.token) throw new HttpError('unauthorized', 'an API token is needed: Authorization: Bearer vf_...');
    return req.token.operator;
  };
  const reads = options.readDb ?? db;
  const stateIn = async (from: Db, req: FastifyRequest, id: string): Promise<MachineState> => {
    const s = await machineState(from, id, scope(req));
    if (!s) throw new HttpError('unknown-machine', `no machine "${id}"`);
    return s;
  };
  // Tokens stay on the primary: a token just made or revoked holds at once.
  const ctx: RouteContext = {
    db,
    reads,
    commands,
    tokens,
    need,
    async needPlatform(req) {
      await need('admin')(req);
      if (req.token!.operator !== null) throw new HttpError('forbidden', "this needs a platform admin's token; this one is operator " + JSON.stringify(req.token!.operator) + "'s");
    },
    scope,
    async owner(req, asked) {
      const mine = scope(req);
      if (mine !== null) {
        if (asked !== undefined && asked !== mine) throw new HttpError('unknown-operator', `no operator "${asked}"`);
        return mine;
      }
      const id = asked ?? DEFAULT_OPERATOR;
      if (!(await operatorExists(db, id))) throw new HttpError('unknown-operator', `no operator "${id}"`);
      return id;
    },
    machineState: (req, id) => stateIn(db, req, id),
    readMachineState: (req, id) => stateIn(reads, req, id),
  };

  await registerOperatorRoutes(app, ctx);
  await registerFleetRoutes(app, ctx);
  await registerInventoryRoutes(app, ctx);
  await registerTelemetryRoutes(app, ctx);
  await registerProductRoutes(app, ctx, { purchaseWaitMs: options.purchaseWaitMs ?? 30000, purchaseTtlS: options.purchaseTtlS ?? 120 });
  await registerCatalogRoutes(app, ctx);
  await registerCommandRoutes(app, ctx);
  await registerHealthRoutes(app, options.health);
  await registerAuditRoutes(app, ctx);
  await registerDashboardRoutes(app, ctx);
  await registerAlertRoutes(app, ctx, options.alerts);
  await registerWebhookRoutes(app, ctx);
  await registerRestockRoutes(app, ctx);
  await registerDriverRoutes(app, ctx);
  await registerFirmwareRoutes(app, ctx, options.firmware ?? new FirmwareRegistry(db));
  const engine = options.rolloutEngine;
  await registerRolloutRoutes(app, ctx, new Rollouts(db, commands, () => engine?.poke()));
  // A first restock-today look may still be reading (started by a page, not waited for): the store closes after it.
  app.addHook('onClose', async () => restockTodayOf(reads).settle());
  return app;
}
