/**
 * Each operator's own alert webhook (docs/alerts.md, docs/tenants.md): an
 * alert on an operator's machine goes to that operator's webhook only, as
 * the global (the platform's) webhook gets every alert. One WebhookSender
 * per operator with a webhook, made when its first alert comes and kept
 * while its URL and secret stay the same: each operator's notifications
 * are delivered in order, retried with backoff, and a receiver that is down
 * holds up only its own operator's.
 *
 * The engine hands over each alert with the webhook its operator had in the
 * store when the alert was evaluated (read in the evaluation's transaction),
 * so a change made through any gateway sharing the store takes effect at the
 * next alert. A changed or removed webhook drops what was still queued for
 * the old one (said in the log): it was meant for a receiver that is no
 * longer the operator's.
 */
import type { Timers } from '../time.js';
import { WebhookSender, type AlertEvent, type WebhookStats } from './webhook.js';

export interface OperatorWebhook {
  url: string;
  secret: string | null;
}

export interface OperatorWebhooksOptions {
  /** First retry delay and cap, as the global webhook's (500 ms, 60 s). */
  retryMs?: number;
  maxRetryMs?: number;
  timeoutMs?: number;
  /** Notifications kept per operator while its receiver is slow or down (1,000). */
  maxQueue?: number;
  timers?: Timers;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class OperatorWebhooks {
  private readonly senders = new Map<string, { config: OperatorWebhook; sender: WebhookSender }>();
  private closed = false;

  constructor(private readonly options: OperatorWebhooksOptions = {}) {}

  /** Queue an alert for its operator's webhook (none: nothing, and an old sender of that operator goes). */
  push(operator: string, webhook: OperatorWebhook | null, e: AlertEvent): void {
    if (this.closed) return;
    const held = this.senders.get(operator);
    if (held && (webhook === null || held.config.url !== webhook.url || held.config.secret !== webhook.secret)) {
      held.sender.close(webhook === null ? `operator ${operator} removed its webhook` : `operator ${operator} changed its webhook`);
      this.senders.delete(operator);
    }
    if (webhook === null) return;
    let entry = this.senders.get(operator);
    if (!entry) {
      const o = this.options;
      const sender = new WebhookSender({
        url: webhook.url,
        secret: webhook.secret ?? undefined,
        name: `operator ${operator}'s webhook`,
        ...(o.retryMs !== undefined ? { retryMs: o.retryMs } : {}),
        ...(o.maxRetryMs !== undefined ? { maxRetryMs: o.maxRetryMs } : {}),
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        ...(o.maxQueue !== undefined ? { maxQueue: o.maxQueue } : {}),
        ...(o.timers ? { timers: o.timers } : {}),
        ...(o.onLog ? { onLog: o.onLog } : {}),
      });
      entry = { config: { ...webhook }, sender };
      this.senders.set(operator, entry);
    }
    entry.sender.push(e);
  }

  /** Per operator with a sender: what was sent, retried, dropped and waits. */
  stats(): Record<string, WebhookStats> {
    return Object.fromEntries([...this.senders].map(([op, s]) => [op, s.sender.stats]));
  }

  /** Resolves once every operator's queue is empty (tests). */
  async idle(): Promise<void> {
    await Promise.all([...this.senders.values()].map((s) => s.sender.idle()));
  }

  close(): void {
    this.closed = true;
    for (const s of this.senders.values()) s.sender.close();
    this.senders.clear();
  }
}
