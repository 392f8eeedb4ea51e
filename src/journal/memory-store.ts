import type { Link } from './link.ts';
import { LinkConflictError, type SyncStore } from './sync-store.ts';

/**
 * A {@link SyncStore} in process memory, for tests and single-process tools. Lost on exit:
 * production uses a durable store.
 *
 * @example
 * ```ts
 * const writer = new DualWriter({ store: new MemoryStore(), ... });
 * ```
 */
export class MemoryStore implements SyncStore {
  readonly #byLegacy = new Map<string, Link>();
  readonly #byMedplum = new Map<string, Link>();

  /** {@inheritDoc SyncStore.getLink} */
  getLink(resourceType: string, legacyId: string): Promise<Link | undefined> {
    return Promise.resolve(this.#byLegacy.get(key(resourceType, legacyId)));
  }

  /** {@inheritDoc SyncStore.getLinkByMedplumId} */
  getLinkByMedplumId(resourceType: string, medplumId: string): Promise<Link | undefined> {
    return Promise.resolve(this.#byMedplum.get(key(resourceType, medplumId)));
  }

  /** {@inheritDoc SyncStore.saveLink} */
  saveLink(link: Link): Promise<void> {
    const owner = this.#byMedplum.get(key(link.resourceType, link.medplumId));
    if (owner !== undefined && owner.legacyId !== link.legacyId) {
      return Promise.reject(
        new LinkConflictError(link.resourceType, link.medplumId, owner.legacyId, link.legacyId),
      );
    }
    const previous = this.#byLegacy.get(key(link.resourceType, link.legacyId));
    if (previous !== undefined) this.#byMedplum.delete(key(previous.resourceType, previous.medplumId));
    const copy = { ...link };
    this.#byLegacy.set(key(link.resourceType, link.legacyId), copy);
    this.#byMedplum.set(key(link.resourceType, link.medplumId), copy);
    return Promise.resolve();
  }

  /** {@inheritDoc SyncStore.deleteLink} */
  deleteLink(resourceType: string, legacyId: string): Promise<void> {
    const previous = this.#byLegacy.get(key(resourceType, legacyId));
    if (previous !== undefined) {
      this.#byLegacy.delete(key(resourceType, legacyId));
      this.#byMedplum.delete(key(resourceType, previous.medplumId));
    }
    return Promise.resolve();
  }
}

function key(resourceType: string, id: string): string {
  return `${resourceType}/${id}`;
}
