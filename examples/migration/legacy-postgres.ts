/**
 * The clinic on PostgreSQL: PGlite in process, or a server. The run's tables live in a schema
 * of their own, and so does the journal, in the same database: each legacy write and its
 * outbox entry commit in one transaction (the transactional outbox).
 */
import {
  PostgresStore,
  PostgresTableAdapter,
  sqlClientFromPg,
  sqlClientFromPglite,
  type SqlClient,
} from '../../src/index.ts';
import type {
  ClinicColumnKind,
  ClinicDialect,
  ClinicTable,
  LegacyDatabaseOptions,
} from './legacy-database.ts';

/** A PostgreSQL database: a SQL client, what it is, and how to close it. */
export interface PostgresDatabase {
  readonly sql: SqlClient;
  readonly where: string;
  /** Whether it is a server shared with others (then a run drops what it created). */
  readonly shared: boolean;
  close(): Promise<void>;
}

/**
 * Opens a PostgreSQL server at `url`, or PGlite in process when there is none.
 *
 * @param url - `postgres://…`, or `undefined`/empty for PGlite.
 * @param connections - Most connections to a server.
 * @returns The database.
 */
export async function openPostgres(url: string | undefined, connections: number): Promise<PostgresDatabase> {
  if (url !== undefined && url !== '') {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: url, max: connections });
    return { sql: sqlClientFromPg(pool), where: 'PostgreSQL', shared: true, close: () => pool.end() };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite();
  return {
    sql: sqlClientFromPglite(db),
    where: 'PGlite (embedded PostgreSQL)',
    shared: false,
    close: () => db.close(),
  };
}

const TYPES: Record<ClinicColumnKind, string> = { text: 'text', integer: 'integer', date: 'date' };

/**
 * A clinic table's `create table` in PostgreSQL: a `serial` id (its sequence can hand out an id
 * ahead of the insert), and `updated_at` defaulting to `clock_timestamp()` (the time of the
 * write itself, not of its transaction's start).
 *
 * @param name - The table's name as the statement writes it (schema-qualified or not).
 * @param table - The table.
 * @returns The statement.
 */
export function postgresTableSql(name: string, table: ClinicTable): string {
  const columns = Object.entries(table.columns).map(
    ([column, { kind, nullable }]) => `${column} ${TYPES[kind]}${nullable === true ? '' : ' not null'}`,
  );
  return `
  create table ${name} (
    id serial primary key,
    ${columns.join(',\n    ')},
    version integer not null default 1,
    updated_at timestamptz not null default clock_timestamp()
  )`;
}

/**
 * The clinic on PostgreSQL at `url` (PGlite without one): creates the run's schema and tables,
 * installs tombstones, opens the journal beside them.
 *
 * @param url - The server, or `undefined` for PGlite.
 * @param options - The run and its tables.
 * @returns The dialect.
 */
export async function openPostgresClinic(
  url: string | undefined,
  options: LegacyDatabaseOptions,
): Promise<ClinicDialect> {
  const db = await openPostgres(url, options.connections);
  const schema = `demo_clinic_${options.runId}`;
  const journalSchema = `dualwrite_demo_${options.runId}`;
  await db.sql.query(`create schema ${schema}`);
  for (const table of options.tables) await db.sql.query(postgresTableSql(`${schema}.${table.name}`, table));
  const adapter = new PostgresTableAdapter({
    sql: db.sql,
    tables: Object.fromEntries(
      options.tables.map((table) => [table.resourceType, { table: table.name, schema }]),
    ),
    tombstones: { schema },
  });
  await adapter.installTombstones();
  const store = await PostgresStore.open({ sql: db.sql, schema: journalSchema });
  return {
    where: db.shared ? 'PostgreSQL (LEGACY_DATABASE_URL or DATABASE_URL)' : db.where,
    journalWhere: 'the legacy database (a transactional outbox)',
    adapter,
    store,
    table: (name) => `${schema}.${name}`,
    param: (n) => `$${String(n)}`,
    text: (column) => `${column}::text`,
    clock: 'clock_timestamp()',
    query: async (sql, values) => (await db.sql.query(sql, [...values])).rows,
    close: async () => {
      if (db.shared) {
        await db.sql.query(`drop schema ${schema} cascade`);
        await db.sql.query(`drop schema ${journalSchema} cascade`);
      }
      await store.close();
      await db.close();
    },
  };
}
