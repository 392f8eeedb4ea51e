import { ConfigurationError } from '../errors.ts';
import type { SqlClient } from '../sql/sql-client.ts';
import type { TableSettings } from './postgres-table-schema.ts';
import type { PostgresTombstoneOptions } from './postgres-table-tombstones.ts';

/**
 * Where one FHIR resource type lives in the legacy database.
 *
 * Identifiers are checked against `/^[A-Za-z_][A-Za-z0-9_]*$/` and always double-quoted, so
 * they are case-sensitive: a table created as `create table Patients` is named `patients`.
 *
 * @example
 * ```ts
 * const patients: PostgresTableOptions = { table: 'patients', schema: 'legacy', idColumn: 'patient_id' };
 * ```
 */
export interface PostgresTableOptions {
  /** The table (or simple view) holding the records. */
  readonly table: string;
  /**
   * The schema of the table.
   * @default resolved through the connection's `search_path`, once, at first use
   */
  readonly schema?: string | undefined;
  /**
   * The key column. Ids are strings in the adapter's API whatever its type; they are cast to
   * the column's type in SQL so its index is used.
   * @default 'id'
   */
  readonly idColumn?: string | undefined;
  /**
   * An integer column the adapter sets to 1 on create and increments on every update; the
   * record's version. Writes made by the legacy application itself must increment it too
   * (a trigger does), or conflicts with them go unseen.
   * @default 'version'
   */
  readonly versionColumn?: string | undefined;
  /**
   * A `timestamptz` column the adapter sets to `clock_timestamp()` on every write (not `now()`,
   * which is fixed per transaction, so rows written together still differ). The change feed
   * reads it; legacy writes must maintain it too.
   * @default 'updated_at'
   */
  readonly updatedAtColumn?: string | undefined;
  /**
   * The data columns written from a row. Other keys of a row are ignored (so a row read back,
   * with its version and timestamps, can be written as is).
   * @default every column except the id, version, updated-at and generated columns, read
   * from `information_schema` at first use
   */
  readonly columns?: readonly string[] | undefined;
  /**
   * Who assigns ids: `caller` requires the id in every created row; `database` uses the id
   * column's default (serial, identity, `gen_random_uuid()`) when the row has no id, and the
   * row's id when it has one.
   * @default 'database' when the id column has a default or is an identity, else 'caller'
   */
  readonly idGeneration?: 'caller' | 'database' | undefined;
}

/**
 * Options of {@link PostgresTableAdapter}.
 *
 * @example
 * ```ts
 * const options: PostgresTableAdapterOptions = {
 *   sql: sqlClientFromPg(pool),
 *   tables: { Patient: { table: 'patients' }, Encounter: { table: 'visits', idColumn: 'visit_no' } },
 * };
 * ```
 */
