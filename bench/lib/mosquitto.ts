/**
 * A Mosquitto of a test's (or the bench's) own, on its own port, that can be
 * killed and started again: the machine's installed broker, not a stand-in.
 * Here rather than under test/ because the bench uses it too (bench must not
 * import test/; tests may import bench/lib).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const MOSQUITTO = process.env['MOSQUITTO'] ?? '/usr/sbin/mosquitto';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Something listens on 127.0.0.1:`port`. */
export function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Start Mosquitto on `port` (a free one by default) with extra configuration lines. With
 * `persistent`, sessions and queued messages are kept on disk (saved every second) as in
 * production (gateway/deploy/mosquitto.conf); give the same `dir` again to restart it on them.
 */
export async function startMosquitto(
  options: { port?: number; conf?: string[]; anonymous?: boolean; persistent?: boolean; dir?: string; raw?: string; nofile?: number; dieWithParent?: boolean } = {},
): Promise<{ url: string; port: number; process: ChildProcess; dir: string }> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'vf-mosquitto-'));
  // Mosquitto started as root drops to its own user, which must be able to write its database here.
  if (options.persistent) chmodSync(dir, 0o777);
  const conf = join(dir, 'mosquitto.conf');
  // Brokers die with the process that started them unless told otherwise, so a killed test or
  // bench run leaves none behind holding ports and directories.
  const dieWithParent = options.dieWithParent ?? true;
  // The kernel forgets a parent-death signal when the process changes user, as Mosquitto started as root does: it stays who it is.
  const stay = dieWithParent ? [`user ${userInfo().username}`] : [];
  if (options.raw !== undefined) {
    // A whole configuration of the caller's (the shipped one, with its paths and ports replaced).
    const raw = dieWithParent && !/^user\s/m.test(options.raw) ? `${options.raw.replace(/\n?$/, '\n')}${stay.join('\n')}\n` : options.raw;
    writeFileSync(conf, raw);
    return run(conf, port, dir, options.nofile, dieWithParent);
  }
  const persistence = options.persistent ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 1', 'persistent_client_expiration 1d', 'max_queued_messages 1000000'] : ['persistence false'];
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, `allow_anonymous ${options.anonymous === false ? 'false' : 'true'}`, ...persistence, ...stay, ...(options.conf ?? [])].join('\n') + '\n');
  return run(conf, port, dir, options.nofile, dieWithParent);
}

/**
 * `nofile`: the broker's open-file limit (soft and hard), set by prlimit, which then runs it in its place (same pid).
 * `dieWithParent` (the default): the kernel kills the broker when this process dies, however it dies (setpriv, util-linux);
 * a configuration without a `user` line gets this process's user, since a change of user would cancel the signal.
 */
async function run(conf: string, port: number, dir: string, nofile?: number, dieWithParent?: boolean): Promise<{ url: string; port: number; process: ChildProcess; dir: string }> {
  const argv = [...(dieWithParent === true ? ['setpriv', '--pdeathsig', 'KILL'] : []), ...(nofile === undefined ? [] : ['prlimit', `--nofile=${nofile}:${nofile}`]), MOSQUITTO, '-c', conf];
  const p = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (await reachable(port)) return { url: `mqtt://127.0.0.1:${port}`, port, process: p, dir };
    await new Promise((r) => setTimeout(r, 50));
  }
  p.kill('SIGKILL');
  throw new Error(`${MOSQUITTO} did not start on port ${port}`);
}

/** Stop a Mosquitto (SIGTERM saves its database first; SIGKILL does not) and wait until its port is closed. */
export async function stopMosquitto(p: ChildProcess, port: number, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const exited = p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));
  p.kill(signal);
  await exited;
  for (let i = 0; i < 100 && (await reachable(port)); i++) await new Promise((r) => setTimeout(r, 50));
}
