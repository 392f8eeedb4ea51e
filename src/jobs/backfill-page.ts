import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { compareLinkedCopies } from '../divergence/compare-copies.ts';
import type { ReferenceSources } from '../mirror/resolve-references.ts';
import type { Side } from '../errors.ts';
import type { Link } from '../journal/link.ts';
import type { JobPageResult } from '../journal/job.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import { legacyIdOf } from '../mapping/mapped-record.ts';
import { holdsPart } from '../mapping/record-parts.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { LegacyAdapter, LegacyRecord } from '../sides/legacy-adapter.ts';
import { callLegacy } from '../sides/legacy-failure.ts';
import type { MedplumSide } from '../sides/medplum-side.ts';
import { withRetries, type RetryPolicy } from '../mirror/retry-policy.ts';
import type { JobContext } from './job-context.ts';
import { PageTally } from './page-tally.ts';

/*
 * A backfill page is classified from cheap facts first and queued, never written here: the
 * mirror that applies a queued entry reads the authority's current copy when it runs, so a
 * backfill beside live writes never carries a stale snapshot over a newer change (the lesson of
 * DBLog's and Debezium's watermarks, kept by construction).
 *
 * - linked, and both sides at the versions the link last synced → `unchanged`, nothing queued;
 * - linked, the source changed → `updated`, queued; the target changed too → `conflicts`,
 *   queued (the mirror finds the target changed since the last sync: the resolver decides);
 * - unlinked, no copy on the target → `created`, queued;
 * - unlinked, an equal copy found by identifier → `linked`, queued (the mirror finds the
 *   copy already holds the content: it links it without writing);
 * - unlinked, a different copy → `conflicts`: a link marked never-synced is saved, so the
 *   mirror sees a target that changed since the last sync and hands both to the resolver
 *   instead of overwriting the copy as an orphan of its own;
 * - unlinked, several copies → `duplicates`, queued: the mirror refuses to guess and
 *   dead-letters the record for review;
 * - a record part the record does not hold (`present(row)` false), unlinked: no copy →
 *   `skipped`, nothing queued; a copy found by identifier → `deleted`, queued (its mirror
 *   deletes it, as reconcile's repair of a `divergent` at `''` does). Linked, it is classified
 *   like any linked record: the mirror of a changed source deletes the copy.
 */

/**
 * Records of a page classified at once (a differing copy found by identifier is compared, and
 * may be linked never-synced: a statement each). Queueing is not among them: a page's records
 * are queued in one statement ({@link queueAll}).
 */
const CLASSIFY_CONCURRENCY = 8;

/** Ids per look-up search (`_id=…` or `identifier=…` lists): a URL stays well under 8 KB. */
const LOOKUP_CHUNK = 100;

/**
 * Look-up searches of one page in flight at once. A page of 1,000 linked records needs ten; one
 * at a time they cost ten round trips a page, which bound a reconcile against a server 20 ms
 * away to 5,000 records/s however fast either side answers. The in-process bench cannot show
 * the gain: it is CPU-bound (3,000 records, 20 ms added to every request, load 14: 1.77–1.95 s
 * with 4 in flight, 1.74–2.32 s one at a time).
 */
const LOOKUPS_IN_FLIGHT = 4;

/**
 * The version a never-synced link records for both sides: no real version is empty, so every
 * copy differs from it and the first mirror of the record is a conflict for the resolver.
 */
export const NEVER_SYNCED = '';

/** What a page classifier needs, resolved once per job. */
export interface PageScope<L> {
  readonly ctx: JobContext<L>;
  readonly store: SyncStore;
  readonly legacy: LegacyAdapter<L>;
  readonly medplum: MedplumSide;
  readonly mapping: ResourceMapping<L>;
  readonly unit: string | undefined;
  readonly signal: AbortSignal | undefined;
  /** How the job's Medplum requests are retried (the context's `retry`). */
  readonly retry: RetryPolicy;
  /** The outbox lane records are queued in (a backfill on a client of its own); none when absent. */
  readonly lane?: string | undefined;
}

