/**
 * The product API of the reference vending service: what a machine has on
 * sale (sold-out items hidden, cursor pagination), one slot's live status,
 * the coins in its changer, and remote purchases, paid elsewhere, with
 * idempotency keys: the same Idempotency-Key always gets the first answer
 * and never dispenses twice (store/idempotency.ts; docs/architecture.md),
 * except a transient refusal (the machine was busy, or the vend expired
 * before it was ever sent): nothing was dispensed, and the key may buy again.
 * Nothing is on sale on a machine that is offline or locked. Categories
 * match whatever their case. A slot with a catalog product assigned
 * (catalog-routes.ts) shows the catalog's name, category, SKU and image.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { CommandRecord } from '../commands/service.js';
import { bindKeyCommand, claimKey, keyCommand, keyRecord, releaseKey, saveKeyAnswer, takeOverKey, type StoredAnswer } from '../store/idempotency.js';
import { assignmentsOf, type Assignment } from '../catalog/planogram.js';
import { moneyOf, slotsOf, unavailableReason, type Slot, type Telemetry } from '../store/machines.js';
import { ERROR_STATUS, HttpError, refusalStatus } from './errors.js';
import { ERROR, MACHINE_PARAMS, SLOT_CODE, MACHINE_ID, type RouteContext } from './http.js';

/** What every answer about a purchase the machine has seen says, refusals included. */
const PURCHASE = {
  command: { type: 'string', format: 'uuid', description: 'The vend command (GET /commands/{command})' },
  slot: { type: 'string' },
  requested: { type: 'integer', description: 'The quantity asked for' },
  dispensed: { type: 'integer', description: 'How many came out (0 for a refusal)' },
} as const;
const PURCHASE_DONE = {
  type: 'object',
  description: 'The machine vended: all (dispensed), some (partial), none (failed), or lost power during the vend (interrupted: nothing more is ever dispensed for it)',
  properties: {
    ...PURCHASE,
    status: { type: 'string', enum: ['dispensed', 'partial', 'failed', 'interrupted'] },
    remaining: { type: ['integer', 'null'], description: 'Items left in the slot, as the machine said' },
    price: { type: ['integer', 'null'], description: 'The price of one item, minor units of `currency` (what the machine was told to charge; null when the gateway had no price for the slot)' },
    charged: { type: ['integer', 'null'], description: 'The total charged: price x dispensed' },
    currency: { type: ['string', 'null'], description: "The machine's currency (ISO 4217), null before it has said" },
    payment: { type: 'string', enum: ['remote'], description: 'A purchase over the API is paid elsewhere: the machine takes no money and pays no change' },
    change: { type: 'integer', description: 'Change the machine paid out: 0, as the payment was made elsewhere (cash sales at the machine report theirs in its events)' },
    message: { type: 'string' },
  },
  required: ['command', 'slot', 'requested', 'status', 'dispensed'],
} as const;
const PURCHASE_PENDING = {
  type: 'object',
  description: 'No answer from the machine yet: ask again with the same Idempotency-Key',
  properties: { status: { type: 'string', enum: ['pending'] }, command: PURCHASE.command, message: { type: 'string' } },
  required: ['status', 'message'],
} as const;
const PURCHASE_REFUSED = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, ...PURCHASE },
  required: ['error', 'message'],
} as const;

/** What an item says of its product: the catalog's (name, category, SKU, image) when the slot has one assigned, else the machine's own label. */
function catalogItem(x: Slot, a: Assignment | undefined): { product: string | null; category: string | null; sku: string | null; image: string | null } {
  if (a) return { product: a.product.name, category: a.product.category, sku: a.sku, image: a.product.image };
  return { product: typeof x.product === 'string' ? x.product : null, category: typeof x.category === 'string' ? x.category : null, sku: null, image: null };
}

export interface ProductRouteOptions {
  /** How long POST /purchase waits for the machine before answering 202 (ms). */
  purchaseWaitMs: number;
  /** How long the vend may wait for its machine (an offline one) before it expires (s). */
  purchaseTtlS: number;
}

