/**
 * A PostgreSQL primary and a streaming replica of the test's own: initdb into
 * a temporary directory, a postmaster on a free port, pg_basebackup of it
 * into a second directory (-R: it follows the primary) and a second
 * postmaster on another port. The machine's own PostgreSQL is left alone
 * (its pg_hba.conf takes no replication connections). As root the servers
 * run as the postgres user, which PostgreSQL requires.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ReplicaPair {
  primaryUrl: string;
  replicaUrl: string;
  stop(): void;
}

/** The newest PostgreSQL server binaries Debian installed, or undefined. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'pg_basebackup'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startReplicaPair(): Promise<ReplicaPair> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'vf-replica-'));
  if (root) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const run = (tool: string, args: string[]): void => {
    const [cmd, argv] = root ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 120000 });
    if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')}: ${r.stderr || r.stdout || r.error?.message}`);
  };
  const primary = join(dir, 'primary');
  const replica = join(dir, 'replica');
  const started: string[] = [];
  const stop = (): void => {
    // Immediate: nothing in these clusters is kept.
    for (const d of started.splice(0).reverse()) spawnSync(root ? 'runuser' : join(bin, 'pg_ctl'), root ? ['-u', 'postgres', '--', join(bin, 'pg_ctl'), '-D', d, '-m', 'immediate', '-w', 'stop'] : ['-D', d, '-m', 'immediate', '-w', 'stop'], { timeout: 60000 });
    rmSync(dir, { recursive: true, force: true });
  };
  // A test process that dies without its after() still stops them.
  process.once('exit', stop);
  try {
    const pport = await freePort();
    const rport = await freePort();
    // trust on loopback (initdb's default pg_hba.conf allows replication connections from there too).
    run('initdb', ['-D', primary, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
    appendFileSync(
      primary + '/postgresql.conf',
      `\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nwal_level = replica\nmax_wal_senders = 4\nfsync = off\nshared_buffers = 32MB\nhot_standby = on\n`,
    );
    run('pg_ctl', ['-D', primary, '-l', join(dir, 'primary.log'), '-o', `-p ${pport}`, '-w', '-t', '60', 'start']);
    started.push(primary);
    run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(pport), '-U', 'postgres', '-D', replica, '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync']);
    // pg_ctl -w returns once the standby takes read-only connections.
    run('pg_ctl', ['-D', replica, '-l', join(dir, 'replica.log'), '-o', `-p ${rport}`, '-w', '-t', '60', 'start']);
    started.push(replica);
    return {
      primaryUrl: `postgres://postgres@127.0.0.1:${pport}/postgres`,
      replicaUrl: `postgres://postgres@127.0.0.1:${rport}/postgres`,
      stop() {
        process.off('exit', stop);
        stop();
      },
    };
  } catch (e) {
    stop();
    process.off('exit', stop);
    throw e;
  }
}
