import { LRUCache } from 'lru-cache';
import type { Link } from './link.ts';
import type { SyncStore } from './sync-store.ts';

/**
 * An `lru-cache` in front of a store's link look-ups. Never the source of truth: writes go
 * through to the store first, and a caller that suspects a stale entry (another instance
 * synced the record) calls {@link LinkCache.evict} and reads again.
 */
export class LinkCache {
  readonly #store: SyncStore;
  readonly #byLegacy: LRUCache<string, Link>;

  /**
   * @param store - The store the links live in.
   * @param max - Most links kept.
   */
  constructor(store: SyncStore, max: number) {
    this.#store = store;
    this.#byLegacy = new LRUCache({ max });
  }

  /** The link of a legacy record. */
  async get(resourceType: string, legacyId: string): Promise<Link | undefined> {
    const key = `${resourceType}/${legacyId}`;
    const cached = this.#byLegacy.get(key);
    if (cached !== undefined) return cached;
    const link = await this.#store.getLink(resourceType, legacyId);
    if (link !== undefined) this.#byLegacy.set(key, link);
    return link;
  }

  /** The link of a Medplum resource (not cached: the reverse look-up is rare). */
  byMedplumId(resourceType: string, medplumId: string): Promise<Link | undefined> {
    return this.#store.getLinkByMedplumId(resourceType, medplumId);
  }

  /** Saves a link to the store, then caches it. */
  async save(link: Link): Promise<void> {
    const key = `${link.resourceType}/${link.legacyId}`;
    this.#byLegacy.delete(key);
    await this.#store.saveLink(link);
    this.#byLegacy.set(key, link);
  }

  /** Deletes a link from the store and the cache. */
  async delete(resourceType: string, legacyId: string): Promise<void> {
    this.#byLegacy.delete(`${resourceType}/${legacyId}`);
    await this.#store.deleteLink(resourceType, legacyId);
  }

  /** Drops a cached link so the next look-up reads the store. */
  evict(resourceType: string, legacyId: string): void {
    this.#byLegacy.delete(`${resourceType}/${legacyId}`);
  }
}
