import type { Migration } from './migrate.ts';

/**
 * A dead letter an operator resolved (one side's copy written to the other, or a merged
 * resource to both) is closed as `resolved`, with the resolution that decided it (`legacy`,
 * `medplum` or `merged`). Before, it was closed as `discarded`, so a letter whose record was
 * repaired read, in the CLI, the console and the audit trail, like one whose record was given up.
 * Letters resolved before this migration stay `discarded` (their note is all that tells).
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const resolvedLetters: Migration = {
  version: 58,
  name: 'resolved-letters',
  statements: [
    `ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_status_check`,
    `ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_status_check
       CHECK (status IN ('open', 'retried', 'discarded', 'resolved'))`,
    `ALTER TABLE dead_letters ADD COLUMN resolution text
       CHECK (resolution IN ('legacy', 'medplum', 'merged'))`,
    `ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_resolution
       CHECK ((status = 'resolved') = (resolution IS NOT NULL))`,
  ],
};
