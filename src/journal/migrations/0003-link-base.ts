import type { Migration } from './migrate.ts';

/**
 * The base snapshot: the FHIR content both systems agreed on at a record's last sync, kept
 * with its link so a conflict resolver (a three-way merge in particular) can tell which side
 * changed which field. Null when the writer keeps hashes only (`baseSnapshot: 'hash-only'`).
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [initial, applyingHash, linkBase]);
 * ```
 */
export const linkBase: Migration = {
  version: 3,
  name: 'link-base',
  statements: ['ALTER TABLE links ADD COLUMN base jsonb'],
};
