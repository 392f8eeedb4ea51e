import type { Resource } from '@medplum/fhirtypes';

/**
 * The stored pairing of a legacy record and a Medplum resource, with what was last synced.
 *
 * @example
 * ```ts
 * const link: Link = {
 *   resourceType: 'Patient',
 *   legacyId: 'p-1',
 *   medplumId: '0b3c…',
 *   legacyVersion: '2',
 *   medplumVersion: '5',
 *   contentHash: 'sha256:…',
 *   syncedAt: '2026-11-25T10:00:00.000Z',
 * };
 * ```
 */
export interface Link {
  /** The FHIR resource type. */
  readonly resourceType: string;
  /** The legacy id; unique per resource type. */
  readonly legacyId: string;
  /** The Medplum resource id; unique per resource type. */
  readonly medplumId: string;
  /** The legacy version last synced, when the legacy system keeps versions. */
  readonly legacyVersion: string | undefined;
  /** The Medplum `meta.versionId` last synced. */
  readonly medplumVersion: string | undefined;
  /** Hash of the normalised FHIR content both sides agreed on at the last sync. */
  readonly contentHash: string;
  /** When the last sync completed (ISO 8601). */
  readonly syncedAt: string;
  /**
   * The base snapshot: the FHIR content both sides agreed on at the last sync, for conflict
   * resolvers (a three-way merge needs it). Absent when the writer keeps hashes only
   * (`baseSnapshot: 'hash-only'`), or for links saved before it was kept.
   */
  readonly base?: Resource | undefined;
}
