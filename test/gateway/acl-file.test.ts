/**
 * The two ACLs say the same: gateway/deploy/acl (Mosquitto, production)
 * and gateway/mqtt/acl.ts (the embedded broker). The file is read the way
 * Mosquitto reads it (pattern lines for every user with %u, topic lines
 * for the user above them, read and write and readwrite, + and #), and
 * every identity's publishing and subscribing on every topic of the fleet's
 * vocabulary (and some beside it) is asked of both.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mayPublish, maySubscribe, type Identity } from '../../gateway/mqtt/acl.js';

/** The levels of the gateways' probe topics (fleet/$gateway/...: gateway/mqtt/subscriber.ts). */
const PROBE_KINDS = ['status', 'audit', 'update/get'];

const ACL = fileURLToPath(new URL('../../../gateway/deploy/acl', import.meta.url));

interface Rule {
  /** undefined: every user (a pattern line, %u in its topic). */
  user: string | undefined;
  read: boolean;
  write: boolean;
  topic: string;
}

function parseAcl(text: string): Rule[] {
  const rules: Rule[] = [];
  let user: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const words = line.split(/\s+/);
    if (words[0] === 'user') {
      user = words[1];
      continue;
    }
    assert.ok(words[0] === 'topic' || words[0] === 'pattern', `a line Mosquitto would not take as this test reads it: ${line}`);
    const access = words.length === 3 ? words[1]! : 'readwrite';
    assert.ok(['read', 'write', 'readwrite'].includes(access), line);
    rules.push({ user: words[0] === 'pattern' ? undefined : user, read: access !== 'write', write: access !== 'read', topic: words[words.length - 1]! });
  }
  return rules;
}

/** MQTT topic matching: + one level, # the rest. */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function fileAllows(rules: Rule[], username: string, access: 'read' | 'write', topic: string): boolean {
  return rules.some((r) => (r.user === undefined || r.user === username) && r[access] && matches(r.user === undefined ? r.topic.replaceAll('%u', username) : r.topic, topic));
}

describe('the Mosquitto ACL file and the embedded broker\'s ACL agree', () => {
  const rules = parseAcl(readFileSync(ACL, 'utf8'));
  const who: [string, Identity][] = [
    ['vm-a', { kind: 'machine', id: 'vm-a' }],
    ['vm-b', { kind: 'machine', id: 'vm-b' }],
    ['gateway', { kind: 'gateway' }],
  ];
  const kinds = ['events', 'telemetry', 'status', 'audit', 'acks', 'commands', 'update/get', 'update/chunk', 'update', 'update/other', 'events/extra', 'update/get/x', 'x'];

  it('on publishing', () => {
    for (const [user, id] of who) {
      for (const machine of ['vm-a', 'vm-b', '$gateway']) {
        for (const kind of kinds) {
          const topic = `fleet/${machine}/${kind}`;
          // The file's fleet/+/acks and the like cover fleet/$gateway/acks for the gateway too; no machine has
          // that id, so the gateway's own topics are held to each other on the probes only.
          if (user === 'gateway' && machine === '$gateway' && !PROBE_KINDS.includes(kind)) continue;
          assert.equal(mayPublish(id, topic), fileAllows(rules, user, 'write', topic), `${user} publishing to ${topic}`);
        }
      }
    }
  });

  it('on subscribing: machines to their own topics, the gateway to every machine\'s', () => {
    for (const [user, id] of who) {
      for (const machine of ['vm-a', 'vm-b', ...(id.kind === 'gateway' ? ['+'] : [])]) {
        for (const kind of kinds) {
          const filter = `fleet/${machine}/${kind}`;
          assert.equal(maySubscribe(id, filter), fileAllows(rules, user, 'read', filter), `${user} subscribing to ${filter}`);
        }
      }
    }
  });

  it('covers the update topics both ways', () => {
    assert.ok(mayPublish({ kind: 'machine', id: 'vm-a' }, 'fleet/vm-a/update/get'));
    assert.ok(maySubscribe({ kind: 'machine', id: 'vm-a' }, 'fleet/vm-a/update/chunk'));
    assert.ok(maySubscribe({ kind: 'gateway' }, '$share/g/fleet/+/update/get'));
    assert.ok(mayPublish({ kind: 'gateway' }, 'fleet/vm-a/update/chunk'));
    assert.ok(mayPublish({ kind: 'gateway' }, 'fleet/$gateway/update/get'), 'the updates connection\'s probe');
    assert.ok(!mayPublish({ kind: 'machine', id: 'vm-a' }, 'fleet/vm-a/update/chunk'));
    assert.ok(!maySubscribe({ kind: 'machine', id: 'vm-a' }, 'fleet/vm-a/update/#'));
  });
});
