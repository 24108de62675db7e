/**
 * Alerts over the operator API (docs/alerts.md): the fleet's and one
 * machine's alerts, and the rules they are judged by, for the operator's
 * fleet (admin to change) and per machine (operator to change). A rules
 * change is applied to the machines' stored telemetry at once. A token sees
 * its operator's machines' alerts only (docs/tenants.md).
 */
import type { FastifyInstance } from 'fastify';
import { AlertEngine } from '../alerts/engine.js';
import { ALERT_KINDS, DEFAULT_RULES, resolveRules, rulesProblem, RULES_PATCH_SCHEMA, type RulesPatch } from '../alerts/rules.js';
import { getFleetRules, getRulesPatch, listAlerts, putFleetRules, putRulesPatch, type AlertState } from '../alerts/store.js';
import { HttpError } from './errors.js';
import { ERROR, MACHINE_ID, OPERATOR_PARAM, type RouteContext } from './http.js';

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
    effective: { ...RULES, description: "the rules in force: built-in defaults, then the operator's fleet, then the machine" },
    defaults: { ...RULES, description: 'the built-in defaults (GET /alert-rules)' },
  },
} as const;

export async function registerAlertRoutes(app: FastifyInstance, ctx: RouteContext, engine?: AlertEngine): Promise<void> {
  const { db, need, machineState, scope, owner } = ctx;
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
        response: { 200: ALERTS, 400: ERROR, 401: ERROR, 404: ERROR },
      },
    },
    async (req) => {
      // A machine asked for is one the token sees, as on every route that names one (another operator's: not found).
      if (req.query.machine !== undefined) await machineState(req, req.query.machine);
      return { alerts: await listAlerts(db, { state: req.query.state, machine: req.query.machine, kind: req.query.kind, limit: req.query.limit, operator: scope(req) }) };
    },
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
      await machineState(req, req.params.id);
      return { alerts: await listAlerts(db, { state: req.query.state, machine: req.params.id, kind: req.query.kind, limit: req.query.limit, operator: scope(req) }) };
    },
  );

  // What the schema cannot say (a temperature range the right way round), on the rules as they would be in force.
  const checked = (fleet: RulesPatch, machine?: RulesPatch): void => {
    const problem = rulesProblem(resolveRules(fleet, machine));
    if (problem) throw new HttpError('bad-rules', problem);
  };

  const OPERATOR_QUERY = { type: 'object', properties: { operator: OPERATOR_PARAM }, additionalProperties: false } as const;

  app.get<{ Querystring: { operator?: string } }>(
    '/alert-rules',
    {
      preHandler: need('viewer'),
      schema: { summary: "The operator's fleet alert rules: what was set and what is in force", tags: ['alerts'], querystring: OPERATOR_QUERY, response: { 200: RULES_ANSWER, 401: ERROR, 404: ERROR } },
    },
    async (req) => {
      const rules = await getFleetRules(db, await owner(req, req.query.operator));
      return { rules, effective: resolveRules(rules), defaults: DEFAULT_RULES };
    },
  );

  app.put<{ Body: RulesPatch; Querystring: { operator?: string } }>(
    '/alert-rules',
    {
      preHandler: need('admin'),
      schema: {
        summary: "Set the operator's fleet alert rules (replaces what was set; {} goes back to the defaults); every machine of the operator is judged again by them",
        tags: ['alerts'],
        querystring: OPERATOR_QUERY,
        body: RULES_PATCH_SCHEMA,
        response: { 200: RULES_ANSWER, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR },
      },
    },
    async (req) => {
      const operator = await owner(req, req.query.operator);
      checked(req.body);
      await putFleetRules(db, operator, req.body);
      // The whole fleet may take a while: the answer does not wait for it.
      alerts.recheck({ operator }).catch(() => {});
      return { rules: req.body, effective: resolveRules(req.body) };
    },
  );

  /** The fleet rules over a machine: its operator's. */
  const fleetOf = async (machine: string): Promise<RulesPatch> => {
    const r = await db.query<{ rules: RulesPatch }>('SELECT o.alert_rules AS rules FROM machines m JOIN operators o ON o.id = m.operator_id WHERE m.id = $1', [machine]);
    return r.rows[0]?.rules ?? {};
  };

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
      await machineState(req, req.params.id);
      const [fleet, rules] = await Promise.all([fleetOf(req.params.id), getRulesPatch(db, req.params.id)]);
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
      await machineState(req, req.params.id);
      const fleet = await fleetOf(req.params.id);
      checked(fleet, req.body);
      await putRulesPatch(db, req.params.id, req.body);
      await alerts.recheck([req.params.id]);
      return { machine: req.params.id, rules: req.body, effective: resolveRules(fleet, req.body) };
    },
  );
}
