import type { ChangeFeedsSettings } from './change-feeds-options.ts';
import type { FeedTally } from './feed-report.ts';
import { journalInbound, type ChangeFeedsDeps } from './inbound-change.ts';

/**
 * Finds Medplum resources deleted directly in Medplum, which a `_lastUpdated` search never
 * shows (and Medplum has no type-level history to read deletes from): walks the links of a
 * resource type, `pageSize` at a time, asks Medplum for those ids in one `_id` search, and
 * journals a delete towards the legacy system for each linked resource that is gone.
 *
 * A delete is destructive, so a resource missing from the search is read once more by id
 * before its delete is journaled: only a 404 or 410 counts, never a search that lagged or a
 * page that came back short.
 *
 * The walk restarts from the first link each check: a check is bounded by the number of links
 * (one search per `pageSize` links), which is why it runs every `existenceCheckIntervalMs`,
 * not every pass.
 *
 * @param deps - Sides, store, mappings, routing.
 * @param resourceType - The resource type whose links to check.
 * @param settings - Page size.
 * @param tally - Where outcomes are counted.
 * @returns When every link was checked.
 * @throws What Medplum or the store threw.
 * @internal
 * @example
 * ```ts
 * await checkExistence(deps, 'Patient', settings, tally);
 * ```
 */
export async function checkExistence<L>(
  deps: ChangeFeedsDeps<L>,
  resourceType: string,
  settings: ChangeFeedsSettings,
  tally: FeedTally,
): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const links = await deps.store.listLinks(resourceType, { after, limit: settings.pageSize });
    if (links.length === 0) return;
    const query = new URLSearchParams({
      _id: links.map((link) => link.medplumId).join(','),
      _count: String(links.length),
    });
    const found = await deps.medplum.searchPage(resourceType, query);
    const present = new Set(found.resources.map((resource) => resource.id));
    const queuedBefore = tally.queued;
    for (const link of links) {
      if (present.has(link.medplumId)) continue;
      if ((await deps.medplum.read(resourceType, link.medplumId)) !== undefined) continue;
      await journalInbound(
        deps,
        { source: 'medplum', resourceType, legacyId: link.legacyId, kind: 'delete' },
        tally,
      );
    }
    if (tally.queued > queuedBefore) deps.notify();
    after = links.at(-1)?.legacyId;
    if (links.length < settings.pageSize) return;
  }
}
