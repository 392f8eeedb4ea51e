import type { Link } from './link.ts';

/**
 * Durable state the writer keeps beside the two systems. This version holds links; the
 * journal (outbox, events, cursors, stored plan) extends it.
 *
 * Contract: a link is unique on `(resourceType, legacyId)` and on `(resourceType, medplumId)`;
 * saving a link whose Medplum id is already linked to another legacy id throws
 * {@link LinkConflictError} and changes nothing.
 *
 * @example
 * ```ts
 * const store: SyncStore = new MemoryStore();
 * await store.saveLink(link);
 * await store.getLink('Patient', 'p-1');
 * ```
 */
export interface SyncStore {
  /** The link of a legacy record, if any. */
  getLink(resourceType: string, legacyId: string): Promise<Link | undefined>;
  /** The link of a Medplum resource, if any. */
  getLinkByMedplumId(resourceType: string, medplumId: string): Promise<Link | undefined>;
  /** Inserts or replaces the link of `(link.resourceType, link.legacyId)`. */
  saveLink(link: Link): Promise<void>;
  /** Removes the link of a legacy record; a no-op when there is none. */
  deleteLink(resourceType: string, legacyId: string): Promise<void>;
}

/**
 * A link would pair a Medplum resource with a second legacy record.
 *
 * @example
 * ```ts
 * if (err instanceof LinkConflictError) console.error(err.medplumId, err.existingLegacyId);
 * ```
 */
export class LinkConflictError extends Error {
  override readonly name = 'LinkConflictError' as const;
  readonly retryable = false as const;
  /** The resource type. */
  readonly resourceType: string;
  /** The Medplum id already linked. */
  readonly medplumId: string;
  /** The legacy id it is linked to. */
  readonly existingLegacyId: string;
  /** The legacy id that tried to claim it. */
  readonly legacyId: string;
  /**
   * @param resourceType - The resource type.
   * @param medplumId - The Medplum id already linked.
   * @param existingLegacyId - The legacy id it is linked to.
   * @param legacyId - The legacy id that tried to claim it.
   */
  constructor(resourceType: string, medplumId: string, existingLegacyId: string, legacyId: string) {
    super(`${resourceType}/${medplumId} is already linked to legacy id ${existingLegacyId}, not ${legacyId}`);
    this.resourceType = resourceType;
    this.medplumId = medplumId;
    this.existingLegacyId = existingLegacyId;
    this.legacyId = legacyId;
  }
}
