import type { Migration } from './migrate.ts';

/**
 * Whether the other direction of a record (its entry towards the other side) is leased now, read
 * with a snapshot of its own. A claim or a commit asks this after taking the record's advisory
 * lock: the statement's own snapshot predates the lock, so it could miss a lease that another
 * transaction committed (and released the lock with) in between, and both directions of one
 * record would be mirrored at once. A VOLATILE plpgsql function takes a fresh snapshot for its
 * query and is never inlined into the caller's; `SET search_path FROM CURRENT` pins the schema
 * it was created in.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const otherDirection: Migration = {
  version: 6,
  name: 'other-direction',
  statements: [
    `CREATE FUNCTION other_direction_leased(record_type text, record_id text, record_target text)
       RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $body$
     BEGIN
       RETURN EXISTS (
         SELECT 1 FROM outbox
         WHERE target = CASE record_target WHEN 'medplum' THEN 'legacy' ELSE 'medplum' END
           AND resource_type = record_type AND legacy_id = record_id
           AND lease_expires_at > clock_timestamp()
       );
     END
     $body$`,
  ],
};
