/**
 * A Mosquitto of a test's (or the bench's) own, on its own port, that can be
 * killed and started again: the machine's installed broker, not a stand-in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MOSQUITTO = process.env['MOSQUITTO'] ?? '/usr/sbin/mosquitto';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Start Mosquitto on `port` (a free one by default) with extra configuration lines. */
export async function startMosquitto(options: { port?: number; conf?: string[]; anonymous?: boolean } = {}): Promise<{ url: string; port: number; process: ChildProcess }> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'vf-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, `allow_anonymous ${options.anonymous === false ? 'false' : 'true'}`, 'persistence false', ...(options.conf ?? [])].join('\n') + '\n');
  const p = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (await reachable(port)) return { url: `mqtt://127.0.0.1:${port}`, port, process: p };
    await new Promise((r) => setTimeout(r, 50));
  }
  p.kill('SIGKILL');
  throw new Error(`${MOSQUITTO} did not start on port ${port}`);
}
