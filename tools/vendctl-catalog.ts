/**
 * `vendctl products ...` and `vendctl planogram ...`: the operator's product
 * catalog and a machine's planogram over the API (docs/catalog.md). Builds
 * the request; vendctl.ts sends it and prints the answer (a table unless
 * --json). `vendctl products MACHINE` stays what a machine has on sale.
 */
import { readFileSync } from 'node:fs';

export const CATALOG_USAGE = `  products list [--category C] | products show SKU | products add SKU NAME PRICE CURRENCY [--category C] [--image-url URL]
  products set SKU [--name N] [--price P] [--currency CUR] [--category C|none] [--image-url URL|none] | products image SKU FILE | products remove SKU
      (the operator's catalog: PRICE in minor units, e.g. 150 for 1.50; writes need admin; --operator OP for a platform admin)
  planogram show ID | planogram assign ID SLOT SKU|none [--price P] [--no-apply] | planogram apply ID
      (assign sends the machine the prices that differ as one set-prices command unless --no-apply; apply sends what is due)`;

/** Words after `products` that name a catalog action, not a machine (`products --machine ID` for a machine named so). */
export const CATALOG_ACTIONS: ReadonlySet<string> = new Set(['list', 'show', 'add', 'set', 'image', 'remove']);

export interface CatalogRequest {
  method: string;
  path: string;
  body?: unknown;
  raw?: Buffer;
  contentType?: string;
}

type Fail = (message: string, code?: number) => never;

/** A price as typed: whole minor units, or the command fails before asking the gateway. */
function price(text: string, fail: Fail): number {
  if (!/^[0-9]{1,7}$/.test(text)) fail(`a price is a whole number of minor units (150 for 1.50), not "${text}"`);
  return Number(text);
}

const query = (operator: string | undefined, extra: [string, string | undefined][] = []): string => {
  const s = new URLSearchParams();
  for (const [k, v] of [['operator', operator] as [string, string | undefined], ...extra]) if (v !== undefined) s.set(k, v);
  const t = s.toString();
  return t ? `?${t}` : '';
};

export function productsRequest(args: string[], flags: ReadonlyMap<string, string>, fail: Fail): CatalogRequest {
  const [, action, sku, a, b, c] = args;
  const need = (v: string | undefined, what: string): string => v ?? fail(`products ${action} needs ${what}\n${CATALOG_USAGE}`);
  const one = (s: string | undefined): string => `/products/${encodeURIComponent(need(s, 'a SKU'))}`;
  const q = query(flags.get('operator'));
  switch (action) {
    case 'list':
      return { method: 'GET', path: `/products${query(flags.get('operator'), [['category', flags.get('category')]])}` };
    case 'show':
      return { method: 'GET', path: one(sku) + q };
    case 'add': {
      const body: Record<string, unknown> = { sku: need(sku, 'a SKU'), name: need(a, 'a name'), price: price(need(b, 'a price'), fail), currency: need(c, 'a currency (USD, EUR, ...)') };
      if (flags.has('category')) body['category'] = flags.get('category');
      if (flags.has('image-url')) body['imageUrl'] = flags.get('image-url');
      return { method: 'POST', path: `/products${q}`, body };
    }
    case 'set': {
      const body: Record<string, unknown> = {};
      if (flags.has('name')) body['name'] = flags.get('name');
      if (flags.has('price')) body['price'] = price(flags.get('price')!, fail);
      if (flags.has('currency')) body['currency'] = flags.get('currency');
      if (flags.has('category')) body['category'] = flags.get('category') === 'none' ? null : flags.get('category');
      if (flags.has('image-url')) body['imageUrl'] = flags.get('image-url') === 'none' ? null : flags.get('image-url');
      if (Object.keys(body).length === 0) fail(`products set SKU needs something to change: --name, --price, --currency, --category or --image-url\n${CATALOG_USAGE}`);
      return { method: 'PUT', path: one(sku) + q, body };
    }
    case 'image': {
      const file = need(a, 'an image file (PNG, JPEG, GIF or WebP)');
      let raw: Buffer;
      try {
        raw = readFileSync(file);
      } catch (e) {
        return fail(`cannot read ${file}: ${(e as Error).message}`);
      }
      // The gateway reads the type from the bytes.
      return { method: 'PUT', path: `${one(sku)}/image${q}`, raw, contentType: 'application/octet-stream' };
    }
    case 'remove':
      return { method: 'DELETE', path: one(sku) + q };
    default:
      return fail(`products ${action ?? ''}: one of ${[...CATALOG_ACTIONS].join(', ')}\n${CATALOG_USAGE}`);
  }
}

export function planogramRequest(args: string[], flags: ReadonlyMap<string, string>, fail: Fail): CatalogRequest {
  const [, action, machine, slot, sku] = args;
  const m = (): string => `/machines/${encodeURIComponent(machine ?? fail(`planogram ${action} needs a machine id\n${CATALOG_USAGE}`))}/planogram`;
  switch (action) {
    case 'show':
      return { method: 'GET', path: m() };
    case 'assign': {
      if (slot === undefined || sku === undefined) fail(`planogram assign ID SLOT SKU|none [--price P]\n${CATALOG_USAGE}`);
      const change: Record<string, unknown> = { slot, sku: sku === 'none' ? null : sku };
      if (flags.has('price')) change['price'] = price(flags.get('price')!, fail);
      return { method: 'PUT', path: m(), body: { slots: [change], apply: !flags.has('no-apply') } };
    }
    case 'apply':
      return { method: 'PUT', path: m(), body: { slots: [] } };
    default:
      return fail(`planogram show | assign | apply\n${CATALOG_USAGE}`);
  }
}

/** What a planogram change did about prices, for people (stderr): the command sent, or why none was. */
export function planogramOutcome(answer: unknown): string {
  const a = (typeof answer === 'object' && answer !== null ? answer : {}) as { command?: { id?: unknown; prices?: Record<string, unknown> } | null; unsent?: unknown };
  if (typeof a.unsent === 'string') return `prices not sent: ${a.unsent.replace(/[\u0000-\u001f\u007f]/g, ' ')}`;
  if (!a.command) return 'no price change to send';
  const prices = Object.entries(a.command.prices ?? {}).map(([s, p]) => `${s}=${String(p)}`).join(', ');
  return `set-prices ${String(a.command.id)} sent: ${prices}`;
}
