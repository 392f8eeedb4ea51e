import type { WithId } from '@medplum/core';
import type { Identifier, Resource } from '@medplum/fhirtypes';
import { ConflictError } from '../errors.ts';
import { legacyIdOf, runMapping } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { ChangeFeedsSettings } from './change-feeds-options.ts';
import type { FeedTally } from './feed-report.ts';
import { journalInbound, type ChangeFeedsDeps } from './inbound-change.ts';

/**
 * The name under which the Medplum feed of a resource type stores its cursor: the greatest
 * `meta.lastUpdated` it has journaled, as the server wrote it (so only the server's clock
 * is involved, never ours).
 *
 * @param resourceType - The resource type.
 * @returns The cursor's name in the store.
 * @internal
 * @example
 * ```ts
 * await store.getCursor(medplumCursorName('Patient')); // '2026-11-25T10:00:00.123Z'
 * ```
 */
export function medplumCursorName(resourceType: string): string {
  return `feed:medplum:${resourceType}`;
}

/**
 * One pass of the Medplum feed of one resource type: searches
 * `_lastUpdated=ge<cursor - overlapMs>&_sort=_lastUpdated&_count=<pageSize>`, follows the
 * `next` links, journals every resource, and stores the page's greatest `lastUpdated` once the
 * page is journaled.
 *
 * The overlap re-reads the window before the cursor: a resource stamped in the millisecond of
 * the last one seen (or committed a little out of timestamp order) is not missed; re-reads are
 * echoes. A resource updated while the pass pages moves past the pages already read (offset
 * paging shifts): its new `lastUpdated` is after the cursor, so the next pass reads it.
 *
 * A resource without the mapping's legacy identifier was created directly in Medplum: a legacy
 * id is allocated with `mapping.newLegacyId` and stamped on it (an update guarded by its
 * version), then journaled. When someone changed it meanwhile, it is left for the next pass.
 *
 * @param deps - Sides, store, mappings, routing.
 * @param resourceType - The resource type to read.
 * @param settings - Page size, pages per pass, overlap.
 * @param tally - Where outcomes are counted.
 * @returns When caught up or the pass's pages are read.
 * @throws What Medplum or the store threw; the stored cursor is where it was.
 * @internal
 * @example
 * ```ts
 * await pollMedplumFeed(deps, 'Patient', settings, tally);
 * ```
 */
export async function pollMedplumFeed<L>(
  deps: ChangeFeedsDeps<L>,
  resourceType: string,
  settings: ChangeFeedsSettings,
  tally: FeedTally,
): Promise<void> {
  const mapping = deps.mappings.get(resourceType);
  if (mapping === undefined) return;
  const name = medplumCursorName(resourceType);
  const stored = await deps.store.getCursor(name);
  const start = stored ?? settings.medplumSince;
  let cursor = start === undefined ? Number.NEGATIVE_INFINITY : Date.parse(start);
  const query = new URLSearchParams({ _sort: '_lastUpdated', _count: String(settings.pageSize) });
  // A stored cursor is re-read with the overlap; the first pass starts at `medplumSince` exactly.
  if (stored !== undefined)
    query.set('_lastUpdated', `ge${new Date(cursor - settings.overlapMs).toISOString()}`);
  else if (start !== undefined) query.set('_lastUpdated', `ge${start}`);
  let page = await deps.medplum.searchPage(resourceType, query);
  // The versions this pass's stamps created: a stamp moves a resource's lastUpdated past the
  // page being read, so the pass meets it again on a later page, as its own write.
  const stamped = new Set<string>();
  for (let pages = 1; ; pages += 1) {
    const queuedBefore = tally.queued;
    let newest: string | undefined;
    for (const resource of page.resources) {
      if (!stamped.has(versionKey(resource))) await journalResource(deps, mapping, resource, tally, stamped);
      const at = resource.meta?.lastUpdated;
      if (
        at !== undefined &&
        Date.parse(at) > cursor &&
        (newest === undefined || Date.parse(at) > Date.parse(newest))
      )
        newest = at;
    }
    if (tally.queued > queuedBefore) deps.notify();
    if (newest !== undefined) {
      await deps.store.setCursor(name, newest);
      cursor = Date.parse(newest);
    }
    if (page.next === undefined || pages >= settings.maxPagesPerPoll) return;
    page = await deps.medplum.searchPage(resourceType, new URL(page.next));
  }
}

async function journalResource<L>(
  deps: ChangeFeedsDeps<L>,
  mapping: ResourceMapping<L>,
  resource: WithId<Resource>,
  tally: FeedTally,
  stampedVersions: Set<string>,
): Promise<void> {
  const { resourceType } = resource;
  const carried = legacyIdOf(resource, mapping.identifierSystem);
  if (carried !== undefined) {
    await journalInbound(
      deps,
      { source: 'medplum', resourceType, legacyId: carried, kind: 'upsert', resource },
      tally,
    );
    return;
  }
  const allocate = mapping.newLegacyId?.bind(mapping);
  if (allocate === undefined) {
    tally.seen += 1;
    tally.skippedWithoutLegacyId += 1;
    return;
  }
  const details = { resourceType, medplumId: resource.id, side: 'medplum' as const };
  const legacyId = await runMapping('newLegacyId', () => allocate(resource), details);
  const stamped: WithId<Resource> = {
    ...resource,
    identifier: [
      ...((resource as { identifier?: Identifier[] }).identifier ?? []),
      { system: mapping.identifierSystem, value: legacyId },
    ],
  } as WithId<Resource>;
  // The identifier is stamped only once the change is known to need a mirror (a unit in a
  // stage that mirrors nothing, or a resource `unitOf` does not claim, keeps its resource as its
  // users wrote it; the id allocated for it is dropped, a gap in a sequence at worst). So
  // `unitOf` sees the resource as read: with the stamp, a filter "carries our identifier" would
  // claim every resource of every other application.
  await journalInbound(
    deps,
    { source: 'medplum', resourceType, legacyId, kind: 'upsert', resource },
    tally,
    async () => {
      try {
        const updated = await deps.medplum.update(stamped, resource.meta?.versionId, {
          ...details,
          legacyId,
        });
        stampedVersions.add(versionKey(updated));
        return true;
      } catch (err) {
        // Changed since the page was read: the newer version comes in a later page or pass.
        if (err instanceof ConflictError) return false;
        throw err;
      }
    },
  );
}

/** A resource's id and version, as one key. */
function versionKey(resource: WithId<Resource>): string {
  return `${resource.id}@${resource.meta?.versionId ?? ''}`;
}
