import type { Migration } from './migrate.ts';

/**
 * The W3C `traceparent` of the write that owes an outbox entry, so the span of each attempt at
 * the entry — inline, or in a drainer on another instance hours later — links to the write's
 * span. NULL when nothing recorded spans; a newer write's replaces it as the entry coalesces.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const traceParent: Migration = {
  version: 20,
  name: 'trace-parent',
  statements: ['ALTER TABLE outbox ADD COLUMN trace_parent text'],
};
