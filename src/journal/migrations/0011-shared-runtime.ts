import type { Migration } from './migrate.ts';

/**
 * What service instances share besides the plan: readiness evidence and feed leases.
 *
 * - `readiness_samples`: one row per applied mirror (its lag) and per comparison of the two
 *   copies (divergent or not), written by whichever instance did it, so `readiness` on any
 *   instance — an admin process that mirrors nothing included — judges on every instance's
 *   evidence. Read by unit over a window (the index), deleted by age (retention).
 * - `feed_leases`: one poller per feed (side and resource type) across instances. A lease has
 *   an owner, a token from the outbox's sequence and an expiry; another instance takes it over
 *   once it expires (its holder died or hung), and a holder renews it before each pass.
 *
 * @example
 * ```ts
 * await migrate(sql, 'dualwrite', [...JOURNAL_MIGRATIONS]);
 * ```
 */
export const sharedRuntime: Migration = {
  version: 11,
  name: 'shared-runtime',
  statements: [
    `CREATE TABLE readiness_samples (
      id bigserial PRIMARY KEY,
      unit text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('mirror-lag', 'comparison')),
      value double precision NOT NULL,
      at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,
    `CREATE INDEX readiness_samples_unit_at ON readiness_samples (kind, unit, at)`,
    `CREATE TABLE feed_leases (
      name text PRIMARY KEY,
      owner text NOT NULL,
      token bigint NOT NULL,
      expires_at timestamptz NOT NULL,
      acquired_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,
  ],
};
