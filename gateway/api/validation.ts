/**
 * What every operator API route accepts, checked in one place:
 *
 * - JSON bodies are taken as they are (a string is not a number, a number
 *   not a string, a scalar not an array); query strings and path parameters
 *   are text by nature and become numbers or booleans only when they
 *   plainly are one (`12`, `-0.5`, `true`; not `0x10`, ` 5`, `1e400`).
 * - Dates are RFC 3339 date-times from 1970 to 9999 (UTC), which both
 *   JavaScript and PostgreSQL hold exactly.
 * - Text never carries what PostgreSQL refuses or silently changes (NUL,
 *   lone UTF-16 surrogates), and JSON is never nested without end.
 *
 * Each refusal is a 400 whose message names the part and the field.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifyRequest, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { HttpError } from './errors.js';

/** The dates the API takes, inclusive: representable in JavaScript and PostgreSQL alike. */
export const EARLIEST_TIME = Date.UTC(1970, 0, 1);
export const LATEST_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const DATE_TIME_HELP = 'an RFC 3339 date-time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, e.g. 2026-01-31T12:00:00Z';

/** JSON deeper than this is refused: nothing the API takes needs more, and PostgreSQL and JSON.stringify recurse. */
export const MAX_DEPTH = 16;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * An RFC 3339 date-time as a Date, or undefined when it is not one or falls
 * outside 1970 to 9999 (UTC). No leap second (JavaScript cannot hold one);
 * fractions beyond the millisecond are cut.
 */
export function parseDateTime(text: string): Date | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1 || day > (month === 2 && !leap ? 28 : DAYS_IN_MONTH[month - 1]!)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMin = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Date.UTC reads years 0 to 99 as 1900 to 1999: they never reach it (1969 may, with an offset west of UTC).
  if (year < 1969) return undefined;
  const ms = Number((m[7] ?? '0').padEnd(3, '0').slice(0, 3));
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60000;
  return t >= EARLIEST_TIME && t <= LATEST_TIME ? new Date(t) : undefined;
}

/** A date-time parameter the schema has checked (format date-time), as a Date; a 400 if it is not one after all. */
export function dateTime(text: string, name: string): Date {
  const d = parseDateTime(text);
  if (!d) throw new HttpError('bad-request', `${name} must be ${DATE_TIME_HELP}`);
  return d;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a format error says instead of ajv's `must match format "..."`. */
const FORMAT_HELP: Record<string, string> = {
  'date-time': `must be ${DATE_TIME_HELP}`,
  uuid: 'must be a UUID (8-4-4-4-12 hex digits)',
};

/** Why PostgreSQL cannot keep this text as it is, or undefined. */
export function textProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'must not contain a NUL character (U+0000)';
  // A lone surrogate is not Unicode: PostgreSQL refuses it in jsonb and the driver turns it into U+FFFD in text.
  if (!s.isWellFormed()) return 'must not contain a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

/** Names that reach an object's prototype when assigned: never a field of ours. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The first thing wrong with the text and nesting of `value` (found at `path`), or undefined. */
export function inputProblem(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') {
    const p = textProblem(value);
    return p && `${path} ${p}`;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth >= MAX_DEPTH) return `${path} is nested deeper than ${MAX_DEPTH} levels`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = inputProblem(value[i], `${path}/${i}`, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const p = textProblem(k);
    if (p) return `${path} has a property name that ${p}`;
    if (FORBIDDEN_KEYS.has(k)) return `${path} has a property named "${k}", which is not allowed`;
    const q = inputProblem(v, `${path}/${k}`, depth + 1);
    if (q) return q;
  }
  return undefined;
}

/**
 * A preValidation hook for every route: path parameters, the query string
 * and a JSON body are refused (400) before anything else reads them when
 * they hold text PostgreSQL cannot keep or nest too deep. Text bodies (DEX
 * files) are checked by their own parser, byte bodies (firmware images) by
 * the registry.
 */
export async function refuseHostileInput(req: FastifyRequest): Promise<void> {
  const problem =
    inputProblem(req.params, 'params') ??
    inputProblem(req.query, 'querystring') ??
    // Bytes (a firmware image) are not JSON: their own route checks them.
    (typeof req.body === 'object' && !(req.body instanceof Uint8Array) ? inputProblem(req.body, 'body') : undefined);
  if (problem) throw new HttpError('bad-request', problem);
}

interface PropertySchema {
  type?: string | string[];
}

const INTEGER_TEXT = /^-?\d+$/;
const NUMBER_TEXT = /^-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Query and path values are text: a property whose schema wants a number,
 * an integer or a boolean gets one when the text plainly is one; anything
 * else (and a repeated parameter, which comes as an array) is left for the
 * schema to refuse.
 */
function fromText(data: unknown, schema: { properties?: Record<string, PropertySchema> }): void {
  if (typeof data !== 'object' || data === null || !schema.properties) return;
  const record = data as Record<string, unknown>;
  for (const [key, value] of Object.entries(record)) {
    if (typeof value !== 'string' || !Object.hasOwn(schema.properties, key)) continue;
    const prop = schema.properties[key]!;
    const types = Array.isArray(prop.type) ? prop.type : prop.type === undefined ? [] : [prop.type];
    if (types.includes('string')) continue;
    if (types.includes('integer') || types.includes('number')) {
      const ok = types.includes('number') ? NUMBER_TEXT.test(value) : INTEGER_TEXT.test(value);
      const n = Number(value);
      // 1e400 is Infinity: left as text, refused as not a number.
      if (ok && Number.isFinite(n)) record[key] = n;
    } else if (types.includes('boolean') && (value === 'true' || value === 'false')) {
      record[key] = value === 'true';
    }
  }
}

const jsonType = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** ajv's errors, said plainly: what a format is, and what a wrong type was. */
function explained(errors: ErrorObject[] | null | undefined, data: unknown): FastifySchemaValidationError[] {
  return (errors ?? []).map((e) => {
    let message = e.message ?? 'is not valid';
    if (e.keyword === 'format') message = FORMAT_HELP[String(e.params['format'])] ?? message;
    if (e.keyword === 'type') message = `${message}, not ${jsonType(at(data, e.instancePath))}`;
    return { keyword: e.keyword, instancePath: e.instancePath, schemaPath: e.schemaPath, params: e.params, message };
  });
}

/** The value at a JSON pointer (ajv's instancePath). */
function at(data: unknown, pointer: string): unknown {
  let v = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  }
  return v;
}

/**
 * The validator compiler for every route: one Ajv without type coercion
 * (defaults filled in, nothing removed); query strings and path parameters
 * go through `fromText` first.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const ajv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, allowUnionTypes: true });
  ajv.addFormat('date-time', { type: 'string', validate: (s: string) => parseDateTime(s) !== undefined });
  ajv.addFormat('uuid', UUID);
  return ({ schema, httpPart }) => {
    const validate: ValidateFunction = ajv.compile(schema as object);
    const textual = httpPart === 'querystring' || httpPart === 'params';
    const run: ReturnType<FastifySchemaCompiler<unknown>> = (data: unknown) => {
      if (textual) fromText(data, schema as { properties?: Record<string, PropertySchema> });
      if (validate(data)) return true;
      run.errors = explained(validate.errors, data);
      return false;
    };
    return run;
  };
}
