/**
 * Alerts over the operator API (docs/alerts.md): the fleet's and one
 * machine's alerts, and the rules they are judged by, for the fleet (admin
 * to change) and per machine (operator to change). A rules change is
 * applied to the machines' stored telemetry at once.
 */
import type { FastifyInstance } from 'fastify';
import { AlertEngine } from '../alerts/engine.js';
import { ALERT_KINDS, DEFAULT_RULES, resolveRules, rulesProblem, RULES_PATCH_SCHEMA, type RulesPatch } from '../alerts/rules.js';
import { FLEET, getRulesPatch, listAlerts, putRulesPatch, type AlertState } from '../alerts/store.js';
import { HttpError } from './errors.js';
import { ERROR, MACHINE_ID, type RouteContext } from './http.js';

const ALERT = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    machine: { type: 'string' },
    kind: { type: 'string', enum: [...ALERT_KINDS] },
    subject: { type: 'string', description: "slot code, coin value, device name, or '' for the machine as a whole" },
    severity: { type: 'string', enum: ['info', 'warning', 'critical'] },
    message: { type: 'string' },
    detail: { type: 'object', additionalProperties: true },
    openedAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    closedAt: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;
const ALERTS = { type: 'object', properties: { alerts: { type: 'array', items: ALERT } } } as const;
const ALERT_QUERY_PROPS = {
  state: { type: 'string', enum: ['open', 'closed', 'all'], default: 'open' },
  kind: { type: 'string', enum: [...ALERT_KINDS] },
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
} as const;
const RULES = { type: 'object', additionalProperties: true } as const;
const RULES_ANSWER = {
  type: 'object',
  properties: {
    machine: { type: 'string' },
    rules: { ...RULES, description: 'what was set at this level (the rest is inherited)' },
    effective: { ...RULES, description: 'the rules in force: built-in defaults, then the fleet, then the machine' },
    defaults: { ...RULES, description: 'the built-in defaults (GET /alert-rules)' },
  },
} as const;

export async function registerAlertRoutes(app: FastifyInstance, ctx: RouteContext, engine?: AlertEngine): Promise<void> {
  const { db, need, machineState } = ctx;
  // An API without a gateway of its own still applies rules changes (without notifications).
  const alerts = engine ?? new AlertEngine(db);
  app.addHook('onClose', async () => {
    if (!engine) await alerts.close();
  });

  app.get<{ Querystring: { state: AlertState; machine?: string; kind?: string; limit: number } }>(
    '/alerts',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'Alerts across the fleet, newest first (open ones unless state says otherwise)',
        tags: ['alerts'],
        querystring: { type: 'object', properties: { ...ALERT_QUERY_PROPS, machine: MACHINE_ID }, additionalProperties: false },
        response: { 200: ALERTS, 400: ERROR, 401: ERROR },
      },
    },
    async (req) => ({ alerts: await listAlerts(db, { state: req.query.state, machine: req.query.machine, kind: req.query.kind, limit: req.query.limit }) }),
  );

  app.get<{ Params: { id: string }; Querystring: { state: AlertState; kind?: string; limit: number } }>(
    '/machines/:id/alerts',
    {
      preHandler: need('viewer'),
      schema: {
        summary: "A machine's alerts, newest first (open ones unless state says otherwise)",
        tags: ['alerts'],
        params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
        querystring: { type: 'object', properties: ALERT_QUERY_PROPS, additionalProperties: false },
        response: { 200: ALERTS, 400: ERROR, 401: ERROR, 404: ERROR },
      },
    },
    async (req) => {
      await machineState(req.params.id);
      return { alerts: await listAlerts(db, { state: req.query.state, machine: req.params.id, kind: req.query.kind, limit: req.query.limit }) };
    },
  );

  // What the schema cannot say (a temperature range the right way round), on the rules as they would be in force.
  const checked = (fleet: RulesPatch, machine?: RulesPatch): void => {
    const problem = rulesProblem(resolveRules(fleet, machine));
    if (problem) throw new HttpError('bad-rules', problem);
  };

  app.get(
    '/alert-rules',
    { preHandler: need('viewer'), schema: { summary: "The fleet's alert rules: what was set and what is in force", tags: ['alerts'], response: { 200: RULES_ANSWER, 401: ERROR } } },
    async () => {
      const rules = await getRulesPatch(db, FLEET);
      return { rules, effective: resolveRules(rules), defaults: DEFAULT_RULES };
    },
  );

  app.put<{ Body: RulesPatch }>(
    '/alert-rules',
    {
      preHandler: need('admin'),
      schema: {
        summary: "Set the fleet's alert rules (replaces what was set; {} goes back to the defaults); every machine is judged again by them",
        tags: ['alerts'],
        body: RULES_PATCH_SCHEMA,
        response: { 200: RULES_ANSWER, 400: ERROR, 401: ERROR, 403: ERROR },
      },
    },
    async (req) => {
      checked(req.body);
      await putRulesPatch(db, FLEET, req.body);
      // The whole fleet may take a while: the answer does not wait for it.
      alerts.recheck('all').catch(() => {});
      return { rules: req.body, effective: resolveRules(req.body) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id/alert-rules',
    {
      preHandler: need('viewer'),
      schema: {
        summary: "A machine's alert rules: what was set for it and what is in force",
        tags: ['alerts'],
        params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
        response: { 200: RULES_ANSWER, 401: ERROR, 404: ERROR },
      },
    },
    async (req) => {
      await machineState(req.params.id);
      const [fleet, rules] = await Promise.all([getRulesPatch(db, FLEET), getRulesPatch(db, req.params.id)]);
      return { machine: req.params.id, rules, effective: resolveRules(fleet, rules) };
    },
  );

  app.put<{ Params: { id: string }; Body: RulesPatch }>(
    '/machines/:id/alert-rules',
    {
      preHandler: need('operator'),
      schema: {
        summary: "Set a machine's own alert rules over the fleet's (replaces what was set; {} inherits everything); its alerts are judged again at once",
        tags: ['alerts'],
        params: { type: 'object', properties: { id: MACHINE_ID }, required: ['id'] },
        body: RULES_PATCH_SCHEMA,
        response: { 200: RULES_ANSWER, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR },
      },
    },
    async (req) => {
      await machineState(req.params.id);
      const fleet = await getRulesPatch(db, FLEET);
      checked(fleet, req.body);
      await putRulesPatch(db, req.params.id, req.body);
      await alerts.recheck([req.params.id]);
      return { machine: req.params.id, rules: req.body, effective: resolveRules(fleet, req.body) };
    },
  );
}
