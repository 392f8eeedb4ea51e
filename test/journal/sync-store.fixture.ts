import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
import { MemoryStore } from '../../src/journal/memory-store.ts';
import { PostgresStore } from '../../src/journal/postgres-store.ts';
import { sqlClientFromPg } from '../../src/sql/pg-client.ts';
import { sqlClientFromPglite } from '../../src/sql/pglite-client.ts';
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

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Registers a suite once per store: `MemoryStore`, `PostgresStore` on PGlite and on PostgreSQL
 * (`DATABASE_URL`). Each opener gives a fresh, empty store (a new schema, dropped after the run).
 *
 * @param suite - Registers the cases for one store, named, given how to open a fresh one.
 * @param prefix - Names the schemas, so parallel files keep apart.
 */
export function describeEveryStore(
  suite: (name: string, open: OpenSyncStore) => void,
  prefix = 'dw_store',
): void {
  suite('MemoryStore', () => Promise.resolve({ store: new MemoryStore(), close: () => Promise.resolve() }));

  describe('PostgresStore on PGlite', () => {
    // One in-memory database for the file, a fresh schema per case: starting PGlite takes far
    // longer than migrating a schema.
    let db: PGlite;
    let schemas = 0;
    beforeAll(async () => {
      db = await PGlite.create();
    });
    afterAll(async () => {
      await db.close();
    });
    suite('PostgresStore on PGlite', async () => {
      const store = await PostgresStore.open({ sql: sqlClientFromPglite(db), schema: `s_${(schemas += 1)}` });
      return { store, close: () => store.close() };
    });
  });

  describe('PostgresStore on PostgreSQL (pg Pool)', () => {
    // A prefix per run keeps parallel files and runs apart; every schema made is dropped after.
    const run = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const schemas: string[] = [];
    let pool: pg.Pool;
    beforeAll(() => {
      pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    });
    afterAll(async () => {
      for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    });
    suite('PostgresStore on PostgreSQL', async () => {
      const schema = `${run}_${schemas.length + 1}`;
      schemas.push(schema);
      const store = await PostgresStore.open({ sql: sqlClientFromPg(pool), schema });
      return { store, close: () => store.close() };
    });
  });
}
