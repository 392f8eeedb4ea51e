import type { Resource } from '@medplum/fhirtypes';
import { contentHash } from '../divergence/normalise.ts';
import type { Link } from '../journal/link.ts';
import { runMapping, withLegacyIdentifier } from '../mapping/mapped-record.ts';
import type { ResourceMapping } from '../mapping/resource-mapping.ts';
import type { LegacyRecord } from '../sides/legacy-adapter.ts';

/**
 * A record as one side holds it now, as a feed read it.
 *
 * @example
 * ```ts
 * const copy: SideCopy<PatientRow> = { side: 'medplum', resource: patient };
 * ```
 */
export type SideCopy<L> =
  | { readonly side: 'legacy'; readonly record: LegacyRecord<L> }
  | { readonly side: 'medplum'; readonly resource: Resource };

/**
 * Whether a change a feed read is an echo: the side holds exactly what the library last synced
 * (its own mirror, or a change already mirrored), so the other side needs nothing.
 *
 * Versions decide when they match (cheap and exact); otherwise content does, because a
 * version can move without a change (a legacy trigger touching the row, a Medplum update
 * that rewrote the same content in a restored resource). A Medplum copy is hashed as the
 * link's hash was made; a legacy row is mapped onto the link's base snapshot (as a mirror
 * would map it, so fields only Medplum holds are kept) and hashed. A row the mapping rejects
 * is not an echo: the mirror will report why.
 *
 * @param copy - The side's current copy.
 * @param link - The record's link, if any; without one nothing was synced, so no echo.
 * @param mapping - The record's mapping (for legacy rows).
 * @param legacyId - The record's legacy id.
 * @returns `true` when the change needs no mirror.
 * @example
 * ```ts
 * if (isEcho({ side: 'medplum', resource }, await store.getLink('Patient', '42'), mapping, '42')) tally.echoes += 1;
 * ```
 */
export function isEcho<L>(
  copy: SideCopy<L>,
  link: Link | undefined,
  mapping: ResourceMapping<L>,
  legacyId: string,
): boolean {
  if (link === undefined) return false;
  if (copy.side === 'medplum') {
    const { resource } = copy;
    if (resource.id === link.medplumId && resource.meta?.versionId === link.medplumVersion) return true;
    return contentHash(resource) === link.contentHash;
  }
  const { record } = copy;
  if (record.version !== undefined && record.version === link.legacyVersion) return true;
  const details = { resourceType: mapping.resourceType, legacyId, side: 'legacy' as const };
  try {
    const mapped = runMapping('toFhir', () => mapping.toFhir(record.row, link.base, {}), details);
    return contentHash(withLegacyIdentifier(mapped, mapping, legacyId, details)) === link.contentHash;
  } catch {
    return false;
  }
}
