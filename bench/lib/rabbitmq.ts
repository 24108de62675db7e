/**
 * RabbitMQ nodes of a test's (or the bench's) own: the machine's installed
 * rabbitmq-server, each node with its own name (vf-<pid>-<n>@localhost), its
 * own AMQP, MQTT and distribution ports and its own data, log and
 * configuration files in a temporary directory. The machine's own node
 * (rabbit@localhost on 5672) is never touched: nothing here uses its name,
 * ports, cookie or files. epmd (port 4369) is shared per host, which is fine:
 * node names differ.
 *
 * A cluster is formed with `rabbitmqctl join_cluster`; the nodes share an
 * Erlang cookie through a HOME of the cluster's own (.erlang.cookie, mode 400).
 * Nodes are killed with SIGKILL (a node dying, not leaving), and every node is
 * killed and its directory removed on close() and, should a test forget, when
 * the process exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, reachable } from './mosquitto.js';

/** The server and CLI scripts themselves (not /usr/sbin's wrappers, which switch to the rabbitmq user and its node). */
export const RABBITMQ_BIN = process.env['RABBITMQ_BIN'] ?? '/usr/lib/rabbitmq/bin';

export interface RabbitNode {
  /** Erlang node name, e.g. vf-1234-1@localhost. */
  readonly name: string;
  readonly amqpPort: number;
  readonly mqttPort: number;
  readonly distPort: number;
  readonly amqpUrl: string;
  readonly mqttUrl: string;
  readonly dir: string;
  process: ChildProcess | undefined;
}

/**
 * The MQTT plugin keeps each machine's subscription in a durable classic queue on the node it
 * connected to; with that node dead, the machine could not subscribe anywhere else ("home node
 * ... is down"). Mirrored on every node, the queue moves to a survivor. (docs/cluster.md)
 */
export const MQTT_SESSION_POLICY = { name: 'mqtt-sessions', pattern: '^mqtt-subscription-', definition: '{"ha-mode":"all","ha-promote-on-failure":"always","ha-promote-on-shutdown":"always"}' };

const live = new Set<RabbitCluster>();
process.once('exit', () => {
  for (const c of live) c.killAllSync();
});
// Interrupted (Ctrl-C, a CI timeout): no node outlives the test.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const c of live) c.killAllSync();
    process.kill(process.pid, signal);
  });
}


