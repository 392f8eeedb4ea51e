import type { SearchRequest } from '@medplum/core';
import { Operator } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';

/** Filters a search walked in `_lastUpdated` order may carry: each is still matched exactly. */
const WALKABLE_FILTERS = new Set(['_lastUpdated', '_id', 'identifier']);
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/**
 * The stored resources of each type in `_lastUpdated` order: the test repository's stand-in for
 * the index a Medplum server pages `_sort=_lastUpdated` searches with. `MemoryRepository` copies
 * and sorts every resource of the type on each search, so paging through 100,000 resources cost
 * seconds a page and grew with the repository. The order is the scan's (`lastUpdated`, then the
 * type's insertion order: its sort is stable); the index only says where to start and in which
 * order to look, and each candidate is still matched against the whole search.
 *
 * @example
 * ```ts
 * const index = new LastUpdatedIndex();
 * index.put(patient);
 * index.candidates(parseSearchRequest('Patient?_sort=_lastUpdated'), () => 0); // { ids: [patient.id], exact: true }
 * ```
 */
export class LastUpdatedIndex {
  /** type → id → `meta.lastUpdated` in epoch milliseconds. */
  readonly #at = new Map<string, Map<string, number>>();
  /** type → ids in order, built on the first search after a change. */
  readonly #sorted = new Map<string, readonly { readonly at: number; readonly id: string }[]>();

  /**
   * Records a stored resource's `lastUpdated` (replacing the previous one).
   *
   * @param resource - The stored resource.
   */
  put(resource: Resource & { readonly id: string }): void {
    const at = this.#at.get(resource.resourceType) ?? new Map<string, number>();
    at.set(resource.id, Date.parse(resource.meta?.lastUpdated ?? '') || 0);
    this.#at.set(resource.resourceType, at);
    this.#sorted.delete(resource.resourceType);
  }

  /**
   * Forgets a resource (deleted or expunged).
   *
   * @param resourceType - Its type.
   * @param id - Its id.
   */
  remove(resourceType: string, id: string): void {
    if (this.#at.get(resourceType)?.delete(id) === true) this.#sorted.delete(resourceType);
  }

  /** Forgets everything. */
  clear(): void {
    this.#at.clear();
    this.#sorted.clear();
  }

  /**
   * The ids a search sorted by `_lastUpdated` (ascending, nothing else) may match, in the
   * scan's order, from the lower bound of its `_lastUpdated=ge|gt` filters; `undefined` when the
   * search is not one the index answers (another sort, includes, a total, other filters).
   * `exact` when the bound is all the search asks: every id then matches.
   *
   * @param search - The parsed search.
   * @param position - A resource's place in its type's insertion order.
   * @returns The candidate ids and whether they all match, or `undefined`.
   */
  candidates(
    search: SearchRequest,
    position: (resourceType: string, id: string) => number,
  ): { readonly ids: Iterable<string>; readonly exact: boolean } | undefined {
    const [rule, ...more] = search.sortRules ?? [];
    if (rule?.code !== '_lastUpdated' || rule.descending === true || more.length > 0) return undefined;
    if (search.include?.length || search.revInclude?.length) return undefined;
    if (search.total !== undefined && search.total !== 'none') return undefined;
    const filters = search.filters ?? [];
    if (!filters.every((filter) => WALKABLE_FILTERS.has(filter.code))) return undefined;
    const { resourceType } = search;
    let sorted = this.#sorted.get(resourceType);
    if (sorted === undefined) {
      sorted = [...(this.#at.get(resourceType) ?? new Map<string, number>())]
        .map(([id, at]) => ({ at, id, position: position(resourceType, id) }))
        .sort((a, b) => a.at - b.at || a.position - b.position)
        .map(({ at, id }) => ({ at, id }));
      this.#sorted.set(resourceType, sorted);
    }
    let from = 0;
    let exact = true;
    for (const filter of filters) {
      const bound =
        filter.code === '_lastUpdated' && ISO_UTC.test(filter.value) ? Date.parse(filter.value) : NaN;
      if (filter.operator === Operator.GREATER_THAN_OR_EQUALS && !Number.isNaN(bound))
        from = Math.max(from, firstAfter(sorted, bound, false));
      else if (filter.operator === Operator.GREATER_THAN && !Number.isNaN(bound))
        from = Math.max(from, firstAfter(sorted, bound, true));
      else exact = false;
    }
    return { ids: walk(sorted, from), exact };
  }
}

function* walk(sorted: readonly { readonly id: string }[], from: number): Generator<string> {
  for (let i = from; i < sorted.length; i += 1) yield (sorted[i] as { readonly id: string }).id;
}

/** The index of the first entry at or after `at` (strictly after with `strict`): a binary search. */
function firstAfter(sorted: readonly { readonly at: number }[], at: number, strict: boolean): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const value = sorted[middle]?.at ?? 0;
    if (value < at || (strict && value === at)) low = middle + 1;
    else high = middle;
  }
  return low;
}
