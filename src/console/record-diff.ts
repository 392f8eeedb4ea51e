import type { MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { compareLinkedCopies } from '../divergence/compare-copies.ts';
import { InvalidInputError } from '../errors.ts';
import type { SyncStore } from '../journal/sync-store.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import { checkValue, nonEmptyString, resourceTypeName } from '../option-checks.ts';
import type { LegacyAdapter } from '../sides/legacy-adapter.ts';
import { MedplumSide } from '../sides/medplum-side.ts';

/**
 * What the console reads one record's two copies from, to show where they differ.
 *
 * @typeParam L - The legacy row type.
 * @example
 * ```ts
 * const records: RecordSources<PatientRow> = { store, legacy, medplum, mappings: [patients] };
 * ```
 */
export interface RecordSources<L> {
  /** The journal (its links find the Medplum copy and translate references). */
  readonly store: SyncStore;
  readonly legacy: LegacyAdapter<L>;
  readonly medplum: MedplumClient;
  readonly mappings: readonly ResourceMapping<L>[];
}

/**
 * Where one record's two copies differ: each path, its kind, and the values (PHI: shown to the
 * person who asked, never logged or stored).
 *
 * @example
 * ```ts
 * const { differences } = await recordDiff(records, 'Patient', 'p-1');
 * ```
 */
export interface RecordDiff {
  readonly resourceType: string;
  readonly legacyId: string;
  /** The Medplum copy's id, when there is one. */
  readonly medplumId: string | undefined;
  /**
   * Which systems hold the record: both, one (which), or neither — a record on neither side has
   * no differences, and its copies do not "agree": there are none.
   */
  readonly presence: RecordPresence;
  /** `before` is the legacy copy's value (mapped to FHIR), `after` the Medplum copy's. */
  readonly differences: readonly {
    readonly path: string;
    readonly kind: 'added' | 'removed' | 'changed';
    readonly before?: unknown;
    readonly after?: unknown;
  }[];
}

/**
 * Which systems hold a record, for its diff.
 *
 * @example
 * ```ts
 * const presence: RecordPresence = 'legacy-only';
 * ```
 */
export type RecordPresence = 'both' | 'legacy-only' | 'medplum-only' | 'neither';

/**
 * Reads both copies of one record and compares them as the library does (the legacy row mapped
 * onto the Medplum copy, references read through the links): the Medplum copy by its link, else
 * by the legacy identifier.
 *
 * @param sources - The journal, both systems and the mappings.
 * @param resourceType - The record's resource type (a mapped one).
 * @param legacyId - Its legacy id.
 * @returns The differences, with values.
 * @throws {@link InvalidInputError} naming `resourceType` (not mapped) or `legacyId`.
 * @example
 * ```ts
 * const diff = await recordDiff({ store, legacy, medplum, mappings }, 'Patient', 'p-1');
 * for (const d of diff.differences) console.log(d.path, d.kind);
 * ```
 */
export async function recordDiff<L>(
  sources: RecordSources<L>,
  resourceType: string,
  legacyId: string,
): Promise<RecordDiff> {
  checkValue(resourceType, resourceTypeName, 'resourceType', 'input');
  checkValue(legacyId, nonEmptyString, 'legacyId', 'input');
  const mappings = new Map<string, ResourceMapping<L>>(
    sources.mappings.map((mapping) => [mapping.resourceType, mapping]),
  );
  const mapping = mappings.get(resourceType);
  if (mapping === undefined)
    throw new InvalidInputError(
      'resourceType',
      `has no mapping (mapped types: ${[...mappings.keys()].join(', ')})`,
    );
  const medplum = new MedplumSide(sources.medplum);
  const link = await sources.store.getLink(resourceType, legacyId);
  const [record, resource] = await Promise.all([
    sources.legacy.read(resourceType, legacyId),
    link === undefined
      ? medplum.findByIdentifier<Resource>(resourceType, mapping.identifierSystem, legacyId)
      : medplum.read<Resource>(resourceType, link.medplumId),
  ]);
  const differences = await compareLinkedCopies(
    { legacy: sources.legacy, medplum, store: sources.store, mappings },
    mapping,
    legacyId,
    record,
    resource,
    'legacy',
  );
  const presence: RecordPresence =
    record === undefined
      ? resource === undefined
        ? 'neither'
        : 'medplum-only'
      : resource === undefined
        ? 'legacy-only'
        : 'both';
  return { resourceType, legacyId, medplumId: resource?.id, presence, differences };
}
