/**
 * describe/it for the firmware's unit tests inside the XS engine, which has
 * no mocha. Evaluated before a test bundle; `__runTests()` runs everything
 * registered and returns the results as JSON bytes.
 */
type Fn = () => unknown;

interface Suite {
  name: string;
  tests: { name: string; fn: Fn }[];
  suites: Suite[];
  before: Fn[];
  beforeEach: Fn[];
  after: Fn[];
  afterEach: Fn[];
}

interface Result {
  title: string;
  ok: boolean;
  error?: string;
}

const newSuite = (name: string): Suite => ({ name, tests: [], suites: [], before: [], beforeEach: [], after: [], afterEach: [] });
const root = newSuite('');
let current = root;
const g = globalThis as unknown as Record<string, unknown>;

g['describe'] = (name: string, fn: () => void): void => {
  const suite = newSuite(name);
  current.suites.push(suite);
  const parent = current;
  current = suite;
  try {
    fn();
  } finally {
    current = parent;
  }
};
g['it'] = (name: string, fn: Fn): void => {
  current.tests.push({ name, fn });
};
g['before'] = (fn: Fn): void => void current.before.push(fn);
g['beforeEach'] = (fn: Fn): void => void current.beforeEach.push(fn);
g['after'] = (fn: Fn): void => void current.after.push(fn);
g['afterEach'] = (fn: Fn): void => void current.afterEach.push(fn);

function message(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function run(suite: Suite, path: string[], eachBefore: Fn[], eachAfter: Fn[], out: Result[]): void {
  const here = suite.name ? [...path, suite.name] : path;
  const befores = [...eachBefore, ...suite.beforeEach];
  const afters = [...suite.afterEach, ...eachAfter];
  try {
    for (const f of suite.before) f();
  } catch (e) {
    out.push({ title: [...here, '"before" hook'].join(' > '), ok: false, error: message(e) });
    return;
  }
  for (const t of suite.tests) {
    const title = [...here, t.name].join(' > ');
    try {
      for (const f of befores) f();
      const r = t.fn();
      if (r && typeof (r as { then?: unknown }).then === 'function') throw new Error('asynchronous tests are not supported under XS');
      for (const f of afters) f();
      out.push({ title, ok: true });
    } catch (e) {
      out.push({ title, ok: false, error: message(e) });
    }
  }
  for (const s of suite.suites) run(s, here, befores, afters, out);
  for (const f of suite.after) f();
}

g['__runTests'] = (): ArrayBuffer => {
  const out: Result[] = [];
  run(root, [], [], [], out);
  const Encoder = g['TextEncoder'] as new () => { encode(s: string): Uint8Array };
  const bytes = new Encoder().encode(JSON.stringify(out));
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
};
