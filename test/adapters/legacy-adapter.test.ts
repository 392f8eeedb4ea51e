import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { PostgresTableAdapter } from '../../src/adapters/postgres-table-adapter.ts';
import { sqlClientFromPg } from '../../src/sql/pg-client.ts';
import { sqlClientFromPglite } from '../../src/sql/pglite-client.ts';
import type { SqlClient } from '../../src/sql/sql-client.ts';
import { MemoryLegacyAdapter } from '../../src/testing/memory-legacy-adapter.ts';
import {
  describeLegacyAdapterContract,
  type ContractRow,
  type LegacyAdapterFixture,
} from './legacy-adapter.contract.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describeLegacyAdapterContract('MemoryLegacyAdapter', () =>
  Promise.resolve({ adapter: new MemoryLegacyAdapter<ContractRow>(), resourceType: 'Patient' }),
);

describe('PostgresTableAdapter on PGlite', () => {
  let db: PGlite;
  let tables = 0;
  beforeAll(async () => {
    db = new PGlite();
    await db.waitReady;
  });
  afterAll(async () => {
    await db.close();
  });
  describeLegacyAdapterContract('PostgresTableAdapter on PGlite', () =>
    patientsFixture(sqlClientFromPglite(db), 'public', `patients_${(tables += 1)}`),
  );
});

describe('PostgresTableAdapter on PostgreSQL (pg Pool)', () => {
  // A schema per run keeps parallel test files and runs from seeing each other's tables.
  const schema = `dw_contract_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  let pool: pg.Pool;
  let tables = 0;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    await pool.query(`CREATE SCHEMA "${schema}"`);
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });
  describeLegacyAdapterContract('PostgresTableAdapter on PostgreSQL', () =>
    patientsFixture(sqlClientFromPg(pool), schema, `patients_${(tables += 1)}`),
  );
});

async function patientsFixture(sql: SqlClient, schema: string, table: string): Promise<LegacyAdapterFixture> {
  const qualified = `"${schema}"."${table}"`;
  await sql.query(`
    CREATE TABLE ${qualified} (
      id text PRIMARY KEY DEFAULT gen_random_uuid()::text,
      name text,
      note text,
      version integer NOT NULL DEFAULT 1,
      updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`);
  return {
    adapter: new PostgresTableAdapter({ sql, tables: { Patient: { table, schema } } }),
    resourceType: 'Patient',
    shareTimestamp: async (ids) => {
      await sql.query(
        `UPDATE ${qualified} SET updated_at = '2030-01-01T00:00:00Z' WHERE id = ANY($1::text[])`,
        [ids],
      );
    },
  };
}
