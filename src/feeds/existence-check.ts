import type { Link } from '../journal/link.ts';
import type { ChangeFeedsSettings } from './change-feeds-options.ts';
import type { FeedTally } from './feed-report.ts';
import { journalInbound, type ChangeFeedsDeps } from './inbound-change.ts';

/**
 * An existence check stopped without journaling a delete: too many of the linked resources it
 * checked were missing in Medplum for that to be deletes (more than `maxMissingShare` of them,
 * and more than `minMissing`). Counts and settings only, never ids or values.
 *
 * @example
 * ```ts
 * const halt: ExistenceCheckHalt = { resourceType: 'Patient', checked: 1200, missing: 1200, maxMissingShare: 0.1, minMissing: 10 };
 * ```
 */
export interface ExistenceCheckHalt {
  /** The resource type whose links were checked. */
  readonly resourceType: string;
  /** Linked resources checked in the pass. */
  readonly checked: number;
  /** Of those, missing from Medplum's answer. */
  readonly missing: number;
  /** The share of missing resources above which a check stops (`existenceCheckMaxMissingShare`). */
  readonly maxMissingShare: number;
  /** How many must be missing at least before the share is looked at (`existenceCheckMinMissing`). */
  readonly minMissing: number;
}

/** The name of a halted check in a pass's failures and in the store's events. */
export const EXISTENCE_CHECK_HALTED = 'existence-check-halted';

/**
 * Finds Medplum resources deleted directly in Medplum, which a `_lastUpdated` search never
 * shows (and Medplum has no type-level history to read deletes from): walks the links of a
 * resource type, `pageSize` at a time, asks Medplum for those ids in one `_id` search, and
 * journals a delete towards the legacy system for each linked resource that is gone.
 *
 * A delete is destructive, so it is journaled only once the whole walk is done, and not at all
 * when the walk found too many linked resources missing: more than `existenceCheckMinMissing`
 * and more than `existenceCheckMaxMissingShare` of those checked. That is what a journal
 * pointed at the wrong Medplum (another base URL or project, an empty database) looks like, and
 * taking it for deletes would flood the legacy side with deletes or delete reviews. The check
 * then journals nothing, records an `existence-check-halted` event in the store (counts only),
 * tells `onExistenceHalted`, and reports the feed as failed in the pass. Below the guard, each
 * resource missing from the search is read once more by id before its delete is journaled:
 * only a 404 or 410 counts, never a search that lagged or a page that came back short.
 *
 * The walk restarts from the first link each check: a check is bounded by the number of links
 * (one search per `pageSize` links), which is why it runs every `existenceCheckIntervalMs`,
 * not every pass.
 *
 * @param deps - Sides, store, mappings, routing.
 * @param resourceType - The resource type whose links to check.
 * @param settings - Page size and the guard's settings.
 * @param tally - Where outcomes are counted.
 * @returns When every link was checked (or the check halted).
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
  const { checked, missing } = await linksMissing(deps, resourceType, settings.pageSize);
  const { existenceCheckMaxMissingShare: maxMissingShare, existenceCheckMinMissing: minMissing } = settings;
  if (missing.length > minMissing && missing.length > maxMissingShare * checked) {
    const halt: ExistenceCheckHalt = {
      resourceType,
      checked,
      missing: missing.length,
      maxMissingShare,
      minMissing,
    };
    await deps.store.appendEvent({
      type: EXISTENCE_CHECK_HALTED,
      resourceType,
      data: { checked, missing: missing.length, maxMissingShare, minMissing },
    });
    tally.errors += 1;
    tally.failures.push({
      feed: `existence:${resourceType}`,
      name: 'ExistenceCheckHalted',
      message:
        `${String(missing.length)} of ${String(checked)} linked ${resourceType} resources are missing in Medplum ` +
        `(more than ${String(maxMissingShare * 100)}% and more than ${String(minMissing)}): no delete was journaled. ` +
        'Check that the writer reaches the right Medplum (base URL, project); deletes that many are ' +
        'for an operator to confirm (raise existenceCheckMaxMissingShare for one pass)',
    });
    deps.onExistenceHalted?.(halt);
    return;
  }
  const queuedBefore = tally.queued;
  for (const link of missing) {
    if ((await deps.medplum.read(resourceType, link.medplumId)) !== undefined) continue;
    await journalInbound(
      deps,
      { source: 'medplum', resourceType, legacyId: link.legacyId, kind: 'delete' },
      tally,
    );
  }
  if (tally.queued > queuedBefore) deps.notify();
}

/** Walks a type's links and searches Medplum for them by id: the links checked, those missing. */
async function linksMissing<L>(
  deps: ChangeFeedsDeps<L>,
  resourceType: string,
  pageSize: number,
): Promise<{ checked: number; missing: Pick<Link, 'legacyId' | 'medplumId'>[] }> {
  let after: string | undefined;
  let checked = 0;
  const missing: Pick<Link, 'legacyId' | 'medplumId'>[] = [];
  for (;;) {
    const links = await deps.store.listLinks(resourceType, { after, limit: pageSize });
    if (links.length === 0) break;
    const query = new URLSearchParams({
      _id: links.map((link) => link.medplumId).join(','),
      _count: String(links.length),
    });
    const found = await deps.medplum.searchPage(resourceType, query);
    const present = new Set(found.resources.map((resource) => resource.id));
    checked += links.length;
    for (const { legacyId, medplumId } of links)
      if (!present.has(medplumId)) missing.push({ legacyId, medplumId });
    after = links.at(-1)?.legacyId;
    if (links.length < pageSize) break;
  }
  return { checked, missing };
}
