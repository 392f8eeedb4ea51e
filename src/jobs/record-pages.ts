import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { InvalidInputError } from '../errors.ts';
import type { LegacyAdapter, LegacyRecord } from '../sides/legacy-adapter.ts';
import { callLegacy } from '../sides/legacy-failure.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { withRetries, type RetryPolicy } from '../mirror/retry-policy.ts';

/**
 * One page of a job's scan and where the next starts (`undefined`: it was the last).
 *
 * @example
 * ```ts
 * const page: RecordPage<string> = { items: ['a'], next: undefined };
 * ```
 */
export interface RecordPage<T> {
  readonly items: readonly T[];
  readonly next: string | undefined;
}

/**
 * Reads one page of a scan, strictly after a cursor it returned before.
 *
 * @example
 * ```ts
 * const read: ReadPage<string> = async (after, limit) => ({ items: [], next: undefined });
 * ```
 */
export type ReadPage<T> = (after: string | undefined, limit: number) => Promise<RecordPage<T>>;

/**
 * The legacy side of a type in keyset pages: the adapter's `scan` when it has one; otherwise
 * its change feed from the start (`changesSince(undefined)`), which sees each live record at
 * its latest write, skips deletes, and on a table feed reads in (updated-at, id) order — a
 * record written during the scan moves to its end and is read again, harmlessly.
 *
 * @param legacy - The adapter.
 * @param resourceType - The type to read.
 * @returns The page reader.
 * @example
 * ```ts
 * const page = await legacyPages(legacy, 'Patient')(undefined, 500);
 * ```
 */
export function legacyPages<L>(legacy: LegacyAdapter<L>, resourceType: string): ReadPage<LegacyRecord<L>> {
  const details = { side: 'legacy' as const, resourceType };
  const scan = legacy.scan?.bind(legacy);
  if (scan !== undefined) {
    return async (after, limit) => {
      const page = await callLegacy(() => scan(resourceType, { after, limit }), details);
      return { items: page.records, next: page.next };
    };
  }
  return async (after, limit) => {
    const page = await callLegacy(() => legacy.changesSince(resourceType, after, limit), details);
    const items = page.changes.flatMap((change) =>
      change.kind === 'upsert' && change.record !== undefined ? [change.record] : [],
    );
    return { items, next: page.changes.length < limit ? undefined : page.cursor };
  };
}

/** Where a Medplum scan stands: the `lastUpdated` reached and how many resources of it were read. */
interface MedplumCursor {
  readonly at: string;
  readonly skip: number;
}

/**
 * Medplum's resources of a type in pages ordered by `_lastUpdated`, each page
 * searched from the cursor's instant (`_lastUpdated=ge…`), skipping the resources of that
 * instant already read: the offset never grows past the resources sharing one millisecond, so
 * paging stays cheap however deep the scan (an unbounded `_offset` is refused by the server past
 * 10,000 and costs more with every page). A resource updated during the scan moves to its end
 * and is read again. Resources sharing one `lastUpdated` must come in the same order on every
 * search (a server sorting ties by id, or by insertion); a second sort key is not used because
 * servers differ in honouring one.
 *
 * @param medplum - The Medplum side.
 * @param resourceType - The type to read.
 * @param options - `retry`: how a search that failed transiently is retried; `elements`: only
 *   these elements (`_elements`, cheap facts).
 * @returns The page reader.
 * @example
 * ```ts
 * const page = await medplumPages(side, 'Patient', { retry: retryPolicyOf() })(undefined, 1000);
 * ```
 */
export function medplumPages(
  medplum: MedplumSide,
  resourceType: string,
  options: { readonly retry: RetryPolicy; readonly elements?: string | undefined },
): ReadPage<WithId<Resource>> {
  return async (after, limit) => {
    const cursor = after === undefined ? undefined : decodeMedplumCursor(after);
    const query = new URLSearchParams({ _sort: '_lastUpdated', _count: String(limit) });
    if (cursor !== undefined) {
      query.set('_lastUpdated', `ge${cursor.at}`);
      if (cursor.skip > 0) query.set('_offset', String(cursor.skip));
    }
    if (options.elements !== undefined) query.set('_elements', options.elements);
    const { value: page } = await withRetries(() => medplum.searchPage(resourceType, query), options.retry);
    const items = page.resources;
    if (items.length < limit) return { items, next: undefined };
    const last = items.at(-1)?.meta?.lastUpdated ?? cursor?.at ?? '';
    const same = items.filter((resource) => resource.meta?.lastUpdated === last).length;
    const skip = same + (cursor?.at === last ? cursor.skip : 0);
    return { items, next: JSON.stringify({ at: last, skip } satisfies MedplumCursor) };
  };
}

function decodeMedplumCursor(text: string): MedplumCursor {
  try {
    const parsed = JSON.parse(text) as Partial<MedplumCursor>;
    if (typeof parsed.at === 'string' && Number.isSafeInteger(parsed.skip)) return parsed as MedplumCursor;
  } catch {
    // Reported below.
  }
  throw new InvalidInputError('cursor', 'is not a cursor of a Medplum scan', { side: 'medplum' });
}
