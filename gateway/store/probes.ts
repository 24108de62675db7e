/**
 * Subscription probes in the store (table gateway_probes): in a share
 * group a probe reaches one member, not always the gateway that sent it, so
 * the member that receives another's probe records it here and the sender
 * looks for it (mqtt/subscriber.ts says why probes exist).
 */
import type { Queryable } from './db.js';

/** Another gateway's probe arrived here (`receivedBy`: this gateway process). */
export async function recordProbe(db: Queryable, probe: string, receivedBy: string): Promise<void> {
  await db.query('INSERT INTO gateway_probes (probe, received_by) VALUES ($1, $2) ON CONFLICT DO NOTHING', [probe, receivedBy]);
}

/** Has a member of the group recorded this probe? */
export async function probeRecorded(db: Queryable, probe: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM gateway_probes WHERE probe = $1', [probe])).rows.length > 0;
}

/** Forget probes over an hour old (they were answered or lost long ago). */
export async function forgetOldProbes(db: Queryable): Promise<void> {
  await db.query("DELETE FROM gateway_probes WHERE received_at < now() - interval '1 hour'");
}
