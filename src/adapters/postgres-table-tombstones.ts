import { tombstoneNames } from './tombstone-options.ts';
import type { SqlClient } from '../sql/sql-client.ts';
import { quoteIdent, type TableSchema } from './postgres-table-schema.ts';

/*
 * Deletes in a table-backed change feed. A deleted row leaves nothing to read, so every delete
 * of a legacy table also writes a tombstone row: by an AFTER DELETE trigger, so that deletes
 * made by the legacy application itself (its own screens, its own SQL) are recorded too, not
 * only the adapter's, and in the same transaction as the delete (a rolled-back delete leaves
 * no tombstone; a committed one always has one).
 *
 * Tombstones keep the key and the version only, never the row: a deleted record's data must
 * not outlive it in a side table (an erasure request would otherwise miss it).
 */

/**
 * Where {@link PostgresTableAdapter} keeps tombstones of deleted rows, for its change feed.
 *
 * The table and its trigger can be created by `adapter.installTombstones()` or by your own
 * migration with the DDL that {@link tombstoneDdl} returns (PostgreSQL 14 or later):
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS "public"."dualwrite_tombstones" (
 *   resource_type text NOT NULL,
 *   legacy_id text NOT NULL,
 *   version bigint,
 *   deleted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
 *   PRIMARY KEY (resource_type, legacy_id));
 * CREATE INDEX IF NOT EXISTS "dualwrite_tombstones_feed" ON "public"."dualwrite_tombstones" (resource_type, deleted_at, legacy_id);
 * -- one function per tombstone table, one trigger per legacy table:
 * CREATE OR REPLACE TRIGGER dualwrite_tombstone AFTER DELETE ON "public"."patients"
 *   FOR EACH ROW EXECUTE FUNCTION "public"."dualwrite_tombstones_record"('Patient', 'id', 'version');
 * ```
 *
 * @example
 * ```ts
 * const legacy = new PostgresTableAdapter({ sql, tables: { Patient: { table: 'patients' } }, tombstones: { schema: 'legacy' } });
 * await legacy.installTombstones();
 * ```
 */
export interface PostgresTombstoneOptions {
  /**
   * The tombstone table (one for every resource type).
   * @default 'dualwrite_tombstones'
   */
  readonly table?: string | undefined;
  /**
   * Its schema. Named explicitly (never found through `search_path`) so that the trigger,
   * which runs in the legacy application's sessions, writes where the feed reads.
   * @default 'public'
   */
  readonly schema?: string | undefined;
}

/**
 * Validated tombstone options.
 *
 * @internal
 * @example
 * ```ts
 * const settings: TombstoneSettings = { sqlTable: '"public"."dualwrite_tombstones"', sqlFunction: '…', name: 'dualwrite_tombstones' };
 * ```
 */
export interface TombstoneSettings {
  /** `"schema"."table"`. */
  readonly sqlTable: string;
  /** The trigger function, `"schema"."<table>_record"`. */
  readonly sqlFunction: string;
  /** The unquoted table name (for the index name). */
  readonly name: string;
  /** The quoted schema. */
  readonly sqlSchema: string;
}

/**
 * Checks the adapter's `tombstones` option.
 *
 * @param value - `undefined` (no tombstones: deletes are not in the feed), `true` (defaults) or
 *   {@link PostgresTombstoneOptions}.
 * @returns The settings, or `undefined` when tombstones are off.
 * @throws `ConfigurationError` naming `tombstones.table` or `tombstones.schema`.
 * @example
 * ```ts
 * validateTombstoneOptions({ schema: 'legacy' })?.sqlTable; // '"legacy"."dualwrite_tombstones"'
 * ```
 */
export function validateTombstoneOptions(value: unknown): TombstoneSettings | undefined {
  const names = tombstoneNames(value, { option: 'schema', fallback: 'public' });
  if (names === undefined) return undefined;
  const { table, namespace } = names;
  const schema = quoteIdent(namespace ?? 'public');
  return {
    name: table,
    sqlSchema: schema,
    sqlTable: `${schema}.${quoteIdent(table)}`,
    sqlFunction: `${schema}.${quoteIdent(`${table}_record`)}`,
  };
}

/**
 * The statements that create the tombstone table, its trigger function and one trigger per
 * legacy table; each is idempotent.
 *
 * @param settings - The tombstone table.
 * @param tables - The legacy tables to record deletes of.
 * @returns SQL statements, to run in order.
 * @example
 * ```ts
 * for (const statement of tombstoneDdl(settings, schemas)) console.log(statement);
 * ```
 */
export function tombstoneDdl(settings: TombstoneSettings, tables: readonly TableSchema[]): string[] {
  const { sqlTable, sqlFunction, name } = settings;
  return [
    `CREATE TABLE IF NOT EXISTS ${sqlTable} (
       resource_type text NOT NULL,
       legacy_id text NOT NULL,
       version bigint,
       deleted_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
       PRIMARY KEY (resource_type, legacy_id))`,
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${name}_feed`)} ON ${sqlTable} (resource_type, deleted_at, legacy_id)`,
    // The row goes through to_jsonb so one function serves tables of any id and version type.
    // A record deleted, re-created and deleted again keeps one tombstone, at its last delete.
    `CREATE OR REPLACE FUNCTION ${sqlFunction}() RETURNS trigger LANGUAGE plpgsql AS $fn$
     BEGIN
       INSERT INTO ${sqlTable} (resource_type, legacy_id, version, deleted_at)
       VALUES (TG_ARGV[0], pg_catalog.to_jsonb(OLD) ->> TG_ARGV[1],
               (pg_catalog.to_jsonb(OLD) ->> TG_ARGV[2])::bigint, pg_catalog.clock_timestamp())
       ON CONFLICT (resource_type, legacy_id)
       DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at;
       RETURN OLD;
     END $fn$`,
    ...tables.map(
      (table) =>
        `CREATE OR REPLACE TRIGGER ${quoteIdent(`${name}_trigger`)} AFTER DELETE ON ${table.sqlTable}
           FOR EACH ROW EXECUTE FUNCTION ${sqlFunction}(${literal(table.settings.resourceType)}, ${literal(table.id.name)}, ${literal(table.version.name)})`,
    ),
  ];
}