/**
 * What resolving a record's references reads, for comparing copies by what their references
 * point at (an equal copy found by identifier is linked, not reported as a conflict).
 *
 * @param scope - The job's scope.
 * @returns The links, both sides and every mapping.
 */
export function sourcesOf<L>(scope: PageScope<L>): ReferenceSources<L> {
  const { store, legacy, medplum, ctx } = scope;
  return { store, legacy, medplum, mappings: new Map(ctx.mappings.map((m) => [m.resourceType, m])) };
}

/**
 * Runs one Medplum request with the job's retries (the job's Medplum side waits on the quota
 * pacer for each attempt).
 *
 * @param scope - The job's scope: its retry policy.
 * @param call - The request.
 * @returns Its answer.
 */
export async function paced<T>(scope: Pick<PageScope<unknown>, 'retry'>, call: () => Promise<T>): Promise<T> {
  const { value } = await withRetries(call, scope.retry);
  return value;
}

/**
 * The unit of a record in a job, or `undefined` when it is out of the job's scope.
 *
 * @param scope - The job's scope.
 * @param record - What the job read.
 * @returns The unit, or `undefined` to skip the record.
 */
export async function unitIn<L>(
  scope: PageScope<L>,
  record: {
    readonly legacyId: string;
    readonly row?: L | undefined;
    readonly resource?: Resource | undefined;
  },
): Promise<string | undefined> {
  const { unitOf } = scope.ctx;
  const unit =
    unitOf === undefined ? scope.unit : await unitOf({ resourceType: scope.mapping.resourceType, ...record });
  if (unit === undefined || unit === '') return undefined;
  return scope.unit === undefined || unit === scope.unit ? unit : undefined;
}

/**
 * Queues one record's mirror towards `target`, due at once.
 *
 * @param scope - The job's scope.
 * @param legacyId - The record.
 * @param target - The side to mirror to.
 * @param unit - The record's unit.
 */
export async function queue<L>(
  scope: PageScope<L>,
  legacyId: string,
  target: Side,
  unit: string,
): Promise<void> {
  // Without a hold the entry is due at once and needs no commit (a commit would cost a second
  // statement per record: 4.5 ms against 14 ms for both on PGlite on this machine); an entry
  // already pending for the record is bumped, so a mirror in flight is applied again.
  await scope.store.intend(
    { resourceType: scope.mapping.resourceType, legacyId, target, unit, kind: 'upsert', lane: scope.lane },
    0,
  );
}

/** A record a page queues: its id and unit. */
interface Queued {
  readonly legacyId: string;
  readonly unit: string;
}

/**
 * Queues the mirrors of a page's records towards `target`, due at once, in one journal
 * statement. Without a hold an entry is due at once and needs no commit; an entry already
 * pending for a record is bumped, so a mirror in flight is applied again.
 *
 * One statement for the page, where one per record (eight in flight) took 11–14 ms each with
 * PostgreSQL on this 2-core machine at load 6–9, 1.3 journal statements a record in all: the
 * scan of 1,000 records took 2.2–2.8 s of a backfill's 2.6–3.5 s (the bench's
 * `backfill-throughput`, drainer running).
 *
 * @param scope - The job's scope.
 * @param records - The records, in the page's order.
 * @param target - The side to mirror to.
 */
export async function queueAll<L>(
  scope: PageScope<L>,
  records: readonly Queued[],
  target: Side,
): Promise<void> {
  if (records.length === 0) return;
  await scope.store.intendMany(
    records.map(({ legacyId, unit }) => ({
      resourceType: scope.mapping.resourceType,
      legacyId,
      target,
      unit,
      kind: 'upsert' as const,
      lane: scope.lane,
    })),
    0,
  );
}

/**
 * Medplum's current versions of linked resources, by id, read as cheap facts: one search of
 * `_id=…&_elements=id,meta` per hundred ids, several in flight.
 *
 * @param scope - The job's scope.
 * @param ids - Medplum ids.
 * @returns Each id found and its `meta.versionId`; an id missing from the map is gone.
 */
