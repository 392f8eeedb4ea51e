import type { Migration } from './migrate.ts';

/**
 * The Medplum copies a reconciliation saw in its first pass, by job and legacy id (see
 * `SeenCopy`): its pass over the legacy side takes each record's copy from here instead of
 * searching Medplum again, and what no record took is a copy whose record is gone. Rows live
 * only while their job runs (dropped when it is done or cancelled, and with the job).
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const seenCopies: Migration = {
  version: 51,
  name: 'seen-copies',
  statements: [
    `CREATE TABLE job_seen_copies (
       job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
       legacy_id text NOT NULL,
       medplum_id text NOT NULL,
       medplum_version text,
       unit text NOT NULL,
       PRIMARY KEY (job_id, legacy_id)
     )`,
  ],
};
