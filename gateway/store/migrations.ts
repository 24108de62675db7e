/**
 * Schema migrations, applied in order, each once, in a transaction. The same
 * statements run on PostgreSQL and PGlite.
 *
 * Over 600 lines on purpose: it is the schema's history, one entry a
 * migration, never edited once released; splitting it would only scatter
 * the order that stores are built in.
 */
import type { Db, Queryable } from './db.js';
import { sqlState } from './errors.js';
import { addMonths, ensureEventMonth, monthOf, type Month } from './event-partitions.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** After the statements, in the same transaction: what needs values read from the store (partitions to make). */
  run?: (tx: Queryable) => Promise<void>;
}

/** The sales view since version 8 (made again in 13, over the partitioned table). */
const SALES_VIEW = `CREATE OR REPLACE VIEW sales AS
  SELECT machine_id, seq,
    CASE WHEN jsonb_typeof(body->'slot') = 'string' AND body->>'slot' ~ '^([A-Z0-9]{1,4}|#(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))$'
      THEN body->>'slot' END AS slot,
    CASE WHEN jsonb_typeof(body->'price') = 'number' THEN
      CASE WHEN (body->'price')::numeric BETWEEN 0 AND 4294967295 AND (body->'price')::numeric = trunc((body->'price')::numeric)
        THEN (body->'price')::numeric::bigint END
    END AS price,
    machine_time, received_at
  FROM events WHERE type = 'vend-ok'`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'machines, events, machine state, telemetry, rejections',
    sql: `
CREATE TABLE machines (
  id text PRIMARY KEY,
  name text,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- One row per machine: what it last said and when.
CREATE TABLE machine_state (
  machine_id text PRIMARY KEY REFERENCES machines(id),
  online boolean NOT NULL DEFAULT false,
  last_seen timestamptz,
  status jsonb,
  telemetry jsonb,
  telemetry_at timestamptz,
  last_seq bigint NOT NULL DEFAULT 0,
  events bigint NOT NULL DEFAULT 0
);
-- Journal events, exactly once per (machine, sequence number).
CREATE TABLE events (
  machine_id text NOT NULL REFERENCES machines(id),
  seq bigint NOT NULL,
  type text NOT NULL,
  machine_time bigint NOT NULL,
  body jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, seq)
);
CREATE INDEX events_type_time ON events (type, received_at);
CREATE VIEW sales AS
  SELECT machine_id, seq, body->>'slot' AS slot, (body->>'price')::bigint AS price, machine_time, received_at
  FROM events WHERE type = 'vend-ok';
-- Telemetry by day; old days are dropped whole (retention).
CREATE TABLE telemetry (
  machine_id text NOT NULL,
  received_at timestamptz NOT NULL,
  body jsonb NOT NULL
) PARTITION BY RANGE (received_at);
CREATE INDEX telemetry_machine_time ON telemetry (machine_id, received_at);
-- Input the gateway refused, by reason.
CREATE TABLE rejections (
  reason text PRIMARY KEY,
  count bigint NOT NULL DEFAULT 0,
  last_at timestamptz,
  last_detail text
);`,
  },
  {
    version: 2,
    name: 'command keys and remote commands',
    sql: `
-- Each machine's HMAC keys for commands: one active; a pending one during rotation.
CREATE TABLE machine_keys (
  machine_id text NOT NULL REFERENCES machines(id),
  kid int NOT NULL,
  key bytea NOT NULL,
  state text NOT NULL CHECK (state IN ('active', 'pending', 'retired')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, kid)
);
ALTER TABLE machines ADD COLUMN next_command bigint NOT NULL DEFAULT 1;
-- Commands to machines: numbered per machine (the machine's replay window counts on it).
CREATE TABLE commands (
  id text PRIMARY KEY,
  machine_id text NOT NULL REFERENCES machines(id),
  n bigint NOT NULL,
  type text NOT NULL,
  args jsonb NOT NULL,
  issued_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  status text NOT NULL,
  outcome jsonb,
  sent int NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (machine_id, n)
);
CREATE INDEX commands_open ON commands (machine_id, n) WHERE status IN ('queued', 'delivered')`,
  },
  {
    version: 3,
    name: 'API tokens and idempotency keys',
    sql: `
-- Operator API tokens: only a hash is kept.
CREATE TABLE api_tokens (
  id text PRIMARY KEY,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
-- The first answer to a request with an Idempotency-Key, per machine.
CREATE TABLE idempotency (
  machine_id text NOT NULL REFERENCES machines(id),
  key text NOT NULL,
  request_hash text NOT NULL,
  command_id text REFERENCES commands(id),
  response jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, key)
)`,
  },
  {
    version: 4,
    name: 'per-machine MQTT credentials',
    sql: `
-- SHA-256 of the machine's MQTT password (32 random bytes: a slow hash buys nothing there).
ALTER TABLE machines ADD COLUMN mqtt_secret_hash text`,
  },
  {
    version: 5,
    name: 'DEX audit files',
    sql: `
-- EVA-DTS audit files as received (raw) and as read (summary); machine_id is NULL for files not tied to a fleet machine.
CREATE TABLE audits (
  id bigserial PRIMARY KEY,
  machine_id text REFERENCES machines(id),
  source text NOT NULL CHECK (source IN ('machine', 'upload')),
  read_number int,
  serial text,
  read_at timestamptz,
  received_at timestamptz NOT NULL DEFAULT now(),
  crc text NOT NULL CHECK (crc IN ('ok', 'mismatch', 'absent')),
  summary jsonb NOT NULL,
  raw text NOT NULL
);
-- A machine's read sent again is stored once.
CREATE UNIQUE INDEX audits_machine_read ON audits (machine_id, read_number) WHERE machine_id IS NOT NULL AND read_number IS NOT NULL;
CREATE INDEX audits_machine_time ON audits (machine_id, received_at)`,
  },
  {
    version: 6,
    name: 'alerts and alert rules',
    sql: `
-- Alerts: open while their condition holds (closed_at NULL), then kept as history.
CREATE TABLE alerts (
  id bigserial PRIMARY KEY,
  machine_id text NOT NULL REFERENCES machines(id),
  kind text NOT NULL,
  subject text NOT NULL DEFAULT '',
  severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  message text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  opened_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  closed_at timestamptz
);
-- At most one open alert per machine, kind and subject, whichever gateway opens it.
CREATE UNIQUE INDEX alerts_open ON alerts (machine_id, kind, subject) WHERE closed_at IS NULL;
CREATE INDEX alerts_machine_opened ON alerts (machine_id, opened_at);
CREATE INDEX alerts_opened ON alerts (opened_at);
-- Alert rules as set by operators (only what differs): '*' for the fleet, else a machine id.
CREATE TABLE alert_rules (
  machine_id text PRIMARY KEY,
  rules jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)`,
  },
  {
    version: 7,
    name: 'machine locations',
    sql: `
-- Where each machine stands (WGS 84 degrees, and a free-text address) for restocking routes: unknown until set.
ALTER TABLE machines ADD COLUMN lat double precision CHECK (lat BETWEEN -90 AND 90);
ALTER TABLE machines ADD COLUMN lon double precision CHECK (lon BETWEEN -180 AND 180);
ALTER TABLE machines ADD COLUMN address text`,
  },
  {
    version: 8,
    name: 'sales view reads only valid prices and slot codes',
    sql: `
-- Events stored before they were checked (issue 13) may hold any JSON: a price that is not a whole number
-- from 0 to 2^32-1 (the uplink contract's money) reads as NULL, so the sale counts and its revenue does not,
-- and a slot that is not a slot code reads as NULL. The CASEs nest because AND does not fix evaluation order,
-- and casting a jsonb string to numeric fails.
${SALES_VIEW}`,
  },
  {
    version: 9,
    name: 'refused events, gateway subscription probes',
    sql: `
-- Events of well-framed messages refused for their content (the uplink contract, or the store itself):
-- kept under their sequence numbers with the reason, and acknowledged, so a machine's numbers are all
-- accounted for (in events or here) and nothing waits behind a bad one.
CREATE TABLE refused_events (
  machine_id text NOT NULL REFERENCES machines(id),
  seq bigint NOT NULL,
  machine_time bigint,
  type text,
  reason text NOT NULL,
  raw text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, seq)
);
-- Probes a gateway sent through its own subscriptions, as received by any gateway of its share group.
CREATE TABLE gateway_probes (
  probe text PRIMARY KEY,
  received_by text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
)`,
  },
  {
    version: 10,
    name: 'firmware images and offers',
    sql: `
-- Signed firmware images (docs/updates.md), known by the SHA-256 of their bytes; one image per version.
CREATE TABLE firmware_images (
  sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  version text NOT NULL UNIQUE,
  size int NOT NULL CHECK (size > 0),
  kind text NOT NULL CHECK (kind IN ('sim', 'esp32')),
  journal int NOT NULL CHECK (journal BETWEEN 1 AND 65535),
  described boolean NOT NULL,
  notes text NOT NULL DEFAULT '',
  key_id text NOT NULL,
  signature text NOT NULL,
  uploaded_by text,
  uploaded_at timestamptz NOT NULL DEFAULT now(),
  bytes bytea NOT NULL CHECK (length(bytes) = size)
);
-- Images already compressed: stored out of line without another try at compressing them.
ALTER TABLE firmware_images ALTER COLUMN bytes SET STORAGE EXTERNAL;
-- Which machine may fetch which image over MQTT (the chunk server serves nothing else).
CREATE TABLE firmware_offers (
  machine_id text NOT NULL REFERENCES machines(id),
  sha256 text NOT NULL REFERENCES firmware_images(sha256),
  offered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, sha256)
);
CREATE INDEX firmware_offers_image ON firmware_offers (sha256)`,
  },
  {
    version: 11,
    name: 'machine tags, update reports, rollouts',
    sql: `
-- A few labels per machine, for rollouts to target (docs/updates.md "Rollouts").
CREATE TABLE machine_tags (
  machine_id text NOT NULL REFERENCES machines(id),
  tag text NOT NULL,
  PRIMARY KEY (machine_id, tag)
);
CREATE INDEX machine_tags_tag ON machine_tags (tag);
-- The newest update report of each machine (its update-begin and update events), written with the events.
CREATE TABLE machine_updates (
  machine_id text PRIMARY KEY REFERENCES machines(id),
  seq bigint NOT NULL,
  n bigint NOT NULL,
  version text NOT NULL,
  sha256 text,
  size bigint,
  phase text NOT NULL,
  reason text,
  at timestamptz NOT NULL DEFAULT now()
);
-- A rollout of one image to machines in waves. The image is named, not referenced: a finished rollout
-- does not keep an image from being deleted (an unfinished one does: gateway/firmware/store.ts imageUse).
CREATE TABLE rollouts (
  id text PRIMARY KEY,
  sha256 text NOT NULL,
  version text NOT NULL,
  target jsonb NOT NULL,
  waves jsonb NOT NULL,
  halt jsonb NOT NULL,
  parallel integer NOT NULL,
  timeout_s integer NOT NULL,
  downgrade boolean NOT NULL DEFAULT false,
  force boolean NOT NULL DEFAULT false,
  state text NOT NULL,
  wave integer NOT NULL DEFAULT 0,
  wave_bad_base integer NOT NULL DEFAULT 0,
  reason text,
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz
);
CREATE INDEX rollouts_state ON rollouts (state);
-- Each machine of a rollout: its wave, its place in the order, what it is doing. progress_at is the
-- rollout engine's clock (ms) when something about its update was last heard; seen is what was heard.
CREATE TABLE rollout_machines (
  rollout_id text NOT NULL REFERENCES rollouts(id),
  machine_id text NOT NULL REFERENCES machines(id),
  wave integer NOT NULL,
  position integer NOT NULL,
  state text NOT NULL DEFAULT 'pending',
  bytes bigint,
  size bigint,
  reason text,
  command_id text,
  n bigint,
  base_seq bigint NOT NULL DEFAULT 0,
  progress_at bigint,
  seen text NOT NULL DEFAULT '',
  active boolean NOT NULL DEFAULT true,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rollout_id, machine_id)
);
-- Exactly one unfinished rollout per machine.
CREATE UNIQUE INDEX rollout_machines_one_active ON rollout_machines (machine_id) WHERE active;
CREATE INDEX rollout_machines_order ON rollout_machines (rollout_id, wave, position)`,
  },
  {
    version: 12,
    name: 'operators: machines, tokens, audits, rollouts and fleet alert rules by operator',
    sql: `
-- Operators (organisations) own machines (docs/tenants.md). 'default' holds everything an install had
-- before operators: a single-operator fleet needs no new steps.
CREATE TABLE operators (
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
  name text NOT NULL,
  -- The operator's fleet-wide alert rules (only what differs from the built-in defaults).
  alert_rules jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO operators (id, name) VALUES ('default', 'Default operator');
-- Every machine has one operator; a machine added without naming one is the default operator's.
ALTER TABLE machines ADD COLUMN operator_id text NOT NULL DEFAULT 'default' REFERENCES operators(id);
CREATE INDEX machines_operator ON machines (operator_id, id);
-- A token belongs to one operator, or (NULL) is a platform admin's, which sees every operator.
-- Existing admin tokens become platform admins (they could do everything before); the others the default operator's.
ALTER TABLE api_tokens ADD COLUMN operator_id text REFERENCES operators(id);
UPDATE api_tokens SET operator_id = 'default' WHERE role <> 'admin';
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_platform_is_admin CHECK (operator_id IS NOT NULL OR role = 'admin');
-- The fleet's alert rules (scope '*') were the one operator's.
UPDATE operators SET alert_rules = r.rules FROM alert_rules r WHERE r.machine_id = '*' AND operators.id = 'default';
DELETE FROM alert_rules WHERE machine_id = '*';
-- An audit file is its machine's operator's; a file tied to no machine, its uploader's (NULL: a platform admin's).
ALTER TABLE audits ADD COLUMN operator_id text REFERENCES operators(id);
UPDATE audits SET operator_id = COALESCE((SELECT m.operator_id FROM machines m WHERE m.id = audits.machine_id), 'default');
CREATE INDEX audits_operator ON audits (operator_id, received_at);
-- A rollout is one operator's, over that operator's machines only.
ALTER TABLE rollouts ADD COLUMN operator_id text NOT NULL DEFAULT 'default' REFERENCES operators(id);
ALTER TABLE rollouts ALTER COLUMN operator_id DROP DEFAULT;
CREATE INDEX rollouts_operator ON rollouts (operator_id, created_at)`,
  },
  {
    version: 13,
    name: 'events partitioned by month received, event marks, archives',
    sql: `
-- The view names the old table (views bind to tables, not names): made again below.
DROP VIEW sales;
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER INDEX events_pkey RENAME TO events_unpartitioned_pkey;
ALTER INDEX events_type_time RENAME TO events_unpartitioned_type_time;
-- Journal events by the month they were received in (docs/architecture.md "The event store"). A partitioned
-- table's primary key must hold its partition column, so this key does not by itself keep (machine, seq) once:
-- ingest does, under a lock on the machine's row of event_marks (gateway/ingest/store.ts).
CREATE TABLE events (
  machine_id text NOT NULL REFERENCES machines(id),
  seq bigint NOT NULL,
  type text NOT NULL,
  machine_time bigint NOT NULL,
  body jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, seq, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX events_type_time ON events (type, received_at);
-- Per machine: the highest number in events (anything above is new without looking), and the highest
-- number whose month was archived and dropped (a resend at or below it is not looked for in vain).
-- Ingest locks a machine's row here while it writes that machine's events.
-- Ingest raises high and reads what it was before (high_before) in the one statement that locks the row.
CREATE TABLE event_marks (
  machine_id text PRIMARY KEY REFERENCES machines(id),
  high bigint NOT NULL DEFAULT 0,
  high_before bigint NOT NULL DEFAULT 0,
  archived_through bigint NOT NULL DEFAULT 0
);
-- Months written to archive files (and dropped), and months loaded back from one (held: upkeep leaves them).
CREATE TABLE event_archives (
  month text PRIMARY KEY CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
  file text,
  rows bigint,
  bytes bigint,
  sha256 text,
  archived_at timestamptz,
  loaded_at timestamptz
)`,
    run: async (tx) => {
      // A partition for every month the old table has rows in, and this month and the next.
      const r = await tx.query<{ m: string }>(
        `SELECT DISTINCT to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM') AS m FROM events_unpartitioned
         UNION SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM')`,
      );
      const months = new Set<Month>(r.rows.map((x) => x.m));
      const now = monthOf(Date.now());
      months.add(now).add(addMonths(now, 1));
      for (const m of [...months].sort()) await ensureEventMonth(tx, m);
      await tx.query('INSERT INTO events (machine_id, seq, type, machine_time, body, received_at) SELECT machine_id, seq, type, machine_time, body, received_at FROM events_unpartitioned');
      await tx.query('INSERT INTO event_marks (machine_id, high) SELECT machine_id, max(seq) FROM events GROUP BY machine_id');
      await tx.query('DROP TABLE events_unpartitioned');
      await tx.query(SALES_VIEW);
    },
  },
  {
    version: 14,
    name: 'daily sales rollups, machine_state tuned for frequent updates',
    sql: `
-- The sales view's reading of a vend-ok body (migration 8), as functions so the view and the rollup kept at
-- ingest (gateway/store/rollup.ts) read a sale alike. Plain SQL and IMMUTABLE: the planner inlines them.
CREATE OR REPLACE FUNCTION sale_slot(body jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
  SELECT CASE WHEN jsonb_typeof(body->'slot') = 'string' AND body->>'slot' ~ '^([A-Z0-9]{1,4}|#(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))$'
    THEN body->>'slot' END
$f$;
CREATE OR REPLACE FUNCTION sale_price(body jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE AS $f$
  SELECT CASE WHEN jsonb_typeof(body->'price') = 'number' THEN
    CASE WHEN (body->'price')::numeric BETWEEN 0 AND 4294967295 AND (body->'price')::numeric = trunc((body->'price')::numeric)
      THEN (body->'price')::numeric::bigint END
  END
$f$;
CREATE OR REPLACE VIEW sales AS
  SELECT machine_id, seq, sale_slot(body) AS slot, sale_price(body) AS price, machine_time, received_at
  FROM events WHERE type = 'vend-ok';
-- Sales per machine, slot and UTC day of receipt (the sales view's received_at), added to in the transaction
-- that stores the sale. slot '' holds the sales without a slot code (NULL in the view); revenue leaves out
-- prices the view reads as NULL. Rows outlive the events they count (retention drops raw events, not these).
CREATE TABLE sales_daily (
  machine_id text NOT NULL,
  day date NOT NULL,
  slot text NOT NULL,
  sales bigint NOT NULL,
  revenue bigint NOT NULL,
  PRIMARY KEY (machine_id, day, slot)
);
-- The fleet's days (the summary, the fleet's series) without the machines' order.
CREATE INDEX sales_daily_day ON sales_daily (day) INCLUDE (sales, revenue);
-- What was stored before this migration.
INSERT INTO sales_daily (machine_id, day, slot, sales, revenue)
  SELECT machine_id, (received_at AT TIME ZONE 'UTC')::date, coalesce(slot, ''), count(*), coalesce(sum(price), 0)
  FROM sales GROUP BY 1, 2, 3;
-- The fleet's totals of closed days: a day over for an hour gets no more sales (its sales are dated by their
-- receipt), so its total is written once (store/rollup.ts closeSalesDays) and the fleet's series reads a row a
-- day instead of a row per machine and slot. Days not closed yet are summed from sales_daily.
CREATE TABLE sales_daily_fleet (
  day date PRIMARY KEY,
  sales bigint NOT NULL,
  revenue bigint NOT NULL
);
INSERT INTO sales_daily_fleet (day, sales, revenue)
  SELECT day, sum(sales), sum(revenue) FROM sales_daily WHERE day < ((now() - interval '1 hour') AT TIME ZONE 'UTC')::date GROUP BY day;
-- machine_state takes an update per machine every few seconds (telemetry, status, events): room left on each
-- page lets an update stay on it (a HOT update: no index entry, and the old version is pruned in place), and
-- vacuum comes after a fixed number of dead rows rather than a fifth of a table that never grows.
ALTER TABLE machine_state SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
  autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0)`,
  },
  {
    version: 15,
    name: "operators' alert webhooks, tokens' last use",
    sql: `
-- Each operator's own alert webhook (docs/alerts.md): its alerts only, besides the platform's global one.
-- The secret is kept as given: the gateway signs with it (an HMAC key cannot be stored as a hash).
ALTER TABLE operators ADD COLUMN alert_webhook_url text CHECK (length(alert_webhook_url) <= 2048);
ALTER TABLE operators ADD COLUMN alert_webhook_secret text CHECK (alert_webhook_url IS NOT NULL OR alert_webhook_secret IS NULL);
-- When a token was last seen on the API (to the minute: written at most once a minute per token).
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz`,
  },
  {
    version: 16,
    name: 'driver links',
    sql: `
-- A route driver's link (docs/restocking.md "The driver's page"): the route as planned when the link was made,
-- kept so the stops do not move under the driver; only the secret's SHA-256 is stored, like API tokens'.
CREATE TABLE driver_links (
  id uuid PRIMARY KEY,
  operator_id text NOT NULL REFERENCES operators(id),
  name text NOT NULL,
  secret_hash text NOT NULL UNIQUE,
  route jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
-- One restock command per slot of a link's route: a tap sent again gets the same command, not a second restock.
CREATE TABLE driver_restocks (
  link_id uuid NOT NULL REFERENCES driver_links(id),
  machine_id text NOT NULL,
  slot text NOT NULL,
  command_id text NOT NULL REFERENCES commands(id),
  PRIMARY KEY (link_id, machine_id, slot)
)`,
  },
  {
    version: 17,
    name: 'product catalog and planogram assignments',
    sql: `
-- Each operator's product catalog (docs/catalog.md): a product is known by its SKU within its operator, priced
-- by default in minor units of its currency. Its image is either bytes uploaded to the gateway (sniffed as
-- PNG, JPEG, GIF or WebP, served with that type only) or an https URL, never both.
CREATE TABLE products (
  operator_id text NOT NULL REFERENCES operators(id),
  sku text NOT NULL CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  category text CHECK (length(category) BETWEEN 1 AND 64),
  price bigint NOT NULL CHECK (price BETWEEN 1 AND 1000000),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  image bytea CHECK (length(image) BETWEEN 1 AND 131072),
  image_type text CHECK (image_type IN ('image/png', 'image/jpeg', 'image/gif', 'image/webp')),
  image_sha256 text CHECK (image_sha256 ~ '^[0-9a-f]{64}$'),
  image_url text CHECK (image_url ~ '^https://' AND length(image_url) <= 2048),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (operator_id, sku),
  CHECK ((image IS NULL) = (image_type IS NULL) AND (image IS NULL) = (image_sha256 IS NULL)),
  CHECK (image IS NULL OR image_url IS NULL)
);
CREATE INDEX products_category ON products (operator_id, category);
-- Which catalog product a machine's slot holds, with this machine's price when it differs from the default.
-- The product is the machine's operator's (the API checks; the key keeps a product in use from vanishing).
CREATE TABLE planogram (
  machine_id text NOT NULL REFERENCES machines(id),
  slot text NOT NULL CHECK (slot ~ '^[A-Z0-9]{1,4}$'),
  operator_id text NOT NULL,
  sku text NOT NULL,
  price bigint CHECK (price BETWEEN 1 AND 1000000),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, slot),
  FOREIGN KEY (operator_id, sku) REFERENCES products(operator_id, sku)
);
CREATE INDEX planogram_product ON planogram (operator_id, sku)`,
  },
  {
    version: 18,
    name: "machines' stock and telemetry revision kept with their state",
    sql: `
-- Each machine's stock as its last telemetry says (units, room, and whether a slot is empty, out of service or at
-- a fifth of its room), worked out when the telemetry is written rather than from every machine's slots on each
-- read of the fleet list (seconds at 10,000 machines). A slot counts when its qty is a number; its room is its
-- capacity when that is a number, else its qty (at least 1), as the planogram draws it. No slot counted: NULL.
-- Unindexed columns: an update stays a HOT one (migration 14).
ALTER TABLE machine_state ADD COLUMN stock_units numeric, ADD COLUMN stock_room numeric, ADD COLUMN stock_low boolean;
-- A new number at each write of a machine's telemetry: a reader that keeps slots (the restock KPI,
-- gateway/restock/today.ts) reads again only the machines whose number moved.
CREATE SEQUENCE machine_telemetry_rev;
ALTER TABLE machine_state ADD COLUMN telemetry_rev bigint;
CREATE OR REPLACE FUNCTION machine_stock(t jsonb, OUT units numeric, OUT room numeric, OUT low boolean) LANGUAGE sql IMMUTABLE AS $f$
  SELECT sum(greatest(c.qty, 0)), sum(c.room), bool_or(c.qty <= 0 OR c.s->'fault' = 'true'::jsonb OR c.qty * 5 <= c.room)
  FROM (SELECT q.s, q.qty, CASE WHEN jsonb_typeof(q.s->'capacity') = 'number' THEN greatest((q.s->>'capacity')::numeric, 0) ELSE greatest(q.qty, 1) END AS room
        FROM (SELECT e.s, CASE WHEN jsonb_typeof(e.s) = 'object' AND jsonb_typeof(e.s->'qty') = 'number' THEN (e.s->>'qty')::numeric END AS qty
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(t->'slots') = 'array' THEN t->'slots' ELSE '[]'::jsonb END) e(s)) q
        WHERE q.qty IS NOT NULL) c
$f$;
CREATE OR REPLACE FUNCTION machine_state_stock() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN SELECT x.units, x.room, x.low INTO NEW.stock_units, NEW.stock_room, NEW.stock_low FROM machine_stock(NEW.telemetry) x; NEW.telemetry_rev := nextval('machine_telemetry_rev'); RETURN NEW; END $f$;
CREATE TRIGGER machine_state_stock BEFORE INSERT OR UPDATE OF telemetry ON machine_state FOR EACH ROW EXECUTE FUNCTION machine_state_stock();
UPDATE machine_state SET telemetry = telemetry`,
  },
  {
    version: 19,
    name: 'hourly sales rollup for the restocking forecasts',
    sql: `
-- Sales per UTC hour of receipt, machine and slot code (the sales view's received_at and slot; sales without a
-- slot code are left out), added to in the transaction that stores the sale, like sales_daily
-- (gateway/store/rollup.ts). The restocking forecasts count a month of sales by hour of the week: read from here,
-- that is a narrow row per machine, slot and hour instead of every sale's JSON body (gateway/restock/sales-window.ts).
-- hour is hours since 1970-01-01 00:00 UTC: integer arithmetic gives the hour of the week, where a timestamp's
-- epoch is numeric and several times slower per row. Only recent hours are kept (rollup.ts pruneSalesHours).
CREATE TABLE sales_hourly (
  hour integer NOT NULL,
  machine_id text NOT NULL,
  slot text NOT NULL,
  sales integer NOT NULL,
  PRIMARY KEY (hour, machine_id, slot)
);
-- What was stored before this migration, the hours the rollup keeps (whole hours), in hour order as ingest adds
-- them: an hour's rows together on disk.
INSERT INTO sales_hourly (hour, machine_id, slot, sales)
  SELECT floor(extract(epoch FROM received_at) / 3600)::int, machine_id, slot, count(*)
  FROM sales WHERE slot IS NOT NULL AND received_at >= date_trunc('hour', now() - interval '35 days')
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  },
  {
    version: 20,
    name: "a machine's stock worked out only when telemetry is written",
    sql: `
-- Migration 18's trigger ran on every insert into machine_state, and ingest's state rows are upserts: every event
-- message's machine, in every batch, was an insert proposed (then taken as an update of last_seen and the counts),
-- and the trigger worked the stock out of no telemetry and took a revision number each time, for nothing. That was
-- three quarters of PostgreSQL's time for a batch of 300 one-event messages (issue 16). Telemetry paid twice: once
-- for the insert proposed, once for the update it became. Now an insert works the stock out only with telemetry and
-- only when the machine has no state row yet (otherwise the insert is an upsert's proposal that becomes an update, or
-- fails: its values are never stored); an update of the telemetry works it out as before. A state row made without
-- telemetry has no stock (as before: no slot counted) and no revision until its first telemetry (a reader takes the
-- move from none to a number as a change, as it took one number to another).
CREATE OR REPLACE FUNCTION machine_state_stock_insert() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN IF EXISTS (SELECT 1 FROM machine_state s WHERE s.machine_id = NEW.machine_id) THEN RETURN NEW; END IF; SELECT x.units, x.room, x.low INTO NEW.stock_units, NEW.stock_room, NEW.stock_low FROM machine_stock(NEW.telemetry) x; NEW.telemetry_rev := nextval('machine_telemetry_rev'); RETURN NEW; END $f$;
DROP TRIGGER machine_state_stock ON machine_state;
CREATE TRIGGER machine_state_stock BEFORE UPDATE OF telemetry ON machine_state FOR EACH ROW EXECUTE FUNCTION machine_state_stock();
CREATE TRIGGER machine_state_stock_insert BEFORE INSERT ON machine_state FOR EACH ROW WHEN (NEW.telemetry IS NOT NULL) EXECUTE FUNCTION machine_state_stock_insert()`,
  },
  {
    version: 21,
    name: "a machine's stock worked out in the trigger itself, and only when its slots changed",
    sql: `
-- Migrations 18 and 20's triggers called machine_stock(), an SQL function in FROM: PostgreSQL (before 18) does not
-- inline one that returns a row rather than a set, so each call parsed and planned its body again, about 120 us a
-- report on the telemetry update path (issue 16). The same query written in the trigger's PL/pgSQL function is
-- planned once per connection (about 30 us). And an update whose report has the same slots as the stored one (a
-- machine that sold nothing since: most reports of a real fleet) keeps the stock it has, which those slots gave:
-- only the revision moves, at every write of the telemetry as before. One function for both triggers (an insert
-- for a machine that has a state row is an upsert's proposal, migration 20: nothing to work out). machine_stock()
-- stays, with the same answer. (Statements here are split at a semicolon that ends a line: none inside the body does.)
CREATE OR REPLACE FUNCTION machine_state_stock() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
  IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM machine_state s WHERE s.machine_id = NEW.machine_id) THEN RETURN NEW; END IF; IF TG_OP = 'UPDATE'
    AND NEW.telemetry->'slots' IS NOT DISTINCT FROM OLD.telemetry->'slots' THEN NEW.telemetry_rev := nextval('machine_telemetry_rev'); RETURN NEW; END IF; SELECT
    sum(greatest(c.qty, 0)), sum(c.room), bool_or(c.qty <= 0 OR c.s->'fault' = 'true'::jsonb OR c.qty * 5 <= c.room) INTO NEW.stock_units, NEW.stock_room, NEW.stock_low
  FROM (SELECT q.s, q.qty, CASE WHEN jsonb_typeof(q.s->'capacity') = 'number' THEN greatest((q.s->>'capacity')::numeric, 0) ELSE greatest(q.qty, 1) END AS room
        FROM (SELECT e.s, CASE WHEN jsonb_typeof(e.s) = 'object' AND jsonb_typeof(e.s->'qty') = 'number' THEN (e.s->>'qty')::numeric END AS qty
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(NEW.telemetry->'slots') = 'array' THEN NEW.telemetry->'slots' ELSE '[]'::jsonb END) e(s)) q
        WHERE q.qty IS NOT NULL) c; NEW.telemetry_rev := nextval('machine_telemetry_rev'); RETURN NEW; END $f$;