export async function medplumVersions<L>(
  scope: PageScope<L>,
  ids: readonly string[],
): Promise<Map<string, string>> {
  const versions = new Map<string, string>();
  await eachChunk(ids, async (chunk) => {
    const query = new URLSearchParams({
      _id: chunk.join(','),
      _elements: 'id,meta',
      _count: String(chunk.length),
    });
    const page = await paced(scope, () => scope.medplum.searchPage(scope.mapping.resourceType, query));
    for (const resource of page.resources) versions.set(resource.id, resource.meta?.versionId ?? '');
  });
  return versions;
}

/**
 * The Medplum copies of unlinked legacy ids, found by identifier in batched searches.
 *
 * @param scope - The job's scope.
 * @param legacyIds - The ids.
 * @returns Each id and the resources carrying it (empty: none).
 */
export async function copiesByIdentifier<L>(
  scope: PageScope<L>,
  legacyIds: readonly string[],
): Promise<Map<string, readonly WithId<Resource>[]>> {
  const { mapping } = scope;
  const found = new Map<string, readonly WithId<Resource>[]>();
  await eachChunk(legacyIds, async (chunk) => {
    const answered = await paced(scope, () =>
      scope.medplum.findManyByIdentifier(mapping.resourceType, mapping.identifierSystem, chunk),
    );
    for (const id of chunk) {
      const copies = answered.get(id);
      if (copies !== undefined) {
        found.set(id, copies);
        continue;
      }
      // Left out of the batched answer (ambiguous or unsearchable as part of a list): asked alone.
      const query = new URLSearchParams({ identifier: `${mapping.identifierSystem}|${id}`, _count: '3' });
      const page = await paced(scope, () => scope.medplum.searchPage(mapping.resourceType, query));
      found.set(
        id,
        page.resources.filter((resource) => legacyIdOf(resource, mapping.identifierSystem) === id),
      );
    }
  });
  return found;
}

/**
 * Saves a link marked never-synced between a record and a differing copy found on the other
 * side, so that its mirror is a conflict for the resolver (see {@link NEVER_SYNCED}). A link
 * saved meanwhile by a mirror is kept.
 *
 * @param scope - The job's scope.
 * @param legacyId - The record.
 * @param medplumId - The Medplum copy.
 */
export async function linkNeverSynced<L>(
  scope: PageScope<L>,
  legacyId: string,
  medplumId: string,
): Promise<void> {
  const { resourceType } = scope.mapping;
  if ((await scope.store.getLink(resourceType, legacyId)) !== undefined) return;
  const link: Link = {
    resourceType,
    legacyId,
    medplumId,
    legacyVersion: NEVER_SYNCED,
    medplumVersion: NEVER_SYNCED,
    contentHash: NEVER_SYNCED,
    syncedAt: new Date().toISOString(),
  };
  await scope.store.saveLink(link);
}

/**
 * Classifies and queues one page of legacy records (a backfill towards Medplum).
 *
 * @param scope - The job's scope.
 * @param records - The page.
 * @returns The page's counts and samples.
 */
