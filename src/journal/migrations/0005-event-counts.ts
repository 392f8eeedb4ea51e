import type { Migration } from './migrate.ts';

/**
 * Readiness counts a unit's events of one type since an instant (conflicts, divergence over the
 * window). The events table grows for the whole parallel run; this index keeps those counts to
 * the window's rows instead of every event of the type.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [initial, applyingHash, linkBase, holdCount, eventCounts]);
 * ```
 */
export const eventCounts: Migration = {
  version: 5,
  name: 'event-counts',
  statements: ['CREATE INDEX events_type_unit_at ON events (type, unit, at)'],
};
