/**
 * What the browser tests share: the demo fleet (`tools/fleet.js`, the `npm start` program) started
 * with its operator API on a free port, Debian's Chromium, and a page that records what the page's
 * Content-Security-Policy blocked (any is a failure: the tests check after each case).
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const FLEET = fileURLToPath(new URL('../../tools/fleet.js', import.meta.url));

export interface RunningFleet {
  /** The operator API, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  /** The first admin token the fleet printed. */
  readonly token: string;
  /** Everything the fleet printed so far (for failure messages). */
  output(): string;
  /** Stops the fleet (SIGINT) and fails unless it exited cleanly. */
  stop(): Promise<void>;
}

/** Starts the demo fleet with `machines` machines and waits (bounded: 90 s) until all are online. */
export async function startFleet(machines: number, args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<RunningFleet> {
  const child = spawn(process.execPath, [FLEET, '--machines', String(machines), '--api-port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let exited = false;
  void closed.then(() => (exited = true));
  const online = new RegExp(`machines online ${machines}/${machines}`);
  for (let i = 0; i < 900 && !exited && !online.test(out); i++) await new Promise((r) => setTimeout(r, 100));
  const url = /operator API {2}(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? '';
  const token = /admin token {3}(vf_[\w-]+)/.exec(out)?.[1] ?? '';
  if (!url || !token || !online.test(out)) {
    child.kill('SIGKILL');
    assert.fail(`the fleet did not come up with ${machines} machines online:\n${out}`);
  }
  return {
    url,
    token,
    output: () => out,
    stop: async () => {
      if (!exited) child.kill('SIGINT');
      assert.equal(await closed, 0, out);
    },
  };
}

/** Debian's Chromium, headless; a clear failure when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is needed at ${CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** Records into `violations` what the page's Content-Security-Policy blocks, from the console and the event (which also reports blocked style attributes). */
export async function watchPolicy(p: Page, violations: string[]): Promise<void> {
  p.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) violations.push(`${p.url()}: ${m.text()}`);
  });
  await p.addInitScript(
    "document.addEventListener('securitypolicyviolation', (e) => console.error('Content-Security-Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));",
  );
}
