/**
 * What the gateway API tests start from: a backend's store, migrated, a
 * command service on it and the API over both (not listening: tests inject,
 * or listen themselves); closed again in the reverse order. And a machine's
 * last telemetry written as ingest would have left it, for tests that seed
 * the store with SQL instead of running a machine.
 */
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../gateway/api/server.js';
import { CommandService } from '../../gateway/commands/service.js';
import type { Db, Queryable } from '../../gateway/store/db.js';
import { migrate } from '../../gateway/store/migrations.js';
import type { Backend, BACKENDS } from './backends.js';

export interface OpenApi {
  b: Backend;
  db: Db;
  commands: CommandService;
  api: FastifyInstance;
}

/** Opens `backend`, migrates its store, provisions `machines` (before the API starts, as the tests did) and builds the API. */
export async function openApi(backend: (typeof BACKENDS)[number], machines: readonly string[] = []): Promise<OpenApi> {
  const b = await backend.open();
  let commands: CommandService | undefined;
  try {
    await migrate(b.db);
    commands = new CommandService(b.db, () => {});
    for (const id of machines) await commands.provision(id);
    const api = await buildApi({ db: b.db, commands });
    return { b, db: b.db, commands, api };
  } catch (e) {
    // The caller has nothing to close yet: a failed set-up leaves no store or schema behind.
    commands?.close();
    await b.close();
    throw e;
  }
}

/** Closes what openApi opened; parts left unset (a `before` that failed later) are passed over. */
export async function closeApi(h: Partial<OpenApi>): Promise<void> {
  await h.api?.close();
  h.commands?.close();
  await h.b?.close();
}

/** A machine's last telemetry report in machine_state, with `online` as given (a machine seen now). */
export async function setTelemetry(db: Queryable, machine: string, telemetry: unknown, online = true): Promise<void> {
  await db.query('INSERT INTO machine_state (machine_id, online, last_seen, telemetry, telemetry_at) VALUES ($1, $2, now(), $3::jsonb, now())', [machine, online, JSON.stringify(telemetry)]);
}
