/**
 * What one pass of the change feeds did, counted per outcome. Every change a feed reads ends
 * in exactly one of `queued`, `echoes`, `skippedByStage`, `skippedWithoutUnit`,
 * `skippedWithoutLegacyId` or `deletesHeld`, or is read again after an error.
 *
 * @example
 * ```ts
 * const counts: FeedCounts = { seen: 3, queued: 1, echoes: 2, skippedByStage: 0, skippedWithoutUnit: 0, skippedWithoutLegacyId: 0, deletesHeld: 0, errors: 0 };
 * ```
 */
export interface FeedCounts {
  /** Changes read from either system (re-reads of the overlap window included). */
  readonly seen: number;
  /** Changes journaled as outbox entries, for the drainer to mirror. */
  readonly queued: number;
  /** Changes that were the library's own mirrors (or that the other side already holds). */
  readonly echoes: number;
  /** Changes of records whose unit's stage mirrors nothing (`legacy-only`, `medplum-only`). */
  readonly skippedByStage: number;
  /** Changes whose unit `unitOf` could not tell. */
  readonly skippedWithoutUnit: number;
  /**
   * Medplum resources without the legacy identifier whose mapping has no `newLegacyId` to
   * allocate one.
   */
  readonly skippedWithoutLegacyId: number;
  /**
   * Deletes not propagated by their mapping's delete policy (`review` or `ignore`): nothing was
   * deleted on the other side; each left a `delete-review` or `delete-ignored` event.
   */
  readonly deletesHeld: number;
  /** Feeds that failed during the pass; each resumes from its stored cursor next time. */
  readonly errors: number;
}

/**
 * A feed that failed during a pass, and why (the error's name and message; never values).
 *
 * @example
 * ```ts
 * const failure: FeedFailure = { feed: 'medplum:Patient', name: 'UnavailableError', message: 'Medplum answered 503' };
 * ```
 */
export interface FeedFailure {
  /** The feed: `legacy:<type>`, `medplum:<type>` or `existence:<type>`. */
  readonly feed: string;
  /** The error's name. */
  readonly name: string;
  /** The error's message. */
  readonly message: string;
}

/**
 * The result of `writer.pollFeeds()`: the pass's counts and its failures.
 *
 * @example
 * ```ts
 * const report: FeedReport = await feeds.pollOnce();
 * if (report.errors > 0) console.warn(report.failures);
 * ```
 */
export interface FeedReport extends FeedCounts {
  /** One entry per failed feed. */
  readonly failures: readonly FeedFailure[];
}

/**
 * All counts zero: no feed has run.
 *
 * @example
 * ```ts
 * const counts = feeds?.counts ?? NO_FEED_COUNTS;
 * ```
 */
export const NO_FEED_COUNTS: FeedCounts = Object.freeze({
  seen: 0,
  queued: 0,
  echoes: 0,
  skippedByStage: 0,
  skippedWithoutUnit: 0,
  skippedWithoutLegacyId: 0,
  deletesHeld: 0,
  errors: 0,
});

/** Mutable counts of one pass. @internal */
export type FeedTally = { -readonly [K in keyof FeedCounts]: FeedCounts[K] } & { failures: FeedFailure[] };

/**
 * Fresh zero counts.
 *
 * @returns A tally to count into.
 * @internal
 * @example
 * ```ts
 * const tally = newTally();
 * tally.seen += 1;
 * ```
 */
export function newTally(): FeedTally {
  return { ...NO_FEED_COUNTS, failures: [] };
}

/**
 * Adds one pass's counts to running totals.
 *
 * @param total - The totals so far.
 * @param pass - The pass to add.
 * @returns The new totals.
 * @internal
 * @example
 * ```ts
 * totals = addCounts(totals, report);
 * ```
 */
export function addCounts(total: FeedCounts, pass: FeedCounts): FeedCounts {
  return {
    seen: total.seen + pass.seen,
    queued: total.queued + pass.queued,
    echoes: total.echoes + pass.echoes,
    skippedByStage: total.skippedByStage + pass.skippedByStage,
    skippedWithoutUnit: total.skippedWithoutUnit + pass.skippedWithoutUnit,
    skippedWithoutLegacyId: total.skippedWithoutLegacyId + pass.skippedWithoutLegacyId,
    deletesHeld: total.deletesHeld + pass.deletesHeld,
    errors: total.errors + pass.errors,
  };
}