export async function backfillLegacyPage<L>(
  scope: PageScope<L>,
  records: readonly LegacyRecord<L>[],
): Promise<JobPageResult> {
  const { store, mapping } = scope;
  const tally = new PageTally();
  const inScope: { record: LegacyRecord<L>; unit: string; link: Link | undefined; holds: boolean }[] = [];
  const links = await store.getLinks(
    mapping.resourceType,
    records.map((record) => record.id),
  );
  for (const record of records) {
    tally.add('scanned', record.id);
    const unit = await unitIn(scope, { legacyId: record.id, row: record.row });
    if (unit === undefined) {
      tally.add('skipped', record.id);
      continue;
    }
    try {
      const holds = holdsPart(mapping, record.row, {
        resourceType: mapping.resourceType,
        legacyId: record.id,
      });
      inScope.push({ record, unit, link: links.get(record.id), holds });
    } catch (err) {
      tally.fail(record.id, err);
    }
  }
  const settled = inScope.filter(
    ({ record, link }) => link !== undefined && sameVersion(link.legacyVersion, record.version),
  );
  const versions = await medplumVersions(
    scope,
    settled.flatMap(({ link }) => (link === undefined ? [] : [link.medplumId])),
  );
  const unlinked = inScope.filter(({ link }) => link === undefined).map(({ record }) => record.id);
  const copies = await copiesByIdentifier(scope, unlinked);
  const outcomes = await inOrderLimited(
    inScope,
    CLASSIFY_CONCURRENCY,
    async ({ record, link, holds }): Promise<{ count: string; queued: boolean }> => {
      const id = record.id;
      if (link !== undefined) {
        const legacyChanged = !sameVersion(link.legacyVersion, record.version);
        const medplumVersion = legacyChanged ? undefined : versions.get(link.medplumId);
        if (
          !legacyChanged &&
          medplumVersion !== undefined &&
          sameVersion(link.medplumVersion, medplumVersion)
        )
          return { count: 'unchanged', queued: false };
        return { count: legacyChanged ? 'updated' : 'conflicts', queued: true };
      }
      const found = copies.get(id) ?? [];
      const [copy] = found;
      if (!holds) {
        // A part the record does not hold (`present(row)` false) should have no copy: with none
        // there is nothing to mirror; a copy found is queued, and its mirror deletes it.
        return copy === undefined ? { count: 'skipped', queued: false } : { count: 'deleted', queued: true };
      }
      if (found.length > 1) return { count: 'duplicates', queued: true };
      if (copy === undefined) return { count: 'created', queued: true };
      if ((await compareLinkedCopies(sourcesOf(scope), mapping, id, record, copy, 'legacy')).length === 0)
        return { count: 'linked', queued: true };
      // Saved before the record is queued: its mirror must find the never-synced link.
      await linkNeverSynced(scope, id, copy.id);
      return { count: 'conflicts', queued: true };
    },
  );
  // A failure to queue fails the page (the job is resumable, and the page taken again is
  // classified afresh), never a record counted as queued that is not.
  await queueAll(
    scope,
    inScope.flatMap(({ record, unit }, i) => {
      const outcome = outcomes[i];
      return outcome?.ok === true && outcome.value.queued ? [{ legacyId: record.id, unit }] : [];
    }),
    'medplum',
  );
  // Counted in the page's order, so samples do not depend on which classification finished first.
  for (const [i, { record }] of inScope.entries()) {
    const outcome = outcomes[i];
    if (outcome?.ok === true) tally.add(outcome.value.count, record.id);
    else tally.fail(record.id, outcome?.error);
  }
  return tally.result();
}

/**
 * Classifies and queues one page of Medplum resources (a backfill towards the legacy system).
 * A resource without the mapping's legacy identifier is counted `withoutLegacyId` and left
 * alone: the Medplum change feed allocates and stamps ids (`mapping.newLegacyId`).
 *
 * @param scope - The job's scope.
 * @param resources - The page.
 * @returns The page's counts and samples.
 */
