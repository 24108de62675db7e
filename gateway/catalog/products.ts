/**
 * An operator's product catalog in the fleet store (migration 17): products
 * known by SKU within their operator, a default price in minor units of a
 * currency, a category, and an image (uploaded bytes or an https URL). Every
 * call names the operator: another operator's SKU is no product at all.
 */
import { createHash } from 'node:crypto';
import type { Queryable } from '../store/db.js';
import { productImageProblem, sniffImageType, type ProductImageType } from './image.js';

export const SKU_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$';
export const SKU_RULE = 'a SKU is 1 to 40 letters, digits, dots, dashes or underscores, starting with a letter or digit';
/** Prices a machine takes (docs/commands.md set-prices): whole minor units. */
export const MIN_PRICE = 1;
export const MAX_PRICE = 1_000_000;
export const MAX_NAME = 100;
export const MAX_CATEGORY = 64;
export const MAX_IMAGE_URL = 2048;

export class CatalogError extends Error {
  constructor(
    readonly code: 'unknown-product' | 'product-exists' | 'in-use' | 'bad-product' | 'unknown-sku' | 'bad-slot' | 'bad-price',
    message: string,
  ) {
    super(message);
  }
}

export interface Product {
  sku: string;
  name: string;
  category: string | null;
  /** The default price, minor units of `currency`. */
  price: number;
  currency: string;
  /** Where the image is: the gateway's own URL for an uploaded one, the https URL given, or null. */
  image: string | null;
  /** The uploaded image's type (null: none uploaded). */
  imageType: ProductImageType | null;
  createdAt: string;
  updatedAt: string;
}

export interface ProductInput {
  name?: string | undefined;
  category?: string | null | undefined;
  price?: number | undefined;
  currency?: string | undefined;
  imageUrl?: string | null | undefined;
}

const SKU = new RegExp(SKU_PATTERN);
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export const isSku = (s: unknown): s is string => typeof s === 'string' && SKU.test(s);

/** Why a price is not one a machine takes, or undefined. */
export function priceProblem(p: unknown, what = 'price'): string | undefined {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < MIN_PRICE || p > MAX_PRICE) return `${what} is a whole number of minor units from ${MIN_PRICE} to ${MAX_PRICE}`;
  return undefined;
}

/** Why an image URL is not one the catalog keeps: https only, a real URL, no credentials in it. */
export function imageUrlProblem(u: string): string | undefined {
  if (u.length > MAX_IMAGE_URL) return `imageUrl is at most ${MAX_IMAGE_URL} characters`;
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return 'imageUrl is not a URL';
  }
  if (url.protocol !== 'https:' || !u.toLowerCase().startsWith('https://')) return 'imageUrl must be an https:// URL';
  if (url.username !== '' || url.password !== '') return 'imageUrl must not carry a user name or password';
  if (CONTROL.test(u) || /\s/.test(u)) return 'imageUrl must not contain spaces or control characters';
  return undefined;
}

/** Why the fields given are not a product's (all of them for a new one), or undefined. */
export function productProblem(p: ProductInput, whole: boolean): string | undefined {
  if (whole && (p.name === undefined || p.price === undefined || p.currency === undefined)) return 'a product needs name, price and currency';
  if (p.name !== undefined && (p.name.trim().length === 0 || p.name.length > MAX_NAME || CONTROL.test(p.name))) return `name is 1 to ${MAX_NAME} characters, not only spaces, no control characters`;
  if (p.category !== undefined && p.category !== null && (p.category.trim().length === 0 || p.category.length > MAX_CATEGORY || CONTROL.test(p.category))) return `category is 1 to ${MAX_CATEGORY} characters, no control characters (null: none)`;
  if (p.price !== undefined) {
    const problem = priceProblem(p.price);
    if (problem) return problem;
  }
  if (p.currency !== undefined && !/^[A-Z]{3}$/.test(p.currency)) return 'currency is an ISO 4217 code: three capital letters';
  if (p.imageUrl !== undefined && p.imageUrl !== null) return imageUrlProblem(p.imageUrl);
  return undefined;
}

