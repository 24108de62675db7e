/**
 * A minimal client for the XS engine's worker process (`xsnap-worker`, built
 * from Moddable's XS sources by the @agoric/xsnap package at install).
 *
 * The worker speaks netstrings (`<length>:<bytes>,`) on fd 3 (to it) and
 * fd 4 (from it). To it: `e<source>` evaluates a script, `?<bytes>` calls the
 * global `handleCommand`, `/<bytes>` answers one of its own queries. From it:
 * `.<meter JSON>\x01<reply>` success, `!<message>` an uncaught exception,
 * `?<bytes>` a synchronous `issueCommand` from the guest to us.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export interface Meter {
  /** XS computrons for the crank (a deterministic count of work done). */
  compute: number;
  /** Bytes the machine had allocated (chunks + slots) at the end of the crank. */
  allocate: number;
  /** Slots in use in the heap. */
  currentHeapCount: number;
}

export interface XsResult {
  reply: Uint8Array;
  meter: Meter;
}

export class XsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XsError';
  }
}

export function xsnapWorkerPath(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('@agoric/xsnap/package.json');
  } catch {
    throw new XsError('the XS engine is not installed: run `npm install` (the @agoric/xsnap package builds it)');
  }
  const bin = join(dirname(pkg), 'xsnap-native', 'xsnap', 'build', 'bin', process.platform === 'darwin' ? 'mac' : 'lin', 'release', 'xsnap-worker');
  if (!existsSync(bin)) {
    throw new XsError(`the XS worker binary is missing at ${bin}: its build did not run at install (check "allowScripts" and run \`npm rebuild @agoric/xsnap\`)`);
  }
  return bin;
}

export interface XsWorkerOptions {
  /** Answer to the guest's synchronous issueCommand(). */
  onQuery?: (bytes: Uint8Array) => Uint8Array;
  /** Where the guest's print() goes. */
  onPrint?: (line: string) => void;
  /** Abort a crank that computes more than this many computrons. */
  meteringLimit?: number;
}

export class XsWorker {
  private readonly child: ChildProcess;
  private readonly toWorker: Writable;
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (r: XsResult) => void; reject: (e: Error) => void } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private exited: Error | undefined;
  private readonly onQuery: ((bytes: Uint8Array) => Uint8Array) | undefined;
  /** Sum of computrons over every crank so far. */
  totalCompute = 0;
  cranks = 0;
  lastMeter: Meter = { compute: 0, allocate: 0, currentHeapCount: 0 };

  constructor(options: XsWorkerOptions = {}) {
    this.onQuery = options.onQuery;
    const args = ['vendfleet'];
    if (options.meteringLimit) args.push('-l', String(options.meteringLimit));
    this.child = spawn(xsnapWorkerPath(), args, {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore'],
    });
    this.toWorker = this.child.stdio[3] as Writable;
    const fromWorker = this.child.stdio[4] as Readable;
    fromWorker.on('data', (chunk: Buffer) => this.onData(chunk));
    const print = options.onPrint ?? (() => {});
    let partial = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        print(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    let stderr = '';
    this.child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (stderr.length > 10000) stderr = stderr.slice(-10000);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new XsError(`XS worker exited (${signal ?? 'code ' + code})${stderr ? ': ' + stderr.trim() : ''}`);
      this.waiting?.reject(this.exited);
      this.waiting = undefined;
    });
    this.toWorker.on('error', () => {});
  }

  /** Evaluate a script in the worker's global scope. */
  evaluate(source: string): Promise<XsResult> {
    return this.send(Buffer.concat([Buffer.from('e'), Buffer.from(source, 'utf8')]));
  }

  /** Call the guest's global handleCommand(ArrayBuffer) and get its ArrayBuffer result. */
  command(bytes: Uint8Array): Promise<XsResult> {
    return this.send(Buffer.concat([Buffer.from('?'), bytes]));
  }

  async close(): Promise<void> {
    if (this.exited) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.toWorker.end();
      setTimeout(() => this.child.kill('SIGKILL'), 2000).unref();
    });
  }

  private send(payload: Buffer): Promise<XsResult> {
    const run = this.queue.then(
      () =>
        new Promise<XsResult>((resolve, reject) => {
          if (this.exited) return reject(this.exited);
          this.waiting = { resolve, reject };
          this.write(payload);
        }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  private write(payload: Buffer): void {
    this.toWorker.write(Buffer.concat([Buffer.from(`${payload.length}:`), payload, Buffer.from(',')]));
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const colon = this.buffer.indexOf(0x3a);
      if (colon < 0) return;
      const length = Number(this.buffer.subarray(0, colon).toString('ascii'));
      if (!Number.isInteger(length)) throw new XsError('XS worker protocol error: bad netstring length');
      const end = colon + 1 + length;
      if (this.buffer.length < end + 1) return;
      const message = this.buffer.subarray(colon + 1, end);
      this.buffer = this.buffer.subarray(end + 1);
      this.onMessage(message);
    }
  }

  private onMessage(message: Buffer): void {
    const kind = message[0];
    if (kind === 0x3f /* ? */) {
      const answer = this.onQuery ? this.onQuery(message.subarray(1)) : new Uint8Array(0);
      this.write(Buffer.concat([Buffer.from('/'), Buffer.from(answer)]));
      return;
    }
    const waiting = this.waiting;
    this.waiting = undefined;
    if (!waiting) return;
    if (kind === 0x2e /* . */) {
      const sep = message.indexOf(1, 1);
      const meter = sep > 0 ? (JSON.parse(message.subarray(1, sep).toString('utf8')) as Meter) : this.lastMeter;
      this.lastMeter = { compute: meter.compute, allocate: meter.allocate, currentHeapCount: meter.currentHeapCount };
      this.totalCompute += meter.compute;
      this.cranks++;
      waiting.resolve({ reply: new Uint8Array(sep > 0 ? message.subarray(sep + 1) : message.subarray(1)), meter: this.lastMeter });
    } else if (kind === 0x21 /* ! */) {
      waiting.reject(new XsError(`uncaught exception in XS: ${message.subarray(1).toString('utf8')}`));
    } else {
      waiting.reject(new XsError(`XS worker protocol error: unexpected message ${JSON.stringify(message.subarray(0, 40).toString('utf8'))}`));
    }
  }
}