export async function backfillMedplumPage<L>(
  scope: PageScope<L>,
  resources: readonly WithId<Resource>[],
): Promise<JobPageResult> {
  const { store, mapping } = scope;
  const tally = new PageTally();
  const inScope: { resource: WithId<Resource>; legacyId: string; unit: string; link: Link | undefined }[] =
    [];
  const links = await store.getLinks(
    mapping.resourceType,
    resources.flatMap((resource) => legacyIdOf(resource, mapping.identifierSystem) ?? []),
  );
  for (const resource of resources) {
    const legacyId = legacyIdOf(resource, mapping.identifierSystem);
    tally.add('scanned', legacyId ?? resource.id);
    if (legacyId === undefined) {
      tally.add('withoutLegacyId', resource.id);
      continue;
    }
    const unit = await unitIn(scope, { legacyId, resource });
    if (unit === undefined) {
      tally.add('skipped', legacyId);
      continue;
    }
    inScope.push({ resource, legacyId, unit, link: links.get(legacyId) });
  }
  const records = await readLegacy(
    scope,
    inScope.map(({ legacyId }) => legacyId),
  );
  const queued: Queued[] = [];
  const counted: [string, string][] = [];
  for (const { resource, legacyId, unit, link } of inScope) {
    try {
      const record = records.get(legacyId);
      if (link?.medplumId === resource.id) {
        const medplumChanged = !sameVersion(link.medplumVersion, resource.meta?.versionId);
        const legacyChanged = record === undefined || !sameVersion(link.legacyVersion, record.version);
        if (!medplumChanged && !legacyChanged) {
          counted.push(['unchanged', legacyId]);
          continue;
        }
        queued.push({ legacyId, unit });
        counted.push([legacyChanged ? 'conflicts' : 'updated', legacyId]);
        continue;
      }
      if (link !== undefined) {
        // Another Medplum resource is linked to this legacy id: a duplicate for review.
        counted.push(['duplicates', legacyId]);
        continue;
      }
      let count: string;
      if (record === undefined) {
        count = 'created';
      } else if (
        (await compareLinkedCopies(sourcesOf(scope), mapping, legacyId, record, resource, 'medplum'))
          .length === 0
      ) {
        count = 'linked';
      } else {
        // Saved before the record is queued: its mirror must find the never-synced link.
        await linkNeverSynced(scope, legacyId, resource.id);
        count = 'conflicts';
      }
      queued.push({ legacyId, unit });
      counted.push([count, legacyId]);
    } catch (err) {
      tally.fail(legacyId, err);
    }
  }
  // One statement for the page; a failure fails the page (see backfillLegacyPage).
  await queueAll(scope, queued, 'legacy');
  for (const [count, legacyId] of counted) tally.add(count, legacyId);
  return tally.result();
}

/**
 * Reads legacy records by id, in one call when the adapter has `readMany`.
 *
 * @param scope - The job's scope.
 * @param ids - Legacy ids.
 * @returns Each id and its record (`undefined`: none).
 */
export async function readLegacy<L>(
  scope: PageScope<L>,
  ids: readonly string[],
): Promise<Map<string, LegacyRecord<L> | undefined>> {
  const { legacy, mapping } = scope;
  const details = { side: 'legacy' as const, resourceType: mapping.resourceType };
  const readMany = legacy.readMany?.bind(legacy);
  const found = new Map<string, LegacyRecord<L> | undefined>();
  if (ids.length === 0) return found;
  if (readMany !== undefined) {
    const answered = await callLegacy(() => readMany(mapping.resourceType, ids), details);
    for (const [id, record] of answered) found.set(id, record);
  }
  for (const id of ids) {
    if (!found.has(id)) found.set(id, await callLegacy(() => legacy.read(mapping.resourceType, id), details));
  }
  return found;
}

/** Whether a link's version matches a copy's; unknown versions never match. */
export function sameVersion(linked: string | undefined, current: string | undefined): boolean {
  return linked !== undefined && linked !== NEVER_SYNCED && current !== undefined && linked === current;
}

/**
 * Runs `task` over `items`, at most `limit` at a time, and returns each outcome in the items'
 * order (a failure does not stop the others).
 */
async function inOrderLimited<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<({ ok: true; value: R } | { ok: false; error: unknown })[]> {
  const outcomes: ({ ok: true; value: R } | { ok: false; error: unknown })[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      try {
        outcomes[i] = { ok: true, value: await task(items[i] as T) };
      } catch (error) {
        outcomes[i] = { ok: false, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return outcomes;
}

/**
 * Runs a look-up for each chunk of {@link LOOKUP_CHUNK} ids, {@link LOOKUPS_IN_FLIGHT} at a
 * time; rejects with the first failure, once every look-up has settled.
 *
 * @param ids - The ids to look up.
 * @param lookUp - One chunk's look-up.
 */
export async function eachChunk(
  ids: readonly string[],
  lookUp: (chunk: readonly string[]) => Promise<void>,
): Promise<void> {
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) chunks.push(ids.slice(i, i + LOOKUP_CHUNK));
  const outcomes = await inOrderLimited(chunks, LOOKUPS_IN_FLIGHT, lookUp);
  for (const outcome of outcomes) if (!outcome.ok) throw outcome.error;
}
