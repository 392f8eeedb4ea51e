import type { WithId } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { compareLinkedCopies } from '../divergence/compare-copies.ts';
import type { Side } from '../errors.ts';
import type { JobPageResult, SeenCopy } from '../journal/job.ts';
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
 * A reconciliation reads each side once, in three passes joined through the journal, never
 * through the process's memory:
 *
 * 1. Medplum in `_lastUpdated` order (id, `meta` and identifier only, unless `unitOf` needs
 *    content): a copy without a legacy id, a second copy of a linked record and a copy whose
 *    unlinked legacy id has no record are classified here; each linked copy is noted in the
 *    journal as *seen* (`store.noteSeenCopies`: its id, version and unit).
 * 2. The legacy side in key order, each record matched with its Medplum copy through its link,
 *    else by identifier. A linked record takes the copy the first pass saw
 *    (`store.takeSeenCopies`): Medplum is not searched again for it. Only a link whose copy was
 *    not seen (gone, or changed during the reconciliation) is looked up, with one
 *    `_id=…&_elements=id,meta` search per hundred.
 * 3. The seen copies no legacy record took: linked copies whose legacy record is gone
 *    (`orphanLink`), each confirmed by reading the legacy side.
 *
 * Each page holds one page of records and the journal rows of that page, whatever the size.
 * Reading Medplum twice (once as a scan, once as `_id` look-ups for every linked record) and the
 * legacy side twice (a scan, then `readMany` for every copy of the Medplum pass) cost 10,000
 * records 1.7-2.9 s in the bench at load 6-11, the `_id` look-ups alone about 40% of it.
 *
 * Cheap facts first (pt-table-checksum compares chunk checksums before rows; AWS DMS
 * re-validates only failures): a linked record whose legacy version and Medplum `versionId` are
 * both the ones the link last synced agrees without its content being read. Content is read and
 * compared, with the mapping's FHIR-aware diff, only where the facts disagree or nothing is
 * known.
 *
 * Classes (counts, with sample ids; divergent paths are counted as `path:<path>`, never values):
 * `agree`, `missingInMedplum`, `missingInLegacy`, `duplicate`, `orphanLink`, `divergent`; and
 * `scanned`/`skipped` (legacy records read, and out of the job's unit), `scannedMedplum`/
 * `skippedMedplum` (the same for Medplum resources).
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
 * Classifies one page of legacy records against Medplum (the second pass), repairing per
 * `policy`.
 *
 * @param scope - The job's scope.
 * @param jobId - The job, whose seen copies the page takes.
 * @param records - The page.
 * @param policy - Repairs.
 * @returns The page's counts and samples.
 */
export async function reconcileLegacyPage<L>(
  scope: PageScope<L>,
  jobId: string,
  records: readonly LegacyRecord<L>[],
  policy: RepairPolicy,
): Promise<JobPageResult> {
  const { store, mapping } = scope;
  const tally = new PageTally();
  const rows: { record: LegacyRecord<L>; unit: string; link: Link | undefined; holds: boolean }[] = [];
  const ids = records.map((record) => record.id);
  // One query for the page's links (a `getLink` per record was a journal round trip each), and
  // one for the copies the Medplum pass saw: taken for every record read, in the unit or not,
  // so that what is left after this pass is only copies whose record is gone.
  const links = await store.getLinks(mapping.resourceType, ids);
  const seen = await store.takeSeenCopies(jobId, ids);
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
  const versions = await linkedVersions(scope, rows, seen);
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
  const compared = new Set(unsettled.map(({ record }) => record.id));
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
          // Settled on cheap facts; or, when its content was to be read, deleted meanwhile.
          if (compared.has(id)) {
            tally.add('orphanLink', id);
            if (policy.repair === 'queue') await repairOrphanLink(scope, id, unit, 'medplum', policy);
          } else tally.add('agree', id);
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
 * The current `versionId` of each linked record's Medplum copy, by Medplum id: the copy the
 * Medplum pass saw when it is the linked one, else looked up (`_id` searches); a copy missing
 * from the map is gone.
 */
async function linkedVersions<L>(
  scope: PageScope<L>,
  rows: readonly { readonly record: LegacyRecord<L>; readonly link: Link | undefined }[],
  seen: ReadonlyMap<string, SeenCopy>,
): Promise<Map<string, string>> {
  const versions = new Map<string, string>();
  const unseen: string[] = [];
  for (const { record, link } of rows) {
    if (link === undefined) continue;
    const copy = seen.get(record.id);
    if (copy?.medplumId === link.medplumId) versions.set(link.medplumId, copy.medplumVersion ?? '');
    else unseen.push(link.medplumId);
  }
  for (const [id, version] of await medplumVersions(scope, unseen)) versions.set(id, version);
  return versions;
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
 * Classifies one page of Medplum resources (the first pass): copies without a legacy id, second
 * copies of a linked record, and copies of an unlinked legacy id without a record. Each linked
 * copy in the job's unit is noted as seen, for the legacy pass to take. A resource of another
 * unit is counted `skippedMedplum`.
 *
 * @param scope - The job's scope.
 * @param jobId - The job, under which the seen copies are noted.
 * @param resources - The page.
 * @param policy - Repairs.
 * @returns The page's counts and samples.
 */
export async function reconcileMedplumPage<L>(
  scope: PageScope<L>,
  jobId: string,
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
    if (unit === undefined) tally.add('skippedMedplum', legacyId ?? resource.id);
    else rows.push({ resource, legacyId, unit });
  }
  const legacyIds = rows.flatMap(({ legacyId }) => (legacyId === undefined ? [] : [legacyId]));
  // The page's links as they were before its repairs: a second copy of a record whose link a
  // repair dropped earlier in the page is still counted a duplicate.
  const links = await store.getLinks(mapping.resourceType, legacyIds);
  // Only an unlinked copy's record is read here; a linked copy is compared by the legacy pass.
  const records = await readLegacy(
    scope,
    legacyIds.filter((legacyId) => !links.has(legacyId)),
  );
  const seen: SeenCopy[] = [];
  for (const { resource, legacyId, unit } of rows) {
    try {
      if (legacyId === undefined) {
        tally.add('missingInLegacy', resource.id);
        continue;
      }
      const link = links.get(legacyId);
      if (link?.medplumId === resource.id) {
        seen.push({ legacyId, medplumId: resource.id, medplumVersion: resource.meta?.versionId, unit });
        continue;
      }
      if (link !== undefined) {
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
      // An unlinked copy of an existing record is found by identifier by the legacy pass.
      if (records.get(legacyId) !== undefined) continue;
      tally.add('missingInLegacy', legacyId);
      if (policy.repair === 'queue') await queue(scope, legacyId, 'legacy', unit);
    } catch (err) {
      tally.fail(legacyId ?? resource.id, err);
    }
  }
  await store.noteSeenCopies(jobId, seen);
  return tally.result();
}

/**
 * Classifies one page of the copies the Medplum pass saw and no legacy record took: a linked
 * copy whose legacy record is gone is an `orphanLink`. Each is confirmed first (its record
 * read, its link still pointing at it): a record that exists was written after the legacy pass
 * went by, or is being compared by a page another worker holds, and is left to it.
 *
 * @param scope - The job's scope.
 * @param copies - The page.
 * @param policy - Repairs.
 * @returns The page's counts and samples.
 */
export async function reconcileLeftoverPage<L>(
  scope: PageScope<L>,
  copies: readonly SeenCopy[],
  policy: RepairPolicy,
): Promise<JobPageResult> {
  const tally = new PageTally();
  const legacyIds = copies.map((copy) => copy.legacyId);
  const records = await readLegacy(scope, legacyIds);
  const links = await scope.store.getLinks(scope.mapping.resourceType, legacyIds);
  for (const { legacyId, medplumId, unit } of copies) {
    try {
      if (records.get(legacyId) !== undefined || links.get(legacyId)?.medplumId !== medplumId) continue;
      tally.add('orphanLink', legacyId);
      if (policy.repair === 'queue') await repairOrphanLink(scope, legacyId, unit, 'legacy', policy);
    } catch (err) {
      tally.fail(legacyId, err);
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
