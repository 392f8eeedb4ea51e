import type { Resource } from '@medplum/fhirtypes';
import type { Side } from '../errors.ts';
import { runMapping, withLegacyIdentifier } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { LegacyRecord } from '../sides/legacy-adapter.ts';
import { diff, type RevealedDiffEntry } from './diff.ts';
import { checkValue, nonEmptyString, oneOf } from '../option-checks.ts';
import {
  canonicalReferences,
  hasReferences,
  withReferences,
  type ReferenceSources,
} from '../mirror/resolve-references.ts';

const aSide = oneOf('legacy', 'medplum');

/**
 * Where the two copies of a record differ, in FHIR terms: the legacy row is mapped with
 * `toFhir` onto the Medplum copy (so fields the mapping does not cover compare equal), then the
 * authority's copy is diffed against the other with the mapping's `compare` options. A copy
 * missing on one side is one difference at the path `''` (`removed` when the other side lacks
 * it, `added` when the authority does).
 *
 * @param mapping - The record's mapping.
 * @param legacyId - The record's legacy id.
 * @param record - The legacy copy, if any.
 * @param resource - The Medplum copy, if any.
 * @param authority - Which copy is the reference.
 * @returns The differences, with values (redact before logging); empty when they agree.
 * @throws {@link InvalidInputError} naming `legacyId` or `authority`.
 * @example
 * ```ts
 * const differences = compareCopies(mapping, 'p-1', record, resource, 'legacy');
 * if (differences.length > 0) report(differences.map((d) => d.path));
 * ```
 */
export function compareCopies<L>(
  mapping: ResourceMapping<L>,
  legacyId: string,
  record: LegacyRecord<L> | undefined,
  resource: Resource | undefined,
  authority: Side,
): RevealedDiffEntry[] {
  checkValue(legacyId, nonEmptyString, 'legacyId', 'input');
  checkValue(authority, aSide, 'authority', 'input');
  if (record === undefined && resource === undefined) return [];
  const details = { resourceType: mapping.resourceType, legacyId };
  const legacy =
    record === undefined
      ? undefined
      : withLegacyIdentifier(
          runMapping('toFhir', () => mapping.toFhir(record.row, resource, {}), details),
          mapping,
          legacyId,
          details,
        );
  if (legacy === undefined || resource === undefined) {
    const authorityHasIt = (authority === 'legacy' ? legacy : resource) !== undefined;
    return [{ path: '', kind: authorityHasIt ? 'removed' : 'added' }];
  }
  const [first, second] = authority === 'legacy' ? [legacy, resource] : [resource, legacy];
  return diff(first, second, { ...mapping.compare, revealValues: true });
}

/**
 * {@link compareCopies} for a mapping that declares references: the legacy row is mapped with
 * its references resolved through the links, and the Medplum copy's references are read by
 * what they point at ({@link canonicalReferences}), so `Patient/<id>` on one side and the same
 * patient by identifier on the other are no difference. Unresolvable references do not throw:
 * they compare as what they name.
 *
 * @param sources - Links, sides and mappings.
 * @param mapping - The record's mapping.
 * @param legacyId - The record's legacy id.
 * @param record - The legacy copy, if any.
 * @param resource - The Medplum copy, if any.
 * @param authority - Which copy is the reference.
 * @returns The differences, with values (redact before logging); empty when they agree.
 */
export async function compareLinkedCopies<L>(
  sources: ReferenceSources<L>,
  mapping: ResourceMapping<L>,
  legacyId: string,
  record: LegacyRecord<L> | undefined,
  resource: Resource | undefined,
  authority: Side,
): Promise<RevealedDiffEntry[]> {
  if (!hasReferences(mapping)) return compareCopies(mapping, legacyId, record, resource, authority);
  const details = { resourceType: mapping.resourceType, legacyId };
  const bound = await withReferences(sources, mapping, { row: record?.row }, details, 'lenient');
  const canonical =
    resource === undefined ? undefined : await canonicalReferences(sources, mapping, resource, details);
  return compareCopies(bound, legacyId, record, canonical, authority);
}