export async function registerProductRoutes(app: FastifyInstance, ctx: RouteContext, options: ProductRouteOptions): Promise<void> {
  const { db, commands, need, machineState } = ctx;
  const waitMs = options.purchaseWaitMs;

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string; category?: string } }>(
    '/machines/:id/products',
    {
      preHandler: need('viewer'),
      schema: {
        summary: 'Products on sale, slot order, sold-out items hidden; cursor pagination',
        description:
          'Each item: slot, product (name), category, sku, image, price (what the machine charges, minor units of currency) and quantity. ' +
          "A slot with a catalog product assigned (PUT /machines/{id}/planogram) has the catalog's name, category, SKU and image URL; any other has the machine's own label and null sku and image.",
        tags: ['products'],
        params: MACHINE_PARAMS,
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, cursor: { type: 'string', maxLength: 64 }, category: { type: 'string', minLength: 1, maxLength: 64 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const s = await machineState(req, req.params.id);
      let after = '';
      if (req.query.cursor !== undefined) {
        const decoded = Buffer.from(req.query.cursor, 'base64url').toString('utf8');
        if (!/^s:[A-Z0-9]{1,4}$/.test(decoded)) throw new HttpError('bad-cursor', 'cursor is not one this API gave out');
        after = decoded.slice(2);
      }
      const why = unavailableReason(s);
      const category = req.query.category?.toLowerCase();
      const catalog = await assignmentsOf(db, req.params.id);
      const sellable = (why === null ? slotsOf(s.telemetry) : [])
        .filter((x) => x.qty > 0 && !x.fault)
        .map((x) => ({ slot: x, item: catalogItem(x, catalog.get(x.code)) }))
        .filter(({ item }) => category === undefined || (typeof item.category === 'string' && item.category.toLowerCase() === category))
        .sort((a, b) => (a.slot.code < b.slot.code ? -1 : a.slot.code > b.slot.code ? 1 : 0))
        .filter((x) => after === '' || x.slot.code > after);
      const page = sellable.slice(0, req.query.limit);
      const more = sellable.length > page.length;
      return {
        items: page.map(({ slot: x, item }) => ({ slot: x.code, ...item, price: x.price, quantity: x.qty })),
        nextCursor: more ? Buffer.from(`s:${page[page.length - 1]!.slot.code}`).toString('base64url') : null,
        // An offline or locked machine sells nothing: its items are hidden, and this says why.
        available: why === null,
        unavailable: why,
        currency: moneyOf(s.telemetry)?.currency ?? null,
        asOf: s.telemetry_at,
      };
    },
  );

  app.get<{ Params: { id: string; slot: string } }>(
    '/machines/:id/status/:slot',
    {
      preHandler: need('viewer'),
      schema: { summary: "One slot's live status", tags: ['products'], params: { type: 'object', properties: { id: MACHINE_ID, slot: SLOT_CODE }, required: ['id', 'slot'] } },
    },
    async (req) => {
      const s = await machineState(req, req.params.id);
      const slot = slotsOf(s.telemetry).find((x) => x.code === req.params.slot);
      if (!slot) throw new HttpError('unknown-slot', `machine "${req.params.id}" has no slot ${req.params.slot}`);
      return {
        slot: slot.code,
        ...catalogItem(slot, (await assignmentsOf(db, req.params.id)).get(slot.code)),
        price: slot.price,
        quantity: slot.qty,
        capacity: slot.capacity ?? null,
        available: slot.qty > 0 && !slot.fault && unavailableReason(s) === null,
        outOfService: slot.fault === true,
        machineOnline: s.online,
        machineLocked: s.telemetry?.['locked'] === true,
        currency: moneyOf(s.telemetry)?.currency ?? null,
        asOf: s.telemetry_at,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/machines/:id/denominations',
    { preHandler: need('viewer'), schema: { summary: 'Coins in the changer tubes', tags: ['products'], params: MACHINE_PARAMS } },
    async (req) => {
      const s = await machineState(req, req.params.id);
      const tubes = Array.isArray(s.telemetry?.tubes) ? s.telemetry.tubes : [];
      const money = moneyOf(s.telemetry);
      return { denominations: tubes.map((t) => ({ value: t.value, count: t.count })), currency: money?.currency ?? null, decimals: money?.decimals ?? null, asOf: s.telemetry_at };
    },
  );

  app.post<{ Params: { id: string }; Body: { slot: string; quantity: number }; Headers: { 'idempotency-key'?: string } }>(
    '/machines/:id/purchase',
    {
      preHandler: need('operator'),
      schema: {
        summary: 'A remote vend, paid elsewhere; the same Idempotency-Key always gets the first answer and never dispenses twice',
        tags: ['products'],
        params: MACHINE_PARAMS,
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 100, pattern: '^[\\x21-\\x7e]+$' } }, required: ['idempotency-key'] },
        body: { type: 'object', properties: { slot: SLOT_CODE, quantity: { type: 'integer', minimum: 1, maximum: 9, default: 1 } }, required: ['slot'], additionalProperties: false },
        response: {
          200: PURCHASE_DONE,
          202: PURCHASE_PENDING,
          400: ERROR,
          401: ERROR,
          403: ERROR,
          404: { ...PURCHASE_REFUSED, description: 'No such machine, or the machine has no such slot (error unknown-slot, with the purchase)' },
          409: { ...PURCHASE_REFUSED, description: 'The machine refused the vend (busy, sold-out, locked, out-of-service, ...: nothing dispensed), or another request with this key is issuing it' },
          422: { ...PURCHASE_REFUSED, description: 'The Idempotency-Key was used for another purchase, or the machine found the arguments bad (bad-args, with the purchase)' },
          504: { ...PURCHASE_REFUSED, description: 'The machine did not get the purchase before it expired (machine-unreachable): nothing dispensed' },
        },
      },
    },
    async (req, reply) => {
      const s = await machineState(req, req.params.id);
      return purchase(req.params.id, req.headers['idempotency-key']!, req.body, s.telemetry, reply);
    },
  );

  /** A purchase on a machine the token's operator owns (checked by the caller). */
  async function purchase(machine: string, key: string, body: { slot: string; quantity: number }, telemetry: Telemetry | null, reply: FastifyReply): Promise<unknown> {
    const requestHash = createHash('sha256').update(JSON.stringify({ slot: body.slot, quantity: body.quantity })).digest('hex');
    let commandId: string | undefined;
    let mine = await claimKey(db, machine, key, requestHash);
    if (!mine) {
      const prior = await keyRecord(db, machine, key);
      if (!prior) throw new HttpError('internal', 'the Idempotency-Key vanished while it was being claimed');
      if (prior.requestHash !== requestHash) throw new HttpError('idempotency-key-reused', 'this Idempotency-Key was used for a different purchase');
      if (prior.response) return reply.code(prior.response.status).header('idempotent-replay', 'true').send(prior.response.body);
      commandId = prior.commandId;
      if (!commandId) {
        // The first request with this key is issuing the vend (only the one that inserted the row may),
        // unless it died doing so: after 10 s the key is taken over, atomically.
        mine = await takeOverKey(db, machine, key);
        for (let waited = 0; !mine && !commandId && waited < waitMs; waited += 100) {
          await new Promise((r) => setTimeout(r, 100));
          commandId = await keyCommand(db, machine, key);
        }
        if (!mine && !commandId) return reply.code(202).send({ status: 'pending', message: 'a request with this Idempotency-Key is under way; ask again' });
      }
    }
    if (mine) {
      // The price the API listed is the price the machine charges (it journals it with the vend).
      const listed = slotsOf(telemetry).find((x) => x.code === body.slot)?.price;
      const price = typeof listed === 'number' && Number.isInteger(listed) && listed >= 0 && listed <= 1_000_000 ? listed : undefined;
      // The vend and the key's claim on it commit together: a request that died half-way left neither.
      const c = await commands.issue(machine, 'vend', { slot: body.slot, quantity: body.quantity, ...(price !== undefined ? { price } : {}) }, {
        ttlS: options.purchaseTtlS,
        within: async (tx, id) => {
          if (!(await bindKeyCommand(tx, machine, key, id))) throw new HttpError('in-progress', 'another request with this Idempotency-Key issued the purchase; ask again');
        },
      });
      commandId = c.id;
    }
    if (!commandId) throw new HttpError('internal', 'no command for this purchase');
    const done = await commands.waitFor(commandId, waitMs);
    if (!done || done.status === 'queued' || done.status === 'delivered') {
      return reply.code(202).send({ status: 'pending', command: commandId, message: 'the machine has not answered yet; ask again with the same Idempotency-Key' });
    }
    const answer = purchaseAnswer(done, body, moneyOf(telemetry)?.currency ?? null);
    // Nothing was dispensed and asking again may work: the key is given up, not kept with this answer.
    if (transient(done)) await releaseKey(db, machine, key, done.id);
    else await saveKeyAnswer(db, machine, key, answer);
    return reply.code(answer.status).send(answer.body);
  }
}

