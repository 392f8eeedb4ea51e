import type { Migration } from './migrate.ts';

/**
 * How many intents hold an entry while their authority writes run. An entry is claimable only
 * when every holder has committed (or the hold expired: a holder that crashed). One hold time
 * alone let one writer's commit, or a change feed's intent, release another writer's hold, and
 * the drainer could then mirror the record before that writer's write landed: a lost mirror.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [initial, applyingHash, linkBase, holdCount]);
 * ```
 */
export const holdCount: Migration = {
  version: 4,
  name: 'hold-count',
  statements: ['ALTER TABLE outbox ADD COLUMN holders integer NOT NULL DEFAULT 0'],
};
