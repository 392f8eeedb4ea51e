import type { Migration } from './migrate.ts';

/**
 * Units whose mirroring an operator paused, shared by every instance: a row per paused unit.
 * Claims and inline leases skip the outbox entries of a unit listed here (a `NOT EXISTS` on this
 * small table's primary key), so a pause holds every drainer and every writer at once, and
 * nothing is lost: the entries wait in the outbox until the row is deleted (resume).
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const unitPauses: Migration = {
  version: 27,
  name: 'unit-pauses',
  statements: [
    `CREATE TABLE unit_pauses (
      unit text PRIMARY KEY,
      paused_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      paused_by text,
      reason text
    )`,
    // Retention deletes closed dead letters by age, oldest first; open ones are never deleted.
    `CREATE INDEX dead_letters_closed ON dead_letters (resolved_at, id) WHERE status <> 'open'`,
    // Retention deletes events by age, oldest first, without reading the table in id order.
    `CREATE INDEX events_at ON events (at)`,
    // Retention deletes readiness samples by age.
    `CREATE INDEX readiness_samples_at ON readiness_samples (at)`,
  ],
};
