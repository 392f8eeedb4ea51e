import { ConfigurationError } from '../errors.ts';
import { tableColumns } from './table-columns.ts';
import type { TableSettings } from './postgres-table-schema.ts';

/**
 * What {@link MysqlTableAdapter} learns about one MySQL or MariaDB table from
 * `information_schema`, and the minimal structural view of a `mysql2` pool it runs on (the
 * library does not import `mysql2`).
 *
 * @internal
 */

/**
 * Per-query options the adapter passes to `mysql2`, so that values read the same whatever the
 * pool was configured with: dates and times as the server's text, BIGINT and DECIMAL as text.
 *
 * @example
 * ```ts
 * await pool.query({ sql: 'SELECT 1', values: [], dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
 * ```
 */
export interface MysqlQueryOptions {
  readonly sql: string;
  readonly values?: unknown[];
  readonly dateStrings?: boolean;
  readonly supportBigNumbers?: boolean;
  readonly bigNumberStrings?: boolean;
}

/**
 * Something that runs a query: a `mysql2/promise` pool or one of its connections.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise';
 * const db: MysqlQueryable = mysql.createPool(process.env.LEGACY_DATABASE_URL ?? '');
 * ```
 */
export interface MysqlQueryable {
  /** Runs one statement; answers `[rows or result header, fields]` as `mysql2/promise` does. */
  query(options: MysqlQueryOptions): Promise<[unknown, unknown]>;
}

/**
 * One connection taken from the pool, for a transaction.
 *
 * @example
 * ```ts
 * const connection: MysqlConnection = await pool.getConnection();
 * ```
 */
export interface MysqlConnection extends MysqlQueryable {
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  release(): void;
}

/**
 * A `mysql2/promise` pool, as the adapter uses it (`mysql.createPool(...)` fits).
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise';
 * const pool: MysqlPool = mysql.createPool({ uri: 'mysql://app@127.0.0.1:3306/clinic', connectionLimit: 8 });
 * ```
 */
export interface MysqlPool extends MysqlQueryable {
  getConnection(): Promise<MysqlConnection>;
}

/**
 * One column of a discovered table.
 *
 * @example
 * ```ts
 * const text = `UPDATE ${schema.sqlTable} SET ${column.sqlName} = ?`;
 * ```
 */
export interface MysqlColumn {
  readonly name: string;
  /** Backquoted. */
  readonly sqlName: string;
  /** `int`, `bigint`, `varchar`, `json`, … (lower case). */
  readonly dataType: string;
  /** A generated (virtual or stored) column, never written. */
  readonly generated: boolean;
  readonly autoIncrement: boolean;
  /** The default as an SQL expression the server evaluates (`uuid()`), when it is one. */
  readonly defaultExpression: string | undefined;
}

/**
 * A table as the adapter writes it.
 *
 * @example
 * ```ts
 * const text = `SELECT ${schema.selectList} FROM ${schema.sqlTable} t WHERE t.${schema.id.sqlName} = ?`;
 * ```
 */
export interface MysqlTableSchema {
  readonly settings: TableSettings;
  /** `` `database`.`table` `` (or just the table, in the connection's database). */
  readonly sqlTable: string;
  readonly id: MysqlColumn;
  readonly version: MysqlColumn;
  readonly updatedAt: MysqlColumn;
  readonly writable: readonly MysqlColumn[];
  readonly all: readonly MysqlColumn[];
  /** Whether ids are integers: an id that is not integer text then names no record. */
  readonly integerId: boolean;
  /** `caller`, `auto-increment` (the id comes back as the insert id) or `expression`. */
  readonly idSource: 'caller' | 'auto-increment' | 'expression';
  /**
   * Every column of `t`, with the updated-at also as `dw_at` (its text at microseconds, in the
   * session's time zone, for cursors) and `dw_epoch` (seconds since the epoch, for an ISO
   * instant that does not depend on the time zone).
   */
  readonly selectList: string;
  /** The select list's expressions, one per column it answers. */
  readonly selectColumns: readonly string[];
}

/** The extra columns {@link MysqlTableSchema.selectList} adds. */
export const AT_COLUMN = 'dw_at';
export const EPOCH_COLUMN = 'dw_epoch';

const INTEGER_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint']);
const TIME_TYPES = new Set(['timestamp', 'datetime']);

interface CatalogColumn {
  readonly name: string;
  readonly dataType: string;
  readonly columnDefault: string | null;
  readonly extra: string;
}

/**
 * Backquotes a MySQL identifier (names are checked against `/^[A-Za-z_][A-Za-z0-9_]*$/` first).
 *
 * @param name - The identifier.
 * @returns The quoted identifier.
 * @example
 * ```ts
 * quoteMysqlIdent('order'); // '`order`'
 * ```
 */
