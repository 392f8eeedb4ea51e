import { afterEach, beforeEach } from 'vitest';
import type { Link } from '../../src/journal/link.ts';
import type { OutboxIntent } from '../../src/journal/outbox.ts';
import type { SyncStore } from '../../src/journal/sync-store.ts';

/** One store under test, empty, and how to let go of it. */
export interface SyncStoreFixture {
  readonly store: SyncStore;
  close(): Promise<void>;
}

/** Opens a fresh, empty store for each case. */
export type OpenSyncStore = () => Promise<SyncStoreFixture>;

/**
 * Opens a fresh store before each case and closes it after; the returned object's `store` is
 * the current one.
 */
export function useStore(open: OpenSyncStore): { readonly store: SyncStore } {
  let current: SyncStoreFixture | undefined;
  beforeEach(async () => {
    current = await open();
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return {
    get store(): SyncStore {
      if (current === undefined) throw new Error('no store open outside a test');
      return current.store;
    },
  };
}

/** A link of `Patient` `legacyId` to `medplumId`, with versions, hash and a sync time. */
export function linkOf(legacyId: string, medplumId: string, overrides: Partial<Link> = {}): Link {
  return {
    resourceType: 'Patient',
    legacyId,
    medplumId,
    legacyVersion: '1',
    medplumVersion: '1',
    contentHash: `sha256:${legacyId}`,
    syncedAt: '2026-11-25T10:00:00.123Z',
    ...overrides,
  };
}

/** An upsert intent of `Patient` `legacyId` towards Medplum, for unit `north`. */
export function intentOf(legacyId: string, overrides: Partial<OutboxIntent> = {}): OutboxIntent {
  return {
    resourceType: 'Patient',
    legacyId,
    target: 'medplum',
    unit: 'north',
    kind: 'upsert',
    ...overrides,
  };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