/**
 * Runs {@link tombstoneDdl} in one transaction, serialised against other installers.
 *
 * @param sql - The legacy database.
 * @param settings - The tombstone table.
 * @param tables - The legacy tables.
 * @returns When installed.
 * @example
 * ```ts
 * await installTombstones(sql, settings, schemas);
 * ```
 */
export async function installTombstones(
  sql: SqlClient,
  settings: TombstoneSettings,
  tables: readonly TableSchema[],
): Promise<void> {
  await sql.transaction(async (tx) => {
    // Two processes creating the same table at once would fail one of them on the catalog's
    // unique index; the lock makes the second find everything in place.
    await tx.query(`SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))`, [settings.sqlTable]);
    for (const statement of tombstoneDdl(settings, tables)) await tx.query(statement);
  });
}

/**
 * The change-feed query over a table and its tombstones: the keys of the next `limit` changes
 * in (time, id) order, rows and tombstones merged, then the rows of the upserts joined back.
 * Tombstone ids are cast to the id column's type so both kinds order alike.
 *
 * Parameters: `$1` limit, `$2` resource type, then `$3`/`$4` the cursor's time and id when
 * `after` is true. Columns: the table's select list plus `dw_deleted`, `dw_at` (an exact ISO
 * instant) and `dw_id` (text).
 *
 * @param schema - The legacy table.
 * @param settings - The tombstone table.
 * @param after - Whether the query starts after a cursor.
 * @returns The SQL text.
 * @example
 * ```ts
 * const { rows } = await sql.query(mergedChangesSql(schema, settings, true), [100, 'Patient', at, id]);
 * ```
 */
export function mergedChangesSql(schema: TableSchema, settings: TombstoneSettings, after: boolean): string {
  const at = schema.updatedAt.sqlName;
  const id = schema.id.sqlName;
  const idType = schema.id.sqlType;
  const rowKey = changeKeySql(`t.${id}`, `t.${schema.version.sqlName}`, false);
  const deadKey = changeKeySql('d.legacy_id', 'd.version', true);
  const rowsFrom = after ? afterCursor(`t.${at}`, rowKey, '$3', '$4') : `t.${at} IS NOT NULL`;
  const deadFrom = after ? afterCursor('d.deleted_at', deadKey, '$3', '$4') : 'TRUE';
  return `WITH changes AS (
      SELECT t.${at} AS dw_at, t.${id} AS dw_key, false AS dw_deleted, ${rowKey} AS dw_change
        FROM ${schema.sqlTable} t WHERE ${rowsFrom}
      UNION ALL
      SELECT d.deleted_at, d.legacy_id::${idType}, true, ${deadKey} FROM ${settings.sqlTable} d
       WHERE d.resource_type = $2 AND ${deadFrom}
      ORDER BY 1, 2 LIMIT $1)
    SELECT ${schema.selectList}, c.dw_deleted, c.dw_change,
           pg_catalog.to_char(c.dw_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z' AS dw_at,
           c.dw_key::text AS dw_id
      FROM changes c LEFT JOIN ${schema.sqlTable} ON NOT c.dw_deleted AND ${schema.sqlTable}.${id} = c.dw_key
     ORDER BY c.dw_at, c.dw_key`;
}

/**
 * The predicate "after the cursor": stamped later than its instant, or at that instant and not
 * yet returned — a change is its record's id with its version, so a second write of a record
 * within one clock tick is a new change.
 *
 * @param at - The updated-at (or deleted-at) expression.
 * @param change - The change's key expression ({@link changeKeySql}).
 * @param instant - The placeholder of the cursor's instant.
 * @param seen - The placeholder of the change keys returned at that instant (a text array).
 * @returns The SQL predicate.
 * @example
 * ```ts
 * const where = afterCursor('t.updated_at', changeKeySql('t.id', 't.version', false), '$2', '$3');
 * ```
 */
export function afterCursor(at: string, change: string, instant: string, seen: string): string {
  return `(${at} > ${instant}::pg_catalog.timestamptz
    OR (${at} = ${instant}::pg_catalog.timestamptz AND ${change} <> ALL(${seen}::text[])))`;
}

/**
 * The key of one change as text: id and version, marked for a delete.
 *
 * @param id - The id expression.
 * @param version - The version expression.
 * @param deleted - Whether it is a tombstone.
 * @returns The SQL expression.
 * @example
 * ```ts
 * changeKeySql('t.id', 't.version', false); // t.id::text || '@' || …
 * ```
 */
export function changeKeySql(id: string, version: string, deleted: boolean): string {
  return `(${id}::text || '@${deleted ? 'deleted@' : ''}' || coalesce(${version}::text, ''))`;
}

/**
 * The key of one change, as {@link changeKeySql} computes it in SQL.
 *
 * @param id - The record's id.
 * @param version - Its version.
 * @param deleted - Whether it is a tombstone.
 * @returns The key.
 * @example
 * ```ts
 * changeKey('42', '3', false); // '42@3'
 * ```
 */
export function changeKey(id: string, version: string | undefined, deleted: boolean): string {
  return `${id}@${deleted ? 'deleted@' : ''}${version ?? ''}`;
}

function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
