/**
 * Alert notifications to a webhook: each opened, updated and closed alert is
 * POSTed as JSON `{ event, alert }`, signed with an HMAC-SHA-256 of the body
 * when a secret is set (`X-Vendfleet-Signature: sha256=<hex>`).
 *
 * One request at a time, in order; a failure (network, timeout, 408, 429,
 * 5xx) is retried with backoff before anything after it is sent. The queue
 * lives in memory and is bounded: past `maxQueue` the oldest notification is
 * dropped (counted and logged), so a receiver that is down for a day costs a
 * bounded amount of memory and never holds up ingest. Notifications still
 * queued when the gateway stops are lost; the alerts themselves are in the
 * store (GET /alerts).
 *
 * The secret is never logged, nor the URL beyond its origin (webhook URLs
 * often carry a token in their path).
 */
import { createHmac } from 'node:crypto';
import { REAL_TIMERS, type TimerId, type Timers } from '../time.js';
import type { Alert } from './store.js';

export type AlertEventType = 'opened' | 'updated' | 'closed';

export interface AlertEvent {
  event: AlertEventType;
  alert: Alert;
}

export interface WebhookOptions {
  url: string;
  /** HMAC-SHA-256 key for the signature header; unsigned without one. */
  secret?: string | undefined;
  /** Notifications kept while the receiver is slow or down (1,000). */
  maxQueue?: number;
  /** First retry delay, doubled at each failure up to maxRetryMs (500 ms, 60 s). */
  retryMs?: number;
  maxRetryMs?: number;
  /** Per request (10 s). */
  timeoutMs?: number;
  /** What the log calls it ("webhook"; an operator's: "operator acme's webhook"). */
  name?: string;
  /** The retry waits and the per-request timeout run on these (tests: a virtual clock). */
  timers?: Timers;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** The longest webhook URL taken (an operator's; the column's CHECK too). */
export const MAX_WEBHOOK_URL = 2048;

/**
 * Why `url` cannot be an alert webhook, or undefined: http or https only, a
 * host, at most MAX_WEBHOOK_URL characters, no user name or password (fetch
 * refuses them, and they would sit where a URL is shown). The message never
 * repeats the URL (it may carry a token).
 */
export function webhookUrlProblem(url: string): string | undefined {
  if (url.length > MAX_WEBHOOK_URL) return `must be at most ${MAX_WEBHOOK_URL} characters`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL (http://host/path or https://host/path)';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (u.hostname === '') return 'has no host';
  if (u.username !== '' || u.password !== '') return 'must not carry a user name or password: put a token in the path, or sign with a secret';
  return undefined;
}

export interface WebhookStats {
  sent: number;
  /** Attempts that failed and were (or will be) retried. */
  failures: number;
  /** Dropped unsent: queue full (the oldest), or refused by the receiver with a 4xx. */
  dropped: number;
  refused: number;
  queued: number;
}

export const SIGNATURE_HEADER = 'x-vendfleet-signature';

/** The signature header's value for a body: `sha256=` and the hex HMAC. */
export function signature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookSender {
  private readonly url: string;
  private readonly origin: string;
  private readonly secret: string | undefined;
  private readonly maxQueue: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly timeoutMs: number;
  private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  private readonly name: string;
  private readonly timers: Timers;
  private readonly queue: string[] = [];
  private sending: Promise<void> | undefined;
  private inFlight = false;
  private wait: { timer: TimerId; wake: () => void } | undefined;
  private abort: AbortController | undefined;
  private closed = false;
  private readonly counts = { sent: 0, failures: 0, dropped: 0, refused: 0 };

  constructor(options: WebhookOptions) {
    const u = new URL(options.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('the alert webhook must be an http:// or https:// URL');
    this.name = options.name ?? 'webhook';
    this.timers = options.timers ?? REAL_TIMERS;
    this.url = options.url;
    this.origin = u.origin;
    this.secret = options.secret === '' ? undefined : options.secret;
    this.maxQueue = options.maxQueue ?? 1000;
    this.retryMs = options.retryMs ?? 500;
    this.maxRetryMs = options.maxRetryMs ?? 60000;
    this.timeoutMs = options.timeoutMs ?? 10000;
    this.log = options.onLog ?? (() => {});
  }

  /** Where notifications go, for the log: the origin only. */
  get target(): string {
    return `${this.origin}${this.secret ? ' (signed)' : ' (unsigned)'}`;
  }

  get stats(): WebhookStats {
    return { ...this.counts, queued: this.queue.length };
  }

  /** Queue a notification; never blocks, never throws. */
  push(e: AlertEvent): void {
    if (this.closed) return;
    this.queue.push(JSON.stringify(e));
    if (this.queue.length > this.maxQueue) {
      // The oldest not in flight: the one being sent finishes (or is retried) first.
      this.queue.splice(this.inFlight ? 1 : 0, 1);
      this.counts.dropped++;
      const n = this.counts.dropped;
      if (n <= 5 || n % 1000 === 0) this.log('warn', `alerts: ${this.name} ${this.origin} is behind; dropped the oldest notification (${n} dropped so far, ${this.maxQueue} kept)`);
    }
    this.sending ??= this.run().finally(() => {
      this.sending = undefined;
    });
  }

  /** Resolves once the queue is empty (tests; shutdown may wait for it a little). */
  async idle(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async run(): Promise<void> {
    let delay = this.retryMs;
    while (!this.closed && this.queue.length > 0) {
      const body = this.queue[0]!;
      this.inFlight = true;
      const outcome = await this.post(body);
      this.inFlight = false;
      if (this.closed) return;
      if (outcome === 'retry') {
        this.counts.failures++;
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.maxRetryMs);
        continue;
      }
      this.queue.shift();
      delay = this.retryMs;
    }
  }

  private async post(body: string): Promise<'done' | 'retry'> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'vendfleet-gateway' };
    if (this.secret) headers[SIGNATURE_HEADER] = signature(body, this.secret);
    this.abort = new AbortController();
    const abort = this.abort;
    const timer = this.timers.set(() => abort.abort(), this.timeoutMs);
    try {
      const res = await fetch(this.url, { method: 'POST', headers, body, signal: this.abort.signal });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        this.counts.sent++;
        return 'done';
      }
      if (res.status >= 500 || res.status === 408 || res.status === 429) {
        this.note(`answered ${res.status}`);
        return 'retry';
      }
      // The receiver refuses this notification: sending it again would get the same answer.
      this.counts.refused++;
      this.counts.dropped++;
      if (this.counts.refused <= 5 || this.counts.refused % 1000 === 0) this.log('warn', `alerts: ${this.name} ${this.origin} refused a notification (${res.status}); dropped (${this.counts.refused} so far)`);
      return 'done';
    } catch (e) {
      if (this.closed) return 'done';
      this.note((e as Error).name === 'AbortError' ? `no answer in ${this.timeoutMs} ms` : 'unreachable');
      return 'retry';
    } finally {
      this.timers.clear(timer);
      this.abort = undefined;
    }
  }

  private note(what: string): void {
    const n = this.counts.failures + 1;
    if (n <= 5 || n % 100 === 0) this.log('warn', `alerts: ${this.name} ${this.origin} ${what}; retrying (${n} failed attempts so far, ${this.queue.length} waiting)`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        this.timers.clear(timer);
        this.wait = undefined;
        resolve();
      };
      const timer = this.timers.set(wake, ms);
      this.wait = { timer, wake };
    });
  }

  /** Stop: what is still queued is dropped (and said so: at shutdown, or the operator changed its webhook). */
  close(why = 'shutdown'): void {
    if (this.closed) return;
    this.closed = true;
    this.abort?.abort();
    this.wait?.wake();
    if (this.queue.length > 0) this.log('warn', `alerts: ${this.queue.length} notification(s) for ${this.name} ${this.origin} not sent (${why})`);
    this.queue.length = 0;
  }
}