export interface PostgresTableAdapterOptions {
  /** The legacy database. */
  readonly sql: SqlClient;
  /** One table per FHIR resource type, keyed by resource type. */
  readonly tables: Readonly<Record<string, PostgresTableOptions>>;
  /**
   * Record deletes as tombstones so the change feed reports them (see
   * {@link PostgresTombstoneOptions}; `true` for the defaults). Create the table and triggers
   * with `installTombstones()` or your own migration.
   * @default undefined: deletes do not appear in `changesSince`
   */
  readonly tombstones?: true | PostgresTombstoneOptions | undefined;
  /**
   * Keep the driver's own error, values included, as the `cause` of a row the table rejects,
   * and its message in the error's. Off, the `cause` is a copy without values: the driver's
   * `detail` (`Failing row contains (…)`, `Key (ssn)=(…)`) dropped and quoted values taken out
   * of its message, while `code`, `constraint` and `column` stay. Turn it on only where errors
   * may hold PHI (a development database).
   * @default false
   */
  readonly revealValues?: boolean | undefined;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks {@link PostgresTableAdapterOptions} as values of unknown shape (JavaScript callers and
 * options read from configuration files reach the constructor without the compiler's help)
 * and applies the defaults that need no database.
 *
 * @param options - The options given to the constructor.
 * @returns The settings of each resource type, keyed by resource type.
 * @throws {@link ConfigurationError} naming the option path and the bad value.
 * @example
 * ```ts
 * validateAdapterOptions({ sql, tables: { Patient: { table: 'patients; drop table x' } } });
 * // ConfigurationError: tables.Patient.table: must be an SQL identifier: … (got "patients; drop table x")
 * ```
 */
export function validateAdapterOptions(options: unknown): ReadonlyMap<string, TableSettings> {
  if (!isObject(options)) throw new ConfigurationError('options', options, 'must be an object');
  if (!isObject(options.sql) || typeof options.sql.query !== 'function') {
    throw new ConfigurationError(
      'sql',
      options.sql,
      'must be a SqlClient (see sqlClientFromPg and sqlClientFromPglite)',
    );
  }
  if (options.revealValues !== undefined && typeof options.revealValues !== 'boolean')
    throw new ConfigurationError('revealValues', options.revealValues, 'must be true or false');
  const tables = options.tables;
  if (!isObject(tables) || Object.keys(tables).length === 0) {
    throw new ConfigurationError('tables', tables, 'must map at least one resource type to a table');
  }
  return new Map(Object.entries(tables).map(([type, table]) => [type, validateTable(type, table)]));
}

/**
 * Checks the options of one table (shared by the PostgreSQL and MySQL table adapters; for MySQL,
 * `schema` is the database).
 *
 * @param resourceType - The resource type the table holds.
 * @param table - Its options, of unknown shape.
 * @returns Its settings.
 * @throws {@link ConfigurationError} naming `tables.<type>.<option>`.
 * @example
 * ```ts
 * validateTable('Patient', { table: 'patients', idColumn: 'patient_id' });
 * ```
 */
export function validateTable(resourceType: string, table: unknown): TableSettings {
  const path = `tables.${resourceType}`;
  if (!isObject(table)) throw new ConfigurationError(path, table, 'must be an object');
  const identifier = (option: string, value: unknown): string => {
    if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
      throw new ConfigurationError(
        `${path}.${option}`,
        value,
        'must be an SQL identifier: a letter or _ followed by letters, digits or _',
      );
    }
    return value;
  };
  const optional = (option: string, fallback: string): string =>
    table[option] === undefined ? fallback : identifier(option, table[option]);
  const idGeneration = table.idGeneration;
  if (idGeneration !== undefined && idGeneration !== 'caller' && idGeneration !== 'database') {
    throw new ConfigurationError(`${path}.idGeneration`, idGeneration, "must be 'caller' or 'database'");
  }
  const settings: TableSettings = {
    resourceType,
    table: identifier('table', table.table),
    schema: table.schema === undefined ? undefined : identifier('schema', table.schema),
    idColumn: optional('idColumn', 'id'),
    versionColumn: optional('versionColumn', 'version'),
    updatedAtColumn: optional('updatedAtColumn', 'updated_at'),
    columns: table.columns === undefined ? undefined : validateColumns(path, table.columns, identifier),
    idGeneration,
  };
  const managed = [settings.idColumn, settings.versionColumn, settings.updatedAtColumn];
  if (new Set(managed).size !== managed.length) {
    throw new ConfigurationError(
      `${path}.versionColumn`,
      settings.versionColumn,
      'id, version and updated-at must be three different columns',
    );
  }
  settings.columns?.forEach((column, index) => {
    if (managed.includes(column)) {
      throw new ConfigurationError(
        `${path}.columns[${index}]`,
        column,
        'is managed by the adapter (id, version or updated-at) and cannot be listed',
      );
    }
  });
  return settings;
}

function validateColumns(
  path: string,
  columns: unknown,
  identifier: (option: string, value: unknown) => string,
): readonly string[] {
  if (!Array.isArray(columns))
    throw new ConfigurationError(`${path}.columns`, columns, 'must be an array of column names');
  const names = columns.map((column: unknown, index) => identifier(`columns[${index}]`, column));
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate !== undefined)
    throw new ConfigurationError(`${path}.columns`, duplicate, 'lists a column twice');
  return names;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
