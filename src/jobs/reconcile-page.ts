import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { compareLinkedCopies } from '../divergence/compare-copies.ts';
import type { Side } from '../errors.ts';
import type { JobPageResult } from '../journal/job.ts';
import type { Link } from '../journal/link.ts';
import { legacyIdOf } from '../mapping/mapped-record.ts';
import { holdsPart } from '../mapping/record-parts.ts';
import type { LegacyRecord } from '../sides/legacy-adapter.ts';
import {
  copiesByIdentifier,
  eachChunk,
  linkNeverSynced,
  medplumVersions,
  paced,
  queue,
  readLegacy,
  sameVersion,
  sourcesOf,
  unitIn,
  type PageScope,
} from './backfill-page.ts';
import { PageTally } from './page-tally.ts';

/*
 * A reconciliation reads both sides: first the legacy side in key order, matching each record
 * with its Medplum copy (through its link, else by identifier), then Medplum in `_lastUpdated`
 * order, finding what the first pass cannot see (copies without a legacy record, second copies
 * of a linked record, links whose legacy record is gone). Each page's lookups on the other side
 * are batched, so memory holds one page whatever the size.
 *
 * Cheap facts first (pt-table-checksum compares chunk checksums before rows; AWS DMS
 * re-validates only failures): a linked record whose legacy version and Medplum `versionId` are
 * both the ones the link last synced agrees without its content being read (one
 * `_id=…&_elements=id,meta` search per hundred records). Content is read and compared, with the
 * mapping's FHIR-aware diff, only where the facts disagree or nothing is known.
 *
 * Classes (counts, with sample ids; divergent paths are counted as `path:<path>`, never values):
 * `agree`, `missingInMedplum`, `missingInLegacy`, `duplicate`, `orphanLink`, `divergent`.
 *
 * A record part (`ResourceMapping.partOf`) is read from its owner's records; a record that does
 * not hold the part (`present(row)` false) should have no copy of it: with none it is out of the
 * part's scope (`skipped`), with one the copy is `divergent` at `''` (the mirror deletes it).
 */

/** How a reconciliation repairs what it finds. */
export interface RepairPolicy {
  /** `queue`: queue mirrors per the reference side and dead-letter the rest for review. */
  readonly repair: 'none' | 'queue';
  /**
   * `remove-unlinked`: delete a second Medplum copy of a linked record (only with
   * `repair: 'queue'`); `review` (the default) dead-letters it.
   */
  readonly duplicates: 'review' | 'remove-unlinked';
  /** The side taken for the truth: mirrors are queued towards the other. */
  readonly reference: Side;
}

/**
 * Classifies one page of legacy records against Medplum, repairing per `policy`.
 *
 * @param scope - The job's scope.
 * @param records - The page.
 * @param policy - Repairs.
 * @returns The page's counts and samples.
 */
