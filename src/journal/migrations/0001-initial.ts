import type { Migration } from './migrate.ts';

/*
 * The journal's first schema. The statements are unqualified: the runner sets `search_path` to
 * the store's schema for the migration transaction only, so one text serves every schema.
 * One statement per string, because PGlite runs parameterless queries as prepared statements,
 * which take one command each.
 *
 * Every time defaults to `clock_timestamp()`, the database clock: many service instances share
 * the journal, and their own clocks disagree. (`now()` is fixed for a whole transaction, so
 * rows written in one transaction would tie.)
 */

/**
 * Links, outbox, dead letters, events, cursors and the stored plan.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [initial]);
 * ```
 */
export const initial: Migration = {
  version: 1,
  name: 'initial',
  statements: [
    // Both keys are constraints, not just indexes: they are what makes "nothing duplicated"
    // hold across concurrent workers (a second legacy id claiming a Medplum id fails in the
    // database, not in a check that races). The store maps a violation of the named Medplum
    // constraint to LinkConflictError.
    `CREATE TABLE links (
      resource_type text NOT NULL,
      legacy_id text NOT NULL,
      medplum_id text NOT NULL,
      legacy_version text,
      medplum_version text,
      content_hash text NOT NULL,
      synced_at timestamptz NOT NULL,
      CONSTRAINT links_pkey PRIMARY KEY (resource_type, legacy_id),
      CONSTRAINT links_medplum_id_key UNIQUE (resource_type, medplum_id)
    )`,

    // One row per record and target (the unique key): a newer write bumps `seq` with
    // INSERT … ON CONFLICT instead of adding a row, so at most one mirror of a record is ever
    // in flight and the claim needs no per-key ordering logic.
    //
    // Leases are three columns set and cleared together (the check keeps them consistent);
    // the token comes from a sequence, so a re-claim after expiry always gets a new one and
    // the old holder is fenced by comparing tokens alone.
    //
    // fillfactor 80 leaves room on each page so the frequent lease/release updates, which
    // change no indexed column, stay HOT (no index writes, less bloat under many workers).
    `CREATE TABLE outbox (
      id bigserial PRIMARY KEY,
      resource_type text NOT NULL,
      legacy_id text NOT NULL,
      target text NOT NULL CHECK (target IN ('legacy', 'medplum')),
      unit text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('upsert', 'delete')),
      base jsonb,
      seq integer NOT NULL DEFAULT 1,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      hold_until timestamptz,
      last_error jsonb,
      lease_owner text,
      lease_token bigint,
      lease_expires_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      CONSTRAINT outbox_record_key UNIQUE (target, resource_type, legacy_id),
      CONSTRAINT outbox_lease_whole CHECK (
        (lease_owner IS NULL) = (lease_token IS NULL) AND (lease_token IS NULL) = (lease_expires_at IS NULL)
      )
    ) WITH (fillfactor = 80)`,
    // The claim walks this index in order and stops at its LIMIT. Held and leased rows are
    // filtered on the way rather than indexed out: their state depends on the clock (a lease
    // or hold ends by expiring, without an update), which a partial index cannot express, and
    // they number at most workers × batch size plus writes in progress.
    `CREATE INDEX outbox_due ON outbox (next_attempt_at, id)`,
    `CREATE SEQUENCE lease_tokens`,

    // Dead letters are kept after an operator resolves them (the audit trail), so the open ones
    // — the ones counted and listed — get a partial index that stays small.
    `CREATE TABLE dead_letters (
      id bigserial PRIMARY KEY,
      resource_type text NOT NULL,
      legacy_id text NOT NULL,
      target text NOT NULL CHECK (target IN ('legacy', 'medplum')),
      unit text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('upsert', 'delete')),
      base jsonb,
      attempts integer NOT NULL,
      reason jsonb NOT NULL,
      failed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'retried', 'discarded')),
      resolved_at timestamptz,
      note text,
      CONSTRAINT dead_letters_resolved CHECK ((status = 'open') = (resolved_at IS NULL))
    )`,
    `CREATE INDEX dead_letters_open ON dead_letters (id) WHERE status = 'open'`,

    // Append-only; read newest first, usually by type.
    `CREATE TABLE events (
      id bigserial PRIMARY KEY,
      type text NOT NULL,
      resource_type text,
      legacy_id text,
      unit text,
      data jsonb,
      at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,
    `CREATE INDEX events_type ON events (type, id)`,

    `CREATE TABLE cursors (
      name text PRIMARY KEY,
      value text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,

    // A single row (the check pins its key), so saving is an upsert on id 1 and two instances
    // saving at once cannot leave two plans.
    `CREATE TABLE plan (
      id integer PRIMARY KEY CHECK (id = 1),
      plan jsonb,
      updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,
  ],
};