interface Row {
  sku: string;
  name: string;
  category: string | null;
  price: string | number;
  currency: string;
  image_type: ProductImageType | null;
  image_sha256: string | null;
  image_url: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const COLUMNS = 'sku, name, category, price, currency, image_type, image_sha256, image_url, created_at, updated_at';

/** The gateway's URL of an uploaded image (its hash in it: a new image is a new URL, so caches never show the old one). */
export function imagePath(operator: string, sku: string, sha256: string): string {
  return `/products/${encodeURIComponent(sku)}/image?operator=${encodeURIComponent(operator)}&v=${sha256.slice(0, 16)}`;
}

function product(operator: string, r: Row): Product {
  return {
    sku: r.sku,
    name: r.name,
    category: r.category,
    price: Number(r.price),
    currency: r.currency,
    image: r.image_sha256 !== null ? imagePath(operator, r.sku, r.image_sha256) : r.image_url,
    imageType: r.image_type,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

/** The operator's products in SKU order, those of `category` (any case) when given. */
export async function listProducts(db: Queryable, operator: string, category?: string): Promise<Product[]> {
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM products WHERE operator_id = $1 AND ($2::text IS NULL OR lower(category) = lower($2)) ORDER BY sku`, [operator, category ?? null]);
  return r.rows.map((x) => product(operator, x));
}

export async function getProduct(db: Queryable, operator: string, sku: string): Promise<Product | undefined> {
  if (!isSku(sku)) return undefined;
  const r = await db.query<Row>(`SELECT ${COLUMNS} FROM products WHERE operator_id = $1 AND sku = $2`, [operator, sku]);
  return r.rows[0] && product(operator, r.rows[0]);
}

/** Add a product; CatalogError product-exists when the operator has the SKU. */
export async function createProduct(db: Queryable, operator: string, sku: string, p: ProductInput): Promise<Product> {
  if (!isSku(sku)) throw new CatalogError('bad-product', SKU_RULE);
  const problem = productProblem(p, true);
  if (problem) throw new CatalogError('bad-product', problem);
  const r = await db.query<Row>(
    `INSERT INTO products (operator_id, sku, name, category, price, currency, image_url) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
    [operator, sku, p.name, p.category ?? null, p.price, p.currency, p.imageUrl ?? null],
  );
  if (!r.rows[0]) throw new CatalogError('product-exists', `product "${sku}" exists`);
  return product(operator, r.rows[0]);
}

/**
 * Change the fields given (the others stay); CatalogError unknown-product
 * when the operator has no such SKU. An image URL replaces an uploaded image.
 */
export async function updateProduct(db: Queryable, operator: string, sku: string, p: ProductInput): Promise<Product> {
  const problem = productProblem(p, false);
  if (problem) throw new CatalogError('bad-product', problem);
  const setUrl = p.imageUrl !== undefined;
  const r = await db.query<Row>(
    `UPDATE products SET name = COALESCE($3, name), category = CASE WHEN $4 THEN $5 ELSE category END, price = COALESCE($6, price),
       currency = COALESCE($7, currency), image_url = CASE WHEN $8 THEN $9 ELSE image_url END,
       image = CASE WHEN $8 AND $9::text IS NOT NULL THEN NULL ELSE image END,
       image_type = CASE WHEN $8 AND $9::text IS NOT NULL THEN NULL ELSE image_type END,
       image_sha256 = CASE WHEN $8 AND $9::text IS NOT NULL THEN NULL ELSE image_sha256 END,
       updated_at = now()
     WHERE operator_id = $1 AND sku = $2 RETURNING ${COLUMNS}`,
    [operator, sku, p.name ?? null, p.category !== undefined, p.category ?? null, p.price ?? null, p.currency ?? null, setUrl, p.imageUrl ?? null],
  );
  if (!r.rows[0]) throw new CatalogError('unknown-product', `no product "${sku}"`);
  return product(operator, r.rows[0]);
}

/** Remove a product no slot holds; CatalogError in-use names the machines that do. */
export async function deleteProduct(db: Queryable, operator: string, sku: string): Promise<void> {
  const used = await db.query<{ machine_id: string; slot: string }>('SELECT machine_id, slot FROM planogram WHERE operator_id = $1 AND sku = $2 ORDER BY machine_id, slot LIMIT 10', [operator, sku]);
  if (used.rows.length > 0) {
    throw new CatalogError('in-use', `product "${sku}" is in slots ${used.rows.map((x) => `${x.machine_id}/${x.slot}`).join(', ')}: assign those slots another product (or none) first`);
  }
  const r = await db.query('DELETE FROM products WHERE operator_id = $1 AND sku = $2 RETURNING sku', [operator, sku]);
  if (r.rows.length === 0) throw new CatalogError('unknown-product', `no product "${sku}"`);
}

/** Store an uploaded image (checked here: size and sniffed type), replacing any image or URL. */
export async function setProductImage(db: Queryable, operator: string, sku: string, bytes: Uint8Array, declared?: string): Promise<Product> {
  const problem = productImageProblem(bytes, declared);
  if (problem) throw new CatalogError('bad-product', problem);
  const type = sniffImageType(bytes)!;
  const sha = createHash('sha256').update(bytes).digest('hex');
  const r = await db.query<Row>(
    `UPDATE products SET image = $3, image_type = $4, image_sha256 = $5, image_url = NULL, updated_at = now()
     WHERE operator_id = $1 AND sku = $2 RETURNING ${COLUMNS}`,
    [operator, sku, Buffer.from(bytes), type, sha],
  );
  if (!r.rows[0]) throw new CatalogError('unknown-product', `no product "${sku}"`);
  return product(operator, r.rows[0]);
}

/** Remove a product's image (uploaded or URL). */
export async function removeProductImage(db: Queryable, operator: string, sku: string): Promise<Product> {
  const r = await db.query<Row>(
    `UPDATE products SET image = NULL, image_type = NULL, image_sha256 = NULL, image_url = NULL, updated_at = now()
     WHERE operator_id = $1 AND sku = $2 RETURNING ${COLUMNS}`,
    [operator, sku],
  );
  if (!r.rows[0]) throw new CatalogError('unknown-product', `no product "${sku}"`);
  return product(operator, r.rows[0]);
}

/** An uploaded image's bytes and type, or undefined (no such product, or none uploaded). */
export async function productImage(db: Queryable, operator: string, sku: string): Promise<{ bytes: Buffer; type: ProductImageType; sha256: string } | undefined> {
  if (!isSku(sku)) return undefined;
  const r = await db.query<{ image: Uint8Array | null; image_type: ProductImageType | null; image_sha256: string | null }>(
    'SELECT image, image_type, image_sha256 FROM products WHERE operator_id = $1 AND sku = $2',
    [operator, sku],
  );
  const row = r.rows[0];
  if (!row?.image || !row.image_type || !row.image_sha256) return undefined;
  return { bytes: Buffer.from(row.image), type: row.image_type, sha256: row.image_sha256 };
}
