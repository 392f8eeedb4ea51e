import type { Migration } from './migrate.ts';

/**
 * The lease that moved an entry to the dead letters, kept on the letter. Recording a dead letter
 * is retried when the journal fails at that moment; when the first try committed and only its
 * answer was lost, the repeat finds the entry gone and recognises its own letter by this token,
 * so it answers `done` (and the letter is announced) rather than `fenced`. Tokens come from one
 * sequence, so a token names one lease.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const letterLease: Migration = {
  version: 48,
  name: 'letter-lease',
  statements: [
    `ALTER TABLE dead_letters ADD COLUMN lease_token bigint`,
    `CREATE INDEX dead_letters_lease_token ON dead_letters (lease_token) WHERE lease_token IS NOT NULL`,
  ],
};
