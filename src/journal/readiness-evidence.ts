/*
 * Readiness evidence as the journal keeps it: samples written by every instance (each applied
 * mirror's lag, each comparison of the two copies), read back by unit over a window. Conflicts,
 * divergence findings, dead letters and pending mirrors are already in the journal.
 */

/**
 * One piece of evidence: an applied mirror's lag (`value` in milliseconds, from the write's
 * journal entry to the applied mirror), or a comparison of the two copies (`value` 1 when they
 * differed, 0 when they agreed).
 *
 * @example
 * ```ts
 * await store.recordSamples([{ unit: 'north', kind: 'mirror-lag', value: 120 }]);
 * ```
 */
export interface ReadinessSample {
  readonly unit: string;
  readonly kind: 'mirror-lag' | 'comparison';
  readonly value: number;
}

/**
 * A unit's samples over a window, every instance's.
 *
 * @example
 * ```ts
 * const { mirrorLagMs, comparisons } = await store.readinessEvidence({ unit: 'north', since });
 * ```
 */
export interface ReadinessEvidence {
  /** Percentiles of the applied mirrors' lag (`undefined` without samples), and their count. */
  readonly mirrorLagMs: {
    readonly p50: number | undefined;
    readonly p95: number | undefined;
    readonly samples: number;
  };
  /** Comparisons of the two copies (read-backs and shadow reads). */
  readonly comparisons: number;
}

/**
 * The `p`-th percentile of sorted values, as PostgreSQL's `percentile_disc` gives it: the first
 * value whose cumulative share reaches `p`.
 *
 * @param sorted - Values in increasing order.
 * @param p - From 0 to 1.
 * @returns The value, `undefined` for none.
 * @example
 * ```ts
 * percentileOf([1, 2, 3, 4], 0.5); // 2
 * ```
 */
export function percentileOf(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}
