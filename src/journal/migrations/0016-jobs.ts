import type { Migration } from './migrate.ts';

/**
 * Jobs (backfills and reconciliations) and their pages. A page row is written when a worker
 * takes it and completed once: its counts reach the job in the same transaction that marks it
 * done, fenced by its lease token (from the outbox's token sequence), so a page taken over
 * after a crash is counted once. Pages of a finished job are kept for operators (one small row
 * per few hundred records).
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const jobs: Migration = {
  version: 16,
  name: 'jobs',
  statements: [
    `CREATE TABLE jobs (
       id bigserial PRIMARY KEY,
       kind text NOT NULL,
       resource_type text NOT NULL,
       unit text,
       direction text NOT NULL,
       sample_size integer NOT NULL,
       state text NOT NULL DEFAULT 'running',
       cursor text,
       scan_complete boolean NOT NULL DEFAULT false,
       pages integer NOT NULL DEFAULT 0,
       pages_done integer NOT NULL DEFAULT 0,
       counts jsonb NOT NULL DEFAULT '{}',
       samples jsonb NOT NULL DEFAULT '{}',
       reason text,
       created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       finished_at timestamptz
     )`,
    'CREATE INDEX jobs_scope ON jobs (resource_type, unit, kind, id)',
    `CREATE TABLE job_pages (
       job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
       page integer NOT NULL,
       after text,
       scanned boolean NOT NULL DEFAULT false,
       done boolean NOT NULL DEFAULT false,
       lease_owner text NOT NULL,
       lease_token bigint NOT NULL,
       lease_expires_at timestamptz NOT NULL,
       PRIMARY KEY (job_id, page)
     )`,
  ],
};
