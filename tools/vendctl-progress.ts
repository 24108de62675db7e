/**
 * vendctl's progress on long operations, on standard error so that standard
 * output stays the answer: a bar for bytes sent (firmware uploads), a line
 * per step while waiting for a machine (a command's outcome, a purchase).
 * On a terminal the line is redrawn in place; into a file or a pipe each
 * change is written once, so a log reads as a history.
 */

interface Out {
  write(s: string): boolean;
  isTTY?: boolean;
}

/** `width` cells, '#' done and '.' to go. */
export function bar(done: number, total: number, width = 30): string {
  const filled = total <= 0 ? width : Math.min(width, Math.floor((done * width) / total));
  return '#'.repeat(filled) + '.'.repeat(width - filled);
}

export class Progress {
  readonly #out: Out;
  readonly #tty: boolean;
  #last = '';
  #quarter = -1;

  constructor(out: Out = process.stderr) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  /** Bytes (or items) done of a total; off a terminal, written at every quarter. */
  count(label: string, done: number, total: number, unit = 'bytes'): void {
    const pct = total <= 0 ? 100 : Math.floor((done * 100) / total);
    const text = `${label} [${bar(done, total)}] ${String(pct).padStart(3)} % ${done}/${total} ${unit}`;
    if (this.#tty) return this.#draw(text);
    const quarter = Math.floor(pct / 25);
    if (quarter !== this.#quarter) {
      this.#quarter = quarter;
      this.#out.write(`${text}\n`);
    }
  }

  /** A step of a wait; written when it changes (on a terminal, with the seconds waited). */
  step(text: string, waitedMs: number): void {
    if (this.#tty) return this.#draw(`${text} (${(waitedMs / 1000).toFixed(0)} s)`);
    if (text !== this.#last) this.#out.write(`${text}\n`);
    this.#last = text;
  }

  /** The last word: ends the redrawn line. */
  done(text: string): void {
    if (this.#tty) this.#out.write(`\r\u001b[K${text}\n`);
    else if (text !== this.#last) this.#out.write(`${text}\n`);
    this.#last = text;
  }

  #draw(text: string): void {
    if (text === this.#last) return;
    this.#last = text;
    this.#out.write(`\r\u001b[K${text}`);
  }
}

/** A request body that reports the bytes taken from it as it is sent. */
export function countedBody(bytes: Uint8Array, onSent: (sent: number) => void, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      const end = Math.min(bytes.length, at + chunk);
      controller.enqueue(bytes.subarray(at, end));
      at = end;
      onSent(at);
    },
  });
}

/** A command's record as GET /commands/{id} gives it (the fields followed here). */
export interface FollowedCommand {
  id: string;
  type: string;
  status: string;
  outcome?: unknown;
}

/** Statuses after which nothing more happens to a command. */
const OPEN = new Set(['queued', 'delivered', 'running']);

const SAID: Record<string, string> = {
  queued: 'queued: the machine has not taken it yet',
  delivered: 'delivered: waiting for the machine to act',
  running: 'running on the machine',
};

/**
 * Poll a command until it is final or `forMs` passes; each status change is
 * a progress step. The last record, and whether it is final.
 */
export async function followCommand(
  get: (path: string) => Promise<FollowedCommand>,
  id: string,
  forMs: number,
  progress: Progress,
  now: () => number = Date.now,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<{ command: FollowedCommand; final: boolean }> {
  const start = now();
  for (let every = 250; ; every = Math.min(2000, every * 2)) {
    const c = await get(`/commands/${encodeURIComponent(id)}`);
    if (!OPEN.has(c.status)) {
      progress.done(`command ${c.id} (${c.type}): ${c.status}`);
      return { command: c, final: true };
    }
    const waited = now() - start;
    if (waited >= forMs) {
      progress.done(`command ${c.id} (${c.type}) still ${c.status} after ${Math.round(waited / 1000)} s`);
      return { command: c, final: false };
    }
    progress.step(`command ${c.id} (${c.type}) ${SAID[c.status] ?? c.status}`, waited);
    await sleep(Math.min(every, Math.max(1, forMs - waited)));
  }
}
