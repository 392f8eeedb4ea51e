import type { Migration } from './migrate.ts';

/**
 * One open dead letter per record and failure: a repeat of the same failure (same target, kind
 * and reason) of a record with an open letter counts on that letter (`repeats`, `last_failed_at`)
 * instead of opening a second one. A feed that re-reads its overlap after a refusal queued the
 * record again, and each refusal opened a letter of its own for one failure.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const letterRepeats: Migration = {
  version: 56,
  name: 'letter-repeats',
  statements: [
    `ALTER TABLE dead_letters ADD COLUMN repeats integer NOT NULL DEFAULT 0`,
    `ALTER TABLE dead_letters ADD COLUMN last_failed_at timestamptz`,
  ],
};
