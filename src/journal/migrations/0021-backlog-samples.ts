import type { Migration } from './migrate.ts';

/**
 * The outbox's backlog over time, for operators' charts. The outbox itself only knows the
 * present (an entry is deleted once mirrored), and the mirror lag already has its samples
 * (`readiness_samples`); the backlog has none. A row per unit (and one for all units, unit
 * `''`) per step of time: whoever records first in a step writes it (the primary key), so any
 * number of instances and consoles recording together leave one series. Deleted by age.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const backlogSamples: Migration = {
  version: 21,
  name: 'backlog-samples',
  statements: [
    `CREATE TABLE backlog_samples (
      at timestamptz NOT NULL,
      unit text NOT NULL,
      pending integer NOT NULL,
      leased integer NOT NULL,
      dead integer NOT NULL,
      PRIMARY KEY (at, unit)
    )`,
  ],
};