export function quoteMysqlIdent(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/**
 * The text of a `DATETIME(6)`/`TIMESTAMP(6)` expression at microseconds, in the session's time
 * zone: the form cursors keep and compare with.
 *
 * @param expression - The column or expression.
 * @returns The SQL expression.
 * @example
 * ```ts
 * atText('t.`updated_at`'); // DATE_FORMAT(t.`updated_at`, '%Y-%m-%d %H:%i:%s.%f')
 * ```
 */
export function atText(expression: string): string {
  return `DATE_FORMAT(${expression}, '%Y-%m-%d %H:%i:%s.%f')`;
}

/**
 * Reads a table's columns from `information_schema` and checks them against the settings.
 *
 * @param db - The legacy database.
 * @param settings - One resource type's validated settings.
 * @returns The table as the adapter writes it.
 * @throws {@link ConfigurationError} when the table or a named column is missing or unfit.
 * @example
 * ```ts
 * const schema = await discoverMysqlTable(pool, settings);
 * ```
 */
export async function discoverMysqlTable(
  db: MysqlQueryable,
  settings: TableSettings,
): Promise<MysqlTableSchema> {
  const path = `tables.${settings.resourceType}`;
  const [rows] = await db.query({
    sql: `SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_DEFAULT AS columnDefault, EXTRA AS extra
            FROM information_schema.COLUMNS
           WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
           ORDER BY ORDINAL_POSITION`,
    values: [settings.schema ?? null, settings.table],
  });
  const catalog = rows as readonly CatalogColumn[];
  const sqlTable =
    settings.schema === undefined
      ? quoteMysqlIdent(settings.table)
      : `${quoteMysqlIdent(settings.schema)}.${quoteMysqlIdent(settings.table)}`;
  if (catalog.length === 0) {
    throw new ConfigurationError(
      `${path}.table`,
      settings.table,
      `no such table or view is visible (${sqlTable})`,
    );
  }
  const all = catalog.map(toColumn);
  const { id, version, updatedAt, writable } = tableColumns(settings, sqlTable, all, {
    version: (column) =>
      INTEGER_TYPES.has(column.dataType) ? undefined : `must be an integer column, not ${column.dataType}`,
    updatedAt: (column) =>
      TIME_TYPES.has(column.dataType)
        ? undefined
        : `must be a DATETIME(6) or TIMESTAMP(6) column, not ${column.dataType}`,
  });
  const automatic = id.autoIncrement
    ? 'auto-increment'
    : id.defaultExpression === undefined
      ? undefined
      : 'expression';
  if (settings.idGeneration === 'database' && automatic === undefined) {
    throw new ConfigurationError(
      `${path}.idGeneration`,
      'database',
      'needs an AUTO_INCREMENT id column or one whose default is an expression such as uuid()',
    );
  }
  const at = `t.${updatedAt.sqlName}`;
  const selectColumns = [
    ...all.map((column) => `t.${column.sqlName}`),
    `${atText(at)} AS ${AT_COLUMN}`,
    `UNIX_TIMESTAMP(${at}) AS ${EPOCH_COLUMN}`,
  ];
  return {
    settings,
    sqlTable,
    id,
    version,
    updatedAt,
    writable,
    all,
    integerId: INTEGER_TYPES.has(id.dataType),
    idSource: settings.idGeneration === 'caller' ? 'caller' : (automatic ?? 'caller'),
    selectList: selectColumns.join(', '),
    selectColumns,
  };
}

function toColumn(row: CatalogColumn): MysqlColumn {
  const extra = row.extra.toUpperCase();
  const generated = /\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b/.test(extra);
  return {
    name: row.name,
    sqlName: quoteMysqlIdent(row.name),
    dataType: row.dataType.toLowerCase(),
    generated,
    autoIncrement: extra.includes('AUTO_INCREMENT'),
    defaultExpression: generated ? undefined : defaultExpression(row.columnDefault, extra),
  };
}

/**
 * The default when it is an expression. MySQL 8 marks those `DEFAULT_GENERATED` and states the
 * expression bare; MariaDB states literals quoted (`'a'`, or a bare number) and expressions
 * bare (`uuid()`).
 */
function defaultExpression(columnDefault: string | null, extra: string): string | undefined {
  if (columnDefault === null || columnDefault.toUpperCase() === 'NULL') return undefined;
  if (extra.includes('DEFAULT_GENERATED')) return `(${columnDefault})`;
  if (columnDefault.startsWith("'") || /^-?[\d.]+$/.test(columnDefault)) return undefined;
  // A bare word on MySQL 8 without DEFAULT_GENERATED is a literal, not an expression.
  return /\(.*\)$/.test(columnDefault) ? `(${columnDefault})` : undefined;
}

/**
 * Turns a row as `mysql2` read it (with the adapter's query options) into the row the adapter
 * answers: the extra columns removed, the updated-at as an ISO 8601 UTC instant.
 *
 * @param schema - The table.
 * @param raw - The driver's row.
 * @returns The row, and the updated-at as cursor text and as ISO.
 * @example
 * ```ts
 * const { row, at, iso } = decodeMysqlRow(schema, raw);
 * ```
 */
export function decodeMysqlRow(
  schema: MysqlTableSchema,
  raw: Readonly<Record<string, unknown>>,
): { row: Record<string, unknown>; at: string | undefined; iso: string | undefined } {
  const row: Record<string, unknown> = {};
  for (const column of schema.all) row[column.name] = raw[column.name];
  const epoch = raw[EPOCH_COLUMN];
  const iso = typeof epoch === 'string' || typeof epoch === 'number' ? isoOfEpoch(String(epoch)) : undefined;
  row[schema.updatedAt.name] = iso ?? null;
  const at = raw[AT_COLUMN];
  return { row, at: typeof at === 'string' ? at : undefined, iso };
}

/** `'1764769200.123456'` → `'2025-12-03T13:40:00.123456Z'`, exact to the microsecond. */
function isoOfEpoch(epoch: string): string | undefined {
  const [seconds, fraction = ''] = epoch.split('.');
  const whole = Number(seconds);
  if (!Number.isSafeInteger(whole)) return undefined;
  const micros = fraction.padEnd(6, '0').slice(0, 6);
  const digits = micros.endsWith('000') ? micros.slice(0, 3) : micros;
  return new Date(whole * 1000).toISOString().replace(/\.\d{3}Z$/, `.${digits}Z`);
}
