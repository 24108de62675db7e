/**
 * What must hold after a power cut at any flash operation: the machine boots
 * from what the cut left, numbers its boot right after the last whole event
 * (none reused, none lost), settles what was in flight, balances its books
 * against the physical coins, bills and products, keeps every unacknowledged
 * event, and goes on selling. Beside the campaign (power-cuts.ts) because the
 * tests and `npm run bench` both check cuts with it.
 */
import { FlashLog } from '../firmware/journal/log.js';
import { isMeta } from '../firmware/journal/records.js';
import { visit } from './customers.js';
import { FlashImage } from './guest/flash-image.js';
import type { MachineHost } from './host.js';
import type { Random } from './scheduler.js';
import { checkInvariants } from './invariants.js';

/** A recorded run that can be cut at any operation and booted again (power-cuts.ts, update-cuts.ts). */
export interface CutPoints {
  /** Bytes operation k touches. */
  length(k: number): number;
  /** What operation k is, for messages. */
  describe(k: number): string;
  /** Events whole in the journal after a cut at operation k after `bytes` bytes. */
  eventsAt(k: number, bytes: number): number;
  /** A controller booting from what that cut left. */
  boot(k: number, bytes: number): Promise<MachineHost>;
}

export interface CutOutcome {
  uncertainVends: number;
  creditRestored: number;
}

/** `booted` checks the controller as it comes up, before it runs. */
export async function checkCut(campaign: CutPoints, k: number, bytes: number, rnd: Random, customers = 2, booted?: (host: MachineHost, where: string) => Promise<void>): Promise<CutOutcome> {
  const where = `cut at flash op ${k} (${campaign.describe(k)}) after ${bytes} of ${campaign.length(k)} bytes`;
  const expected = campaign.eventsAt(k, bytes);
  const host = await campaign.boot(k, bytes);
  try {
    if (booted) await booted(host, where);
    const first = await host.status();
    if (first.journal.bootSeq !== expected + 1) {
      throw new Error(`${where}: ${expected} events were whole in flash, but the boot was numbered ${first.journal.bootSeq}`);
    }
    const creditRestored = first.credit;
    // Let whatever was in flight settle, and restored credit time out back to the customer.
    await host.runUntilIdle(60000);
    await host.run(35000);
    await host.runUntilIdle(60000);
    await checkInvariants(host, `${where}, after recovery`);
    for (let i = 0; i < customers; i++) {
      await visit(host, rnd, { walkAway: 0, cancel: 0.1 });
      await checkInvariants(host, `${where}, customer ${i + 1} after recovery`);
    }
    const st = await host.status();
    verifyLog(host, where, st.journal.synced, st.journal.lastSeq);
    return { uncertainVends: st.counters.uncertainVends, creditRestored };
  } finally {
    await host.close();
  }
}

/** Every event still in flash, oldest to newest: consecutive, ending at the last one, none unacknowledged missing. */
export function verifyLog(host: MachineHost, where: string, synced: number, lastSeq: number): void {
  const image = new FlashImage(host.flash.geometry, host.flash.bytes);
  const log = new FlashLog(image, () => 0);
  let first = -1;
  let last = -1;
  const report = log.recover((type, seq) => {
    if (isMeta(type)) return;
    if (first < 0) first = seq;
    else if (seq !== last + 1) throw new Error(`${where}: event ${seq} follows ${last}`);
    last = seq;
  }, true);
  if (report.missing !== 0) throw new Error(`${where}: ${report.missing} events missing from the journal`);
  if (last !== lastSeq) throw new Error(`${where}: journal ends at event ${last}, firmware says ${lastSeq}`);
  if (first > synced + 1) throw new Error(`${where}: events ${synced + 1}..${first - 1} were erased before the gateway acknowledged them`);
}
