/**
 * The product catalog over the operator API (docs/catalog.md): an
 * operator's products (CRUD, viewer reads, admin writes), their images
 * (uploaded bytes, sniffed and size-checked, served as the image type they
 * are and nothing else), and each machine's planogram: which product each
 * slot holds at what price. A planogram change stores the assignments and
 * sends the machine the prices that differ from what it reports (one
 * set-prices command). Products are the token's operator's (a platform admin
 * names one with ?operator=); another operator's SKU is not found.
 */
import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import { MAX_PRODUCT_IMAGE_BYTES, PRODUCT_IMAGE_TYPES } from '../catalog/image.js';
import { applyAssignments, assignmentsOf, machineOperator, MAX_CHANGES, planogramView, pricesDue, pricesUnderWay, type AssignmentChange } from '../catalog/planogram.js';
import {
  createProduct,
  deleteProduct,
  getProduct,
  listProducts,
  MAX_CATEGORY,
  MAX_IMAGE_URL,
  MAX_NAME,
  MAX_PRICE,
  MIN_PRICE,
  productImage,
  removeProductImage,
  setProductImage,
  SKU_PATTERN,
  SKU_RULE,
  updateProduct,
  type Product,
} from '../catalog/products.js';
import { CommandError, type CommandRecord } from '../commands/service.js';
import { moneyOf, slotsOf } from '../store/machines.js';
import { HttpError } from './errors.js';
import { ERROR, MACHINE_PARAMS, OPERATOR_PARAM, SLOT_CODE, type RouteContext } from './http.js';
import { validatorCompiler } from './validation.js';