export async function reconcileLegacyPage<L>(
  scope: PageScope<L>,
  records: readonly LegacyRecord<L>[],
  policy: RepairPolicy,
): Promise<JobPageResult> {
  const { store, mapping } = scope;
  const tally = new PageTally();
  const rows: { record: LegacyRecord<L>; unit: string; link: Link | undefined; holds: boolean }[] = [];
  // One query for the page's links: a `getLink` per record was a journal round trip each.
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
      rows.push({ record, unit, link: links.get(record.id), holds });
    } catch (err) {
      tally.fail(record.id, err);
    }
  }
  const linkedIds = rows.flatMap(({ link }) => (link === undefined ? [] : [link.medplumId]));
  const versions = await medplumVersions(scope, linkedIds);
  // A record without the part whose link survives is compared whatever the versions say.
  const unsettled = rows.filter(
    ({ record, link, holds }) =>
      link !== undefined &&
      versions.has(link.medplumId) &&
      !(
        holds &&
        sameVersion(link.legacyVersion, record.version) &&
        sameVersion(link.medplumVersion, versions.get(link.medplumId))
      ),
  );
  const full = await readById(
    scope,
    unsettled.flatMap(({ link }) => (link === undefined ? [] : [link.medplumId])),
  );
  const copies = await copiesByIdentifier(
    scope,
    rows.filter(({ link }) => link === undefined).map(({ record }) => record.id),
  );
  for (const { record: scanned, unit, link, holds } of rows) {
    const id = scanned.id;
    // The part's copy as it should be: none when the record does not hold the part.
    const record = holds ? scanned : undefined;
    try {
      if (link !== undefined) {
        if (!versions.has(link.medplumId)) {
          tally.add('orphanLink', id);
          if (policy.repair === 'queue') await repairOrphanLink(scope, id, unit, 'medplum', policy);
          continue;
        }
        const resource = full.get(link.medplumId);
        if (resource === undefined) {
          tally.add('agree', id);
          continue;
        }
        await classifyPair(scope, tally, id, record, resource, unit, policy, false);
        continue;
      }
      const found = copies.get(id) ?? [];
      const [copy] = found;
      if (record === undefined && copy === undefined) {
        tally.add('skipped', id);
      } else if (found.length > 1) {
        tally.add('duplicate', id);
        if (policy.repair === 'queue') await review(scope, id, unit, 'legacy', 'duplicate copies in Medplum');
      } else if (copy === undefined) {
        tally.add('missingInMedplum', id);
        // Missing on either side is mirrored to it, as a change feed would mirror a record
        // created directly in the other system.
        if (policy.repair === 'queue') await queue(scope, id, 'medplum', unit);
      } else {
        await classifyPair(scope, tally, id, record, copy, unit, policy, true);
      }
    } catch (err) {
      tally.fail(id, err);
    }
  }
  return tally.result();
}

/**
 * Compares a record with its Medplum copy, references by what they point at, and counts
 * `agree` or `divergent` (with its paths). A divergent pair is queued towards the side that is
 * not the reference; an unlinked one gets a never-synced link first, so its mirror asks the
 * resolver. `record` is `undefined` for a part the record does not hold.
 */
async function classifyPair<L>(
  scope: PageScope<L>,
  tally: PageTally,
  id: string,
  record: LegacyRecord<L> | undefined,
  resource: WithId<Resource>,
  unit: string,
  policy: RepairPolicy,
  unlinked: boolean,
): Promise<void> {
  const differences = await compareLinkedCopies(
    sourcesOf(scope),
    scope.mapping,
    id,
    record,
    resource,
    policy.reference,
  );
  if (differences.length === 0) {
    tally.add('agree', id);
    if (unlinked && policy.repair === 'queue') await queue(scope, id, other(policy.reference), unit);
    return;
  }
  tally.add('divergent', id);
  for (const path of new Set(differences.map((difference) => difference.path))) tally.add(`path:${path}`, id);
  if (policy.repair !== 'queue') return;
  if (unlinked) await linkNeverSynced(scope, id, resource.id);
  await queue(scope, id, other(policy.reference), unit);
}

/**
 * Classifies one page of Medplum resources: what the legacy pass could not see.
 *
 * @param scope - The job's scope.
 * @param resources - The page.
 * @param policy - Repairs.
 * @returns The page's counts and samples.
 */
