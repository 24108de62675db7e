/**
 * One machine-id rule everywhere: provisioning, the MQTT logins and ACLs,
 * ingest (events and audit topics), the API's schema and the firmware's
 * configuration all accept and refuse the same ids. Before, an id with a dot
 * was provisioned and allowed by the ACL, then refused by ingest.
 */
import { strict as assert } from 'node:assert';
import { parseConfig } from '../../firmware/config.js';
import { CommandService } from '../../gateway/commands/service.js';
import { auditMachine } from '../../gateway/ingest/audits.js';
import { parseMessage } from '../../gateway/ingest/messages.js';
import { isMachineId } from '../../gateway/machine-id.js';
import { mayPublish, maySubscribe } from '../../gateway/mqtt/acl.js';
import { openDb, type Db } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';

const GOOD = ['vm-0001', 'A', '7', 'vm_1', 'x'.repeat(64), 'Machine-42_b'];
const BAD = ['gateway', 'vm.0001', '', '-vm', '_vm', '$gateway', 'vm/1', 'vm+1', 'vm#', 'vm 1', 'x'.repeat(65), 'vm\u0000', 'vé', 'vm.1.2'];

describe('the machine id rule', () => {
  let db: Db;
  let commands: CommandService;
  before(async () => {
    db = await openDb();
    await migrate(db);
    commands = new CommandService(db, () => {});
  });
  after(async () => {
    commands.close();
    await db.close();
  });

  it('is the same in provisioning, the ACL, ingest, audits and the firmware', async () => {
    const event = new TextEncoder().encode(JSON.stringify({ v: 1, events: [{ seq: 1, t: 1, type: 'boot' }] }));
    for (const id of [...GOOD, ...BAD]) {
      const want = isMachineId(id);
      assert.equal(want, GOOD.includes(id), `the rule itself on ${JSON.stringify(id)}`);
      const provisioned = await commands.provision(id).then(
        () => true,
        () => false,
      );
      assert.equal(provisioned, want, `provisioning ${JSON.stringify(id)}`);
      assert.equal(mayPublish({ kind: 'machine', id }, `fleet/${id}/events`), want, `ACL publish ${JSON.stringify(id)}`);
      assert.equal(maySubscribe({ kind: 'machine', id }, `fleet/${id}/commands`), want, `ACL subscribe ${JSON.stringify(id)}`);
      assert.equal(mayPublish({ kind: 'gateway' }, `fleet/${id}/acks`), want, `gateway ACL ${JSON.stringify(id)}`);
      const parsed = parseMessage(`fleet/${id}/events`, event);
      assert.equal(parsed.ok || parsed.reason !== 'wrong-topic', want, `ingest topic ${JSON.stringify(id)}`);
      assert.equal(auditMachine(`fleet/${id}/audit`) !== undefined, want, `audit topic ${JSON.stringify(id)}`);
      const configured = (() => {
        try {
          parseConfig({ machineId: id, slots: [{ code: 'A1', product: 'Chips', price: 100, capacity: 5 }] });
          return true;
        } catch {
          return false;
        }
      })();
      assert.equal(configured, want, `firmware configuration ${JSON.stringify(id)}`);
    }
  });
});