const TEXT = '^[^\\x00-\\x1f\\x7f-\\x9f]+$';
const NULLABLE_STRING = { type: ['string', 'null'] } as const;
const NULLABLE_INT = { type: ['integer', 'null'] } as const;
const PRICE = { type: 'integer', minimum: MIN_PRICE, maximum: MAX_PRICE, description: `Whole minor units of the currency, ${MIN_PRICE} to ${MAX_PRICE} (what a machine takes)` } as const;
const SKU = { type: 'string', pattern: SKU_PATTERN, description: SKU_RULE } as const;
const NAME = { type: 'string', minLength: 1, maxLength: MAX_NAME, pattern: TEXT } as const;
const CATEGORY = { type: ['string', 'null'], minLength: 1, maxLength: MAX_CATEGORY, pattern: TEXT } as const;
const CURRENCY = { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217, e.g. USD' } as const;
const IMAGE_URL = { type: ['string', 'null'], maxLength: MAX_IMAGE_URL, pattern: '^https://', description: 'An https:// image URL (or upload the image: PUT /products/{sku}/image); null removes it' } as const;
const ERRORS = { 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR } as const;
const OPERATOR_QUERY = { type: 'object', properties: { operator: OPERATOR_PARAM }, additionalProperties: false } as const;
const SKU_PARAMS = { type: 'object', properties: { sku: SKU }, required: ['sku'] } as const;

const PRODUCT = {
  type: 'object',
  properties: {
    sku: { type: 'string' },
    name: { type: 'string' },
    category: NULLABLE_STRING,
    price: { type: 'integer', description: 'The default price, minor units of currency' },
    currency: { type: 'string' },
    image: { ...NULLABLE_STRING, description: "The image's URL: the gateway's (GET it with the API token) for an uploaded one, else the https URL given; null: none" },
    imageType: { ...NULLABLE_STRING, description: 'An uploaded image\'s type' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
  required: ['sku', 'name', 'category', 'price', 'currency', 'image'],
} as const;

const PLANOGRAM_SLOT = {
  type: 'object',
  properties: {
    slot: { type: 'string' },
    sku: { ...NULLABLE_STRING, description: 'The catalog product assigned (null: none)' },
    name: { ...NULLABLE_STRING, description: "The catalog's name, else the machine's own label" },
    category: NULLABLE_STRING,
    image: NULLABLE_STRING,
    defaultPrice: NULLABLE_INT,
    currency: { ...NULLABLE_STRING, description: "The product's currency" },
    priceOverride: { ...NULLABLE_INT, description: "This machine's own price (null: the product's default)" },
    price: { ...NULLABLE_INT, description: 'What the machine should charge' },
    machinePrice: { ...NULLABLE_INT, description: 'What the machine says it charges (its last telemetry)' },
    quantity: NULLABLE_INT,
    capacity: NULLABLE_INT,
    pending: { type: 'boolean', description: 'The machine does not charge price yet (a set-prices command is due or under way)' },
  },
} as const;

const PLANOGRAM = {
  type: 'object',
  properties: {
    machine: { type: 'string' },
    currency: { ...NULLABLE_STRING, description: "The machine's currency, as it says" },
    slots: { type: 'array', items: PLANOGRAM_SLOT },
    asOf: { type: ['string', 'null'], format: 'date-time', description: "The machine's last telemetry" },
    command: {
      type: ['object', 'null'],
      description: 'The set-prices command sent with this change (null: no price differed, or apply was false)',
      properties: { id: { type: 'string' }, status: { type: 'string' }, prices: { type: 'object', additionalProperties: { type: 'integer' } } },
    },
    unsent: { ...NULLABLE_STRING, description: 'Why the prices due could not be sent (the assignments are stored; PUT {"slots":[]} sends them later)' },
  },
} as const;

interface ProductBody {
  name?: string;
  category?: string | null;
  price?: number;
  currency?: string;
  imageUrl?: string | null;
}

export async function registerCatalogRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { db, reads, need, owner, commands } = ctx;
  const known = (p: Product | undefined, sku: string): Product => {
    if (!p) throw new HttpError('unknown-product', `no product "${sku}"`);
    return p;
  };
  const operatorOf = async (req: FastifyRequest<{ Querystring: { operator?: string } }>): Promise<string> => owner(req, req.query.operator);

  app.get<{ Querystring: { operator?: string; category?: string } }>(
    '/products',
    {
      preHandler: need('viewer'),
      schema: {
        summary: "The operator's product catalog, SKU order",
        tags: ['catalog'],
        querystring: { type: 'object', properties: { operator: OPERATOR_PARAM, category: { type: 'string', minLength: 1, maxLength: MAX_CATEGORY, description: 'Only this category (any case)' } }, additionalProperties: false },
        response: { 200: { type: 'object', properties: { operator: { type: 'string' }, products: { type: 'array', items: PRODUCT } } }, ...ERRORS },
      },
    },
    async (req) => {
      const operator = await operatorOf(req);
      return { operator, products: await listProducts(reads, operator, req.query.category) };
    },
  );

  app.post<{ Querystring: { operator?: string }; Body: ProductBody & { sku: string } }>(
    '/products',
    {
      preHandler: need('admin'),
      schema: {
        summary: 'Add a product to the catalog (admin); its SKU is unique within the operator',
        tags: ['catalog'],
        querystring: OPERATOR_QUERY,
        body: {
          type: 'object',
          properties: { sku: SKU, name: NAME, category: CATEGORY, price: PRICE, currency: CURRENCY, imageUrl: IMAGE_URL },
          required: ['sku', 'name', 'price', 'currency'],
          additionalProperties: false,
        },
        response: { 201: PRODUCT, ...ERRORS, 409: ERROR },
      },
    },
    async (req, reply) => {
      const operator = await operatorOf(req);
      const p = await createProduct(db, operator, req.body.sku, req.body);
      return reply.code(201).header('location', `/products/${encodeURIComponent(p.sku)}`).send(p);
    },
  );

  app.get<{ Params: { sku: string }; Querystring: { operator?: string } }>(
    '/products/:sku',
    { preHandler: need('viewer'), schema: { summary: 'One product', tags: ['catalog'], params: SKU_PARAMS, querystring: OPERATOR_QUERY, response: { 200: PRODUCT, ...ERRORS } } },
    async (req) => known(await getProduct(reads, await operatorOf(req), req.params.sku), req.params.sku),
  );

  app.put<{ Params: { sku: string }; Querystring: { operator?: string }; Body: ProductBody }>(
    '/products/:sku',
    {
      preHandler: need('admin'),
      schema: {
        summary: 'Change a product (admin): the fields given, the others kept. A new default price reaches machines through their planograms (PUT /machines/{id}/planogram)',
        tags: ['catalog'],
        params: SKU_PARAMS,
        querystring: OPERATOR_QUERY,
        body: { type: 'object', properties: { name: NAME, category: CATEGORY, price: PRICE, currency: CURRENCY, imageUrl: IMAGE_URL }, minProperties: 1, additionalProperties: false },
        response: { 200: PRODUCT, ...ERRORS },
      },
    },
    async (req) => updateProduct(db, await operatorOf(req), req.params.sku, req.body),
  );

  app.delete<{ Params: { sku: string }; Querystring: { operator?: string } }>(
    '/products/:sku',
    {
      preHandler: need('admin'),
      schema: { summary: 'Remove a product no slot holds (admin)', tags: ['catalog'], params: SKU_PARAMS, querystring: OPERATOR_QUERY, response: { 204: { type: 'null' }, ...ERRORS, 409: ERROR } },
    },
    async (req, reply) => {
      await deleteProduct(db, await operatorOf(req), req.params.sku);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { sku: string }; Querystring: { operator?: string; v?: string } }>(
    '/products/:sku/image',
    {
      preHandler: need('viewer'),
      schema: {
        summary: "A product's uploaded image, as the image type its bytes are",
        tags: ['catalog'],
        params: SKU_PARAMS,
        querystring: { type: 'object', properties: { operator: OPERATOR_PARAM, v: { type: 'string', pattern: '^[0-9a-f]{1,64}$', description: 'The image version in its URL (ignored: it keeps caches apart)' } }, additionalProperties: false },
      },
    },
    async (req, reply) => {
      const img = await productImage(reads, await operatorOf(req), req.params.sku);
      if (!img) throw new HttpError('unknown-product', `no image for product "${req.params.sku}"`);
      // Only ever an image: the sniffed type, no sniffing by the browser, and no script or style should it be opened as a page.
      return reply
        .header('content-type', img.type)
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .header('content-disposition', `inline; filename="${req.params.sku}.${img.type.slice('image/'.length)}"`)
        .header('cache-control', 'private, max-age=86400')
        .header('etag', `"${img.sha256}"`)
        .send(img.bytes);
    },
  );

  app.delete<{ Params: { sku: string }; Querystring: { operator?: string } }>(
    '/products/:sku/image',
    { preHandler: need('admin'), schema: { summary: "Remove a product's image (admin)", tags: ['catalog'], params: SKU_PARAMS, querystring: OPERATOR_QUERY, response: { 200: PRODUCT, ...ERRORS } } },
    async (req) => removeProductImage(db, await operatorOf(req), req.params.sku),
  );

  await app.register(async (scope) => {
    // The image's bytes as the body, up to the limit (fastify answers 413 past it, 415 for a type not taken).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser([...PRODUCT_IMAGE_TYPES, 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: MAX_PRODUCT_IMAGE_BYTES }, (_req, body, done) => done(null, body));
    const shared = validatorCompiler();
    const bytesBody: FastifySchemaCompiler<unknown> = (route) => (route.httpPart === 'body' ? (data: unknown) => data === undefined || Buffer.isBuffer(data) : shared(route));
    scope.put<{ Params: { sku: string }; Querystring: { operator?: string }; Body: Buffer | undefined }>(
      '/products/:sku/image',
      {
        // Before the body is read: no bytes are taken in from a token without the role.
        onRequest: need('admin'),
        bodyLimit: MAX_PRODUCT_IMAGE_BYTES,
        validatorCompiler: bytesBody,
        schema: {
          summary: `Upload a product's image (admin): PNG, JPEG, GIF or WebP, at most ${MAX_PRODUCT_IMAGE_BYTES} bytes; its type is read from its bytes`,
          tags: ['catalog'],
          consumes: [...PRODUCT_IMAGE_TYPES, 'application/octet-stream'],
          params: SKU_PARAMS,
          querystring: OPERATOR_QUERY,
          body: { type: 'string', format: 'binary' },
          response: { 200: PRODUCT, ...ERRORS, 413: ERROR, 415: ERROR },
        },
      },
      async (req) => {
        const operator = await operatorOf(req);
        known(await getProduct(db, operator, req.params.sku), req.params.sku);
        const declared = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        return setProductImage(db, operator, req.params.sku, req.body ?? Buffer.alloc(0), declared);
      },
    );
  });

  /** The machine's planogram as the API shows it, from the store `from`. */
  const planogram = async (from: typeof db, machine: string, telemetry: Parameters<typeof slotsOf>[0], asOf: Date | null) => {
    const currency = moneyOf(telemetry)?.currency ?? null;
    return { machine, currency, slots: planogramView(slotsOf(telemetry), await assignmentsOf(from, machine), currency), asOf: asOf === null ? null : new Date(asOf).toISOString() };
  };

  app.get<{ Params: { id: string } }>(
    '/machines/:id/planogram',
    {
      preHandler: need('viewer'),
      schema: {
        summary: "The machine's slots with the catalog products assigned to them, what it should charge and what it says it charges",
        tags: ['catalog'],
        params: MACHINE_PARAMS,
        response: { 200: PLANOGRAM, ...ERRORS },
      },
    },
    async (req) => {
      const s = await ctx.readMachineState(req, req.params.id);
      return planogram(reads, req.params.id, s.telemetry, s.telemetry_at);
    },
  );

  app.put<{ Params: { id: string }; Body: { slots: AssignmentChange[]; apply: boolean } }>(
    '/machines/:id/planogram',
    {
      preHandler: need('operator'),
      schema: {
        summary:
          'Assign catalog products to slots (sku null: none), each with an optional price for this machine; slots not named are kept. ' +
          'Then, unless apply is false, the prices the machine does not charge yet go to it as one set-prices command ({"slots":[]} sends what is due)',
        tags: ['catalog'],
        params: MACHINE_PARAMS,
        body: {
          type: 'object',
          properties: {
            slots: {
              type: 'array',
              maxItems: MAX_CHANGES,
              items: {
                type: 'object',
                properties: { slot: SLOT_CODE, sku: { type: ['string', 'null'], pattern: SKU_PATTERN }, price: { ...PRICE, type: ['integer', 'null'] } },
                required: ['slot', 'sku'],
                additionalProperties: false,
              },
            },
            apply: { type: 'boolean', default: true, description: 'Send the machine the prices due (default true)' },
          },
          required: ['slots'],
          additionalProperties: false,
        },
        response: { 200: PLANOGRAM, ...ERRORS },
      },
    },
    async (req) => {
      const id = req.params.id;
      const s = await ctx.machineState(req, id);
      const operator = await machineOperator(db, id);
      if (!operator) throw new HttpError('unknown-machine', `no machine "${id}"`);
      const currency = moneyOf(s.telemetry)?.currency ?? null;
      if (req.body.slots.length > 0) await db.transaction((tx) => applyAssignments(tx, id, operator, slotsOf(s.telemetry), currency, req.body.slots));
      const view = await planogram(db, id, s.telemetry, s.telemetry_at);
      const prices = pricesDue(view.slots, await pricesUnderWay(db, id, s.telemetry_at));
      let command: { id: string; status: string; prices: Record<string, number> } | null = null;
      let unsent: string | null = null;
      if (req.body.apply && Object.keys(prices).length > 0) {
        try {
          const c: CommandRecord = await commands.issue(id, 'set-prices', { prices });
          command = { id: c.id, status: c.status, prices };
        } catch (e) {
          // The assignments stand; the prices wait for a machine that can take a command (provisioned, with a key).
          if (!(e instanceof CommandError)) throw e;
          unsent = e.message;
        }
      }
      return { ...view, command, unsent };
    },
  );
}
