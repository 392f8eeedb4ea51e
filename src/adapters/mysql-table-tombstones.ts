import { tombstoneNames } from './tombstone-options.ts';
import { quoteMysqlIdent, type MysqlPool, type MysqlTableSchema } from './mysql-table-schema.ts';

/*
 * Deletes in the MySQL table feed, as in the PostgreSQL one: an AFTER DELETE trigger on each
 * legacy table writes a tombstone (key and version only, never the row) in the deleting
 * transaction, so deletes made by the legacy application itself are seen too.
 *
 * The tombstone's time is SYSDATE(6), not NOW(6). NOW() is fixed when the statement starts
 * (inside a trigger too: it is the triggering statement's start), so a DELETE that waited on a
 * row lock would be stamped before writes that committed while it waited, and a feed that had
 * already read past those would skip it. SYSDATE(6) is read when the row is deleted, after its
 * lock is granted, which keeps stamps in the order writes to one row commit. Neither is the
 * commit time itself: keep legacy transactions short. (A server started with `--sysdate-is-now`
 * makes SYSDATE behave like NOW; statement-based binary logging treats it as unsafe, so use
 * row-based or mixed logging.)
 */

/**
 * Where {@link MysqlTableAdapter} keeps tombstones of deleted rows. The table and one trigger
 * per legacy table are created by `adapter.installTombstones()`:
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS `dualwrite_tombstones` (
 *   resource_type VARCHAR(64) NOT NULL, legacy_id VARCHAR(255) NOT NULL, version BIGINT NULL,
 *   deleted_at DATETIME(6) NOT NULL, PRIMARY KEY (resource_type, legacy_id),
 *   KEY dualwrite_tombstones_feed (resource_type, deleted_at, legacy_id)) ENGINE=InnoDB;
 * CREATE TRIGGER `patients_dualwrite_tombstone` AFTER DELETE ON `patients` FOR EACH ROW
 *   INSERT INTO `dualwrite_tombstones` VALUES ('Patient', OLD.`id`, OLD.`version`, SYSDATE(6))
 *   ON DUPLICATE KEY UPDATE version = VALUES(version), deleted_at = VALUES(deleted_at);
 * ```
 *
 * @example
 * ```ts
 * const options: MysqlTombstoneOptions = { table: 'dw_tombstones', database: 'clinic' };
 * ```
 */
export interface MysqlTombstoneOptions {
  /**
   * The tombstone table (one for every resource type).
   * @default 'dualwrite_tombstones'
   */
  readonly table?: string | undefined;
  /**
   * Its database. Named in the trigger, which runs in the legacy application's sessions.
   * @default the pool's database
   */
  readonly database?: string | undefined;
}

/**
 * Checked tombstone options.
 *
 * @internal
 * @example
 * ```ts
 * const settings: MysqlTombstoneSettings = { name: 'dualwrite_tombstones', sqlTable: '`dualwrite_tombstones`' };
 * ```
 */
export interface MysqlTombstoneSettings {
  readonly name: string;
  readonly sqlTable: string;
}

/**
 * Checks the adapter's `tombstones` option.
 *
 * @param value - `undefined`, `true` or {@link MysqlTombstoneOptions}.
 * @returns The settings, or `undefined` when tombstones are off.
 * @throws `ConfigurationError` naming `tombstones.table` or `tombstones.database`.
 * @example
 * ```ts
 * validateMysqlTombstones(true)?.sqlTable; // '`dualwrite_tombstones`'
 * ```
 */
export function validateMysqlTombstones(value: unknown): MysqlTombstoneSettings | undefined {
  const names = tombstoneNames(value, { option: 'database', fallback: undefined });
  if (names === undefined) return undefined;
  const { table, namespace } = names;
  return {
    name: table,
    sqlTable:
      namespace === undefined
        ? quoteMysqlIdent(table)
        : `${quoteMysqlIdent(namespace)}.${quoteMysqlIdent(table)}`,
  };
}

/**
 * Creates the tombstone table and (re)creates one AFTER DELETE trigger per legacy table,
 * serialised against other installers by a named lock.
 *
 * @param pool - The legacy database.
 * @param settings - The tombstone table.
 * @param tables - The legacy tables.
 * @returns When installed.
 * @example
 * ```ts
 * await installMysqlTombstones(pool, settings, schemas);
 * ```
 */
export async function installMysqlTombstones(
  pool: MysqlPool,
  settings: MysqlTombstoneSettings,
  tables: readonly MysqlTableSchema[],
): Promise<void> {
  const connection = await pool.getConnection();
  try {
    await connection.query({ sql: 'SELECT GET_LOCK(?, 30)', values: [`dualwrite:${settings.sqlTable}`] });
    try {
      await connection.query({
        sql: `CREATE TABLE IF NOT EXISTS ${settings.sqlTable} (
                resource_type VARCHAR(64) NOT NULL,
                legacy_id VARCHAR(255) NOT NULL,
                version BIGINT NULL,
                deleted_at DATETIME(6) NOT NULL,
                PRIMARY KEY (resource_type, legacy_id),
                KEY ${quoteMysqlIdent(`${settings.name}_feed`)} (resource_type, deleted_at, legacy_id)
              ) ENGINE=InnoDB`,
      });
      for (const table of tables) {
        // DDL commits on its own in MySQL: between the drop and the create, a delete would go
        // unrecorded, which is why this runs at deployment, before writes start.
        const trigger = triggerName(table, settings);
        await connection.query({ sql: `DROP TRIGGER IF EXISTS ${trigger}` });
        await connection.query({
          sql: `CREATE TRIGGER ${trigger} AFTER DELETE ON ${table.sqlTable} FOR EACH ROW
                  INSERT INTO ${settings.sqlTable} (resource_type, legacy_id, version, deleted_at)
                  VALUES (${literal(table.settings.resourceType)}, OLD.${table.id.sqlName}, OLD.${table.version.sqlName}, SYSDATE(6))
                  ON DUPLICATE KEY UPDATE version = VALUES(version), deleted_at = VALUES(deleted_at)`,
        });
      }
    } finally {
      await connection.query({ sql: 'SELECT RELEASE_LOCK(?)', values: [`dualwrite:${settings.sqlTable}`] });
    }
  } finally {
    connection.release();
  }
}

function triggerName(table: MysqlTableSchema, settings: MysqlTombstoneSettings): string {
  const name = quoteMysqlIdent(`${table.settings.table}_${settings.name}`.slice(0, 64));
  return table.settings.schema === undefined ? name : `${quoteMysqlIdent(table.settings.schema)}.${name}`;
}

function literal(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
