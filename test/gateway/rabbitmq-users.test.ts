/**
 * RabbitMQ logins written from provisioned passwords (gateway/amqp/rabbitmq-users.ts,
 * tools/rabbitmq-users.ts): what each machine's permissions let through, and the inputs
 * refused. That RabbitMQ itself takes them is shown by test/cluster/rabbitmq-shipped.test.ts.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { fleetUserDefinitions, machinePermissions, rabbitPasswordHash, type RabbitDefinitions } from '../../gateway/amqp/rabbitmq-users.js';

const TOOL = fileURLToPath(new URL('../../tools/rabbitmq-users.js', import.meta.url));

function tool(input: string, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [TOOL, ...args], { timeout: 60000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin!.end(input);
  });
}

describe('RabbitMQ logins for machines', () => {
  it('lets a machine write its uplink and read its downlink routing keys, and nothing of another machine or the gateways', () => {
    const p = machinePermissions('vm-a');
    const write = new RegExp(p.topic.write);
    const read = new RegExp(p.topic.read);
    for (const k of ['fleet.vm-a.events', 'fleet.vm-a.telemetry', 'fleet.vm-a.status', 'fleet.vm-a.audit', 'fleet.vm-a.update.get']) assert.ok(write.test(k), k);
    for (const k of ['fleet.vm-a.acks', 'fleet.vm-a.commands', 'fleet.vm-a.update.chunk']) assert.ok(read.test(k), k);
    for (const k of ['fleet.vm-b.events', 'fleet.vm-ab.events', 'fleet.vm-a.events.x', 'fleet.vm-a.acks', 'fleet.vm-a.commands', 'fleet.$gateway.status', 'fleet.*.events', 'fleet.vm-a.update.chunk', 'xfleet.vm-a.events']) {
      assert.ok(!write.test(k), `write ${k}`);
    }
    for (const k of ['fleet.vm-b.acks', 'fleet.vm-ab.acks', 'fleet.*.commands', 'fleet.#', '#', 'fleet.vm-a.events', 'fleet.vm-a.update.get', 'fleet.vm-a.acks.x']) assert.ok(!read.test(k), `read ${k}`);
    const own = new RegExp(p.permissions.configure);
    assert.ok(own.test('mqtt-subscription-vm-aqos1') && own.test('mqtt-subscription-vm-aqos0'));
    for (const q of ['mqtt-subscription-vm-bqos1', 'mqtt-subscription-vm-abqos1', 'vendfleet.ingest', 'amq.topic']) assert.ok(!own.test(q), q);
    assert.ok(new RegExp(p.permissions.write).test('amq.topic') && !new RegExp(p.permissions.write).test('amq.direct'));
  });

  it('stores RabbitMQ\'s salted SHA-256 hash, never the password', () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const h = Buffer.from(rabbitPasswordHash('s3cret', salt), 'base64');
    assert.deepEqual(h.subarray(0, 4), salt);
    assert.deepEqual(h.subarray(4), createHash('sha256').update(Buffer.concat([salt, Buffer.from('s3cret')])).digest());
    assert.notEqual(rabbitPasswordHash('s3cret'), rabbitPasswordHash('s3cret'), 'a new salt each time');
    const d = fleetUserDefinitions([{ id: 'vm-a', password: 's3cret' }], { user: 'vendfleet-gateway', password: 'gw' });
    assert.doesNotMatch(JSON.stringify(d), /s3cret/);
    assert.deepEqual(d.users.map((u) => u.name), ['vm-a', 'vendfleet-gateway']);
    assert.deepEqual(d.topic_permissions.map((t) => t.user), ['vm-a'], 'the gateways have every topic');
  });

  it('refuses an id that is not a machine id, one listed twice, an empty password, and a gateway named like a listed machine', () => {
    for (const id of ['gateway', 'vm.a', 'vm/a', '$gateway', '-vm', '', 'vm a', 'a'.repeat(65)]) assert.throws(() => fleetUserDefinitions([{ id, password: 'p' }]), /machine id/, id);
    assert.throws(() => fleetUserDefinitions([{ id: 'vm-a', password: 'p' }, { id: 'vm-a', password: 'q' }]), /twice/);
    assert.throws(() => fleetUserDefinitions([{ id: 'vm-a', password: '' }]), /no password/);
    assert.throws(() => fleetUserDefinitions([{ id: 'vm-a', password: 'p' }], { user: 'vm-a', password: 'g' }), /gateway user/);
    assert.throws(() => fleetUserDefinitions([], { user: 'gw', password: '' }), /password/);
  });

  it('npm run rabbitmq-users: definitions from standard input; a bad line exits 2 naming it', async () => {
    const ok = await tool('# fleet\n\nmachine vm-a pa\nmachine vm-b pb\ngateway vendfleet-gateway pg\n');
    assert.equal(ok.code, 0, ok.stderr);
    const d = JSON.parse(ok.stdout) as RabbitDefinitions;
    assert.deepEqual(d.users.map((u) => u.name), ['vm-a', 'vm-b', 'vendfleet-gateway']);
    assert.equal(d.permissions[0]!.vhost, '/');
    assert.equal((JSON.parse((await tool('machine vm-a pa\n', ['--vhost', 'fleet'])).stdout) as RabbitDefinitions).permissions[0]!.vhost, 'fleet');
    for (const [input, why] of [
      ['machine vm-a\n', /line 1: expected/],
      ['machine vm-a pa extra\n', /line 1: expected/],
      ['robot vm-a pa\n', /line 1: expected/],
      ['machine vm-a pa\ngateway g1 p\ngateway g2 p\n', /line 3: a second gateway user/],
      ['machine vm.a pa\n', /machine id/],
      ['\n# nothing\n', /no logins/],
    ] as const) {
      const r = await tool(input);
      assert.equal(r.code, 2, input);
      assert.match(r.stderr, why);
      assert.equal(r.stdout, '');
    }
  });
});
