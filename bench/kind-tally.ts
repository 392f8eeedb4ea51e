/** Count and summed time of one kind of operation (a statement kind, an HTTP method + status). */
export interface KindTotal {
  count: number;
  ms: number;
}

/** Counts and times by kind. */
export type KindTally = Map<string, KindTotal>;

/**
 * Adds operations of one kind to a tally.
 *
 * @param tally - The tally (changed).
 * @param kind - The kind.
 * @param count - How many.
 * @param ms - Their summed time.
 */
export function addKind(tally: KindTally, kind: string, count: number, ms: number): void {
  const seen = tally.get(kind) ?? { count: 0, ms: 0 };
  tally.set(kind, { count: seen.count + count, ms: seen.ms + ms });
}

/**
 * Adds every kind of `from` to `into`.
 *
 * @param into - The tally (changed).
 * @param from - The tally added.
 */
export function mergeKinds(into: KindTally, from: ReadonlyMap<string, KindTotal>): void {
  for (const [kind, { count, ms }] of from) addKind(into, kind, count, ms);
}

/**
 * A tally as text, most frequent first: `kind ×count-per-unit (mean ms each)`.
 *
 * @param tally - The tally.
 * @param units - What the counts are divided by (calls, entries).
 * @returns The text.
 * @example
 * ```ts
 * describeKinds(new Map([['GET 200', { count: 600, ms: 6000 }]]), 600); // 'GET 200 ×1.00 (10.0 ms)'
 * ```
 */
export function describeKinds(tally: ReadonlyMap<string, KindTotal>, units: number): string {
  return [...tally]
    .sort((a, b) => b[1].count - a[1].count)
    .map(([kind, { count, ms }]) => `${kind} ×${(count / units).toFixed(2)} (${(ms / count).toFixed(1)} ms)`)
    .join(', ');
}
