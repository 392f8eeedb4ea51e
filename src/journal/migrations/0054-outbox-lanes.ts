import type { Migration } from './migrate.ts';

/**
 * Outbox lanes: a backfill on a Medplum client of its own queues its records in a lane named
 * after its job, so that the drainer it runs on that client applies them (its own user, its own
 * quota) and the writer's drainers do not. A lane is held by the processes that drain it, each
 * renewing a row of `lane_holders`; an entry whose lane nobody holds (the job ended, its process
 * died) is claimed by every drainer, so nothing is stranded. A live write of the record takes
 * its entry out of the lane (one entry per record and target: nothing reorders).
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const outboxLanes: Migration = {
  version: 54,
  name: 'outbox-lanes',
  statements: [
    `ALTER TABLE outbox ADD COLUMN lane text`,
    `CREATE INDEX outbox_lane ON outbox (lane, next_attempt_at, id) WHERE lane IS NOT NULL`,
    `CREATE TABLE lane_holders (
      lane text NOT NULL,
      owner text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (lane, owner)
    )`,
  ],
};