/**
 * A refusal that asking again may cure, with nothing dispensed: the machine
 * was busy with a customer, or the vend expired before it was ever sent to
 * the machine. A vend that expired after it was sent is not one of them: the
 * machine may yet have had it, so its answer stays under the key.
 */
function transient(c: CommandRecord): boolean {
  if (c.status === 'refused') return String(c.outcome?.['reason'] ?? '') === 'busy';
  return c.status === 'expired' && c.sent === 0;
}

/** The answer to a purchase the machine has dealt with (kept under its key and replayed). */
function purchaseAnswer(c: CommandRecord, body: { slot: string; quantity: number }, currency: string | null): StoredAnswer {
  const o = c.outcome ?? {};
  const dispensed = Number(o['value'] ?? 0);
  const remaining = o['remaining'] === undefined ? null : Number(o['remaining']);
  const price = typeof c.args['price'] === 'number' ? c.args['price'] : null;
  const money = { price, charged: price === null ? null : price * dispensed, currency, payment: 'remote', change: 0 };
  const base = { command: c.id, slot: body.slot, requested: body.quantity };
  switch (c.status) {
    case 'applied':
      return { status: 200, body: { ...base, status: 'dispensed', dispensed, remaining, ...money } };
    case 'failed':
      return { status: 200, body: { ...base, status: dispensed > 0 ? 'partial' : 'failed', dispensed, remaining, ...money } };
    case 'interrupted':
      return { status: 200, body: { ...base, status: 'interrupted', dispensed, remaining, ...money, message: 'the machine lost power during the vend; it will not dispense more for this purchase' } };
    case 'refused': {
      const reason = String(o['reason'] ?? 'refused');
      return { status: refusalStatus(reason), body: { error: reason, message: `the machine refused: ${reason}`, ...base, dispensed: 0 } };
    }
    case 'expired':
      return { status: ERROR_STATUS['machine-unreachable'], body: { error: 'machine-unreachable', message: 'the machine did not get the purchase in time; nothing was dispensed', ...base, dispensed: 0 } };
    default:
      return { status: ERROR_STATUS.refused, body: { error: c.status, message: `the machine did not vend (${c.status})`, ...base, dispensed: 0 } };
  }
}
