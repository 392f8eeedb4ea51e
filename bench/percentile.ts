/**
 * The nearest-rank percentile of a sample: the smallest value with at least `p` percent of
 * the sample at or below it. With 1000 samples, p99 is the 990th smallest.
 *
 * @param values - The sample (not modified).
 * @param p - The percentile, 0 < p <= 100.
 * @returns The value.
 * @example
 * ```ts
 * percentile([5, 1, 3, 2, 4], 50); // 3
 * ```
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of an empty sample');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/**
 * The arithmetic mean.
 *
 * @param values - The sample.
 * @returns The mean (0 for an empty sample).
 * @example
 * ```ts
 * mean([1, 2, 3]); // 2
 * ```
 */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, v) => sum + v, 0) / values.length;
}
