// The tests' own Mosquittos go when the process that started them is killed, not only when it
// ends well: a run killed by CI's timeout or by hand must not leave brokers holding ports and
// directories (persistent ones, as the fault tests start, and whole shipped configurations too).
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const MOSQUITTO_MODULE = fileURLToPath(new URL('../../bench/lib/mosquitto.js', import.meta.url));

/** Whether a process still runs (a zombie counts as gone: it holds no port or file). */
function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('Mosquittos started by tests and benches', function () {
  this.timeout(60_000);
  const made: string[] = [];
  after(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });

  it('die with the process that started them, however it dies (plain, persistent and a raw configuration)', async () => {
    // The parent (below) starts three brokers the ways the tests do, prints their pids, then waits to be killed.
    const parent = spawn(process.execPath, ['--input-type=module', '-e', PARENT], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: parent.stdout! });
      rl.once('line', resolve);
      parent.once('exit', (code) => reject(new Error(`the parent exited (${code}) before starting its brokers`)));
    });
    const { pids, dirs } = JSON.parse(line) as { pids: number[]; dirs: string[] };
    made.push(...dirs);
    assert.equal(pids.length, 3);
    for (const pid of pids) assert.ok(alive(pid), `broker ${pid} runs while its parent does`);
    parent.kill('SIGKILL');
    // Bounded: the kernel sends the signal at once; allow a loaded machine 20 s to reap them.
    for (let i = 0; i < 400 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(pids.filter(alive), [], 'every broker gone after its parent was killed');
  });
});

// The parent process's program (an ES module given to node -e).
const PARENT = `
  const { startMosquitto, freePort } = await import(${JSON.stringify(MOSQUITTO_MODULE)});
  const plain = await startMosquitto();
  const persistent = await startMosquitto({ persistent: true });
  const port = await freePort();
  const raw = await startMosquitto({ port, raw: 'listener ' + port + ' 127.0.0.1\\nallow_anonymous true\\npersistence false\\n' });
  console.log(JSON.stringify({ pids: [plain.process.pid, persistent.process.pid, raw.process.pid], dirs: [plain.dir, persistent.dir, raw.dir] }));
  setInterval(() => {}, 1000);
`;
