/**
 * The clinic on MariaDB (InnoDB), as OpenEMR and many practice systems run. The run's tables
 * are created in the database the URL names, their names prefixed with the run's id.
 *
 * What differs from PostgreSQL, and why:
 * - Ids come from a SEQUENCE that is the id column's default, not from AUTO_INCREMENT: records
 *   that start in Medplum need their legacy id before the row exists (the writer journals the
 *   intent first), and only a sequence can hand one out ahead (the adapter's `newId` evaluates
 *   the default). MariaDB has sequences since 10.3 and `INSERT … RETURNING` since 10.5; MySQL
 *   has neither, so this dialect needs MariaDB, from 10.6 as the adapter does.
 * - `updated_at` is stamped with `SYSDATE(6)`, the time of the write itself: `NOW(6)` and
 *   `CURRENT_TIMESTAMP(6)` are fixed at the statement's start, so a write that waited on a lock
 *   would be stamped before writes that committed meanwhile, and the change feed could already
 *   be past it.
 * - The journal cannot live here: it is PostgreSQL (`DATABASE_URL`, else PGlite in process),
 *   so no transaction spans a legacy write and its outbox entry; the writer journals each
 *   intent before the legacy write and holds the record until it lands.
 */
import mysql from 'mysql2/promise';
import { MysqlTableAdapter, PostgresStore } from '../../src/index.ts';
import type {
  ClinicColumnKind,
  ClinicDialect,
  ClinicTable,
  LegacyDatabaseOptions,
} from './legacy-database.ts';
import { openPostgres } from './legacy-postgres.ts';

const TYPES: Record<ClinicColumnKind, string> = { text: 'VARCHAR(255)', integer: 'INT', date: 'DATE' };

/**
 * A clinic table's `CREATE TABLE` in MariaDB, after the `CREATE SEQUENCE` its id draws from.
 *
 * @param name - The table's name as the statements write it.
 * @param table - The table.
 * @returns The statements, in order.
 */
export function mariadbTableSql(name: string, table: ClinicTable): string[] {
  const columns = Object.entries(table.columns).map(
    ([column, { kind, nullable }]) => `${column} ${TYPES[kind]} ${nullable === true ? 'NULL' : 'NOT NULL'}`,
  );
  return [
    `CREATE SEQUENCE ${name}_ids`,
    `CREATE TABLE ${name} (
      id INT NOT NULL DEFAULT NEXTVAL(${name}_ids) PRIMARY KEY,
      ${columns.join(',\n      ')},
      version INT NOT NULL DEFAULT 1,
      updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
    ) ENGINE=InnoDB`,
  ];
}

/**
 * The clinic on MariaDB at `url`: checks the server, creates the run's tables and tombstones,
 * opens the journal in PostgreSQL.
 *
 * @param url - `mysql://user@host:3306/database`.
 * @param options - The run and its tables.
 * @returns The dialect.
 */
export async function openMariadbClinic(url: string, options: LegacyDatabaseOptions): Promise<ClinicDialect> {
  const pool = mysql.createPool({
    uri: url.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: options.connections,
    dateStrings: true,
  });
  const prefix = `clinic_${options.runId}`;
  const journalSchema = `dualwrite_demo_${options.runId}`;
  const created: string[] = [];
  try {
    const [[server]] = (await pool.query('SELECT VERSION() AS version')) as unknown as [
      [{ version: string }],
    ];
    const [major = 0, minor = 0] = server.version.split('.').map(Number);
    if (!server.version.includes('MariaDB') || major * 100 + minor < 1006)
      throw new Error(
        `LEGACY_DATABASE_URL: the demo needs MariaDB 10.6 or later (sequences, INSERT … RETURNING), not ${server.version}`,
      );
    for (const table of options.tables) {
      const name = `${prefix}_${table.name}`;
      created.push(name);
      for (const statement of mariadbTableSql(name, table)) await pool.query(statement);
    }
  } catch (err) {
    await dropTables(pool, created, prefix).catch(() => undefined);
    await pool.end();
    throw err;
  }
  const adapter = new MysqlTableAdapter({
    pool,
    tables: Object.fromEntries(
      options.tables.map((table) => [table.resourceType, { table: `${prefix}_${table.name}` }]),
    ),
    tombstones: { table: `${prefix}_tombstones` },
  });
  await adapter.installTombstones();
  const journal = await openPostgres(process.env.DATABASE_URL, 4);
  const store = await PostgresStore.open({ sql: journal.sql, schema: journalSchema });
  return {
    where: 'MariaDB (LEGACY_DATABASE_URL)',
    journalWhere: `${journal.where}: a second database, so intents are journalled ahead of each legacy write`,
    adapter,
    store,
    table: (name) => `${prefix}_${name}`,
    param: () => '?',
    text: (column) => `CAST(${column} AS CHAR)`,
    clock: 'SYSDATE(6)',
    query: async (sql, values) => {
      const [rows] = await pool.query(sql, [...values]);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    close: async () => {
      await dropTables(pool, created, prefix);
      await pool.end();
      if (journal.shared) await journal.sql.query(`drop schema ${journalSchema} cascade`);
      await store.close();
      await journal.close();
    },
  };
}

/** Drops the run's tables (their triggers go with them), their sequences and the tombstones. */
async function dropTables(pool: mysql.Pool, tables: readonly string[], prefix: string): Promise<void> {
  for (const name of tables) {
    await pool.query(`DROP TABLE IF EXISTS ${name}`);
    await pool.query(`DROP SEQUENCE IF EXISTS ${name}_ids`);
  }
  await pool.query(`DROP TABLE IF EXISTS ${prefix}_tombstones`);
}
