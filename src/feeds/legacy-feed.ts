import type { ChangeFeedsSettings } from './change-feeds-options.ts';
import type { FeedTally } from './feed-report.ts';
import { journalInbound, type ChangeFeedsDeps } from './inbound-change.ts';

/**
 * The name under which the legacy feed of a resource type stores its cursor.
 *
 * @param resourceType - The resource type.
 * @returns The cursor's name in the store.
 * @internal
 * @example
 * ```ts
 * await store.getCursor(legacyCursorName('Patient')); // the adapter's opaque cursor
 * ```
 */
export function legacyCursorName(resourceType: string): string {
  return `feed:legacy:${resourceType}`;
}

/**
 * One pass of the legacy feed of one resource type: pages through the adapter's
 * `changesSince` from the stored cursor, journals each change, and stores the page's cursor
 * only once every change of the page is journaled. A crash or error mid-page re-reads the page
 * next pass; its changes are journaled again, and their mirrors find the target equal.
 *
 * The cursor is the adapter's own: how it orders changes, and what it can miss (see
 * `PostgresTableAdapter.changesSince` for a timestamp cursor's limits), is the adapter's.
 *
 * @param deps - Sides, store, mappings, routing.
 * @param resourceType - The resource type to read.
 * @param settings - Page size and pages per pass.
 * @param tally - Where outcomes are counted.
 * @returns When the feed has caught up or read its pages for this pass.
 * @throws What the adapter or the store threw; the stored cursor is where it was.
 * @internal
 * @example
 * ```ts
 * await pollLegacyFeed(deps, 'Patient', settings, tally);
 * ```
 */
export async function pollLegacyFeed<L>(
  deps: ChangeFeedsDeps<L>,
  resourceType: string,
  settings: ChangeFeedsSettings,
  tally: FeedTally,
): Promise<void> {
  const name = legacyCursorName(resourceType);
  let cursor = await deps.store.getCursor(name);
  for (let pages = 0; pages < settings.maxPagesPerPoll; pages += 1) {
    const page = await deps.legacy.changesSince(resourceType, cursor, settings.pageSize);
    const queuedBefore = tally.queued;
    for (const change of page.changes) {
      const record =
        change.kind === 'upsert'
          ? (change.record ?? (await deps.legacy.read(resourceType, change.id)))
          : undefined;
      // An upsert whose row is gone by now: its delete comes later in the feed.
      if (change.kind === 'upsert' && record === undefined) continue;
      await journalInbound(
        deps,
        { source: 'legacy', resourceType, legacyId: change.id, kind: change.kind, record },
        tally,
      );
    }
    if (tally.queued > queuedBefore) deps.notify();
    if (page.cursor !== undefined && page.cursor !== cursor) {
      await deps.store.setCursor(name, page.cursor);
      cursor = page.cursor;
    }
    if (page.changes.length < settings.pageSize) return;
  }
}