DROP TRIGGER machine_state_stock_insert ON machine_state;
CREATE TRIGGER machine_state_stock_insert BEFORE INSERT ON machine_state FOR EACH ROW WHEN (NEW.telemetry IS NOT NULL) EXECUTE FUNCTION machine_state_stock();
DROP FUNCTION machine_state_stock_insert()`,
  },
];

/** Apply the migrations not applied yet, up to version `until` (tests stop short of one to store data as an older version did). */
export async function migrate(db: Db, until = Infinity): Promise<number[]> {
  await db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
  const done = new Set((await db.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.version) || m.version > until) continue;
    await db.transaction(async (tx) => {
      // Another gateway may be migrating at the same moment: the lock makes one wait for the other.
      await tx.query('LOCK TABLE schema_migrations IN EXCLUSIVE MODE');
      const again = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (again.rows.length > 0) return;
      for (const stmt of splitStatements(m.sql)) await tx.query(stmt);
      await m.run?.(tx);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    });
  }
  return applied;
}

/** Statements of a migration (none of ours contain a semicolon inside a literal). */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*\n/)
    .map((s) => s.replace(/--[^\n]*\n/g, '\n').trim())
    .filter((s) => s.length > 0);
}

/** Daily telemetry partition covering `day` (UTC), created if missing. */
export async function ensureTelemetryPartition(db: Db, day: Date): Promise<string> {
  const start = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate()));
  const end = new Date(start.getTime() + 86400000);
  const name = `telemetry_${start.toISOString().slice(0, 10).replace(/-/g, '')}`;
  try {
    await db.exec(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF telemetry FOR VALUES FROM ('${start.toISOString()}') TO ('${end.toISOString()}')`);
  } catch (e) {
    // IF NOT EXISTS is no guard against another gateway making it at the same moment (42P07, or 23505 for its catalogue row):
    // left alone, that failed the day's first batch of telemetry, which was then written one message at a time.
    const state = sqlState(e);
    if (state !== '42P07' && state !== '23505') throw e;
  }
  return name;
}

/** Drop telemetry partitions wholly older than `days` days. Returns the names dropped. */
export async function dropOldTelemetry(db: Db, days: number, now = new Date()): Promise<string[]> {
  const cutoff = new Date(now.getTime() - days * 86400000);
  const cutoffName = `telemetry_${cutoff.toISOString().slice(0, 10).replace(/-/g, '')}`;
  const parts = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
     WHERE p.relname = 'telemetry' AND c.relnamespace = p.relnamespace`,
  );
  const dropped: string[] = [];
  for (const { name } of parts.rows) {
    if (/^telemetry_\d{8}$/.test(name) && name < cutoffName) {
      await db.exec(`DROP TABLE ${name}`);
      dropped.push(name);
    }
  }
  return dropped;
}
