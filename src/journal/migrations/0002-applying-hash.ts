import type { Migration } from './migrate.ts';

/**
 * The content a lease is about to write to the target, recorded just before the write. After
 * a crash, or a lost answer, the next attempt finds the target holding exactly that content and
 * knows the change was its own, not a conflict.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [initial, applyingHash]);
 * ```
 */
export const applyingHash: Migration = {
  version: 2,
  name: 'applying-hash',
  statements: ['ALTER TABLE outbox ADD COLUMN applying_hash text'],
};
