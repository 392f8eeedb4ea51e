import { ConfigurationError } from '../errors.ts';
import type { SqlClient } from '../sql/sql-client.ts';
import { isSchemaName } from './postgres-tables.ts';

/**
 * Options of `PostgresStore.open`.
 *
 * @example
 * ```ts
 * const options: PostgresStoreOptions = { sql: sqlClientFromPg(pool), schema: 'dualwrite' };
 * ```
 */
export interface PostgresStoreOptions {
  /** The database: a `pg` Pool through `sqlClientFromPg`, or PGlite through `sqlClientFromPglite`. */
  readonly sql: SqlClient;
  /**
   * The schema holding the store's tables; created if missing. Letters, digits and `_`,
   * starting with a letter or `_`, at most 63 characters (used as given, case-sensitive).
   * @default 'dualwrite'
   */
  readonly schema?: string | undefined;
}

/**
 * Options of `PostgresStore.openEmbedded`.
 *
 * @example
 * ```ts
 * const options: EmbeddedPostgresStoreOptions = { dataDir: './data/dualwrite' };
 * ```
 */
export interface EmbeddedPostgresStoreOptions {
  /**
   * The directory PGlite keeps its database in (created if missing), or any data-dir string
   * PGlite accepts.
   * @default in memory: nothing survives the process
   */
  readonly dataDir?: string | undefined;
  /**
   * The schema holding the store's tables, as in {@link PostgresStoreOptions.schema}.
   * @default 'dualwrite'
   */
  readonly schema?: string | undefined;
}

/**
 * Checks {@link PostgresStoreOptions} as values of unknown shape (JavaScript callers and
 * configuration files reach `open` without the compiler's help) and applies the defaults.
 *
 * @param options - The options given to `PostgresStore.open`.
 * @returns The database and the schema name.
 * @throws {@link ConfigurationError} naming the option and the bad value.
 * @example
 * ```ts
 * validateStoreOptions({ sql, schema: 'a.b' });
 * // ConfigurationError: schema: must be a schema name: … (got "a.b")
 * ```
 */
export function validateStoreOptions(options: unknown): { sql: SqlClient; schema: string } {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError('options', options, 'must be an object');
  }
  const { sql, schema } = options as Partial<Record<keyof PostgresStoreOptions, unknown>>;
  if (
    typeof sql !== 'object' ||
    sql === null ||
    typeof (sql as Partial<SqlClient>).query !== 'function' ||
    typeof (sql as Partial<SqlClient>).transaction !== 'function'
  ) {
    throw new ConfigurationError(
      'sql',
      sql,
      'must be a SqlClient (see sqlClientFromPg and sqlClientFromPglite)',
    );
  }
  return { sql: sql as SqlClient, schema: validateSchema(schema) };
}

function validateSchema(schema: unknown): string {
  if (schema === undefined) return 'dualwrite';
  if (!isSchemaName(schema)) {
    throw new ConfigurationError(
      'schema',
      schema,
      'must be a schema name: a letter or _ followed by letters, digits or _, at most 63 characters',
    );
  }
  return schema;
}

/**
 * Checks {@link EmbeddedPostgresStoreOptions} and applies the defaults.
 *
 * @param options - The options given to `PostgresStore.openEmbedded`.
 * @returns The data directory (`undefined`: in memory) and the schema name.
 * @throws {@link ConfigurationError} naming the option and the bad value.
 * @example
 * ```ts
 * validateEmbeddedOptions({ dataDir: '' });
 * // ConfigurationError: dataDir: must be a non-empty string (got "")
 * ```
 */
export function validateEmbeddedOptions(options: unknown): { dataDir: string | undefined; schema: string } {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError('options', options, 'must be an object');
  }
  const { dataDir, schema } = options as Partial<Record<keyof EmbeddedPostgresStoreOptions, unknown>>;
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir === '')) {
    throw new ConfigurationError('dataDir', dataDir, 'must be a non-empty string');
  }
  return { dataDir, schema: validateSchema(schema) };
}