export async function reconcileMedplumPage<L>(
  scope: PageScope<L>,
  resources: readonly WithId<Resource>[],
  policy: RepairPolicy,
): Promise<JobPageResult> {
  const { store, mapping } = scope;
  const tally = new PageTally();
  const rows: { resource: WithId<Resource>; legacyId: string | undefined; unit: string }[] = [];
  for (const resource of resources) {
    tally.add('scannedMedplum', resource.id);
    const legacyId = legacyIdOf(resource, mapping.identifierSystem);
    const unit = await unitIn(scope, { legacyId: legacyId ?? '', resource });
    if (unit !== undefined) rows.push({ resource, legacyId, unit });
  }
  const legacyIds = rows.flatMap(({ legacyId }) => (legacyId === undefined ? [] : [legacyId]));
  const records = await readLegacy(scope, legacyIds);
  // The page's links as they were before its repairs: a second copy of a record whose link a
  // repair dropped earlier in the page is still counted a duplicate.
  const links = await store.getLinks(mapping.resourceType, legacyIds);
  for (const { resource, legacyId, unit } of rows) {
    try {
      if (legacyId === undefined) {
        tally.add('missingInLegacy', resource.id);
        continue;
      }
      const link = links.get(legacyId);
      if (link !== undefined && link.medplumId !== resource.id) {
        tally.add('duplicate', legacyId);
        if (policy.repair !== 'queue') continue;
        if (policy.duplicates === 'remove-unlinked') {
          await paced(scope, () =>
            scope.medplum.delete(mapping.resourceType, resource.id, {
              resourceType: mapping.resourceType,
              legacyId,
            }),
          );
        } else await review(scope, legacyId, unit, 'medplum', 'a second Medplum copy of a linked record');
        continue;
      }
      if (records.get(legacyId) !== undefined) continue;
      if (link !== undefined) {
        tally.add('orphanLink', legacyId);
        if (policy.repair === 'queue') await repairOrphanLink(scope, legacyId, unit, 'legacy', policy);
        continue;
      }
      tally.add('missingInLegacy', legacyId);
      if (policy.repair === 'queue') await queue(scope, legacyId, 'legacy', unit);
    } catch (err) {
      tally.fail(legacyId ?? resource.id, err);
    }
  }
  return tally.result();
}

/**
 * A link whose copy on `gone` no longer exists: when the reference still holds the record,
 * the link is dropped and the record queued towards `gone` (recreated there); when the
 * reference itself lost it, a person decides.
 */
async function repairOrphanLink<L>(
  scope: PageScope<L>,
  legacyId: string,
  unit: string,
  gone: Side,
  policy: RepairPolicy,
): Promise<void> {
  if (gone === policy.reference) {
    await review(scope, legacyId, unit, other(gone), `linked copy gone from the ${gone} side, the reference`);
    return;
  }
  await scope.store.deleteLink(scope.mapping.resourceType, legacyId);
  await queue(scope, legacyId, gone, unit);
}

/**
 * Holds a record for a person to decide: a dead letter opened beside the outbox, as a delete
 * held by its mapping's policy is (one mechanism for "held for review"). No outbox entry is
 * created or claimed, so a mirror of the record pending or in flight goes on as it would, and
 * a record found again by a later reconcile keeps its one open letter. A retry of the letter
 * mirrors the record to `target`.
 *
 * @param scope - The job's scope.
 * @param legacyId - The record.
 * @param unit - Its unit.
 * @param target - The side a mirror would go to.
 * @param why - What the reconciliation found, without values.
 */
export async function review<L>(
  scope: PageScope<L>,
  legacyId: string,
  unit: string,
  target: Side,
  why: string,
): Promise<void> {
  const { store, mapping } = scope;
  await store.openDeadLetter({
    resourceType: mapping.resourceType,
    legacyId,
    target,
    unit,
    kind: 'upsert',
    reason: {
      name: 'ReconcileReviewError',
      message: `${mapping.resourceType}/${legacyId}: ${why}; decide by hand`,
      side: target,
    },
  });
}

/** Medplum resources by id, in `_id` searches of a hundred, several in flight. */
async function readById<L>(
  scope: PageScope<L>,
  ids: readonly string[],
): Promise<Map<string, WithId<Resource>>> {
  const found = new Map<string, WithId<Resource>>();
  await eachChunk(ids, async (chunk) => {
    const query = new URLSearchParams({ _id: chunk.join(','), _count: String(chunk.length) });
    const page = await paced(scope, () => scope.medplum.searchPage(scope.mapping.resourceType, query));
    for (const resource of page.resources) found.set(resource.id, resource);
  });
  return found;
}

function other(side: Side): Side {
  return side === 'legacy' ? 'medplum' : 'legacy';
}
