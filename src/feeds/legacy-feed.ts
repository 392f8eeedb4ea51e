import { callLegacy } from '../sides/legacy-failure.ts';
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
 * The cursor is the adapter's own: how it orders changes is the adapter's. A change that becomes
 * visible behind the cursor (a long transaction's row, stamped before a later transaction's
 * row the feed read) is found by the pass's second read over the last `legacyOverlapMs` (see
 * the feeds option `legacyOverlapMs`).
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
  const started = await deps.store.getCursor(name);
  const trail = settings.legacyOverlapMs > 0 ? await readTrail(deps, name, started) : undefined;
  const seen = new Set<string>();
  const head = await readChanges(deps, resourceType, settings, tally, {
    from: started,
    stopAt: undefined,
    seen,
    store: (cursor) => deps.store.setCursor(name, cursor),
  });
  if (trail !== undefined)
    await rereadOverlap(deps, resourceType, settings, tally, { name, trail, head, seen });
}

/** Where the legacy feed stood at the end of its recent passes: `[epoch ms, cursor]`, oldest first. */
type Trail = [number, string][];

function trailName(name: string): string {
  return `${name}:trail`;
}

async function readTrail<L>(
  deps: ChangeFeedsDeps<L>,
  name: string,
  started: string | undefined,
): Promise<Trail> {
  const stored = await deps.store.getCursor(trailName(name));
  try {
    const trail = JSON.parse(stored ?? '[]') as unknown;
    if (
      Array.isArray(trail) &&
      trail.every((e) => Array.isArray(e) && typeof e[0] === 'number' && typeof e[1] === 'string')
    )
      return trail as Trail;
  } catch {
    // Not a trail this feed wrote: start one.
  }
  return started === undefined ? [] : [[Date.now(), started]];
}

/**
 * The second read of a pass: from the cursor the feed stored `legacyOverlapMs` ago (or its
 * oldest remembered one) up to where the first read stopped. It finds changes that became
 * visible behind the cursor (a long transaction committed after a later one was read). A change
 * the first read journaled this pass, or whose record has a mirror pending (it mirrors the
 * record's state when it applies), is skipped; for any other the record as it is now is read
 * and journaled unless it is an echo (a copy already synced).
 */
async function rereadOverlap<L>(
  deps: ChangeFeedsDeps<L>,
  resourceType: string,
  settings: ChangeFeedsSettings,
  tally: FeedTally,
  pass: {
    readonly name: string;
    readonly trail: Trail;
    readonly head: string | undefined;
    readonly seen: Set<string>;
  },
): Promise<void> {
  const { trail, head } = pass;
  const now = Date.now();
  if (head !== undefined && trail.at(-1)?.[1] !== head) trail.push([now, head]);
  let anchor = trail.findLastIndex(([at]) => at <= now - settings.legacyOverlapMs);
  if (anchor < 0) anchor = 0;
  const kept = trail.slice(anchor);
  await deps.store.setCursor(trailName(pass.name), JSON.stringify(kept));
  const from = kept[0]?.[1];
  if (from === undefined || from === head) return;
  await readChanges(deps, resourceType, settings, tally, {
    from,
    stopAt: head,
    seen: pass.seen,
    again: true,
    store: undefined,
  });
}

/**
 * Reads pages of changes from `from`, journaling each, until the feed has caught up, reached
 * `stopAt` or read its pages for the pass; stores each page's cursor with `store` once every
 * change of the page is journaled.
 *
 * @returns The cursor it stopped at.
 */
async function readChanges<L>(
  deps: ChangeFeedsDeps<L>,
  resourceType: string,
  settings: ChangeFeedsSettings,
  tally: FeedTally,
  read: {
    readonly from: string | undefined;
    readonly stopAt: string | undefined;
    readonly seen: Set<string>;
    /** Whether the changes were read before (the overlap): only what they left is journaled. */
    readonly again?: boolean;
    readonly store: ((cursor: string) => Promise<void>) | undefined;
  },
): Promise<string | undefined> {
  let cursor = read.from;
  for (let pages = 0; pages < settings.maxPagesPerPoll; pages += 1) {
    const page = await callLegacy(() => deps.legacy.changesSince(resourceType, cursor, settings.pageSize), {
      resourceType,
    });
    const queuedBefore = tally.queued;
    for (const change of page.changes) {
      const key = `${change.kind}:${change.id}@${change.record?.version ?? ''}`;
      if (read.seen.has(key)) continue;
      read.seen.add(key);
      if (read.again === true && (await deps.store.hasPending(resourceType, change.id))) continue;
      // Read again, a change's own record may be older than later changes of the same record:
      // the record as it is now is journaled instead (what a mirror applies anyway).
      const record =
        change.kind === 'upsert' || read.again === true
          ? ((read.again === true ? undefined : change.record) ??
            (await callLegacy(() => deps.legacy.read(resourceType, change.id), {
              resourceType,
              legacyId: change.id,
            })))
          : undefined;
      // An upsert whose row is gone by now: its delete comes later in the feed (and a delete
      // read again whose row is back: its upsert does).
      if ((change.kind === 'upsert') !== (record !== undefined)) continue;
      await journalInbound(
        deps,
        {
          source: 'legacy',
          resourceType,
          legacyId: change.id,
          kind: change.kind,
          record: change.kind === 'upsert' ? record : undefined,
        },
        tally,
      );
    }
    if (tally.queued > queuedBefore) deps.notify();
    if (page.cursor !== undefined && page.cursor !== cursor) {
      await read.store?.(page.cursor);
      cursor = page.cursor;
    }
    if (page.changes.length < settings.pageSize || (read.stopAt !== undefined && cursor === read.stopAt))
      return cursor;
  }
  return cursor;
}
