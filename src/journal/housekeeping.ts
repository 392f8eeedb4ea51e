/*
 * Housekeeping of a journal that runs for months: per-unit pauses of mirroring, shared by every
 * instance, and retention of what grows without bound (events, closed dead letters, readiness
 * samples). Kept apart from the outbox and link contract: nothing here is needed to mirror.
 */

/**
 * A unit whose mirroring an operator paused.
 *
 * @example
 * ```ts
 * for (const pause of await store.unitPauses()) console.log(pause.unit, pause.since, pause.by);
 * ```
 */
export interface UnitPause {
  /** The unit. */
  readonly unit: string;
  /** When it was paused (ISO 8601). */
  readonly since: string;
  /** Who paused it, as given. */
  readonly by: string | undefined;
  /** Why, as given (no PHI). */
  readonly reason: string | undefined;
}

/**
 * How much of one kind of journal row to keep: rows older than `maxAgeMs`, and rows beyond the
 * newest `maxCount`, may be deleted. Either, both or neither.
 *
 * @example
 * ```ts
 * const rule: RetentionRule = { maxAgeMs: 30 * 86_400_000, maxCount: 1_000_000 };
 * ```
 */
export interface RetentionRule {
  /** Delete rows older than this many milliseconds. */
  readonly maxAgeMs?: number | undefined;
  /** Keep at most this many of the newest rows. */
  readonly maxCount?: number | undefined;
}

/**
 * What {@link HousekeepingStore.prune} may delete. A kind left out is kept whole.
 *
 * @example
 * ```ts
 * const rules: RetentionRules = { events: { maxAgeMs: 90 * 86_400_000 }, deadLetters: { maxCount: 10_000 } };
 * ```
 */
export interface RetentionRules {
  /**
   * Events (conflicts, divergence, dead letters, held deletes…), by the time they were recorded.
   * Stage changes are never deleted: they are the plan's history.
   */
  readonly events?: RetentionRule | undefined;
  /** Closed dead letters (retried, discarded), by the time they were closed. Open ones stay. */
  readonly deadLetters?: RetentionRule | undefined;
  /** Readiness samples (mirror lag, comparisons), by the time they were taken. */
  readonly samples?: RetentionRule | undefined;
}

/**
 * What one {@link HousekeepingStore.prune} call deleted, per kind, and whether rows beyond the
 * rules remain (it stopped at its limit).
 *
 * @example
 * ```ts
 * const { events, deadLetters, samples, more } = await store.prune(rules, 1000);
 * ```
 */
export interface PruneCounts {
  /** Events deleted. */
  readonly events: number;
  /** Closed dead letters deleted. */
  readonly deadLetters: number;
  /** Readiness samples deleted. */
  readonly samples: number;
  /** Whether a kind deleted as many rows as the limit allowed (another batch may find more). */
  readonly more: boolean;
}

/**
 * The housekeeping part of the store contract (see `SyncStore`), checked by the same suite
 * against every implementation.
 *
 * @example
 * ```ts
 * await store.pauseUnit('north', { by: 'ops', reason: 'legacy maintenance' });
 * await store.prune({ events: { maxAgeMs: 90 * 86_400_000 } }, 1000);
 * ```
 */
export interface HousekeepingStore {
  /**
   * Pauses a unit's mirroring for every instance: no outbox entry of the unit is claimed or
   * leased inline until {@link HousekeepingStore.resumeUnit}; entries keep being recorded (writes,
   * feeds), so nothing is lost. Pausing a paused unit keeps its first pause.
   */
  pauseUnit(
    unit: string,
    note?: { readonly by?: string | undefined; readonly reason?: string | undefined },
  ): Promise<UnitPause>;
  /** Resumes a paused unit; `false` when it was not paused. */
  resumeUnit(unit: string): Promise<boolean>;
  /** The paused units, by name. */
  unitPauses(): Promise<UnitPause[]>;
  /**
   * Deletes, per kind, at most `limit` rows that the rules do not keep, oldest first (one short
   * statement per kind).
   */
  prune(rules: RetentionRules, limit: number): Promise<PruneCounts>;
}
