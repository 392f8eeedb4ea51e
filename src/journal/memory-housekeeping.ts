import type { PruneCounts, RetentionRule, RetentionRules, UnitPause } from './housekeeping.ts';

/**
 * `MemoryStore`'s housekeeping: the paused units, and retention over the store's own arrays and
 * maps (handed over at construction), with the semantics of `PostgresStore`.
 *
 * @internal
 */
export class MemoryHousekeeping {
  readonly #pauses = new Map<string, UnitPause>();
  readonly #rows: MemoryRows;

  /**
   * @param rows - The store's events, dead letters and samples, pruned in place.
   */
  constructor(rows: MemoryRows) {
    this.#rows = rows;
  }

  /** Whether a unit is paused. */
  paused(unit: string): boolean {
    return this.#pauses.has(unit);
  }

  /** {@inheritDoc HousekeepingStore.pauseUnit} */
  pauseUnit(
    unit: string,
    note: { readonly by?: string | undefined; readonly reason?: string | undefined } = {},
  ): UnitPause {
    const held = this.#pauses.get(unit);
    if (held !== undefined) return held;
    const pause: UnitPause = { unit, since: new Date().toISOString(), by: note.by, reason: note.reason };
    this.#pauses.set(unit, pause);
    return pause;
  }

  /** {@inheritDoc HousekeepingStore.resumeUnit} */
  resumeUnit(unit: string): boolean {
    return this.#pauses.delete(unit);
  }

  /** {@inheritDoc HousekeepingStore.unitPauses} */
  unitPauses(): UnitPause[] {
    return [...this.#pauses.values()].sort((a, b) => (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0));
  }

  /** {@inheritDoc HousekeepingStore.prune} */
  prune(rules: RetentionRules, limit: number): PruneCounts {
    const { events, letters, samples } = this.#rows;
    const eventIds = doomed(
      events
        .filter((event) => event.type !== 'stage-change')
        .map((event) => ({ id: Number(event.id), at: Date.parse(event.at) })),
      rules.events,
      limit,
    );
    removeWhere(events, (event) => eventIds.has(Number(event.id)));
    const letterIds = doomed(
      [...letters.values()]
        .filter((letter) => letter.status !== 'open' && letter.resolvedAt !== undefined)
        .map((letter) => ({ id: Number(letter.id), at: Date.parse(letter.resolvedAt ?? '') })),
      rules.deadLetters,
      limit,
    );
    for (const id of letterIds) letters.delete(String(id));
    const sampleIds = doomed(
      samples.map((sample, i) => ({ id: i, at: sample.at })),
      rules.samples,
      limit,
    );
    let i = 0;
    removeWhere(samples, () => sampleIds.has(i++));
    const counts = { events: eventIds.size, deadLetters: letterIds.size, samples: sampleIds.size };
    return { ...counts, more: Object.values(counts).some((n) => n >= limit) };
  }
}

/** The rows a {@link MemoryHousekeeping} prunes, owned by the store. */
export interface MemoryRows {
  readonly events: { readonly id: string; readonly type: string; readonly at: string }[];
  readonly letters: Map<
    string,
    { readonly id: string; readonly status: string; readonly resolvedAt: string | undefined }
  >;
  readonly samples: { readonly at: number }[];
}

/** The ids a rule does not keep, at most `limit`: too old (oldest first), then beyond the newest `maxCount`. */
function doomed(
  rows: readonly { readonly id: number; readonly at: number }[],
  rule: RetentionRule | undefined,
  limit: number,
): Set<number> {
  const ids = new Set<number>();
  if (rule === undefined) return ids;
  const now = Date.now();
  if (rule.maxAgeMs !== undefined) {
    const old = rows.filter((row) => row.at < now - (rule.maxAgeMs ?? 0)).sort((a, b) => a.at - b.at);
    for (const row of old.slice(0, limit)) ids.add(row.id);
  }
  if (rule.maxCount !== undefined) {
    const byId = [...rows].sort((a, b) => a.id - b.id);
    for (const row of byId.slice(0, Math.max(byId.length - rule.maxCount, 0))) {
      if (ids.size >= limit) break;
      ids.add(row.id);
    }
  }
  return ids;
}

function removeWhere<T>(rows: T[], gone: (row: T) => boolean): void {
  let kept = 0;
  for (const row of rows) if (!gone(row)) rows[kept++] = row;
  rows.length = kept;
}
