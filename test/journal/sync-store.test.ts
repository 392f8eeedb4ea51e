import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { MemoryStore } from '../../src/journal/memory-store.ts';
import { PostgresStore } from '../../src/journal/postgres-store.ts';
import { sqlClientFromPg } from '../../src/sql/pg-client.ts';
import { sqlClientFromPglite } from '../../src/sql/pglite-client.ts';
import { describeSyncStoreContract } from './sync-store.contract.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describeSyncStoreContract('MemoryStore', () =>
  Promise.resolve({ store: new MemoryStore(), close: () => Promise.resolve() }),
);

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
  describeSyncStoreContract('PostgresStore on PGlite', async () => {
    const store = await PostgresStore.open({ sql: sqlClientFromPglite(db), schema: `s_${(schemas += 1)}` });
    return { store, close: () => store.close() };
  });
});

describe('PostgresStore on PostgreSQL (pg Pool)', () => {
  // A prefix per run keeps parallel files and runs apart; every schema made is dropped after.
  const run = `dw_store_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const schemas: string[] = [];
  let pool: pg.Pool;
  beforeAll(() => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  });
  afterAll(async () => {
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });
  describeSyncStoreContract('PostgresStore on PostgreSQL', async () => {
    const schema = `${run}_${schemas.length + 1}`;
    schemas.push(schema);
    const store = await PostgresStore.open({ sql: sqlClientFromPg(pool), schema });
    return { store, close: () => store.close() };
  });
});