async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`RabbitMQ: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface RabbitClusterOptions {
  startMs?: number;
  /** Each node's rabbitmq.conf, given its ports (default: MQTT on its port, anonymous MQTT as guest, pause_minority). */
  config?: (ports: { amqpPort: number; mqttPort: number }) => string;
  /** The enabled_plugins file (default: the MQTT plugin). */
  enabledPlugins?: string;
  /** Set MQTT_SESSION_POLICY once the cluster is formed (default true). */
  sessionPolicy?: boolean;
}

export class RabbitCluster {
  readonly nodes: RabbitNode[];
  readonly dir: string;
  private readonly home: string;
  private closed = false;

  private constructor(dir: string, home: string, nodes: RabbitNode[]) {
    this.dir = dir;
    this.home = home;
    this.nodes = nodes;
  }

  /** Start `size` nodes (in parallel) and join them into one cluster; ready when every node's AMQP and MQTT listeners answer. */
  static async start(size: number, options: RabbitClusterOptions = {}): Promise<RabbitCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'vf-rabbitmq-'));
    const home = join(dir, 'home');
    mkdirSync(home);
    // The cluster's cookie: a node or CLI with another one cannot talk to these nodes (nor they to the machine's node).
    writeFileSync(join(home, '.erlang.cookie'), randomBytes(20).toString('hex').toUpperCase(), { mode: 0o400 });
    writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
    const nodes: RabbitNode[] = [];
    const taken = new Set<number>();
    const port = async (): Promise<number> => {
      for (;;) {
        const p = await freePort();
        // Not the machine node's ports, nor the CLI tools' distribution range next to them (its dist port + 10000..10010).
        if (!taken.has(p) && !(p >= 35672 && p <= 35682) && p !== 25672 && p !== 5672) {
          taken.add(p);
          return p;
        }
      }
    };
    for (let i = 1; i <= size; i++) {
      const nodeDir = join(dir, `n${i}`);
      mkdirSync(nodeDir);
      const amqpPort = await port();
      const mqttPort = await port();
      const distPort = await port();
      writeFileSync(join(nodeDir, 'enabled_plugins'), options.enabledPlugins ?? '[rabbitmq_mqtt].\n');
      writeFileSync(
        join(nodeDir, 'rabbitmq.conf'),
        options.config?.({ amqpPort, mqttPort }) ?? [
          `mqtt.listeners.tcp.default = 127.0.0.1:${mqttPort}`,
          // Machines without logins in the tests: anonymous MQTT is the default user, guest, allowed over loopback only.
          'mqtt.allow_anonymous = true',
          // A node that loses its peers (killed ones) keeps serving the majority side's clients.
          'cluster_partition_handling = pause_minority',
          '',
        ].join('\n'),
      );
      nodes.push({
        name: `vf-${process.pid}-${i}-${randomBytes(2).toString('hex')}@localhost`,
        amqpPort,
        mqttPort,
        distPort,
        amqpUrl: `amqp://guest:guest@127.0.0.1:${amqpPort}`,
        mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
        dir: nodeDir,
        process: undefined,
      });
    }
    const cluster = new RabbitCluster(dir, home, nodes);
    live.add(cluster);
    try {
      for (const n of nodes) cluster.spawnNode(n);
      await Promise.all(nodes.map((n) => cluster.ready(n, options.startMs ?? 120000)));
      for (const n of nodes.slice(1)) {
        await cluster.ctl(n, ['stop_app']);
        await cluster.ctl(n, ['join_cluster', nodes[0]!.name]);
        await cluster.ctl(n, ['start_app']);
        await cluster.ready(n, options.startMs ?? 120000);
      }
      const p = MQTT_SESSION_POLICY;
      if (options.sessionPolicy !== false) await cluster.ctl(nodes[0]!, ['set_policy', '--apply-to', 'queues', p.name, p.pattern, p.definition]);
    } catch (e) {
      await cluster.close();
      throw e;
    }
    return cluster;
  }

  private env(n: RabbitNode): NodeJS.ProcessEnv {
    return {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      HOME: this.home,
      RABBITMQ_CONF_ENV_FILE: join(this.dir, 'rabbitmq-env.conf'),
      RABBITMQ_NODENAME: n.name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(n.amqpPort),
      RABBITMQ_DIST_PORT: String(n.distPort),
      RABBITMQ_MNESIA_BASE: join(n.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(n.dir, 'log'),
      RABBITMQ_CONFIG_FILE: join(n.dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(n.dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(n.dir, 'enabled_plugins'),
      RABBITMQ_PLUGINS_EXPAND_DIR: join(n.dir, 'plugins-expand'),
      RABBITMQ_PID_FILE: join(n.dir, 'pid'),
      RABBITMQ_QUORUM_DIR: join(n.dir, 'quorum'),
      RABBITMQ_FEATURE_FLAGS_FILE: join(n.dir, 'feature_flags'),
      // Distribution on loopback only.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
  }

  private spawnNode(n: RabbitNode): void {
    // Its own process group: killing the group takes the shell script and the Erlang VM together.
    n.process = spawn(join(RABBITMQ_BIN, 'rabbitmq-server'), [], { env: this.env(n), cwd: n.dir, detached: true, stdio: 'ignore' });
    n.process.unref();
  }

  private async ready(n: RabbitNode, ms: number): Promise<void> {
    await until(`${n.name} to listen on ${n.amqpPort} (AMQP) and ${n.mqttPort} (MQTT); its log is in ${join(n.dir, 'log')}`, async () => {
      if (n.process && n.process.exitCode !== null) throw new Error(`RabbitMQ node ${n.name} exited (${n.process.exitCode}); its log is in ${join(n.dir, 'log')}`);
      return (await reachable(n.amqpPort)) && (await reachable(n.mqttPort));
    }, ms);
  }

  /** rabbitmqctl against one of these nodes (with this cluster's cookie). */
  ctl(n: RabbitNode, args: string[], timeoutMs = 120000): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(join(RABBITMQ_BIN, 'rabbitmqctl'), ['-n', n.name, ...args], { env: this.env(n), timeout: timeoutMs }, (err, stdout, stderr) => {
        if (err) reject(new Error(`rabbitmqctl -n ${n.name} ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
  }

  /** The node dies (SIGKILL to its process group): no goodbye to its peers or clients. Resolves once its ports are closed. */
  async kill(n: RabbitNode): Promise<void> {
    const p = n.process;
    if (!p || p.pid === undefined) return;
    const exited = p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await exited;
    n.process = undefined;
    await until(`${n.name}'s ports to close`, async () => !(await reachable(n.amqpPort)) && !(await reachable(n.mqttPort)), 30000);
  }

  /** Start a killed node again on its data (it rejoins the cluster). */
  async restart(n: RabbitNode, ms = 120000): Promise<void> {
    if (n.process) throw new Error(`${n.name} is running`);
    this.spawnNode(n);
    await this.ready(n, ms);
  }

  /** The node whose MQTT listener is on `port`. */
  byMqttPort(port: number): RabbitNode | undefined {
    return this.nodes.find((n) => n.mqttPort === port);
  }

  /** Kill every node now (synchronous: the process-exit hook). */
  killAllSync(): void {
    for (const n of this.nodes) {
      if (n.process?.pid !== undefined) {
        try {
          process.kill(-n.process.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    if (!this.closed) rmSync(this.dir, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const n of this.nodes) await this.kill(n).catch(() => undefined);
    this.closed = true;
    live.delete(this);
    // Erlang's helper processes (erl_child_setup) go with the VM; give them a moment before the directory goes.
    rmSync(this.dir, { recursive: true, force: true });
  }
}
